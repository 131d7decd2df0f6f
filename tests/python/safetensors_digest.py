"""Reads safetensors files with the reference library and prints, per tensor, dtype, shape and the SHA-256 of its
values as little-endian float32 (F32/F16/F64 via safetensors.numpy, BF16 via safetensors.torch, since numpy has no
bfloat16). Usage: safetensors_digest.py FILE... → JSON {file: {tensor: {dtype, shape, sha256_f32}}}."""
import hashlib
import json
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file as load_numpy


def digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, dtype="<f4").tobytes()).hexdigest()


out = {}
for path in sys.argv[1:]:
    with safe_open(path, framework="pt") as f:
        keys = list(f.keys())
        bf16 = {k for k in keys if str(f.get_slice(k).get_dtype()) == "BF16"}
    entries = {}
    if len(bf16) < len(keys):
        for k, v in load_numpy(path).items():
            entries[k] = {"dtype": str(v.dtype), "shape": list(v.shape), "sha256_f32": digest(v.astype(np.float32))}
    if bf16:
        import torch
        from safetensors.torch import load_file as load_torch

        for k, v in load_torch(path).items():
            if k in bf16:
                entries[k] = {"dtype": "bfloat16", "shape": list(v.shape), "sha256_f32": digest(v.to(torch.float32).numpy())}
    out[path] = entries
print(json.dumps(out))
