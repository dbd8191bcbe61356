"""Search spaces (grid counts, steps, choices, bounds) and the samplers' determinism."""

from __future__ import annotations

import itertools

import pytest

from see_grpc.errors import InvalidArgumentError
from see_grpc.trading.optimization.search import BayesianSearch, GridSearch, RandomSearch, make_search
from see_grpc.trading.optimization.space import MAX_COMBINATIONS, RangeRequest, build_space
from see_grpc.trading.strategies import BUILTIN_STRATEGIES
from see_grpc.trading.strategies.base import ParamSpec

pytestmark = pytest.mark.unit

SPECS = (
    ParamSpec("n", "int", 5, min=2, max=50, step=1),
    ParamSpec("x", "float", 1.0, min=0.0, max=3.0, step=0.5),
    ParamSpec("on", "bool", False),
    ParamSpec("mode", "choice", "a", choices=("a", "b", "c")),
)


def everything(params: dict[str, object]) -> bool:
    return True


def test_declared_space_counts_every_value() -> None:
    space = build_space(SPECS, [])
    # n: 2..50 (49 values), x: 0, 0.5 .. 3 (7), on: 2, mode: 3
    assert space.size == 49 * 7 * 2 * 3
    assert len(list(space.grid())) == 49 * 7 * 2 * 3


def test_requested_steps_and_choices_are_listed_exactly_in_grid_order() -> None:
    space = build_space(SPECS, [RangeRequest("x", min=0.5, max=1.0, step=0.1), RangeRequest("n", choices=(3, 9))])
    grid = list(space.grid())
    xs = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert grid == [{"x": x, "n": n} for x, n in itertools.product(xs, (3, 9))]
    assert all(isinstance(p["n"], int) for p in grid)


def test_int_range_defaults_to_step_one_and_keeps_its_type() -> None:
    space = build_space(SPECS, [RangeRequest("n", min=10, max=14)])
    assert [p["n"] for p in space.grid()] == [10, 11, 12, 13, 14]
    assert build_space(SPECS, [RangeRequest("n", min=10, max=20, step=4)]).dimensions[0].values() == (10, 14, 18)


@pytest.mark.parametrize(
    ("ranges", "field"),
    [
        ([RangeRequest("n", min=1, max=10)], "space[0].min"),  # below the declared min 2
        ([RangeRequest("n", min=2, max=99)], "space[0].max"),  # above the declared max 50
        ([RangeRequest("n", min=9, max=3)], "space[0].min"),
        ([RangeRequest("n", min=2, max=9, step=0)], "space[0].step"),
        ([RangeRequest("n", min=2, max=9, step=1.5)], "space[0].step"),
        ([RangeRequest("mode", choices=("z",))], "space[0].choices"),
        ([RangeRequest("x"), RangeRequest("zz")], "space[1].name"),
        ([RangeRequest("n"), RangeRequest("n")], "space"),
    ],
)
def test_bad_ranges_name_the_field(ranges: list[RangeRequest], field: str) -> None:
    with pytest.raises(InvalidArgumentError) as error:
        build_space(SPECS, ranges)
    assert error.value.violations[0].field == field


def test_grid_cap_says_how_large_it_was() -> None:
    specs = BUILTIN_STRATEGIES["trend_following_v1"].parameter_specs  # fast 2..500, slow 3..2000
    space = build_space(specs, [])
    with pytest.raises(
        InvalidArgumentError, match=f"{499 * 1998:,} combinations, more than the {MAX_COMBINATIONS:,} allowed"
    ):
        GridSearch(space, everything)


def test_continuous_float_cannot_be_a_grid_but_can_be_sampled() -> None:
    specs = (ParamSpec("x", "float", 1.0, min=0.0, max=1.0),)
    space = build_space(specs, [])
    with pytest.raises(InvalidArgumentError, match="no step"):
        GridSearch(space, everything)
    values = [c.params["x"] for c in RandomSearch(space, 20, 1, everything).ask(20)]
    assert len(set(values)) == 20 and all(0.0 <= v <= 1.0 for v in values)  # type: ignore[operator]


def test_grid_skips_combinations_the_strategy_refuses() -> None:
    space = build_space(SPECS, [RangeRequest("n", min=2, max=6)])
    search = GridSearch(space, lambda p: p["n"] != 4)
    assert search.total == 4
    assert [c.params["n"] for c in search.ask(100)] == [2, 3, 5, 6]
    assert [c.number for c in search.ask(100)] == []


def made_up_score(params: dict[str, object]) -> float:
    """Best at n=20, x=2, mode b."""
    n, x = params["n"], params["x"]
    assert isinstance(n, int) and isinstance(x, float)
    return -abs(n - 20) - abs(x - 2) + (params["mode"] == "b")


@pytest.mark.parametrize("method", ["RANDOM", "BAYESIAN"])
def test_samplers_repeat_with_a_seed_and_never_repeat_a_trial(method: str) -> None:
    space = build_space(SPECS, [RangeRequest("n", min=2, max=30), RangeRequest("x"), RangeRequest("mode")])

    def run(seed: int) -> list[dict[str, object]]:
        search = make_search(method, space, max_trials=30, seed=seed, is_valid=everything)
        proposed = []
        while batch := search.ask(7):
            proposed += [c.params for c in batch]
            search.tell([(c, made_up_score(c.params)) for c in batch])
        return proposed

    first = run(3)
    assert len(first) == 30
    assert len({tuple(sorted(p.items())) for p in first}) == 30
    assert all(2 <= p["n"] <= 30 and p["x"] in (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0) for p in first)  # type: ignore[operator]
    assert run(3) == first
    assert run(4) != first


def test_random_search_stops_when_the_space_runs_out() -> None:
    space = build_space(SPECS, [RangeRequest("mode"), RangeRequest("on")])  # 3 x 2 = 6 combinations
    search = RandomSearch(space, 50, 0, everything)
    proposed = search.ask(100)
    assert sorted((c.params["mode"], c.params["on"]) for c in proposed) == sorted(
        itertools.product("abc", (False, True))
    )
    assert search.ask(100) == [] and search.total == 6


def test_bayesian_batches_do_not_depend_on_the_callers_count() -> None:
    space = build_space(SPECS, [RangeRequest("n")])
    assert len(BayesianSearch(space, 30, 0, everything).ask(1000)) == 8
