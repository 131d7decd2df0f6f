"""Reference chat rendering for test/data: transformers' apply_chat_template on real tokenizer files.

usage: data_chat_template.py CASES.json
CASES.json: {"tokenizer_dir": DIR, "cases": [{"messages": [...], "add_generation_prompt": bool,
             "chat_template": str | null, "mask_template": str | null}]}
prints JSON: [{"text": str, "ids": [int], "assistant_masks": [int] | null, "error": str | null}]
  text: apply_chat_template(messages, tokenize=False) with the case's template (the model's when null)
  ids: the tokenizer's ids for text with add_special_tokens=False (what apply_chat_template(tokenize=True) gives)
  assistant_masks: return_assistant_tokens_mask=True rendered with mask_template, a copy of the template with
                   {% generation %} around what is trained on; transformers marks every token overlapping it
  error: the message when the template raised (raise_exception)
"""
import json
import shutil
import sys
import tempfile

from transformers import AutoTokenizer


def main() -> None:
    spec = json.load(open(sys.argv[1], encoding="utf-8"))
    tmp = tempfile.mkdtemp()
    try:
        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(f"{spec['tokenizer_dir']}/{name}", tmp)
        tok = AutoTokenizer.from_pretrained(tmp)
    finally:
        shutil.rmtree(tmp)
    out = []
    for case in spec["cases"]:
        kwargs = {"add_generation_prompt": case.get("add_generation_prompt", False)}
        if case.get("chat_template"):
            kwargs["chat_template"] = case["chat_template"]
        try:
            text = tok.apply_chat_template(case["messages"], tokenize=False, **kwargs)
        except Exception as e:  # noqa: BLE001 - the template's own raise_exception is what is tested
            out.append({"text": None, "ids": None, "assistant_masks": None, "error": str(e)})
            continue
        ids = tok(text, add_special_tokens=False)["input_ids"]
        masks = None
        if case.get("mask_template"):
            enc = tok.apply_chat_template(
                case["messages"], tokenize=True, return_dict=True, return_assistant_tokens_mask=True,
                chat_template=case["mask_template"], add_generation_prompt=kwargs["add_generation_prompt"],
            )
            if list(enc["input_ids"]) != list(ids):
                raise SystemExit("mask_template renders differently from the template it copies")
            masks = list(enc["assistant_masks"])
        out.append({"text": text, "ids": list(ids), "assistant_masks": masks, "error": None})
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
