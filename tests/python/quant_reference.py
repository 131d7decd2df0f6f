"""Reference quantizers for test/quant: the PyPI `gguf` package's numpy ports of ggml's reference quantizers
(Q8_0, Q4_0, Q4_1), numpy's float16 cast, and independent numpy/torch versions of NF4 (bitsandbytes semantics),
per-channel INT8 and AWQ-style asymmetric INT4 g128 (fake-quantization, as AWQ's pseudo_quantize_tensor).

usage: quant_reference.py IN.f32 ROWS COLS OUT_DIR FORMAT[,FORMAT...]
writes OUT_DIR/<format>.bin (packed bytes, ggml formats and f16 only) and OUT_DIR/<format>.deq.f32 (dequantized).
"""
import os
import sys

import numpy as np
import torch
from gguf import GGMLQuantizationType
from gguf.quants import dequantize, quantize

NF4 = np.array([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
    0.7229568362236023, 1.0], dtype=np.float32)


def nf4_fake(w: np.ndarray) -> np.ndarray:
    flat = w.reshape(-1)
    n = flat.size
    pad = (-n) % 64
    blocks = np.concatenate([flat, np.zeros(pad, np.float32)]).reshape(-1, 64)
    absmax = np.abs(blocks).max(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        inv = np.where(absmax == 0, np.float32(0), np.float32(1) / absmax).astype(np.float32)
    x = (blocks * inv).astype(np.float32)
    # nearest code; on an exact tie argmin picks the lower index, as bitsandbytes' `x > midpoint` tree does
    dist = np.abs(x[..., None].astype(np.float64) - NF4.astype(np.float64))
    idx = dist.argmin(axis=-1)
    return (NF4[idx] * absmax).astype(np.float32).reshape(-1)[:n].reshape(w.shape)


def int8_fake(w: torch.Tensor) -> torch.Tensor:
    s = w.abs().amax(dim=1, keepdim=True) / 127
    q = torch.where(s == 0, torch.zeros_like(w), torch.round(w / torch.where(s == 0, torch.ones_like(s), s)))
    return q.clamp(-127, 127) * s


def int4_fake(w: torch.Tensor, group: int = 128) -> torch.Tensor:
    rows, cols = w.shape
    assert cols % group == 0, "reference covers whole groups only"
    g = w.reshape(-1, group)
    max_val = g.amax(dim=1, keepdim=True)
    min_val = g.amin(dim=1, keepdim=True)
    scales = ((max_val - min_val) / 15).clamp(min=1e-5)
    scales = scales.half().float()  # stored in fp16
    zeros = (-torch.round(min_val / scales)).clamp(0, 15)
    q = (torch.round(g / scales) + zeros).clamp(0, 15)
    return ((q - zeros) * scales).reshape(rows, cols)


def main() -> None:
    src, rows, cols, out_dir, fmts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5].split(",")
    w = np.fromfile(src, dtype=np.float32).reshape(rows, cols)
    os.makedirs(out_dir, exist_ok=True)
    ggml = {"q8_0": GGMLQuantizationType.Q8_0, "q4_0": GGMLQuantizationType.Q4_0, "q4_1": GGMLQuantizationType.Q4_1}
    for f in fmts:
        if f in ggml:
            packed = quantize(w, ggml[f])
            packed.tofile(os.path.join(out_dir, f + ".bin"))
            deq = dequantize(packed, ggml[f]).astype(np.float32)
        elif f == "f16":
            h = w.astype(np.float16)
            h.tofile(os.path.join(out_dir, f + ".bin"))
            deq = h.astype(np.float32)
        elif f == "nf4":
            deq = nf4_fake(w)
        elif f == "int8":
            deq = int8_fake(torch.from_numpy(w.copy())).numpy()
        elif f == "int4-g128":
            deq = int4_fake(torch.from_numpy(w.copy())).numpy()
        else:
            raise SystemExit(f"unknown format {f}")
        deq.astype(np.float32).tofile(os.path.join(out_dir, f + ".deq.f32"))


if __name__ == "__main__":
    main()
