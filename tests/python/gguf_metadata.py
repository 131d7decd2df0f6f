"""Dumps the tokenizer.* and general.* keys of GGUF files as the PyPI `gguf` package's GGUFReader reads them.

usage: gguf_metadata.py FILE.gguf [FILE.gguf ...]
Prints JSON: one object per file, key -> value (arrays as lists; long arrays as {"len", "sha256"} of their JSON).
"""
import hashlib
import json
import sys

from gguf import GGUFReader


def dump(path: str) -> dict:
    out = {}
    for key, field in GGUFReader(path).fields.items():
        if not key.startswith(("tokenizer.", "general.")):
            continue
        value = field.contents()
        if isinstance(value, list) and len(value) > 16:
            text = json.dumps(value, ensure_ascii=False)
            value = {"len": len(value), "sha256": hashlib.sha256(text.encode()).hexdigest()}
        out[key] = value
    return out


def main() -> None:
    print(json.dumps([dump(p) for p in sys.argv[1:]]))


if __name__ == "__main__":
    main()
