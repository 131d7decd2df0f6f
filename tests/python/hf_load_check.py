"""Loads model folders with transformers. Usage: hf_load_check.py MODEL_DIR...
Prints JSON {dir: {"missing": [...], "unexpected": [...], "mismatched": [...], "architecture": class name}}."""
import json
import sys

from transformers import AutoModelForCausalLM
from transformers.utils import logging

logging.set_verbosity_error()
out = {}
for d in sys.argv[1:]:
    model, info = AutoModelForCausalLM.from_pretrained(d, output_loading_info=True)
    out[d] = {
        "missing": sorted(info.get("missing_keys", [])),
        "unexpected": sorted(info.get("unexpected_keys", [])),
        "mismatched": [str(x) for x in info.get("mismatched_keys", [])],
        "architecture": type(model).__name__,
    }
print(json.dumps(out))
