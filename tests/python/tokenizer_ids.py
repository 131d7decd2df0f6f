"""Encodes texts with the reference `tokenizers` library. Usage: tokenizer_ids.py TOKENIZER_JSON TEXTS_JSON
TEXTS_JSON: a JSON list of strings. Prints JSON {"ids": [[...], ...], "ids_special": [[...], ...], "decoded": [...]}:
ids without special tokens, ids with them (post-processor applied), and decode(ids) of the first list."""
import json
import sys

from tokenizers import Tokenizer

tok = Tokenizer.from_file(sys.argv[1])
with open(sys.argv[2], encoding="utf-8") as f:
    texts = json.load(f)
plain = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
special = [e.ids for e in tok.encode_batch(texts, add_special_tokens=True)]
decoded = [tok.decode(ids, skip_special_tokens=False) for ids in plain]
print(json.dumps({"ids": plain, "ids_special": special, "decoded": decoded, "vocab_size": tok.get_vocab_size(with_added_tokens=True)}))
