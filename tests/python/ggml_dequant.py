"""Reference dequantization with the PyPI `gguf` package (gguf.quants.dequantize, the numpy port of ggml's
dequantize_row_*), for LoRA Studio's GGML block readers.

usage: ggml_dequant.py blocks IN_DIR        IN_DIR/<TYPE>.bin (raw blocks, TYPE as gguf's GGMLQuantizationType: Q4_K…) → IN_DIR/<TYPE>.f32 (little-endian fp32)
       ggml_dequant.py file FILE.gguf       sha256 of every tensor's dequantized fp32 bytes, as JSON {name: hex}
"""
import hashlib
import json
import os
import sys

import numpy as np
from gguf import GGUFReader, GGMLQuantizationType, GGML_QUANT_SIZES
from gguf.quants import dequantize


def main() -> None:
    mode, target = sys.argv[1], sys.argv[2]
    if mode == "blocks":
        for name in sorted(os.listdir(target)):
            if not name.endswith(".bin"):
                continue
            qtype = GGMLQuantizationType[name[:-4]]
            block_size, type_size = GGML_QUANT_SIZES[qtype]
            raw = np.fromfile(os.path.join(target, name), dtype=np.uint8)
            rows = raw.reshape(-1, type_size)  # one block per row: any whole number of blocks
            out = dequantize(rows, qtype).astype(np.float32, copy=False)
            out.tofile(os.path.join(target, name[:-4] + ".f32"))
        return
    reader = GGUFReader(target)
    digests = {}
    for t in reader.tensors:
        values = dequantize(t.data, t.tensor_type).astype("<f4", copy=False)
        digests[t.name] = hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()
    json.dump(digests, sys.stdout)


if __name__ == "__main__":
    main()
