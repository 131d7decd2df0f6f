"""Reference loss, LoRA gradients and logits from Hugging Face transformers + PEFT, for the studio's parity tests.

argv[1]: JSON spec {"cases": [case, ...]}; each case:
  model_dir        a Hugging Face model folder (float32 weights), or the folder of a GGUF file given as
  gguf_file        (optional) a GGUF file in model_dir, loaded (dequantized) with from_pretrained(gguf_file=…)
  data             JSONL, one {"input_ids": [...], "labels": [...]} per line (labels optional, -100 = ignored);
                   the whole file is one batch, right-padded with pad id 0, label -100 and attention_mask 0
  adapter_dir      load this adapter with PeftModel.from_pretrained (a studio-written one), or
  make_adapter     {"r", "alpha", "targets", "rslora", "seed", "out_dir"}: create one with LoraConfig(init_lora_weights=
                   False) so B is random and A's gradients are nonzero, and save_pretrained it to out_dir
  grads_out        safetensors file for dL/dθ of every LoRA tensor, under adapter_model.safetensors keys
  logits_out       optional safetensors file with the logits ([B, T, V], float32)
Prints {"results": [{"loss", "tokens", "rope_inv_freq"}, ...]}. Everything in float32 on the CPU, eager attention.
"""
import json
import sys

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM


def read_batch(path):
    rows = []
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                rows.append((r["input_ids"], r.get("labels", r["input_ids"])))
    T = max(len(ids) for ids, _ in rows)
    ids = torch.zeros(len(rows), T, dtype=torch.long)
    labels = torch.full((len(rows), T), -100, dtype=torch.long)
    mask = torch.zeros(len(rows), T, dtype=torch.long)
    for b, (i, l) in enumerate(rows):
        ids[b, : len(i)] = torch.tensor(i)
        labels[b, : len(l)] = torch.tensor(l)
        mask[b, : len(i)] = 1
    return ids, labels, mask


def peft_key(name):
    # PEFT parameter names carry the adapter name ("lora_A.default.weight"); the saved file does not.
    return name.replace(".lora_A.default.", ".lora_A.").replace(".lora_B.default.", ".lora_B.")


def run_case(case):
    extra = {"gguf_file": case["gguf_file"]} if case.get("gguf_file") else {}
    model = AutoModelForCausalLM.from_pretrained(case["model_dir"], dtype=torch.float32, attn_implementation="eager", **extra)
    if "make_adapter" in case:
        m = case["make_adapter"]
        torch.manual_seed(m["seed"])
        cfg = LoraConfig(
            r=m["r"],
            lora_alpha=m["alpha"],
            target_modules=m["targets"],
            lora_dropout=0.0,
            use_rslora=m.get("rslora", False),
            init_lora_weights=False,
            task_type="CAUSAL_LM",
        )
        peft_model = get_peft_model(model, cfg)
        peft_model.save_pretrained(m["out_dir"])
    else:
        peft_model = PeftModel.from_pretrained(model, case["adapter_dir"], is_trainable=True)
    peft_model.eval()
    ids, labels, mask = read_batch(case["data"])
    out = peft_model(input_ids=ids, attention_mask=mask, labels=labels)
    out.loss.backward()
    grads = {}
    for name, p in peft_model.named_parameters():
        if "lora_" in name:
            if p.grad is None:
                raise SystemExit(f"no gradient for {name}")
            grads[peft_key(name)] = p.grad.detach().contiguous()
    save_file(grads, case["grads_out"], metadata={"format": "pt"})
    if case.get("logits_out"):
        save_file({"logits": out.logits.detach().float().contiguous()}, case["logits_out"], metadata={"format": "pt"})
    rotary = peft_model.base_model.model.model.rotary_emb
    return {
        "loss": out.loss.item(),
        "tokens": int((labels[:, 1:] != -100).sum()),
        "rope_inv_freq": rotary.inv_freq.tolist(),
    }


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    torch.use_deterministic_algorithms(True)
    json.dump({"results": [run_case(c) for c in spec["cases"]]}, sys.stdout)


if __name__ == "__main__":
    main()
