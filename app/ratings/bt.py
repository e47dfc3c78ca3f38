"""Bradley–Terry ratings with bootstrap confidence intervals. Pure code: counts in, numbers out.

The vote log is first aggregated into unique (model A, model B, outcome) counts; everything here
works on those counts, so the cost depends on the number of model pairs, not of votes.

Model: P(i beats j) = σ(s_i − s_j). A tie counts as half a win for each side. The fit maximises
the likelihood with a small ridge term (λ/2)·‖s‖², which makes the optimum unique (it centres
the strengths at 0) and finite when a model has never won or never lost. Strengths are reported
on the Elo scale: rating = 1000 + 400·s / ln 10.

Confidence intervals come from a seeded bootstrap. Resampling the log's rows with replacement is
the same as drawing the aggregated cell counts from a multinomial with the observed frequencies,
which costs O(cells) per round instead of O(votes). All rounds are fitted together: a chord
Newton iteration shares one factorised Hessian across rounds, and the few rounds that do not
settle that way finish with their own Newton steps.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.csgraph
import scipy.special
import scipy.stats
from threadpoolctl import threadpool_limits

SCALE = 400.0 / math.log(10.0)  # natural-log strength → Elo points
CENTRE = 1000.0
DEFAULT_RIDGE = 1e-4
OUTCOME_INDEX = {"a": 0, "b": 1, "tie": 2, "both_bad": 2}


@dataclass(frozen=True)
class PairCounts:
    """Votes aggregated per unordered pair of models (i < j by index)."""

    models: tuple[Hashable, ...]
    i: np.ndarray  # (P,) int
    j: np.ndarray  # (P,) int
    wins_i: np.ndarray  # (P,) float: votes won by models[i]
    wins_j: np.ndarray  # (P,) float
    ties: np.ndarray  # (P,) float: ties and both-bad

    @property
    def n_models(self) -> int:
        return len(self.models)

    @property
    def totals(self) -> np.ndarray:
        return self.wins_i + self.wins_j + self.ties

    @classmethod
    def from_counts(
        cls,
        rows: Iterable[tuple[Hashable, Hashable, str, float]],
        models: Sequence[Hashable] | None = None,
    ) -> "PairCounts":
        """Aggregate (model_a, model_b, outcome, count) rows; outcome is a, b, tie or both_bad.

        Models are indexed in the order given, then any others in sorted order."""
        rows = list(rows)
        names = list(dict.fromkeys(models or ()))
        extra = {m for a, b, _, _ in rows for m in (a, b)} - set(names)
        names += sorted(extra, key=_sort_key)
        index = {m: k for k, m in enumerate(names)}
        cells: dict[tuple[int, int], list[float]] = {}
        for a, b, outcome, count in rows:
            ia, ib = index[a], index[b]
            if ia == ib:
                raise ValueError(f"a vote between {a!r} and itself")
            cell = cells.setdefault((min(ia, ib), max(ia, ib)), [0.0, 0.0, 0.0])
            kind = OUTCOME_INDEX[outcome]
            if kind == 2:
                cell[2] += count
            else:
                a_won = kind == 0
                cell[0 if a_won == (ia < ib) else 1] += count
        keys = sorted(cells)
        ij = np.array(keys, dtype=np.int64).reshape(-1, 2)
        values = np.array([cells[k] for k in keys], dtype=float).reshape(-1, 3)
        return cls(tuple(names), ij[:, 0], ij[:, 1], values[:, 0], values[:, 1], values[:, 2])

    def cell_counts(self) -> np.ndarray:
        """(P, 3) counts: i wins, j wins, ties — the multinomial cells of the bootstrap."""
        return np.stack([self.wins_i, self.wins_j, self.ties], axis=1)


def _sort_key(value: Hashable) -> tuple[str, str]:
    return (type(value).__name__, str(value))


@dataclass
class Fit:
    models: tuple[Hashable, ...]
    strengths: np.ndarray  # natural-log strengths, centred at 0

    @property
    def ratings(self) -> np.ndarray:
        return CENTRE + SCALE * self.strengths


# --- the fit ---------------------------------------------------------------------------


def fit_batch(
    counts: PairCounts,
    wins_i: np.ndarray,
    wins_j: np.ndarray,
    *,
    ridge: float = DEFAULT_RIDGE,
    start: np.ndarray | None = None,
    tol: float = 1e-10,
    max_iter: int = 500,
) -> np.ndarray:
    """Maximum-likelihood strengths for a batch of count vectors over the same pairs.

    wins_i, wins_j: (B, P) effective wins (ties already split in halves). Returns (B, M);
    a model in no pair gets 0, the optimum of its ridge term alone. See `fit_columns`."""
    won = np.ascontiguousarray(np.atleast_2d(wins_i).T)  # (P, B)
    return fit_columns(counts, won, won + np.atleast_2d(wins_j).T, ridge=ridge, start=start,
                       tol=tol, max_iter=max_iter)


def fit_columns(
    counts: PairCounts,
    won: np.ndarray,
    n: np.ndarray,
    *,
    ridge: float = DEFAULT_RIDGE,
    start: np.ndarray | None = None,
    tol: float = 1e-10,
    max_iter: int = 500,
) -> np.ndarray:
    """`fit_batch` with the rounds as columns: won and n are (P, B) C-ordered arrays of the
    effective wins of model i and the votes of each pair. Returns (B, M).

    Every step is a contiguous array operation over the columns. Rounds converge through chord
    Newton steps with one shared, factorised Hessian; rounds too far from it to converge fast
    (sparse slices, where resampling changes the Hessian most) take batched Newton steps."""
    batch = won.shape[1]
    result = np.zeros((batch, counts.n_models))
    present = np.unique(np.concatenate([counts.i, counts.j]))
    if len(present) == 0:
        return result
    compact = np.full(counts.n_models, -1)
    compact[present] = np.arange(len(present))
    pairs = _Pairs(compact[counts.i], compact[counts.j], len(present))
    s = np.zeros((pairs.m, batch))
    if start is not None:
        s[:] = np.asarray(start, dtype=float)[present, None]

    # Chord Newton: one Hessian, at the batch's mean strengths and counts, factorised once.
    sigma = _sigmoid(pairs.difference(s.mean(axis=1)))
    reference = pairs.hessian(n.mean(axis=1)[:, None], sigma[:, None], ridge)[0]
    # its inverse, once: a matrix product per step is far cheaper than triangular solves
    inverse = scipy.linalg.cho_solve(scipy.linalg.cho_factor(reference), np.eye(pairs.m))
    # The residual n·σ(x) − won is half·tanh(x/2) + offset with σ(x) = (1 + tanh(x/2))/2:
    # two arrays fixed for the whole fit, so a step costs one tanh and two passes over them.
    half = 0.5 * n
    offset = half - won
    active = np.arange(batch)
    previous = np.full(batch, np.inf)
    slow: list[np.ndarray] = []
    for iteration in range(max_iter):
        current = s[:, active]
        if iteration == 0:
            # every round starts from the same strengths: one column of tanh serves them all
            residual = half * np.tanh(0.5 * pairs.difference(current[:, 0]))[:, None]
        else:
            residual = np.tanh(pairs.difference(0.5 * current))
            residual *= half
        residual += offset
        gradient = pairs.incidence_t @ residual + ridge * current
        step = _damped(inverse @ gradient)
        s[:, active] = current - step
        size = np.abs(step).max(axis=0)
        # The steps shrink geometrically, by `contraction`: the error left after this step is
        # about the next step, size × contraction, so a round is done once that is below tol.
        contraction = np.minimum(size / previous[active], 1.0) if iteration else 1.0
        finished = size * contraction < tol
        # too far from the shared Hessian: contracting too slowly, or still far after many steps
        stalled = ~finished & ((size > 0.9 * previous[active]) | (iteration >= CHORD_STEPS))
        previous[active] = size
        slow.append(active[stalled])
        going = ~finished & ~stalled
        active = active[going]
        if len(active) == 0:
            break
        if not going.all():  # drop the settled rounds' columns once, not at every step
            half, offset = half[:, going], offset[:, going]
    rest = np.concatenate(slow + [active])
    if len(rest):
        s[:, rest] = _newton(pairs, won[:, rest], n[:, rest], s[:, rest], ridge, tol, max_iter)
    result[:, present] = s.T
    return result


CHORD_STEPS = 60


class _Pairs:
    """Pairs over compact model indices, with the objective's derivatives for many rounds."""

    def __init__(self, i: np.ndarray, j: np.ndarray, m: int) -> None:
        self.i, self.j, self.m = i, j, m
        p = len(i)
        # (M, P): +1 at i and −1 at j, to sum per-pair terms into per-model gradients
        self.incidence_t = scipy.sparse.csr_matrix(
            (np.tile([1.0, -1.0], p), (np.stack([i, j], axis=1).ravel(), np.repeat(np.arange(p), 2))),
            shape=(m, p))
        # (P, M): s_i − s_j for every pair, as a sparse product (several times faster than
        # gathering rows by fancy indexing)
        self.incidence = self.incidence_t.T.tocsr()
        # (M, P) with 1 at i only, at j only, and at both: per-model sums of per-pair terms
        self.first = self.incidence_t.maximum(0).tocsr()
        self.second = (-self.incidence_t).maximum(0).tocsr()
        self.either = abs(self.incidence_t)

    def difference(self, s: np.ndarray) -> np.ndarray:
        """s_i − s_j per pair: (M,) → (P,) or (M, b) → (P, b)."""
        return self.incidence @ s

    def gradient(self, s: np.ndarray, won: np.ndarray, n: np.ndarray, ridge: float):
        """(M, b) gradient of the negative penalised log-likelihood, and σ (P, b)."""
        sigma = _sigmoid(self.difference(s))  # P(i beats j)
        residual = n * sigma
        residual -= won
        return self.incidence_t @ residual + ridge * s, sigma

    def hessian(self, n: np.ndarray, sigma: np.ndarray, ridge: float) -> np.ndarray:
        """(b, M, M) Hessians: Σ_pairs n σ (1 − σ) (e_i − e_j)(e_i − e_j)ᵀ + λI."""
        h = n * sigma * (1.0 - sigma)  # (P, b)
        out = np.zeros((h.shape[1], self.m, self.m))
        out[:, self.i, self.j] = -h.T
        out[:, self.j, self.i] = -h.T
        diagonal = np.arange(self.m)
        out[:, diagonal, diagonal] = (self.either @ h).T + ridge
        return out


def _newton(pairs: _Pairs, won: np.ndarray, n: np.ndarray, s: np.ndarray, ridge: float,
            tol: float, max_iter: int) -> np.ndarray:
    """Damped Newton steps for the columns of s, all at once (batched dense solves), from
    starts where each model that won or lost every vote of its round is already near its
    optimum (see `_sweep_out`)."""
    s = _sweep_out(pairs, won, n, s, ridge)
    active = np.arange(s.shape[1])
    for _ in range(max_iter):
        gradient, sigma = pairs.gradient(s[:, active], won[:, active], n[:, active], ridge)
        hessian = pairs.hessian(n[:, active], sigma, ridge)
        step = _damped(np.linalg.solve(hessian, gradient.T[..., None])[..., 0].T)
        s[:, active] -= step
        active = active[np.abs(step).max(axis=0) >= tol]
        if len(active) == 0:
            break
    return s


def _sweep_out(pairs: _Pairs, won: np.ndarray, n: np.ndarray, s: np.ndarray, ridge: float,
               sweeps: int = 8) -> np.ndarray:
    """s with every model that won every vote of its round (or lost every one) moved to about
    its optimum with the other models held where they are.

    Only the ridge holds such a model: its optimum is where λ·|s| equals the votes it would be
    expected to lose (win), Σ n·P(it loses), which lies 10 nats or more out. On that
    exponential tail a Newton step of the whole fit moves it about one unit, so it would need
    ten or more, each a dense solve per round. In logarithms the equation is nearly linear,
    log Σ n·P(it loses) − log(λ·|s|) = 0, and a few scalar Newton steps, for all such models of
    all rounds at once, solve it. The fit's own Newton steps then finish from there, to the
    same optimum (the objective is strictly convex): only the path changes."""
    wins = pairs.first @ won + pairs.second @ (n - won)
    votes = pairs.either @ n
    sign = np.where(votes > 0, np.where(wins == votes, 1.0, np.where(wins == 0, -1.0, 0.0)), 0.0)
    tail = sign != 0
    if not tail.any():
        return s
    s = s.copy()
    distance = np.where(sign * s > 0, sign * s, 1.0)  # |s| on the side it is heading to
    for _ in range(sweeps):
        s[tail] = (sign * distance)[tail]
        x = pairs.difference(s)
        i_wins, j_wins = scipy.special.expit(x), scipy.special.expit(-x)  # exact in the tails
        # Σ n·P(lose) for a model that won everything, Σ n·P(win) for one that lost everything
        against = np.where(sign > 0, pairs.first @ (n * j_wins) + pairs.second @ (n * i_wins),
                           pairs.first @ (n * i_wins) + pairs.second @ (n * j_wins))
        curvature = pairs.either @ (n * i_wins * j_wins)
        with np.errstate(divide="ignore", invalid="ignore"):
            h = np.log(against) - np.log(ridge * distance)
            slope = curvature / against + 1.0 / distance  # −dh/d|s|
            moved = distance + h / slope
        moved = np.where(np.isfinite(moved), moved, distance)
        distance = np.clip(moved, distance / 4.0, distance + 8.0)  # stays positive
    s[tail] = (sign * distance)[tail]
    return s


def _sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """σ(x) = (1 + tanh(x/2)) / 2: exact, and several times faster than scipy's expit."""
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


def _damped(step: np.ndarray, limit: float = 2.0) -> np.ndarray:
    """Keep each strength's step within ±limit (per column): a trust region for far-off starts."""
    largest = np.abs(step).max(axis=0, keepdims=True)
    return step * np.minimum(1.0, limit / np.maximum(largest, 1e-300))


def effective_wins(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split ties in halves: (…, P, 3) cells → wins for i and for j."""
    half = cells[..., 2] / 2.0
    return cells[..., 0] + half, cells[..., 1] + half


def fit(counts: PairCounts, *, ridge: float = DEFAULT_RIDGE) -> Fit:
    wins_i, wins_j = effective_wins(counts.cell_counts())
    # one BLAS thread: more only spin on matrices this small (ten times slower on a busy machine)
    with threadpool_limits(limits=1, user_api="blas"):
        strengths = fit_batch(counts, wins_i[None], wins_j[None], ridge=ridge)[0]
    return Fit(counts.models, strengths)


# --- bootstrap, intervals, ranks ----------------------------------------------------------


@dataclass
class Bootstrap:
    ratings: np.ndarray  # (rounds, M)

    def interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        tail = (1.0 - level) / 2.0 * 100.0
        return (np.percentile(self.ratings, tail, axis=0),
                np.percentile(self.ratings, 100.0 - tail, axis=0))


def bootstrap(
    counts: PairCounts,
    point: Fit,
    *,
    rounds: int = 1000,
    seed: int = 0,
    ridge: float = DEFAULT_RIDGE,
    chunk: int = 125,
    threads: int = 2,
    tol: float = 2e-6,  # 0.00035 Elo points: far below the 0.01 the tables show
) -> Bootstrap:
    """Refit on `rounds` multinomial resamples of the aggregated counts.

    Rounds are drawn in fixed chunks, each from its own child of `seed`, so the result depends on
    the seed alone, not on how many threads share the work (numpy releases the GIL for both the
    sampling and the array arithmetic of the fits)."""
    cells = counts.cell_counts().ravel()
    total = int(round(cells.sum()))
    if total == 0 or rounds <= 0:
        return Bootstrap(np.tile(point.ratings, (max(rounds, 0), 1)))
    observed = np.flatnonzero(cells)  # cells never seen stay at zero in every resample
    sampler = Multinomial(total, cells[observed] / cells[observed].sum())
    # each observed cell's votes, as a pair's votes and as effective wins of its model i
    pair, kind = observed // 3, observed % 3
    columns = np.arange(len(observed))
    shape = (len(counts.i), len(observed))
    to_votes = scipy.sparse.csr_matrix((np.ones(len(observed)), (pair, columns)), shape=shape)
    to_won = scipy.sparse.csr_matrix((np.where(kind == 0, 1.0, 0.5)[kind != 1],
                                      (pair[kind != 1], columns[kind != 1])), shape=shape)
    starts = list(range(0, rounds, chunk))
    seeds = np.random.SeedSequence(seed).spawn(len(starts))
    out = np.empty((rounds, counts.n_models))

    def run(k: int) -> None:
        size = min(chunk, rounds - starts[k])
        drawn = sampler.draw(np.random.default_rng(seeds[k]), size)
        cells_by_round = np.ascontiguousarray(drawn.T, dtype=float)  # rounds as columns
        strengths = fit_columns(counts, np.ascontiguousarray(to_won @ cells_by_round),
                                np.ascontiguousarray(to_votes @ cells_by_round), ridge=ridge,
                                start=point.strengths, tol=tol)
        out[starts[k]:starts[k] + size] = CENTRE + SCALE * strengths

    # BLAS gets one thread: its own threads on top of ours thrash, and even alone they slow
    # the small batched solves of a sparse slice (six times, on two cores)
    with threadpool_limits(limits=1, user_api="blas"):
        if threads > 1 and len(starts) > 1:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(run, range(len(starts))))
        else:
            for k in range(len(starts)):
                run(k)
    return Bootstrap(out)


def multinomial(rng: np.random.Generator, total: int, p: np.ndarray, size: int) -> np.ndarray:
    """`size` draws from Multinomial(total, p); see `Multinomial`."""
    return Multinomial(total, p).draw(rng, size)


class Multinomial:
    """Draws from Multinomial(total, p), exactly, several times faster than numpy's cell-by-cell
    binomials when there are many cells. Built once, it draws any number of rounds.

    Independent Poisson(total·p) counts, given their sum t, are Multinomial(t, p). A draw with
    t < total gets total − t more categorical draws added (a sum of independent multinomials
    with the same p); one with t > total loses t − total of its items chosen uniformly without
    replacement (thinning a multinomial sample at random keeps it multinomial). Either way the
    result is Multinomial(total, p) whatever t was. Both corrections run for all rows at once."""

    def __init__(self, total: int, p: np.ndarray) -> None:
        self.total = int(total)
        self.p = np.asarray(p, dtype=float)
        self.poisson = Poisson(self.total * self.p)
        self.cumulative = np.cumsum(self.p)
        self.cumulative /= self.cumulative[-1]

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """(size, cells) counts, each row summing to `total`."""
        total, cells = self.total, len(self.p)
        counts = self.poisson.draw(rng, size)
        missing = total - counts.sum(axis=1)

        short = np.flatnonzero(missing > 0)
        if len(short):
            rows = np.repeat(np.arange(len(short)), missing[short])
            drawn = np.minimum(
                np.searchsorted(self.cumulative, rng.random(len(rows)), side="right"), cells - 1)
            counts[short] += np.bincount(rows * cells + drawn,
                                         minlength=len(short) * cells).reshape(-1, cells)

        over = np.flatnonzero(missing < 0)
        if len(over):
            excess = -missing[over]
            sums = counts[over].sum(axis=1)
            # The items to remove, distinct within each row: positions drawn with replacement,
            # the rare repeats topped up (a uniform random subset, as drawing without
            # replacement).
            stride = int(sums.max()) + 1
            rows = np.repeat(np.arange(len(over)), excess)
            positions = _distinct(rows * stride + rng.integers(0, sums[rows]))
            while len(positions) < len(rows):
                have = np.bincount(positions // stride, minlength=len(over))
                need = np.repeat(np.arange(len(over)), excess - have)
                positions = _distinct(np.concatenate(
                    [positions, need * stride + rng.integers(0, sums[need])]))
            row_of, within = positions // stride, positions % stride
            starts = np.concatenate([[0], np.cumsum(sums)[:-1]])
            flat = np.cumsum(counts[over].ravel())
            removed = np.searchsorted(flat, starts[row_of] + within, side="right")
            counts[over] -= np.bincount(removed, minlength=len(over) * cells).reshape(-1, cells)
        return counts


def _distinct(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values (np.unique, without its slower hashing)."""
    values = np.sort(values)
    return values[np.concatenate([[True], values[1:] != values[:-1]])]


class Poisson:
    """Independent Poisson draws, one per mean, by inversion: for each distinct mean a table of
    its cumulative distribution over mean ± (12 sd + 20) (the mass outside is below 1e-30),
    with a guide table that sends almost every uniform number to within a step or two of its
    quantile (Chen & Asau 1974). Exact, and two to three times faster than numpy's per-draw
    rejection sampler for the hundreds of votes per cell of a large log; means whose table would
    be long (above TABLE_LIMIT entries, i.e. a mean above about 28,000) use numpy's sampler."""

    TABLE_LIMIT = 4096
    SLOTS = 2  # guide entries per table entry

    def __init__(self, means: np.ndarray) -> None:
        self.means = np.asarray(means, dtype=float)
        values, group = np.unique(self.means, return_inverse=True)
        spread = 12.0 * np.sqrt(values) + 20.0
        low = np.floor(np.maximum(values - spread, 0.0)).astype(np.int64)
        length = np.ceil(values + spread).astype(np.int64) - low + 1
        tabled = length <= self.TABLE_LIMIT
        cdfs, guides, start = [], [], 0
        for value, first, n in zip(values[tabled], low[tabled], length[tabled]):
            cdf = scipy.special.pdtr(np.arange(first, first + n), value)
            cdf[-1] = 1.0  # the search always ends inside the table
            slots = self.SLOTS * n
            # guide[s]: the first entry above s/slots, where the search for u ≥ s/slots starts
            guides.append(start + np.searchsorted(cdf, np.arange(slots + 1) / slots, side="right"))
            cdfs.append(cdf)
            start += n
        self.inside = tabled[group]
        chosen = group[self.inside]
        offset = np.cumsum(length * tabled) - length * tabled
        guide_offset = np.cumsum((self.SLOTS * length + 1) * tabled) - (
            self.SLOTS * length + 1) * tabled
        self.cdf = np.concatenate(cdfs) if cdfs else np.ones(0)
        self.guide = np.concatenate(guides) if guides else np.zeros(0, dtype=np.int64)
        self.slots = (self.SLOTS * length[chosen]).astype(float)
        self.guide_offset = guide_offset[chosen]
        self.shift = offset[chosen] - low[chosen]  # table entry → count

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """(size, len(means)) counts."""
        out = np.empty((size, len(self.means)), dtype=np.int64)
        if len(self.slots):
            u = rng.random((size, len(self.slots)))
            slot = (u * self.slots).astype(np.int64)
            slot += self.guide_offset
            k = self.guide[slot.ravel()]
            u = u.ravel()
            todo = np.flatnonzero(self.cdf[k] <= u)
            while len(todo):  # the quantile: the first entry whose cdf is above u
                k[todo] += 1
                todo = todo[self.cdf[k[todo]] <= u[todo]]
            k = k.reshape(size, -1)
            k -= self.shift
            if self.inside.all():
                return k
            out[:, self.inside] = k
        rest = ~self.inside
        out[:, rest] = rng.poisson(self.means[rest], size=(size, int(rest.sum())))
        return out


def rank_upper_bound(lower: np.ndarray, upper: np.ndarray, eligible: np.ndarray | None = None) -> np.ndarray:
    """Chatbot Arena's "Rank (UB)": 1 + the number of models whose lower bound is above this
    model's upper bound. Only `eligible` models count as rivals."""
    eligible = np.ones(len(lower), dtype=bool) if eligible is None else eligible
    return 1 + ((lower[None, :] > upper[:, None]) & eligible[None, :]).sum(axis=1)


def ranking_stability(point: np.ndarray, rounds: np.ndarray) -> tuple[float, float]:
    """The S2S-Arena paper's footnote 5: Spearman correlation between the point ranking and each
    bootstrap round's ranking, as mean and standard deviation."""
    if len(point) < 2 or len(rounds) == 0:
        return (float("nan"), float("nan"))
    point_rank = scipy.stats.rankdata(-point)
    round_ranks = scipy.stats.rankdata(-rounds, axis=1)
    centred_point = point_rank - point_rank.mean()
    centred = round_ranks - round_ranks.mean(axis=1, keepdims=True)
    denominator = np.sqrt((centred**2).sum(axis=1) * (centred_point**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (centred @ centred_point) / denominator
    rho = rho[np.isfinite(rho)]
    if len(rho) == 0:
        return (float("nan"), float("nan"))
    return float(rho.mean()), float(rho.std(ddof=1)) if len(rho) > 1 else 0.0


# --- descriptive tables -------------------------------------------------------------------


def pairwise_matrices(counts: PairCounts) -> tuple[np.ndarray, np.ndarray]:
    """(win rate of row over column with ties as half, battle counts), both (M, M).
    The win rate is NaN where two models never met."""
    m = counts.n_models
    battles = np.zeros((m, m))
    won = np.zeros((m, m))
    total = counts.totals
    battles[counts.i, counts.j] = total
    battles[counts.j, counts.i] = total
    won[counts.i, counts.j] = counts.wins_i + counts.ties / 2
    won[counts.j, counts.i] = counts.wins_j + counts.ties / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(battles > 0, won / battles, np.nan)
    return rate, battles


@dataclass(frozen=True)
class PairTest:
    """One pair's head-to-head record: the win rate of the first model with ties as half, its
    normal-approximation confidence interval, and the one-sided p-value against 0.5."""

    win_rate: float
    ci_lower: float
    ci_upper: float
    p_value: float


def pair_test(wins: float, losses: float, ties: float, level: float = 0.95) -> PairTest:
    n = wins + losses + ties
    if n == 0:
        return PairTest(float("nan"), float("nan"), float("nan"), float("nan"))
    rate = (wins + ties / 2) / n
    # Per-vote scores 1, 0 and ½: their standard error, not the binomial one, since ties are ½.
    variance = (wins + ties / 4) / n - rate**2
    se = math.sqrt(max(variance, 0.0) / n)
    z = scipy.stats.norm.ppf(0.5 + level / 2)
    p_value = float(scipy.stats.norm.sf(abs(rate - 0.5) / se)) if se > 0 else 0.0
    return PairTest(rate, rate - z * se, rate + z * se, p_value)


def components(counts: PairCounts) -> list[list[int]]:
    """Groups of models linked by votes; more than one group means ratings across groups are
    not comparable."""
    m = counts.n_models
    has = counts.totals > 0
    graph = scipy.sparse.coo_matrix(
        (np.ones(int(has.sum())), (counts.i[has], counts.j[has])), shape=(m, m)
    )
    count, labels = scipy.sparse.csgraph.connected_components(graph, directed=False)
    groups: list[list[int]] = [[] for _ in range(count)]
    for model, label in enumerate(labels):
        groups[label].append(model)
    return sorted(groups, key=lambda g: (-len(g), g))


@dataclass
class Table:
    """Everything a leaderboard shows for one slice of the log."""

    models: tuple[Hashable, ...]
    rating: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    rank_ub: np.ndarray  # 0 where provisional
    provisional: np.ndarray
    wins: np.ndarray
    losses: np.ndarray
    ties: np.ndarray
    win_rate_matrix: np.ndarray
    battle_matrix: np.ndarray
    components: list[list[int]]
    stability: tuple[float, float]
    params: dict = field(default_factory=dict)

    @property
    def matches(self) -> np.ndarray:
        return self.wins + self.losses + self.ties


def table(
    counts: PairCounts,
    *,
    rounds: int = 1000,
    seed: int = 0,
    ridge: float = DEFAULT_RIDGE,
    min_votes: int = 20,
    level: float = 0.95,
    weight: float = 1.0,
    centre_on_ranked: bool = True,
) -> Table:
    """Fit, bootstrap and describe one slice. `weight` multiplies every count in the fit
    (Chatbot Arena's published recipe counts every vote twice).

    The likelihood fixes only differences of strengths. With `centre_on_ranked`, each group of
    models that met in votes is centred at 1000 over its models with enough votes, in the point
    fit and in every bootstrap round, so a new model with one lucky win cannot shift everyone
    else's rating or widen their intervals."""
    weighted = PairCounts(counts.models, counts.i, counts.j, counts.wins_i * weight,
                          counts.wins_j * weight, counts.ties * weight)
    m = counts.n_models
    wins = np.bincount(counts.i, counts.wins_i, m) + np.bincount(counts.j, counts.wins_j, m)
    losses = np.bincount(counts.i, counts.wins_j, m) + np.bincount(counts.j, counts.wins_i, m)
    ties = np.bincount(counts.i, counts.ties, m) + np.bincount(counts.j, counts.ties, m)
    provisional = (wins + losses + ties) < min_votes
    groups = components(counts)
    point = fit(weighted, ridge=ridge)
    boot = bootstrap(weighted, point, rounds=rounds, seed=seed, ridge=ridge)
    if centre_on_ranked:
        point = Fit(point.models, _recentre(point.strengths, groups, ~provisional))
        boot = Bootstrap(CENTRE + _recentre(boot.ratings - CENTRE, groups,
                                            ~provisional))
    lower, upper = boot.interval(level) if rounds > 0 else (point.ratings, point.ratings)
    rank = np.where(provisional, 0, rank_upper_bound(lower, upper, ~provisional))
    rate, battles = pairwise_matrices(counts)
    eligible = ~provisional
    stability = ranking_stability(point.ratings[eligible], boot.ratings[:, eligible])
    return Table(
        models=counts.models, rating=point.ratings, ci_lower=lower, ci_upper=upper,
        rank_ub=rank, provisional=provisional, wins=wins, losses=losses, ties=ties,
        win_rate_matrix=rate, battle_matrix=battles, components=groups,
        stability=stability,
        params={"method": "bradley-terry", "rounds": rounds, "seed": seed, "ridge": ridge,
                "min_votes": min_votes, "level": level, "weight": weight},
    )


def _recentre(values: np.ndarray, groups: list[list[int]], anchors: np.ndarray) -> np.ndarray:
    """Shift each group so that the mean over its anchor models (all, if it has none) is 0.
    Works on (..., M) arrays; a pure change of gauge, the likelihood is unchanged."""
    out = np.array(values, dtype=float)
    for group in groups:
        members = np.asarray(group)
        base = members[anchors[members]] if anchors[members].any() else members
        out[..., members] -= out[..., base].mean(axis=-1, keepdims=True)
    return out


# --- the recipe Chatbot Arena and GenAI-Arena published with ------------------------------


def chatbot_arena_fit(counts: PairCounts) -> Fit:
    """FastChat's `compute_elo_mle_with_tie`, as GenAI-Arena ran it for its published tables:
    scikit-learn's LogisticRegression (L2 penalty, C = 1, its default lbfgs tolerance) on every
    vote written twice — a win as two wins, a tie as one win for each side — with features
    ±ln 10, so that rating = 1000 + 400·coefficient.

    Fitted here on the aggregated counts with sample weights, which is the same objective, so it
    reproduces those tables to rounding. Those tables are where lbfgs stopped, up to a couple of
    Elo points from the exact optimum of the same penalised likelihood, which is what
    `table(..., weight=2, ridge=RECIPE_RIDGE)` computes.
    """
    from sklearn.linear_model import LogisticRegression

    m, p = counts.n_models, len(counts.i)
    features = np.zeros((2 * p, m))
    rows = np.arange(p)
    for half in (0, 1):
        features[half * p + rows, counts.i] = math.log(10.0)
        features[half * p + rows, counts.j] = -math.log(10.0)
    target = np.concatenate([np.ones(p), np.zeros(p)])
    weight = np.concatenate([2 * counts.wins_i + counts.ties, 2 * counts.wins_j + counts.ties])
    keep = weight > 0
    model = LogisticRegression(fit_intercept=False)
    model.fit(features[keep], target[keep], sample_weight=weight[keep])
    return Fit(counts.models, model.coef_[0] * math.log(10.0))


RECIPE_RIDGE = 1.0 / math.log(10.0) ** 2  # C = 1 on coefficients in log10 units
