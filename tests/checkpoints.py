"""Honest little checkpoints for the dedup tests: bf16 safetensors written by hand.

Base weights are normal with a per-tensor spread (as initialised layers are); a fine-tune
multiplies each value by (1 + noise) in float32 and rounds to bf16 again, so most bf16
values keep their bits and the rest move by an ulp or so; frozen tensors are left
bit-identical. bf16 is float32's top half (round to nearest even), kept as uint16, since
numpy has no bf16 and the `safetensors` numpy API cannot write one: the header is
written by hand in safetensors' format (8-byte length, JSON, data).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np


def to_bf16(values: np.ndarray) -> np.ndarray:
    u = values.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def base_weights(n_tensors: int, elements: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n_tensors):
        std = 0.02 * (1 + i % 4)
        out[f"layers.{i}.weight"] = rng.normal(0, std, size=elements).astype(np.float32)
    return out


def fine_tune(
    weights: dict[str, np.ndarray], changed: list[str], noise: float, seed: int
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = dict(weights)
    for name in changed:
        w = weights[name]
        out[name] = (w * (1 + rng.normal(0, noise, size=w.shape))).astype(np.float32)
    return out


def write_safetensors(
    path: Path, weights: dict[str, np.ndarray], metadata: dict[str, str] | None = None
) -> Path:
    header: dict[str, object] = {}
    blobs = []
    at = 0
    for name, w in weights.items():
        data = to_bf16(w).tobytes()
        header[name] = {
            "dtype": "BF16",
            "shape": list(w.shape),
            "data_offsets": [at, at + len(data)],
        }
        blobs.append(data)
        at += len(data)
    if metadata:
        header["__metadata__"] = metadata
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)  # safetensors pads the header to 8 bytes
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)
    return path
