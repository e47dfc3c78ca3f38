"""Training data in the Hugging Face `datasets` audiofolder layout, as a streamed zip:

    metadata.jsonl              one example per line
    audio/prompts/<id>.flac     the spoken prompts
    audio/responses/<id>.flac   the models' spoken answers

Each metadata line names its clips in `*_file_name` columns (`prompt_file_name`,
`chosen_file_name`, ...), which audiofolder turns into Audio columns (`prompt`, `chosen`, ...).
A clip used by many examples is stored once. metadata.jsonl comes first, written while the rows
stream past (staged on disk until every clip is known to be in the store); the clips follow.
Only the clips' ids are kept in between: memory grows with the number of distinct prompts and
answers, not with the number of votes.

- Preferences (ParaS2S §4, reward models and RL): per vote with a winner, the prompt, the
  chosen answer and the rejected one.
- Scores (ParaS2S's pointwise data): per 1-5 score of one answer, by a judge or a person, the
  prompt and the answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Connection, Select, null, select
from sqlalchemy.orm import aliased

from app.audio.storage import AudioStorage
from app.db.models import (Battle, HumanRating, Judge, Prompt, Rater, Response, Score,
                           SpeechModel, Vote)
from app.exports.stream import Filters, Pseudonyms, archive_with_clips, audio_name, batches, iso

METADATA = "metadata.jsonl"
PROMPT_COLUMNS = (Prompt.id, Prompt.audio_key, Prompt.key, Prompt.text, Prompt.task,
                  Prompt.task_description, Prompt.level, Prompt.domain, Prompt.language,
                  Prompt.dataset, Prompt.emotion, Prompt.sarcasm, Prompt.age, Prompt.gender,
                  Prompt.contrast_group)
PROMPT_FIELDS = ("prompt_id", "prompt_text", "task", "task_description", "level", "domain",
                 "language", "dataset", "emotion", "sarcasm", "age", "gender", "contrast_group")

# The documented metadata columns (README, "Exports").
PREFERENCE_FIELDS = (
    "prompt_file_name", "chosen_file_name", "rejected_file_name", "vote_id", "battle_id",
    "voted_at", "rater", "rater_kind", *PROMPT_FIELDS, "chosen_model", "rejected_model",
    "chosen_side", "chosen_transcript", "rejected_transcript",
)
SCORE_FIELDS = (
    "prompt_file_name", "response_file_name", "score", "rater", "rater_kind", "score_id",
    "scored_at", "reason", "judge_transcript", "judge_caption", *PROMPT_FIELDS, "model",
    "response_id", "transcript",
)


class _Clips:
    """The clips an archive needs, by the name they get in it (`keys`: name -> audio key)."""

    def __init__(self, keys: dict[str, str]) -> None:
        self.keys = keys

    def prompt(self, prompt_id: int, audio_key: str) -> str:
        return self._add(audio_name("audio/prompts", prompt_id, audio_key), audio_key)

    def response(self, response_id: int, audio_key: str) -> str:
        return self._add(audio_name("audio/responses", response_id, audio_key), audio_key)

    def _add(self, name: str, audio_key: str) -> str:
        self.keys.setdefault(name, audio_key)
        return name


def _archive(
    storage: AudioStorage,
    lines: Callable[[Connection, _Clips], Iterator[list[dict[str, Any]]]],
) -> Iterator[bytes]:
    def metadata(conn: Connection, keys: dict[str, str]) -> Iterator[bytes]:
        for records in lines(conn, _Clips(keys)):
            yield "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()

    return archive_with_clips(storage, METADATA, metadata)


def _prompt_fields(row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(PROMPT_FIELDS, row))


# --- preferences --------------------------------------------------------------------------


def preference_query(filters: Filters) -> Select:
    response_a, response_b = aliased(Response), aliased(Response)
    model_a, model_b = aliased(SpeechModel), aliased(SpeechModel)
    return (
        select(Vote.id, Vote.battle_id, Vote.created_at, Vote.outcome, Rater.id, Rater.kind,
               Rater.name, model_a.name, model_b.name, response_a.id, response_a.audio_key,
               response_a.transcript, response_b.id, response_b.audio_key,
               response_b.transcript, *PROMPT_COLUMNS)
        .join(Battle, Battle.id == Vote.battle_id)
        .join(Prompt, Prompt.id == Battle.prompt_id)
        .join(response_a, response_a.id == Battle.response_a_id)
        .join(response_b, response_b.id == Battle.response_b_id)
        .join(model_a, model_a.id == Battle.model_a_id)
        .join(model_b, model_b.id == Battle.model_b_id)
        .join(Rater, Rater.id == Vote.rater_id)
        .where(Vote.outcome.in_(("a", "b")), Vote.id > filters.after_id,
               *filters.prompt_conditions(), *filters.rater_conditions(),
               *filters.battle_conditions())
        .order_by(Vote.id)
    )


def preferences(filters: Filters, secret_key: str, storage: AudioStorage) -> Iterator[bytes]:
    names = Pseudonyms(secret_key)

    def lines(conn: Connection, clips: _Clips) -> Iterator[list[dict[str, Any]]]:
        for rows in batches(conn, preference_query(filters)):
            records = []
            for (vote_id, battle_id, voted_at, outcome, rater_id, kind, rater_name, name_a,
                 name_b, id_a, audio_a, transcript_a, id_b, audio_b, transcript_b,
                 prompt_id, prompt_audio, *prompt) in rows:
                answers = [(name_a, id_a, audio_a, transcript_a), (name_b, id_b, audio_b, transcript_b)]
                chosen, rejected = answers if outcome == "a" else answers[::-1]
                records.append({
                    "prompt_file_name": clips.prompt(prompt_id, prompt_audio),
                    "chosen_file_name": clips.response(chosen[1], chosen[2]),
                    "rejected_file_name": clips.response(rejected[1], rejected[2]),
                    "vote_id": vote_id, "battle_id": battle_id, "voted_at": iso(voted_at),
                    "rater": names.rater(rater_id, kind, rater_name), "rater_kind": kind,
                    **_prompt_fields(prompt),
                    "chosen_model": chosen[0], "rejected_model": rejected[0],
                    "chosen_side": outcome, "chosen_transcript": chosen[3],
                    "rejected_transcript": rejected[3],
                })
            yield records

    return _archive(storage, lines)


# --- pointwise scores ---------------------------------------------------------------------


def _score_query(filters: Filters, kind: str) -> Select:
    """A judge's scores (with the reason, transcript and style caption it gave) or people's
    ratings, with the answer and its prompt."""
    tail = (Rater.id, Rater.kind, Rater.name, SpeechModel.name, Response.id, Response.audio_key,
            Response.transcript, *PROMPT_COLUMNS)
    if kind == "judge":
        query = (select(Score.id, Score.score, Score.updated_at, Score.reason, Score.transcript,
                        Score.caption, *tail)
                 .join(Judge, Judge.id == Score.judge_id).join(Rater, Rater.id == Judge.rater_id)
                 .join(Response, Response.id == Score.response_id)
                 .where(Score.status == "scored").order_by(Score.id))
    else:
        query = (select(HumanRating.id, HumanRating.score, HumanRating.scored_at, null(), null(),
                        null(), *tail)
                 .join(Rater, Rater.id == HumanRating.rater_id)
                 .join(Response, Response.id == HumanRating.response_id)
                 .where(HumanRating.score.is_not(None)).order_by(HumanRating.id))
    return (query.join(SpeechModel, SpeechModel.id == Response.model_id)
            .join(Prompt, Prompt.id == Response.prompt_id)
            .where(*filters.prompt_conditions(), *filters.rater_conditions()))


def scores(filters: Filters, secret_key: str, storage: AudioStorage) -> Iterator[bytes]:
    """Judges' scores first (by score id), then people's ratings (by rating id)."""
    names = Pseudonyms(secret_key)
    kinds = {"all": ("judge", "human"), "human": ("human",)}.get(filters.rater, ("judge",))

    def lines(conn: Connection, clips: _Clips) -> Iterator[list[dict[str, Any]]]:
        for kind in kinds:
            for rows in batches(conn, _score_query(filters, kind)):
                records = []
                for (score_id, score, scored_at, reason, judge_transcript, caption, rater_id,
                     rater_kind, rater_name, model, response_id, response_audio, transcript,
                     prompt_id, prompt_audio, *prompt) in rows:
                    records.append({
                        "prompt_file_name": clips.prompt(prompt_id, prompt_audio),
                        "response_file_name": clips.response(response_id, response_audio),
                        "score": score, "rater": names.rater(rater_id, rater_kind, rater_name),
                        "rater_kind": rater_kind, "score_id": score_id,
                        "scored_at": iso(scored_at), "reason": reason,
                        "judge_transcript": judge_transcript, "judge_caption": caption,
                        **_prompt_fields(prompt), "model": model, "response_id": response_id,
                        "transcript": transcript,
                    })
                yield records

    return _archive(storage, lines)
