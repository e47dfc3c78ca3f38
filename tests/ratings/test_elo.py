"""The S2S-Arena paper's online Elo (§4.1, eqs. 2–3), checked by hand-computed values."""

import math

import pytest

from app.ratings.elo import expected, online_elo


def test_first_vote_moves_both_models_by_half_k():
    records = online_elo([("x", "y", "a")])
    assert records["x"].rating == 1016.0 and records["y"].rating == 984.0


def test_second_vote_uses_the_updated_ratings():
    records = online_elo([("x", "y", "a"), ("y", "x", "a")])
    e_y = 1 / (1 + 10 ** ((1016 - 984) / 400))  # y, rated 984, against x at 1016
    assert records["y"].rating == pytest.approx(984 + 32 * (1 - e_y), abs=1e-12)
    assert records["x"].rating == pytest.approx(1016 - 32 * (1 - e_y), abs=1e-12)
    assert records["x"].rating + records["y"].rating == pytest.approx(2000)


def test_order_matters_as_in_an_online_rating():
    forward = online_elo([("x", "y", "a"), ("x", "z", "b"), ("y", "z", "a")])
    backward = online_elo([("y", "z", "a"), ("x", "z", "b"), ("x", "y", "a")])
    assert forward["x"].rating != backward["x"].rating


def test_ties_and_both_bad_score_half_and_count_as_ties():
    records = online_elo([("x", "y", "tie"), ("x", "y", "both_bad")])
    assert records["x"].rating == 1000.0 and records["y"].rating == 1000.0
    assert (records["x"].wins, records["x"].losses, records["x"].ties) == (0, 0, 2)


def test_wins_losses_matches_and_win_rate():
    records = online_elo([("x", "y", "a"), ("x", "z", "a"), ("z", "x", "a"), ("y", "z", "b")])
    x = records["x"]
    assert (x.wins, x.losses, x.matches) == (2, 1, 3)
    assert x.win_rate == pytest.approx(2 / 3)


def test_expected_score_formula():
    assert expected(1000, 1000) == 0.5
    assert expected(1400, 1000) == pytest.approx(1 / (1 + 10 ** -1))
    assert expected(1000, 1400) + expected(1400, 1000) == pytest.approx(1.0)


def test_paper_table_4_is_reachable_only_by_replay():
    """Elo is path dependent: the same counts in another order give other ratings; a long
    alternating sequence between equals stays within K of 1000."""
    votes = [("x", "y", "a" if i % 2 == 0 else "b") for i in range(1000)]
    x = online_elo(votes)["x"]
    assert abs(x.rating - 1000) <= 32 and x.matches == 1000 and math.isclose(x.win_rate, 0.5)


def test_the_fast_replay_equals_the_online_elo():
    import random

    from app.ratings.elo import SCORE_A, replay

    rng = random.Random(4)
    votes = [(*rng.sample(range(6), 2), rng.choice(["a", "b", "tie", "both_bad"])) for _ in range(500)]
    fast = replay([a for a, _, _ in votes], [b for _, b, _ in votes],
                  [SCORE_A[o] for _, _, o in votes], 6)
    slow = online_elo(votes)
    assert fast == [slow[m].rating for m in range(6)]  # bit for bit
