"""`s2s-arena dataset synthesize`: espeak-ng for real, remote TTS and ASR through the real SDKs
against the fakes, the WER filter on real clips, noise at a set SNR, resuming, and importing the
output through the real API."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jiwer
import numpy as np
import pytest
import soundfile as sf

from app.cli import main
from app.datasets.construction.asr import error_rate
from app.datasets.construction.noise import SYNTHETIC, NoiseBank, mix, synthetic
from tests.conftest import ADMIN, DATA, ROOT, make_zip
from tests.datasets.conftest import needs_espeak, write_jsonl

ARCTIC = DATA / "cmu-arctic"
ARCTIC_TEXT = {  # exact transcripts, from tests/data/cmu-arctic/SOURCE.md
    "slt_arctic_a0009": "He turned sharply, and faced Gregson across the table.",
    "awb_arctic_a0007": "And you always want to see it in the superlative degree.",
}


def script(key: str, text: str, **fields) -> dict:
    return {"id": key, "text": text, "task": "Emotion recognition and expression",
            "category": "Emotion recognition and expression", "level": "L4",
            "domain": "social", "language": "English", **fields}


def _synthesize(scripts: Path, out: Path, *extra: str) -> int:
    return main(["dataset", "synthesize", str(scripts), "--out", str(out), *extra])


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _median_f0(samples: np.ndarray, rate: int) -> float:
    """The median pitch of the voiced frames, by autocorrelation (60-500 Hz)."""
    frame, found = int(0.04 * rate), []
    threshold = 0.1 * np.sqrt(np.mean(samples ** 2))
    for start in range(0, len(samples) - frame, frame // 2):
        piece = samples[start:start + frame] - samples[start:start + frame].mean()
        if np.sqrt(np.mean(piece ** 2)) < threshold:
            continue
        corr = np.correlate(piece, piece, "full")[frame - 1:]
        low, high = rate // 500, rate // 60
        lag = low + int(np.argmax(corr[low:high]))
        if corr[lag] > 0.3 * corr[0]:
            found.append(rate / lag)
    return float(np.median(found))


@needs_espeak
def test_espeak_speaks_each_style_and_the_folder_imports_through_the_api(client, tmp_path,
                                                                         capsys):
    scripts = write_jsonl(tmp_path / "scripts.jsonl", [
        script("man", "Help me pick workout clothes for the gym.", gender="male", level="L2",
               contrast_group="gym"),
        script("woman", "Help me pick workout clothes for the gym.", gender="female",
               level="L2", contrast_group="gym"),
        script("child", "I need instructions on buying stock with my money.", age="child",
               emotion="happy"),
        script("slow", "Tell me how to fix a flat tyre.", pace="slow", level="L1",
               domain="education", emotion=None),
        script("zh", "城市计划在我家附近建一个新商场。", language="zh", text_cn="城市计划"),
    ])
    out = tmp_path / "made"
    assert _synthesize(scripts, out) == 0
    assert "kept 5 new clips" in capsys.readouterr().out

    rows = {row["id"]: row for row in _rows(out / "manifest.jsonl")}
    assert list(rows) == ["man", "woman", "child", "slow", "zh"]
    requests = {key: row["synthesis"]["request"] for key, row in rows.items()}
    assert requests["man"]["voice"] == "en-us+m3" and requests["woman"]["voice"] == "en-us+f3"
    assert requests["child"]["pitch"] > requests["woman"]["pitch"] > requests["man"]["pitch"]
    assert requests["slow"]["rate"] < requests["man"]["rate"]
    assert requests["zh"]["voice"] == "cmn"
    clips = {key: sf.read(out / row["audio"]) for key, row in rows.items()}
    durations = {key: len(samples) / rate for key, (samples, rate) in clips.items()}
    assert all(0.8 < seconds < 8 for seconds in durations.values())
    pitch = {key: _median_f0(*clips[key]) for key in ("man", "woman", "child")}
    assert pitch["man"] < pitch["woman"] < pitch["child"]
    # the same words, slower: longer
    assert durations["slow"] / len(rows["slow"]["text"]) > durations["man"] / len(
        rows["man"]["text"])

    files = {path.relative_to(out).as_posix(): path.read_bytes()
             for path in out.rglob("*") if path.is_file()}
    reply = client.post("/api/v1/datasets", headers=ADMIN, data={"name": "espeak-set"},
                        files={"file": ("made.zip", make_zip(files), "application/zip")})
    assert reply.status_code == 201, reply.text
    assert reply.json()["prompts"] == 5
    prompts = {p["id"]: p for p in client.get("/api/v1/prompts", headers=ADMIN).json()}
    assert prompts["man"]["gender"] == "male" and prompts["man"]["contrast_group"] == "gym"
    assert prompts["child"]["age"] == "child" and prompts["child"]["emotion"] == "happy"
    assert prompts["slow"]["domain"] == "education"
    assert prompts["zh"]["domain"] == "social companionship"
    assert prompts["man"]["duration_s"] == pytest.approx(durations["man"], abs=0.01)


def test_the_wer_filter_on_real_clips_drops_what_strays_from_the_script(openai_fake, tmp_path,
                                                                        fast_retries):
    """A lab's own TTS (a command; here it hands back real CMU ARCTIC recordings), transcribed
    through the transcription API: one transcript is exact, one has a wrong word."""
    control, url = openai_fake
    scripts = write_jsonl(tmp_path / "scripts.jsonl",
                          [script(key, text) for key, text in ARCTIC_TEXT.items()])
    config = tmp_path / "tts.json"
    config.write_text(json.dumps({"default": {
        "kind": "command", "command": ["cp", str(ARCTIC / "{id}.wav"), "{output}"]}}))
    control.queue("429:0.2", "text:He turned sharply and faced Gregson across the table",
                  "text:And you always want to see it in the superlative decree.")
    out = tmp_path / "out"
    assert _synthesize(scripts, out, "--tts-config", str(config), "--asr", "openai",
                       "--asr-base-url", url, "--asr-model", "whisper-large-v3",
                       "--max-wer", "0.05") == 0

    [kept] = _rows(out / "manifest.jsonl")
    assert kept["id"] == "slt_arctic_a0009" and kept["synthesis"]["wer"] == 0
    [dropped] = _rows(out / "drops.jsonl")
    expected = jiwer.wer("and you always want to see it in the superlative degree",
                         "and you always want to see it in the superlative decree")
    assert expected == pytest.approx(1 / 11)
    assert dropped == {"id": "awb_arctic_a0007", "kind": "wer",
                       "reason": "word error rate 0.091 is above 0.05",
                       "transcript": "And you always want to see it in the superlative decree.",
                       "wer": round(expected, 4)}
    # The ASR heard the real recording (to within one step of 16-bit rounding), after one
    # retried 429.
    assert [r["path"] for r in control.requests] == ["/v1/audio/transcriptions"] * 3
    assert control.requests[2]["at"] - control.requests[1]["at"] < 5
    assert control.requests[1]["at"] - control.requests[0]["at"] >= 0.2
    assert control.requests[1]["form"]["model"] == "whisper-large-v3"
    heard, rate = sf.read(io.BytesIO(control.requests[1]["file"]["data"]), dtype="int16")
    original, original_rate = sf.read(ARCTIC / "slt_arctic_a0009.wav", dtype="int16")
    assert rate == original_rate and len(heard) == len(original)
    assert np.max(np.abs(heard.astype(int) - original)) <= 1
    kept_audio, _ = sf.read(out / kept["audio"], dtype="int16")
    assert np.max(np.abs(kept_audio.astype(int) - original)) <= 1


def test_error_rates_match_jiwer():
    reference, heard = ARCTIC_TEXT["slt_arctic_a0009"], "he turned sharp and faced gregson"
    assert error_rate(reference, heard) == pytest.approx(
        jiwer.wer("he turned sharply and faced gregson across the table", heard))
    assert error_rate(reference, "") == 1.0
    assert error_rate("城市计划在我家附近", "城市计划在我家", "zh") == pytest.approx(2 / 9)


def test_gemini_asr_stage(gemini, tmp_path):
    control, url = gemini
    control.default = "text:He turned sharply and faced Gregson across the table."
    scripts = write_jsonl(tmp_path / "scripts.jsonl",
                          [script("slt_arctic_a0009", ARCTIC_TEXT["slt_arctic_a0009"])])
    config = tmp_path / "tts.json"
    config.write_text(json.dumps({"default": {
        "kind": "command", "command": ["cp", str(ARCTIC / "{id}.wav"), "{output}"]}}))
    assert _synthesize(scripts, tmp_path / "out", "--tts-config", str(config), "--asr",
                       "gemini", "--asr-base-url", url, "--max-wer", "0") == 0
    [kept] = _rows(tmp_path / "out" / "manifest.jsonl")
    assert kept["synthesis"]["wer"] == 0
    [request] = control.requests
    assert request["parts"][0]["mime_type"] == "audio/wav" and "verbatim" in request["parts"][1][
        "text"]


@needs_espeak
def test_remote_tts_routes_by_style(gemini, openai_fake, tmp_path, fast_retries):
    gemini_control, gemini_url = gemini
    openai_control, openai_url = openai_fake
    openai_control.default = "ok"
    openai_control.queue("429:0.1")
    gemini_control.default = "ok"
    config = tmp_path / "tts.json"
    config.write_text(json.dumps({
        "default": {"kind": "espeak"},
        "emotion": {"kind": "openai", "base_url": openai_url, "voice": "coral"},
        "sarcasm": {"kind": "openai", "base_url": openai_url, "voice": "ash"},
        "gender": {"kind": "gemini", "base_url": gemini_url, "voice": "Kore",
                   "voices": {"male": "Puck"}},
    }))
    scripts = write_jsonl(tmp_path / "scripts.jsonl", [
        script("sad", "The city is building a new mall near my house.", emotion="sad"),
        script("sarcastic", "Wow, you're really on top of things today!",
               sarcasm="sarcastic", style="dry and mocking, drawn out"),
        script("male", "Help me pick workout clothes for the gym.", gender="male"),
        script("plain", "What time is it in Tokyo?"),
    ])
    out = tmp_path / "out"
    assert _synthesize(scripts, out, "--tts-config", str(config)) == 0
    rows = {row["id"]: row["synthesis"] for row in _rows(out / "manifest.jsonl")}
    assert {key: (s["tts"], s["route"]) for key, s in rows.items()} == {
        "sad": ("openai", "emotion"), "sarcastic": ("openai", "sarcasm"),
        "male": ("gemini", "gender"), "plain": ("espeak", "default")}

    speech = [r["json"] for r in openai_control.requests]
    assert len(speech) == 3  # one 429, retried
    assert speech[1] == {"model": "gpt-4o-mini-tts", "input": "The city is building a new mall "
                         "near my house.", "voice": "coral", "response_format": "wav",
                         "instructions": "Speak in a sad tone."}
    assert speech[2]["instructions"] == "Speak dry and mocking, drawn out."
    assert speech[2]["voice"] == "ash"
    [request] = gemini_control.requests
    config_sent = request["json"]["generationConfig"]
    assert config_sent["responseModalities"] == ["AUDIO"]
    assert config_sent["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"] == "Puck"
    assert request["parts"] == [{"text": "Say as a male speaker: Help me pick workout clothes "
                                         "for the gym."}]
    for row in _rows(out / "manifest.jsonl"):
        samples, rate = sf.read(out / row["audio"])
        assert len(samples) / rate > 0.4


def test_failures_are_dropped_with_their_reason_and_missing_keys_stop_first(
        openai_fake, tmp_path, monkeypatch, capsys, fast_retries):
    control, url = openai_fake
    config = tmp_path / "tts.json"
    config.write_text(json.dumps({"default": {"kind": "openai", "base_url": url}}))
    scripts = write_jsonl(tmp_path / "scripts.jsonl", [script("a", "One."), script("b", "Two."),
                                                       script("c", "Three.")])
    control.queue("bad_audio", "400")
    out = tmp_path / "out"
    assert _synthesize(scripts, out, "--tts-config", str(config)) == 0
    assert [row["id"] for row in _rows(out / "manifest.jsonl")] == ["c"]
    drops = _rows(out / "drops.jsonl")
    assert [(d["id"], d["kind"]) for d in drops] == [("a", "tts_failed"), ("b", "tts_failed")]
    assert "does not decode" in drops[0]["reason"] or "not" in drops[0]["reason"]
    assert "HTTP 400" in drops[1]["reason"]

    # Done ids are skipped; a missing key stops the run before any request.
    more = write_jsonl(tmp_path / "more.jsonl", [script("a", "One."), script("d", "Four.")])
    monkeypatch.delenv("OPENAI_API_KEY")
    before = len(control.requests)
    assert _synthesize(more, out, "--tts-config", str(config)) == 2
    assert "OPENAI_API_KEY is not set" in capsys.readouterr().err
    assert len(control.requests) == before


def test_a_wrong_endpoint_stops_the_run_instead_of_dropping_every_script(openai_fake, tmp_path,
                                                                        capsys):
    control, url = openai_fake
    config = tmp_path / "tts.json"
    config.write_text(json.dumps({"default": {"kind": "openai", "base_url": url + "/v2"}}))
    scripts = write_jsonl(tmp_path / "scripts.jsonl", [script("a", "One."), script("b", "Two.")])
    out = tmp_path / "out"
    assert _synthesize(scripts, out, "--tts-config", str(config)) == 2
    err = capsys.readouterr().err
    assert "the openai TTS of the default route: HTTP 404" in err and "nothing was dropped" in err
    assert not (out / "drops.jsonl").exists() and not (out / "manifest.jsonl").exists()


def test_bad_scripts_and_settings_are_refused_with_reasons(tmp_path, capsys):
    bad = write_jsonl(tmp_path / "bad.jsonl", [
        script("a", "Fine."), {**script("b", "No level."), "level": "L9"},
        {k: v for k, v in script("c", "No domain.").items() if k != "domain"}])
    assert _synthesize(bad, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "line 2: level: level 'L9' is not one of L1, L2, L3, L4" in err
    assert "line 3: domain" in err and "--domain" in err
    assert not (tmp_path / "out").exists()

    good = write_jsonl(tmp_path / "good.jsonl", [script("a", "Fine.")])
    assert _synthesize(good, tmp_path / "out", "--max-wer", "0.2") == 2
    assert "--max-wer needs an ASR" in capsys.readouterr().err
    config = tmp_path / "tts.json"
    config.write_text(json.dumps({"default": {"kind": "command", "command": ["say"]}}))
    assert _synthesize(good, tmp_path / "out", "--tts-config", str(config)) == 2
    assert "the command must name {output}" in capsys.readouterr().err
    assert _synthesize(good, tmp_path / "out", "--noise", str(tmp_path / "nowhere")) == 2
    assert "no such noise folder" in capsys.readouterr().err


def test_noise_is_mixed_at_the_set_snr():
    speech, rate = sf.read(ARCTIC / "slt_arctic_a0009.wav")
    rng = np.random.default_rng(0)
    for kind in SYNTHETIC:
        noise = synthetic(kind, len(speech), rate, rng)
        for snr in (0.0, 5.0, 20.0):
            mixed = mix(speech, noise, snr)
            added = mixed - speech
            measured = 10 * np.log10(np.mean(speech ** 2) / np.mean(added ** 2))
            assert measured == pytest.approx(snr, abs=1e-6), kind
    # Loud noise: the sum is scaled down rather than clipped, and keeps its ratio.
    loud = mix(speech * 3, synthetic("white", len(speech), rate, rng), -5.0)
    assert np.max(np.abs(loud)) <= 0.99 + 1e-9


def test_noise_from_a_folder_by_category_is_the_same_for_the_same_clip(tmp_path):
    street = tmp_path / "noise" / "street"
    street.mkdir(parents=True)
    (street / "traffic.wav").write_bytes((ARCTIC / "awb_arctic_a0007.wav").read_bytes())
    (tmp_path / "noise" / "empty").mkdir()
    bank = NoiseBank(tmp_path / "noise")
    assert bank.categories() == ["street"]
    first = bank.pick("clip-1", 24_000 * 10, 24_000)  # longer than the file: looped
    again = NoiseBank(tmp_path / "noise").pick("clip-1", 24_000 * 10, 24_000)
    assert first.category == "street" and first.source == "street/traffic.wav"
    assert np.array_equal(first.samples, again.samples) and len(first.samples) == 240_000
    with pytest.raises(Exception, match="no noise category 'cafe'"):
        NoiseBank(tmp_path / "noise", category="cafe")


def _command(scripts: Path, out: Path, config: Path) -> list[str]:
    return [sys.executable, "-m", "app.cli", "dataset", "synthesize", str(scripts), "--out",
            str(out), "--tts-config", str(config), "--noise", "default", "--snr", "12"]


@needs_espeak
def test_a_killed_run_resumes_to_what_an_uninterrupted_run_writes(tmp_path):
    config = tmp_path / "tts.json"
    config.write_text(json.dumps({"default": {"kind": "command", "command": [
        "sh", "-c", 'sleep 0.2; exec espeak-ng -v en-us -w "$0" -f "$1"', "{output}",
        "{text_file}"]}}))
    scripts = write_jsonl(tmp_path / "scripts.jsonl", [
        script(f"s{n}", f"This is spoken prompt number {n} of the set.") for n in range(8)])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    whole = tmp_path / "whole"
    subprocess.run(_command(scripts, whole, config), env=env, cwd=ROOT, check=True,
                   capture_output=True, timeout=120)

    resumed = tmp_path / "resumed"
    process = subprocess.Popen(_command(scripts, resumed, config), env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = resumed / "manifest.jsonl"
    deadline = time.monotonic() + 60
    while not (manifest.exists() and manifest.read_text().count("\n") >= 2):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = manifest.read_text().count("\n")
    assert 2 <= killed_at < 8
    done = subprocess.run(_command(scripts, resumed, config), env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"kept {8 - killed_at} new clips" in done.stdout
    assert manifest.read_text() == (whole / "manifest.jsonl").read_text()
    for row in _rows(manifest):
        assert (resumed / row["audio"]).read_bytes() == (whole / row["audio"]).read_bytes()
    assert not list(resumed.rglob("*.partial"))


def test_dry_run_shows_the_requests_and_sends_nothing(openai_fake, tmp_path, capsys,
                                                      monkeypatch):
    control, url = openai_fake
    monkeypatch.delenv("OPENAI_API_KEY")  # not needed to look
    config = tmp_path / "tts.json"
    config.write_text(json.dumps({"emotion": {"kind": "openai", "base_url": url}}))
    scripts = write_jsonl(tmp_path / "scripts.jsonl", [
        script("sad", "The city is building a new mall near my house.", emotion="sad"),
        script("child", "Can I buy a phone?", age="child")])
    assert _synthesize(scripts, tmp_path / "out", "--tts-config", str(config), "--asr",
                       "openai", "--asr-base-url", url, "--max-wer", "0.2", "--noise",
                       "default", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "1 by the default route (espeak TTS)" in out and "1 by the emotion route" in out
    assert "'instructions': 'Speak in a sad tone.'" in out
    assert "child: espeak {'voice': 'en-us+f5', 'pitch': 90" in out
    assert "dropping clips with a word error rate above 0.2" in out
    assert "noise: brown, hum, pink, white at 10 dB SNR" in out
    assert control.requests == [] and not (tmp_path / "out").exists()


def test_offline_pocketsphinx_filter_on_real_clips(tmp_path):
    """Real recordings, a real (offline) ASR: the clips whose scripts match are kept with WER 0;
    a script that says something else is dropped; a Chinese script cannot be checked."""
    pytest.importorskip("pocketsphinx")
    config = tmp_path / "tts.json"
    config.write_text(json.dumps({"default": {
        "kind": "command", "command": ["cp", str(ARCTIC / "{voice}.wav"), "{output}"]}}))
    wrong = "He turned slowly and faced the judge across the room."
    scripts = write_jsonl(tmp_path / "scripts.jsonl", [
        script(key, text, voice=key) for key, text in ARCTIC_TEXT.items()] + [
        script("wrong", wrong, voice="slt_arctic_a0009"),
        script("zh", "他猛地转身。", voice="slt_arctic_a0009", language="zh")])
    out = tmp_path / "out"
    assert _synthesize(scripts, out, "--tts-config", str(config), "--asr", "pocketsphinx",
                       "--max-wer", "0.1") == 0
    kept = {row["id"]: row["synthesis"] for row in _rows(out / "manifest.jsonl")}
    assert kept == {key: {"tts": "command", "route": "default",
                          "request": {"command": ["cp", str(ARCTIC / f"{key}.wav"),
                                                  "{output}"]},
                          "transcript": text.lower().replace(",", "").rstrip("."), "wer": 0.0}
                    for key, text in ARCTIC_TEXT.items()}
    drops = {row["id"]: row for row in _rows(out / "drops.jsonl")}
    heard = "he turned sharply and faced gregson across the table"
    assert drops["wrong"]["kind"] == "wer" and drops["wrong"]["transcript"] == heard
    # slowly->sharply, the judge->gregson (one substituted, one deleted), room->table: 4 of 10
    assert drops["wrong"]["wer"] == round(jiwer.wer(wrong.lower().rstrip("."), heard), 4) == 0.4
    assert drops["zh"]["kind"] == "asr_failed" and "English only" in drops["zh"]["reason"]
