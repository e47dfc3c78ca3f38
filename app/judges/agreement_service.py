"""How well raters agree, read from the vote log: each judge against humans, and humans
against each other (the S2S-Arena paper's Table 3 and its inter-annotator check).

Two votes are comparable when they judged the same item: the same prompt and the same two
models, whichever side each model played. A vote's label names the winning model (or "tie";
both-bad counts as a tie), so sides never matter.
"""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import combinations
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.judges.agreement import cohen_kappa, cohen_kappa_bootstrap, correlation

_VOTES = text("""
SELECT r.kind, r.name, r.id, b.prompt_id, b.model_a_id, b.model_b_id, v.outcome
FROM votes v JOIN battles b ON b.id = v.battle_id JOIN raters r ON r.id = v.rater_id
-- As for the leaderboard: attention checks grade the voter, not the models, and the votes of
-- a flagged rater are left out until an admin lifts the flag.
WHERE b.gold_bad_slot IS NULL AND r.flagged_at IS NULL
ORDER BY v.id
""")


def _label(model_a: int, model_b: int, outcome: str) -> str:
    if outcome in ("tie", "both_bad"):
        return "tie"
    winner = model_a if outcome == "a" else model_b
    return "lower id won" if winner == min(model_a, model_b) else "higher id won"


def _summary(a: list[str], b: list[str], rounds: int, seed: int) -> dict[str, Any]:
    if not a:
        return {"items": 0, "observed": None, "kappa": None}
    kappa = cohen_kappa(a, b)
    intervals = cohen_kappa_bootstrap(a, b, rounds=rounds, seed=seed)

    def num(x: float) -> float | None:
        return None if math.isnan(x) else round(x, 4)

    return {
        "items": len(a),
        "observed": num(kappa.observed),
        "observed_ci": [num(intervals.observed.low), num(intervals.observed.high)],
        "kappa": num(kappa.kappa),
        "kappa_ci": [num(intervals.kappa.low), num(intervals.kappa.high)],
    }


def agreement(session: Session, *, rounds: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Each judge against humans, over every (human vote, judge vote) pair on a common item,
    and humans against humans over pairs of votes by two different people on one item."""
    humans: dict[tuple, list[tuple[int, str]]] = defaultdict(list)
    judges: dict[str, dict[tuple, str]] = defaultdict(dict)
    for kind, name, rater_id, prompt_id, model_a, model_b, outcome in session.execute(_VOTES):
        item = (prompt_id, min(model_a, model_b), max(model_a, model_b))
        label = _label(model_a, model_b, outcome)
        if kind == "human":
            humans[item].append((rater_id, label))
        else:
            judges[name][item] = label  # a judge's latest verdict on the item
    result: dict[str, Any] = {"judges": [], "humans": None}
    for name, verdicts in sorted(judges.items()):
        a, b = [], []
        for item, judged in verdicts.items():
            for _, human in humans.get(item, []):
                a.append(human)
                b.append(judged)
        result["judges"].append({"judge": name, "against": "human", **_summary(a, b, rounds, seed)})
    a, b = [], []
    for votes in humans.values():
        for (rater_x, x), (rater_y, y) in combinations(votes, 2):
            if rater_x != rater_y:
                a.append(x)
                b.append(y)
    result["humans"] = {"against": "human", **_summary(a, b, rounds, seed)}
    result["pointwise"] = _pointwise(session, rounds, seed)
    return result


_SCORE_PAIRS = text("""
SELECT j.name, s.score, avg(h.score)::float
FROM scores s JOIN judges j ON j.id = s.judge_id
JOIN human_ratings h ON h.response_id = s.response_id AND h.score IS NOT NULL
WHERE s.status = 'scored'
GROUP BY j.name, s.id, s.score
ORDER BY j.name, s.id
""")


def _pointwise(session: Session, rounds: int, seed: int) -> list[dict[str, Any]]:
    """Each pointwise judge's scores against people's mean 1–5 rating of the same answers:
    Pearson's r with Fisher and bootstrap 95% intervals (ParaS2S's Tables 1 and 2)."""
    pairs: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for name, judged, human in session.execute(_SCORE_PAIRS):
        pairs[name][0].append(float(judged))
        pairs[name][1].append(float(human))
    found = []
    for name, (judged, human) in sorted(pairs.items()):
        entry: dict[str, Any] = {"judge": name, "against": "human", "responses": len(judged),
                                 "pearson": None}
        if len(judged) >= 4 and len(set(judged)) > 1 and len(set(human)) > 1:
            r = correlation(judged, human, rounds=rounds, seed=seed)

            def num(x: float) -> float | None:
                return None if math.isnan(x) else round(x, 4)

            entry |= {"pearson": num(r.r), "p_value": num(r.p_value),
                      "fisher_ci": [num(r.fisher.low), num(r.fisher.high)],
                      "bootstrap_ci": [num(r.bootstrap.low), num(r.bootstrap.high)]}
        found.append(entry)
    return found
