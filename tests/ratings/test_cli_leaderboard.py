"""`s2s-arena leaderboard FILE`: the rating engine without a server."""

import csv
import json
import subprocess
import sys

import pytest

from app.cli import main
from tests.conftest import DATA, ROOT


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(["leaderboard", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_chatbot_arena_log_with_its_recipe_gives_the_published_table(capsys):
    code, out, _ = run(capsys, DATA / "genai-arena" / "clean_battle_20240220.json",
                       "--anony-only", "--recipe", "chatbot-arena", "--rounds", "100", "--json")
    assert code == 0
    table = json.loads(out)
    with open(DATA / "genai-arena" / "leaderboard_20240220.csv") as handle:
        published = {r["key"]: float(r["Arena Elo rating (anony)"]) for r in csv.DictReader(handle)}
    assert {m["name"]: m["rating"] for m in table["models"]} == pytest.approx(published, abs=0.006)
    assert table["votes"] == 1515 and table["format"] == "chatbot-arena"
    assert table["connected"] is False and len(table["components"]) == 2
    assert {"name", "rating", "ci_lower", "ci_upper", "rank_ub", "elo", "wins", "losses", "ties",
            "matches", "provisional"} <= set(table["models"][0])


def test_the_text_table_says_what_a_reader_must_know(capsys):
    code, out, _ = run(capsys, DATA / "genai-arena" / "clean_battle_20240220.json", "--rounds", "50")
    assert code == 0
    assert "left out: 1 battle(s) of a model against itself" in out
    assert "groups that never met" in out
    assert "(provisional)" in out  # the editing models with a dozen votes


def test_talk_arena_dump_flags_the_one_vote_model(capsys):
    code, out, _ = run(capsys, DATA / "talk-arena" / "live_votes.json", "--rounds", "100", "--json")
    table = json.loads(out)
    by_name = {m["name"]: m for m in table["models"]}
    assert by_name["gemini_2f"]["provisional"] and by_name["gemini_2f"]["rank_ub"] is None
    assert table["votes"] == 303 and table["models"][-1]["name"] == "gemini_2f"
    ranked = [m for m in table["models"] if not m["provisional"]]
    assert sum(m["rating"] for m in ranked) / len(ranked) == pytest.approx(1000, abs=0.05)


def test_our_own_export_with_slice_filters(tmp_path, capsys):
    log = tmp_path / "votes.jsonl"
    rows = []
    for k in range(60):
        rows.append({"vote_id": k + 1, "model_a": "x", "model_b": "y",
                     "outcome": "a" if k % 3 else "b", "domain": "education" if k < 40 else "entertainment",
                     "level": "L2", "rater": f"h{k % 4}", "rater_kind": "human"})
    rows.append({"vote_id": 61, "model_a": "x", "model_b": "y", "outcome": "b",
                 "domain": "education", "level": "L2", "rater": "gemini", "rater_kind": "judge"})
    log.write_text("\n".join(json.dumps(r) for r in rows))
    _, out, _ = run(capsys, log, "--domain", "education", "--json", "--rounds", "50")
    assert json.loads(out)["votes"] == 41
    _, out, _ = run(capsys, log, "--rater", "gemini", "--json", "--rounds", "50")
    assert json.loads(out)["votes"] == 1
    _, out, _ = run(capsys, log, "--rater", "human", "--level", "l2", "--json", "--rounds", "50")
    assert json.loads(out)["votes"] == 60


def test_a_bad_log_gets_a_clear_error(tmp_path, capsys):
    log = tmp_path / "bad.jsonl"
    log.write_text(json.dumps({"model_a": "x", "model_b": "y", "outcome": "maybe"}))
    code, _, err = run(capsys, log)
    assert code == 2 and "outcome 'maybe' is not one of a, b, tie, both_bad" in err


def test_the_command_is_installed():
    reply = subprocess.run([sys.executable, "-m", "app.cli", "leaderboard", "--help"],
                           capture_output=True, text=True, cwd=ROOT)
    assert reply.returncode == 0 and "--recipe" in reply.stdout
