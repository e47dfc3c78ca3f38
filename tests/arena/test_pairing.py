"""Pairing strategies: pure functions, no database."""

import math
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.arena import pairing
from app.arena.pairing import (
    ELO_PER_NAT,
    STRATEGIES,
    UNKNOWN_SPREAD,
    PairingState,
    choose_pair,
    elo_gap_weights,
    pair_weights,
    uncertainty_weights,
)


def frequencies(pairs, state, strategy, draws=4000, seed=7):
    rng = random.Random(seed)
    counts = Counter(choose_pair(pairs, state, strategy, rng) for _ in range(draws))
    return {pair: counts[pair] / draws for pair in pairs}


# --- eq. 1 ---------------------------------------------------------------------------------


def test_elo_gap_weights_match_eq_1_by_hand():
    state = PairingState(ratings={"a": 1000.0, "b": 1030.0, "c": 1090.0})
    pairs = [("a", "b"), ("a", "c"), ("b", "c")]  # gaps 30, 90, 60
    # μ = 90 / 3 = 30, σ = max(30 / 2, 1) = 15
    weights = elo_gap_weights(pairs, state)
    assert weights[0] == 1.0  # the gap equal to μ gets the largest weight, exactly 1
    assert weights[1] == pytest.approx(math.exp(-((90 - 30) ** 2) / (2 * 15**2)))  # e^−8
    assert weights[2] == pytest.approx(math.exp(-((60 - 30) ** 2) / (2 * 15**2)))  # e^−2
    assert weights[1] == pytest.approx(math.exp(-8.0))
    assert weights[2] == pytest.approx(math.exp(-2.0))


def test_elo_gap_sigma_never_drops_below_one():
    state = PairingState(ratings={"a": 1000.0, "b": 1001.5, "c": 1003.0})
    pairs = [("a", "b"), ("a", "c"), ("b", "c")]  # gaps 1.5, 3, 1.5: μ = 1, σ = max(0.5, 1) = 1
    weights = elo_gap_weights(pairs, state)
    assert weights == pytest.approx([math.exp(-0.125), math.exp(-2.0), math.exp(-0.125)])


def test_elo_gap_unrated_models_sit_at_1000_and_equal_ratings_mean_uniform():
    pairs = [("a", "b"), ("a", "c"), ("b", "c")]
    assert elo_gap_weights(pairs, PairingState()) == [1.0, 1.0, 1.0]  # μ = 0, σ = 1, all gaps 0
    state = PairingState(ratings={"a": 1060.0})  # b and c at 1000: gaps 60, 60, 0; μ = 20, σ = 10
    assert elo_gap_weights(pairs, state) == pytest.approx(
        [math.exp(-8.0), math.exp(-8.0), math.exp(-2.0)])


# --- every strategy: a candidate, never a self-pair ----------------------------------------

models = st.integers(min_value=0, max_value=6)
maybe_number = st.one_of(
    st.floats(min_value=-1e4, max_value=1e4),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 0.0]),
)


@st.composite
def scenarios(draw):
    proper = draw(st.lists(st.tuples(models, models).filter(lambda p: p[0] != p[1]),
                           min_size=1, max_size=15))
    selfish = draw(st.lists(models.map(lambda m: (m, m)), max_size=3))
    pairs = draw(st.permutations(proper + selfish))
    named = sorted({m for p in pairs for m in p})
    state = PairingState(
        ratings=draw(st.dictionaries(st.sampled_from(named), maybe_number)),
        spread=draw(st.dictionaries(st.sampled_from(named), maybe_number)),
        votes=draw(st.dictionaries(st.sampled_from(named), st.integers(0, 10_000))),
        pair_votes=draw(st.dictionaries(st.sampled_from(proper), st.integers(0, 1000))),
    )
    return pairs, state


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.sampled_from(sorted(STRATEGIES)), st.integers(0, 2**32 - 1))
def test_every_strategy_returns_a_candidate_and_never_a_self_pair(scenario, strategy, seed):
    pairs, state = scenario
    chosen = choose_pair(pairs, state, strategy, random.Random(seed))
    assert chosen in pairs
    assert chosen[0] != chosen[1]
    weights = pair_weights(pairs, state, strategy)
    assert len(weights) == len(pairs)
    assert all(math.isfinite(w) and w >= 0 for w in weights)
    assert all(w == 0 for (a, b), w in zip(pairs, weights) if a == b)


def test_no_proper_pair_is_an_error():
    rng = random.Random(0)
    with pytest.raises(ValueError):
        choose_pair([], PairingState(), "uniform", rng)
    with pytest.raises(ValueError):
        choose_pair([("a", "a")], PairingState(), "uncertainty", rng)
    with pytest.raises(ValueError):
        choose_pair([("a", "b")], PairingState(), "no-such-strategy", rng)


# --- the uncertainty strategy ---------------------------------------------------------------


def test_uncertainty_prefers_overlapping_intervals():
    # a and b overlap (5 Elo apart, sd 20 each); c is 200 Elo clear of both
    state = PairingState(
        ratings={"a": 1000.0, "b": 1005.0, "c": 1200.0},
        spread={"a": 20.0, "b": 20.0, "c": 20.0},
        votes={"a": 400, "b": 400, "c": 400},
    )
    pairs = [("a", "b"), ("a", "c"), ("b", "c")]
    share = frequencies(pairs, state, "uncertainty")
    assert share[("a", "b")] > 0.8
    # the floor: every pair keeps a chance
    assert share[("a", "c")] > 0.01 and share[("b", "c")] > 0.01


def test_uncertainty_prefers_an_under_voted_model():
    # four settled models 100 Elo apart and a new model nobody has rated yet
    settled = {m: 1000.0 + 100 * k for k, m in enumerate("abcd")}
    state = PairingState(
        ratings=settled,
        spread={m: 15.0 for m in settled},
        votes={**{m: 600 for m in settled}, "new": 0},
    )
    pairs = [(x, y) for i, x in enumerate([*settled, "new"]) for y in [*settled, "new"][i + 1:]]
    share = frequencies(pairs, state, "uncertainty")
    with_new = sum(f for p, f in share.items() if "new" in p)
    assert with_new > 0.8  # 4 of the 10 pairs: 0.4 under uniform
    # once it has votes and a tight spread, it is one model among others again: here the top of
    # an evenly spaced ladder, in one of the four neighbouring pairs
    settled_too = PairingState(
        ratings={**settled, "new": 1400.0},
        spread={**state.spread, "new": 15.0},
        votes={m: 600 for m in [*settled, "new"]},
    )
    share = frequencies(pairs, settled_too, "uncertainty")
    assert sum(f for p, f in share.items() if "new" in p) < 0.4


def test_uncertainty_with_nothing_known_is_uniform():
    pairs = [("a", "b"), ("a", "c"), ("b", "c")]
    weights = uncertainty_weights(pairs, PairingState())
    assert weights == pytest.approx([weights[0]] * 3)


def test_spread_bounds():
    state = PairingState(spread={"a": 5.0, "b": 5.0, "c": 1e6, "d": float("nan")},
                         votes={"a": 100, "c": 100, "e": 0, "f": 400})
    assert state.sd("a") == pytest.approx(2 * ELO_PER_NAT / 10)  # 100 votes cannot give sd 5
    assert state.sd("b") == 5.0  # vote count unknown: taken as given
    assert state.sd("c") == UNKNOWN_SPREAD  # capped
    assert state.sd("d") == UNKNOWN_SPREAD  # not a number: unknown
    assert state.sd("e") == UNKNOWN_SPREAD  # a new model
    assert state.sd("f") == pytest.approx(2 * ELO_PER_NAT / 20)  # votes alone: the bound
    assert state.sd("unseen") == UNKNOWN_SPREAD


def test_pair_votes_in_either_orientation():
    state = PairingState(pair_votes={("b", "a"): 7})
    assert state.between("a", "b") == 7 and state.between("b", "a") == 7
    assert state.between("a", "c") == 0


# --- degenerate weights fall back to uniform -------------------------------------------------


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_all_zero_or_invalid_weights_fall_back_to_uniform(monkeypatch, bad):
    monkeypatch.setitem(STRATEGIES, "broken", lambda pairs, state: [bad] * len(pairs))
    pairs = [("a", "b"), ("a", "c"), ("b", "c"), ("c", "c")]
    assert pair_weights(pairs, PairingState(), "broken") == [1.0, 1.0, 1.0, 0.0]
    share = frequencies(pairs, PairingState(), "broken", draws=3000)
    assert share[("c", "c")] == 0
    for pair in pairs[:3]:
        assert share[pair] == pytest.approx(1 / 3, abs=0.05)


def test_uncertainty_all_zero_spreads_fall_back_to_uniform():
    # spreads of 0 with unknown vote counts: no variance left anywhere, so nothing to prefer
    state = PairingState(ratings={"a": 1000.0, "b": 1010.0, "c": 1300.0},
                         spread={"a": 0.0, "b": 0.0, "c": 0.0})
    pairs = [("a", "b"), ("a", "c"), ("b", "c")]
    assert uncertainty_weights(pairs, state) == [1.0, 1.0, 1.0]


def test_choose_pair_samples_in_proportion_to_the_weights():
    state = PairingState(ratings={"a": 1000.0, "b": 1030.0, "c": 1090.0})
    pairs = [("a", "b"), ("a", "c"), ("b", "c")]
    weights = pair_weights(pairs, state, "elo_gap")
    share = frequencies(pairs, state, "elo_gap", draws=20000)
    for pair, w in zip(pairs, weights):
        assert share[pair] == pytest.approx(w / sum(weights), abs=0.01)


def test_strategies_are_registered_by_name():
    assert set(STRATEGIES) >= {"uniform", "elo_gap", "uncertainty"}
    assert pairing.STRATEGIES["uncertainty"] is uncertainty_weights
