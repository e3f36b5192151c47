"""tandem-tiny built from transformers modules: a Glm4MoeForCausalLM plus a NextN/MTP head.

The MTP decoder layer is a transformers Glm4MoeModel with one MoE layer
(first_k_dense_replace=0): its layers.0 is decoder layer N of the checkpoint and its
final norm is shared_head.norm. Calling it with inputs_embeds gives the causal mask,
RoPE positions 0..T-1 and the MoE exactly as transformers computes them for the main
layers. Its own embed_tokens is never used (the head shares the main model's
embedding and lm_head, GLM-4.6 layout) and is not exported.
"""

import json
import os
import tempfile

import torch
from torch import nn

import transformers
from transformers import Glm4MoeConfig, Glm4MoeForCausalLM, Glm4MoeModel
from transformers.models.glm4_moe.modeling_glm4_moe import Glm4MoeRMSNorm, Glm4MoeRotaryEmbedding

import st_io

kRopeTheta = 10000.0
kPartialRotaryFactor = 0.5

# Dimensions of tandem-tiny; see MODEL_CARD.md for the parameter count.
kArch = dict(
    hidden_size=256,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=64,
    intermediate_size=512,
    moe_intermediate_size=128,
    n_routed_experts=16,
    num_experts_per_tok=2,
    n_shared_experts=1,
    first_k_dense_replace=1,
    routed_scaling_factor=2.5,
    n_group=1,
    topk_group=1,
    norm_topk_prob=True,
    use_qk_norm=True,
    attention_bias=True,
    attention_dropout=0.0,
    max_position_embeddings=2048,
    rms_norm_eps=1e-5,
    tie_word_embeddings=False,
    hidden_act="silu",
    initializer_range=0.02,
)


def make_config(vocab_size, eos_token_ids, pad_token_id, **overrides):
    kwargs = dict(kArch, vocab_size=vocab_size, eos_token_id=list(eos_token_ids),
                  pad_token_id=pad_token_id, num_nextn_predict_layers=0)
    kwargs.update(overrides)
    rope_parameters = {"rope_type": "default", "rope_theta": kRopeTheta,
                       "partial_rotary_factor": kPartialRotaryFactor}
    # transformers 5.x keeps rope settings in rope_parameters; 4.x takes them top level.
    attempts = [dict(rope_parameters=rope_parameters, partial_rotary_factor=kPartialRotaryFactor),
                dict(rope_parameters=rope_parameters),
                dict(rope_theta=kRopeTheta, partial_rotary_factor=kPartialRotaryFactor)]
    errors = []
    for rope in attempts:
        for drop_head_dim in (False, True):
            args = dict(kwargs, **rope)
            if drop_head_dim:
                args.pop("head_dim")
            try:
                config = Glm4MoeConfig(**args)
            except (TypeError, ValueError) as err:
                errors.append(f"{sorted(rope)} head_dim={not drop_head_dim}: {err}")
                continue
            if getattr(config, "head_dim", None) != kwargs["head_dim"]:
                config.head_dim = kwargs["head_dim"]
            try:
                check_rotary(Glm4MoeRotaryEmbedding(config), config)
            except RuntimeError as err:
                errors.append(f"{sorted(rope)}: {err}")
                continue
            return config
    raise RuntimeError("make_config: Glm4MoeConfig rejected every argument set: " + "; ".join(errors))


def check_rotary(model, config):
    """Fails unless the model's RoPE is theta 10000 over the first half of head_dim."""
    rd = int(config.head_dim * kPartialRotaryFactor)
    expected = 1.0 / (kRopeTheta ** (torch.arange(0, rd, 2, dtype=torch.float32) / rd))
    rotary = getattr(model, "rotary_emb", model)  # a model or its rotary module
    inv_freq = rotary.inv_freq.detach().float().cpu()
    if inv_freq.shape != expected.shape or not torch.allclose(inv_freq, expected):
        raise RuntimeError(f"tiny_model: rotary inv_freq {inv_freq.tolist()} != expected "
                           f"{expected.tolist()} (rope settings not taken by Glm4MoeConfig)")


def routers(module):
    """Modules holding an e_score_correction_bias buffer (one per MoE layer)."""
    return [(name, m) for name, m in module.named_modules()
            if "e_score_correction_bias" in dict(m.named_buffers(recurse=False))]


def use_eager_experts(model):
    """transformers 5.x can route experts through torch._grouped_mm; the tiny model trains
    in fp32 master weights under autocast, so keep the plain per-expert loop. Returns the
    implementation in force (None on versions without the switch)."""
    setter = getattr(model, "set_experts_implementation", None)
    if callable(setter):
        try:
            setter("eager")
        except Exception:  # noqa: BLE001 - older signatures; fall back to the attribute
            pass
    try:
        model.config._experts_implementation = "eager"
    except Exception:  # noqa: BLE001 - attribute absent on transformers 4.x
        pass
    return getattr(model.config, "_experts_implementation", None)


def init_weights(module, std):
    """DeepSeek/HF-style init for the modules created outside a PreTrainedModel."""
    for name, p in module.named_parameters():
        if p.dim() == 1:
            nn.init.ones_(p) if name.endswith("weight") else nn.init.zeros_(p)
        else:
            nn.init.normal_(p, mean=0.0, std=std)


class TandemTiny(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        hidden = config.hidden_size
        self.lm = Glm4MoeForCausalLM(config)
        mtp_config = make_config(config.vocab_size, config.eos_token_id, config.pad_token_id,
                                 num_hidden_layers=1, first_k_dense_replace=0)
        self.enorm = Glm4MoeRMSNorm(hidden, eps=config.rms_norm_eps)
        self.hnorm = Glm4MoeRMSNorm(hidden, eps=config.rms_norm_eps)
        self.eh_proj = nn.Linear(2 * hidden, hidden, bias=False)
        self.mtp_block = Glm4MoeModel(mtp_config)
        init_weights(self.eh_proj, config.initializer_range)
        check_rotary(self.lm.model, config)
        check_rotary(self.mtp_block, mtp_config)
        self.experts_implementation = [use_eager_experts(self.lm), use_eager_experts(self.mtp_block)]

    def trainable_parameters(self):
        unused = self.mtp_block.embed_tokens.weight
        return [p for p in self.parameters() if p is not unused]

    def forward_main(self, ids):
        """ids [B, T] -> (logits [B, T, V], post-final-norm hidden [B, T, H])."""
        hidden = self.lm.model(input_ids=ids, use_cache=False).last_hidden_state
        return self.lm.lm_head(hidden), hidden

    def forward_mtp(self, hidden, next_ids):
        """Slot i (position i) pairs hidden[:, i] with next_ids[:, i]; predicts the token
        after next_ids[:, i]. Returns (logits [B, T, V], h' = shared_head.norm output)."""
        e = self.lm.model.embed_tokens(next_ids)
        z = self.eh_proj(torch.cat([self.enorm(e), self.hnorm(hidden)], dim=-1))
        h_out = self.mtp_block(inputs_embeds=z, use_cache=False).last_hidden_state
        return self.lm.lm_head(h_out), h_out


# ---------------------------------------------------------------------------------------
# Checkpoint export: per-expert names, layer-N tensors under model.layers.{N}.


def _save_and_read(module, directory):
    """save_pretrained + read back: the tensor names transformers writes on disk."""
    module.save_pretrained(directory)  # safetensors is the default in 4.x and 5.x
    files = sorted(f for f in os.listdir(directory) if f.endswith(".safetensors"))
    tensors = {}
    for name in files:
        part, _ = st_io.read_safetensors(os.path.join(directory, name))
        tensors.update(part)
    return tensors


def unfuse_experts(tensors, moe_intermediate_size, hidden_size, log):
    """Splits fused 3-D expert tensors (if transformers wrote any) into per-expert names."""
    out = {}
    for name, t in tensors.items():
        if name.endswith("mlp.experts.gate_up_proj"):
            prefix = name[: -len("gate_up_proj")]
            if t.shape[1:] == (2 * moe_intermediate_size, hidden_size):
                gate, up = t[:, :moe_intermediate_size], t[:, moe_intermediate_size:]
            elif t.shape[1:] == (hidden_size, 2 * moe_intermediate_size):
                gate = t[:, :, :moe_intermediate_size].transpose(1, 2)
                up = t[:, :, moe_intermediate_size:].transpose(1, 2)
            else:
                raise RuntimeError(f"unfuse_experts: {name}: unexpected shape {tuple(t.shape)}")
            for e in range(t.shape[0]):
                out[f"{prefix}{e}.gate_proj.weight"] = gate[e].contiguous()
                out[f"{prefix}{e}.up_proj.weight"] = up[e].contiguous()
            log(f"export: split fused {name} {tuple(t.shape)} into per-expert gate/up")
        elif name.endswith("mlp.experts.down_proj"):
            prefix = name[: -len("down_proj")]
            if t.shape[1:] == (hidden_size, moe_intermediate_size):
                down = t
            elif t.shape[1:] == (moe_intermediate_size, hidden_size):
                down = t.transpose(1, 2)
            else:
                raise RuntimeError(f"unfuse_experts: {name}: unexpected shape {tuple(t.shape)}")
            for e in range(t.shape[0]):
                out[f"{prefix}{e}.down_proj.weight"] = down[e].contiguous()
            log(f"export: split fused {name} {tuple(t.shape)} into per-expert down")
        else:
            out[name] = t
    return out


def to_checkpoint_dtypes(tensors):
    """BF16 everywhere except the router selection bias, which GLM keeps in F32."""
    return {name: (t.float() if name.endswith("e_score_correction_bias") else t.to(torch.bfloat16))
            for name, t in tensors.items()}


def export_checkpoint(model, out_dir, log):
    """Writes config.json and a single model.safetensors (main model + layer N)."""
    config = model.config
    n = config.num_hidden_layers
    with tempfile.TemporaryDirectory() as tmp:
        main = _save_and_read(model.lm, os.path.join(tmp, "main"))
        with open(os.path.join(tmp, "main", "config.json"), encoding="utf-8") as f:
            config_json = json.load(f)
        block = _save_and_read(model.mtp_block, os.path.join(tmp, "mtp"))
    log(f"export: save_pretrained wrote {len(main)} main tensors, e.g. "
        f"{sorted(k for k in main if '.experts.' in k)[:2]}")
    main = unfuse_experts(main, config.moe_intermediate_size, config.hidden_size, log)
    block = unfuse_experts(block, config.moe_intermediate_size, config.hidden_size, log)

    tensors = dict(main)
    prefix = f"model.layers.{n}."
    for name, t in block.items():
        short = name[len("model."):] if name.startswith("model.") else name
        if short == "embed_tokens.weight":
            continue  # shared with the main model (GLM-4.6 layout)
        if short == "norm.weight":
            tensors[prefix + "shared_head.norm.weight"] = t
        elif short.startswith("layers.0."):
            tensors[prefix + short[len("layers.0."):]] = t
        else:
            raise RuntimeError(f"export: unexpected MTP block tensor {name}")
    tensors[prefix + "enorm.weight"] = model.enorm.weight.detach()
    tensors[prefix + "hnorm.weight"] = model.hnorm.weight.detach()
    tensors[prefix + "eh_proj.weight"] = model.eh_proj.weight.detach()
    tensors = to_checkpoint_dtypes(tensors)

    expected = expected_tensor_names(config)
    if set(tensors) != expected:
        raise RuntimeError(f"export: tensor names differ from the GLM layout: missing "
                           f"{sorted(expected - set(tensors))[:8]}, unexpected "
                           f"{sorted(set(tensors) - expected)[:8]}")

    config_json["num_nextn_predict_layers"] = 1
    config_json["head_dim"] = config.head_dim
    # Also the top-level rope keys of the published GLM configs (model-spec.md section 1).
    config_json.setdefault("rope_theta", kRopeTheta)
    config_json.setdefault("partial_rotary_factor", kPartialRotaryFactor)
    config_json["architectures"] = ["Glm4MoeForCausalLM"]
    for key in ("dtype", "torch_dtype"):
        if key in config_json:
            config_json[key] = "bfloat16"
    if "dtype" not in config_json and "torch_dtype" not in config_json:
        config_json["torch_dtype"] = "bfloat16"
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config_json, f, indent=2, sort_keys=True)
        f.write("\n")
    st_io.write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors,
                            {"format": "pt"})
    return tensors


def expected_tensor_names(config):
    names = {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"}
    n = config.num_hidden_layers
    for layer in range(n + 1):
        p = f"model.layers.{layer}."
        names |= {p + "input_layernorm.weight", p + "post_attention_layernorm.weight"}
        for proj in ("q", "k", "v"):
            names |= {p + f"self_attn.{proj}_proj.weight", p + f"self_attn.{proj}_proj.bias"}
        names |= {p + "self_attn.o_proj.weight", p + "self_attn.q_norm.weight",
                  p + "self_attn.k_norm.weight"}
        if layer < config.first_k_dense_replace:
            names |= {p + f"mlp.{proj}_proj.weight" for proj in ("gate", "up", "down")}
            continue
        names |= {p + "mlp.gate.weight", p + "mlp.gate.e_score_correction_bias"}
        names |= {p + f"mlp.shared_experts.{proj}_proj.weight" for proj in ("gate", "up", "down")}
        for e in range(config.n_routed_experts):
            names |= {p + f"mlp.experts.{e}.{proj}_proj.weight" for proj in ("gate", "up", "down")}
    p = f"model.layers.{n}."
    names |= {p + "enorm.weight", p + "hnorm.weight", p + "eh_proj.weight",
              p + "shared_head.norm.weight"}
    return names


# ---------------------------------------------------------------------------------------
# Loading the exported checkpoint back into transformers modules.


def _from_pretrained(cls, directory, dtype, **kwargs):
    try:
        return cls.from_pretrained(directory, dtype=dtype, **kwargs)
    except TypeError:  # transformers 4.x spells it torch_dtype
        return cls.from_pretrained(directory, torch_dtype=dtype, **kwargs)


def load_main(checkpoint_dir, dtype=torch.float32):
    """transformers' own loader on the exported directory (layer N is skipped)."""
    model, info = _from_pretrained(Glm4MoeForCausalLM, checkpoint_dir, dtype,
                                   output_loading_info=True)
    use_eager_experts(model)
    return model.eval(), info


def load_mtp(checkpoint_dir, main_model, device, dtype=torch.float32):
    """Builds the MTP head of a TandemTiny-like object from layer N of the checkpoint."""
    with open(os.path.join(checkpoint_dir, "config.json"), encoding="utf-8") as f:
        config_json = json.load(f)
    tensors, _ = st_io.read_safetensors(os.path.join(checkpoint_dir, "model.safetensors"))
    n = config_json["num_hidden_layers"]
    prefix = f"model.layers.{n}."
    config = main_model.config
    mtp_config = make_config(config.vocab_size, config.eos_token_id, config.pad_token_id,
                             num_hidden_layers=1, first_k_dense_replace=0)
    block_tensors = {"embed_tokens.weight": torch.zeros(config.vocab_size, config.hidden_size,
                                                        dtype=torch.bfloat16)}
    for name, t in tensors.items():
        if not name.startswith(prefix):
            continue
        short = name[len(prefix):]
        if short == "shared_head.norm.weight":
            block_tensors["norm.weight"] = t
        elif short.split(".")[0] not in ("enorm", "hnorm", "eh_proj", "shared_head",
                                         "embed_tokens"):
            block_tensors["layers.0." + short] = t
    with tempfile.TemporaryDirectory() as tmp:
        mtp_config.save_pretrained(tmp)
        st_io.write_safetensors(os.path.join(tmp, "model.safetensors"), block_tensors,
                                {"format": "pt"})
        block, info = _from_pretrained(Glm4MoeModel, tmp, dtype, output_loading_info=True)
        use_eager_experts(block)
    problems = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys",
                                                        "mismatched_keys") and v}
    if problems:
        raise RuntimeError(f"load_mtp: transformers did not load layer {n} cleanly: {problems}")
    head = MtpHead(main_model, block, config)
    with torch.no_grad():
        head.enorm.weight.copy_(tensors[prefix + "enorm.weight"])
        head.hnorm.weight.copy_(tensors[prefix + "hnorm.weight"])
        head.eh_proj.weight.copy_(tensors[prefix + "eh_proj.weight"])
        bias = tensors[prefix + "mlp.gate.e_score_correction_bias"].float()
        for _, router in routers(block):
            router.e_score_correction_bias.copy_(bias)
    return head.to(device=device, dtype=dtype).eval()


class MtpHead(nn.Module):
    """The NextN layer around a loaded main model (for evaluation)."""

    def __init__(self, main_model, block, config):
        super().__init__()
        hidden = config.hidden_size
        self.main = [main_model]  # not a submodule: no second copy of its weights
        self.enorm = Glm4MoeRMSNorm(hidden, eps=config.rms_norm_eps)
        self.hnorm = Glm4MoeRMSNorm(hidden, eps=config.rms_norm_eps)
        self.eh_proj = nn.Linear(2 * hidden, hidden, bias=False)
        self.block = block

    def forward(self, hidden, next_ids):
        main = self.main[0]
        e = main.model.embed_tokens(next_ids)
        z = self.eh_proj(torch.cat([self.enorm(e), self.hnorm(hidden)], dim=-1))
        h_out = self.block(inputs_embeds=z, use_cache=False).last_hidden_state
        return main.lm_head(h_out), h_out


def transformers_version():
    return transformers.__version__
