"""What making a clip's served form costs (app/audio/serving.py), and what serving it then costs.

A battle's three clips are made when it is served, in the request that serves it, the first time
they are heard; later battles with the same clips read the stored files. This measures, for real
speech (the CMU ARCTIC clips in tests/data, repeated to 5, 30 and 120 s, the longest answer the
arena accepts), the wall and CPU time of:

1. making the served form from the canonical FLAC (decode, trim, BS.1770 level and limiter,
   FLAC encode), with the storage write;
2. reading a prepared clip (the audio route's work besides its two small queries).

Each figure is the median of --repeats runs. Run: python -m benchmarks.served_audio
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from app.audio import serving
from app.audio.codec import canonicalise
from app.audio.storage import LocalStorage
from app.config import AudioSettings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "served_audio.json"
SPEECH = [ROOT / "tests" / "data" / "cmu-arctic" / name
          for name in ("awb_arctic_a0007.wav", "slt_arctic_a0009.wav")]


def speech(seconds: float) -> bytes:
    """A WAV of real speech about `seconds` long, at 16 kHz as recorded."""
    parts, rate = [], 16_000
    while sum(len(p) for p in parts) < seconds * rate:
        samples, rate = sf.read(SPEECH[len(parts) % 2], dtype="float32")
        parts.append(samples * (0.2 if len(parts) % 3 else 0.9))
    path = Path(tempfile.mkstemp(suffix=".wav")[1])
    sf.write(path, np.concatenate(parts)[: int(seconds * rate)], rate, subtype="PCM_16")
    data = path.read_bytes()
    path.unlink()
    return data


def timed(work) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(seconds: float, repeats: int, root: Path) -> dict:
    audio = AudioSettings(max_seconds=max(120.0, seconds))
    canonical = canonicalise(speech(seconds), audio).data
    storage = LocalStorage(root)
    source = storage.put(canonical)
    makes, reads = [], []
    for _ in range(repeats):
        storage.delete(serving.served_key(source))
        makes.append(timed(lambda: serving.prepare(storage, source)))
        reads.append(timed(lambda: serving.read(storage, source)))
    served = serving.read(storage, source)
    return {
        "clip_s": seconds,
        "canonical_bytes": len(canonical),
        "served_bytes": len(served),
        "make_wall_ms": round(1000 * statistics.median(w for w, _ in makes), 1),
        "make_cpu_ms": round(1000 * statistics.median(c for _, c in makes), 1),
        "read_wall_ms": round(1000 * statistics.median(w for w, _ in reads), 3),
        "read_cpu_ms": round(1000 * statistics.median(c for _, c in reads), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[5.0, 30.0, 120.0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        rows = [measure(seconds, args.repeats, Path(root)) for seconds in args.seconds]
    result = {"cpus": os.cpu_count(), "repeats": args.repeats, "clips": rows}
    print(json.dumps(result, indent=2))
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
