"""User strategies that look ahead in the common ways, and honest ones that must not be mistaken for them.

Each is the body of target_positions (with `close = bars["close"]` already set) that leaves `positions`, wrapped by
`strategy_code` into code the sandbox accepts.
"""

from __future__ import annotations

CHEATS: dict[str, str] = {
    "shift_minus_one": """
positions = np.where(close.shift(-1) > close, 1.0, -1.0)
""",
    "shift_minus_n": """
positions = np.where(close.shift(-6) > close, 1.0, 0.0)
""",
    "index_ahead_in_a_loop": """
values = close.to_numpy()
positions = np.zeros(len(values))
for t in range(len(values) - 1):
    positions[t] = 1.0 if values[t + 1] > values[t] else -1.0
""",
    "centred_rolling_window": """
middle = close.rolling(25, center=True).mean()
positions = np.where(close < middle, 1.0, -1.0)
""",
    "divided_by_the_max_of_all_closes": """
positions = np.where(close / close.max() > 0.99, 1.0, 0.0)
""",
    "daily_close_mapped_back_onto_its_hours": """
day_close = close.resample("1D").last().reindex(close.index.floor("1D")).to_numpy()
positions = np.where(day_close > close.to_numpy(), 1.0, -1.0)
""",
    "bfill_of_later_signals": """
signal = pd.Series(np.nan, index=bars.index)
signal[close > close.rolling(24).max().shift(1)] = 1.0
signal[close < close.rolling(24).min().shift(1)] = -1.0
positions = signal.bfill().fillna(0.0).to_numpy()
""",
}

HONEST: dict[str, str] = {
    "previous_day_close_mapped_onto_the_next_day": """
day_close = close.resample("1D").last().shift(1).reindex(close.index.floor("1D")).to_numpy()
positions = np.where(day_close > close.to_numpy(), 1.0, -1.0)
""",
    "divided_by_the_max_so_far": """
positions = np.where(close / close.cummax() > 0.995, 1.0, 0.0)
""",
    "loop_over_past_values": """
values = close.to_numpy()
positions = np.zeros(len(values))
for t in range(3, len(values)):
    if values[t] > values[t - 3]:
        positions[t] = 1.0
    elif values[t] < values[t - 3]:
        positions[t] = -1.0
""",
}

# Honest with the default lead of 0; lead > 0 reads that many bars ahead.
LEAD_PARAMETER = """
positions = np.where(close.shift(-params["lead"]) > close, 1.0, -1.0)
"""


def strategy_code(body: str, name: str = "look-ahead probe") -> str:
    indented = "\n".join("        " + line for line in body.strip().splitlines())
    return f"""import numpy as np
import pandas as pd
from see_strategy import BaseStrategy, ParamSpec


class Probe(BaseStrategy):
    name = "{name}"
    parameter_specs = (ParamSpec("lead", "int", 0, min=0, max=10, description="Bars read ahead."),)

    def warmup_bars(self, params):
        return 30

    def target_positions(self, bars, params):
        close = bars["close"]
{indented}
        return positions
"""
