"""Greedy generation with transformers (+ PEFT), the reference for the studio's playground.

  generate_reference.py MODEL_DIR ADAPTER_DIR|- IDS_JSON MAX_NEW_TOKENS STOP_IDS_JSON
Prints JSON {"ids": [new token ids], "text": decoded with skip_special_tokens=True}."""
import json
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

model_dir, adapter_dir, ids_json, max_new, stop_json = sys.argv[1:6]
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
if adapter_dir != "-":
    model = PeftModel.from_pretrained(model, adapter_dir)
model.eval()
ids = torch.tensor([json.loads(ids_json)], dtype=torch.long)
stop = json.loads(stop_json)
with torch.no_grad():
    out = model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        do_sample=False,
        max_new_tokens=int(max_new),
        eos_token_id=stop,
        pad_token_id=stop[0],
        repetition_penalty=1.0,
    )
new_ids = out[0, ids.shape[1]:].tolist()
tok = AutoTokenizer.from_pretrained(model_dir)
print(json.dumps({"ids": new_ids, "text": tok.decode(new_ids, skip_special_tokens=True)}))
