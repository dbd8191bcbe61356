"""What user strategy code may do: the compile-time checks and the restricted globals it runs with.

Only the sandbox worker process imports this module to run code; nothing here executes user code in the server.

Layers, each enough on its own for the common escapes:
- compile time: RestrictedPython refuses names and attributes starting with '_' and the frame/code attributes; our
  own pass refuses imports outside ALLOWED_MODULES and names such as eval/open/type, always with the line number;
- run time: every `a.b` goes through `guarded_getattr` (no '_' names, no format/format_map, no file or pickle I/O
  methods, never a module, frame or code object as a result); numpy, pandas and math are only reachable as
  read-only namespaces holding allow-listed members; writes go only to containers and the user's own objects;
  classes may only derive from the strategy API or from each other.
"""

from __future__ import annotations

import ast
import builtins
import math
import operator
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn

import numpy as np
import pandas as pd
from pandas.core import indexing
from RestrictedPython.compile import compile_restricted_exec
from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence
from RestrictedPython.PrintCollector import PrintCollector

from see_grpc.errors import StrategyConfigurationError
from see_grpc.trading.strategies.base import BaseStrategy, ParamSpec

SOURCE_FILENAME = "<strategy>"
SANDBOX_MODULE = "see_user_strategy"  # __module__ of every class the user defines
MAX_SOURCE_CHARS = 200_000


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_NUMPY_NAMES = """
    abs absolute add all allclose amax amin any append arange arccos arcsin arctan arctan2 argmax argmin argsort
    around array array_equal asarray atleast_1d average bincount bool_ ceil clip column_stack concatenate convolve
    copy corrcoef correlate cos count_nonzero cov cumprod cumsum degrees diag diff digitize divide dot dtype e empty
    empty_like equal errstate exp expm1 eye finfo flatnonzero float32 float64 floor floor_divide fmax fmin full
    full_like gradient greater greater_equal histogram hstack hypot iinfo inf int32 int64 int8 interp isclose
    isfinite isinf isnan isscalar lexsort less less_equal linspace log log10 log1p log2 logical_and logical_not
    logical_or logical_xor matmul max maximum mean median min minimum mod multiply nan nan_to_num nanargmax
    nanargmin nanmax nanmean nanmedian nanmin nanpercentile nanquantile nanstd nansum nanvar ndarray ndim negative
    newaxis nonzero not_equal ones ones_like outer percentile pi polyfit polyval power prod ptp quantile radians
    ravel reciprocal remainder repeat reshape roll round searchsorted select shape sign sin size sort sqrt square
    squeeze stack std subtract sum take tan tanh tile transpose tril triu true_divide trunc unique var vstack where
    zeros zeros_like
"""
_NUMPY_LINALG_NAMES = "cholesky det eig eigh inv lstsq matrix_rank norm pinv qr solve svd"
_NUMPY_RANDOM_NAMES = "choice default_rng normal permutation rand randint randn seed shuffle standard_normal uniform"
_PANDAS_NAMES = """
    DataFrame DatetimeIndex Index NA NaT RangeIndex Series Timedelta Timestamp concat cut date_range isna isnull
    merge notna notnull qcut to_datetime to_numeric to_timedelta
"""

# Attributes refused on every object, beyond RestrictedPython's '_' rule: introspection that reaches frames, code
# and classes; str.format's own attribute lookups; anything that reads or writes files or unpickles.
_DENIED_ATTRIBUTES = frozenset(
    _names(
        """
        mro format format_map gi_frame gi_code gi_yieldfrom cr_frame cr_code cr_await ag_frame ag_code
        ag_await tb_frame tb_next f_back f_builtins f_code f_globals f_locals f_trace co_code func_globals
        func_code tofile dump dumps load loads save savez savetxt loadtxt fromfile memmap ctypes ctypeslib data
        cffi lib io testing f2py eval query plot style api core compat util plotting bit_generator
        """
    )
)
# pandas looks up a method by name when one of these is given a string (`df.agg("eval", expr)` runs DataFrame.eval
# without passing through the guards), so their function arguments must be callables or names from _SAFE_FUNCTIONS.
_STRING_DISPATCH = frozenset(_names("agg aggregate apply transform pipe map applymap"))
_SAFE_FUNCTIONS = frozenset(
    _names(
        """
        sum mean std var sem min max median count first last prod size nunique skew kurt cumsum cumprod cummax
        cummin diff pct_change rank abs any all idxmax idxmin quantile ohlc shift
        """
    )
)
_FUNCTION_KEYWORDS = ("func", "arg")
# The other keywords these methods take, with plain values; named aggregation (`agg(x=("close", "sum"))`) is not
# among them: it is a second route to the name lookup.
_DISPATCH_OPTIONS = frozenset(
    _names("axis raw result_type by_row engine na_action include_groups skipna numeric_only ddof min_count args")
)
_OPTION_WORDS = frozenset(_names("index columns rows expand reduce broadcast ignore compat python cython"))
_ENGINES = (None, "python", "cython")  # numba would compile user functions outside the guards
_ALLOWED_TO_METHODS = frozenset({"to_numpy", "to_list", "to_dict", "to_frame"})
# memoryview: an array's raw buffer, writable as bytes (an object array's pointers with it: any address).
_DENIED_RESULT_TYPES = (types.ModuleType, types.FrameType, types.CodeType, types.TracebackType, memoryview)
_DENIED_NAMES = frozenset(
    _names(
        """
        eval exec compile open globals locals vars dir type setattr delattr input breakpoint help memoryview
        object exit quit
        """
    )
)
_SAFE_BUILTINS = _names(
    """
    abs all any bool callable chr dict divmod enumerate filter float frozenset hash int isinstance issubclass
    iter len list map max min next ord pow range repr reversed round set slice sorted str sum tuple zip property
    staticmethod classmethod super ArithmeticError AssertionError AttributeError Exception IndexError KeyError
    LookupError NotImplementedError OverflowError RuntimeError StopIteration TypeError ValueError
    ZeroDivisionError None True False
    """
)
_BASE_CLASSES_ALLOWED = (BaseStrategy, Exception, ValueError, RuntimeError)
_IN_PLACE = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv, "//=": operator.ifloordiv,
    "%=": operator.imod, "**=": operator.ipow, "<<=": operator.ilshift, ">>=": operator.irshift,
    "&=": operator.iand, "^=": operator.ixor, "|=": operator.ior, "@=": operator.imatmul,
}  # fmt: skip


class PolicyViolation(BaseException):
    """Raised by a guard. A BaseException, so a user's `except Exception` cannot quietly swallow it."""


class CodeRefusedError(Exception):
    """The code is refused before or without running it (compile-time checks, not a strategy); names the line."""


def _namespace(module: object, names: Iterable[str], **extra: object) -> types.SimpleNamespace:
    """A read-only view holding only the allowed members (copied: nothing else of the module is reachable)."""
    members = {name: getattr(module, name) for name in names if hasattr(module, name)}
    return types.SimpleNamespace(**members, **extra)


def allowed_modules() -> dict[str, types.SimpleNamespace]:
    """The importable modules: import name -> restricted namespace."""
    numpy = _namespace(
        np,
        _names(_NUMPY_NAMES),
        linalg=_namespace(np.linalg, _names(_NUMPY_LINALG_NAMES)),
        random=_namespace(np.random, _names(_NUMPY_RANDOM_NAMES)),
    )
    strategy_api = types.SimpleNamespace(
        BaseStrategy=BaseStrategy, ParamSpec=ParamSpec, StrategyConfigurationError=StrategyConfigurationError
    )
    return {
        "numpy": numpy,
        "pandas": _namespace(pd, _names(_PANDAS_NAMES)),
        "math": _namespace(math, [name for name in dir(math) if not name.startswith("_")]),
        "see_strategy": strategy_api,
    }


ALLOWED_MODULES = ("numpy", "pandas", "math", "see_strategy")


# ---------------------------------------------------------------------------------------------------------------
# Compile time


def compile_strategy(source: str) -> types.CodeType:
    """Check and compile; raises CodeRefusedError whose message names the line."""
    if len(source) > MAX_SOURCE_CHARS:
        raise CodeRefusedError(f"line 1: the code is {len(source)} characters; at most {MAX_SOURCE_CHARS} are allowed")
    try:
        tree = ast.parse(source, SOURCE_FILENAME)
    except SyntaxError as exc:
        raise CodeRefusedError(f"line {exc.lineno or 1}: syntax error: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise CodeRefusedError(f"line 1: the code cannot be parsed ({type(exc).__name__})") from None
    _check_tree(tree, allowed_modules())
    result = compile_restricted_exec(source, SOURCE_FILENAME)
    if result.errors or result.code is None:
        raise CodeRefusedError(_restricted_error(result.errors[0] if result.errors else "the code cannot be compiled"))
    return result.code


def _restricted_error(message: str) -> str:
    # RestrictedPython says 'Line 3: "_x" is an invalid ...'; keep its text, with our "line N:" prefix.
    head, _, rest = message.partition(":")
    return f"line {head.split()[-1]}:{rest}" if head.startswith("Line ") else f"line 1: {message}"


def _check_tree(tree: ast.AST, modules: Mapping[str, types.SimpleNamespace]) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                _check_import(node, alias.name, (), modules)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise CodeRefusedError(f"line {node.lineno}: relative imports are not allowed")
            _check_import(node, node.module or "", [alias.name for alias in node.names], modules)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in _DENIED_NAMES:
            raise CodeRefusedError(f"line {node.lineno}: '{node.id}' is not allowed in a strategy")


def _check_import(
    node: ast.stmt, module: str, names: Iterable[str], modules: Mapping[str, types.SimpleNamespace]
) -> None:
    if module not in modules:
        allowed = ", ".join(ALLOWED_MODULES)
        raise CodeRefusedError(f"line {node.lineno}: import of '{module}' is not allowed (allowed: {allowed})")
    for name in names:
        if not hasattr(modules[module], name):
            raise CodeRefusedError(f"line {node.lineno}: '{module}.{name}' is not available in the sandbox")


# ---------------------------------------------------------------------------------------------------------------
# Run time


def _user_line() -> int:
    """The line of user code being executed, for the violation message."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename != SOURCE_FILENAME:
        frame = frame.f_back  # type: ignore[assignment]
    return frame.f_lineno if frame is not None else 0


class Guards:
    """The run-time guards of one execution; remembers violations even when user code catches the exception."""

    def __init__(self) -> None:
        self.modules = allowed_modules()
        # np.ndarray(shape, dtype=object, buffer=ints) lays objects over raw integers: a way to any address in
        # memory. The name stays for isinstance checks; calling it is refused.
        self.modules["numpy"].ndarray = self._type_only(np.ndarray, "use np.array, np.zeros or np.empty")
        self._module_names = {id(view): name for name, view in self.modules.items()}
        self.violations: list[str] = []

    def refuse(self, reason: str) -> PolicyViolation:
        message = f"line {_user_line()}: {reason}"
        self.violations.append(message)
        return PolicyViolation(message)

    def getattr(self, obj: object, name: object, *default: object) -> object:
        if not isinstance(name, str):
            raise TypeError("attribute name must be a string")
        self._check_attribute(obj, name)
        try:
            value = getattr(obj, name)
        except AttributeError:
            if default:
                return default[0]
            raise
        if isinstance(value, _DENIED_RESULT_TYPES):
            raise self.refuse(f"attribute '{name}' is not allowed")
        if callable(value) and name in _STRING_DISPATCH:
            return self._dispatch_checked(value, name)
        if callable(value) and name == "rolling":
            return self._window_checked(value)
        return value

    def _dispatch_checked(self, method: Callable[..., object], name: str) -> Callable[..., object]:
        def call(*args: object, **kwargs: object) -> object:
            functions = {key: kwargs[key] for key in _FUNCTION_KEYWORDS if key in kwargs}
            for function in [*args[:1], *functions.values()]:
                self._check_function_argument(function, name)
            if kwargs.get("engine") not in _ENGINES:
                raise self.refuse(f"{name}(): only the default engine is allowed")
            self._check_options(name, args[1:], {k: v for k, v in kwargs.items() if k not in functions})
            return method(*args, **kwargs)

        return call

    def _check_options(self, name: str, forwarded: tuple[object, ...], options: dict[str, object]) -> None:
        """Arguments besides the function: plain values only, so none of them is looked up as a method."""
        for key, value in options.items():
            if key not in _DISPATCH_OPTIONS:
                raise self.refuse(
                    f"{name}() does not take the keyword {key[:40]!r} in the sandbox (named aggregation is not "
                    "supported: pass a dict of column -> functions)"
                )
            self._check_plain(name, value)
        for value in forwarded:
            self._check_plain(name, value)

    def _check_plain(self, name: str, value: object) -> None:
        if isinstance(value, tuple):
            for item in value:
                self._check_plain(name, item)
        elif isinstance(value, str) and value not in _OPTION_WORDS:
            raise self.refuse(f"{name}() takes no text argument {value[:40]!r} besides function names")
        elif value is not None and not isinstance(value, str | int | float | bool):
            raise self.refuse(f"{name}() takes only numbers, booleans and option words besides the function")

    def _check_function_argument(self, function: object, name: str) -> None:
        """A callable, an allowed function name, or lists and dicts (by column) of those; `map` takes mappings."""
        if name == "map" and not isinstance(function, str):
            return  # a dict or Series maps values to values: pandas looks nothing up by name there
        if isinstance(function, str):
            if function not in _SAFE_FUNCTIONS:
                allowed = ", ".join(sorted(_SAFE_FUNCTIONS))
                raise self.refuse(f"{name}() with the name {function[:40]!r} is not allowed (names allowed: {allowed})")
        elif isinstance(function, list | tuple):
            for item in function:
                self._check_function_argument(item, name)
        elif isinstance(function, dict):
            for item in function.values():
                self._check_function_argument(item, name)
        elif not callable(function):
            raise self.refuse(f"{name}() takes a function, a function name or a list or dict of them")

    def _window_checked(self, method: Callable[..., object]) -> Callable[..., object]:
        def call(*args: object, **kwargs: object) -> object:
            # win_type names a function that pandas looks up in scipy, which the sandbox does not load
            if kwargs.get("win_type", args[3] if len(args) > 3 else None) is not None:
                raise self.refuse("rolling() with a win_type is not allowed")
            if kwargs.get("method", "single") != "single":
                raise self.refuse("rolling(): only method='single' is allowed")  # 'table' needs numba
            return method(*args, **kwargs)

        return call

    def hasattr(self, obj: object, name: str) -> bool:
        try:
            self.getattr(obj, name)
        except AttributeError:
            return False
        return True

    def _check_attribute(self, obj: object, name: str) -> None:
        module = self._module_names.get(id(obj))
        if module is not None and not hasattr(obj, name):
            raise self.refuse(f"'{module}.{name}' is not available in the sandbox")
        denied = name.startswith("_") or name in _DENIED_ATTRIBUTES or name.startswith("read_")
        if denied or (name.startswith("to_") and name not in _ALLOWED_TO_METHODS):
            raise self.refuse(f"attribute '{name}' is not allowed")

    def write(self, obj: object) -> object:
        """Writes (item or attribute) only to containers, arrays, frames and the user's own objects.

        An array takes item writes only: setting its dtype, strides or data would reinterpret raw memory.
        """
        if isinstance(obj, np.ndarray):
            return _ItemWriter(obj, self)
        if isinstance(obj, _WRITABLE) or type(obj).__module__ == SANDBOX_MODULE:
            return obj
        raise self.refuse(f"modifying a {type(obj).__name__} is not allowed")

    def _type_only(self, wrapped: type, advice: str) -> type:
        """A stand-in for `wrapped` that isinstance and issubclass accept and that refuses to be called."""
        guards = self

        class TypeOnly(type):
            def __instancecheck__(cls, obj: object) -> bool:
                return isinstance(obj, wrapped)

            def __subclasscheck__(cls, subclass: type) -> bool:
                return issubclass(subclass, wrapped)

            def __call__(cls, *args: object, **kwargs: object) -> NoReturn:
                raise guards.refuse(f"calling {wrapped.__name__}() is not allowed: {advice}")

        return TypeOnly(wrapped.__name__, (), {})

    def import_(
        self, name: str, globals_: object = None, locals_: object = None, fromlist: object = (), level: int = 0
    ) -> types.SimpleNamespace:
        if level or name not in self.modules:
            raise self.refuse(f"import of '{name}' is not allowed")
        return self.modules[name]

    def build_class(self, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> type:
        """RestrictedPython's `__metaclass__` hook: classes derive only from the strategy API or user classes."""
        for base in bases:
            if base not in _BASE_CLASSES_ALLOWED and base.__module__ != SANDBOX_MODULE:
                raise self.refuse(f"class {name} may not derive from {base.__name__}")
        return type(name, bases, namespace)

    def globals(self) -> dict[str, object]:
        safe: dict[str, object] = {name: getattr(builtins, name) for name in _SAFE_BUILTINS}
        safe.update(
            __build_class__=builtins.__build_class__,
            __import__=self.import_,
            getattr=self.getattr,
            hasattr=self.hasattr,
        )
        return {
            "__builtins__": safe,
            "__name__": SANDBOX_MODULE,
            "__metaclass__": self.build_class,
            "_getattr_": self.getattr,
            "_write_": self.write,
            "_getitem_": operator.getitem,
            "_getiter_": iter,
            "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
            "_unpack_sequence_": guarded_unpack_sequence,
            "_inplacevar_": _inplace,
            "_apply_": _apply,
            "_print_": PrintCollector,
        }


class _ItemWriter:
    """What `_write_` hands out for a numpy array: item assignment and deletion, no attribute writes."""

    __slots__ = ("_array", "_guards")
    _array: Any  # an ndarray; Any because numpy's stubs type item assignment by index kind
    _guards: Guards

    def __init__(self, array: np.ndarray, guards: Guards) -> None:
        object.__setattr__(self, "_array", array)
        object.__setattr__(self, "_guards", guards)

    def __setitem__(self, key: object, value: object) -> None:
        self._array[key] = value

    def __delitem__(self, key: object) -> None:
        del self._array[key]

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise self._guards.refuse(f"setting an array's '{name}' is not allowed (use reshape or astype)")


_WRITABLE = (
    dict, list, set, np.ndarray, pd.Series, pd.DataFrame,
    indexing._LocIndexer, indexing._iLocIndexer, indexing._AtIndexer, indexing._iAtIndexer,
)  # fmt: skip


def _inplace(op: str, target: object, value: object) -> object:
    update: Callable[[object, object], object] = _IN_PLACE[op]
    return update(target, value)


def _apply(function: Callable[..., object], *args: object, **kwargs: object) -> object:
    return function(*args, **kwargs)
