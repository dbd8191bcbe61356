"""Parameter optimization: search spaces, samplers, objectives and constraints, walk-forward analysis and
overfitting diagnostics. Pure computation; the service runs it on an engine (see see_grpc.adapters.compute)."""
