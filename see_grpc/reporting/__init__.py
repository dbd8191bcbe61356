"""Backtest reports: pure rendering of a stored backtest (and the bars it ran on) into one offline HTML page."""

from see_grpc.reporting.html import HtmlReports, render_report

__all__ = ["HtmlReports", "render_report"]
