"""Trading logic: instruments, strategies, bar handling and the backtest engine (pure, no I/O)."""
