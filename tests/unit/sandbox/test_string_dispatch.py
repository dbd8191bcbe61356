"""pandas calls methods named by strings (`agg("eval", ...)`): such calls take only callables and safe names."""

from __future__ import annotations

import re

import pytest

from see_grpc.errors import StrategyLoadError
from see_grpc.sandbox.pool import SandboxPool
from tests.unit.sandbox.conftest import strategy_with

EXPR = "close.__class__.__init__.__globals__"

REFUSED: dict[str, tuple[str, str]] = {
    "frame_agg_eval": (f"bars.agg('eval', 0, '{EXPR}')", "agg() with the name 'eval'"),
    "frame_aggregate_query": ("bars.aggregate('query', 'close > 0')", "aggregate() with the name 'query'"),
    "frame_apply_eval": (f"bars.apply('eval', expr='{EXPR}')", "apply() with the name 'eval'"),
    "frame_transform_to_pickle": ("bars.transform('to_pickle', '/tmp/x')", "transform() with the name 'to_pickle'"),
    "series_agg_list": ("bars['close'].agg(['mean', 'to_csv'])", "agg() with the name 'to_csv'"),
    "frame_agg_dict": ("bars.agg({'close': 'eval'})", "agg() with the name 'eval'"),
    "frame_agg_dict_of_lists": ("bars.agg({'close': ['sum', 'eval']})", "agg() with the name 'eval'"),
    "func_keyword": ("bars.agg(func='eval')", "agg() with the name 'eval'"),
    "rolling_agg": ("bars['close'].rolling(5).agg('eval')", "agg() with the name 'eval'"),
    "rolling_apply_numba": (
        "bars['close'].rolling(5).apply(lambda x: 0.0, raw=True, engine='numba')", "only the default engine"
    ),
    "groupby_transform": ("bars.groupby(bars['close'] > 1).transform('eval')", "transform() with the name"),
    "resample_apply": ("bars.resample('1D').apply('to_json')", "apply() with the name 'to_json'"),
    "expanding_aggregate": ("bars.expanding().aggregate('pipe')", "aggregate() with the name 'pipe'"),
    "ewm_agg": ("bars['close'].ewm(span=3).agg('eval')", "agg() with the name 'eval'"),
    "pipe_name": ("bars.pipe('eval')", "pipe() with the name 'eval'"),
    "map_name": ("bars['close'].map('eval')", "map() with the name 'eval'"),
    "not_a_function": ("bars.agg(42)", "takes a function"),
    "rolling_win_type": ("bars['close'].rolling(5, win_type='get_window').sum()", "with a win_type"),
    "rolling_table": ("bars.rolling(5, method='table').sum()", "method='single'"),
    "named_aggregation": ("bars.agg(x=('close', 'to_csv'))", "does not take the keyword 'x'"),
    "named_aggregation_dunder": ("bars.agg(x=('close', '__reduce__'))", "does not take the keyword 'x'"),
    "groupby_named_aggregation": ("bars.groupby(bars['close'] > 1).agg(x=('close', 'plot'))", "keyword 'x'"),
    "forwarded_text": ("bars.apply(np.mean, 0, False, 'reduce', ('eval',))", "no text argument 'eval'"),
    "engine_kwargs": ("bars['close'].rolling(5).apply(np.mean, raw=True, engine_kwargs={'nopython': True})",
                      "keyword 'engine_kwargs'"),
    "getattr_agg": ("getattr(bars, 'agg')('eval', 0, 'close')", "agg() with the name 'eval'"),
}  # fmt: skip

ALLOWED = (
    "x = bars.agg('mean')",
    "x = bars['close'].rolling(5).agg(['mean', 'std'])",
    "x = bars.agg({'close': ['min', 'max'], 'open': 'median'})",
    "x = bars.apply(np.mean)",
    "x = bars['close'].apply(lambda v: v * 2)",
    "x = bars['close'].rolling(5).apply(lambda w: w[-1], raw=True)",
    "x = bars.transform(lambda c: c - c.mean())",
    "x = bars.resample('1D').agg('ohlc')",
    "x = bars.pipe(lambda b: b['close'])",
    "x = bars['close'].map({1.0: 'up'})",
    "x = bars.apply(np.mean, axis='index', result_type='reduce')",
    "x = bars['close'].rolling(5).apply(lambda w, k: w[-1] * k, raw=True, args=(2.0,))",
)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_string_dispatch_is_refused(pool: SandboxPool, name: str) -> None:
    body, words = REFUSED[name]
    with pytest.raises(StrategyLoadError, match="line 13:") as caught:
        pool.load(strategy_with(body), {})
    assert words in str(caught.value)


@pytest.mark.parametrize("body", ALLOWED)
def test_safe_names_and_callables_still_work(pool: SandboxPool, body: str) -> None:
    pool.load(strategy_with(body), {})


# A raw-memory primitive found by an attacker's try: an object array laid over integers reaches any address.
MEMORY: dict[str, tuple[str, str]] = {
    "ndarray_over_buffer": (
        "raw = np.zeros(4, dtype=np.int64)\nx = np.ndarray((4,), dtype=np.dtype('O'), buffer=raw)",
        "calling ndarray() is not allowed",
    ),
    "set_dtype": ("raw = np.zeros(4, dtype=np.int64)\nraw.dtype = np.dtype('O')", "setting an array's 'dtype'"),
    "set_strides": ("raw = np.zeros(4)\nraw.strides = (0,)", "setting an array's 'strides'"),
    "array_data_buffer": (
        "o = np.array([None, None], dtype=np.dtype('O'))\nq = np.asarray(o.data.cast('B'))",
        "'data' is not allowed",
    ),
    "getattr_data": ("o = np.zeros(2)\nm = getattr(o, 'da' + 'ta')", "'data' is not allowed"),
    "set_shape": ("raw = np.zeros(4)\nraw.shape = (2, 2)", "setting an array's 'shape'"),
}


@pytest.mark.parametrize("name", sorted(MEMORY))
def test_raw_memory_reinterpretation_is_refused(pool: SandboxPool, name: str) -> None:
    body, words = MEMORY[name]
    with pytest.raises(StrategyLoadError, match=re.escape(words)):
        pool.load(strategy_with(body), {})


def test_arrays_still_take_item_writes_and_isinstance(pool: SandboxPool) -> None:
    body = (
        "a = np.zeros(4)\na[1] = 2.0\na[2:] = a[2:] + 1.0\ndel_me = [1, 2]\ndel del_me[0]\nb = a.reshape(2, 2)\n"
        "if not isinstance(b, np.ndarray) or a[1] != 2.0 or a[3] != 1.0:\n    raise ValueError('arrays broke')"
    )
    pool.load(strategy_with(body), {})
