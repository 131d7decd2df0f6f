"""Independent reference for packed weights: the PyPI `gguf` package's numpy dequantize of raw GGML blocks.
usage: gguf_dequant.py TYPE ROWS COLS IN.bin OUT.f32   (TYPE: Q8_0, Q4_0, Q4_1, Q4_K, Q6_K, ...)"""
import sys

import numpy as np
from gguf import GGMLQuantizationType, quants

kind, rows, cols, src, dst = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
qtype = GGMLQuantizationType[kind]
raw = np.fromfile(src, dtype=np.uint8)
block, size = quants.GGML_QUANT_SIZES[qtype]
raw = raw.reshape(rows, (cols // block) * size)
out = quants.dequantize(raw, qtype).astype(np.float32)
assert out.shape == (rows, cols), out.shape
out.tofile(dst)
