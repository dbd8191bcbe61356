"""numba's `njit(cache=True, nogil=True)`, applied when a kernel is first called rather than when its module is
imported.

nogil: a kernel holds no Python object, so it lets go of the GIL while it runs. A 2,000,000-bar simulation in a
worker thread then no longer keeps the server's event loop waiting for its 30-40 ms.

Importing numba and llvmlite takes 0.3-0.5 s, which server start-up should not pay: the first backtest does. On
the first call of any kernel of a module, every kernel of that module is compiled-on-demand in place (the module's
names then refer to numba dispatchers), so kernels that call each other resolve one another as numba functions.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])

_pending: dict[str, list[Callable[..., Any]]] = {}  # module name -> its kernels not handed to numba yet
_lock = threading.Lock()


def njit(function: F) -> F:
    """Like `numba.njit(cache=True, nogil=True)`; the returned function forwards to the dispatcher once it exists."""
    module, name = function.__module__, function.__name__
    _pending.setdefault(module, []).append(function)

    @functools.wraps(function)
    def call(*args: Any) -> Any:
        _dispatch(module)
        return getattr(sys.modules[module], name)(*args)

    return cast(F, call)


def _dispatch(module: str) -> None:
    with _lock:
        kernels = _pending.pop(module, None)
        if kernels is None:
            return
        import numba  # noqa: PLC0415 - see the module's docstring

        namespace = vars(sys.modules[module])
        for kernel in kernels:
            namespace[kernel.__name__] = numba.njit(cache=True, nogil=True)(kernel)
