"""The `http` adapter against a fake lab server over real sockets, and the `command` adapter
running a real script in a real process group."""

from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf

from app.inference.adapters import build
from app.inference.adapters.base import PermanentError, PromptAudio, TransientError
from app.inference.adapters.command import Command
from app.inference.adapters.http import HttpEndpoint
from app.inference.configs import CommandAdapter, HttpAdapter
from tests.conftest import free_port, tone
from tests.fakes.lab_server import MODEL_VERSION, REPLY_RATE, TRANSCRIPT, running
from tests.fakes.server import Control

LAB_COMMAND = str(Path(__file__).resolve().parent.parent / "fakes" / "lab_command.py")
PROMPT = PromptAudio(key="p-001", wav=tone(0.5, rate=16_000), sample_rate=16_000)


def rate_of(audio: bytes) -> int:
    return sf.info(io.BytesIO(audio)).samplerate


# --- http ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab_server():
    control = Control()
    with running(control) as base_url:
        yield control, f"{base_url}/infer"


@pytest.fixture
def lab(lab_server) -> tuple[Control, str]:
    control, url = lab_server
    control.reset()
    return lab_server


def http(url: str, environ: dict[str, str] | None = None, **fields) -> HttpEndpoint:
    return HttpEndpoint(HttpAdapter(kind="http", url=url, **fields), environ=environ or {})


def test_multipart_request_carries_audio_params_and_token(lab):
    control, url = lab
    config = HttpAdapter(kind="http", url=url, audio_field="speech", bearer_token_env="LAB_TOKEN",
                         params={"voice": "calm", "temperature": 0.7, "stream": False})
    adapter = build(config, environ={"LAB_TOKEN": "s3cret"})  # through the registry
    assert isinstance(adapter, HttpEndpoint)

    result = adapter.generate(PROMPT)

    [request] = control.requests
    assert request["content_type"] == "multipart/form-data"
    assert (request["audio_field"], request["filename"], request["audio_content_type"]) == (
        "speech", "prompt.wav", "audio/wav")
    assert request["sample_rate"] == 16_000
    assert request["fields"] == {"sample_rate": "16000", "prompt_id": "p-001", "voice": "calm",
                                 "temperature": "0.7", "stream": "false"}
    assert request["authorization"] == "Bearer s3cret"
    assert rate_of(result.audio) == REPLY_RATE
    assert result.transcript == TRANSCRIPT  # percent-decoded from X-Transcript
    assert result.model_version == MODEL_VERSION


def test_json_request_carries_base64_audio_and_params(lab):
    control, url = lab
    result = http(url, request_format="json", params={"voice": "calm"}).generate(PROMPT)

    [request] = control.requests
    assert request["content_type"] == "application/json"
    assert request["audio_field"] == "audio"
    assert request["sample_rate"] == 16_000
    assert request["fields"] == {"format": "wav", "sample_rate": 16_000, "prompt_id": "p-001",
                                 "voice": "calm"}
    assert request["authorization"] is None
    assert rate_of(result.audio) == REPLY_RATE


def test_json_reply(lab):
    control, url = lab
    control.queue("json")
    result = http(url).generate(PROMPT)
    assert rate_of(result.audio) == REPLY_RATE
    assert result.transcript == TRANSCRIPT
    assert result.model_version == MODEL_VERSION
    assert result.usage == {"audio_seconds": 0.5}


def test_json_reply_with_a_data_url(lab):
    control, url = lab
    control.queue("json_data_url")
    result = http(url).generate(PROMPT)
    assert rate_of(result.audio) == REPLY_RATE
    assert (result.transcript, result.model_version, result.usage) == (TRANSCRIPT, None, {})


def test_429_is_transient_with_the_servers_retry_after(lab):
    control, url = lab
    control.queue("429")
    with pytest.raises(TransientError) as caught:
        http(url).generate(PROMPT)
    assert caught.value.status == 429
    assert caught.value.retry_after == 5.0


def test_500_is_transient(lab):
    control, url = lab
    control.queue("500")
    with pytest.raises(TransientError) as caught:
        http(url).generate(PROMPT)
    assert caught.value.status == 500
    assert "CUDA error" in caught.value.message
    assert caught.value.retry_after is None


def test_404_is_permanent(lab):
    control, url = lab
    control.queue("404")
    with pytest.raises(PermanentError) as caught:
        http(url).generate(PROMPT)
    assert caught.value.status == 404


@pytest.mark.parametrize(("behaviour", "expected"), [
    ("json_missing_audio", "without base64 audio under 'audio' (keys: error, transcript)"),
    ("json_bad_base64", "'audio' is not valid base64"),
    ("html", "answered with text/html; expected an audio file"),
])
def test_a_reply_without_audio_is_permanent(lab, behaviour, expected):
    control, url = lab
    control.queue(behaviour)
    with pytest.raises(PermanentError) as caught:
        http(url).generate(PROMPT)
    assert expected in caught.value.message
    assert not caught.value.transient


def test_audio_that_does_not_decode_is_passed_on_for_the_caller_to_refuse(lab):
    control, url = lab
    control.queue("bad_audio")
    assert http(url).generate(PROMPT).audio == b"this is not audio at all"


def test_a_slow_server_times_out_as_transient(lab):
    control, url = lab
    control.queue("slow")
    started = time.monotonic()
    with pytest.raises(TransientError, match="did not answer within 0.5 s"):
        http(url, timeout_s=0.5).generate(PROMPT)
    assert time.monotonic() - started < 2.5


def test_a_missing_token_is_permanent_and_sends_nothing(lab):
    control, url = lab
    with pytest.raises(PermanentError, match="LAB_TOKEN"):
        http(url, bearer_token_env="LAB_TOKEN").generate(PROMPT)
    assert control.requests == []


def test_a_server_that_is_down_is_transient():
    with pytest.raises(TransientError, match="could not reach"):
        http(f"http://127.0.0.1:{free_port()}/infer").generate(PROMPT)


def test_probe(lab):
    _, url = lab
    assert http(url).probe() is None  # FastAPI answers HEAD /infer with 405: the server is up
    down = f"http://127.0.0.1:{free_port()}/infer"
    warning = http(down).probe()
    assert warning is not None and warning.startswith(f"{down} does not answer now")


# --- command ---------------------------------------------------------------------------------


def command(tmp_path: Path, mode: str, *extra: str, timeout_s: float = 30) -> Command:
    config = CommandAdapter(
        kind="command",
        command=[sys.executable, LAB_COMMAND, mode, "{input}", "{output}",
                 "--record", str(tmp_path / "record.json"), *extra],
        working_dir=str(tmp_path), timeout_s=timeout_s,
    )
    return Command(config, environ={"PATH": os.environ["PATH"], "LAB_GREETING": "hello"})


def recorded(tmp_path: Path) -> dict:
    """What the script saw; its temporary directory must be gone by now."""
    record = json.loads((tmp_path / "record.json").read_text())
    assert not Path(record["input"]).parent.exists()
    return record


def test_command_answers_with_its_output_and_transcript(tmp_path):
    adapter = command(tmp_path, "copy", "--transcript", "{transcript}",
                      "--label", "{prompt_id}@{sample_rate} Hz {not_a_token} {}")
    result = adapter.generate(PROMPT)

    assert result.audio == PROMPT.wav
    assert result.transcript == "answer to p-001@16000 Hz {not_a_token} {}"
    assert result.model_version == "lab-cmd-1"
    record = recorded(tmp_path)
    assert Path(record["input"]).name == "prompt.wav"
    assert Path(record["output"]).parent == Path(record["input"]).parent
    assert record["cwd"] == str(tmp_path)
    assert record["greeting"] == "hello"  # the adapter's environment is the command's


def test_command_without_a_transcript(tmp_path):
    result = command(tmp_path, "copy").generate(PROMPT)
    assert (result.audio, result.transcript) == (PROMPT.wav, None)


def test_a_failing_command_is_permanent_with_the_end_of_stderr(tmp_path):
    with pytest.raises(PermanentError) as caught:
        command(tmp_path, "fail").generate(PROMPT)
    message = caught.value.message
    assert "failed with exit code 3" in message
    assert message.endswith("log line 29\nRuntimeError: the checkpoint is missing")
    assert "log line 11" in message and "log line 10" not in message  # the last 20 lines
    recorded(tmp_path)


def test_exit_75_is_transient(tmp_path):
    with pytest.raises(TransientError, match="exit 75") as caught:
        command(tmp_path, "tempfail").generate(PROMPT)
    assert "the GPU is busy" in caught.value.message
    recorded(tmp_path)


def test_no_output_is_permanent(tmp_path):
    with pytest.raises(PermanentError, match="wrote no audio"):
        command(tmp_path, "no_output").generate(PROMPT)
    recorded(tmp_path)


def test_a_command_past_its_time_limit_is_killed_with_its_children(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    adapter = command(tmp_path, "hang", "--pidfile", str(pidfile), timeout_s=1)
    started = time.monotonic()
    with pytest.raises(TransientError, match="time limit of 1 s"):
        adapter.generate(PROMPT)
    assert time.monotonic() - started < 10
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)
    recorded(tmp_path)


def test_a_program_that_does_not_exist_is_permanent(tmp_path):
    config = CommandAdapter(kind="command", command=[str(tmp_path / "nope"), "{input}", "{output}"])
    with pytest.raises(PermanentError, match="could not start"):
        Command(config, environ={}).generate(PROMPT)


def _alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting for an init that may never reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"
