"""The vote log as JSONL or Parquet: one record per vote, in vote-id order, streamed.

The JSONL is what `s2s-arena leaderboard FILE` reads (app/ratings/logs.py): `model_a`,
`model_b`, `outcome`, `vote_id` and the slice fields. The Parquet file has the same columns, one
row group per batch of the server-side cursor, so neither the web process nor the file needs
the whole log at once.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from json.encoder import encode_basestring
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import aliased

from app.db.models import Battle, Prompt, Rater, SpeechModel, Vote
from app.exports.stream import Chunks, Filters, Pseudonyms, batches, snapshot

# The documented schema (README, "Exports"): name, Arrow type, meaning.
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("vote_id", "int64", "the vote's id; the log's order. Pass the last one as after_id to pull only newer votes"),
    ("battle_id", "int64", "the battle voted on (a prompt and two answers served to one rater)"),
    ("voted_at", "timestamp", "when the vote was committed (UTC)"),
    ("served_at", "timestamp", "when the battle was served (UTC)"),
    ("outcome", "string", "a, b, tie or both_bad"),
    ("model_a", "string", "the model heard as A"),
    ("model_b", "string", "the model heard as B"),
    ("rater", "string", "a person's pseudonym (h- and 20 hex digits, stable per person), or a judge's name"),
    ("rater_kind", "string", "human or judge"),
    ("prompt_id", "string", "the prompt's id (its manifest id)"),
    ("dataset", "string", "the prompt's dataset"),
    ("domain", "string", "education, social companionship, entertainment or medical consultation"),
    ("level", "string", "L1, L2, L3 or L4"),
    ("task", "string", "the prompt's task"),
    ("language", "string", "the prompt's language"),
    ("attention_check", "string", "null, or the kind of known-bad answer (other_answer, silence, noise) of an attention check; such votes grade the rater and never count"),
    ("rater_flagged", "bool", "the rater is flagged by quality control, so the leaderboard leaves their votes out"),
)
NAMES = tuple(name for name, _, _ in FIELDS)


def arrow_schema():
    import pyarrow as pa

    types = {"int64": pa.int64(), "string": pa.string(), "bool": pa.bool_(),
             "timestamp": pa.timestamp("us", tz="UTC")}
    return pa.schema([pa.field(name, types[kind], nullable=name not in ("vote_id", "outcome"),
                               metadata={"description": meaning})
                      for name, kind, meaning in FIELDS])


def _utc_text(column):
    """A timestamp as ISO 8601 text in UTC, made by Postgres: cheaper than a datetime per value."""
    return func.to_char(column.op("AT TIME ZONE")("UTC"), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')


def query(filters: Filters) -> Select:
    model_a, model_b = aliased(SpeechModel), aliased(SpeechModel)
    return (
        select(Vote.id, Vote.battle_id, _utc_text(Vote.created_at), _utc_text(Battle.served_at),
               Vote.outcome, model_a.name, model_b.name, Rater.id, Rater.kind, Rater.name,
               Prompt.key, Prompt.dataset, Prompt.domain, Prompt.level, Prompt.task,
               Prompt.language, Battle.gold_kind, Rater.flagged_at.is_not(None))
        .join(Battle, Battle.id == Vote.battle_id)
        .join(Prompt, Prompt.id == Battle.prompt_id)
        .join(model_a, model_a.id == Battle.model_a_id)
        .join(model_b, model_b.id == Battle.model_b_id)
        .join(Rater, Rater.id == Vote.rater_id)
        .where(Vote.id > filters.after_id, *filters.prompt_conditions(),
               *filters.rater_conditions(), *filters.battle_conditions())
        .order_by(Vote.id)
    )


# Rows per fetch: JSONL goes out line by line, so small batches keep the web process lean;
# a Parquet row group is one batch, and readers prefer them larger.
JSONL_BATCH, PARQUET_BATCH = 2_000, 5_000


def _records(filters: Filters, secret_key: str, size: int) -> Iterator[list[tuple[Any, ...]]]:
    """Batches of export rows: tuples in FIELDS order, timestamps as ISO 8601 text."""
    names = Pseudonyms(secret_key)
    with snapshot() as conn:
        for rows in batches(conn, query(filters), size):
            yield [(vote_id, battle_id, voted_at, served_at, outcome, a, b,
                    rater_name if kind == "judge" else names(rater_id), kind, *prompt)
                   for (vote_id, battle_id, voted_at, served_at, outcome, a, b,
                        rater_id, kind, rater_name, *prompt) in rows]


# One JSON object per line, written from a template: the keys are fixed, and each string goes
# through the json module's own C escaping. The template's layout: integers, strings, one bool.
_LINE = "{" + ",".join(f'"{name}":' + ("%d" if kind == "int64" else "%s")
                       for name, kind, _ in FIELDS) + "}\n"
_INTEGERS = sum(1 for _, kind, _ in FIELDS if kind == "int64")
assert [kind for _, kind, _ in FIELDS] == (
    ["int64"] * _INTEGERS + ["timestamp"] * 2 + ["string"] * (len(FIELDS) - _INTEGERS - 3) + ["bool"])


def _text(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def _jsonl_batches(filters: Filters, secret_key: str, size: int) -> Iterator[bytes]:
    """The JSONL lines of each batch of votes. U+2028 and U+2029 are valid raw in JSON but
    end a line for many readers (Python's str.splitlines, JavaScript before ES2019): escaped,
    so that a line is a line however it is split."""
    for rows in _records(filters, secret_key, size):
        text = "".join(_LINE % (*row[:_INTEGERS], *map(_text, row[_INTEGERS:-1]),
                                "true" if row[-1] else "false") for row in rows)
        yield text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


def jsonl(filters: Filters, secret_key: str) -> Iterator[bytes]:
    return _jsonl_batches(filters, secret_key, JSONL_BATCH)


def parquet(filters: Filters, secret_key: str) -> Iterator[bytes]:
    """One row group per batch, written into the response as it is made. Each batch is the
    JSONL export's lines, parsed by Arrow's own JSON reader against the schema: one way to
    render a vote, and no Python object per value (building arrays from Python lists would
    also make pyarrow import pandas, 50 MB more). An empty export is a valid file with the
    schema and no rows."""
    import pyarrow as pa
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    schema = arrow_schema()
    parse = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error")
    sink = Chunks()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    try:
        for lines in _jsonl_batches(filters, secret_key, PARQUET_BATCH):
            read = pj.ReadOptions(use_threads=False, block_size=len(lines) + 1)
            table = pj.read_json(io.BytesIO(lines), parse_options=parse, read_options=read)
            writer.write_table(pa.Table.from_arrays(table.columns, schema=schema))
            yield sink.take()
    finally:
        writer.close()
    yield sink.take()
