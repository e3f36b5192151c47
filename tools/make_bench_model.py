#!/usr/bin/env python3
"""Writes a random Glm4MoeForCausalLM checkpoint (BF16 safetensors, with a NextN layer) large enough to
exceed the last-level cache, for `tandem bench`. Needs only numpy (Debian: python3-numpy).

    python3 tools/make_bench_model.py --out build/bench-model            # ~0.5 GB
The weights are random: the model is for throughput measurements only. A synthetic byte-level BPE tokenizer of
the model's vocabulary size is written beside them, so `tandem serve` can serve it (token-id traffic such as
`tandem bench serve`); `--tokenizer-only` adds just that to an existing folder.
"""
import argparse
import json
import os
import struct

import numpy as np


def bf16(a):
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    u = u + 0x7FFF + ((u >> 16) & 1)  # round to nearest even
    return (u >> 16).astype(np.uint16)


def byte_chars():
    """GPT-2's byte -> printable character map (the ByteLevel pre-tokenizer's alphabet), in byte order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) + \
        list(range(ord("\u00ae"), ord("\u00ff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def write_tokenizer(out, vocab_size):
    """A byte-level BPE of vocab_size tokens: the 256 byte characters, then two-character merges in order."""
    alphabet = byte_chars()
    vocab = {c: i for i, c in enumerate(alphabet)}
    merges = []
    for a in alphabet:
        for b in alphabet:
            if len(vocab) >= vocab_size:
                break
            vocab[a + b] = len(vocab)
            merges.append([a, b])
    tok = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }
    with open(os.path.join(out, "tokenizer.json"), "w") as f:
        json.dump(tok, f, ensure_ascii=False)
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 4096}, f, indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--experts", type=int, default=32)
    ap.add_argument("--top-k", type=int, default=4)
    ap.add_argument("--moe-intermediate", type=int, default=512)
    ap.add_argument("--vocab", type=int, default=16384)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokenizer-only", action="store_true", help="write only the tokenizer into --out")
    a = ap.parse_args()
    if a.tokenizer_only:
        os.makedirs(a.out, exist_ok=True)
        write_tokenizer(a.out, a.vocab)
        print(f"wrote {a.out}/tokenizer.json ({a.vocab} tokens)")
        return
    H, L, E, Im, V = a.hidden, a.layers, a.experts, a.moe_intermediate, a.vocab
    heads, kv_heads, D = 16, 2, 64
    cfg = {
        "architectures": ["Glm4MoeForCausalLM"], "model_type": "glm4_moe", "vocab_size": V, "hidden_size": H,
        "intermediate_size": 4 * Im, "moe_intermediate_size": Im, "num_hidden_layers": L,
        "num_attention_heads": heads, "num_key_value_heads": kv_heads, "head_dim": D,
        "partial_rotary_factor": 0.5, "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "attention_bias": True,
        "use_qk_norm": True, "n_routed_experts": E, "num_experts_per_tok": a.top_k, "n_shared_experts": 1,
        "n_group": 1, "topk_group": 1, "norm_topk_prob": True, "routed_scaling_factor": 2.5,
        "first_k_dense_replace": 1, "num_nextn_predict_layers": 1, "tie_word_embeddings": False,
        "max_position_embeddings": 4096, "hidden_act": "silu", "eos_token_id": [0], "torch_dtype": "bfloat16",
    }
    rng = np.random.default_rng(a.seed)
    tensors = {}

    def w(name, *shape, scale=None, f32=False):
        s = scale if scale is not None else 1.0 / np.sqrt(shape[-1])
        x = rng.standard_normal(shape, dtype=np.float32) * s
        tensors[name] = ("F32", x.astype(np.float32)) if f32 else ("BF16", bf16(x))

    def ones(name, n):
        tensors[name] = ("BF16", bf16(1.0 + 0.1 * rng.standard_normal(n, dtype=np.float32)))

    def layer(p, moe):
        ones(p + "input_layernorm.weight", H)
        ones(p + "post_attention_layernorm.weight", H)
        for n, o in (("q", heads * D), ("k", kv_heads * D), ("v", kv_heads * D)):
            w(p + f"self_attn.{n}_proj.weight", o, H)
            w(p + f"self_attn.{n}_proj.bias", o, scale=0.02)
        w(p + "self_attn.o_proj.weight", H, heads * D)
        ones(p + "self_attn.q_norm.weight", D)
        ones(p + "self_attn.k_norm.weight", D)
        if not moe:
            for n, shp in (("gate", (4 * Im, H)), ("up", (4 * Im, H)), ("down", (H, 4 * Im))):
                w(p + f"mlp.{n}_proj.weight", *shp)
            return
        w(p + "mlp.gate.weight", E, H)
        w(p + "mlp.gate.e_score_correction_bias", E, scale=0.1, f32=True)
        for e in range(E):
            for n, shp in (("gate", (Im, H)), ("up", (Im, H)), ("down", (H, Im))):
                w(p + f"mlp.experts.{e}.{n}_proj.weight", *shp)
        for n, shp in (("gate", (Im, H)), ("up", (Im, H)), ("down", (H, Im))):
            w(p + f"mlp.shared_experts.{n}_proj.weight", *shp)

    w("model.embed_tokens.weight", V, H, scale=1.0)
    for l in range(L):
        layer(f"model.layers.{l}.", l >= 1)
    ones("model.norm.weight", H)
    w("lm_head.weight", V, H)
    n = f"model.layers.{L}."
    layer(n, True)
    ones(n + "enorm.weight", H)
    ones(n + "hnorm.weight", H)
    w(n + "eh_proj.weight", H, 2 * H)
    ones(n + "shared_head.norm.weight", H)

    os.makedirs(a.out, exist_ok=True)
    header, offset = {}, 0
    for name in sorted(tensors):
        dt, arr = tensors[name]
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for name in sorted(tensors):
            f.write(tensors[name][1].tobytes())
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    write_tokenizer(a.out, V)
    print(f"wrote {a.out}: {offset / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
