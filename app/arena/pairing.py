"""Which two models the next rater hears. Pure code: ratings in, a pair out."""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Sequence

Pair = tuple[Hashable, Hashable]


def uniform_weights(pairs: Sequence[Pair], ratings: dict[Hashable, float]) -> list[float]:
    return [1.0] * len(pairs)


def elo_gap_weights(pairs: Sequence[Pair], ratings: dict[Hashable, float]) -> list[float]:
    """The S2S-Arena paper's eq. 1: w_ij = exp(−(Δ_ij − μ)² / 2σ²), with Δ_ij the Elo gap,
    μ a third of the largest gap among the candidate pairs and σ = max(μ/2, 1)."""
    gaps = [abs(ratings.get(a, 1000.0) - ratings.get(b, 1000.0)) for a, b in pairs]
    if not gaps:
        return []
    mu = max(gaps) / 3.0
    sigma = max(mu / 2.0, 1.0)
    return [math.exp(-((gap - mu) ** 2) / (2.0 * sigma**2)) for gap in gaps]


STRATEGIES = {"uniform": uniform_weights, "elo_gap": elo_gap_weights}


def choose_pair(
    pairs: Sequence[Pair], ratings: dict[Hashable, float], strategy: str, rng: random.Random
) -> Pair:
    """Sample one candidate pair proportionally to its strategy weight."""
    if not pairs:
        raise ValueError("no candidate pairs")
    weights = STRATEGIES[strategy](pairs, ratings)
    if sum(weights) <= 0:
        weights = [1.0] * len(pairs)
    return rng.choices(list(pairs), weights=weights, k=1)[0]
