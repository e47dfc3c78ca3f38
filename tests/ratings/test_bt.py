"""Bradley–Terry with bootstrap intervals: published leaderboards, independent oracles, and the
properties a rating must have."""

import csv
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.ratings import bt
from tests.conftest import DATA

WINNER = {"model_a": "a", "model_b": "b", "tie": "tie", "tie (bothbad)": "both_bad"}


def genai_arena(anony_only: bool) -> bt.PairCounts:
    battles = json.loads((DATA / "genai-arena" / "clean_battle_20240220.json").read_text())
    rows = [(b["model_a"], b["model_b"], WINNER[b["winner"]], 1) for b in battles
            if (b["anony"] or not anony_only) and b["model_a"] != b["model_b"]]
    return bt.PairCounts.from_counts(rows)


def genai_published(column: str) -> dict[str, float]:
    with open(DATA / "genai-arena" / "leaderboard_20240220.csv") as handle:
        return {row["key"]: float(row[column]) for row in csv.DictReader(handle)}


def talk_arena_rows() -> list[dict]:
    with open(DATA / "talk-arena" / "prolific_pairwise_published.csv") as handle:
        return list(csv.DictReader(handle))


def talk_arena() -> bt.PairCounts:
    rows = []
    for r in talk_arena_rows():
        rows += [(r["model1"], r["model2"], "a", int(r["model1_wins"])),
                 (r["model1"], r["model2"], "b", int(r["model2_wins"])),
                 (r["model1"], r["model2"], "tie", int(r["ties"]))]
    return bt.PairCounts.from_counts(rows)


# --- published results ------------------------------------------------------------------


def test_genai_arena_anonymous_leaderboard_is_reproduced_by_its_recipe():
    counts = genai_arena(anony_only=True)
    fit = bt.chatbot_arena_fit(counts)
    published = genai_published("Arena Elo rating (anony)")
    assert set(counts.models) == set(published)
    for model, rating in zip(counts.models, fit.ratings):
        assert rating == pytest.approx(published[model], abs=1e-6), model


def test_genai_arena_full_leaderboard_within_the_self_battle_it_miscounted():
    """The full log holds one battle of a model against itself, which the published code
    encoded as a vote against a phantom model; we drop it, which moves ratings by < 1.5."""
    counts = genai_arena(anony_only=False)
    fit = bt.chatbot_arena_fit(counts)
    published = genai_published("Arena Elo rating (full)")
    differences = [abs(r - published[m]) for m, r in zip(counts.models, fit.ratings)]
    assert max(differences) < 1.5
    assert sorted(published, key=published.get) == [m for _, m in sorted(zip(fit.ratings, counts.models))]


def test_genai_arena_is_two_comparison_graphs():
    counts = genai_arena(anony_only=True)
    groups = [sorted(counts.models[k] for k in group) for group in bt.components(counts)]
    assert len(groups) == 2
    assert {tuple(sorted({name.rsplit("_", 1)[1] for name in g})) for g in groups} == {
        ("generation",), ("edition",)}


def test_talk_arena_published_bradley_terry_scores():
    counts = talk_arena()
    strengths = bt.fit(counts).strengths
    share = 100 * np.exp(strengths) / np.exp(strengths).sum()
    scores = dict(zip(counts.models, share))
    assert round(scores["DiVA"], 1) == 36.0 or round(scores["DiVA"], 2) == 36.05
    assert round(scores["GPT4o"], 1) == 24.2
    assert 21.6 <= round(scores["Gemini"], 1) <= 21.7
    assert round(scores["Qwen2"], 1) == 14.5
    assert round(scores["Typhoon"], 1) == 3.6
    # the published order, although Gemini beats GPT4o head to head
    assert sorted(scores, key=scores.get, reverse=True) == ["DiVA", "GPT4o", "Gemini", "Qwen2", "Typhoon"]


def test_talk_arena_pairwise_rates_intervals_and_p_values():
    for r in talk_arena_rows():
        w1, w2, t = int(r["model1_wins"]), int(r["model2_wins"]), int(r["ties"])
        # the site shows one side of each pair: match whichever side it shows
        first, second = bt.pair_test(w1, w2, t), bt.pair_test(w2, w1, t)
        shown = first if round(first.win_rate, 3) == float(r["published_win_rate"]) else second
        assert round(shown.win_rate, 3) == float(r["published_win_rate"])
        assert round(shown.ci_lower, 3) == pytest.approx(float(r["published_ci_low"]), abs=0.0011)
        assert round(shown.ci_upper, 3) == pytest.approx(float(r["published_ci_high"]), abs=0.0011)
        printed = r["published_p_value"]  # shown to 3 or 4 decimals; "0" when below 0.00005
        decimals = max(len(printed.partition(".")[2]), 4 if printed == "0" else 0)
        assert abs(shown.p_value - float(printed)) <= 0.5 * 10 ** -decimals + 1e-12
        assert (shown.p_value < 0.05) == (r["published_significant"] == "true")


def test_talk_arena_live_votes_flag_a_one_vote_model_as_provisional():
    log = json.loads((DATA / "talk-arena" / "live_votes.json").read_text())["_default"].values()
    outcome = {0: "a", 1: "b", 0.5: "tie"}
    counts = bt.PairCounts.from_counts((v["model_a"], v["model_b"], outcome[v["outcome"]], 1)
                                       for v in log)
    table = bt.table(counts, rounds=200, min_votes=20)
    votes = dict(zip(counts.models, table.matches))
    assert votes["gemini_2f"] == 1 and sum(votes.values()) == 2 * 303
    provisional = dict(zip(counts.models, table.provisional))
    assert provisional["gemini_2f"] and not provisional["gpt4o"]
    assert dict(zip(counts.models, table.rank_ub))["gemini_2f"] == 0


# --- independent implementations --------------------------------------------------------


def test_the_exact_recipe_optimum_matches_scikit_learn_run_to_convergence():
    from sklearn.linear_model import LogisticRegression

    battles = json.loads((DATA / "genai-arena" / "clean_battle_20240220.json").read_text())
    battles = [b for b in battles if b["anony"]]
    counts = genai_arena(anony_only=True)
    index = {m: k for k, m in enumerate(counts.models)}
    rows = battles + battles  # row-level: every vote twice, a tie once each way
    x = np.zeros((len(rows), counts.n_models))
    y = np.zeros(len(rows))
    for r, b in enumerate(rows):
        x[r, index[b["model_a"]]], x[r, index[b["model_b"]]] = math.log(10), -math.log(10)
        y[r] = b["winner"] == "model_a" or (b["winner"].startswith("tie") and r < len(battles))
    reference = LogisticRegression(fit_intercept=False, tol=1e-12, max_iter=100_000).fit(x, y)
    ours = bt.table(counts, rounds=0, weight=2, ridge=bt.RECIPE_RIDGE, centre_on_ranked=False).rating
    assert np.allclose(ours, 1000 + 400 * reference.coef_[0], atol=1e-3)


def test_agrees_with_choix():
    import choix

    rng = np.random.default_rng(7)
    truth = rng.normal(0, 1, 8)
    data, rows = [], []
    for _ in range(3000):
        a, b = rng.choice(8, 2, replace=False)
        a_wins = rng.random() < 1 / (1 + math.exp(truth[b] - truth[a]))
        data.append((a, b) if a_wins else (b, a))
        rows.append((int(a), int(b), "a" if a_wins else "b", 1))
    counts = bt.PairCounts.from_counts(rows, models=range(8))
    ours = bt.fit(counts, ridge=0.02).strengths  # choix's penalty is α·‖θ‖², ours (λ/2)·‖s‖²
    theirs = choix.opt_pairwise(8, data, alpha=0.01)
    assert np.allclose(ours, theirs - theirs.mean(), atol=1e-5)


def test_aggregated_and_row_level_fits_agree():
    from scipy.optimize import minimize

    rng = np.random.default_rng(3)
    rows = [(int(a), int(b), str(o), 1) for a, b, o in zip(
        rng.integers(0, 5, 400), rng.integers(0, 5, 400), rng.choice(["a", "b", "tie"], 400))
        if a != b]
    counts = bt.PairCounts.from_counts(rows, models=range(5))
    score = {"a": 1.0, "b": 0.0, "tie": 0.5}

    def loss(s):  # one term per vote, in log order
        total = bt.DEFAULT_RIDGE / 2 * (s @ s)
        for a, b, o, _ in rows:
            d = s[a] - s[b]
            total += score[o] * np.logaddexp(0, -d) + (1 - score[o]) * np.logaddexp(0, d)
        return total

    row_level = minimize(loss, np.zeros(5), method="BFGS", options={"gtol": 1e-10}).x
    # the ridge barely curves the shift direction, so compare the centred strengths
    assert np.allclose(bt.fit(counts).strengths, row_level - row_level.mean(), atol=1e-6)


# --- properties -------------------------------------------------------------------------

votes_strategy = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 4), st.sampled_from(["a", "b", "tie"]))
    .filter(lambda v: v[0] != v[1]), min_size=1, max_size=60)
FLIP = {"a": "b", "b": "a", "tie": "tie"}


def ratings_by_model(rows) -> dict:
    counts = bt.PairCounts.from_counts([(a, b, o, 1) for a, b, o in rows])
    return dict(zip(counts.models, bt.fit(counts).ratings))


@settings(max_examples=60, deadline=None)
@given(votes_strategy, st.permutations(range(5)))
def test_relabelling_models_changes_nothing(rows, permutation):
    names = [f"model-{k}" for k in permutation]
    before = ratings_by_model([(f"model-{a}", f"model-{b}", o) for a, b, o in rows])
    after = ratings_by_model([(names[a], names[b], o) for a, b, o in rows])
    relabelled = {names[int(m.split("-")[1])]: r for m, r in before.items()}
    assert relabelled.keys() == after.keys()
    assert all(math.isclose(relabelled[m], after[m], abs_tol=1e-6) for m in after)


@settings(max_examples=60, deadline=None)
@given(votes_strategy)
def test_swapping_sides_changes_nothing(rows):
    before = ratings_by_model(rows)
    after = ratings_by_model([(b, a, FLIP[o]) for a, b, o in rows])
    assert all(math.isclose(before[m], after[m], abs_tol=1e-6) for m in before)


@settings(max_examples=60, deadline=None)
@given(votes_strategy, st.integers(0, 4), st.integers(0, 4))
def test_one_more_win_never_lowers_the_winner(rows, winner, loser):
    if winner == loser:
        return
    before = ratings_by_model(rows)
    after = ratings_by_model(rows + [(winner, loser, "a")])
    assert after[winner] >= before.get(winner, 1000.0) - 1e-6 or winner not in before


# --- bootstrap, ranks, stability ---------------------------------------------------------


def test_bootstrap_is_reproducible_and_independent_of_threads():
    counts = talk_arena()
    point = bt.fit(counts)
    one = bt.bootstrap(counts, point, rounds=300, seed=11, threads=1).ratings
    two = bt.bootstrap(counts, point, rounds=300, seed=11, threads=2).ratings
    other = bt.bootstrap(counts, point, rounds=300, seed=12, threads=2).ratings
    assert np.array_equal(one, two) and not np.array_equal(one, other)


def test_bootstrap_rounds_are_exact_fits_of_their_resample():
    """Each round's ratings are the optimum for its own counts, not an approximation."""
    counts = talk_arena()
    point = bt.fit(counts)
    rng_rounds = bt.bootstrap(counts, point, rounds=5, seed=1, chunk=5, threads=1).ratings
    cells = counts.cell_counts().ravel()
    sample = bt.multinomial(np.random.default_rng(np.random.SeedSequence(1).spawn(1)[0]),
                            int(cells.sum()), cells / cells.sum(), 5).reshape(5, -1, 3)
    for k in range(5):
        resampled = bt.PairCounts(counts.models, counts.i, counts.j, *sample[k].T.astype(float))
        assert np.allclose(bt.fit(resampled).ratings, rng_rounds[k], atol=1e-3)


def test_the_fast_multinomial_has_the_multinomial_distribution():
    rng = np.random.default_rng(5)
    p = rng.random(30)
    p /= p.sum()
    draws = bt.multinomial(rng, 300, p, 40_000)
    assert (draws.sum(axis=1) == 300).all() and draws.min() >= 0
    exact_cov = 300 * (np.diag(p) - np.outer(p, p))
    assert np.abs(draws.mean(axis=0) - 300 * p).max() < 0.1
    assert np.abs(np.cov(draws.T) - exact_cov).max() < 0.4  # numpy's own sampler: ~0.25


def test_the_table_poisson_sampler_has_the_poisson_distribution():
    """Inversion tables for small and large means, numpy's sampler past the table limit: each
    column's distribution is the Poisson one."""
    import scipy.stats

    means = np.array([0.3, 4.5, 100.0, 100.0, 3000.0, 60000.0])
    poisson = bt.Poisson(means)
    assert not poisson.inside[-1] and poisson.inside[:-1].all()
    draws = poisson.draw(np.random.default_rng(3), 100_000)
    assert np.array_equal(draws, bt.Poisson(means).draw(np.random.default_rng(3), 100_000))
    for column, mean in enumerate(means):
        values, seen = np.unique(draws[:, column], return_counts=True)
        # Kolmogorov–Smirnov distance, below its 99.5% point for 100,000 draws
        distance = np.abs(np.cumsum(seen) / len(draws) - scipy.stats.poisson.cdf(values, mean))
        assert distance.max() < 1.73 / np.sqrt(len(draws))
        assert abs(draws[:, column].mean() - mean) < 4 * np.sqrt(mean / len(draws))
        assert abs(draws[:, column].var() / mean - 1) < 0.03


def test_intervals_cover_the_truth_about_95_percent_of_the_time():
    covered, total = 0, 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        truth = rng.normal(0, 0.6, 10)
        a = rng.integers(0, 10, 3000)
        b = (a + rng.integers(1, 10, 3000)) % 10
        won = rng.random(3000) < 1 / (1 + np.exp(truth[b] - truth[a]))
        counts = bt.PairCounts.from_counts(
            [(int(x), int(y), "a" if w else "b", 1) for x, y, w in zip(a, b, won)], models=range(10))
        table = bt.table(counts, rounds=400, seed=seed)
        centred = 1000 + bt.SCALE * (truth - truth.mean())
        covered += int(((centred >= table.ci_lower) & (centred <= table.ci_upper)).sum())
        total += 10
    assert 0.90 <= covered / total <= 0.99


def test_rank_upper_bound():
    lower = np.array([1100.0, 1050.0, 1000.0, 900.0])
    upper = np.array([1200.0, 1150.0, 1060.0, 990.0])
    # model 2's upper bound (1060) is below model 0's lower bound (1100) only
    assert bt.rank_upper_bound(lower, upper).tolist() == [1, 1, 2, 4]
    assert bt.rank_upper_bound(lower, upper, np.array([False, True, True, True])).tolist() == [1, 1, 1, 3]


def test_stability_matches_scipy_spearman():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    point = np.array([1200.0, 1100.0, 1000.0, 900.0, 800.0])
    rounds = point + rng.normal(0, 80, (50, 5))
    mean, sd = bt.ranking_stability(point, rounds)
    rhos = [spearmanr(point, r).statistic for r in rounds]
    assert mean == pytest.approx(np.mean(rhos)) and sd == pytest.approx(np.std(rhos, ddof=1))


def test_matrices():
    counts = bt.PairCounts.from_counts([("x", "y", "a", 3), ("y", "x", "a", 1), ("x", "y", "tie", 2),
                                        ("y", "z", "b", 4)])
    rate, battles = bt.pairwise_matrices(counts)
    x, y, z = (counts.models.index(m) for m in "xyz")
    assert battles[x, y] == battles[y, x] == 6 and battles[x, z] == 0
    assert rate[x, y] == pytest.approx((3 + 1) / 6) and rate[y, x] == pytest.approx((1 + 1) / 6)
    assert rate[z, y] == 1.0 and math.isnan(rate[x, z])


def test_sparse_rounds_where_a_model_won_everything_reach_the_exact_optimum():
    """Resamples of a sparse log leave models that won (or lost) every vote, whose optimum only
    the ridge holds far out; the batched fit starts those near it (`_sweep_out`) and must still
    end at the exact optimum of every round: a zero gradient."""
    rng = np.random.default_rng(5)
    m, votes = 30, 60
    a = rng.integers(0, m, votes)
    b = (a + rng.integers(1, m, votes)) % m
    rows = [(int(x), int(y), "a" if rng.random() < 0.5 else "b", 1) for x, y in zip(a, b)]
    counts = bt.PairCounts.from_counts(rows, models=range(m))
    cells = counts.cell_counts()
    drawn = rng.multinomial(int(cells.sum()), (cells / cells.sum()).ravel(), 40)
    wins_i, wins_j = bt.effective_wins(drawn.reshape(40, -1, 3).astype(float))
    strengths = bt.fit_batch(counts, wins_i, wins_j, start=bt.fit(counts).strengths)
    x = strengths[:, counts.i] - strengths[:, counts.j]
    residual = (wins_i + wins_j) / (1.0 + np.exp(-x)) - wins_i
    gradient = np.zeros_like(strengths)
    for k in range(40):
        gradient[k] = (np.bincount(counts.i, residual[k], m) - np.bincount(counts.j, residual[k], m)
                       + bt.DEFAULT_RIDGE * strengths[k])
    assert np.abs(gradient).max() < 1e-8
    assert np.abs(strengths).max() > 8  # the far-out optimum of an unbeaten model was reached
