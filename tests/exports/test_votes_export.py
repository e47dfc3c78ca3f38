"""The vote log export: JSONL and Parquet, its schema, pseudonyms, filters, errors and auth."""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import text

from app.exports.votes import FIELDS, NAMES, arrow_schema
from app.ratings import logs
from tests.conftest import ADMIN
from tests.exports.conftest import JUDGE, PEOPLE, PROMPTS

PROMPT_FIELDS = dict(PROMPTS)
PSEUDONYM = re.compile(r"^h-[0-9a-f]{20}$")


def export(client, **params):
    reply = client.get("/api/v1/exports/votes", headers=ADMIN, params=params)
    assert reply.status_code == 200, reply.text
    return reply


def jsonl(client, **params):
    reply = export(client, **params)
    assert reply.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in reply.text.splitlines()]


def parquet(client, **params):
    reply = export(client, format="parquet", **params)
    assert reply.headers["content-type"] == "application/vnd.apache.parquet"
    assert reply.headers["content-disposition"] == 'attachment; filename="votes.parquet"'
    return pq.read_table(io.BytesIO(reply.content))


def test_jsonl_holds_every_vote_in_log_order_with_its_battle_and_slice(client, arena_log):
    records = jsonl(client)
    votes, plan = arena_log["votes"], arena_log["plan"]
    assert [r["vote_id"] for r in records] == [v.id for v in votes]
    for record, vote, (prompt, a, b, outcome, rater) in zip(records, votes, plan):
        assert list(record) == list(NAMES)
        assert (record["model_a"], record["model_b"], record["outcome"]) == (a, b, outcome)
        assert record["battle_id"] == vote.battle_id
        assert record["prompt_id"] == prompt
        assert record["dataset"] == "export-set"
        fields = PROMPT_FIELDS[prompt]
        assert (record["domain"], record["level"], record["task"]) == (
            fields["domain"], fields["level"], fields["task"])
        assert record["language"] == fields.get("language", "en")
        assert record["rater_kind"] == ("judge" if rater == JUDGE else "human")
        assert datetime.fromisoformat(record["voted_at"]) == vote.created_at
        assert datetime.fromisoformat(record["served_at"]) == vote.battle.served_at


def test_people_get_stable_pseudonyms_and_judges_keep_their_names(client, arena_log):
    first, second = jsonl(client), jsonl(client, rater="human")
    by_vote = {r["vote_id"]: r["rater"] for r in first}
    plan = arena_log["plan"]
    pseudonyms = {}
    for record, (*_, rater) in zip(first, plan):
        if rater == JUDGE:
            assert record["rater"] == JUDGE
        else:
            assert PSEUDONYM.match(record["rater"])
            pseudonyms.setdefault(rater, record["rater"])
            assert record["rater"] == pseudonyms[rater]  # the same person, the same pseudonym
    assert len(set(pseudonyms.values())) == len(PEOPLE)
    assert all(by_vote[r["vote_id"]] == r["rater"] for r in second)  # stable across exports
    table = parquet(client)
    assert table.column("rater").to_pylist() == [r["rater"] for r in first]
    body = export(client).text + export(client, format="parquet").content.decode("latin-1")
    for person in PEOPLE:  # neither the visitor id nor the account name leaves the server
        assert person not in body


def test_pseudonyms_change_with_the_secret_and_cannot_be_recomputed_without_it(
        client, arena_log, monkeypatch):
    from app.config import get_settings
    from app.exports.stream import Pseudonyms

    before = {r["vote_id"]: r["rater"] for r in jsonl(client, rater="human")}
    rater_id = arena_log["raters"][PEOPLE[0]].id
    assert Pseudonyms("test-secret-key")(rater_id) in before.values()
    monkeypatch.setenv("ARENA_SECRET_KEY", "another-secret")
    get_settings.cache_clear()
    after = {r["vote_id"]: r["rater"] for r in jsonl(client, rater="human")}
    assert set(before) == set(after)
    assert not set(before.values()) & set(after.values())
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.mark.parametrize("beta", ["beta", 'bêta "β" \\ \t\u2028 😀'])
def test_parquet_has_the_documented_schema_and_the_same_rows_as_jsonl(client, arena_log, db,
                                                                      beta):
    db.execute(text("UPDATE speech_models SET name = :n WHERE name = 'beta'"), {"n": beta})
    db.commit()
    table = parquet(client)
    assert table.schema.equals(arrow_schema())
    assert [f.name for f in table.schema] == [name for name, _, _ in FIELDS]
    assert table.schema.field("voted_at").metadata[b"description"].startswith(b"when the vote")
    records = jsonl(client)
    rows = table.to_pylist()
    assert len(rows) == len(records) == len(arena_log["votes"])
    for row, record in zip(rows, records):
        for name in ("voted_at", "served_at"):
            assert row.pop(name) == datetime.fromisoformat(record.pop(name))
        assert row == record
    assert beta in {record["model_a"] for record in records} | {r["model_b"] for r in records}


def test_the_readme_documents_every_field():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("### Exports", 1)[1]
    for name, _, _ in FIELDS:
        assert f"| `{name}` |" in section, name


@pytest.mark.parametrize("params, keep", [
    ({"domain": "social companionship"}, lambda p: p[0].startswith("soc")),
    ({"domain": "Social"}, lambda p: p[0].startswith("soc")),
    ({"level": "l4"}, lambda p: p[0] == "med/1 ü"),
    ({"task": "Knowledge QA"}, lambda p: p[0] == "edu-1"),
    ({"language": "zh"}, lambda p: p[0] == "soc-2"),
    ({"dataset": "export-set"}, lambda p: True),
    ({"dataset": "another"}, lambda p: False),
    ({"rater": "human"}, lambda p: p[4] != JUDGE),
    ({"rater": JUDGE}, lambda p: p[4] == JUDGE),
    ({"rater": "human", "domain": "education"}, lambda p: p[4] != JUDGE and p[0] == "edu-1"),
])
def test_filters_pick_the_same_votes_in_both_formats(client, arena_log, params, keep):
    expected = [v.id for v, p in zip(arena_log["votes"], arena_log["plan"]) if keep(p)]
    assert [r["vote_id"] for r in jsonl(client, **params)] == expected
    assert parquet(client, **params).column("vote_id").to_pylist() == expected


def test_after_id_pulls_only_newer_votes(client, arena_log, db):
    from tests.exports.conftest import insert_vote

    records = jsonl(client)
    last = records[6]["vote_id"]
    newer = jsonl(client, after_id=last)
    assert [r["vote_id"] for r in newer] == [r["vote_id"] for r in records[7:]]
    # A pull after the newest vote is empty, and valid in both formats.
    assert export(client, after_id=records[-1]["vote_id"]).content == b""
    empty = parquet(client, after_id=records[-1]["vote_id"])
    assert empty.num_rows == 0 and empty.schema.equals(arrow_schema())
    # New votes come in the next pull.
    from app.db.base import utcnow
    vote = insert_vote(db, arena_log["raters"], arena_log["responses"], "soc-2", "alpha", "beta",
                       "a", PEOPLE[1], utcnow())
    db.commit()
    assert [r["vote_id"] for r in jsonl(client, after_id=records[-1]["vote_id"])] == [vote.id]


def test_the_leaderboard_command_reads_the_export(client, arena_log, tmp_path):
    path = tmp_path / "votes.jsonl"
    path.write_bytes(export(client).content)
    log = logs.read_log(path)
    assert log.format == "s2s-arena"
    plan = arena_log["plan"]
    assert [(v.model_a, v.model_b, v.outcome) for v in log.votes] == [p[1:4] for p in plan]
    assert len(logs.select_votes(log, rater="human")) == sum(p[4] != JUDGE for p in plan)
    assert len(logs.select_votes(log, rater=JUDGE)) == sum(p[4] == JUDGE for p in plan)
    assert len(logs.select_votes(log, domain="education", level="L1")) == sum(
        p[0] == "edu-1" for p in plan)

    assert_same_table(client, path)


def assert_same_table(client, path):
    """The command's table from the file agrees with the server's on the same votes."""
    import contextlib

    from app.cli import main
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["leaderboard", str(path), "--json", "--min-votes", "20"]) == 0
    offline = {m["name"]: m for m in json.loads(out.getvalue())["models"]}
    online = client.get("/api/v1/leaderboard").json()
    assert online["votes"] == json.loads(out.getvalue())["votes"]
    for entry in online["models"]:
        mine = offline[entry["name"]]
        for key in ("wins", "losses", "ties", "matches"):
            assert mine[key] == entry[key], (entry["name"], key)
        assert mine["elo"] == pytest.approx(entry["elo"])


def test_attention_checks_and_flagged_raters_are_left_out_as_the_leaderboard_does(
        client, arena_log, db, tmp_path):
    from app.db.base import utcnow
    from app.db.models import Rater
    from tests.exports.conftest import insert_vote

    flagged = Rater(kind="human", name="careless", flagged_at=utcnow(),
                    flag_reason="failed attention checks")
    db.add(flagged)
    db.flush()
    raters, responses = {**arena_log["raters"], "careless": flagged}, arena_log["responses"]
    careless = insert_vote(db, raters, responses, "edu-1", "alpha", "beta", "b", "careless",
                           utcnow())
    check = insert_vote(db, raters, responses, "soc-1", "alpha", "gamma", "a", PEOPLE[0],
                        utcnow(), gold=("b", "other_answer"))
    db.commit()
    counted = [v.id for v in arena_log["votes"]]

    records = jsonl(client)
    assert [r["vote_id"] for r in records] == counted
    assert all(r["attention_check"] is None and r["rater_flagged"] is False for r in records)
    assert parquet(client).column("vote_id").to_pylist() == counted
    path = tmp_path / "votes.jsonl"
    path.write_bytes(export(client).content)
    assert_same_table(client, path)

    everything = {r["vote_id"]: r for r in jsonl(client, include_excluded="true")}
    assert list(everything) == counted + [careless.id, check.id]
    assert everything[careless.id]["rater_flagged"] is True
    assert everything[check.id]["attention_check"] == "other_answer"
    assert everything[check.id]["rater_flagged"] is False
    rows = parquet(client, include_excluded="true").to_pylist()
    assert [(r["attention_check"], r["rater_flagged"]) for r in rows[-2:]] == [
        (None, True), ("other_answer", False)]

    archive = zipfile.ZipFile(io.BytesIO(client.get(
        "/api/v1/exports/preferences", headers=ADMIN, params={"rater": "all"}).content))
    ids = [json.loads(line)["vote_id"] for line in archive.read("metadata.jsonl").splitlines()]
    assert careless.id not in ids and check.id not in ids


@pytest.mark.parametrize("params, message", [
    ({"format": "csv"}, "format"),
    ({"level": "L9"}, "level 'L9' is not one of L1, L2, L3, L4"),
    ({"domain": "cooking"}, "domain 'cooking' is not one of education"),
    ({"rater": "nobody"}, "rater 'nobody' is neither"),
    ({"after_id": "-1"}, "after_id"),
    ({"after_id": "x"}, "after_id"),
])
def test_bad_parameters_get_a_clear_422(client, arena_log, params, message):
    reply = client.get("/api/v1/exports/votes", headers=ADMIN, params=params)
    assert reply.status_code == 422
    assert message in reply.json()["message"]


@pytest.mark.parametrize("path", ["/api/v1/exports/votes", "/api/v1/exports/votes?format=parquet",
                                  "/api/v1/exports/preferences", "/api/v1/exports/scores",
                                  "/api/v1/exports/prompts"])
def test_every_export_needs_the_admin_token(client, arena_log, path):
    reply = client.get(path)
    assert reply.status_code == 401
    assert "admin token" in reply.json()["message"]
    wrong = client.get(path, headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401


def test_the_export_votes_command_writes_what_the_api_sends(client, arena_log, tmp_path):
    from app.cli import main

    assert main(["export-votes", "--out", str(tmp_path / "all.jsonl")]) == 0
    assert (tmp_path / "all.jsonl").read_bytes() == export(client).content
    assert main(["export-votes", "--out", str(tmp_path / "people.parquet"),
                 "--rater", "human", "--domain", "education"]) == 0
    written = pq.read_table(tmp_path / "people.parquet")
    assert written.equals(parquet(client, rater="human", domain="education"))
    assert written.num_rows > 0
    # A bad filter is a clear error, and no file is left behind.
    assert main(["export-votes", "--out", str(tmp_path / "x.jsonl"), "--level", "L9"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.jsonl", "people.parquet"]
