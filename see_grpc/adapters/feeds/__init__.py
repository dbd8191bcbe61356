"""Market data feeds behind the MarketFeed port: the paper feed by default, the Trading Gateway when configured."""
