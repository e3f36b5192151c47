#!/usr/bin/env python3
"""Builds the model fixtures under tests/fixtures/models/ (format: tests/fixtures/models/README.md).

Tiny random Glm4MoeForCausalLM checkpoints (BF16, with a NextN layer), three FP8 variants of glm-a and a
Qwen3-Next MTP block, each with float32 reference outputs computed by Hugging Face transformers. Needs PyTorch,
transformers (5.x), safetensors; no network. Deterministic (fixed seeds, CPU, deterministic algorithms).

    cd tools && python3 make_fixtures.py --out ../tests/fixtures/models

Every self-check is printed; the exit status is 1 if any failed (the files are still written).
"""
import argparse
import os
import sys
import tempfile
import traceback

import torch

from fixtures import common, fp8, glm, qwen3next

ALL = ["glm-a", "glm-b", "glm-v", *fp8.VARIANTS, qwen3next.NAME]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (one sub-folder per fixture)")
    ap.add_argument("--only", default="", help=f"comma-separated subset of {ALL}")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(","))) or set(ALL)
    unknown = only - set(ALL)
    if unknown:
        ap.error(f"unknown fixtures {sorted(unknown)}")

    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.set_num_threads(4)
    torch.set_grad_enabled(False)
    common.log(f"versions: {common.versions()}")
    os.makedirs(args.out, exist_ok=True)

    with tempfile.TemporaryDirectory() as tmp:
        for name in ("glm-a", "glm-b", "glm-v"):
            need_fp8 = name == "glm-a" and any(v in only for v in fp8.VARIANTS)
            if name not in only and not need_fp8:
                continue
            try:
                base = glm.make(name, args.out, tmp)
                if need_fp8:
                    for v in fp8.VARIANTS:
                        if v in only:
                            try:
                                fp8.make_variant(v, base, args.out)
                            except Exception:  # noqa: BLE001 - report and continue with the other fixtures
                                traceback.print_exc()
                                common.FAILURES.append(f"{v}: exception")
            except Exception:  # noqa: BLE001
                traceback.print_exc()
                common.FAILURES.append(f"{name}: exception")
        if qwen3next.NAME in only:
            try:
                qwen3next.make(args.out, tmp)
            except Exception:  # noqa: BLE001
                traceback.print_exc()
                common.FAILURES.append(f"{qwen3next.NAME}: exception")

    total = 0
    common.log("\nsizes:")
    for d in sorted(os.listdir(args.out)):
        p = os.path.join(args.out, d)
        if os.path.isdir(p):
            s = common.dir_size(p)
            total += s
            common.log(f"  {d:24s} {s / 1e6:6.2f} MB  {sorted(os.listdir(p))}")
    common.log(f"  total {total / 1e6:.2f} MB")
    return common.exit_code()


if __name__ == "__main__":
    sys.exit(main())
