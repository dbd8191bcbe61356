"""Escape attempts: each is refused with StrategyLoadError naming the line, and the sandbox keeps working."""

from __future__ import annotations

import pytest

from see_grpc.errors import StrategyLoadError
from see_grpc.sandbox.pool import SandboxPool
from see_grpc.sandbox.protocol import for_caller
from tests.unit.sandbox.conftest import SMA_CROSS, strategy_with

# (code, the line the refusal must name, words the message must contain)
MODULE_LEVEL: dict[str, tuple[str, int, str]] = {
    "import_os": ("import os", 1, "import of 'os' is not allowed"),
    "import_sys": ("import math\nimport sys", 2, "import of 'sys'"),
    "import_subprocess": ("import subprocess", 1, "import of 'subprocess'"),
    "import_socket": ("import socket", 1, "import of 'socket'"),
    "import_ctypes": ("import ctypes", 1, "import of 'ctypes'"),
    "import_pickle": ("import pickle", 1, "import of 'pickle'"),
    "import_importlib": ("import importlib", 1, "import of 'importlib'"),
    "import_builtins": ("import builtins", 1, "import of 'builtins'"),
    "import_multiprocessing": ("import multiprocessing", 1, "import of 'multiprocessing'"),
    "from_os_import": ("from os import system", 1, "import of 'os'"),
    "dotted_numpy_submodule": ("import numpy.ctypeslib", 1, "import of 'numpy.ctypeslib'"),
    "from_numpy_import_load": ("from numpy import load", 1, "'numpy.load' is not available"),
    "relative_import": ("from . import x", 1, "relative imports"),
    "dunder_import": ("x = 1\n__import__('os')", 2, "starts with \"_\""),
    "open_file": ("data = open('/etc/passwd').read()", 1, "'open' is not allowed"),
    "eval": ("eval('1 + 1')", 1, "'eval' is not allowed"),
    "exec": ("exec('x = 1')", 1, "'exec' is not allowed"),
    "compile": ("code = compile('1', 'f', 'eval')", 1, "'compile' is not allowed"),
    "subclasses_walk": ("x = ().__class__.__bases__[0].__subclasses__()", 1, 'starts with "_"'),
    "getattr_dunder_globals": ("def f():\n    pass\ng = getattr(f, '__globals__')", 3, "'__globals__' is not allowed"),
    "vars": ("v = vars()", 1, "'vars' is not allowed"),
    "globals": ("g = globals()", 1, "'globals' is not allowed"),
    "locals": ("l = locals()", 1, "'locals' is not allowed"),
    "func_code": ("def f():\n    pass\nc = f.__code__", 3, "__code__"),
    "generator_frame_back": ("g = (i for i in [1])\nf = g.gi_frame.f_back", 2, "is a restricted name"),
    "generator_code": ("g = (i for i in [1])\nc = g.gi_code", 2, "gi_code"),
    "getattr_gi_frame": ("g = (i for i in [1])\nf = getattr(g, 'gi_frame')", 2, "'gi_frame' is not allowed"),
    "format_attribute_walk": ("s = '{0.__class__.__mro__}'.format(1)", 1, "'format' is not allowed"),
    "format_map": ("s = '{x.__class__}'.format_map({'x': 1})", 1, "'format_map' is not allowed"),
    "str_format_unbound": ("s = str.format('{0.__class__}', 1)", 1, "'format' is not allowed"),
    "fstring_dunder": ("s = f'{(1).__class__}'", 1, "__class__"),
    "numpy_ctypeslib": ("import numpy as np\nx = np.ctypeslib", 2, "'numpy.ctypeslib' is not available"),
    "numpy_lib_stride_tricks": ("import numpy as np\nx = np.lib.stride_tricks", 2, "'numpy.lib' is not available"),
    "numpy_sys_getframe": ("import numpy as np\nf = np.sys", 2, "'numpy.sys' is not available"),
    "pandas_io": ("import pandas as pd\nx = pd.io", 2, "'pandas.io' is not available"),
    "numpy_load_pickle": ("import numpy as np\nx = np.load('x.npy', allow_pickle=True)", 2, "'numpy.load'"),
    "pandas_read_pickle": ("import pandas as pd\nx = pd.read_pickle('x.pkl')", 2, "'pandas.read_pickle'"),
    "pandas_read_csv": ("import pandas as pd\nx = pd.read_csv('/etc/passwd')", 2, "'pandas.read_csv'"),
    "rng_ctypes": ("import numpy as np\nc = np.random.default_rng().bit_generator.ctypes", 2, "'bit_generator'"),
    "type_three_args": ("X = type('X', (), {})", 1, "'type' is not allowed"),
    "object_base": ("class X(object):\n    pass", 1, "'object' is not allowed"),
    "metaclass_keyword": ("class M:\n    pass\nclass X(metaclass=M):\n    pass", 3, "metaclass"),
    "derive_from_builtin": ("class D(dict):\n    pass", 1, "may not derive from dict"),
    "decorator_reaches_globals": (
        "@(lambda f: getattr(f, '__glo' + 'bals__'))\ndef f():\n    pass", 1, "'__globals__' is not allowed"
    ),
    "traceback_frame": ("try:\n    1 / 0\nexcept Exception as e:\n    t = e.__traceback__", 4, "__traceback__"),
    "traceback_getattr": (
        "try:\n    1 / 0\nexcept Exception as e:\n    t = getattr(e, '__traceback__')", 4, "'__traceback__' is not"
    ),
    "swallowed_violation": ("try:\n    getattr(1, '__class__')\nexcept:\n    pass", 2, "'__class__' is not allowed"),
    "overwrite_numpy": ("import numpy as np\nnp.mean = len", 2, "modifying a SimpleNamespace"),
    "patch_base_class": ("from see_strategy import BaseStrategy\nBaseStrategy.defaults = 1", 2, "modifying a type"),
    "fork_bomb": ("import os\nwhile True:\n    os.fork()", 1, "import of 'os'"),
    "print_to_file": ("print('x', file=open('/tmp/x', 'w'))", 1, "'open' is not allowed"),
}  # fmt: skip

RUN_TIME: dict[str, tuple[str, str]] = {
    "dataframe_to_csv": ("bars.to_csv('/tmp/stolen.csv')", "'to_csv' is not allowed"),
    "dataframe_to_pickle": ("bars.to_pickle('/tmp/x.pkl')", "'to_pickle' is not allowed"),
    "array_tofile": ("bars['close'].to_numpy().tofile('/tmp/x')", "'tofile' is not allowed"),
    "dataframe_eval": ("bars.eval('close.__class__')", "'eval' is not allowed"),
    "dataframe_query": ("bars.query('close > 0')", "'query' is not allowed"),
    "array_ctypes": ("p = bars['close'].to_numpy().ctypes", "'ctypes' is not allowed"),
    "type_mro": ("m = params.mro", "'mro' is not allowed"),
}


@pytest.mark.parametrize("name", sorted(MODULE_LEVEL))
def test_module_level_escape_is_refused_with_its_line(pool: SandboxPool, name: str) -> None:
    code, line, words = MODULE_LEVEL[name]
    with pytest.raises(StrategyLoadError) as refused:
        pool.load(code + "\n", {})
    assert f"line {line}:" in refused.value.message
    assert words in refused.value.message


@pytest.mark.parametrize("name", sorted(RUN_TIME))
def test_escape_inside_target_positions_is_refused_at_registration(pool: SandboxPool, name: str) -> None:
    body, words = RUN_TIME[name]
    with pytest.raises(StrategyLoadError) as refused:
        pool.load(strategy_with(body), {})
    assert "line 13: " in refused.value.message  # the first line of the body
    assert words in refused.value.message


def test_the_pool_works_after_every_refusal(pool: SandboxPool) -> None:
    with pytest.raises(StrategyLoadError):
        pool.load("x = getattr(1, '__class__')", {})
    assert pool.load(SMA_CROSS, {}).name == "SMA cross (user code)"


def test_code_must_define_exactly_one_strategy(pool: SandboxPool) -> None:
    with pytest.raises(StrategyLoadError, match="exactly one subclass of BaseStrategy"):
        pool.load("import numpy as np\nx = 1\n", {})
    two = SMA_CROSS + "\n\nclass Other(SmaCross):\n    pass\n"
    with pytest.raises(StrategyLoadError, match=r"found: SmaCross, Other"):
        pool.load(two, {})


def test_bad_target_positions_are_refused(pool: SandboxPool) -> None:
    with pytest.raises(StrategyLoadError, match="must return one of -1, 0 or 1"):
        pool.load(strategy_with("return np.full(len(bars), 2.0)"), {})
    with pytest.raises(StrategyLoadError, match="must return one of -1, 0 or 1"):
        pool.load(strategy_with("return np.zeros(3)"), {})
    with pytest.raises(StrategyLoadError, match="must return one of -1, 0 or 1"):
        pool.load(strategy_with("return np.full(len(bars), np.nan)"), {})


def test_user_errors_name_their_line(pool: SandboxPool) -> None:
    with pytest.raises(StrategyLoadError, match=r"line 13: ZeroDivisionError"):
        pool.load(strategy_with("x = 1 / 0"), {})
    with pytest.raises(StrategyLoadError, match=r"line 3: syntax error"):
        pool.load("x = 1\n\ndef (:\n", {})


def test_library_errors_do_not_show_server_paths() -> None:
    error = OSError(24, "Too many open files")
    error.filename = "/srv/see/.venv/lib/python3.11/site-packages/scipy"
    assert for_caller(str(error)) == "[Errno 24] Too many open files: '<path>'"
    assert for_caller("fast/slow ratio 1/2, x / y") == "fast/slow ratio 1/2, x / y"


def test_errors_quote_a_short_prefix_of_the_callers_text(pool: SandboxPool) -> None:
    with pytest.raises(StrategyLoadError) as caught:
        pool.load("y" * 100_000, {})
    message = str(caught.value)
    assert "y" * 41 not in message and "characters)" in message and len(message) < 200
    assert for_caller(for_caller(message)) == message


DECLARATION = """import numpy as np
from see_strategy import BaseStrategy, ParamSpec


class Declared(BaseStrategy):
    name = "declared"
    parameter_specs = ({specs},)

    def warmup_bars(self, params):
        return 1

    def target_positions(self, bars, params):
        return np.zeros(len(bars))
"""


@pytest.mark.parametrize(
    ("specs", "words"),
    [
        ('ParamSpec("p", "int", 12, min=2, max=500, step=0)', "parameter 'p': step must be above 0"),
        ('ParamSpec("p", "int", 12, min=2, max=500, step=-1)', "parameter 'p': step must be above 0"),
        ('ParamSpec("p", "int", 3, min=5, max=1)', "parameter 'p': min 5 is above max 1"),
        ('ParamSpec("p", "int", 1, min=5, max=10)', "parameter 'p': its default is not a valid value"),
        ('ParamSpec("p", "choice", "c", choices=("a", "b"))', "parameter 'p': its default is not a valid value"),
        ('ParamSpec("p", "choice", "a", choices=tuple("x" * 150 + str(i) for i in range(500)))', "its default is not"),
        (
            'ParamSpec("p", "choice", "x" * 150 + "0", choices=tuple("x" * 150 + str(i) for i in range(500)))',
            "declarations take",
        ),
    ],
)
def test_unusable_parameter_declarations_are_refused(pool: SandboxPool, specs: str, words: str) -> None:
    with pytest.raises(StrategyLoadError, match="line 1: ") as caught:
        pool.load(DECLARATION.format(specs=specs), {})
    assert words in str(caught.value)
