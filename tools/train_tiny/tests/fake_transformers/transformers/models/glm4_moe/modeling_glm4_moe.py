"""A small stand-in for transformers' Glm4Moe classes, used ONLY by smoke_test.sh on machines
without transformers (the dev box). It follows the 4.x module layout (per-expert
ModuleList, router returning fp32 logits) so train.py / evaluate.py can run end to end
on CPU; the real run uses transformers itself and checks against glm_ref.py."""

import json
import os
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

import st_io


class Glm4MoeConfig:
    def __init__(self, **kwargs):
        rope = kwargs.pop("rope_parameters", None) or {}
        self.rope_theta = float(rope.get("rope_theta", kwargs.pop("rope_theta", 10000.0)))
        self.partial_rotary_factor = float(
            rope.get("partial_rotary_factor", kwargs.pop("partial_rotary_factor", 0.5)))
        kwargs.pop("partial_rotary_factor", None)
        for key, value in kwargs.items():
            setattr(self, key, value)
        if not hasattr(self, "head_dim"):
            self.head_dim = self.hidden_size // self.num_attention_heads

    def to_dict(self):
        d = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        d["model_type"] = "glm4_moe"
        d["torch_dtype"] = "float32"
        return d

    def save_pretrained(self, directory):
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "config.json"), "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)

    @classmethod
    def from_json_file(cls, path):
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        for key in ("model_type", "torch_dtype", "architectures", "transformers_version"):
            d.pop(key, None)
        return cls(**d)


class Glm4MoeRMSNorm(nn.Module):
    def __init__(self, hidden_size, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, x):
        dtype = x.dtype
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * xf.to(dtype)


class Glm4MoeRotaryEmbedding(nn.Module):
    def __init__(self, config):
        super().__init__()
        rd = int(config.head_dim * config.partial_rotary_factor)
        inv = 1.0 / (config.rope_theta ** (torch.arange(0, rd, 2, dtype=torch.float32) / rd))
        self.register_buffer("inv_freq", inv, persistent=False)

    def forward(self, t, device):
        ang = torch.arange(t, device=device, dtype=torch.float32)[:, None] * self.inv_freq[None]
        return ang.cos(), ang.sin()


def apply_rope(x, cos, sin):  # x [B, heads, T, D]
    half = cos.shape[-1]
    rd = 2 * half
    a, b, rest = x[..., :half], x[..., half:rd], x[..., rd:]
    return torch.cat([a * cos - b * sin, b * cos + a * sin, rest], dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        d = c.head_dim
        self.q_proj = nn.Linear(c.hidden_size, c.num_attention_heads * d, bias=True)
        self.k_proj = nn.Linear(c.hidden_size, c.num_key_value_heads * d, bias=True)
        self.v_proj = nn.Linear(c.hidden_size, c.num_key_value_heads * d, bias=True)
        self.o_proj = nn.Linear(c.num_attention_heads * d, c.hidden_size, bias=False)
        self.q_norm = Glm4MoeRMSNorm(d, c.rms_norm_eps)
        self.k_norm = Glm4MoeRMSNorm(d, c.rms_norm_eps)

    def forward(self, x, cos, sin):
        b, t, _ = x.shape
        c = self.c
        q = self.q_norm(self.q_proj(x).view(b, t, -1, c.head_dim)).transpose(1, 2)
        k = self.k_norm(self.k_proj(x).view(b, t, -1, c.head_dim)).transpose(1, 2)
        v = self.v_proj(x).view(b, t, -1, c.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos.to(q.dtype), sin.to(q.dtype)), apply_rope(k, cos.to(k.dtype), sin.to(k.dtype))
        g = c.num_attention_heads // c.num_key_value_heads
        k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
        scores = (q @ k.transpose(-1, -2)) / c.head_dim ** 0.5
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        o = scores.masked_fill(causal, float("-inf")).softmax(-1) @ v
        return self.o_proj(o.transpose(1, 2).reshape(b, t, -1))


class MLP(nn.Module):
    def __init__(self, c, inter):
        super().__init__()
        self.gate_proj = nn.Linear(c.hidden_size, inter, bias=False)
        self.up_proj = nn.Linear(c.hidden_size, inter, bias=False)
        self.down_proj = nn.Linear(inter, c.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Router(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(c.n_routed_experts, c.hidden_size))
        self.register_buffer("e_score_correction_bias", torch.zeros(c.n_routed_experts))

    def forward(self, x):
        return F.linear(x.reshape(-1, x.shape[-1]).float(), self.weight.float())


class MoE(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.gate = Router(c)
        self.experts = nn.ModuleList(MLP(c, c.moe_intermediate_size) for _ in range(c.n_routed_experts))
        self.shared_experts = MLP(c, c.moe_intermediate_size * c.n_shared_experts)

    def forward(self, x):
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        s = self.gate(x).sigmoid()
        idx = torch.topk(s + self.gate.e_score_correction_bias, self.c.num_experts_per_tok, -1)[1]
        w = s.gather(1, idx)
        w = w / (w.sum(-1, keepdim=True) + 1e-20) * self.c.routed_scaling_factor
        out = torch.zeros_like(flat, dtype=torch.float32)
        for e, expert in enumerate(self.experts):
            rows, slots = torch.nonzero(idx == e, as_tuple=True)
            if rows.numel():
                out = out.index_add(0, rows, (expert(flat[rows]) * w[rows, slots, None]).float())
        return out.to(x.dtype).view(shape) + self.shared_experts(x)


class Layer(nn.Module):
    def __init__(self, c, i):
        super().__init__()
        self.self_attn = Attention(c)
        self.mlp = MoE(c) if i >= c.first_k_dense_replace else MLP(c, c.intermediate_size)
        self.input_layernorm = Glm4MoeRMSNorm(c.hidden_size, c.rms_norm_eps)
        self.post_attention_layernorm = Glm4MoeRMSNorm(c.hidden_size, c.rms_norm_eps)

    def forward(self, x, cos, sin):
        h = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return h + self.mlp(self.post_attention_layernorm(h))


def _init(module, std):
    for name, p in module.named_parameters():
        if p.dim() == 1:
            nn.init.ones_(p) if name.endswith("weight") else nn.init.zeros_(p)
        else:
            nn.init.normal_(p, std=std)


class _Pretrained(nn.Module):
    prefix = ""

    def save_pretrained(self, directory, safe_serialization=True):
        os.makedirs(directory, exist_ok=True)
        self.config.save_pretrained(directory)
        st_io.write_safetensors(os.path.join(directory, "model.safetensors"),
                                {k: v for k, v in self.state_dict().items()})

    @classmethod
    def from_pretrained(cls, directory, dtype=torch.float32, output_loading_info=False, **_):
        config = Glm4MoeConfig.from_json_file(os.path.join(directory, "config.json"))
        model = cls(config)
        tensors, _ = st_io.read_safetensors(os.path.join(directory, "model.safetensors"))
        own = model.state_dict()
        unexpected = sorted(k for k in tensors if k not in own)
        missing = sorted(k for k in own if k not in tensors)
        model.load_state_dict({k: v.float() for k, v in tensors.items() if k in own}, strict=False)
        model = model.to(dtype)
        info = {"missing_keys": missing, "unexpected_keys": unexpected, "mismatched_keys": []}
        return (model, info) if output_loading_info else model


class Glm4MoeModel(_Pretrained):
    def __init__(self, config):
        super().__init__()
        self.config = config
        c = config
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList(Layer(c, i) for i in range(c.num_hidden_layers))
        self.norm = Glm4MoeRMSNorm(c.hidden_size, c.rms_norm_eps)
        self.rotary_emb = Glm4MoeRotaryEmbedding(c)
        _init(self, c.initializer_range)

    def forward(self, input_ids=None, inputs_embeds=None, use_cache=None, **_):
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        cos, sin = self.rotary_emb(x.shape[1], x.device)
        for layer in self.layers:
            x = layer(x, cos, sin)
        return SimpleNamespace(last_hidden_state=self.norm(x))


class Glm4MoeForCausalLM(_Pretrained):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.model = Glm4MoeModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        nn.init.normal_(self.lm_head.weight, std=config.initializer_range)

    def forward(self, input_ids=None, **kw):
        h = self.model(input_ids=input_ids).last_hidden_state
        return SimpleNamespace(logits=self.lm_head(h))
