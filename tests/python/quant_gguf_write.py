"""Writes a small GGUF file with the PyPI `gguf` package's GGUFWriter, for LoRA Studio's reader to read.

usage: quant_gguf_write.py OUT.gguf
Prints JSON describing what was written: keys with their GGUF value type and value, tensors with type, shape
(innermost first, as stored) and values (dequantized with gguf.quants).
"""
import json
import sys

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter
from gguf.quants import dequantize, quantize


def main() -> None:
    path = sys.argv[1]
    w = GGUFWriter(path, "llama")
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -7)
    w.add_float32("test.f32", 0.15625)
    w.add_float64("test.f64", 1e-300)
    w.add_uint64("test.u64", 2**40 + 3)
    w.add_int64("test.i64", -5)
    w.add_bool("test.bool", True)
    w.add_string("test.str", "héllo ✓")
    w.add_uint8("test.u8", 200)
    w.add_int16("test.i16", -300)
    w.add_array("test.strs", ["a", "", "ünïcode"])
    w.add_array("test.ints", [1, -2, 3])
    w.add_array("test.floats", [0.5, -1.25])
    rng = np.random.default_rng(0)
    t32 = np.arange(15, dtype=np.float32).reshape(3, 5) - 7
    t16 = (rng.standard_normal((2, 32)) * 3).astype(np.float16)
    q = rng.standard_normal((2, 64)).astype(np.float32)
    tensors = {
        "a.f32": (t32, None, None),
        "b.f16": (t16, None, None),
        "c.q8_0": (quantize(q, GGMLQuantizationType.Q8_0), None, GGMLQuantizationType.Q8_0),
        "d.q4_0": (quantize(q, GGMLQuantizationType.Q4_0), None, GGMLQuantizationType.Q4_0),
        "e.q4_1": (quantize(q, GGMLQuantizationType.Q4_1), None, GGMLQuantizationType.Q4_1),
    }
    for name, (arr, shape, dtype) in tensors.items():
        w.add_tensor(name, arr, raw_shape=shape, raw_dtype=dtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    r = GGUFReader(path)
    kv = {}
    for k, f in r.fields.items():
        if k.startswith("GGUF."):
            continue
        v = f.contents()
        t = f.types[0]
        if t == GGUFValueType.ARRAY:
            kv[k] = {"type": "array", "itemType": f.types[-1].name.lower(), "values": [x if isinstance(x, str) else float(x) for x in v]}
        elif t in (GGUFValueType.UINT64, GGUFValueType.INT64):
            kv[k] = {"type": t.name.lower(), "value": str(int(v))}
        elif t == GGUFValueType.STRING:
            kv[k] = {"type": "string", "value": v}
        elif t == GGUFValueType.BOOL:
            kv[k] = {"type": "bool", "value": bool(v)}
        else:
            kv[k] = {"type": t.name.lower(), "value": float(v)}
    out = []
    for t in r.tensors:
        vals = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
        out.append({"name": t.name, "type": t.tensor_type.name, "shape": [int(x) for x in t.shape], "values": [float(x) for x in vals]})
    json.dump({"kv": kv, "tensors": out}, sys.stdout)


if __name__ == "__main__":
    main()
