#!/usr/bin/env bash
# CPU smoke test of train.py + evaluate.py on a machine without transformers/tokenizers:
# stand-in packages (tests/fake_*) replace them, the model and data are shrunk. It checks
# the control flow, the export layout and the speculative-decoding reference, not quality.
#   tools/train_tiny/tests/smoke_test.sh      (needs python3 with torch; run prepare_data.sh first)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${here}/../../.." && pwd)"
python="${PYTHON:-/usr/bin/python3}"
tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
export PYTHONPATH="${here}/fake_transformers:${here}/fake_tokenizers:${repo}/tools/train_tiny"
"${python}" - "${tmp}/model" "${repo}/tools/train_tiny/zai-org-GLM-4.5.jinja" <<'PY'
import os, sys
import tokenizers, train_tokenizer
out, template = sys.argv[1], sys.argv[2]
os.makedirs(out)
added = [c for c, _ in train_tokenizer.kAddedTokens]
tokenizers.Tokenizer.write_fake(os.path.join(out, "tokenizer.json"), added)
tok = tokenizers.Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
train_tokenizer.write_tokenizer_config(out, train_tokenizer.added_token_ids(tok), open(template).read())
PY
"${python}" "${repo}/tools/train_tiny/train.py" --data "${repo}/.train_data" --model-dir "${tmp}/model" \
  --seq-len 64 --batch 4 --max-steps 40 --warmup 5 --time-budget 120 --evals 2 --eval-windows 8
"${python}" "${repo}/tools/train_tiny/evaluate.py" --model "${tmp}/model" --data "${repo}/.train_data" \
  --prompts 3 --max-new-tokens 10 --sample-tokens 6 --window 256 --heldout-docs 6
"${python}" - "${tmp}/model" <<'PY'
import json, sys
e = json.load(open(sys.argv[1] + "/eval.json"))
assert set(e["spec"]) == {"K1", "K2", "K3"}, e["spec"]
for k, v in e["spec"].items():
    assert v["completion_tokens"] == 3 * 10, (k, v)
    # the prefill token needs no verify step: at least ceil(9 / (K + 1)) steps per prompt
    assert v["verify_steps"] >= 3 * -(-9 // (int(k[1]) + 1)), (k, v)
    assert v["verify_steps"] <= 3 * 9, (k, v)
assert all(e["spec_equals_greedy"].values()), e["spec_equals_greedy"]
assert all(e["reference_check"]["glm_ref_same_k3_decode"]), e["reference_check"]
print("smoke test: OK", json.dumps(e["spec"]))
PY
ls -la "${tmp}/model"
