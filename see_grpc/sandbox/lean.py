"""Imported first by the worker: makes `see_grpc.trading.strategies` a bare package in that process.

The worker needs only `see_grpc.trading.strategies.base`; the package's __init__ imports every built-in strategy
(numba, scipy, scikit-learn), which would add seconds to each worker start and restart for nothing.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import see_grpc.trading

PACKAGE = "see_grpc.trading.strategies"

if PACKAGE not in sys.modules:
    _package = types.ModuleType(PACKAGE)
    _package.__path__ = [str(Path(see_grpc.trading.__file__).parent / "strategies")]
    sys.modules[PACKAGE] = _package
