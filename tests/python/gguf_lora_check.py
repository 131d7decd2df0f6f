"""Checks a GGUF LoRA file written by LoRA Studio against the PEFT adapter it came from, with the PyPI `gguf` reader
and llama.cpp's conventions (convert_lora_to_gguf.py): tensor names blk.{i}.<name>.weight.lora_a/.lora_b, shapes
A [r, in] and B [out, r] (numpy order), lora_b of q/k permuted like LlamaModel.permute for the llama architecture.

usage: gguf_lora_check.py FILE.gguf ADAPTER_DIR N_HEAD N_HEAD_KV
Prints JSON: {"kv": {key: value}, "tensors": n, "missing": [...], "extra": [...], "max_abs_diff": x, "shapes_ok": bool}
"""
import json
import re
import sys

import numpy as np
from gguf import GGUFReader
from safetensors.numpy import load_file


def permute(weights: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    # verbatim from llama.cpp convert_hf_to_gguf.py, LlamaModel.permute
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape))


NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
         "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}


def main() -> None:
    path, adapter_dir, n_head, n_head_kv = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    reader = GGUFReader(path)
    kv = {}
    for key, field in reader.fields.items():
        if key.startswith("general.") or key.startswith("adapter."):
            v = field.contents()
            kv[key] = float(v) if isinstance(v, (np.floating, float)) else (int(v) if isinstance(v, (np.integer, int)) else v)
    arch = kv.get("general.architecture")
    stored = {t.name: t for t in reader.tensors}
    peft = load_file(f"{adapter_dir}/adapter_model.safetensors")
    expected = {}
    for key, w in peft.items():
        m = re.fullmatch(r"base_model\.model\.model\.layers\.(\d+)\.(self_attn\.\w+|mlp\.\w+)\.lora_([AB])\.weight", key)
        if not m:
            continue
        layer, module, which = int(m.group(1)), m.group(2), m.group(3)
        w = w.astype(np.float32)
        if which == "B" and arch == "llama" and module == "self_attn.q_proj":
            w = permute(w, n_head, n_head)
        if which == "B" and arch == "llama" and module == "self_attn.k_proj":
            w = permute(w, n_head, n_head_kv)
        expected[f"blk.{layer}.{NAMES[module]}.weight.lora_{which.lower()}"] = w
    diff = 0.0
    shapes_ok = True
    for name, want in expected.items():
        t = stored.get(name)
        if t is None:
            continue
        got = np.asarray(t.data, dtype=np.float32).reshape([int(d) for d in reversed(t.shape.tolist())])
        if got.shape != want.shape:
            shapes_ok = False
            continue
        diff = max(diff, float(np.max(np.abs(got - want))) if want.size else 0.0)
    print(json.dumps({
        "kv": kv,
        "tensors": len(stored),
        "missing": sorted(set(expected) - set(stored)),
        "extra": sorted(set(stored) - set(expected)),
        "max_abs_diff": diff,
        "shapes_ok": shapes_ok,
    }))


main()
