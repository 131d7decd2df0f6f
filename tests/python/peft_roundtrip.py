"""PEFT interop for LoRA adapter files (weights only; outputs are compared elsewhere).

  peft_roundtrip.py MODEL_DIR [--load ADAPTER_DIR...] [--save OUT_DIR SEED]
  --load: loads each studio-written adapter with PeftModel.from_pretrained on a fresh base model; reports
          {"tensors": {key: sha256_f32}, "r", "lora_alpha", "lora_dropout", "use_rslora", "target_modules", "scaling"}.
  --save: makes a PEFT adapter (r=4, alpha=8, dropout 0.1, all 7 targets, init_lora_weights=False so B != 0),
          save_pretrained()s it to OUT_DIR and reports {"tensors": {key: sha256_f32}, "scaling"} of the in-memory weights.
Prints JSON {"loaded": [...], "saved": {...} | null}.

Keys are PEFT's saved names: base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight, ..."""
import argparse
import hashlib
import json

import numpy as np
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def digest(t: torch.Tensor) -> str:
    return hashlib.sha256(np.ascontiguousarray(t.detach().to(torch.float32).numpy(), dtype="<f4").tobytes()).hexdigest()


def lora_digests(model):
    tensors, scaling = {}, None
    for name, mod in model.named_modules():
        lora_a = getattr(mod, "lora_A", None)
        if lora_a is None or "default" not in lora_a:
            continue
        tensors[f"{name}.lora_A.weight"] = digest(mod.lora_A["default"].weight)
        tensors[f"{name}.lora_B.weight"] = digest(mod.lora_B["default"].weight)
        scaling = mod.scaling["default"]
    return tensors, scaling


def base(model_dir):
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)


parser = argparse.ArgumentParser()
parser.add_argument("model_dir")
parser.add_argument("--load", nargs="*", default=[], metavar="ADAPTER_DIR")
parser.add_argument("--save", nargs=2, metavar=("OUT_DIR", "SEED"))
args = parser.parse_args()

result = {"loaded": [], "saved": None}
for adapter_dir in args.load:
    model = PeftModel.from_pretrained(base(args.model_dir), adapter_dir)
    cfg = model.peft_config["default"]
    tensors, scaling = lora_digests(model)
    result["loaded"].append(
        {
            "tensors": tensors,
            "r": cfg.r,
            "lora_alpha": cfg.lora_alpha,
            "lora_dropout": cfg.lora_dropout,
            "use_rslora": cfg.use_rslora,
            "target_modules": sorted(cfg.target_modules),
            "scaling": scaling,
        }
    )
if args.save:
    out_dir, seed = args.save[0], int(args.save[1])
    torch.manual_seed(seed)
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.1, target_modules=TARGETS, init_lora_weights=False, task_type="CAUSAL_LM")
    model = get_peft_model(base(args.model_dir), cfg)
    model.save_pretrained(out_dir)
    tensors, scaling = lora_digests(model)
    result["saved"] = {"tensors": tensors, "scaling": scaling}
print(json.dumps(result))
