"""`s2s-arena demo`, end to end, as someone trying the project would run it.

Starts the real command with no servers configured (so it brings up the embedded Postgres and
Redis from their wheels), votes over HTTP, stops it with Ctrl-C and checks nothing is left
running, then starts it again on the same data directory and checks the data survived and the
demo dataset was not loaded twice.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import ROOT, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

DEMO_MODELS = {m["name"] for m in json.loads((ROOT / "demo" / "models.json").read_text())}
DEMO_PROMPTS = sum(1 for line in (ROOT / "demo" / "dataset" / "manifest.jsonl").read_text()
                   .splitlines() if line.strip())
START_TIMEOUT = 180  # the first start runs initdb and transcodes the demo audio
STOP_TIMEOUT = 30


class Demo:
    """One `s2s-arena demo` process, its output drained by a thread into a queue."""

    def __init__(self, data_dir: Path, port: int, *, owns_them: bool = True) -> None:
        # owns_them: the data directory and port are this demo's alone, so processes naming
        # them are its own (False for a demo expected to be refused because they are taken).
        self.data_dir, self.port, self.owns_them = data_dir, port, owns_them
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_")}
        env.update(ARENA_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1",
                   ARENA_ARENA__GOLD_SHARE="0")  # the one vote below is on a real battle
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "demo", "--port", str(port)],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, errors="replace",
            start_new_session=True,  # its own process group: a terminal's Ctrl-C, and cleanup
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        self.seen: set[psutil.Process] = set()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def log(self) -> str:
        return "".join(self.output[-80:])

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first line from now on that matches `pattern`."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"demo exited ({self.process.wait()}) before printing "
                                     f"{pattern!r}:\n{self.log()}")
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"demo did not print {pattern!r} within {timeout} s:\n{self.log()}")

    def ours(self, *, by_traces: bool = True) -> set[psutil.Process]:
        """The live processes this demo started: its descendants and its session, and (with
        `by_traces`) anything whose command line names its data directory or its web port,
        which catches the embedded Postgres, daemonized into a session of its own."""
        found: set[psutil.Process] = set()
        try:
            found.update(psutil.Process(self.process.pid).children(recursive=True))
        except psutil.NoSuchProcess:
            pass
        for proc in psutil.process_iter(["pid", "cmdline"]):
            if proc.pid in (os.getpid(), self.process.pid):
                continue
            try:
                cmdline = proc.info["cmdline"] or []
                in_session = os.getsid(proc.pid) == self.process.pid
            except (psutil.Error, OSError):
                continue
            by_port = any(a == "--port" and b == str(self.port)
                          for a, b in zip(cmdline, cmdline[1:]))
            if in_session or (by_traces and (str(self.data_dir) in " ".join(cmdline) or by_port)):
                found.add(proc)
        found = {p for p in found if _alive(p)}
        self.seen |= found
        return found

    def interrupt(self, *, whole_group: bool = False) -> int:
        """Ctrl-C: to the demo process alone, or to its whole process group as a terminal does."""
        self.ours()  # remember what is running now, to check it all stops
        if whole_group:
            os.killpg(self.process.pid, signal.SIGINT)
        else:
            self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"demo did not stop within {STOP_TIMEOUT} s of SIGINT:\n"
                                 f"{self.log()}") from None
        # Give grandchildren that were already exiting a moment to go.
        deadline = time.monotonic() + 5
        while (left := {p for p in self.seen if _alive(p)} | self.ours()) and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        assert not left, "still running after the demo stopped:\n" + "\n".join(
            f"  {p.pid}: {' '.join(_cmdline(p))}" for p in left) + f"\n{self.log()}"
        assert not _listening(self.port), f"port {self.port} is still taken"
        return code

    def kill_tree(self) -> None:
        """Last-resort cleanup: kill this demo and every process it started, by pid.

        A demo that does not own its data directory and port is matched by descendants and
        session only: they belong to another demo that is still running.
        """
        if self.process.poll() is None:
            self.ours(by_traces=self.owns_them)
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(10)
        for proc in self.seen | self.ours(by_traces=self.owns_them):
            try:
                proc.kill()
            except psutil.Error:
                pass


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return ["?"]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def start_demo(tmp_path):
    """Start `s2s-arena demo` on a data directory; every process tree is killed at the end."""
    started: list[Demo] = []

    def start(data_dir: Path, port: int) -> tuple[Demo, str, str]:
        demo = Demo(data_dir, port)
        started.append(demo)
        url = demo.wait_for(r"S2S Arena is running at (http://\S+)", START_TIMEOUT).group(1)
        token = demo.wait_for(r"admin token:\s+(\S+)", 5).group(1)
        demo.wait_for(r"Press Ctrl-C to stop", 5)
        return demo, url, token

    yield start
    for demo in started:
        demo.kill_tree()


def poll_leaderboard(http: httpx.Client, votes: int, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        board = http.get("/api/v1/leaderboard").json()
        if board["votes"] == votes or time.monotonic() > deadline:
            return board
        time.sleep(0.3)


def test_demo_runs_votes_stops_cleanly_and_keeps_its_data(start_demo, tmp_path):
    data_dir = tmp_path / "arena-data"
    port = free_port()

    # --- first start: embedded servers, migrations, demo dataset ---------------------------
    demo, url, token = start_demo(data_dir, port)
    assert url == f"http://127.0.0.1:{port}"
    assert len(token) >= 20
    log = "".join(demo.output)
    assert "Demo dataset: loaded" in log, log
    assert "starting the embedded server" in log, log
    admin = {"Authorization": f"Bearer {token}"}

    with httpx.Client(base_url=url, timeout=10) as http:  # keeps the visitor cookie
        page = http.get("/arena")
        assert page.status_code == 200, page.text
        http.headers["X-CSRF-Token"] = http.cookies["arena_csrf"]  # as the page's htmx sends it
        battle = re.search(r'data-battle="([^"]+)"', page.text)
        assert battle, page.text
        battle_token = battle.group(1)
        for slot in ("prompt", "a", "b"):
            clip = http.get(f"/arena/audio/{battle_token}/{slot}")
            assert clip.status_code == 200, (slot, clip.text[:200])
            assert clip.headers["content-type"] == "audio/flac"
            assert clip.content[:4] == b"fLaC" and len(clip.content) > 1000

        # As the page sends it: the vote with how the clips were heard (the demo, like any
        # deployment, refuses a vote before both answers were heard).
        unheard = http.post(f"/arena/battles/{battle_token}/vote", data={"outcome": "a"},
                            headers={"HX-Request": "true"})
        assert unheard.status_code == 409, unheard.text
        voted = http.post(f"/arena/battles/{battle_token}/vote",
                          data={"outcome": "a", "heard_a": "1", "heard_b": "1"},
                          headers={"HX-Request": "true"})
        assert voted.status_code == 200, voted.text
        revealed = {side: re.search(rf'class="model-{side}">([^<]+)<', voted.text)
                    for side in ("a", "b")}
        assert all(revealed.values()), voted.text
        winner, loser = revealed["a"].group(1), revealed["b"].group(1)
        assert winner != loser and {winner, loser} <= DEMO_MODELS, (winner, loser)
        assert 'class="reveal"' in voted.text and "data-battle=" in voted.text

        assert http.get("/api/v1/models").status_code == 401
        models = http.get("/api/v1/models", headers=admin)
        assert models.status_code == 200, models.text
        assert {m["name"] for m in models.json()} == DEMO_MODELS

        board = poll_leaderboard(http, votes=1)
        assert board["votes"] == 1, board
        rows = {m["name"]: m for m in board["models"]}
        assert rows[winner]["wins"] == 1 and rows[loser]["losses"] == 1, rows
        assert sum(m["matches"] for m in board["models"]) == 2

    # A second demo on the same port, or on the same data directory, is refused at once.
    for other_dir, other_port, words in [(tmp_path / "other-data", port, "already in use"),
                                         (data_dir, free_port(), "already running")]:
        refused = Demo(other_dir, other_port, owns_them=False)
        try:
            refused.wait_for(words, 30)
            assert refused.process.wait(10) == 2, refused.log()
        finally:
            refused.kill_tree()
        assert words in refused.log(), refused.log()

    running = demo.ours()
    assert any("postgres" in " ".join(_cmdline(p)) for p in running), running
    assert any("redis-server" in " ".join(_cmdline(p)) for p in running), running

    # --- Ctrl-C: everything it started goes away --------------------------------------------
    assert demo.interrupt() == 0, demo.log()
    assert "Stopping..." in "".join(demo.output)

    # --- second start on the same data directory: same data, same token, no second import ---
    demo2, url2, token2 = start_demo(data_dir, port)
    assert token2 == token, "the generated admin token should survive a restart"
    assert "Demo dataset: already loaded" in "".join(demo2.output), demo2.log()
    with httpx.Client(base_url=url2, timeout=10) as http:
        board = http.get("/api/v1/leaderboard").json()
        assert board["votes"] == 1, board
        prompts = http.get("/api/v1/prompts", headers=admin)
        assert prompts.status_code == 200, prompts.text
        assert len(prompts.json()) == DEMO_PROMPTS == 12
        assert {m["name"] for m in http.get("/api/v1/models", headers=admin).json()} == DEMO_MODELS
        assert http.get("/arena").status_code == 200

    # This time as a terminal's Ctrl-C does it: SIGINT to the whole process group at once.
    assert demo2.interrupt(whole_group=True) == 0, demo2.log()
