#!/usr/bin/env python3
"""Trains tandem-tiny's byte-level BPE tokenizer, built like GLM-4.5's.

  python3 tools/train_tiny/train_tokenizer.py --data .train_data --out models/tandem-tiny

Writes tokenizer.json and tokenizer_config.json. Layout (GLM-4.5/4.6/4.7):
  normalizer      none
  pre_tokenizer   Sequence[Split(glm4 regex, isolated), ByteLevel(add_prefix_space=False,
                  use_regex=False)]
  model           BPE over the 256 byte symbols, 4096 entries in all
  decoder         ByteLevel
  added tokens    GLM's special tokens, in GLM's order, right after the BPE vocabulary
The BPE is trained on the plain training documents only (not the chat documents, not
the held-out split).
"""

import argparse
import json
import os
import sys

kGlm4Pattern = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
kBpeVocabSize = 4096

# (content, special). special=True for the control tokens that decode(skip_special_tokens)
# drops; the reasoning/tool markup stays visible text, as in GLM's tokenizer.json (see
# transformers issue #48658 on zai-org/GLM-OCR, the same GLM-4 token set).
kAddedTokens = [
    ("<|endoftext|>", True), ("[MASK]", True), ("[gMASK]", True), ("[sMASK]", True),
    ("<sop>", True), ("<eop>", True), ("<|system|>", True), ("<|user|>", True),
    ("<|assistant|>", True), ("<|observation|>", True), ("<|begin_of_image|>", True),
    ("<|end_of_image|>", True), ("<|begin_of_video|>", True), ("<|end_of_video|>", True),
    ("<think>", False), ("</think>", False), ("<tool_call>", False), ("</tool_call>", False),
    ("<tool_response>", False), ("</tool_response>", False), ("<arg_key>", False),
    ("</arg_key>", False), ("<arg_value>", False), ("</arg_value>", False),
    ("/nothink", False),
]
kModelMaxLength = 2048


def read_texts(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)["text"]


def added_token_ids(tokenizer):
    ids = {}
    for content, _ in kAddedTokens:
        token_id = tokenizer.token_to_id(content)
        if token_id is None:
            sys.exit(f"train_tokenizer: added token {content!r} has no id")
        ids[content] = token_id
    return ids


def write_tokenizer_config(out_dir, ids, chat_template):
    decoder = {}
    for content, special in kAddedTokens:
        decoder[str(ids[content])] = {"content": content, "lstrip": False, "normalized": False,
                                      "rstrip": False, "single_word": False, "special": special}
    config = {
        "added_tokens_decoder": decoder,
        "chat_template": chat_template,
        "clean_up_tokenization_spaces": False,
        "do_lower_case": False,
        "eos_token": "<|endoftext|>",
        "model_max_length": kModelMaxLength,
        "pad_token": "<|endoftext|>",
        "padding_side": "left",
        "remove_space": False,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, ensure_ascii=False)
        f.write("\n")


def train(data_dir, out_dir):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(kGlm4Pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=kBpeVocabSize, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=[])
    texts = list(read_texts(os.path.join(data_dir, "train.jsonl")))
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    base = tokenizer.get_vocab_size()
    if base != kBpeVocabSize:
        sys.exit(f"train_tokenizer: BPE vocabulary has {base} entries, expected {kBpeVocabSize}")
    for index, (content, special) in enumerate(kAddedTokens):
        token = AddedToken(content, single_word=False, lstrip=False, rstrip=False,
                           normalized=False, special=special)
        if special:
            tokenizer.add_special_tokens([token])
        else:
            tokenizer.add_tokens([token])
        if tokenizer.token_to_id(content) != base + index:
            sys.exit(f"train_tokenizer: {content!r} got id {tokenizer.token_to_id(content)}, "
                     f"expected {base + index} (GLM order right after the BPE vocabulary)")
    os.makedirs(out_dir, exist_ok=True)
    tokenizer.save(os.path.join(out_dir, "tokenizer.json"))
    return tokenizer


def check(out_dir, data_dir, tokenizer):
    """Round trips and the transformers view of the files (when transformers is there)."""
    sample = "In the beginning God created 12345 things; isn't it \"grand\"?\n\n-- Anon"
    ids = tokenizer.encode(sample).ids
    if tokenizer.decode(ids, skip_special_tokens=False) != sample:
        sys.exit("train_tokenizer: decode(encode(x)) != x")
    pieces = [p for p, _ in tokenizer.pre_tokenizer.pre_tokenize_str("I said 12345 times")]
    if pieces != ["I", "Ġsaid", "Ġ", "123", "45", "Ġtimes"]:
        sys.exit(f"train_tokenizer: pre-tokenizer pieces {pieces}, expected the glm4 split")
    heldout = list(read_texts(os.path.join(data_dir, "heldout.jsonl")))
    for text in heldout:
        if tokenizer.decode(tokenizer.encode(text).ids, skip_special_tokens=False) != text:
            sys.exit(f"train_tokenizer: held-out text does not round-trip: {text[:60]!r}")
    n_tokens = sum(len(tokenizer.encode(t).ids) for t in heldout)
    n_chars = sum(len(t) for t in heldout)
    print(f"train_tokenizer: held-out {n_chars} chars -> {n_tokens} tokens "
          f"({n_chars / n_tokens:.2f} chars/token)")
    try:
        from transformers import AutoTokenizer
    except ImportError:
        print("train_tokenizer: transformers not installed; skipped the AutoTokenizer check")
        return
    # A failure here is reported loudly but does not stop the pipeline: the tokenizer files
    # are already complete, and the log shows what transformers objected to.
    try:
        hf = AutoTokenizer.from_pretrained(out_dir)
        problems = []
        if hf.encode(sample, add_special_tokens=True) != ids:
            problems.append("AutoTokenizer and tokenizers disagree on plain text")
        rendered = hf.apply_chat_template([{"role": "user", "content": "Tell me a fortune."}],
                                          tokenize=False, add_generation_prompt=True)
        expected = "[gMASK]<sop><|user|>\nTell me a fortune.<|assistant|>"
        if rendered != expected:
            problems.append(f"chat template rendered {rendered!r}, expected {expected!r}")
        chat_ids = hf.encode(rendered, add_special_tokens=False)
        want = [tokenizer.token_to_id(t) for t in ("[gMASK]", "<sop>", "<|user|>")]
        if chat_ids[:3] != want or chat_ids[-1] != tokenizer.token_to_id("<|assistant|>"):
            problems.append(f"chat prompt ids {chat_ids} do not start with {want}")
        if problems:
            print("train_tokenizer: CHECK FAILED: " + "; ".join(problems))
        else:
            print(f"train_tokenizer: AutoTokenizer OK ({type(hf).__name__}); chat prompt ids {chat_ids}")
    except Exception as err:  # noqa: BLE001 - report any transformers-side failure
        print(f"train_tokenizer: CHECK FAILED: AutoTokenizer: {type(err).__name__}: {err}")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=".train_data")
    parser.add_argument("--out", default="models/tandem-tiny")
    parser.add_argument("--chat-template", default=None,
                        help="GLM-4.5 chat template (default: zai-org-GLM-4.5.jinja beside this script)")
    args = parser.parse_args()
    template_path = args.chat_template or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "zai-org-GLM-4.5.jinja")
    with open(template_path, encoding="utf-8") as f:
        chat_template = f.read()
    tokenizer = train(args.data, args.out)
    write_tokenizer_config(args.out, added_token_ids(tokenizer), chat_template)
    check(args.out, args.data, tokenizer)
    print(f"train_tokenizer: {tokenizer.get_vocab_size()} tokens -> {args.out}")


if __name__ == "__main__":
    main()
