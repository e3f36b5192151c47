"""Independent float32 reference of Glm4MoeForCausalLM + its NextN (MTP) layer.

Written from docs/../model-spec.md (sections 2 and 3), not from transformers: it reads
tensors by their checkpoint names (GLM-4.6 layout: layer N has no embed_tokens /
shared_head.head and falls back to model.embed_tokens / lm_head). evaluate.py runs it
next to the transformers model and requires both to agree, so the numbers in eval.json
describe the math that tandem's C++ engine implements.

All functions work on one sequence: ids [T] int64, hidden [T, H] f32.
"""

import math

import torch


class RefConfig:
    """The config.json fields the forward needs, in either rope layout."""

    def __init__(self, config):
        rope = config.get("rope_parameters") or {}
        self.hidden_size = config["hidden_size"]
        self.num_layers = config["num_hidden_layers"]
        self.num_heads = config["num_attention_heads"]
        self.num_kv_heads = config["num_key_value_heads"]
        self.head_dim = config.get("head_dim") or self.hidden_size // self.num_heads
        self.rope_theta = float(rope.get("rope_theta", config.get("rope_theta", 10000.0)))
        self.partial_rotary_factor = float(
            rope.get("partial_rotary_factor", config.get("partial_rotary_factor", 0.5)))
        self.eps = config["rms_norm_eps"]
        self.first_k_dense_replace = config["first_k_dense_replace"]
        self.n_routed_experts = config["n_routed_experts"]
        self.top_k = config["num_experts_per_tok"]
        self.norm_topk_prob = config["norm_topk_prob"]
        self.routed_scaling_factor = float(config["routed_scaling_factor"])
        self.use_qk_norm = config.get("use_qk_norm", False)
        self.num_nextn = config.get("num_nextn_predict_layers", 0)
        if config.get("n_group", 1) != 1 or config.get("topk_group", 1) != 1:
            raise ValueError("glm_ref: only n_group == topk_group == 1 is implemented")


def rms_norm(x, weight, eps):
    # [.., H] f32: weight * x / sqrt(mean(x^2) + eps); plain weight, not (1 + weight).
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rope_neox(x, positions, cfg):
    """x [T, heads, D]; rotates dims [0, rd) as two halves, passes [rd, D) through."""
    rd = int(cfg.head_dim * cfg.partial_rotary_factor)
    half = rd // 2
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, rd, 2, dtype=torch.float32,
                                                      device=x.device) / rd))  # [half]
    angles = positions.to(torch.float32)[:, None] * inv_freq[None, :]  # [T, half]
    cos = angles.cos()[:, None, :]
    sin = angles.sin()[:, None, :]
    a, b, rest = x[..., :half], x[..., half:rd], x[..., rd:]
    return torch.cat([a * cos - b * sin, b * cos + a * sin, rest], dim=-1)


def attention(x, w, prefix, positions, cfg):
    """x [T, H] -> [T, H]; causal GQA with q/k/v bias, per-head qk-norm before RoPE."""
    t = x.shape[0]
    d = cfg.head_dim
    q = (x @ w[prefix + "q_proj.weight"].T + w[prefix + "q_proj.bias"]).view(t, cfg.num_heads, d)
    k = (x @ w[prefix + "k_proj.weight"].T + w[prefix + "k_proj.bias"]).view(t, cfg.num_kv_heads, d)
    v = (x @ w[prefix + "v_proj.weight"].T + w[prefix + "v_proj.bias"]).view(t, cfg.num_kv_heads, d)
    if cfg.use_qk_norm:
        q = rms_norm(q, w[prefix + "q_norm.weight"], cfg.eps)
        k = rms_norm(k, w[prefix + "k_norm.weight"], cfg.eps)
    q = rope_neox(q, positions, cfg)
    k = rope_neox(k, positions, cfg)
    group = cfg.num_heads // cfg.num_kv_heads
    k = k.repeat_interleave(group, dim=1)  # q head h reads kv head h // group
    v = v.repeat_interleave(group, dim=1)
    scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(d)  # [heads, T, T]
    mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
    scores = scores.masked_fill(mask, float("-inf"))
    out = torch.einsum("hqk,khd->qhd", scores.softmax(-1), v).reshape(t, cfg.num_heads * d)
    return out @ w[prefix + "o_proj.weight"].T


def swiglu(x, w, prefix):
    gate = x @ w[prefix + "gate_proj.weight"].T
    up = x @ w[prefix + "up_proj.weight"].T
    return (torch.nn.functional.silu(gate) * up) @ w[prefix + "down_proj.weight"].T


def route(x, w, prefix, cfg):
    """Sigmoid router with selection bias. Returns (expert ids [T, K], weights [T, K])."""
    scores = torch.sigmoid(x @ w[prefix + "gate.weight"].T)  # [T, E]
    chosen = torch.topk(scores + w[prefix + "gate.e_score_correction_bias"], cfg.top_k, dim=-1)[1]
    weights = scores.gather(1, chosen)
    if cfg.norm_topk_prob:
        weights = weights / (weights.sum(-1, keepdim=True) + 1e-20)
    return chosen, weights * cfg.routed_scaling_factor


def moe(x, w, prefix, cfg):
    chosen, weights = route(x, w, prefix, cfg)
    out = swiglu(x, w, prefix + "shared_experts.")
    for e in range(cfg.n_routed_experts):
        rows, slots = torch.nonzero(chosen == e, as_tuple=True)
        if rows.numel():
            y = swiglu(x[rows], w, f"{prefix}experts.{e}.")
            out = out.index_add(0, rows, y * weights[rows, slots, None])
    return out


def decoder_layer(x, w, layer, positions, cfg):
    prefix = f"model.layers.{layer}."
    h = x + attention(rms_norm(x, w[prefix + "input_layernorm.weight"], cfg.eps), w,
                      prefix + "self_attn.", positions, cfg)
    normed = rms_norm(h, w[prefix + "post_attention_layernorm.weight"], cfg.eps)
    if layer < cfg.first_k_dense_replace:
        return h + swiglu(normed, w, prefix + "mlp.")
    return h + moe(normed, w, prefix + "mlp.", cfg)


class GlmRef:
    """Reference model over checkpoint tensors (converted to float32 on `device`)."""

    def __init__(self, config, tensors, device="cpu"):
        self.cfg = RefConfig(config)
        self.w = {name: t.to(device=device, dtype=torch.float32) for name, t in tensors.items()}
        n = self.cfg.num_layers
        self.embed = self.w["model.embed_tokens.weight"]
        self.head = self.w["lm_head.weight"]
        self.mtp_embed = self.w.get(f"model.layers.{n}.embed_tokens.weight", self.embed)
        self.mtp_head = self.w.get(f"model.layers.{n}.shared_head.head.weight", self.head)

    @torch.no_grad()
    def main(self, ids):
        """ids [T] -> (logits [T, V], post-final-norm hidden [T, H])."""
        positions = torch.arange(ids.shape[0], device=ids.device)
        x = self.embed[ids]
        for layer in range(self.cfg.num_layers):
            x = decoder_layer(x, self.w, layer, positions, self.cfg)
        hidden = rms_norm(x, self.w["model.norm.weight"], self.cfg.eps)
        return hidden @ self.head.T, hidden

    @torch.no_grad()
    def mtp(self, hidden, next_ids):
        """Slot i at position i pairs hidden[i] with next_ids[i] (model-spec.md section 3):
        z = eh_proj([enorm(embed(next)), hnorm(hidden)]) -> decoder layer N (causal over the
        slots) -> shared_head.norm -> lm_head. Returns (logits [T, V], h' [T, H])."""
        n = self.cfg.num_layers
        prefix = f"model.layers.{n}."
        positions = torch.arange(hidden.shape[0], device=hidden.device)
        e = rms_norm(self.mtp_embed[next_ids], self.w[prefix + "enorm.weight"], self.cfg.eps)
        h = rms_norm(hidden, self.w[prefix + "hnorm.weight"], self.cfg.eps)
        z = torch.cat([e, h], dim=-1) @ self.w[prefix + "eh_proj.weight"].T
        z = decoder_layer(z, self.w, n, positions, self.cfg)
        h_out = rms_norm(z, self.w[prefix + "shared_head.norm.weight"], self.cfg.eps)
        return h_out @ self.mtp_head.T, h_out
