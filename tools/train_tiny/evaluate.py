#!/usr/bin/env python3
"""Evaluates an exported tandem-tiny checkpoint and writes eval.json.

  python3 tools/train_tiny/evaluate.py --model models/tandem-tiny --data .train_data

Everything runs in float32 with TF32 off. The checkpoint is loaded twice: through
transformers (main model; the NextN layer through tiny_model.load_mtp) and through
glm_ref.py (independent reference). Their logits must agree before anything is
measured.

Speculative decoding reference (the C++ engine is compared against this; greedy,
eos ignored, no KV cache: every forward recomputes the whole sequence):
  * prefill the target on the prompt; its argmax t_n is completion token 1.
  * each step, with committed tokens t_0..t_m (t_m newest, its target hidden unknown):
    MTP slots i = 0..m-1 pair the target's post-final-norm hidden h_i with t_{i+1} at
    position i; the last slot's argmax is draft x1. Draft j+1 appends the slot
    (h'_prev, x_j) at the next position, h'_prev being the shared_head.norm output of
    the previous last slot. K drafts in all.
  * verify [t_m, x1..xK] in one target forward (positions m..m+K); accept the longest
    prefix of drafts equal to the target argmax, then add the target's own token at the
    first mismatch (or the bonus token after all K): accepted+1 tokens, truncated so the
    completion never exceeds max_new_tokens. verify_steps += 1.
  * AL = sum(completion_tokens) / sum(verify_steps) over all prompts (SGLang's
    spec_accept_length; the prefill token counts as a completion token).
"""

import argparse
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import glm_ref  # noqa: E402
import st_io  # noqa: E402
import tiny_model  # noqa: E402

kStart = time.time()
kSamplePrompts = ["In the beginning", "And Jesus answered and said unto them,",
                  "Q: How many programmers does it take"]
kChatPrompts = ["Tell me a fortune.", "Who are you?", "Read me Psalms chapter 23."]


def log(message):
    print(f"[evaluate {time.time() - kStart:7.1f}s] {message}", flush=True)


def read_texts(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


class Backend:
    """target(ids) -> (logits [T, V], hidden [T, H]); draft(hidden [S, H], tokens [S]) ->
    (logits [S, V], h' [S, H]). Inputs are python lists / tensors on `device`."""

    def __init__(self, target, draft, device):
        self.target_fn = target
        self.draft_fn = draft
        self.device = device
        self.target_calls = 0
        self.draft_calls = 0

    @torch.no_grad()
    def target(self, ids):
        self.target_calls += 1
        return self.target_fn(torch.tensor(ids, dtype=torch.long, device=self.device))

    @torch.no_grad()
    def draft(self, hidden, tokens):
        self.draft_calls += 1
        return self.draft_fn(hidden, torch.tensor(tokens, dtype=torch.long, device=self.device))


def hf_backend(main, mtp, device):
    def target(ids):
        hidden = main.model(input_ids=ids[None], use_cache=False).last_hidden_state
        return main.lm_head(hidden)[0], hidden[0]

    def draft(hidden, tokens):
        logits, h_out = mtp(hidden[None], tokens[None])
        return logits[0], h_out[0]

    return Backend(target, draft, device)


def ref_backend(ref, device):
    return Backend(ref.main, ref.mtp, device)


def greedy(backend, prompt, max_new_tokens, stop_ids=()):
    seq = list(prompt)
    out = []
    while len(out) < max_new_tokens:
        logits, _ = backend.target(seq)
        token = int(logits[-1].argmax())
        seq.append(token)
        out.append(token)
        if token in stop_ids:
            break
    return out


def speculative(backend, prompt, k, max_new_tokens):
    """Returns (completion tokens, verify steps); see the module docstring."""
    seq = list(prompt)
    logits, hidden = backend.target(seq)
    seq.append(int(logits[-1].argmax()))
    completion = [seq[-1]]
    committed_hidden = hidden  # rows for t_0..t_{m-1}; t_m = seq[-1] has none yet
    verify_steps = 0
    while len(completion) < max_new_tokens:
        m = len(seq) - 1
        slot_hidden = committed_hidden[:m]
        slot_tokens = seq[1:m + 1]
        drafts = []
        for _ in range(k):
            draft_logits, draft_hidden = backend.draft(slot_hidden, slot_tokens)
            drafts.append(int(draft_logits[-1].argmax()))
            slot_hidden = torch.cat([slot_hidden, draft_hidden[-1:]], dim=0)
            slot_tokens = slot_tokens + [drafts[-1]]
        verify_logits, verify_hidden = backend.target(seq + drafts)
        predicted = verify_logits[m:m + k + 1].argmax(-1).tolist()
        accepted = 0
        while accepted < k and drafts[accepted] == predicted[accepted]:
            accepted += 1
        new = (drafts[:accepted] + [predicted[accepted]])[: max_new_tokens - len(completion)]
        seq += new
        completion += new
        verify_steps += 1
        committed_hidden = verify_hidden[: len(seq) - 1]
    return completion, verify_steps


def heldout_perplexity(backend, docs, eot, window):
    """Per-token perplexity of [eot] + doc + [eot] (every token after the first is
    predicted), documents scored independently in chunks of `window` tokens."""
    nll = 0.0
    count = 0
    targets = []
    for ids in docs:
        seq = [eot] + ids + [eot]
        for start in range(0, len(seq) - 1, window):
            chunk = seq[start:start + window + 1]
            logits, _ = backend.target(chunk[:-1])
            labels = torch.tensor(chunk[1:], device=logits.device)
            nll += float(torch.nn.functional.cross_entropy(logits, labels, reduction="sum"))
            count += len(chunk) - 1
            targets.extend(chunk[1:])
    return math.exp(nll / count), targets


def unigram_perplexity(train_docs, eot, vocab_size, targets):
    counts = torch.ones(vocab_size, dtype=torch.float64)  # add-one smoothing
    for ids in train_docs:
        counts += torch.bincount(torch.tensor(ids + [eot]), minlength=vocab_size).double()
    logp = (counts / counts.sum()).log()
    return math.exp(-float(logp[torch.tensor(targets)].mean()))


def cross_check(hf, ref, sequences):
    """Max |logit| difference between transformers and glm_ref (main and MTP)."""
    worst_main = 0.0
    worst_mtp = 0.0
    for ids in sequences:
        hf_logits, hf_hidden = hf.target(ids)
        ref_logits, ref_hidden = ref.target(ids)
        worst_main = max(worst_main, float((hf_logits - ref_logits).abs().max()))
        hf_mtp, _ = hf.draft(hf_hidden[:-1], ids[1:])
        ref_mtp, _ = ref.draft(hf_hidden[:-1], ids[1:])
        worst_mtp = max(worst_mtp, float((hf_mtp - ref_mtp).abs().max()))
    return worst_main, worst_mtp


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/tandem-tiny")
    parser.add_argument("--data", default=".train_data")
    parser.add_argument("--out", default=None, help="default: <model>/eval.json")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--prompt-tokens", type=int, default=32)
    parser.add_argument("--sample-tokens", type=int, default=60)
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--heldout-docs", type=int, default=0,
                        help="score only the first N held-out documents (0: all; smoke tests)")
    args = parser.parse_args()

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    eot = tokenizer.token_to_id("<|endoftext|>")
    with open(os.path.join(args.model, "config.json"), encoding="utf-8") as f:
        config_json = json.load(f)
    stop_ids = config_json["eos_token_id"]

    main_model, info = tiny_model.load_main(args.model)
    main_model = main_model.to(device)
    mtp = tiny_model.load_mtp(args.model, main_model, device)
    tensors, _ = st_io.read_safetensors(os.path.join(args.model, "model.safetensors"))
    ref = glm_ref.GlmRef(config_json, tensors, device)
    hf = hf_backend(main_model, mtp, device)
    reference = ref_backend(ref, device)
    log(f"loaded {args.model}: transformers unexpected keys {len(info.get('unexpected_keys', []))}, "
        f"missing {info.get('missing_keys', [])}")

    heldout = read_texts(os.path.join(args.data, "heldout.jsonl"))
    heldout_ids = [e.ids for e in tokenizer.encode_batch([d["text"] for d in heldout])]
    probes = [ids[:96] for ids in heldout_ids if len(ids) >= 96][:4]
    diff_main, diff_mtp = cross_check(hf, reference, probes)
    log(f"transformers vs glm_ref: max |logit diff| main {diff_main:.3g}, mtp {diff_mtp:.3g}")
    if diff_main > 1e-3 or diff_mtp > 1e-3:
        log("CHECK FAILED: transformers and glm_ref disagree (numbers below come from transformers)")

    scored = heldout_ids[: args.heldout_docs] if args.heldout_docs else heldout_ids
    ppl, targets = heldout_perplexity(hf, scored, eot, args.window)
    train_docs = [e.ids for e in tokenizer.encode_batch(
        [d["text"] for d in read_texts(os.path.join(args.data, "train.jsonl"))])]
    uni = unigram_perplexity(train_docs, eot, tokenizer.get_vocab_size(), targets)
    log(f"held-out perplexity {ppl:.2f} over {len(targets)} tokens; unigram {uni:.1f}")

    samples = []
    for text in kSamplePrompts:
        ids = tokenizer.encode(text).ids
        out = greedy(hf, ids, args.sample_tokens)
        samples.append({"prompt": text, "completion": tokenizer.decode(out, skip_special_tokens=False)})
        log(f"sample: {text!r} -> {samples[-1]['completion']!r}")
    template_prefix = "[gMASK]<sop><|user|>\n{}<|assistant|>"
    chat_samples = []
    for text in kChatPrompts:
        ids = tokenizer.encode(template_prefix.format(text)).ids
        out = greedy(hf, ids, args.sample_tokens, stop_ids)
        chat_samples.append({"user": text, "completion": tokenizer.decode(out, skip_special_tokens=False)})
        log(f"chat: {text!r} -> {chat_samples[-1]['completion']!r}")

    chosen = [(d["id"], ids[: args.prompt_tokens]) for d, ids in zip(heldout, heldout_ids)
              if len(ids) >= args.prompt_tokens][: args.prompts]
    if len(chosen) < args.prompts:
        sys.exit(f"evaluate: only {len(chosen)} held-out documents have {args.prompt_tokens} tokens")
    prompts = [ids for _, ids in chosen]
    plain = [greedy(hf, p, args.max_new_tokens) for p in prompts]
    spec = {}
    per_prompt = {}
    matches = {}
    for k in (1, 2, 3):
        completion_tokens = 0
        verify_steps = 0
        per_prompt[f"K{k}"] = []
        matches[f"K{k}"] = []
        for prompt, want in zip(prompts, plain):
            out, steps = speculative(hf, prompt, k, args.max_new_tokens)
            completion_tokens += len(out)
            verify_steps += steps
            per_prompt[f"K{k}"].append(round(len(out) / steps, 4))
            matches[f"K{k}"].append(out == want)
        spec[f"K{k}"] = {"al": completion_tokens / verify_steps, "verify_steps": verify_steps,
                         "completion_tokens": completion_tokens}
        log(f"speculative K={k}: AL {spec[f'K{k}']['al']:.3f} ({completion_tokens} tokens / "
            f"{verify_steps} verify steps); equals plain greedy on "
            f"{sum(matches[f'K{k}'])}/{len(prompts)} prompts")
    # The reference implementation must give the same acceptance for K=3 on a few prompts.
    ref_check = []
    for prompt in prompts[:4]:
        a = speculative(hf, prompt, 3, args.max_new_tokens)
        b = speculative(reference, prompt, 3, args.max_new_tokens)
        ref_check.append(a == b)
    log(f"glm_ref reproduces the K=3 decode of the first 4 prompts: {ref_check}")

    result = {
        "heldout_ppl": ppl,
        "unigram_ppl": uni,
        "heldout_tokens": len(targets),
        "samples": samples,
        "chat_samples": chat_samples,
        "spec": spec,
        "prompts": prompts,
        "prompt_ids": [doc_id for doc_id, _ in chosen],
        "max_new_tokens": args.max_new_tokens,
        "per_prompt": per_prompt,
        "spec_equals_greedy": {k: all(v) for k, v in matches.items()},
        "spec_equals_greedy_per_prompt": matches,
        "greedy_completions": plain,
        "reference_check": {"max_abs_logit_diff_main": diff_main,
                            "max_abs_logit_diff_mtp": diff_mtp,
                            "glm_ref_same_k3_decode": ref_check},
        "settings": "float32, TF32 off, greedy, eos ignored for the speculative runs, no KV cache",
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
    }
    out_path = args.out or os.path.join(args.model, "eval.json")
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    log(f"wrote {out_path}")


if __name__ == "__main__":
    main()
