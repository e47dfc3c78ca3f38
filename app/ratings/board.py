"""One slice's leaderboard as the API and the command line show it. Pure code: counts and
Elo records in, a JSON-ready table out."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from app.ratings import bt
from app.ratings.elo import INITIAL


def build(
    rows: Iterable[tuple[Hashable, Hashable, str, float]],
    elo: Mapping[Hashable, float],
    *,
    models: Sequence[Hashable],
    names: Mapping[Hashable, str],
    details: Mapping[Hashable, Mapping[str, Any]] | None = None,
    rounds: int = 1000,
    seed: int = 0,
    ridge: float = bt.DEFAULT_RIDGE,
    min_votes: int = 20,
    recipe: str | None = None,
) -> dict[str, Any]:
    """rows: (model_a, model_b, outcome, count); elo: the online Elo rating per model over the
    same votes in log order; models: every model to show (with or without votes); details: extra
    fields per model (organisation, ...). recipe "chatbot-arena" takes the point ratings from
    that arena's published logistic-regression fit, and its intervals from the same penalised
    likelihood."""
    rows = list(rows)
    details = details or {}
    counts = bt.PairCounts.from_counts(rows, models=models)
    if recipe == "chatbot-arena":
        table = bt.table(counts, rounds=rounds, seed=seed, ridge=bt.RECIPE_RIDGE,
                         min_votes=min_votes, weight=2.0, centre_on_ranked=False)
        table.rating = bt.chatbot_arena_fit(counts).ratings
    elif recipe is None:
        table = bt.table(counts, rounds=rounds, seed=seed, ridge=ridge, min_votes=min_votes)
    else:
        raise ValueError(f"unknown recipe {recipe!r}")
    voted = {m for a, b, _, _ in rows for m in (a, b)}
    entries = []
    for k, model in enumerate(counts.models):
        matches = int(table.matches[k])
        entries.append({
            "id": model,
            "name": names.get(model, str(model)),
            **details.get(model, {}),
            "rating": _round(table.rating[k]),
            # no votes, no interval: the bootstrap's [1000, 1000] would look certain
            "ci_lower": _round(table.ci_lower[k]) if matches else None,
            "ci_upper": _round(table.ci_upper[k]) if matches else None,
            "rank_ub": int(table.rank_ub[k]) or None,
            "provisional": bool(table.provisional[k]),
            "elo": _round(elo.get(model, INITIAL)),
            "wins": _count(table.wins[k]),
            "losses": _count(table.losses[k]),
            "ties": _count(table.ties[k]),
            "matches": matches,
            "win_rate": round(float(table.wins[k]) / matches, 4) if matches else 0.0,
        })
    order = sorted(range(len(entries)), key=lambda k: (
        entries[k]["provisional"], -(entries[k]["rating"] or 0), entries[k]["name"]))
    entries = [entries[k] for k in order]
    groups = [[names.get(counts.models[k], str(counts.models[k])) for k in group]
              for group in table.components if any(counts.models[k] in voted for k in group)]
    rate = table.win_rate_matrix[np.ix_(order, order)]
    battles = table.battle_matrix[np.ix_(order, order)]
    mean, sd = table.stability
    return {
        "votes": int(round(sum(n for *_, n in rows))),
        "models": entries,
        "connected": len(groups) <= 1,
        "components": groups,
        "stability": {"spearman_mean": _round(mean, 4), "spearman_sd": _round(sd, 4)},
        "matrix": {
            "models": [e["name"] for e in entries],
            "win_rate": [[_round(x, 4) for x in row] for row in rate],
            "battles": [[_count(x) for x in row] for row in battles],
        },
    }


def _round(value: float, digits: int = 2) -> float | None:
    return round(float(value), digits) if math.isfinite(value) else None


def _count(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)
