#!/usr/bin/env bash
# Batch-1 decode, the tree before (/tmp/tg/bin/tandem-base: pack.sh with BASE_TANDEM) against this
# tree (/tmp/tg/bin/tandem), interleaved A B A B, on the same GPU in one call: GLM-4.5-Air-shaped layers with dummy
# weights (BF16 and FP8 128x128 blocks) and the bundled model. Prints one line per run: variant, model, decode
# tok/s, achieved GB/s and its fraction of the same run's copy probe. Run after tools/gpu/run_checks.sh has
# unpacked /tmp/tg. Usage: bash tools/gpu/ab_decode.sh [ROUNDS]   (default 2)
set -uo pipefail
ROUNDS=${1:-2}
source "$(dirname "$0")/lib_path.sh"
fp8='{"quant_method":"fp8","weight_block_size":[128,128],"fmt":"e4m3","activation_scheme":"dynamic"}'
run() {  # variant binary label args...
  local variant=$1 bin=$2 label=$3; shift 3
  "$bin" bench --device cuda "$@" --json 2>/dev/null | python3 tools/gpu/decode_line.py "$variant" "$label" ||
    echo "$variant $label failed"
}
for round in $(seq "$ROUNDS"); do
  for v in "base /tmp/tg/bin/tandem-base" "new /tmp/tg/bin/tandem"; do
    set -- $v
    run $1 $2 air-bf16 --model tests/fixtures/configs/glm-4.5-air --load-format dummy \
      --json-model-override-args '{"num_hidden_layers": 14}' --prompt-len 128 --decode-tokens 32 --repeats 1
    run $1 $2 air-fp8 --model tests/fixtures/configs/glm-4.5-air --load-format dummy \
      --json-model-override-args "{\"num_hidden_layers\": 28, \"quantization_config\": $fp8}" --prompt-len 128 \
      --decode-tokens 32 --repeats 1
    run $1 $2 tiny --model models/tandem-tiny --decode-tokens 128 --repeats 3
  done
done
