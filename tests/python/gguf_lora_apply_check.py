"""What llama.cpp computes with a GGUF LoRA (W + alpha/r · B·A on the base GGUF's tensors) against the GGUF of the
merged model, tensor by tensor, from the three files alone with the PyPI `gguf` reader.

usage: gguf_lora_apply_check.py BASE.gguf LORA.gguf MERGED.gguf R
Prints JSON: {"checked": n, "worst_excess": x, "max_delta": d} where worst_excess is the largest
|base + s·BA − merged| / (tolerance of two f16 roundings); ≤ 1 means they agree.
"""
import json
import sys

import numpy as np
from gguf import GGUFReader


def tensors(path):
    r = GGUFReader(path)
    return r, {t.name: np.asarray(t.data, dtype=np.float32).reshape([int(d) for d in reversed(t.shape.tolist())]) for t in r.tensors}


def main() -> None:
    base_path, lora_path, merged_path, r = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    _, base = tensors(base_path)
    lora_reader, lora = tensors(lora_path)
    _, merged = tensors(merged_path)
    alpha = float(lora_reader.fields["adapter.lora.alpha"].contents())
    scale = alpha / r
    checked, worst, max_delta = 0, 0.0, 0.0
    for name in sorted(lora):
        if not name.endswith(".lora_a"):
            continue
        weight = name[: -len(".lora_a")]
        a, b = lora[name], lora[weight + ".lora_b"]
        delta = scale * (b.astype(np.float64) @ a.astype(np.float64))
        applied = base[weight].astype(np.float64) + delta
        want = merged[weight].astype(np.float64)
        # base and merged are each rounded to f16 once: half an ulp of each, at their magnitudes.
        tol = (np.abs(base[weight]) + np.abs(want)) * 2.0 ** -11 + 1e-7
        worst = max(worst, float(np.max(np.abs(applied - want) / tol)))
        max_delta = max(max_delta, float(np.max(np.abs(delta))))
        checked += 1
    print(json.dumps({"checked": checked, "worst_excess": worst, "max_delta": max_delta}))


main()
