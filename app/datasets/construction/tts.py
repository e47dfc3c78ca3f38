"""Text-to-speech adapters for `dataset synthesize`: a script in, a spoken clip out.

Four kinds, each with its own pydantic config (a TTS config file maps styles to them):
- "espeak": espeak-ng, offline. Voice, pitch, rate and amplitude come from the script's labels
  (gender and age pick the voice variant and pitch, pace and emotion the rate, emotion the
  amplitude), by the tables below.
- "gemini": a Gemini TTS model through google-genai, the style said in the prompt ("Say in a sad
  tone: ...") and a prebuilt voice, chosen by label when `voices` names one.
- "openai": an OpenAI-compatible speech endpoint (POST /audio/speech), the style given as
  `instructions`, as gpt-4o-mini-tts takes it (the ParaS2S paper's TTS for emotion and sarcasm).
- "command": a lab's own TTS (CosyVoice and the like), run as a command with the tokens {text},
  {text_file}, {output}, {voice}, {style}, {language}, {id} and each label ({emotion}, {sarcasm},
  {age}, {gender}, {pace}) replaced in its arguments; exit 75 asks for a retry, as an inference
  command does.

An adapter makes one request and never retries; it raises the inference adapters'
TransientError or PermanentError, and the caller retries by the workers' rules.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.datasets.construction.limits import service_name
from app.datasets.construction.llm import OPENAI_URL, Usage
from app.inference.adapters.base import PermanentError, TransientError, pcm16_to_wav

STYLES = ("emotion", "sarcasm", "age", "gender")  # in the order a TTS route is looked up
LABELS = (*STYLES, "pace")


class ScriptLine(BaseModel):
    """A script to speak: the prompt schema's fields, the ParaS2S style labels, and optionally a
    pace label, a free-text style description and a voice for the TTS."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1)
    language: str = "en"
    emotion: str | None = None
    sarcasm: str | None = None
    age: str | None = None
    gender: str | None = None
    pace: str | None = None
    style: str | None = None  # a style description, used as it is
    voice: str | None = None

    def labels(self) -> dict[str, str]:
        return {name: value.lower() for name in LABELS
                if (value := getattr(self, name)) is not None and value != ""}


# --- configs ----------------------------------------------------------------------------------

class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EspeakTTS(_Config):
    kind: Literal["espeak"]
    program: str = "espeak-ng"
    voice: str | None = None  # default: by the script's language
    timeout_s: float = Field(default=60.0, gt=0)


class GeminiTTS(_Config):
    kind: Literal["gemini"]
    model: str = "gemini-2.5-flash-preview-tts"
    voice: str = "Kore"
    voices: dict[str, str] = Field(default_factory=dict)  # label value -> voice ("male": "Puck")
    base_url: str | None = None
    api_key_env: str = "GEMINI_API_KEY"
    timeout_s: float = Field(default=120.0, gt=0)


class OpenAITTS(_Config):
    kind: Literal["openai"]
    model: str = "gpt-4o-mini-tts"
    voice: str = "coral"
    voices: dict[str, str] = Field(default_factory=dict)
    base_url: str = OPENAI_URL
    api_key_env: str | None = "OPENAI_API_KEY"  # None: a local server that wants no key
    timeout_s: float = Field(default=120.0, gt=0)


class CommandTTS(_Config):
    kind: Literal["command"]
    command: list[str] = Field(min_length=1)
    working_dir: str | None = None
    timeout_s: float = Field(default=600.0, gt=0)

    @field_validator("command")
    @classmethod
    def _placeholders(cls, command: list[str]) -> list[str]:
        joined = " ".join(command)
        if "{output}" not in joined:
            raise ValueError("the command must name {output}, the audio file it writes")
        return command


TTSConfig = Annotated[Union[EspeakTTS, GeminiTTS, OpenAITTS, CommandTTS],
                      Field(discriminator="kind")]


class Routes(_Config):
    """Which TTS speaks a script: the first of its labels emotion, sarcasm, age, gender that has
    a route here, else `default`."""

    default: TTSConfig = Field(default_factory=lambda: EspeakTTS(kind="espeak"))
    emotion: TTSConfig | None = None
    sarcasm: TTSConfig | None = None
    age: TTSConfig | None = None
    gender: TTSConfig | None = None

    def route(self, script: ScriptLine) -> str:
        for style in STYLES:
            if getattr(script, style) and getattr(self, style) is not None:
                return style
        return "default"


# --- style -------------------------------------------------------------------------------------

_AGE_WORDS = {"child": "like a young child", "kid": "like a young child",
              "teen": "like a teenager", "adult": "like an adult",
              "elderly": "like an elderly person", "senior": "like an elderly person",
              "old": "like an elderly person"}
_PACE_WORDS = {"slow": "slowly", "fast": "quickly", "normal": "at a normal pace"}


def style_description(script: ScriptLine) -> str:
    """How the script should sound, in words: its own `style`, or one made from its labels
    ("in a sarcastic tone, like a young child, slowly")."""
    if script.style:
        return script.style
    labels = script.labels()
    pieces = []
    if "emotion" in labels and labels["emotion"] != "neutral":
        pieces.append(f"in a {labels['emotion']} tone")
    if "sarcasm" in labels:
        pieces.append(f"in a {labels['sarcasm']} tone")
    if "gender" in labels:
        pieces.append(f"as a {labels['gender']} speaker")
    if "age" in labels:
        pieces.append(_AGE_WORDS.get(labels["age"], f"like a speaker who is {labels['age']}"))
    if "pace" in labels:
        pieces.append(_PACE_WORDS.get(labels["pace"], f"at a {labels['pace']} pace"))
    return ", ".join(pieces)


def _voice_for(script: ScriptLine, voice: str, voices: Mapping[str, str]) -> str:
    if script.voice:
        return script.voice
    for value in script.labels().values():
        if value in voices:
            return voices[value]
    return voice


# --- adapters ----------------------------------------------------------------------------------

@dataclass
class Spoken:
    audio: bytes  # an audio file (WAV, FLAC, MP3, OGG)
    request: dict[str, Any]  # what was asked, for the manifest and --dry-run
    usage: Usage = field(default_factory=Usage)


class TTS:
    kind: str

    def __init__(self, config: Any, environ: Mapping[str, str]) -> None:
        self.config = config
        self.environ = environ

    @property
    def service(self) -> str | None:
        """The remote service whose limits a request waits for; None for a local TTS."""
        return service_name(self.kind, self.config.model, self.config.base_url)

    def request(self, script: ScriptLine) -> dict[str, Any]:
        """What `speak` would send for this script (shown by --dry-run)."""
        raise NotImplementedError

    def speak(self, script: ScriptLine) -> Spoken:
        raise NotImplementedError

    def check(self) -> None:
        """Fail before the first script when the TTS cannot work at all."""

    def _key(self, name: str | None) -> str | None:
        if name is None:
            return None
        value = self.environ.get(name)
        if not value:
            raise PermanentError(f"the environment variable {name} is not set")
        return value


# Labels to espeak-ng parameters: voice variant, pitch (0-99), rate (words per minute),
# amplitude (0-200). Later tables adjust what earlier ones set.
ESPEAK_LANGUAGES = {"en": "en-us", "english": "en-us", "zh": "cmn", "chinese": "cmn",
                    "cmn": "cmn", "ja": "ja", "japanese": "ja", "hi": "hi", "hindi": "hi"}
ESPEAK_GENDER = {"female": ("+f3", 60), "male": ("+m3", 40)}
ESPEAK_AGE = {"child": ("+f5", 90), "kid": ("+f5", 90), "teen": (None, 65),
              "adult": (None, None), "elderly": ("grandpa", 25), "senior": ("grandpa", 25),
              "old": ("grandpa", 25)}
ESPEAK_ELDERLY_FEMALE = "+grandma"
ESPEAK_PACE = {"slow": 125, "normal": 175, "fast": 230}
ESPEAK_EMOTION = {  # pitch shift, rate, amplitude
    "happy": (10, 190, 120), "surprised": (20, 200, 130), "angry": (5, 200, 170),
    "sad": (-15, 140, 70), "fear": (10, 210, 90), "disgust": (-10, 160, 110),
    "neutral": (0, None, None), "sarcastic": (-5, 150, 110), "sincere": (0, None, None),
}


class Espeak(TTS):
    kind = "espeak"
    service = None
    config: EspeakTTS

    def check(self) -> None:
        if shutil.which(self.config.program) is None:
            raise PermanentError(f"{self.config.program} is not installed (Debian: apt-get "
                                 "install espeak-ng)")

    def request(self, script: ScriptLine) -> dict[str, Any]:
        labels = script.labels()
        voice = script.voice or self.config.voice or ESPEAK_LANGUAGES.get(
            script.language.lower(), script.language.lower())
        variant, pitch, rate, amplitude = None, 50, 175, 100
        if labels.get("gender") in ESPEAK_GENDER:
            variant, pitch = ESPEAK_GENDER[labels["gender"]]
        if labels.get("age") in ESPEAK_AGE:
            age_variant, age_pitch = ESPEAK_AGE[labels["age"]]
            if age_variant == "grandpa" and labels.get("gender") == "female":
                age_variant = ESPEAK_ELDERLY_FEMALE
            elif age_variant == "grandpa":
                age_variant = "+grandpa"
            variant = age_variant or variant
            pitch = age_pitch if age_pitch is not None else pitch
            rate = 150 if age_variant and "grand" in age_variant else rate
        for label in ("emotion", "sarcasm"):
            if labels.get(label) in ESPEAK_EMOTION:
                shift, emotion_rate, emotion_amplitude = ESPEAK_EMOTION[labels[label]]
                pitch += shift
                rate = emotion_rate or rate
                amplitude = emotion_amplitude or amplitude
        if labels.get("pace") in ESPEAK_PACE:
            rate = ESPEAK_PACE[labels["pace"]]
        if variant and "+" not in voice:
            voice += variant
        return {"voice": voice, "pitch": max(0, min(99, pitch)), "rate": rate,
                "amplitude": amplitude}

    def speak(self, script: ScriptLine) -> Spoken:
        request = self.request(script)
        with tempfile.TemporaryDirectory(prefix="s2s-arena-espeak-") as tmp:
            output = Path(tmp) / "speech.wav"
            argv = [self.config.program, "-v", request["voice"], "-p", str(request["pitch"]),
                    "-s", str(request["rate"]), "-a", str(request["amplitude"]),
                    "-w", str(output), "--", script.text]
            try:
                done = subprocess.run(argv, capture_output=True, timeout=self.config.timeout_s,
                                      stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                raise TransientError(f"espeak-ng ran past {self.config.timeout_s:g} s") from None
            except OSError as exc:
                raise PermanentError(f"could not start {self.config.program}: {exc}") from exc
            stderr = done.stderr.decode(errors="replace").strip()
            if done.returncode != 0 or not output.is_file() or output.stat().st_size <= 44:
                raise PermanentError(f"espeak-ng failed (exit {done.returncode})"
                                     + (f": {stderr}" if stderr else ""))
            return Spoken(output.read_bytes(), request)


class GeminiSpeech(TTS):
    kind = "gemini"
    config: GeminiTTS

    def check(self) -> None:
        self._key(self.config.api_key_env)

    def request(self, script: ScriptLine) -> dict[str, Any]:
        description = style_description(script)
        prompt = f"Say {description}: {script.text}" if description else script.text
        return {"model": self.config.model, "prompt": prompt,
                "voice": _voice_for(script, self.config.voice, self.config.voices)}

    def speak(self, script: ScriptLine) -> Spoken:
        from google.genai import types

        from app.inference.adapters.gemini import reply_audio, usage_counts
        from app.inference.gemini_client import client_for, gemini_errors

        request = self.request(script)
        client = client_for(self._key(self.config.api_key_env), self.config.base_url,
                            self.config.timeout_s)
        with gemini_errors(timeout_s=self.config.timeout_s):
            response = client.models.generate_content(
                model=self.config.model, contents=request["prompt"],
                config=types.GenerateContentConfig(
                    response_modalities=["AUDIO"],
                    speech_config=types.SpeechConfig(voice_config=types.VoiceConfig(
                        prebuilt_voice_config=types.PrebuiltVoiceConfig(
                            voice_name=request["voice"])))))
        candidate = response.candidates[0] if response.candidates else None
        parts = candidate.content.parts if candidate and candidate.content and \
            candidate.content.parts else []
        blobs = [part.inline_data for part in parts if part.inline_data is not None
                 and part.inline_data.data
                 and (part.inline_data.mime_type or "").lower().startswith("audio/")]
        if not blobs:
            raise PermanentError(f"{self.config.model} answered with no audio")
        audio = reply_audio(blobs)
        data = pcm16_to_wav(audio["audio"], audio["pcm_rate"]) if audio["pcm_rate"] else \
            audio["audio"]
        usage = usage_counts(response.usage_metadata)
        return Spoken(data, request, Usage(usage.get("prompt_token_count", 0),
                                           usage.get("candidates_token_count", 0), 1))


class OpenAISpeech(TTS):
    kind = "openai"
    config: OpenAITTS

    def check(self) -> None:
        self._key(self.config.api_key_env)

    def request(self, script: ScriptLine) -> dict[str, Any]:
        request = {"model": self.config.model, "input": script.text,
                   "voice": _voice_for(script, self.config.voice, self.config.voices),
                   "response_format": "wav"}
        if description := style_description(script):
            request["instructions"] = f"Speak {description}."
        return request

    def speak(self, script: ScriptLine) -> Spoken:
        from app.inference.adapters.openai_chat_audio import NO_KEY, openai_client
        from app.judges.clients import openai_errors

        request = self.request(script)
        client = openai_client(self.config.base_url, self._key(self.config.api_key_env) or NO_KEY,
                         self.config.timeout_s)
        with openai_errors(self.config.base_url, self.config.timeout_s):
            response = client.audio.speech.create(**request)
            data = response.read()
        if not data:
            raise PermanentError(f"{self.config.base_url} answered with no audio")
        return Spoken(data, request, Usage(requests=1))


_TOKEN = re.compile(r"\{(text|text_file|output|voice|style|language|id|emotion|sarcasm|age|"
                    r"gender|pace)\}")


class CommandSpeech(TTS):
    kind = "command"
    service = None
    config: CommandTTS

    def request(self, script: ScriptLine) -> dict[str, Any]:
        return {"command": self._argv(script, {"text_file": "{text_file}",
                                               "output": "{output}"})}

    def _argv(self, script: ScriptLine, files: dict[str, str]) -> list[str]:
        labels = script.labels()
        values = {"text": script.text, "voice": script.voice or "",
                  "style": style_description(script), "language": script.language,
                  "id": script.id, **{name: labels.get(name, "") for name in LABELS}, **files}
        return [_TOKEN.sub(lambda match: values[match.group(1)], arg)
                for arg in self.config.command]

    def speak(self, script: ScriptLine) -> Spoken:
        from app.inference.adapters.command import Command
        from app.inference.configs import CommandAdapter

        runner = Command(CommandAdapter.model_construct(
            kind="command", command=self.config.command, working_dir=self.config.working_dir,
            timeout_s=self.config.timeout_s), environ=self.environ)
        with tempfile.TemporaryDirectory(prefix="s2s-arena-tts-") as tmp:
            workdir = Path(tmp)
            (workdir / "text.txt").write_text(script.text, encoding="utf-8")
            output = workdir / "speech.wav"
            argv = self._argv(script, {"text_file": str(workdir / "text.txt"),
                                       "output": str(output)})
            runner.run(argv, workdir / "stdout.log", workdir / "stderr.log")
            if not output.is_file() or output.stat().st_size == 0:
                raise PermanentError(f"{argv[0]} exited 0 but wrote no audio to {{output}}")
            return Spoken(output.read_bytes(), self.request(script))


ADAPTERS: dict[str, type[TTS]] = {"espeak": Espeak, "gemini": GeminiSpeech,
                                  "openai": OpenAISpeech, "command": CommandSpeech}


def build(config: Any, environ: Mapping[str, str]) -> TTS:
    return ADAPTERS[config.kind](config, environ)

