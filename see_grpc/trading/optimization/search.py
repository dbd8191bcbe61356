"""How the space is searched: GRID (every combination), RANDOM (seeded, without repeats) and BAYESIAN (optuna's
TPE, seeded). Each proposes parameter sets in batches and hears back their scores.

Parameter sets the strategy refuses as a whole (e.g. fast_period >= slow_period) are never proposed as trials:
`is_valid` screens them. Stepped ranges are searched as indices into their lattice, so every proposal lies on the
caller's steps exactly.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from see_grpc.trading.optimization.space import Dimension, SearchSpace

if TYPE_CHECKING:
    import optuna

METHODS = ("GRID", "RANDOM", "BAYESIAN")
# RANDOM and BAYESIAN give up after this many proposals per wanted trial that were refused or repeats: the
# space may hold fewer valid combinations than max_trials.
ATTEMPTS_PER_TRIAL = 50
# BAYESIAN proposes this many trials before it hears their scores: fixed (not the worker count) so a seed gives
# the same trials on every engine.
BAYESIAN_BATCH = 8

Validator = Callable[[dict[str, object]], bool]


@dataclass(frozen=True)
class Candidate:
    number: int
    params: dict[str, object]


class Search(Protocol):
    total: int  # trials it plans (GRID: exact; RANDOM/BAYESIAN: max_trials or the space's size if smaller, fewer
    # when the space runs out of new valid combinations)

    def ask(self, count: int) -> list[Candidate]:
        """The next batch, to be scored and told before the next ask: up to count new candidates (BAYESIAN: up
        to BAYESIAN_BATCH whatever count is); [] when the search is over."""

    def tell(self, scores: Sequence[tuple[Candidate, float | None]]) -> None:
        """Scores of asked candidates (higher is better); None for a trial that must not guide the search
        (it broke a constraint)."""


class GridSearch:
    def __init__(self, space: SearchSpace, is_valid: Validator) -> None:
        combos = [params for params in space.grid() if is_valid(params)]
        self.total = len(combos)
        self._next: Iterator[Candidate] = (Candidate(i, p) for i, p in enumerate(combos))

    def ask(self, count: int) -> list[Candidate]:
        return [candidate for _, candidate in zip(range(count), self._next, strict=False)]

    def tell(self, scores: Sequence[tuple[Candidate, float | None]]) -> None:
        """The grid does not learn."""


class _Proposer:
    """Shared by RANDOM and BAYESIAN: numbering, the attempt budget and de-duplication."""

    def __init__(self, space: SearchSpace, max_trials: int, is_valid: Validator) -> None:
        # No more than the space's combinations (before is_valid screens them): asking a sampler for more only
        # spends the whole attempt budget on repeats, minutes of TPE proposals for nothing.
        self.total = int(min(max_trials, space.size))
        self._is_valid = is_valid
        self._seen: set[tuple[tuple[str, object], ...]] = set()
        self._attempts_left = ATTEMPTS_PER_TRIAL * self.total

    def _accept(self, params: dict[str, object]) -> Candidate | None:
        """The next candidate, or None when params is a repeat or refused (which spends an attempt)."""
        self._attempts_left -= 1
        key = tuple(sorted(params.items()))
        if key in self._seen or not self._is_valid(params):
            return None
        self._seen.add(key)
        return Candidate(len(self._seen) - 1, params)

    def _open(self) -> bool:
        if self._attempts_left <= 0 and len(self._seen) < self.total:
            self.total = len(self._seen)  # the space ran out of new valid combinations
        return len(self._seen) < self.total


class RandomSearch(_Proposer):
    def __init__(self, space: SearchSpace, max_trials: int, seed: int, is_valid: Validator) -> None:
        super().__init__(space, max_trials, is_valid)
        self._dimensions = space.dimensions
        self._rng = np.random.default_rng(seed)

    def ask(self, count: int) -> list[Candidate]:
        batch: list[Candidate] = []
        while len(batch) < count and self._open():
            params = {d.name: _random_value(d, self._rng) for d in self._dimensions}
            candidate = self._accept(params)
            if candidate is not None:
                batch.append(candidate)
        return batch

    def tell(self, scores: Sequence[tuple[Candidate, float | None]]) -> None:
        """Random search does not learn."""


@dataclass(frozen=True)
class Proposal:
    asks: int  # of the sampler this took: the repeats before it, and itself
    trial: int | None  # its number in the study; None when every ask allowed was a repeat
    params: dict[str, object]


class Study(Protocol):
    """A seeded TPE study of the space's dimensions, by trial number: where it runs is the caller's choice."""

    def propose(self, asks: int) -> Proposal:
        """Values not proposed before, asking the sampler at most `asks` times (at least once)."""

    def tell(self, scores: Sequence[tuple[int, float | None]]) -> None:
        """Scores of proposed trials; None (or not finite) for a trial that must not guide the study."""


StudyFactory = Callable[[Sequence[Dimension], int], Study]  # (dimensions, seed) -> a new study


class TpeStudy:
    """optuna's TPE sampler (seeded) through its ask-and-tell interface.

    The sampler repeats itself often once a small space is mostly tried (1,500 asks for 22 new trials of a
    30-combination space): repeats are told as failed here, so a study in another process answers each proposal in
    one round trip, not hundreds."""

    def __init__(self, dimensions: Sequence[Dimension], seed: int) -> None:
        import optuna  # noqa: PLC0415 - with its dependencies about a second to import: only searches that use it

        optuna.logging.set_verbosity(logging.WARNING)  # one INFO line per trial otherwise
        self._dimensions = tuple(dimensions)
        self._study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
        self._pending: dict[int, optuna.trial.Trial] = {}
        self._proposed: set[tuple[tuple[str, object], ...]] = set()
        self._failed = optuna.trial.TrialState.FAIL

    def propose(self, asks: int) -> Proposal:
        for asked in range(1, max(asks, 1) + 1):
            trial = self._study.ask()
            params = {d.name: _suggest(trial, d) for d in self._dimensions}
            key = tuple(sorted(params.items()))
            if key not in self._proposed:
                self._proposed.add(key)
                self._pending[trial.number] = trial
                return Proposal(asked, trial.number, params)
            self._study.tell(trial, state=self._failed)
        return Proposal(asked, None, {})

    def tell(self, scores: Sequence[tuple[int, float | None]]) -> None:
        for number, score in scores:
            trial = self._pending.pop(number)
            if score is None or not math.isfinite(score):
                self._study.tell(trial, state=self._failed)  # TPE learns only from scored trials
            else:
                self._study.tell(trial, score)


class BayesianSearch(_Proposer):
    """Proposals of a TPE study (a TpeStudy here, or one in another process), screened by the strategy."""

    def __init__(
        self, space: SearchSpace, max_trials: int, seed: int, is_valid: Validator, studies: StudyFactory = TpeStudy
    ) -> None:
        super().__init__(space, max_trials, is_valid)
        self._study = studies(space.dimensions, seed)
        self._pending: dict[int, int] = {}  # candidate number -> its trial number in the study

    def ask(self, count: int) -> list[Candidate]:
        batch: list[Candidate] = []
        # A fixed batch, whatever the caller's count (its worker count), so a seed proposes the same trials anywhere.
        while len(batch) < BAYESIAN_BATCH and self._open():
            proposal = self._study.propose(self._attempts_left)
            self._attempts_left -= proposal.asks - 1  # the repeats; _accept spends the last ask
            if proposal.trial is None:
                self._attempts_left -= 1
                continue
            candidate = self._accept(proposal.params)
            if candidate is None:
                self._study.tell([(proposal.trial, None)])
                continue
            self._pending[candidate.number] = proposal.trial
            batch.append(candidate)
        return batch

    def tell(self, scores: Sequence[tuple[Candidate, float | None]]) -> None:
        self._study.tell([(self._pending.pop(candidate.number), score) for candidate, score in scores])


def make_search(
    method: str,
    space: SearchSpace,
    *,
    max_trials: int,
    seed: int,
    is_valid: Validator,
    studies: StudyFactory = TpeStudy,
) -> Search:
    """`studies` opens the study of a BAYESIAN search."""
    if method == "GRID":
        return GridSearch(space, is_valid)
    if method == "RANDOM":
        return RandomSearch(space, max_trials, seed, is_valid)
    return BayesianSearch(space, max_trials, seed, is_valid, studies)


def _random_value(dimension: Dimension, rng: np.random.Generator) -> object:
    if dimension.choices:
        return dimension.choices[int(rng.integers(len(dimension.choices)))]
    if dimension.step is None:
        return float(rng.uniform(dimension.low, dimension.high))
    return dimension.value_at(int(rng.integers(int(dimension.size))))


def _suggest(trial: optuna.trial.Trial, dimension: Dimension) -> object:
    if dimension.choices:
        index = trial.suggest_categorical(dimension.name, list(range(len(dimension.choices))))
        return dimension.choices[index]
    if dimension.step is None:
        return trial.suggest_float(dimension.name, dimension.low, dimension.high)
    return dimension.value_at(trial.suggest_int(dimension.name, 0, int(dimension.size) - 1))
