"""f16/bf16 reference conversions. Usage: f16_reference.py IN_F32 OUT_DIR
IN_F32: raw little-endian float32 values. Writes OUT_DIR/f16.bin (numpy astype(float16) bit patterns, u16 LE),
OUT_DIR/bf16.bin (torch .to(bfloat16) bit patterns, u16 LE) and OUT_DIR/f16_decode.bin (every f16 bit pattern
0..65535 converted by numpy to float32, LE)."""
import os
import sys

import numpy as np
import torch

src, out_dir = sys.argv[1], sys.argv[2]
x = np.fromfile(src, dtype="<f4")
x.astype(np.float16).view("<u2").tofile(os.path.join(out_dir, "f16.bin"))
torch.from_numpy(x.copy()).to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").view("<u2").tofile(os.path.join(out_dir, "bf16.bin"))
np.arange(65536, dtype="<u2").view(np.float16).astype("<f4").tofile(os.path.join(out_dir, "f16_decode.bin"))
print("ok")
