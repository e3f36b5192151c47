#!/usr/bin/env bash
# Tokenizer + training + evaluation of tandem-tiny on one GPU (about 6 minutes on an H100).
#
#   tools/train_tiny/prepare_data.sh          # first, on any Debian machine (writes .train_data/)
#   tools/train_tiny/run_gpu.sh [train.py options]
#
# Needs python3 with torch, transformers (5.x) and tokenizers. Writes models/tandem-tiny/.
set -euo pipefail
export PYTHONUNBUFFERED=1
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "${repo}"
if [[ ! -f .train_data/train.jsonl ]]; then
  echo "run_gpu: .train_data/ missing; run tools/train_tiny/prepare_data.sh first" >&2
  exit 1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c 'import sys, torch, transformers, tokenizers; print("python", sys.version.split()[0], "torch", torch.__version__, "transformers", transformers.__version__, "tokenizers", tokenizers.__version__)'
mkdir -p models/tandem-tiny
python3 tools/train_tiny/train_tokenizer.py --data .train_data --out models/tandem-tiny
python3 tools/train_tiny/train.py --data .train_data --model-dir models/tandem-tiny "$@"
python3 tools/train_tiny/evaluate.py --model models/tandem-tiny --data .train_data
du -ab models/tandem-tiny
