"""Reading vote logs from files: our own JSONL export, Chatbot Arena's battle JSON (a list, or
one battle per line), and Talk Arena's TinyDB dump. Pure parsing; no database."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHATBOT_ARENA_WINNER = {"model_a": "a", "model_b": "b", "tie": "tie", "tie (bothbad)": "both_bad"}
TALK_ARENA_OUTCOME = {0: "a", 1: "b", 0.5: "tie"}
OUTCOMES = ("a", "b", "tie", "both_bad")
SLICE_FIELDS = ("domain", "level", "task", "language", "dataset", "rater", "rater_kind")


class LogError(ValueError):
    pass


@dataclass(frozen=True)
class LoggedVote:
    model_a: str
    model_b: str
    outcome: str  # a, b, tie or both_bad
    order: float  # position in the log: vote id, timestamp or line
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class VoteLog:
    format: str
    votes: list[LoggedVote]
    dropped_self_battles: int = 0


def read_log(path: Path) -> VoteLog:
    text = Path(path).read_text(encoding="utf-8")
    stripped = text.lstrip()
    if not stripped:
        raise LogError(f"{path} is empty")
    if stripped[0] == "[":
        return _chatbot_arena(_loads(text, path), path)
    if stripped[0] == "{" and "\n" not in stripped.strip():
        whole = _loads(text, path)
        if "_default" in whole:
            return _talk_arena(whole["_default"], path)
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise LogError(f"{path} line {number}: not valid JSON ({exc.msg})") from exc
    if records and "_default" in records[0]:
        return _talk_arena(records[0]["_default"], path)
    if records and "winner" in records[0]:
        return _chatbot_arena(records, path)
    return _ours(records, path)


def _loads(text: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LogError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc


def _finish(fmt: str, votes: list[LoggedVote]) -> VoteLog:
    kept = [v for v in votes if v.model_a != v.model_b]
    kept.sort(key=lambda v: v.order)  # stable: equal positions keep file order
    return VoteLog(fmt, kept, dropped_self_battles=len(votes) - len(kept))


def _chatbot_arena(records: list[dict], path: Path) -> VoteLog:
    votes = []
    for number, record in enumerate(records, start=1):
        try:
            outcome = CHATBOT_ARENA_WINNER[record["winner"]]
            votes.append(LoggedVote(
                str(record["model_a"]), str(record["model_b"]), outcome,
                float(record.get("tstamp", number)),
                {"anony": bool(record.get("anony", True)), "rater": record.get("judge"),
                 "rater_kind": "human", "language": record.get("language")},
            ))
        except KeyError as exc:
            raise LogError(f"{path} battle {number}: missing or unknown {exc}") from exc
    return _finish("chatbot-arena", votes)


def _talk_arena(records: dict[str, dict], path: Path) -> VoteLog:
    votes = []
    for number, record in enumerate(records.values(), start=1):
        outcome = TALK_ARENA_OUTCOME.get(record.get("outcome"))
        if outcome is None:
            raise LogError(f"{path} vote {number}: outcome {record.get('outcome')!r} is not 0, 1 or 0.5")
        votes.append(LoggedVote(str(record["model_a"]), str(record["model_b"]), outcome, number,
                                {"rater_kind": "human"}))
    return _finish("talk-arena", votes)


def _ours(records: list[dict], path: Path) -> VoteLog:
    votes = []
    for number, record in enumerate(records, start=1):
        missing = [k for k in ("model_a", "model_b", "outcome") if k not in record]
        if missing:
            raise LogError(f"{path} line {number}: missing {', '.join(missing)}")
        if record["outcome"] not in OUTCOMES:
            raise LogError(f"{path} line {number}: outcome {record['outcome']!r} is not one of "
                           + ", ".join(OUTCOMES))
        votes.append(LoggedVote(
            str(record["model_a"]), str(record["model_b"]), record["outcome"],
            float(record.get("vote_id", number)),
            {name: record.get(name) for name in SLICE_FIELDS},
        ))
    return _finish("s2s-arena", votes)


def select_votes(log: VoteLog, **filters: Any) -> list[LoggedVote]:
    """Votes whose fields equal every given filter (None: no filter). rater="human" or a judge's
    name select by rater kind or name, as on the server."""
    chosen = []
    for vote in log.votes:
        keep = True
        for name, wanted in filters.items():
            if wanted is None:
                continue
            if name == "rater":
                if wanted == "all":
                    continue
                if wanted == "human":
                    keep = vote.fields.get("rater_kind") == "human"
                else:
                    keep = vote.fields.get("rater_kind") == "judge" and vote.fields.get("rater") == wanted
            elif name == "level":
                keep = str(vote.fields.get("level") or "").upper() == str(wanted).upper()
            else:
                keep = vote.fields.get(name) == wanted
            if not keep:
                break
        if keep:
            chosen.append(vote)
    return chosen
