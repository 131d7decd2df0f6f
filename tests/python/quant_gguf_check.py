"""Reads a GGUF file written by LoRA Studio with the PyPI `gguf` package's GGUFReader and checks every tensor against
the Hugging Face weights it came from: llama.cpp's convert_hf_to_gguf.py permute of q/k rows (LlamaModel.permute),
then gguf.quants.quantize (or a numpy float16 cast), must give exactly the stored bytes.

usage: quant_gguf_check.py FILE.gguf WEIGHTS_DIR
WEIGHTS_DIR holds manifest.json ({"n_head", "n_head_kv", "tensors": {hf_name: [rows, cols] or [n]}}) and
<hf_name>.f32 raw little-endian files. Prints JSON: {"kv": {...}, "tensors": [...]}.
"""
import json
import os
import re
import sys

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType
from gguf.quants import quantize


def permute(weights: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    # verbatim from llama.cpp convert_hf_to_gguf.py, LlamaModel.permute
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape))


BLOCK = {
    "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}


def hf_name(name: str) -> str | None:
    if name == "token_embd.weight":
        return "model.embed_tokens.weight"
    if name == "output_norm.weight":
        return "model.norm.weight"
    if name == "output.weight":
        return "lm_head.weight"
    m = re.fullmatch(r"blk\.(\d+)\.(\w+)\.weight", name)
    if m and m.group(2) in BLOCK:
        return f"model.layers.{m.group(1)}.{BLOCK[m.group(2)]}.weight"
    return None


def field_value(field):
    v = field.contents()
    if field.types and field.types[0] == GGUFValueType.ARRAY:
        return {"array": field.types[-1].name, "len": len(v), "head": [x if isinstance(x, str) else float(x) for x in v[:8]]}
    if isinstance(v, (np.floating, float)):
        return {"type": field.types[0].name, "value": float(v)}
    if isinstance(v, (np.integer, int)) and not isinstance(v, bool):
        return {"type": field.types[0].name, "value": int(v)}
    return {"type": field.types[0].name, "value": v}


def main() -> None:
    path, wdir = sys.argv[1], sys.argv[2]
    manifest = json.load(open(os.path.join(wdir, "manifest.json")))
    reader = GGUFReader(path)
    kv = {k: field_value(f) for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    out = []
    for t in reader.tensors:
        entry = {"name": t.name, "type": t.tensor_type.name, "shape": [int(x) for x in t.shape], "n_bytes": int(t.n_bytes)}
        src = hf_name(t.name)
        if src is not None and src in manifest["tensors"]:
            w = np.fromfile(os.path.join(wdir, src + ".f32"), dtype=np.float32).reshape(manifest["tensors"][src])
            if t.name.endswith("attn_q.weight"):
                w = permute(w, manifest["n_head"], manifest["n_head"])
            elif t.name.endswith("attn_k.weight"):
                w = permute(w, manifest["n_head"], manifest["n_head_kv"])
            if t.tensor_type == GGMLQuantizationType.F32:
                ref = w.astype(np.float32)
            elif t.tensor_type == GGMLQuantizationType.F16:
                ref = w.astype(np.float16)
            else:
                ref = quantize(w, t.tensor_type)
            entry["source"] = src
            entry["bytes_match"] = bool(np.array_equal(np.frombuffer(ref.tobytes(), np.uint8), np.frombuffer(t.data.tobytes(), np.uint8)))
        out.append(entry)
    json.dump({"kv": kv, "tensors": out}, sys.stdout)


if __name__ == "__main__":
    main()
