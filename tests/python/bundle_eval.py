"""Validation loss of a PEFT adapter as transformers + PEFT compute it, for the exported-bundle test.

argv: model_dir adapter_dir data.jsonl batch_size
The data file holds {"input_ids", "labels"} rows (a bundle's data/validation.jsonl); rows are taken in order,
batch_size at a time, right-padded with label -100. Prints {"loss": mean CE over every target token, "tokens": n}.
Float32 on the CPU; the adapter is loaded with PeftModel.from_pretrained, as any user of the folder would.
"""
import json
import sys

import torch
import torch.nn.functional as F
from peft import PeftModel
from transformers import AutoModelForCausalLM


def main():
    model_dir, adapter_dir, data, batch_size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    rows = [json.loads(l) for l in open(data) if l.strip()]
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(model, adapter_dir)
    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(rows), batch_size):
            chunk = rows[i : i + batch_size]
            T = max(len(r["input_ids"]) for r in chunk)
            ids = torch.zeros(len(chunk), T, dtype=torch.long)
            labels = torch.full((len(chunk), T), -100, dtype=torch.long)
            for b, r in enumerate(chunk):
                ids[b, : len(r["input_ids"])] = torch.tensor(r["input_ids"])
                labels[b, : len(r["labels"])] = torch.tensor(r["labels"])
            logits = model(input_ids=ids).logits.float()
            v = logits.shape[-1]
            total += F.cross_entropy(logits[:, :-1].reshape(-1, v), labels[:, 1:].reshape(-1), ignore_index=-100, reduction="sum").item()
            tokens += int((labels[:, 1:] != -100).sum())
    print(json.dumps({"loss": total / tokens, "tokens": tokens}))


if __name__ == "__main__":
    main()
