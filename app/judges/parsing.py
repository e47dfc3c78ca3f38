"""Reading a judge's reply into a verdict. Pure: text in, verdict out.

A reply is read, never guessed: one that names no answer, or names both answers without a clear
final one, or gives a score off the 1–5 scale, is invalid, and the verdict says why. An invalid
verdict must not become a vote; its note tells how often, and how, a judge fails.

Pairwise replies (S2S-Arena A.5 asks for "First one wins" / "Second one wins"; our JSON variant
for {"winner": "first" | "second", "reason": ...}) are read in this order:
1. JSON objects anywhere in the reply, fenced or bare, with a "winner" key;
2. otherwise the canonical phrases, or a "winner: X" line, in any case and markdown emphasis.
A reply naming both sides counts only if its last line is a bare answer ("Final answer: Second
one wins."); an answer with "not", "no", "never", ... up to three words before it on its line
("I would not say first one wins") is invalid, as is a JSON winner contradicted by the text
outside the JSON.

Score replies (ParaS2S A.11.5 asks for "The reason is _; The score is _ .") accept JSON
{"score": 4, "reason": ...}, "Score: 4", "The score is 4", "4/5", "Rating: 4 out of 5" or a bare
digit; every score mentioned must agree, be a whole number and lie in 1–5.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

Side = Literal["first", "second"]

MIN_SCORE, MAX_SCORE = 1, 5


@dataclass(frozen=True)
class PairwiseVerdict:
    """Which response a pairwise judge picked; `winner` is None when the reply is invalid."""

    winner: Side | None
    reason: str | None = None
    invalid: str | None = None

    @property
    def valid(self) -> bool:
        return self.winner is not None


@dataclass(frozen=True)
class ScoreVerdict:
    """A pointwise 1–5 score; `score` is None when the reply is invalid."""

    score: int | None
    reason: str | None = None
    invalid: str | None = None

    @property
    def valid(self) -> bool:
        return self.score is not None


# --- shared ---------------------------------------------------------------------------------------

_MARKDOWN = re.compile(r"[*_`#>~]")


def _normalise(text: str) -> str:
    """Casefolded, markdown emphasis removed, spaces collapsed within each line."""
    lines = (" ".join(_MARKDOWN.sub("", line).split()) for line in text.casefold().splitlines())
    return "\n".join(lines)


_Objects = list[tuple[dict[str, Any], tuple[int, int]]]
_OBJECT_START = re.compile(r'\{\s*["}]')  # where a JSON object can begin
_MAX_JSON_FAILURES = 100  # bounds the work on a reply full of braces


def _json_objects(text: str) -> _Objects:
    """Every top-level JSON object in the text (fenced or bare) with its span; keys casefolded."""
    decoder = json.JSONDecoder()
    found, position, failures = [], 0, 0
    while failures < _MAX_JSON_FAILURES and (match := _OBJECT_START.search(text, position)):
        try:
            value, end = decoder.raw_decode(text, match.start())
        except (ValueError, RecursionError):  # not JSON, too long a number, too deep
            position, failures = match.start() + 1, failures + 1
            continue
        if isinstance(value, dict):
            found.append(({key.casefold(): item for key, item in value.items()},
                          (match.start(), end)))
        position = end
    return found


def _without(text: str, spans: list[tuple[int, int]]) -> str:
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + " " + text[end:]
    return text


def _text_reason(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


# --- pairwise -------------------------------------------------------------------------------------

_FIRST_NAMES = ("first", "1", "1st", "a", "one", "first one", "first response", "response 1",
                "response a", "output 1", "output audio 1", "audio 1", "first audio",
                "first one wins")
_SECOND_NAMES = ("second", "2", "2nd", "b", "two", "second one", "second response", "response 2",
                 "response b", "output 2", "output audio 2", "audio 2", "second audio",
                 "second one wins")
_SIDE_NAMES: dict[str, Side] = {**dict.fromkeys(_FIRST_NAMES, "first"),
                                **dict.fromkeys(_SECOND_NAMES, "second")}

_PHRASE = re.compile(r"\b(first|second) (?:one|response) wins\b")
_WINNER_KEY = re.compile(
    r"""\bwinner\b["']?\s*(?:[:=]|\bis\b)\s*["']?([\w ]+?)["']?\s*(?:[.,;}\n]|$)""")
_NEGATION = re.compile(r"\b(?:not|no|never|neither|nor|\w+n't)\b(?:\W+\w+){0,3}\W*$")
_LABEL = r"(?:final )?(?:answer|verdict|decision|choice|winner)\s*[:=-]?"
_BARE_ANSWER = re.compile(
    rf"\W*(?:(?:{_LABEL}\W*)?(first|second) (?:one|response) wins|{_LABEL}\W*(first|second))\W*"
)


@dataclass(frozen=True)
class _Mention:
    side: Side
    negated: bool


def _side(value: Any) -> Side | None:
    """A JSON or key-value winner value as a side: "first", 1, "A", "Response 1", ..."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return {1: "first", 2: "second"}.get(value)
    if not isinstance(value, str):
        return None
    name = " ".join(re.sub(r"[^\w ]", " ", value.casefold()).split())
    return _SIDE_NAMES.get(name.removeprefix("the "))


def _mentions(text: str) -> list[_Mention]:
    """Each answer the normalised text states: canonical phrases and "winner: X" with a known X;
    negated when "not", "no", "never", ... comes at most three words before it on its line."""
    found = [(m.start(), m[1]) for m in _PHRASE.finditer(text)]
    found += [(m.start(), side) for m in _WINNER_KEY.finditer(text) if (side := _side(m[1]))]
    return [_Mention(side, bool(_NEGATION.search(text[text.rfind("\n", 0, start) + 1:start])))
            for start, side in sorted(found)]


def _final_answer(text: str) -> Side | None:
    """The side stated by the last non-empty line when that line is a bare answer."""
    lines = [line for line in text.splitlines() if line.strip()]
    match = _BARE_ANSWER.fullmatch(lines[-1]) if lines else None
    return (match[1] or match[2]) if match else None  # type: ignore[return-value]


def parse_pairwise(reply: str | None) -> PairwiseVerdict:
    """The side a pairwise judge picked, or an invalid verdict saying why there is none."""
    if reply is None or not reply.strip():
        return PairwiseVerdict(None, invalid="empty reply")
    judged = [(obj, span) for obj, span in _json_objects(reply) if "winner" in obj]
    if judged:
        return _from_json(reply, judged)
    return _from_text(reply)


def _from_json(reply: str, judged: _Objects) -> PairwiseVerdict:
    sides = {_side(obj["winner"]) for obj, _ in judged}
    if None in sides:
        values = ", ".join(repr(obj["winner"]) for obj, _ in judged)
        return PairwiseVerdict(None, invalid=f"winner not understood: {values}")
    if len(sides) > 1:
        return PairwiseVerdict(None, invalid="JSON objects name different winners")
    (side,) = sides
    outside = _mentions(_normalise(_without(reply, [span for _, span in judged])))
    if any(mention.side != side for mention in outside):
        return PairwiseVerdict(None, invalid="JSON winner contradicted by the text around it")
    return PairwiseVerdict(side, reason=_text_reason(judged[-1][0].get("reason")))


def _from_text(reply: str) -> PairwiseVerdict:
    text = _normalise(reply)
    mentions = _mentions(text)
    if not mentions:
        return PairwiseVerdict(None, invalid="names neither response")
    side = _final_answer(text)
    if side is None or mentions[-1].negated:
        sides = {mention.side for mention in mentions}
        if len(sides) > 1:
            return PairwiseVerdict(None, invalid="names both responses and gives no final answer")
        if any(mention.negated for mention in mentions):
            return PairwiseVerdict(None, invalid="a negated answer")
        (side,) = sides
    bare = _BARE_ANSWER.fullmatch(text.replace("\n", " "))
    return PairwiseVerdict(side, reason=None if bare else reply.strip())


# --- score ----------------------------------------------------------------------------------------

_NUMBER = r"(\d+(?:\.\d+)?)"
_OUT_OF = r"\s*\(?\s*(?:/|out of)\s*(\d+)"
_SCORE_KEY = re.compile(rf"\b(?:score|rating)\b(?:\s*(?:is|of|=|:))*\s*{_NUMBER}(?:{_OUT_OF})?")
_FRACTION = re.compile(rf"\b{_NUMBER}{_OUT_OF}\b")
_BARE_SCORE = re.compile(rf"\W*{_NUMBER}\W*")
_REASON = re.compile(r"\b(?:the reason is|reason\s*:)\s*(.+?)\s*(?:;|\n|$)", re.IGNORECASE)


def _score_value(value: Any) -> tuple[int | None, str | None]:
    """A JSON score value as a whole number, or why it is not one."""
    if isinstance(value, bool):
        return None, f"score not a number: {value!r}"
    if isinstance(value, str):
        match = re.fullmatch(rf"\s*{_NUMBER}(?:{_OUT_OF})?\s*", value.casefold())
        if not match:
            return None, f"score not a number: {value!r}"
        if match[2] is not None and int(match[2]) != MAX_SCORE:
            return None, f"score on another scale: {value!r}"
        value = float(match[1])
    if not isinstance(value, int | float):
        return None, f"score not a number: {value!r}"
    return _checked(float(value))


def _checked(value: float) -> tuple[int | None, str | None]:
    if not value.is_integer():
        return None, f"score not a whole number: {value:g}"
    if not MIN_SCORE <= value <= MAX_SCORE:
        return None, f"score out of range {MIN_SCORE}–{MAX_SCORE}: {value:g}"
    return int(value), None


def _text_scores(text: str) -> list[tuple[str, str | None]]:
    """Each (number, scale) the normalised text states as a score; scale None when not given."""
    found = [m.groups() for m in _SCORE_KEY.finditer(text)]
    found += [m.groups() for m in _FRACTION.finditer(text) if m[2] == str(MAX_SCORE)]
    if not found and (bare := _BARE_SCORE.fullmatch(text.replace("\n", " "))):
        found = [(bare[1], None)]
    return found


def parse_score(reply: str | None) -> ScoreVerdict:
    """The 1–5 score a pointwise judge gave, or an invalid verdict saying why there is none."""
    if reply is None or not reply.strip():
        return ScoreVerdict(None, invalid="empty reply")
    scored = [(obj, span) for obj, span in _json_objects(reply) if {"score", "rating"} & obj.keys()]
    if scored:
        return _score_from_json(reply, scored)
    return _score_from_text(reply)


def _score_from_json(reply: str, scored: _Objects) -> ScoreVerdict:
    values = {_score_value(obj.get("score", obj.get("rating"))) for obj, _ in scored}
    if len(values) > 1:
        return ScoreVerdict(None, invalid="JSON objects give different scores")
    ((score, problem),) = values
    if score is None:
        return ScoreVerdict(None, invalid=problem)
    outside = _text_scores(_normalise(_without(reply, [span for _, span in scored])))
    if any(float(number) != score for number, _ in outside):
        return ScoreVerdict(None, invalid="JSON score contradicted by the text around it")
    return ScoreVerdict(score, reason=_text_reason(scored[-1][0].get("reason")))


def _score_from_text(reply: str) -> ScoreVerdict:
    found = _text_scores(_normalise(reply))
    if not found:
        return ScoreVerdict(None, invalid="no score found")
    if any(scale is not None and int(scale) != MAX_SCORE for _, scale in found):
        return ScoreVerdict(None, invalid="score on another scale than 1–5")
    values = {float(number) for number, _ in found}
    if len(values) > 1:
        shown = ", ".join(f"{value:g}" for value in sorted(values))
        return ScoreVerdict(None, invalid=f"several different scores: {shown}")
    score, problem = _checked(values.pop())
    if score is None:
        return ScoreVerdict(None, invalid=problem)
    reason = _REASON.search(reply)
    return ScoreVerdict(score, reason=reason[1] if reason else None)
