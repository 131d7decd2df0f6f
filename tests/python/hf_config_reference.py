"""What transformers derives from config.json dicts. Usage: hf_config_reference.py CONFIGS_JSON
CONFIGS_JSON: a JSON list of config dicts. Prints a JSON list with, per config, the values the model code uses
(read from a model built on the meta device, so biases and norms are what the modules really have), or
{"error": message} when transformers refuses the config."""
import json
import sys

import torch
from transformers import AutoModelForCausalLM
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

with open(sys.argv[1], encoding="utf-8") as f:
    configs = json.load(f)

out = []
for d in configs:
    try:
        cfg = CONFIG_MAPPING[d["model_type"]].from_dict(dict(d))
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(cfg)
        layer = model.model.layers[0]
        attn, mlp = layer.self_attn, layer.mlp
        rope = dict(cfg.rope_parameters)
        sliding = None
        if d["model_type"] == "mistral":
            sliding = cfg.sliding_window
        elif d["model_type"] in ("qwen2", "qwen3"):
            types = set(cfg.layer_types)
            if types == {"sliding_attention"} and cfg.sliding_window is not None:
                sliding = cfg.sliding_window
            elif "sliding_attention" in types and cfg.sliding_window is not None:
                sliding = "mixed"
        eos = cfg.eos_token_id
        out.append(
            {
                "architecture": type(model).__name__,
                "vocab_size": cfg.vocab_size,
                "hidden_size": cfg.hidden_size,
                "intermediate_size": cfg.intermediate_size,
                "num_layers": cfg.num_hidden_layers,
                "num_heads": cfg.num_attention_heads,
                "num_kv_heads": cfg.num_key_value_heads,
                "head_dim": attn.head_dim,
                "q_out": attn.q_proj.out_features,
                "k_out": attn.k_proj.out_features,
                "rms_norm_eps": cfg.rms_norm_eps,
                "rope_theta": rope["rope_theta"],
                "rope_type": rope.get("rope_type"),
                "rope_factor": rope.get("factor"),
                "rope_low_freq_factor": rope.get("low_freq_factor"),
                "rope_high_freq_factor": rope.get("high_freq_factor"),
                "rope_original_max_position_embeddings": rope.get("original_max_position_embeddings"),
                "max_position_embeddings": cfg.max_position_embeddings,
                "tie_word_embeddings": bool(cfg.tie_word_embeddings),
                "q_bias": attn.q_proj.bias is not None,
                "k_bias": attn.k_proj.bias is not None,
                "v_bias": attn.v_proj.bias is not None,
                "o_bias": attn.o_proj.bias is not None,
                "mlp_bias": mlp.gate_proj.bias is not None,
                "qk_norm": hasattr(attn, "q_norm"),
                "sliding_window": sliding,
                "bos_token_id": cfg.bos_token_id,
                "eos_token_id": eos,
                "pad_token_id": cfg.pad_token_id,
                "num_parameters": sum(p.numel() for p in model.parameters()),
            }
        )
    except Exception as e:  # noqa: BLE001 - the test wants transformers' refusal as data
        out.append({"error": f"{type(e).__name__}: {e}"})
print(json.dumps(out))
