"""Which two models the next rater hears. Pure code: a pairing state in, a pair out.

Every strategy maps the candidate pairs and a `PairingState` to one non-negative weight per pair;
`choose_pair` samples a pair proportionally to those weights. `STRATEGIES` holds them by name.

- "uniform": every candidate pair is equally likely.
- "elo_gap": the S2S-Arena paper's eq. 1 on the current ratings.
- "uncertainty": spends votes where the order of two models is still in doubt and on models whose
  rating is still loose (new or under-voted), keeps auditing pairs that look settled, and has a
  uniform floor; see `uncertainty_weights`.

`benchmarks/pairing_simulation.py` measures how many votes each needs to recover a known order.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field

Model = Hashable
Pair = tuple[Model, Model]

DEFAULT_RATING = 1000.0  # a model with no rating yet sits at the centre of the scale
ELO_PER_NAT = 400.0 / math.log(10.0)  # Elo points per unit of Bradley–Terry log-strength
UNKNOWN_SPREAD = 200.0  # Elo sd assumed for a model whose spread is unknown (and the cap on any)
EXPLORATION = 0.1  # share of the "uncertainty" weight spread evenly over all candidate pairs
AUDIT = 0.05  # "uncertainty": weight kept on pairs that look settled (see uncertainty_weights)


@dataclass(frozen=True)
class PairingState:
    """What the strategies may read. Every field is optional per model.

    ratings: Elo-scale rating (missing: DEFAULT_RATING).
    spread: standard deviation of the rating, in Elo points, e.g. over bootstrap rounds
        (missing or not finite: unknown, i.e. UNKNOWN_SPREAD).
    votes: votes the model has taken part in (missing: unknown; 0: a new model).
    pair_votes: votes between two models, one entry per unordered pair, either orientation.
    """

    ratings: Mapping[Model, float] = field(default_factory=dict)
    spread: Mapping[Model, float] = field(default_factory=dict)
    votes: Mapping[Model, int] = field(default_factory=dict)
    pair_votes: Mapping[Pair, int] = field(default_factory=dict)

    def rating(self, model: Model) -> float:
        value = self.ratings.get(model, DEFAULT_RATING)
        return float(value) if _finite(value) else DEFAULT_RATING

    def sd(self, model: Model) -> float:
        """The rating's sd in Elo points, never above UNKNOWN_SPREAD and never below what the
        model's own vote count allows: n votes carry at most n/4 units of Fisher information
        about its log-strength, so sd ≥ ELO_PER_NAT · 2/√n (n = 0: unknown). With a vote count
        but no spread, that bound serves as the estimate."""
        given = self.spread.get(model)
        n = self.votes.get(model)
        bound = None if n is None else ELO_PER_NAT * 2.0 / math.sqrt(n) if n > 0 else UNKNOWN_SPREAD
        if given is None or not _finite(given) or given < 0:
            sd = UNKNOWN_SPREAD if bound is None else bound  # votes alone: the bound as estimate
        else:
            sd = max(float(given), bound or 0.0)
        return min(sd, UNKNOWN_SPREAD)

    def between(self, a: Model, b: Model) -> int:
        return int(self.pair_votes.get((a, b), self.pair_votes.get((b, a), 0)))


def _finite(value: object) -> bool:
    try:
        return math.isfinite(value)  # type: ignore[arg-type]
    except TypeError:
        return False


def uniform_weights(pairs: Sequence[Pair], state: PairingState) -> list[float]:
    return [1.0] * len(pairs)


def elo_gap_weights(pairs: Sequence[Pair], state: PairingState) -> list[float]:
    """The S2S-Arena paper's eq. 1: w_ij = exp(−(Δ_ij − μ)² / 2σ²), with Δ_ij the Elo gap,
    μ a third of the largest gap among the candidate pairs and σ = max(μ/2, 1)."""
    gaps = [abs(state.rating(a) - state.rating(b)) for a, b in pairs]
    if not gaps:
        return []
    mu = max(gaps) / 3.0
    sigma = max(mu / 2.0, 1.0)
    return [math.exp(-((gap - mu) ** 2) / (2.0 * sigma**2)) for gap in gaps]


def uncertainty_weights(
    pairs: Sequence[Pair],
    state: PairingState,
    *,
    audit: float = AUDIT,
    exploration: float = EXPLORATION,
) -> list[float]:
    """Weight ∝ (P(the pair's current order is wrong) + AUDIT) × how much one more vote would
    shrink the standard error of the pair's rating difference; plus an even floor.

    For a pair (i, j), in log-strength units: d = (r_i − r_j) / ELO_PER_NAT is the estimated
    difference and v its variance, approximated as sd_i² + sd_j² (the bootstrap spreads, with
    the bounds of `PairingState.sd`) and no more than 1 / (n_ij · p(1 − p)), the variance left
    by the n_ij direct votes alone. Under a normal approximation:

    - P(order wrong) = Φ(−|d| / √v): near ½ while the two intervals overlap, ≈ 0 once they are
      well apart. This is what spends votes on the ranking's open questions.
    - One vote, won with probability p = σ(d), adds Fisher information p(1 − p) about d, so the
      standard error shrinks from √v to 1/√(1/v + p(1 − p)). The shrinkage is largest for loose
      ratings (new and under-voted models) and close pairs, and small for a pair so close and so
      well measured that no realistic number of votes would settle it — Kendall τ forgives
      those. This is Chatbot Arena's active-sampling rule (Chiang et al. 2024, "Chatbot Arena:
      An Open Platform for Evaluating LLMs by Human Preference", §5: sample a pair ∝ the
      expected shrinkage of its interval from one more vote).
    - Weighting it by P(order wrong) focuses it on the ranking, as in active ranking from
      pairwise comparisons (Heckel, Shah, Ramchandran & Wainwright 2019, Annals of Statistics
      47(6)), which keeps comparing items whose intervals still overlap.
    - AUDIT keeps measuring pairs that look settled, in proportion to their shrinkage. Without
      it the allocation selects on its own noise: a gap that happens to be overestimated looks
      settled and stops getting votes, one underestimated gets votes until corrected, so the
      fitted scale stretches (in the benchmark 6–8% beyond the truth) and 95% bootstrap
      intervals, which take the design as fixed, cover only ~90%. With the true gaps in
      P(order wrong) the stretch vanishes, which pins the cause. AUDIT = 0.05 brings coverage
      back to that of uniform pairing (~94–95%) at the price of part of the saving; AUDIT = 0
      saves more votes and under-covers. The benchmark's --ablation shows both.
    - A share `exploration` of the total weight is spread evenly, so every candidate pair keeps
      a chance whatever the state says. A new model (spread UNKNOWN_SPREAD) is taken up at once
      by both factors.

    benchmarks/pairing_simulation.py measures the votes it saves against "uniform" and the
    coverage of the intervals; see benchmarks/results/pairing_simulation.json.
    """
    if not pairs:
        return []
    raw = []
    for a, b in pairs:
        if a == b:
            raw.append(0.0)
            continue
        d = (state.rating(a) - state.rating(b)) / ELO_PER_NAT
        p = 1.0 / (1.0 + math.exp(-max(min(d, 50.0), -50.0)))
        info = p * (1.0 - p)
        v = (state.sd(a) ** 2 + state.sd(b) ** 2) / ELO_PER_NAT**2
        n = state.between(a, b)
        if n > 0 and info > 0:
            v = min(v, 1.0 / (n * info))
        if not v > 0:
            raw.append(0.0)
            continue
        wrong = 0.5 * math.erfc(abs(d) / math.sqrt(2.0 * v))
        grown = math.sqrt(1.0 + v * info)  # √v − 1/√(1/v + info), without the cancellation:
        shrinkage = math.sqrt(v) * v * info / (grown * (grown + 1.0))
        raw.append((wrong + audit) * shrinkage)
    total = sum(raw)
    if not total > 0 or not math.isfinite(total):
        return [1.0] * len(pairs)
    floor = exploration / len(pairs)
    return [(1.0 - exploration) * w / total + floor for w in raw]


Strategy = Callable[[Sequence[Pair], PairingState], list[float]]

STRATEGIES: dict[str, Strategy] = {
    "uniform": uniform_weights,
    "elo_gap": elo_gap_weights,
    "uncertainty": uncertainty_weights,
}


def pair_weights(pairs: Sequence[Pair], state: PairingState, strategy: str) -> list[float]:
    """The strategy's weights, made safe to sample from: a pair of a model with itself, a
    negative or a non-finite weight counts as 0, and all-zero weights fall back to uniform over
    the proper pairs."""
    weights = STRATEGIES[strategy](pairs, state)
    safe = [
        float(w) if a != b and _finite(w) and w > 0 else 0.0
        for (a, b), w in zip(pairs, weights, strict=True)
    ]
    if sum(safe) > 0:
        return safe
    return [1.0 if a != b else 0.0 for a, b in pairs]


def choose_pair(
    pairs: Sequence[Pair], state: PairingState, strategy: str, rng: random.Random
) -> Pair:
    """Sample one candidate pair proportionally to its strategy weight."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown pairing strategy {strategy!r}")
    pairs = list(pairs)
    weights = pair_weights(pairs, state, strategy) if pairs else []
    if not any(weights):
        raise ValueError("no candidate pairs of two different models")
    return rng.choices(pairs, weights=weights, k=1)[0]
