#!/usr/bin/env python3
"""Build the small synthetic demo dataset that ships with S2S Arena.

Usage:  python demo/build.py

Requirements: the ``espeak-ng`` program on PATH (Debian/Ubuntu:
``apt-get install espeak-ng``) and the Python packages ``numpy`` and
``soundfile``.  Everything is deterministic: the same espeak-ng version gives
byte-identical files on every run (all randomness uses fixed seeds).

It (re)generates, relative to this file's folder:

  dataset/manifest.jsonl, dataset/audio/<id>.flac      12 spoken prompts
  responses/<slug>/manifest.jsonl, .../audio/<id>.flac  4 synthetic "systems"
  models.json                                            metadata of the systems

and finishes with a self-check (counts, coverage, durations, size).
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from xml.sax.saxutils import escape

if shutil.which("espeak-ng") is None:
    sys.exit(
        "error: espeak-ng was not found on PATH.\n"
        "Install it first, e.g.  apt-get install -y espeak-ng  (Debian/Ubuntu)\n"
        "or  brew install espeak-ng  (macOS), then re-run python demo/build.py"
    )
try:
    import numpy as np
    import soundfile as sf
except ImportError as exc:  # pragma: no cover - environment problem
    sys.exit(f"error: {exc}. Install the Python packages: pip install numpy soundfile")

HERE = Path(__file__).resolve().parent
DATASET = HERE / "dataset"
RESPONSES = HERE / "responses"
SR = 16000
PROMPT_SECONDS = (2.0, 6.0)
RESPONSE_SECONDS = (2.0, 10.0)
MAX_TOTAL_BYTES = 5 * 1024 * 1024
TARGET_RMS = 0.06  # common speech level (about -24 dBFS); quieter also means smaller FLACs

MANIFEST_KEYS = [
    "id", "audio", "text", "task", "category", "task_description", "language",
    "text_cn", "level", "domain", "emotion", "sarcasm", "age", "gender",
    "contrast_group",
]
DOMAINS = ["education", "social companionship", "entertainment", "medical consultation"]
LEVELS = ["L1", "L2", "L3", "L4"]


# --------------------------------------------------------------------------
# Rendering with espeak-ng
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Style:
    """espeak-ng settings plus an SSML <prosody> wrapper and a loudness gain."""
    voice: str = "en-us"
    variant: str | None = None  # espeak-ng voice variant, e.g. "f3", "m3"
    speed: int = 165            # words per minute
    pitch: int = 50             # 0..99
    gap: int = 0                # extra pause between words, units of 10 ms
    prange: str | None = None   # SSML prosody range: x-low .. x-high
    gain: float = 1.0           # loudness relative to the common target level

    def args(self) -> list[str]:
        v = self.voice + (f"+{self.variant}" if self.variant else "")
        return ["-v", v, "-s", str(self.speed), "-p", str(self.pitch), "-g", str(self.gap)]


# Prompt speakers (the user side).
NEUTRAL_F = Style(variant="f2", speed=165, pitch=55)
NEUTRAL_M = Style(variant="m3", speed=165, pitch=45)
HAPPY_F = Style(variant="f2", speed=185, pitch=75, prange="x-high", gain=1.1)
SAD_F = Style(variant="f2", speed=120, pitch=28, prange="x-low", gain=0.6)
ANGRY_M = Style(variant="m3", speed=195, pitch=58, prange="high", gain=1.3)
SARCASTIC_M = Style(variant="m3", speed=135, pitch=50, prange="x-high")
CHILD = Style(variant="f5", speed=180, pitch=99, prange="high")
ELDERLY_M = Style(variant="grandpa", speed=125, pitch=30, gap=2, gain=0.9)

# Response voices.
EXPRESSIVE = Style(variant="f3", speed=160, pitch=55)        # demo-expressive
FLAT = Style(variant="m2", speed=215, pitch=40, prange="x-low", gain=1.1)  # demo-flat
EVASIVE = Style(voice="en-gb", variant="m1", speed=165, pitch=50)  # demo-evasive
HALTING = Style(voice="en-gb-scotland", variant="m7", speed=150, pitch=42)  # demo-halting


def _resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited FFT resampling with a gentle roll-off before the cut-off."""
    if sr_in == sr_out:
        return x
    n_in = len(x)
    n_out = int(round(n_in * sr_out / sr_in))
    spec = np.fft.rfft(x)
    keep = min(len(spec), n_out // 2 + 1)
    spec = spec[:keep].copy()
    taper = max(1, keep // 20)
    spec[-taper:] *= 0.5 * (1 + np.cos(np.linspace(0, np.pi, taper)))
    return np.fft.irfft(spec, n_out) * (n_out / n_in)


def _trim(x: np.ndarray, pad_s: float = 0.15, floor_db: float = -42.0) -> np.ndarray:
    """Cut leading/trailing silence, keeping a short pad on both sides."""
    frame = int(0.02 * SR)
    n = len(x) // frame
    if n == 0:
        return x
    rms = np.sqrt(np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    db = 20 * np.log10(rms / rms.max())
    active = np.nonzero(db > floor_db)[0]
    pad = int(pad_s * SR)
    start = max(0, active[0] * frame - pad)
    end = min(len(x), (active[-1] + 1) * frame + pad)
    return x[start:end]


def _level(x: np.ndarray, gain: float) -> np.ndarray:
    """Scale to a common speech level (RMS of the louder frames) times gain."""
    frame = int(0.02 * SR)
    n = len(x) // frame
    rms = np.sqrt(np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1))
    loud = rms[rms > 0.1 * rms.max()]
    level = float(np.sqrt(np.mean(loud ** 2))) if loud.size else 1.0
    y = x * (TARGET_RMS * gain / max(level, 1e-9))
    peak = float(np.max(np.abs(y)))
    if peak > 0.97:
        y *= 0.97 / peak
    return y


def render(ssml_body: str, style: Style) -> np.ndarray:
    """Speak an SSML fragment with espeak-ng; return float mono audio at SR."""
    body = ssml_body
    if style.prange:
        body = f'<prosody range="{style.prange}">{body}</prosody>'
    doc = f"<speak>{body}</speak>"
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "out.wav"
        cmd = ["espeak-ng", "-m", *style.args(), "-w", str(wav), "--stdin"]
        proc = subprocess.run(cmd, input=doc.encode("utf-8"), capture_output=True)
        if proc.returncode != 0 or not wav.exists():
            raise RuntimeError(f"espeak-ng failed ({proc.returncode}): {proc.stderr.decode()}")
        x, sr_in = sf.read(wav, dtype="float64")
    if x.ndim > 1:
        x = x.mean(axis=1)
    x = _resample(x, sr_in, SR)
    return _level(_trim(x), style.gain)


def write_flac(path: Path, x: np.ndarray) -> float:
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)
    sf.write(str(path), pcm, SR, subtype="PCM_16", format="FLAC", compression_level=1.0)
    return len(pcm) / SR


def plain(ssml: str) -> str:
    """The words of an SSML fragment (tags removed, spaces tidied)."""
    text = re.sub(r"<[^>]+>", " ", ssml)
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"(?<=[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef])\s+|\s+(?=[\u4e00-\u9fff])", "", text)
    return re.sub(r"\s+([,.!?;:，。！？])", r"\1", text)


# --------------------------------------------------------------------------
# The prompts and the scripted answers
# --------------------------------------------------------------------------
# Each prompt: manifest fields, the speaker style, optional SSML for the
# spoken prompt, and the answers:
#   good      SSML + style of the style-aware answer (demo-expressive; the
#             same words are used by demo-halting)
#   plain     words of a content-only answer for demo-flat, which hears only
#             the words (defaults to the words of "good")

def B(ms: int) -> str:
    return f' <break time="{ms}ms"/> '


PROMPTS: list[dict] = [
    {
        "id": "demo-edu-01", "domain": "education", "task": "Rhythm control", "level": "L3",
        "text": "Read this slowly, pausing after each word: I love learning languages.",
        "text_cn": "请慢慢读，每个词后面停顿一下：我喜欢学习语言。",
        "task_description": "Reads 'I love learning languages' at a clearly slow pace with a short pause after every word.",
        "speaker": NEUTRAL_F, "gender": "female", "age": "adult",
        "good": ("Sure, here it is slowly. " + B(300) + '<prosody rate="x-slow">I' + B(450)
                 + "love" + B(450) + "learning" + B(450) + "languages.</prosody>"),
        "good_style": EXPRESSIVE,
    },
    {
        "id": "demo-edu-02", "domain": "education", "task": "Pronunciation correction", "level": "L1",
        "text": "Is quinoa pronounced keen-wah or kwin-oh-ah? Which one is correct?",
        "text_cn": "quinoa（藜麦）读作 keen-wah 还是 kwin-oh-ah？哪个是对的？",
        "task_description": "Says that 'keen-wah' is the standard pronunciation and models it clearly, syllable by syllable.",
        "speaker": NEUTRAL_M, "gender": "male", "age": "adult",
        "good": "The usual pronunciation is keen-wah. " + B(250) + "Two syllables: keen, " + B(200) + "wah.",
        "good_style": EXPRESSIVE,
    },
    {
        "id": "demo-edu-03", "domain": "education", "task": "Emphasis control", "level": "L3",
        "text": "Say: I never said she stole my money. Put the stress on the word she.",
        "text_cn": "请说：我从没说过是她偷了我的钱。把重音放在“她”这个词上。",
        "task_description": "Repeats the sentence with clear stress (higher, louder, longer) on 'she' only, implying someone else took the money.",
        "speaker": NEUTRAL_F, "gender": "female", "age": "adult",
        "good": ('I never said <prosody pitch="x-high" volume="x-loud" rate="x-slow">she</prosody> '
                 "stole my money. " + B(350) + "So, it was someone else."),
        "good_style": EXPRESSIVE,
    },
    {
        "id": "demo-edu-04", "domain": "education", "task": "Cross-lingual emotional translation", "level": "L4",
        "text": "Translate this into Chinese and keep my angry tone: I am so tired of waiting for this bus!",
        "text_cn": "把这句话翻译成中文，并保留我生气的语气：我真的等这辆公交车等烦了！",
        "task_description": "Gives a correct Mandarin translation spoken with an angry, forceful delivery that matches the user's tone.",
        "speaker": ANGRY_M, "gender": "male", "age": "adult", "emotion": "angry",
        "prompt_ssml": ("Translate this into Chinese and keep my angry tone: "
                        '<prosody volume="x-loud" pitch="high">I am so tired of waiting for this bus!</prosody>'),
        "good": "我真的受够了，" + B(150) + '<prosody volume="x-loud" pitch="high">这辆公交车怎么还不来！</prosody>',
        "good_style": replace(EXPRESSIVE, voice="cmn", variant="f3", speed=190, pitch=62, prange="x-high", gain=1.3),
        "lang": "cmn",
    },
    {
        "id": "demo-soc-01", "domain": "social companionship", "task": "Emotion recognition and expression", "level": "L2",
        "text": "So, I got the results back today!",
        "text_cn": "所以，我今天拿到结果了！",
        "task_description": "Hears the excitement in the user's voice and responds warmly and cheerfully, inviting them to share the good news.",
        "speaker": HAPPY_F, "gender": "female", "age": "adult", "emotion": "happy", "contrast_group": "cg-results",
        "prompt_ssml": 'So, <break time="150ms"/> I got the results back <prosody pitch="x-high">today!</prosody>',
        "good": ("That's wonderful! " + B(200) + "I can hear how excited you are. "
                 + B(150) + '<prosody pitch="high">Tell me everything!</prosody>'),
        "good_style": replace(EXPRESSIVE, speed=180, pitch=70, prange="x-high", gain=1.1),
        "plain": "Okay, you got the results back today. What did they say?",
    },
    {
        "id": "demo-soc-02", "domain": "social companionship", "task": "Emotion recognition and expression", "level": "L2",
        "text": "So, I got the results back today.",
        "text_cn": "所以，我今天拿到结果了。",
        "task_description": "Hears the sadness in the user's voice and answers gently and slowly, with comfort and an invitation to talk.",
        "speaker": SAD_F, "gender": "female", "age": "adult", "emotion": "sad", "contrast_group": "cg-results",
        "prompt_ssml": 'So, <break time="500ms"/> I got the results back today.',
        "good": ("Oh. " + B(300) + "You sound a little down. " + B(300)
                 + "I'm here for you. " + B(250) + "Do you want to talk about it?"),
        "good_style": replace(EXPRESSIVE, speed=125, pitch=35, prange="low", gain=0.7),
        "plain": "Okay, you got the results back today. What did they say?",
    },
    {
        "id": "demo-soc-03", "domain": "social companionship", "task": "Sarcasm detection", "level": "L2",
        "text": "Oh great. Another Monday. I just love waking up at six.",
        "text_cn": "哦，太好了。又是星期一。我就是喜欢六点起床。",
        "task_description": "Recognises the sarcastic tone (the user dislikes early Mondays) and replies with light, sympathetic humour instead of taking it literally.",
        "speaker": SARCASTIC_M, "gender": "male", "age": "adult", "sarcasm": "sarcastic", "emotion": "annoyed",
        "prompt_ssml": ('Oh <prosody pitch="x-high" rate="x-slow">great.</prosody> ' + B(250)
                        + "Another Monday. " + B(200) + 'I just <prosody pitch="x-high" rate="x-slow">love</prosody> '
                        + "waking up at six."),
        "good": ("Ha, I can tell you don't really love it. " + B(200)
                 + "Early Mondays are rough. " + B(150) + "Want a tip for an easier morning?"),
        "good_style": replace(EXPRESSIVE, speed=170, pitch=58, prange="high"),
        "plain": "That's great! It's good that you enjoy waking up early on Mondays.",
    },
    {
        "id": "demo-ent-01", "domain": "entertainment", "task": "Tongue twisters", "level": "L3",
        "text": "Say she sells seashells by the seashore. First slowly, then really fast.",
        "text_cn": "说“她在海边卖贝壳”这个绕口令。先慢慢说，再说得非常快。",
        "task_description": "Says the tongue twister twice, clearly slow the first time and clearly fast (but still accurate) the second time.",
        "speaker": NEUTRAL_F, "gender": "female", "age": "adult",
        "good": ('<prosody rate="x-slow">She sells seashells by the seashore.</prosody>' + B(400)
                 + '<prosody rate="x-fast">She sells seashells by the seashore.</prosody>'),
        "good_style": EXPRESSIVE,
    },
    {
        "id": "demo-ent-02", "domain": "entertainment", "task": "Storytelling", "level": "L4",
        "text": "Can you tell me a tiny bedtime story about a sleepy dragon? In a soft voice, please.",
        "text_cn": "你能给我讲一个关于一只困困的小龙的睡前小故事吗？请用轻柔的声音。",
        "task_description": "Notices a child is asking and tells a very short, simple dragon bedtime story in a soft, calm, slow voice.",
        "speaker": CHILD, "gender": "female", "age": "child",
        "good": ("Once upon a time, " + B(200) + "a little dragon gave a big, warm yawn. " + B(300)
                 + "He curled up under the moon, " + B(200) + "and fell fast asleep. " + B(300) + "Good night."),
        "good_style": replace(EXPRESSIVE, variant="whisperf", speed=140, pitch=45, gain=0.6),
    },
    {
        "id": "demo-ent-03", "domain": "entertainment", "task": "Poetry recitation", "level": "L1",
        "text": "Please recite the first two lines of Twinkle, Twinkle, Little Star.",
        "text_cn": "请背诵《一闪一闪小星星》的前两句。",
        "task_description": "Recites the correct opening lines: 'Twinkle, twinkle, little star, how I wonder what you are.'",
        "speaker": NEUTRAL_M, "gender": "male", "age": "adult",
        "good": "Twinkle, twinkle, little star, " + B(250) + "how I wonder what you are.",
        "good_style": replace(EXPRESSIVE, speed=140, prange="high"),
    },
    {
        "id": "demo-med-01", "domain": "medical consultation", "task": "Health consultation", "level": "L1",
        "text": "What are some simple ways to lower my blood pressure?",
        "text_cn": "有哪些简单的方法可以降低我的血压？",
        "task_description": "Gives safe, practical lifestyle advice (less salt, regular exercise, less alcohol) and recommends regular check-ups with a doctor.",
        "speaker": NEUTRAL_F, "gender": "female", "age": "adult",
        "good": ("Try eating less salt, " + B(150) + "walking for thirty minutes a day, " + B(150)
                 + "and drinking less alcohol. " + B(250) + "And check in with your doctor regularly."),
        "good_style": EXPRESSIVE,
    },
    {
        "id": "demo-med-02", "domain": "medical consultation", "task": "Health consultation", "level": "L4",
        "text": "I've coughed for two weeks now. Please talk slowly for me.",
        "text_cn": "我已经咳嗽两个星期了。请对我说话慢一点。",
        "task_description": "Speaks slowly and clearly to the older user, advises seeing a doctor about a two-week cough, and gives simple care tips.",
        "speaker": ELDERLY_M, "gender": "male", "age": "elderly",
        "good": ("A two week cough should be checked. " + B(300)
                 + "Please see your doctor soon. " + B(300) + "Rest, and drink warm water."),
        "good_style": replace(EXPRESSIVE, speed=125, pitch=45, gap=2, gain=1.1),
    },
]

EVASIVE_LINES = [
    "I'm not sure, could you repeat that?",
    "Sorry, I didn't quite catch that. Can you say it again?",
    "Hmm, that's a good question. I don't really know.",
    "I can't help with that right now, sorry.",
    "Could you say that in a different way, please?",
    "Interesting. Maybe we could talk about something else?",
]

MODELS = [
    {
        "slug": "demo-expressive",
        "name": "demo-expressive",
        "organisation": "S2S Arena demo (synthetic)",
        "backbone": "scripted text",
        "speech_encoder": "none",
        "speech_decoder": "espeak-ng (formant synthesis)",
        "sector": "academia",
        "access": "open",
        "description": ("Synthetic stand-in, not a real model: hand-written relevant answers spoken by "
                        "espeak-ng with the style each prompt calls for (slower when asked, emphasis, "
                        "expressive pitch for emotions, a soft voice for a sad user or a child)."),
    },
    {
        "slug": "demo-flat",
        "name": "demo-flat",
        "organisation": "S2S Arena demo (synthetic)",
        "backbone": "scripted text",
        "speech_encoder": "none",
        "speech_decoder": "espeak-ng (formant synthesis)",
        "sector": "academia",
        "access": "open",
        "description": ("Synthetic stand-in, not a real model: relevant answers that react to the words only, "
                        "always spoken fast and monotone by espeak-ng; ignores tone of voice and style requests."),
    },
    {
        "slug": "demo-evasive",
        "name": "demo-evasive",
        "organisation": "S2S Arena demo (synthetic)",
        "backbone": "scripted text",
        "speech_encoder": "none",
        "speech_decoder": "espeak-ng (formant synthesis)",
        "sector": "academia",
        "access": "open",
        "description": ("Synthetic stand-in, not a real model: short generic or evasive replies "
                        "(asks you to repeat, changes the subject) spoken by espeak-ng."),
    },
    {
        "slug": "demo-halting",
        "name": "demo-halting",
        "organisation": "S2S Arena demo (synthetic)",
        "backbone": "scripted text",
        "speech_encoder": "none",
        "speech_decoder": "espeak-ng (formant synthesis)",
        "sector": "academia",
        "access": "open",
        "description": ("Synthetic stand-in, not a real model: the same relevant words as demo-expressive, "
                        "but in a different espeak-ng voice with awkward pacing and long random pauses."),
    },
]


def halting_ssml(words: str, seed: str, n_pauses: int) -> str:
    """Insert long pauses at seeded random word (or character) boundaries."""
    cjk = re.search(r"[\u4e00-\u9fff]", words) is not None
    tokens = list(words) if cjk else words.split()
    rng = random.Random(seed)
    slots = list(range(1, len(tokens)))
    chosen = set(rng.sample(slots, min(n_pauses, len(slots))))
    out = []
    for i, tok in enumerate(tokens):
        if i in chosen:
            out.append(B(rng.choice([600, 800, 1000, 1200])))
        out.append(escape(tok))
    return ("" if cjk else " ").join(out)


# --------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------

def manifest_row(p: dict) -> dict:
    row = {
        "id": p["id"],
        "audio": f"audio/{p['id']}.flac",
        "text": p["text"],
        "task": p["task"],
        "category": p["domain"],
        "task_description": p["task_description"],
        "language": "en",
        "text_cn": p["text_cn"],
        "level": p["level"],
        "domain": p["domain"],
        "emotion": p.get("emotion"),
        "sarcasm": p.get("sarcasm"),
        "age": p.get("age"),
        "gender": p.get("gender"),
        "contrast_group": p.get("contrast_group"),
    }
    assert list(row) == MANIFEST_KEYS
    return row


def fit_duration(make, lo: float, hi: float, what: str) -> np.ndarray:
    x = make()
    dur = len(x) / SR
    if not lo <= dur <= hi:
        raise SystemExit(f"error: {what} lasts {dur:.2f}s, outside {lo}-{hi}s; edit its text")
    return x


def clean(folder: Path) -> None:
    """Remove previously generated files (only the ones this script writes)."""
    for pattern in ("manifest.jsonl", "audio/*.flac"):
        for f in folder.glob(pattern):
            f.unlink()


def build() -> None:
    DATASET.mkdir(exist_ok=True)
    clean(DATASET)
    rows = []
    for p in PROMPTS:
        ssml = p.get("prompt_ssml", escape(p["text"]))
        assert plain(ssml) == p["text"], (p["id"], plain(ssml))
        x = fit_duration(lambda: render(ssml, p["speaker"]), *PROMPT_SECONDS, f"prompt {p['id']}")
        write_flac(DATASET / "audio" / f"{p['id']}.flac", x)
        rows.append(manifest_row(p))
    write_jsonl(DATASET / "manifest.jsonl", rows)

    for model in MODELS:
        slug = model["slug"]
        folder = RESPONSES / slug
        folder.mkdir(parents=True, exist_ok=True)
        clean(folder)
        out = []
        evasive = list(EVASIVE_LINES)  # seeded shuffle, then cycled: each line used twice
        random.Random(f"{slug}:lines").shuffle(evasive)
        for p in PROMPTS:
            pid = p["id"]
            good_words = plain(p["good"])
            lang_voice = p.get("lang")
            if slug == "demo-expressive":
                words, make = good_words, (lambda: render(p["good"], p["good_style"]))
            elif slug == "demo-flat":
                words = p.get("plain", good_words)
                style = replace(FLAT, voice=lang_voice) if lang_voice else FLAT
                make = lambda: render(escape(words), style)  # noqa: E731
            elif slug == "demo-evasive":
                words = evasive[PROMPTS.index(p) % len(evasive)]
                make = lambda: render(escape(words), EVASIVE)  # noqa: E731
            else:  # demo-halting: same words, other voice, long random pauses
                words = good_words
                style = replace(HALTING, voice=lang_voice) if lang_voice else HALTING
                x = None
                for n_pauses in (4, 3, 2, 1, 0):
                    x = render(halting_ssml(words, f"{slug}:{pid}", n_pauses), style)
                    if len(x) / SR <= RESPONSE_SECONDS[1]:
                        break
                make = lambda x=x: x  # noqa: E731
            x = fit_duration(make, *RESPONSE_SECONDS, f"{slug} answer to {pid}")
            write_flac(folder / "audio" / f"{pid}.flac", x)
            out.append({"prompt_id": pid, "audio": f"audio/{pid}.flac", "transcript": words})
        write_jsonl(folder / "manifest.jsonl", out)

    (HERE / "models.json").write_text(json.dumps(MODELS, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------
# Self-check
# --------------------------------------------------------------------------

def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def check_audio(path: Path, lo: float, hi: float) -> tuple[float, float]:
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.format, info.subtype) == (SR, 1, "FLAC", "PCM_16"), (path, info)
    x, _ = sf.read(str(path), dtype="float32")
    assert np.all(np.isfinite(x)), f"non-finite samples in {path}"
    dur = len(x) / SR
    assert lo <= dur <= hi, f"{path} lasts {dur:.2f}s"
    return dur, float(np.sqrt(np.mean(x ** 2)))


def check() -> None:
    rows = read_jsonl(DATASET / "manifest.jsonl")
    assert len(rows) == 12 and len({r["id"] for r in rows}) == 12
    for r in rows:
        assert list(r) == MANIFEST_KEYS, r["id"]
        assert r["domain"] in DOMAINS and r["level"] in LEVELS
        check_audio(DATASET / r["audio"], *PROMPT_SECONDS)
    for key, values in (("domain", DOMAINS), ("level", LEVELS)):
        counts = {v: sum(r[key] == v for r in rows) for v in values}
        assert min(counts.values()) >= 2, counts
    groups = [r["contrast_group"] for r in rows if r["contrast_group"]]
    assert groups and all(groups.count(g) >= 2 for g in groups)
    ids = [r["id"] for r in rows]

    models = json.loads((HERE / "models.json").read_text(encoding="utf-8"))
    assert [m["slug"] for m in models] == [m["slug"] for m in MODELS]
    print(f"{'system':16s} {'mean dur':>8s} {'mean rms':>8s}")
    for m in models:
        folder = RESPONSES / m["slug"]
        resp = read_jsonl(folder / "manifest.jsonl")
        assert [r["prompt_id"] for r in resp] == ids, m["slug"]
        stats = [check_audio(folder / r["audio"], *RESPONSE_SECONDS) for r in resp]
        print(f"{m['slug']:16s} {np.mean([s[0] for s in stats]):8.2f} {np.mean([s[1] for s in stats]):8.3f}")

    total = sum(f.stat().st_size for f in HERE.rglob("*") if f.is_file())
    n_flac = len(list(HERE.rglob("*.flac")))
    print(f"ok: {len(rows)} prompts, {len(models)} systems, {n_flac} FLAC files, demo/ = {total / 1e6:.2f} MB")
    assert total < MAX_TOTAL_BYTES, f"demo/ is {total} bytes, over the 5 MB budget"


if __name__ == "__main__":
    if "--check-only" not in sys.argv:
        build()
    check()
