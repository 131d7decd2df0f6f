"""Rewrites a GGUF with every quantized tensor dequantized to F16 (F32 tensors stay F32), keeping every metadata key.

usage: gguf_to_f16.py IN.gguf OUT.gguf
For the decode comparison (bench/vs-llama-cpp.ts): llama.cpp and the studio then read the same f16 weights, so the
figure compares the matrix-vector kernels, not Q4_1 dot products against f16 ones. The PyPI `gguf` package does the
reading, the dequantization (ggml's reference) and the writing.
"""
import sys

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter
from gguf.quants import dequantize


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    reader = GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    writer = GGUFWriter(dst, arch)
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue  # the writer emits the header and the architecture itself
        vtype = field.types[0]
        value = field.contents()
        if key == "general.file_type":
            value = 1  # MOSTLY_F16
        if vtype == GGUFValueType.ARRAY:
            writer.add_key_value(key, value, vtype, sub_type=field.types[-1])
        else:
            writer.add_key_value(key, value, vtype)
    for t in reader.tensors:
        # GGUF shapes are innermost-first; numpy wants outermost-first.
        shape = tuple(int(d) for d in reversed(t.shape.tolist()))
        if t.tensor_type == GGMLQuantizationType.F32:
            data = np.asarray(t.data, dtype=np.float32).reshape(shape)
        else:
            data = dequantize(t.data, t.tensor_type).reshape(shape).astype(np.float16)
        writer.add_tensor(t.name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main()
