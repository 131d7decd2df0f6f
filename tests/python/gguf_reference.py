"""transformers' view of a GGUF file (from_pretrained(dir, gguf_file=…)), the reference for the studio's GGUF loader.

  gguf_reference.py config FILE.gguf                  → JSON of the config fields the studio reads
  gguf_reference.py tokens FILE.gguf TEXTS.json        → JSON {"with": [[ids]…], "without": [[ids]…], "decoded": [...]}
                                                        (add_special_tokens True / False; decode of the first list)
  gguf_reference.py chat FILE.gguf MESSAGES.json       → JSON {"text": apply_chat_template(tokenize=False,
                                                        add_generation_prompt=True), "ids": tokenized as the template says}
  gguf_reference.py generate FILE.gguf IDS_JSON N STOP_JSON [ADAPTER_DIR]
                                                      → JSON {"ids": greedy new ids} (fp32, eager attention)
"""
import json
import os
import sys

import torch


def split(path):
    return os.path.dirname(os.path.abspath(path)), os.path.basename(path)


def main() -> None:
    mode, path = sys.argv[1], sys.argv[2]
    folder, name = split(path)
    if mode == "config":
        from transformers import AutoConfig

        c = AutoConfig.from_pretrained(folder, gguf_file=name)
        rope = getattr(c, "rope_parameters", None) or {}
        json.dump(
            {
                "model_type": c.model_type,
                "vocab_size": c.vocab_size,
                "hidden_size": c.hidden_size,
                "intermediate_size": c.intermediate_size,
                "num_hidden_layers": c.num_hidden_layers,
                "num_attention_heads": c.num_attention_heads,
                "num_key_value_heads": c.num_key_value_heads,
                "head_dim": getattr(c, "head_dim", None),
                "rms_norm_eps": c.rms_norm_eps,
                "rope_theta": rope.get("rope_theta", getattr(c, "rope_theta", None)),
                "rope_type": rope.get("rope_type", "default"),
                "max_position_embeddings": c.max_position_embeddings,
                "tie_word_embeddings": c.tie_word_embeddings,
                "bos_token_id": c.bos_token_id,
                "eos_token_id": c.eos_token_id,
                "pad_token_id": c.pad_token_id,
            },
            sys.stdout,
        )
        return
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    if mode == "tokens":
        with open(sys.argv[3]) as f:
            texts = json.load(f)
        with_special = [tok(t, add_special_tokens=True)["input_ids"] for t in texts]
        without = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
        decoded = [tok.decode(ids) for ids in without]
        json.dump({"with": with_special, "without": without, "decoded": decoded}, sys.stdout)
        return
    if mode == "chat":
        with open(sys.argv[3]) as f:
            messages = json.load(f)
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        json.dump({"text": text, "ids": tok(text, add_special_tokens=False)["input_ids"]}, sys.stdout)
        return
    if mode == "generate":
        from transformers import AutoModelForCausalLM

        ids_json, max_new, stop_json = sys.argv[3], int(sys.argv[4]), json.loads(sys.argv[5])
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32, attn_implementation="eager")
        if len(sys.argv) > 6:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, sys.argv[6])
        model.eval()
        ids = torch.tensor([json.loads(ids_json)], dtype=torch.long)
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=max_new,
                                 eos_token_id=stop_json, pad_token_id=stop_json[0], repetition_penalty=1.0)
        json.dump({"ids": out[0, ids.shape[1]:].tolist()}, sys.stdout)
        return
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
