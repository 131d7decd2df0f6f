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
  weights_sha256   optional true: also return {"weights_sha256": {name: sha256 of the float32 bytes}} of every base
                   weight as loaded (tied lm_head left out), to prove both sides train the same numbers
  dtype            optional "float64": the model, the adapter, the backward AND the steps transformers keeps in float32
                   whatever the model's dtype (RMSNorm, attention softmax, RoPE tables, the loss) in float64 — an exact
                   reference that tells a float32 implementation's rounding from a real difference (llama family)
Prints {"results": [{"loss", "tokens", "rope_inv_freq"}, ...]}. Everything in float32 (or float64) on the CPU, eager attention.
"""
import hashlib
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


def exact_float64():
    """Patches transformers' llama modules so no step falls back to float32 in a float64 model; returns the undo."""
    from torch import nn
    from transformers.models.llama import modeling_llama as ml

    saved = (ml.LlamaRMSNorm.forward, ml.LlamaRotaryEmbedding.forward, ml.eager_attention_forward)

    def rms_forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon))

    def rope_forward(self, x, position_ids):
        if self.rope_type != "default":
            raise SystemExit(f"the float64 reference computes default RoPE only, not {self.rope_type}")
        d = self.inv_freq.shape[0] * 2
        inv = 1.0 / (self.config.rope_parameters["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
        freqs = position_ids[..., None].to(torch.float64) * inv
        emb = torch.cat((freqs, freqs), dim=-1)
        return (emb.cos() * self.attention_scaling).to(x.dtype), (emb.sin() * self.attention_scaling).to(x.dtype)

    def eager(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
        k = ml.repeat_kv(key, module.num_key_value_groups)
        v = ml.repeat_kv(value, module.num_key_value_groups)
        w = torch.matmul(query, k.transpose(2, 3)) * scaling
        if attention_mask is not None:
            w = w + attention_mask
        w = nn.functional.softmax(w, dim=-1, dtype=query.dtype)
        return torch.matmul(w, v).transpose(1, 2).contiguous(), w

    ml.LlamaRMSNorm.forward = rms_forward
    ml.LlamaRotaryEmbedding.forward = rope_forward
    ml.eager_attention_forward = eager

    def undo():
        ml.LlamaRMSNorm.forward, ml.LlamaRotaryEmbedding.forward, ml.eager_attention_forward = saved

    return undo


def run_case(case):
    if case.get("dtype") != "float64":
        return run_model(case, exact=False)
    undo = exact_float64()
    try:
        return run_model(case, exact=True)
    finally:
        undo()


def run_model(case, exact):
    extra = {"gguf_file": case["gguf_file"]} if case.get("gguf_file") else {}
    model = AutoModelForCausalLM.from_pretrained(case["model_dir"], dtype=torch.float32, attn_implementation="eager", **extra)
    if exact and model.config.model_type != "llama":
        raise SystemExit(f"the float64 reference patches the llama modules; this model is {model.config.model_type}")
    digests = None
    if case.get("weights_sha256"):
        tied = model.config.tie_word_embeddings
        digests = {
            k: hashlib.sha256(v.detach().to(torch.float32).contiguous().numpy().tobytes()).hexdigest()
            for k, v in model.state_dict().items()
            if not (tied and k == "lm_head.weight")
        }
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
    if exact:
        peft_model = peft_model.double()
    peft_model.eval()
    ids, labels, mask = read_batch(case["data"])
    if exact:
        # transformers' loss upcasts the logits to float32; this is its mean over the non-ignored shifted labels.
        out = peft_model(input_ids=ids, attention_mask=mask)
        V = out.logits.shape[-1]
        out.loss = torch.nn.functional.cross_entropy(out.logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=-100)
    else:
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
    result = {
        "loss": out.loss.item(),
        "tokens": int((labels[:, 1:] != -100).sum()),
        "rope_inv_freq": rotary.inv_freq.tolist(),
    }
    if digests is not None:
        result["weights_sha256"] = digests
    return result


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    torch.use_deterministic_algorithms(True)
    json.dump({"results": [run_case(c) for c in spec["cases"]]}, sys.stdout)


if __name__ == "__main__":
    main()
