#!/usr/bin/env python3
"""Trains tandem-tiny (Glm4MoeForCausalLM + NextN/MTP layer) and exports the checkpoint.

  python3 tools/train_tiny/train.py --data .train_data --model-dir models/tandem-tiny

Needs tokenizer.json in --model-dir (train_tokenizer.py). Recipe:
  * documents (plain + chat) shuffled and joined with <|endoftext|>; random windows of
    --seq-len tokens, --batch windows a step; AdamW, bf16 autocast, warmup + cosine.
  * loss = CE(main logits, t+1) + mtp_weight * CE(MTP logits, t+2), DeepSeek-V3 style:
    MTP slot i pairs the main model's post-final-norm hidden h_i (not detached, so the
    trunk also learns from the MTP loss) with embed(t_{i+1}) at position i.
  * MoE load balance without an auxiliary loss (DeepSeek-V3): after every step each
    router's e_score_correction_bias += gamma * sign(mean_load - load).
  * the step count comes from the measured step time, so the loop fits --time-budget;
    held-out loss is measured --evals times and the best state is exported.
  * export: per-expert safetensors names, layer-N tensors under model.layers.{N}., BF16
    with the F32 router bias; transformers reloads it and must reproduce the logits.
"""

import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402
import tiny_model  # noqa: E402

kStart = time.time()


def log(message):
    print(f"[train {time.time() - kStart:7.1f}s] {message}", flush=True)


def read_texts(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def encode_all(tokenizer, texts):
    return [e.ids for e in tokenizer.encode_batch(texts)]


def build_stream(docs, eot, seed):
    """Documents in a seeded order, each followed by <|endoftext|> -> int64 [N]."""
    order = torch.randperm(len(docs), generator=torch.Generator().manual_seed(seed)).tolist()
    flat = []
    for index in order:
        flat.extend(docs[index])
        flat.append(eot)
    return torch.tensor(flat, dtype=torch.long)


class LoadBalancer:
    """Counts tokens per routed expert through forward hooks on the routers and nudges
    e_score_correction_bias towards equal load after every optimizer step."""

    def __init__(self, model, top_k, gamma):
        self.top_k = top_k
        self.gamma = gamma
        self.active = True
        self.routers = tiny_model.routers(model)
        self.counts = [None] * len(self.routers)
        self.window = [None] * len(self.routers)
        for index, (_, router) in enumerate(self.routers):
            router.register_forward_hook(self._hook(index))

    def _hook(self, index):
        def hook(module, inputs, output):
            if not self.active:
                return
            with torch.no_grad():
                n = module.e_score_correction_bias.shape[0]
                parts = output if isinstance(output, (tuple, list)) else (output,)
                picked = [t for t in parts if torch.is_tensor(t) and not torch.is_floating_point(t)]
                if picked:  # transformers versions whose router returns the chosen experts
                    chosen = picked[0]
                else:  # router logits [tokens, E]: select as Glm4MoeMoE does (n_group = 1)
                    logits = next(t for t in parts if torch.is_tensor(t) and t.shape[-1] == n)
                    scores = logits.float().sigmoid() + module.e_score_correction_bias
                    chosen = torch.topk(scores, self.top_k, dim=-1)[1]
                counts = torch.bincount(chosen.reshape(-1), minlength=n).float()
                self.counts[index] = counts if self.counts[index] is None else self.counts[index] + counts
        return hook

    @torch.no_grad()
    def update(self):
        for index, (_, router) in enumerate(self.routers):
            load = self.counts[index]
            if load is None:
                continue
            router.e_score_correction_bias += self.gamma * torch.sign(load.mean() - load)
            self.window[index] = load if self.window[index] is None else self.window[index] + load
            self.counts[index] = None

    def summary(self):
        """max/mean load per router since the last call (1.0 = perfectly balanced)."""
        out = {}
        for index, (name, _) in enumerate(self.routers):
            load = self.window[index]
            if load is not None:
                out[name] = round(float(load.max() / load.mean()), 3)
            self.window[index] = None
        return out


def losses(model, x):
    """x [B, L] -> (main CE, MTP CE, main top-1 acc, MTP top-1 acc)."""
    logits, hidden = model.forward_main(x)
    main = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
    # MTP slot i (i = 0..L-3): hidden h_i, token t_{i+1}, label t_{i+2}.
    mtp_logits, _ = model.forward_mtp(hidden[:, :-2], x[:, 1:-1])
    mtp = F.cross_entropy(mtp_logits.float().reshape(-1, mtp_logits.shape[-1]), x[:, 2:].reshape(-1))
    with torch.no_grad():
        main_acc = (logits[:, :-1].argmax(-1) == x[:, 1:]).float().mean()
        mtp_acc = (mtp_logits.argmax(-1) == x[:, 2:]).float().mean()
    return main, mtp, main_acc, mtp_acc


@torch.no_grad()
def heldout_metrics(model, windows, batch, autocast):
    model.eval()
    totals = torch.zeros(4, dtype=torch.float64)
    for start in range(0, windows.shape[0], batch):
        x = windows[start:start + batch]
        with autocast():
            values = losses(model, x)
        totals += torch.tensor([float(v) for v in values], dtype=torch.float64) * x.shape[0]
    model.train()
    main, mtp, main_acc, mtp_acc = (totals / windows.shape[0]).tolist()
    return {"main_loss": main, "mtp_loss": mtp, "main_acc": main_acc, "mtp_acc": mtp_acc}


def learning_rate(step, total, warmup, peak, floor_fraction):
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor_fraction + (1 - floor_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))


def round_to_bf16(model):
    """Copy of the weights as the checkpoint stores them (BF16; router bias stays F32)."""
    state = {}
    for name, t in model.state_dict().items():
        keep = name.endswith("e_score_correction_bias") or not torch.is_floating_point(t)
        state[name] = t.clone() if keep else t.to(torch.bfloat16).to(t.dtype)
    return state


@torch.no_grad()
def verify_export(model, out_dir, probe, device):
    """transformers reloads the exported files; logits must match the in-memory model
    with BF16-rounded weights (both computed in fp32 with TF32 off)."""
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(round_to_bf16(model))
    model.eval()
    want_logits, want_hidden = model.forward_main(probe)
    want_mtp, _ = model.forward_mtp(want_hidden[:, :-1], probe[:, 1:])
    model.load_state_dict(saved)
    model.train()

    main, info = tiny_model.load_main(out_dir)
    main = main.to(device)
    n = model.config.num_hidden_layers
    missing = [k for k in info.get("missing_keys", []) if not k.startswith(f"model.layers.{n}.")]
    unexpected = sorted(info.get("unexpected_keys", []))
    log(f"reload: transformers missing keys outside layer {n}: {missing}; "
        f"unexpected keys: {len(unexpected)} (first {unexpected[:3]})")
    if missing or any(not k.startswith(f"model.layers.{n}.") for k in unexpected):
        raise RuntimeError("reload: transformers did not load the main model cleanly")
    got_logits = main(input_ids=probe).logits
    mtp = tiny_model.load_mtp(out_dir, main, device)
    got_hidden = main.model(input_ids=probe, use_cache=False).last_hidden_state
    got_mtp, _ = mtp(got_hidden[:, :-1], probe[:, 1:])
    diff_main = float((got_logits - want_logits).abs().max())
    diff_mtp = float((got_mtp - want_mtp).abs().max())
    log(f"reload: max |logit diff| main {diff_main:.3g}, mtp {diff_mtp:.3g}")
    torch.backends.cuda.matmul.allow_tf32 = tf32
    if diff_main > 1e-3 or diff_mtp > 1e-3:
        raise RuntimeError("reload: reloaded checkpoint does not reproduce the trained model")
    return {"max_abs_logit_diff_main": diff_main, "max_abs_logit_diff_mtp": diff_mtp,
            "unexpected_keys_on_reload": len(unexpected)}


def check_with_safetensors_library(path, tensors):
    try:
        from safetensors import safe_open
    except ImportError:
        return "safetensors not installed"
    with safe_open(path, framework="pt") as f:
        names = set(f.keys())
        if names != set(tensors):
            raise RuntimeError("safetensors library sees different tensor names")
        for name in names:
            t = f.get_tensor(name)
            want = tensors[name].detach().cpu()
            if t.dtype != want.dtype or not torch.equal(t, want):
                raise RuntimeError(f"safetensors library reads {name} differently")
    return "ok"


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=".train_data")
    parser.add_argument("--model-dir", default="models/tandem-tiny")
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--min-lr-fraction", type=float, default=0.05)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--mtp-weight", type=float, default=0.5)
    parser.add_argument("--bias-gamma", type=float, default=1e-3)
    parser.add_argument("--max-epochs", type=float, default=16.0)
    parser.add_argument("--max-steps", type=int, default=0, help="hard cap (0: none)")
    parser.add_argument("--time-budget", type=float, default=240.0,
                        help="seconds for the training loop, evaluations included")
    parser.add_argument("--evals", type=int, default=10)
    parser.add_argument("--eval-windows", type=int, default=256,
                        help="held-out windows scored at each evaluation (at most)")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

        def autocast():
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    else:
        import contextlib

        def autocast():
            return contextlib.nullcontext()

    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_file(os.path.join(args.model_dir, "tokenizer.json"))
    eot = tokenizer.token_to_id("<|endoftext|>")
    stop_ids = [eot, tokenizer.token_to_id("<|user|>"), tokenizer.token_to_id("<|observation|>")]
    vocab = (tokenizer.get_vocab_size() + 63) // 64 * 64

    train_docs = encode_all(tokenizer, read_texts(os.path.join(args.data, "train.jsonl")))
    chat_docs = encode_all(tokenizer, read_texts(os.path.join(args.data, "chat_train.jsonl")))
    heldout_docs = encode_all(tokenizer, read_texts(os.path.join(args.data, "heldout.jsonl")))
    stream = build_stream(train_docs + chat_docs, eot, args.seed).to(device)
    heldout = build_stream(heldout_docs, eot, args.seed)
    n_windows = min(args.eval_windows, heldout.shape[0] // args.seq_len)
    heldout_windows = heldout[: n_windows * args.seq_len].view(n_windows, args.seq_len).to(device)
    log(f"tokens: train {stream.numel()} (chat {sum(len(d) + 1 for d in chat_docs)}), "
        f"held-out {heldout.numel()} in {n_windows} windows; vocab {tokenizer.get_vocab_size()} "
        f"-> embedding rows {vocab}; stop ids {stop_ids}")

    config = tiny_model.make_config(vocab, stop_ids, eot)
    model = tiny_model.TandemTiny(config).to(device)
    model.train()
    params = model.trainable_parameters()
    n_params = sum(p.numel() for p in params)
    log(f"transformers {tiny_model.transformers_version()}, torch {torch.__version__}, device "
        f"{torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}; experts "
        f"implementation {model.experts_implementation}; {n_params} parameters "
        f"({n_params * 2 / 2**20:.1f} MiB in BF16)")

    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    fused = {"fused": True} if device.type == "cuda" else {}
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=args.lr, betas=(0.9, 0.95), eps=1e-8, **fused)
    balancer = LoadBalancer(model, config.num_experts_per_tok, args.bias_gamma)
    log(f"load balancing over {len(balancer.routers)} routers: {[n for n, _ in balancer.routers]}")

    tokens_per_step = args.batch * args.seq_len
    steps_per_epoch = max(1, stream.numel() // tokens_per_step)
    total_steps = max(args.warmup + 1, int(args.max_epochs * steps_per_epoch))
    if args.max_steps:
        total_steps = min(total_steps, args.max_steps)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    offsets_range = torch.arange(args.seq_len, device=device)
    history = []
    best = None
    eval_every = max(1, total_steps // args.evals)
    loop_start = time.time()
    timing_steps = (3, 13)
    step = 0
    while step < total_steps:
        if step == timing_steps[0]:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.time()
        if step == timing_steps[1]:
            if device.type == "cuda":
                torch.cuda.synchronize()
            step_time = (time.time() - t0) / (timing_steps[1] - timing_steps[0])
            remaining = args.time_budget - (time.time() - loop_start)
            affordable = step + int(remaining * 0.9 / step_time)
            total_steps = max(step + 1, min(total_steps, affordable))
            eval_every = max(1, total_steps // args.evals)
            log(f"step time {step_time * 1000:.1f} ms = {tokens_per_step / step_time:,.0f} tokens/s; "
                f"{steps_per_epoch} steps/epoch; training {total_steps} steps "
                f"({total_steps / steps_per_epoch:.1f} epochs), held-out eval every {eval_every}")

        lr = learning_rate(step, total_steps, args.warmup, args.lr, args.min_lr_fraction)
        for group in optimizer.param_groups:
            group["lr"] = lr
        starts = torch.randint(0, stream.numel() - args.seq_len, (args.batch,), device=device,
                               generator=generator)
        x = stream[starts[:, None] + offsets_range[None, :]]
        with autocast():
            main_loss, mtp_loss, main_acc, mtp_acc = losses(model, x)
            loss = main_loss + args.mtp_weight * mtp_loss
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        balancer.update()
        step += 1

        if step % eval_every == 0 or step == total_steps:
            balancer.active = False
            metrics = heldout_metrics(model, heldout_windows, args.batch, autocast)
            balancer.active = True
            record = {"step": step, "epoch": round(step / steps_per_epoch, 2), "lr": lr,
                      "train_main_loss": float(main_loss.detach()), "train_mtp_loss": float(mtp_loss.detach()),
                      "train_mtp_acc": float(mtp_acc), "grad_norm": float(grad_norm.detach()),
                      "heldout": metrics, "max_over_mean_load": balancer.summary(),
                      "seconds": round(time.time() - loop_start, 1)}
            history.append(record)
            score = metrics["main_loss"] + metrics["mtp_loss"]
            marker = ""
            if best is None or score < best[0]:
                best = (score, step, {k: v.detach().to("cpu", copy=True)
                                      for k, v in model.state_dict().items()})
                marker = " *"
            log(f"step {step}/{total_steps} lr {lr:.2e} train main {float(main_loss.detach()):.3f} "
                f"mtp {float(mtp_loss.detach()):.3f} | held-out main {metrics['main_loss']:.3f} "
                f"(ppl {math.exp(metrics['main_loss']):.1f}) mtp {metrics['mtp_loss']:.3f} "
                f"mtp acc {metrics['mtp_acc']:.3f} | load max/mean "
                f"{list(record['max_over_mean_load'].values())}{marker}")

    train_seconds = time.time() - loop_start
    log(f"training loop {train_seconds:.0f} s; best held-out at step {best[1]}")
    model.load_state_dict(best[2])

    tensors = tiny_model.export_checkpoint(model, args.model_dir, log)
    size = os.path.getsize(os.path.join(args.model_dir, "model.safetensors"))
    log(f"export: {len(tensors)} tensors, model.safetensors {size / 2**20:.2f} MiB")
    library = check_with_safetensors_library(os.path.join(args.model_dir, "model.safetensors"),
                                             tensors)
    log(f"export: safetensors library check: {library}")
    generation = {"eos_token_id": stop_ids, "pad_token_id": eot,
                  "transformers_version": tiny_model.transformers_version()}
    with open(os.path.join(args.model_dir, "generation_config.json"), "w", encoding="utf-8") as f:
        json.dump(generation, f, indent=2)
        f.write("\n")
    with open(os.path.join(args.model_dir, "config.json"), encoding="utf-8") as f:
        log("config.json: " + json.dumps(json.load(f), sort_keys=True))

    probe = heldout_windows[:2, :128]
    reload = verify_export(model, args.model_dir, probe, device)
    report = {
        "args": vars(args),
        "transformers": tiny_model.transformers_version(),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "parameters": n_params,
        "train_tokens": int(stream.numel()),
        "heldout_tokens": int(heldout.numel()),
        "steps": total_steps,
        "steps_per_epoch": steps_per_epoch,
        "tokens_per_step": tokens_per_step,
        "train_seconds": round(train_seconds, 1),
        "best_step": best[1],
        "history": history,
        "reload_check": reload,
        "safetensors_library_check": library,
    }
    with open(os.path.join(args.model_dir, "training_log.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    log("done")


if __name__ == "__main__":
    main()
