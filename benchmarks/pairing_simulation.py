"""How many votes does each pairing strategy need to recover a known ranking?

Simulated raters answer by a Bradley–Terry model with known strengths (no ties). Votes arrive in
batches; after each batch the ratings are refitted with app.ratings.bt (as the arena's debounced
leaderboard refresh would), and the strategy picks the next batch of pairs from that fit through
app.arena.pairing — the same weights `choose_pair` samples from, held fixed for the batch.

Per strategy and number of models, over several seeds (each seed draws its own true strengths,
shared by all strategies):

- votes to τ ≥ 0.9: the first checkpoint from which the Kendall τ between the fitted and the
  true ratings stays ≥ 0.9 at every later checkpoint up to the horizon (censored, "> horizon",
  when the last checkpoint is below 0.9). Reported as median, quartiles and range over seeds.
  Also: the saving against uniform on the same seed (paired), and the votes until the τ curve
  averaged over seeds stays ≥ 0.9 (a less noisy summary of the same question).
- coverage: the share of true strengths (centred, on the Elo scale) inside the 95% percentile
  bootstrap intervals (1000 rounds) of the final fit, pooled over models and seeds; and the
  scale ratio, sd of the fitted ratings over sd of the true ones, which shows a stretched fit.

The raters' coin flips are common random numbers (the k-th vote on a pair draws the same uniform
number under every strategy), so strategies differ by the pairs they choose, not by luck.

--ablation adds the uncertainty strategy without its audit term, and a yardstick that weights
pairs by their true strength gap (see ORACLE): about what spending votes on close pairs can save
here when one knows which pairs are close.

Run from the repository root:  python -m benchmarks.pairing_simulation
(options: --seeds N, --jobs N, --models 20 50, --strategies …, --ablation, --elo-sd SD)
Writes benchmarks/results/pairing_simulation.json.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one BLAS thread per worker process

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.stats  # noqa: E402

from app.arena.pairing import (  # noqa: E402
    STRATEGIES,
    PairingState,
    pair_weights,
    uncertainty_weights,
)
from app.ratings import bt  # noqa: E402

# --ablation: the uncertainty strategy without its audit term, to show what that term buys.
# Registered in this process only (the arena never sees it).
ABLATIONS = {"uncertainty_no_audit": functools.partial(uncertainty_weights, audit=0.0)}
for _name, _weights in ABLATIONS.items():
    STRATEGIES.setdefault(_name, _weights)

# --ablation also runs a yardstick no arena can have: pairs weighted by their TRUE strength gap,
# exp(−gap² / 2w²) with w = ORACLE_WIDTH (60 Elo points; in a pilot of 8 seeds with 50 models,
# 35 Elo saved less and 17 Elo did worse than uniform), with the same 10% uniform floor as
# "uncertainty". It knows which pairs are close, which a real strategy can only estimate, so
# its saving is a yardstick for what spending votes on close pairs can buy in this simulation.
ORACLE = "oracle_close_pairs"
ORACLE_WIDTH = 60.0 / bt.SCALE  # in log-strength units
ORACLE_FLOOR = 0.1

ELO_SD = 125.0  # sd of the true ratings, Elo points
TARGET_TAU = 0.9
LEVEL = 0.95
RUN_ROUNDS = 100  # bootstrap rounds per refit, for the strategies that read spreads
FINAL_ROUNDS = 1000  # bootstrap rounds for the final intervals
# number of models → (votes per batch between refits, horizon in votes)
SETUPS = {20: (100, 12000), 50: (200, 20000)}
USES_SPREAD = {"uncertainty", *ABLATIONS}
RESULTS = Path(__file__).resolve().parent / "results" / "pairing_simulation.json"


def true_strengths(n_models: int, seed: int, elo_sd: float = ELO_SD) -> np.ndarray:
    """Log-strengths, centred, drawn with Elo sd `elo_sd`."""
    s = np.random.default_rng([20240, n_models, seed]).normal(0.0, elo_sd / bt.SCALE, n_models)
    return s - s.mean()


def run(n_models: int, seed: int, strategy: str, elo_sd: float = ELO_SD) -> dict:
    batch, horizon = SETUPS[n_models]
    truth = true_strengths(n_models, seed, elo_sd)
    true_elo = bt.CENTRE + bt.SCALE * truth
    ii, jj = np.triu_indices(n_models, k=1)
    pairs = list(zip(ii.tolist(), jj.tolist()))
    p_i_wins = 1.0 / (1.0 + np.exp(-(truth[ii] - truth[jj])))
    rng = np.random.default_rng([20241, n_models, seed, zlib.crc32(strategy.encode())])
    rater = Rater(n_models, seed, len(pairs))
    wins_i = np.zeros(len(pairs))
    wins_j = np.zeros(len(pairs))
    state = PairingState(votes={m: 0 for m in range(n_models)})
    checkpoints, taus, weight_seconds, fit_seconds = [], [], 0.0, 0.0
    counts = fit = None
    for k, votes in enumerate(range(batch, horizon + 1, batch)):
        t0 = time.perf_counter()
        if strategy == ORACLE:
            w = oracle_weights(truth[ii] - truth[jj])
        else:
            w = np.asarray(pair_weights(pairs, state, strategy))
        weight_seconds += time.perf_counter() - t0
        chosen = rng.choice(len(pairs), size=batch, p=w / w.sum())
        i_won = rater.uniforms(chosen, wins_i + wins_j) < p_i_wins[chosen]
        np.add.at(wins_i, chosen, i_won)
        np.add.at(wins_j, chosen, ~i_won)

        t0 = time.perf_counter()
        counts = _counts(n_models, ii, jj, wins_i, wins_j)
        fit = bt.fit(counts)
        ratings = fit.ratings
        taus.append(float(scipy.stats.kendalltau(ratings, truth).statistic))
        checkpoints.append(votes)
        per_model = _votes_per_model(counts)
        spread = {}
        if strategy in USES_SPREAD:
            boot = bt.bootstrap(counts, fit, rounds=RUN_ROUNDS, seed=k, threads=1)
            sd = boot.ratings.std(axis=0, ddof=1)
            spread = {m: float(sd[m]) for m in range(n_models) if per_model[m] > 0}
        played = np.flatnonzero(wins_i + wins_j)
        state = PairingState(
            ratings={m: float(ratings[m]) for m in range(n_models)},
            spread=spread,
            votes={m: int(per_model[m]) for m in range(n_models)},
            pair_votes={pairs[p]: int(wins_i[p] + wins_j[p]) for p in played},
        )
        fit_seconds += time.perf_counter() - t0

    t0 = time.perf_counter()
    boot = bt.bootstrap(counts, fit, rounds=FINAL_ROUNDS, seed=seed, threads=1)
    lower, upper = boot.interval(LEVEL)
    final_seconds = time.perf_counter() - t0
    covered = (lower <= true_elo) & (true_elo <= upper)
    below = true_elo < lower
    per_model = _votes_per_model(counts)
    return {
        "models": n_models,
        "seed": seed,
        "strategy": strategy,
        "checkpoints": checkpoints,
        "tau": taus,
        "votes_to_target": _votes_to_target(checkpoints, taus),
        "final_tau": taus[-1],
        "covered": int(covered.sum()),
        "true_below_interval": int(below.sum()),
        "true_above_interval": int((~covered & ~below).sum()),
        "intervals": n_models,
        "mean_interval_width": float((upper - lower).mean()),
        "scale_ratio": float(fit.ratings.std() / true_elo.std()),
        "votes_per_model_min_max": [int(per_model.min()), int(per_model.max())],
        "share_of_votes_on_pairs_within_50_elo": float(
            (wins_i + wins_j)[np.abs(true_elo[ii] - true_elo[jj]) <= 50].sum() / horizon),
        "seconds": {"weights": weight_seconds, "fits": fit_seconds, "final": final_seconds},
    }


def oracle_weights(gaps: np.ndarray) -> np.ndarray:
    """The yardstick's weights from the true gaps (see ORACLE)."""
    close = np.exp(-(gaps**2) / (2.0 * ORACLE_WIDTH**2))
    return (1.0 - ORACLE_FLOOR) * close / close.sum() + ORACLE_FLOOR / len(gaps)


class Rater:
    """The raters' coin flips, as common random numbers: the k-th vote on a pair compares the
    same uniform draw with P(i beats j) under every strategy, so strategies differ only by the
    pairs they choose, not by luck on the pairs they share."""

    WIDTH = 256

    def __init__(self, n_models: int, seed: int, n_pairs: int) -> None:
        self.key, self.n_pairs, self.blocks = (20242, n_models, seed), n_pairs, {}

    def uniforms(self, chosen: np.ndarray, played: np.ndarray) -> np.ndarray:
        order = np.argsort(chosen, kind="stable")
        ranked = chosen[order]
        starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
        within = np.arange(len(chosen)) - np.repeat(starts, np.diff(np.r_[starts, len(chosen)]))
        occurrence = np.empty(len(chosen), dtype=np.int64)
        occurrence[order] = within
        k = played[chosen].astype(np.int64) + occurrence  # this is the k-th vote on its pair
        out = np.empty(len(chosen))
        for block in np.unique(k // self.WIDTH):
            mine = k // self.WIDTH == block
            out[mine] = self._block(int(block))[chosen[mine], k[mine] % self.WIDTH]
        return out

    def _block(self, block: int) -> np.ndarray:
        if block not in self.blocks:
            self.blocks[block] = np.random.default_rng([*self.key, block]).random(
                (self.n_pairs, self.WIDTH))
        return self.blocks[block]


def _counts(n_models, ii, jj, wins_i, wins_j) -> bt.PairCounts:
    rows = []
    for p in np.flatnonzero(wins_i + wins_j):
        a, b = int(ii[p]), int(jj[p])
        if wins_i[p]:
            rows.append((a, b, "a", float(wins_i[p])))
        if wins_j[p]:
            rows.append((a, b, "b", float(wins_j[p])))
    return bt.PairCounts.from_counts(rows, models=range(n_models))


def _votes_per_model(counts: bt.PairCounts) -> np.ndarray:
    m, totals = counts.n_models, counts.totals
    return np.bincount(counts.i, totals, m) + np.bincount(counts.j, totals, m)


def _votes_to_target(checkpoints: list[int], taus: list[float]) -> int | None:
    """The first checkpoint from which τ ≥ TARGET_TAU at every later checkpoint; None if the
    last checkpoint is below."""
    first = None
    for votes, tau in zip(checkpoints, taus):
        if tau >= TARGET_TAU:
            first = first if first is not None else votes
        else:
            first = None
    return first


def _job(args: tuple[int, int, str, float]) -> dict:
    return run(*args)


def _savings(mine: list[dict], uniform: list[dict]) -> tuple[float, float, float]:
    """The three savings against uniform, for runs on the same seeds in the same order."""
    votes = np.array([r["votes_to_target"] or np.inf for r in mine], dtype=float)
    base = np.array([r["votes_to_target"] or np.inf for r in uniform], dtype=float)
    ratios = [_ratio(r["votes_to_target"], u["votes_to_target"]) for r, u in zip(mine, uniform)]
    checkpoints = mine[0]["checkpoints"]
    curve = _votes_to_target(checkpoints, list(np.mean([r["tau"] for r in mine], axis=0)))
    base_curve = _votes_to_target(checkpoints, list(np.mean([r["tau"] for r in uniform], axis=0)))
    return (1.0 - np.median(votes) / np.median(base), 1.0 - float(np.median(ratios)),
            1.0 - (curve or np.inf) / (base_curve or np.inf))


def saving_intervals(mine: list[dict], uniform: list[dict], rounds: int = 1000) -> list[list]:
    """95% intervals of the three savings, resampling seeds (paired: the same seeds for both)."""
    rng = np.random.default_rng(0)
    draws = np.array([_savings([mine[k] for k in pick], [uniform[k] for k in pick])
                      for pick in rng.integers(0, len(mine), (rounds, len(mine)))])
    with np.errstate(invalid="ignore"):
        bounds = np.nanpercentile(np.where(np.isfinite(draws), draws, np.nan), [2.5, 97.5], axis=0)
    return [[_num(lo), _num(hi)] for lo, hi in bounds.T]


def summarise(runs: list[dict], strategies: list[str]) -> list[dict]:
    rows = []
    for n_models, (batch, horizon) in SETUPS.items():
        uniform = {r["seed"]: r["votes_to_target"] for r in runs
                   if r["models"] == n_models and r["strategy"] == "uniform"}
        for strategy in strategies:
            mine = sorted((r for r in runs
                           if r["models"] == n_models and r["strategy"] == strategy),
                          key=lambda r: r["seed"])
            if not mine:
                continue
            votes = np.array([r["votes_to_target"] or np.inf for r in mine], dtype=float)
            ratios = [_ratio(r["votes_to_target"], uniform[r["seed"]]) for r in mine
                      if r["seed"] in uniform]
            covered = sum(r["covered"] for r in mine)
            intervals = sum(r["intervals"] for r in mine)
            median = float(np.median(votes))
            mean_curve = np.mean([r["tau"] for r in mine], axis=0)
            uniform_median = float(np.median([v or np.inf for v in uniform.values()])) \
                if uniform else float("nan")
            base = sorted((r for r in runs if r["models"] == n_models
                           and r["strategy"] == "uniform"), key=lambda r: r["seed"])
            paired = [r["seed"] for r in base] == [r["seed"] for r in mine]
            intervals_ = saving_intervals(mine, base) if paired else [[None, None]] * 3
            rows.append({
                "models": n_models,
                "strategy": strategy,
                "seeds": len(mine),
                "batch": batch,
                "horizon": horizon,
                "votes_to_target_median": _num(median),
                "votes_to_target_q25_q75": [_num(q) for q in np.percentile(votes, [25, 75])],
                "votes_to_target_min_max": [_num(votes.min()), _num(votes.max())],
                "censored_runs": int(np.isinf(votes).sum()),
                "saving_vs_uniform_of_medians": _num(1.0 - median / uniform_median),
                "saving_vs_uniform_paired_median": _num(1.0 - float(np.median(ratios)))
                if ratios else None,
                "saving_ci95_over_seeds": {"of_medians": intervals_[0], "paired": intervals_[1],
                                           "of_mean_tau_curve": intervals_[2]},
                "votes_to_target_of_mean_tau_curve": _votes_to_target(mine[0]["checkpoints"],
                                                                      list(mean_curve)),
                "saving_vs_uniform_of_mean_tau_curve": _num(_savings(mine, base)[2])
                if paired else None,
                "votes_to_target_of_mean_tau_curve_uniform": _votes_to_target(
                    mine[0]["checkpoints"], list(np.mean(
                        [r["tau"] for r in runs
                         if r["models"] == n_models and r["strategy"] == "uniform"], axis=0)))
                if uniform else None,
                "final_tau_median": float(np.median([r["final_tau"] for r in mine])),
                "scale_ratio_mean": float(np.mean([r["scale_ratio"] for r in mine])),
                "coverage": covered / intervals,
                "coverage_per_seed_min_max": [min(r["covered"] / r["intervals"] for r in mine),
                                              max(r["covered"] / r["intervals"] for r in mine)],
                "true_below_above_interval": [sum(r["true_below_interval"] for r in mine),
                                              sum(r["true_above_interval"] for r in mine)],
                "mean_interval_width": float(np.mean([r["mean_interval_width"] for r in mine])),
                "share_of_votes_on_pairs_within_50_elo": float(
                    np.mean([r["share_of_votes_on_pairs_within_50_elo"] for r in mine])),
            })
    return rows


def _ratio(votes: int | None, uniform_votes: int | None) -> float:
    """votes / uniform's votes on the same seed; a censored run counts as infinitely many."""
    if votes is None and uniform_votes is None:
        return 1.0
    if votes is None:
        return float("inf")
    return 0.0 if uniform_votes is None else votes / uniform_votes


def _pct(x: float | None) -> str:
    return "?" if x is None else f"{x:+.0%}"


def _num(x: float) -> float | None:
    return None if not np.isfinite(x) else round(float(x), 4)


def print_table(rows: list[dict]) -> None:
    head = (f"{'models':>6}  {'strategy':<20} {'votes to tau>=0.9: median [q25, q75]':<36}"
            f" {'saving':>7} {'paired':>7} {'mean-curve':>10} {'coverage':>9} {'scale':>6}")
    print(head)
    print("-" * len(head))
    for r in rows:
        fmt = lambda v: f"{v:.0f}" if v is not None else f">{r['horizon']}"  # noqa: E731
        q25, q75 = r["votes_to_target_q25_q75"]
        votes = f"{fmt(r['votes_to_target_median'])} [{fmt(q25)}, {fmt(q75)}]"
        if r["censored_runs"]:
            votes += f" {r['censored_runs']} cens."
        saving = r["saving_vs_uniform_of_medians"]
        paired = r["saving_vs_uniform_paired_median"]
        curve, base = r["votes_to_target_of_mean_tau_curve"], \
            r["votes_to_target_of_mean_tau_curve_uniform"]
        curve_saving = f"{1 - curve / base:+.0%}" if curve and base else ""
        print(f"{r['models']:>6}  {r['strategy']:<20} {votes:<36}"
              f" {'' if saving is None else f'{saving:+.0%}':>7}"
              f" {'' if paired is None else f'{paired:+.0%}':>7}"
              f" {fmt(curve):>5} {curve_saving:>4} {r['coverage']:>9.1%}"
              f" {r['scale_ratio_mean']:>6.3f}")
    print()
    print(f"{'models':>6}  {'strategy':<20} savings with 95% intervals (seeds resampled)")
    for r in rows:
        if r["strategy"] == "uniform":
            continue
        ci = r["saving_ci95_over_seeds"]
        text = lambda pair: "[{}, {}]".format(*(  # noqa: E731
            "?" if x is None else f"{x:+.0%}" for x in pair))
        print(f"{r['models']:>6}  {r['strategy']:<20} of medians "
              f"{_pct(r['saving_vs_uniform_of_medians'])} {text(ci['of_medians'])}"
              f"   paired {_pct(r['saving_vs_uniform_paired_median'])} {text(ci['paired'])}"
              f"   mean-curve {_pct(r['saving_vs_uniform_of_mean_tau_curve'])}"
              f" {text(ci['of_mean_tau_curve'])}")
    print("saving: 1 − median votes / uniform's median votes. paired: 1 − the median over seeds of "
          "votes / uniform's votes on the same seed.\nmean-curve: votes until the τ curve "
          "averaged over seeds stays ≥ 0.9, and its saving. coverage: true ratings inside the 95% "
          "intervals at the end.\nscale: sd of the fitted ratings / sd of the true ratings at "
          "the end (mean over seeds).")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--strategies", nargs="*", default=["uniform", "elo_gap", "uncertainty"],
                        choices=sorted([*STRATEGIES, ORACLE]))
    parser.add_argument("--ablation", action="store_true",
                        help=f"also run {', '.join([*ABLATIONS, ORACLE])}")
    parser.add_argument("--elo-sd", type=float, default=ELO_SD,
                        help="sd of the true ratings in Elo points")
    parser.add_argument("--models", nargs="*", type=int, default=list(SETUPS))
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    strategies = list(args.strategies) + ([*ABLATIONS, ORACLE] if args.ablation else [])
    jobs = [(m, seed, s, args.elo_sd) for m in args.models for seed in range(args.seeds)
            for s in strategies]
    jobs.sort(key=lambda j: -j[0] * (3 if j[2] in USES_SPREAD else 1))  # long jobs first
    started = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(_job, jobs))
    elapsed = time.perf_counter() - started
    rows = summarise(runs, strategies)
    print(f"Bradley–Terry raters, true Elo sd {args.elo_sd:.0f}, {args.seeds} seeds, "
          f"{RUN_ROUNDS} bootstrap rounds per refit, {FINAL_ROUNDS} for the final 95% intervals")
    print_table(rows)
    print(f"{len(jobs)} runs in {elapsed:.0f} s with {args.jobs} processes")

    taus: dict[tuple[int, str], list[list[float]]] = {}
    for r in runs:
        taus.setdefault((r["models"], r["strategy"]), []).append(r["tau"])
    curves = [{"models": m, "strategy": s, "checkpoints": runs_checkpoints(runs, m),
               "mean_tau": [round(float(t), 3) for t in np.mean(curve, axis=0)]}
              for (m, s), curve in sorted(taus.items())]
    kept = ["models", "strategy", "seed", "votes_to_target", "final_tau", "covered", "intervals",
            "scale_ratio"]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(_dump({
        "description": "Votes each pairing strategy needs until the Kendall tau between the "
                       f"fitted and the true order stays >= {TARGET_TAU}, and the coverage of "
                       f"{LEVEL:.0%} bootstrap intervals; simulated Bradley-Terry raters.",
        "command": " ".join(["python -m benchmarks.pairing_simulation", *(argv or sys.argv[1:])]),
        "config": {"elo_sd": args.elo_sd, "target_tau": TARGET_TAU, "level": LEVEL,
                   "run_bootstrap_rounds": RUN_ROUNDS, "final_bootstrap_rounds": FINAL_ROUNDS,
                   "setups": {str(m): {"batch": b, "horizon": h} for m, (b, h) in SETUPS.items()
                              if m in args.models},
                   "seeds": args.seeds, "strategies": strategies,
                   "rater_draws": "common random numbers: the k-th vote on a pair uses the same "
                                  "uniform draw under every strategy"},
        "summary": rows,
        "mean_tau_curves": curves,
        "run_columns": kept,
        "runs": [[round(r[k], 3) if isinstance(r[k], float) else r[k] for k in kept]
                 for r in sorted(runs, key=lambda r: (r["models"], r["strategy"], r["seed"]))],
        "cpu_seconds": {part: round(sum(r["seconds"][part] for r in runs), 1)
                        for part in ("weights", "fits", "final")},
        "runtime_seconds": round(elapsed, 1),
        "processes": args.jobs,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }))
    print(f"wrote {args.output}")


def _dump(results: dict) -> str:
    """JSON with one line per run and per curve, to keep the file small and diffable."""
    parts = []
    for key, value in results.items():
        if key in ("runs", "mean_tau_curves"):
            body = ",\n".join(f"  {json.dumps(item)}" for item in value)
            parts.append(f' "{key}": [\n{body}\n ]')
        else:
            parts.append(f' "{key}": ' + json.dumps(value, indent=1).replace("\n", "\n "))
    return "{\n" + ",\n".join(parts) + "\n}\n"


def runs_checkpoints(runs: list[dict], n_models: int) -> list[int]:
    return next(r["checkpoints"] for r in runs if r["models"] == n_models)


if __name__ == "__main__":
    main()
