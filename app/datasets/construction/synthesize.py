"""Scripts to a dataset bundle: speak each script with the TTS its style routes to, drop clips
whose transcript strays from the script, mix in background noise, and write `manifest.jsonl` and
`audio/<id>.wav` as the dataset import reads them.

Every script is checked against the import's prompt schema before anything is spoken, so the
output always imports. Each kept clip is written (audio first, then its manifest line) as soon as
it is made; each dropped one goes to `drops.jsonl` with its reason (the transcript and its word
error rate, or the TTS's error). A run skips every id already in the manifest or the drops, so a
stopped run resumes where it stopped; to try dropped scripts again, delete their lines from
`drops.jsonl`.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from app.audio.codec import decode, wav_bytes
from app.config import AudioSettings, InferenceSettings
from app.datasets.construction import tts
from app.datasets.construction.asr import ASR, error_rate
from app.datasets.construction.limits import RemoteLimits, ServiceLimiter
from app.datasets.construction.llm import Usage, with_retries
from app.datasets.construction.noise import NoiseBank, mix
from app.datasets.construction.store import JsonlLog, progress, read_jsonl
from app.datasets.schemas import PromptLine, validate_lines
from app.errors import ArenaError, InvalidInput
from app.inference.adapters.base import PermanentError

AUDIO_DIR = "audio"


@dataclass
class Script:
    row: dict[str, Any]  # the script as given, with its domain filled in
    line: tts.ScriptLine


@dataclass
class Filters:
    asr: ASR | None = None
    max_wer: float | None = None
    noise: NoiseBank | None = None
    snr_db: float = 10.0


@dataclass
class Outcome:
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    usage: Usage = field(default_factory=Usage)


def load_scripts(path: Path, default_domain: str | None) -> list[Script]:
    """The scripts, each checked as a prompt of the import (its audio still to come) and as a
    script to speak; every problem is reported at once, with its line number."""
    rows = read_jsonl(path, "scripts")
    filled = [(number, {**row, "domain": row.get("domain") or default_domain,
                        "audio": "(synthesised)"}) for number, row in rows]
    filled = [(number, {k: v for k, v in row.items() if v is not None})
              for number, row in filled]
    try:
        validate_lines(PromptLine, filled)
    except InvalidInput as exc:
        hint = "" if default_domain else " (--domain gives scripts without one a domain)"
        raise InvalidInput(f"{path.name}: " + exc.message.replace("manifest.jsonl has", "has")
                           + hint) from None
    scripts, seen = [], Counter(str(row.get("id")) for _, row in rows)
    if repeated := sorted(key for key, count in seen.items() if count > 1):
        raise InvalidInput(f"{path.name}: script ids appear more than once: "
                           f"{', '.join(repeated)}")
    for number, row in filled:
        row.pop("audio")
        try:
            scripts.append(Script(row, tts.ScriptLine.model_validate(row)))
        except ValidationError as exc:
            raise InvalidInput(f"{path.name} line {number}: {exc.errors()[0]['msg']}") from None
    return scripts


# Replies that say the endpoint, the model or the key is wrong: every script would fail alike.
SETUP_ERRORS = frozenset({401, 403, 404})


def _stop_on_setup_error(exc: Exception, what: str) -> None:
    """Stop the run, rather than drop every script one by one as failed (a drop is never
    tried again), when the service's reply says its setup is wrong."""
    if isinstance(exc, PermanentError) and exc.status in SETUP_ERRORS:
        raise PermanentError(f"{what}: {exc.message} (check its base_url, model and key; "
                             "nothing was dropped)", status=exc.status) from exc


def audio_name(script_id: str) -> str:
    """A file name for a script's clip: the id when it is a safe name, else the id's safe
    characters and a hash (two ids never share a file)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", script_id).strip(".") or "clip"
    if safe != script_id:
        safe = f"{safe[:80]}-{hashlib.sha256(script_id.encode()).hexdigest()[:10]}"
    return f"{AUDIO_DIR}/{safe}.wav"


class Synthesizer:
    def __init__(self, routes: tts.Routes, filters: Filters, out_dir: Path, *,
                 policy: InferenceSettings, environ: Mapping[str, str],
                 audio: AudioSettings | None = None, limits: RemoteLimits | None = None,
                 notify: Callable[[str], None] | None = None) -> None:
        self.routes = routes
        self.adapters = {name: tts.build(config, environ) for name in ("default", *tts.STYLES)
                         if (config := getattr(routes, name)) is not None}
        self.filters = filters
        self.limits = limits
        self.out_dir = Path(out_dir)
        self.manifest = JsonlLog(self.out_dir / "manifest.jsonl")
        self.drops = JsonlLog(self.out_dir / "drops.jsonl")
        self.policy = policy
        self.audio = audio or AudioSettings()
        self.notify = notify or (lambda message: print(message, file=sys.stderr))

    def done(self) -> set[str]:
        return {str(row.get("id")) for row in self.manifest.read() + self.drops.read()}

    def adapter_for(self, script: Script) -> tuple[str, tts.TTS]:
        route = self.routes.route(script.line)
        return route, self.adapters[route]

    def run(self, scripts: list[Script]) -> Outcome:
        done = self.done()
        todo = [script for script in scripts if script.line.id not in done]
        routes = {self.adapter_for(script)[0] for script in todo}
        for route in sorted(routes):  # a missing key or program fails before any clip
            self.adapters[route].check()
        if self.filters.asr is not None and todo:
            self.filters.asr.check()
        outcome = Outcome()
        with progress(len(scripts), len(scripts) - len(todo), "clips") as bar:
            for script in todo:
                self._one(script, outcome)
                bar.update(1)
                bar.set_postfix_str(f"{outcome.kept} kept, {sum(outcome.dropped.values())} "
                                    f"dropped, {outcome.usage.input_tokens} tokens in, "
                                    f"{outcome.usage.output_tokens} out", refresh=False)
        return outcome

    def _one(self, script: Script, outcome: Outcome) -> None:
        line = script.line
        route, adapter = self.adapter_for(script)
        try:
            spoken = with_retries(lambda: adapter.speak(line), self.policy,
                                  what=f"{line.id} ({adapter.kind} TTS)", notify=self.notify,
                                  limiter=self._limiter(adapter.service, adapter.config))
            outcome.usage.add(spoken.usage)
            samples, rate = decode(spoken.audio, self.audio, name=f"the {adapter.kind} TTS's "
                                   f"audio for {line.id}")
        except (PermanentError, ArenaError) as exc:
            _stop_on_setup_error(exc, f"the {adapter.kind} TTS of the {route} route")
            return self._drop(outcome, line.id, "tts_failed", exc.message)
        synthesis: dict[str, Any] = {"tts": adapter.kind, "route": route,
                                     "request": spoken.request}

        if self.filters.asr is not None:
            try:
                transcript, usage = with_retries(
                    lambda: self.filters.asr.transcribe(wav_bytes(samples, rate),
                                                        line.language),
                    self.policy, what=f"{line.id} (ASR)", notify=self.notify,
                    limiter=self._limiter(self.filters.asr.service, self.filters.asr.config))
            except PermanentError as exc:
                _stop_on_setup_error(exc, "the ASR")
                return self._drop(outcome, line.id, "asr_failed", exc.message)
            outcome.usage.add(usage)
            wer = error_rate(line.text, transcript, line.language)
            synthesis.update(transcript=transcript, wer=round(wer, 4))
            if self.filters.max_wer is not None and wer > self.filters.max_wer:
                return self._drop(outcome, line.id, "wer",
                                  f"word error rate {wer:.3f} is above {self.filters.max_wer:g}",
                                  transcript=transcript, wer=round(wer, 4))

        if self.filters.noise is not None:
            noise = self.filters.noise.pick(line.id, len(samples), rate)
            samples = mix(samples, noise.samples, self.filters.snr_db)
            synthesis["noise"] = {"category": noise.category, "source": noise.source,
                                  "snr_db": self.filters.snr_db}

        name = audio_name(line.id)
        path = self.out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".wav.partial")
        partial.write_bytes(wav_bytes(np.clip(samples, -1.0, 1.0).astype(np.float32), rate))
        os.replace(partial, path)
        self.manifest.append({**script.row, "audio": name, "synthesis": synthesis})
        outcome.kept += 1

    def _limiter(self, service: str | None, config: Any) -> ServiceLimiter | None:
        """What a request to `service` waits for; nothing for a local TTS or ASR."""
        if service is None or self.limits is None:
            return None
        return self.limits.for_service(service, config.timeout_s)

    def _drop(self, outcome: Outcome, script_id: str, kind: str, reason: str,
              **extra: Any) -> None:
        outcome.dropped[kind] += 1
        self.drops.append({"id": script_id, "kind": kind, "reason": reason, **extra})

    def dry_run(self, scripts: list[Script], shown: int = 3) -> str:
        done = self.done()
        todo = [script for script in scripts if script.line.id not in done]
        by_route = Counter(self.adapter_for(script)[0] for script in todo)
        lines = [f"{len(scripts)} scripts, {len(scripts) - len(todo)} already done, "
                 f"{len(todo)} to speak:"]
        for route, count in sorted(by_route.items()):
            lines.append(f"  {count} by the {route} route ({self.adapters[route].kind} TTS)")
        asr = self.filters.asr
        lines.append(f"ASR: {asr.config.describe()}" + (
            f", dropping clips with a word error rate above {self.filters.max_wer:g}"
            if self.filters.max_wer is not None else ", keeping every clip")
            if asr else "ASR: none (no WER filter)")
        if self.filters.noise is not None:
            lines.append(f"noise: {', '.join(self.filters.noise.categories())} at "
                         f"{self.filters.snr_db:g} dB SNR")
        for script in todo[:shown]:
            route, adapter = self.adapter_for(script)
            lines.append(f"{script.line.id}: {adapter.kind} {adapter.request(script.line)}")
        return "\n".join(lines)
