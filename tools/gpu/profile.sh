#!/usr/bin/env bash
# Per-kernel profile of batch-1 decode on GLM-4.5-Air-shaped layers (dummy weights), BF16 and FP8 blocks:
# ncu's duration, DRAM bytes and throughput of the decode kernels (linear, MoE, attention, norms), one CSV per
# variant in $OUT. Run after tools/gpu/run_checks.sh has unpacked the binaries into /tmp/tg.
# Usage (device tool): bash tools/gpu/profile.sh [LAYERS]   (default 3: the dense layer 0 and two MoE layers)
set -uo pipefail
OUT=${OUT:-/tmp/tandem-gpu-out}
LAYERS=${1:-3}
TANDEM=${TANDEM:-/tmp/tg/bin/tandem}
source "$(dirname "$0")/lib_path.sh"
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
mkdir -p "$OUT"
metrics=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum
metrics=$metrics,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__throughput.avg.pct_of_peak_sustained_elapsed
metrics=$metrics,l1tex__throughput.avg.pct_of_peak_sustained_elapsed,launch__grid_size,launch__registers_per_thread
metrics=$metrics,sm__warps_active.avg.pct_of_peak_sustained_active
for v in "bf16 {}" \
         "fp8 {\"quant_method\":\"fp8\",\"weight_block_size\":[128,128],\"fmt\":\"e4m3\",\"activation_scheme\":\"dynamic\"}"; do
  set -- $v
  over="{\"num_hidden_layers\": $LAYERS}"
  [ "$2" != "{}" ] && over="{\"num_hidden_layers\": $LAYERS, \"quantization_config\": $2}"
  echo "== ncu air $1 ($LAYERS layers)"
  # Caches and clocks as in a real run (the activations a kernel reads are in L2). Skip the prefill and the first decode steps' kernels; keep about two decode steps.
  timeout ${PROFILE_TIMEOUT:-240} "$NCU" --csv --cache-control none --clock-control none --metrics "$metrics" --kernel-name-base demangled --kernel-name "regex:(linear|moe_|attention|rms_norm|rope|kv_store|embedding|argmax|silu|add_kernel|gather|copy_|mul_sigmoid)" --launch-skip ${SKIP:-150} --launch-count ${COUNT:-150} \
    "$TANDEM" bench --device cuda --model tests/fixtures/configs/glm-4.5-air --load-format dummy \
    --json-model-override-args "$over" --prompt-len 16 --decode-tokens 16 --repeats 1 --json \
    > "$OUT/ncu-air-$1.csv" 2> "$OUT/ncu-air-$1.err" || tail -20 "$OUT/ncu-air-$1.err"
  grep -c '"' "$OUT/ncu-air-$1.csv" || true
done
