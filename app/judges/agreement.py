"""Agreement between raters: judge vs human, human vs human, many humans per item. Pure numbers.

- Cohen's kappa (Cohen 1960), κ = (p_o − p_e) / (1 − p_e): S2S-Arena Table 3 reports it with the
  observed agreement p_o for each audio-LLM judge against humans (Gemini 2.5 Pro κ = 0.6553,
  82.87%).
- Pearson's r with a Fisher-z and a bootstrap interval: ParaS2S Tables 2 and 7 report it between
  the pipeline judge's 1–5 scores and the human experts' (0.773 over all categories).
- Fleiss' kappa (Fleiss 1971) for several raters per item, the raters possibly different from
  item to item (a crowd, as in CREMA-D), and the mean pairwise Cohen's kappa (Light 1971) for a
  fixed panel of named raters.
- The first-position win rate of a pairwise judge, with a Wilson interval and an exact binomial
  test against ½: a judge that favours whichever response it hears first has position bias.

Labels are any hashable values, compared by equality; a label only one rater uses is a category
like any other. Bootstrap intervals are percentile intervals over items, seeded, so the same data
and seed give the same interval bit for bit.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.stats

DEFAULT_ROUNDS = 1000
DEFAULT_LEVEL = 0.95
_CHUNK_ELEMENTS = 4_000_000  # resampled indices held at once by the Pearson bootstrap


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    level: float
    method: str
    note: str | None = None

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Kappa:
    """A chance-corrected agreement κ = (observed − expected) / (1 − expected).

    `kappa` is nan when `expected` is 1 (every rating is the same label, so chance explains all
    agreement and κ is 0/0); `undefined` then says so.
    """

    n_items: int
    observed: float
    expected: float
    kappa: float
    undefined: str | None = None


def _kappa(n_items: int, observed: float, expected: float, *, certain: bool) -> Kappa:
    if certain:
        return Kappa(n_items, observed, expected, math.nan,
                     undefined="expected agreement is 1: every rating is the same label")
    return Kappa(n_items, observed, expected, (observed - expected) / (1.0 - expected))


def _percentile_interval(samples: np.ndarray, level: float, method: str) -> Interval:
    """The central `level` share of the finite samples; nan bounds when there are none."""
    finite = samples[np.isfinite(samples)]
    dropped = samples.size - finite.size
    note = f"{dropped} of {samples.size} rounds undefined and left out" if dropped else None
    if finite.size == 0:
        return Interval(math.nan, math.nan, level, method, note)
    low, high = np.quantile(finite, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return Interval(float(low), float(high), level, method, note)


# --- two raters: Cohen's kappa -------------------------------------------------------------------


def confusion_matrix(a: Sequence[Hashable], b: Sequence[Hashable]
                     ) -> tuple[np.ndarray, tuple[Hashable, ...]]:
    """Counts C[i, j] of items rater a labelled labels[i] and rater b labels[j]. Labels are in
    order of first appearance (a's labels, then b's), so they need not be sortable."""
    if len(a) != len(b):
        raise ValueError(f"the raters label different numbers of items: {len(a)} and {len(b)}")
    if not a:
        raise ValueError("no items")
    labels = tuple(dict.fromkeys([*a, *b]))
    index = {label: i for i, label in enumerate(labels)}
    k = len(labels)
    cells = np.fromiter((index[x] * k + index[y] for x, y in zip(a, b)), dtype=np.int64,
                        count=len(a))
    return np.bincount(cells, minlength=k * k).reshape(k, k), labels


def _kappa_terms(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Agreeing items, Σ_k rows_k·cols_k and n, over the last two axes of (…, k, k) counts.
    p_o = agree / n and p_e = Σ_k rows_k·cols_k / n² (Cohen 1960); integer sums, so p_e = 1 is
    found exactly."""
    agree = np.trace(counts, axis1=-2, axis2=-1)
    chance = (counts.sum(axis=-1) * counts.sum(axis=-2)).sum(axis=-1)
    return agree, chance, counts.sum(axis=(-2, -1))


def observed_agreement(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """p_o: the share of items on which the two raters give the same label."""
    return cohen_kappa(a, b).observed


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> Kappa:
    """Cohen's (1960) kappa of two raters over the same items, a[i] and b[i] for item i."""
    counts, _ = confusion_matrix(a, b)
    agree, chance, n = (int(value) for value in _kappa_terms(counts))
    return _kappa(n, agree / n, chance / n**2, certain=chance == n * n)


@dataclass(frozen=True)
class KappaIntervals:
    kappa: Interval
    observed: Interval


def cohen_kappa_bootstrap(
    a: Sequence[Hashable], b: Sequence[Hashable], *,
    rounds: int = DEFAULT_ROUNDS, seed: int = 0, level: float = DEFAULT_LEVEL,
) -> KappaIntervals:
    """Percentile bootstrap intervals over items for κ and p_o.

    Resampling n items with replacement draws the confusion matrix from a multinomial with the
    observed cell shares, so each round costs O(labels²), not O(items)."""
    counts, _ = confusion_matrix(a, b)
    n, k = int(counts.sum()), counts.shape[0]
    draws = np.random.default_rng(seed).multinomial(n, counts.ravel() / n, size=rounds)
    agree, chance, _ = _kappa_terms(draws.reshape(rounds, k, k))
    observed, expected = agree / n, chance / n**2
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(chance < n * n, (observed - expected) / (1.0 - expected), np.nan)
    return KappaIntervals(_percentile_interval(kappa, level, "bootstrap"),
                          _percentile_interval(observed, level, "bootstrap"))


# --- scores: Pearson's r -------------------------------------------------------------------------


@dataclass(frozen=True)
class Correlation:
    n: int
    r: float
    p_value: float
    fisher: Interval
    bootstrap: Interval


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """r = Σ(x − x̄)(y − ȳ) / √(Σ(x − x̄)² Σ(y − ȳ)²) along the last axis; nan if one is flat."""
    dx = x - x.mean(axis=-1, keepdims=True)
    dy = y - y.mean(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (dx * dy).sum(axis=-1) / np.sqrt((dx * dx).sum(axis=-1) * (dy * dy).sum(axis=-1))
    return np.clip(r, -1.0, 1.0)


def _paired(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xs.ndim != 1 or xs.shape != ys.shape:
        raise ValueError(f"need two equally long 1-d score arrays, got {xs.shape} and {ys.shape}")
    if xs.size < 3:
        raise ValueError("Pearson's r needs at least 3 pairs")
    return xs, ys


def pearson(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Pearson's r and its two-sided p-value under H0: ρ = 0, from t = r√((n−2)/(1−r²)) with
    n − 2 degrees of freedom (the usual t test of r, exact for bivariate normal data). r is nan
    when either variable is constant."""
    xs, ys = _paired(x, y)
    r = float(_pearson_rows(xs, ys))
    if math.isnan(r):
        return r, math.nan
    df = xs.size - 2
    if abs(r) == 1.0:
        return r, 0.0
    t = r * math.sqrt(df / (1.0 - r * r))
    return r, float(2.0 * scipy.stats.t.sf(abs(t), df))


def fisher_interval(r: float, n: int, level: float = DEFAULT_LEVEL) -> Interval:
    """tanh(atanh(r) ± z_{(1+level)/2} / √(n − 3)) (Fisher 1921); needs n > 3."""
    if n <= 3 or math.isnan(r):
        return Interval(math.nan, math.nan, level, "fisher-z", "needs n > 3 and a defined r")
    z = math.atanh(r) if abs(r) < 1.0 else math.copysign(math.inf, r)
    half = float(scipy.stats.norm.ppf((1.0 + level) / 2.0)) / math.sqrt(n - 3)
    return Interval(math.tanh(z - half), math.tanh(z + half), level, "fisher-z")


def pearson_bootstrap(
    x: Sequence[float], y: Sequence[float], *,
    rounds: int = DEFAULT_ROUNDS, seed: int = 0, level: float = DEFAULT_LEVEL,
) -> Interval:
    """Percentile bootstrap interval for r, resampling (x, y) pairs with replacement."""
    xs, ys = _paired(x, y)
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _CHUNK_ELEMENTS // xs.size)
    samples = []
    for start in range(0, rounds, per_chunk):
        rows = rng.integers(0, xs.size, size=(min(per_chunk, rounds - start), xs.size))
        samples.append(_pearson_rows(xs[rows], ys[rows]))
    return _percentile_interval(np.concatenate(samples), level, "bootstrap")


def correlation(
    x: Sequence[float], y: Sequence[float], *,
    rounds: int = DEFAULT_ROUNDS, seed: int = 0, level: float = DEFAULT_LEVEL,
) -> Correlation:
    """Pearson's r of two raters' scores over the same items, with both intervals."""
    r, p_value = pearson(x, y)
    return Correlation(len(x), r, p_value, fisher_interval(r, len(x), level),
                       pearson_bootstrap(x, y, rounds=rounds, seed=seed, level=level))


# --- many raters ---------------------------------------------------------------------------------


def rating_counts(items: Iterable[Iterable[Hashable]]
                  ) -> tuple[np.ndarray, tuple[Hashable, ...]]:
    """The (items × labels) matrix n_ij of how many raters put item i in label j, from each
    item's list of labels; labels in order of first appearance."""
    per_item = [list(labels) for labels in items]
    labels = tuple(dict.fromkeys(label for item in per_item for label in item))
    index = {label: j for j, label in enumerate(labels)}
    counts = np.zeros((len(per_item), len(labels)), dtype=np.int64)
    for i, item in enumerate(per_item):
        for label in item:
            counts[i, index[label]] += 1
    return counts, labels


def fleiss_kappa(counts: np.ndarray | Sequence[Sequence[int]]) -> Kappa:
    """Fleiss' (1971) kappa from n_ij, the number of the m raters of item i who chose label j.

    P_i = (Σ_j n_ij² − m) / (m(m − 1)), observed = mean P_i; p_j = Σ_i n_ij / (N m),
    expected = Σ_j p_j² (Fleiss 1971). Every item needs the same number of ratings m ≥ 2.
    """
    n_ij = np.asarray(counts, dtype=np.int64)
    if n_ij.ndim != 2 or n_ij.shape[0] == 0 or (n_ij < 0).any():
        raise ValueError("need a non-empty (items × labels) matrix of non-negative counts")
    raters = n_ij.sum(axis=1)
    m = int(raters[0])
    if (raters != m).any() or m < 2:
        raise ValueError("Fleiss' kappa needs the same number (≥ 2) of ratings for every item")
    n_items = n_ij.shape[0]
    observed = float(((n_ij * n_ij).sum(axis=1) - m).sum() / (n_items * m * (m - 1)))
    totals = n_ij.sum(axis=0)
    expected = float((totals * totals).sum() / (n_items * m) ** 2)
    return _kappa(n_items, observed, expected, certain=int(totals.max()) == n_items * m)


@dataclass(frozen=True)
class PairwiseKappa:
    """Mean of Cohen's kappa over pairs of raters (Light 1971), each pair on its shared items."""

    mean: float
    pairs: dict[tuple[Hashable, Hashable], Kappa]
    skipped: int  # pairs with too few shared items or an undefined kappa


def mean_pairwise_kappa(ratings: Mapping[Hashable, Mapping[Hashable, Hashable]], *,
                        min_shared: int = 2) -> PairwiseKappa:
    """Light's kappa: the mean Cohen's kappa over all pairs of raters, `ratings[rater][item]`
    giving each rater's label per item. For raters who did not all rate every item, each pair
    is scored on the items both rated (at least `min_shared`); pairs with too few shared items
    or an undefined kappa are left out of the mean and counted in `skipped`."""
    pairs: dict[tuple[Hashable, Hashable], Kappa] = {}
    skipped = 0
    for first, second in itertools.combinations(ratings, 2):
        shared = [item for item in ratings[first] if item in ratings[second]]
        kappa = (cohen_kappa([ratings[first][i] for i in shared],
                             [ratings[second][i] for i in shared])
                 if len(shared) >= min_shared else None)
        if kappa is None or kappa.undefined:
            skipped += 1
            continue
        pairs[first, second] = kappa
    mean = float(np.mean([k.kappa for k in pairs.values()])) if pairs else math.nan
    return PairwiseKappa(mean, pairs, skipped)


# --- position bias -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proportion:
    successes: int
    n: int
    rate: float
    interval: Interval
    p_value: float  # exact two-sided binomial test of rate = ½


def wilson_interval(successes: int, n: int, level: float = DEFAULT_LEVEL) -> Interval:
    """Wilson (1927) score interval: (p̂ + z²/2n ± z√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n)."""
    if n == 0:
        return Interval(math.nan, math.nan, level, "wilson", "no verdicts")
    z = float(scipy.stats.norm.ppf((1.0 + level) / 2.0))
    p = successes / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    scale = 1 + z * z / n
    return Interval(max(0.0, (centre - half) / scale), min(1.0, (centre + half) / scale),
                    level, "wilson")


def first_position_rate(winners: Iterable[str | None], level: float = DEFAULT_LEVEL) -> Proportion:
    """The share of valid pairwise verdicts ("first" / "second") that picked the response
    presented first; invalid verdicts (None) are left out. Sides are randomised when a battle is
    served, so an unbiased judge picks "first" half the time."""
    valid = [winner for winner in winners if winner is not None]
    if unknown := set(valid) - {"first", "second"}:
        raise ValueError(f"verdicts must be 'first', 'second' or None, got {sorted(unknown)}")
    n, k = len(valid), valid.count("first")
    p_value = scipy.stats.binomtest(k, n, 0.5).pvalue if n else math.nan
    return Proportion(k, n, k / n if n else math.nan, wilson_interval(k, n, level), float(p_value))
