"""Online Elo exactly as the S2S-Arena paper (§4.1, eqs. 2–3): every model starts at 1000,
each vote in log order moves both models by K·(S − E) with K = 32. A tie scores 0.5."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field

INITIAL = 1000.0
K = 32.0

# The score of the model that played A, by outcome. Both-bad is a tie for rating purposes.
SCORE_A = {"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5}


def expected(r_a: float, r_b: float) -> float:
    """E_A = 1 / (1 + 10^((R_B − R_A) / 400))."""
    return 1.0 / (1.0 + 10.0 ** ((r_b - r_a) / 400.0))


@dataclass
class Record:
    rating: float = INITIAL
    wins: int = 0
    losses: int = 0
    ties: int = 0

    @property
    def matches(self) -> int:
        return self.wins + self.losses + self.ties

    @property
    def win_rate(self) -> float:
        """The paper's win rate: matches won over matches played (Table 4)."""
        return self.wins / self.matches if self.matches else 0.0


@dataclass
class OnlineElo:
    k: float = K
    initial: float = INITIAL
    records: dict[Hashable, Record] = field(default_factory=dict)

    def record(self, model: Hashable) -> Record:
        if model not in self.records:
            self.records[model] = Record(rating=self.initial)
        return self.records[model]

    def update(self, model_a: Hashable, model_b: Hashable, score_a: float) -> None:
        a, b = self.record(model_a), self.record(model_b)
        e_a = expected(a.rating, b.rating)
        delta = self.k * (score_a - e_a)
        a.rating += delta
        b.rating -= delta  # K·(S_B − E_B) with S_B = 1 − S_A and E_B = 1 − E_A
        if score_a == 1.0:
            a.wins += 1
            b.losses += 1
        elif score_a == 0.0:
            a.losses += 1
            b.wins += 1
        else:
            a.ties += 1
            b.ties += 1


def replay(
    model_a: Sequence[int],
    model_b: Sequence[int],
    score_a: Sequence[float],
    n_models: int,
    *,
    k: float = K,
    initial: float = INITIAL,
) -> list[float]:
    """Ratings after replaying votes given as parallel lists of model indices and A's score:
    the same update as `OnlineElo`, in a loop kept tight for millions of votes (0.25 µs each)."""
    ratings = [initial] * n_models
    for a, b, score in zip(model_a, model_b, score_a):
        ra, rb = ratings[a], ratings[b]
        delta = k * (score - 1.0 / (1.0 + 10.0 ** ((rb - ra) / 400.0)))
        ratings[a] = ra + delta
        ratings[b] = rb - delta
    return ratings


def online_elo(
    votes: Iterable[tuple[Hashable, Hashable, str]], *, k: float = K, initial: float = INITIAL
) -> dict[Hashable, Record]:
    """Ratings after replaying (model_a, model_b, outcome) votes in the order given."""
    elo = OnlineElo(k=k, initial=initial)
    for model_a, model_b, outcome in votes:
        elo.update(model_a, model_b, SCORE_A[outcome])
    return elo.records
