#!/usr/bin/env bash
# The GPU check of issue 14, in one device call: the CUDA backend-ops table, the golden / exactness /
# batch-invariance / server tests on --device cuda, then benchmarks; logs and JSON results go to $OUT.
# Binaries come from gpu-carry/tandem-gpu.tar.xz (tools/gpu/pack.sh, built on the development machine).
# Usage (device tool): bash tools/gpu/run_checks.sh [tests|bench|all|none]   (default all; ONLY="a_test b_test"
# runs just those test binaries first)
set -uo pipefail
ROOT=$(pwd)
OUT=${OUT:-/tmp/tandem-gpu-out}
MODE=${1:-all}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/checks.log") 2>&1

echo "== device"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
date -u

echo "== unpack"
rm -rf /tmp/tg && mkdir -p /tmp/tg && tar -C /tmp/tg -xJf gpu-carry/tandem-gpu.tar.xz || exit 1
source tools/gpu/lib_path.sh
/tmp/tg/bin/tandem --help >/dev/null || { ldd /tmp/tg/bin/tandem; exit 1; }
# The test binaries carry the build machine's paths (TANDEM_SOURCE_DIR, TANDEM_CLI_BINARY): make them resolve.
if [ "$ROOT" != /work/main ]; then mkdir -p /work && ln -sfn "$ROOT" /work/main; fi
mkdir -p "$ROOT/build/bin" && cp /tmp/tg/bin/tandem "$ROOT/build/bin/tandem"
export TANDEM_SOURCE_DIR=/work/main

fails=0
run_test() {  # name [gtest args...]
  local t=$1; shift
  echo "== $t (cuda)"
  if TANDEM_TEST_BACKEND=cuda timeout ${TEST_TIMEOUT:-150} /tmp/tg/bin/$t --gtest_brief=1 "$@" > "$OUT/$t.log" 2>&1; then
    tail -3 "$OUT/$t.log"
  else
    fails=$((fails + 1)); tail -40 "$OUT/$t.log"
  fi
}

if [ -n "${ONLY:-}" ]; then  # ONLY="test_binary ...": just these, on cuda
  for t in $ONLY; do run_test $t; done
  echo "== test binaries failing: $fails"
fi

if [ "$MODE" = tests ] || [ "$MODE" = all ]; then
  run_test backend_ops_test --gtest_filter=*cuda*
  run_test prefix_cache_engine_test
  run_test glm4_moe_golden_test
  run_test spec_decode_test --gtest_filter=-SpecSampling.*
  run_test trained_acceptance_test
  run_test row_split_test
  run_test dummy_load_test
  if [ "${QUICK:-0}" != 1 ]; then
    run_test seeded_identity_test
    run_test batch_invariance_test
    run_test server_api_test
    run_test prefix_cache_server_test
  fi
  echo "== test binaries failing: $fails"
fi

if [ "$MODE" = bench ] || [ "$MODE" = all ]; then
  echo "== bench"
  for k in ${BENCH_K:-1 2 3}; do
    timeout ${BENCH_TIMEOUT:-100} /tmp/tg/bin/tandem bench --device cuda --model models/tandem-tiny --speculative-num-steps $k --json \
      > "$OUT/bench-tiny-k$k.json" 2> "$OUT/bench-tiny-k$k.err" && cat "$OUT/bench-tiny-k$k.json" | head -60 \
      || tail -20 "$OUT/bench-tiny-k$k.err"
  done
  if [ "${QUICK:-0}" = 1 ]; then :
  elif env -u LD_LIBRARY_PATH python3 tools/make_bench_model.py --out /tmp/bench-model > "$OUT/make_bench_model.log" 2>&1; then
    timeout 120 /tmp/tg/bin/tandem bench --device cuda --model /tmp/bench-model --speculative-num-steps 1 --json \
      > "$OUT/bench-benchmodel.json" 2> "$OUT/bench-benchmodel.err" && cat "$OUT/bench-benchmodel.json" \
      || tail -20 "$OUT/bench-benchmodel.err"
  else
    tail -5 "$OUT/make_bench_model.log"
  fi
fi
# GLM-4.5-Air-shaped layers with dummy weights (--load-format dummy), as many layers as fit one GPU: BF16 and
# FP8 (DeepSeek 128x128 blocks), batch-1 decode against the copy probe, and the adaptive policy beside it.
if [ "$MODE" = air ] || [ "$MODE" = bench ] || [ "$MODE" = all ]; then
  for v in "bf16 ${AIR_BF16_LAYERS:-14} {}" \
           "fp8 ${AIR_FP8_LAYERS:-28} {\"quant_method\":\"fp8\",\"weight_block_size\":[128,128],\"fmt\":\"e4m3\",\"activation_scheme\":\"dynamic\"}"; do
    set -- $v
    over="{\"num_hidden_layers\": $2}"
    [ "$3" != "{}" ] && over="{\"num_hidden_layers\": $2, \"quantization_config\": $3}"
    echo "== air $1 ($2 layers): $over"
    timeout ${AIR_TIMEOUT:-200} /tmp/tg/bin/tandem bench --device cuda --model tests/fixtures/configs/glm-4.5-air \
      --load-format dummy --json-model-override-args "$over" --speculative-algorithm NEXTN --speculative-num-steps 3 \
      --prompt-len 128 --decode-tokens 32 --repeats 1 --json > "$OUT/bench-air-$1.json" 2> "$OUT/bench-air-$1.err" &&
      head -70 "$OUT/bench-air-$1.json" || tail -20 "$OUT/bench-air-$1.err"
  done
fi
# The device tool returns at most 8 files: everything goes into one archive beside the console log.
cd "$OUT" && tar -czf /tmp/results.tgz --exclude=checks.log . && find . -type f ! -name checks.log -delete &&
  mv /tmp/results.tgz results.tgz
exit 0
