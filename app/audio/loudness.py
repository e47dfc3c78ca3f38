"""Loudness (ITU-R BS.1770, measured with pyloudnorm) and the gain that brings a clip to a target.

One measure for everything that levels clips: what a judge hears (app/judges/audio.py) and what
a person hears (app/audio/serving.py). A clip shorter than one 400 ms gating block, or one whose
blocks all fall under the -70 LUFS absolute gate, has no integrated loudness; it is measured by
RMS instead (for a 1 kHz tone the two measures agree). Digital silence (RMS under -80 dBFS) gets
no gain at all, and the gain is held to [-40, +30] dB so a near-silent clip is not blown up into
noise.
"""

from __future__ import annotations

import math

import numpy as np
import pyloudnorm

SILENCE_DBFS = -80.0  # RMS below this is silence: no gain at all
MAX_GAIN_DB = 30.0
MIN_GAIN_DB = -40.0
GATE_BLOCK_S = 0.4  # BS.1770's gating block: a shorter clip has no integrated loudness
ABSOLUTE_GATE_LUFS = -70.0


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level in dBFS; -inf for an empty or all-zero clip."""
    if len(samples) == 0:
        return float("-inf")
    rms = math.sqrt(float(np.mean(np.square(samples, dtype=np.float64))))
    if not math.isfinite(rms) or rms <= 0:
        return float("-inf")
    return 20 * math.log10(rms)


def loudness(samples: np.ndarray, rate: int) -> float:
    """Integrated loudness in LUFS of mono float samples (RMS in dBFS where BS.1770 gives
    none); -inf for silence."""
    level = rms_dbfs(samples)
    if not math.isfinite(level):
        return level
    measured = float("-inf")
    if len(samples) >= GATE_BLOCK_S * rate:
        measured = float(pyloudnorm.Meter(rate).integrated_loudness(
            np.asarray(samples, dtype=np.float64)))
    if not math.isfinite(measured) or measured < ABSOLUTE_GATE_LUFS:
        return level
    return measured


def gain_db(samples: np.ndarray, rate: int, target_lufs: float) -> float:
    """The gain that brings `samples` to `target_lufs`, within [MIN_GAIN_DB, MAX_GAIN_DB]; 0
    for silence. Always finite."""
    level = loudness(samples, rate)
    if not math.isfinite(level) or rms_dbfs(samples) < SILENCE_DBFS:
        return 0.0
    return min(max(target_lufs - level, MIN_GAIN_DB), MAX_GAIN_DB)
