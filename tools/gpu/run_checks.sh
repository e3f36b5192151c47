#!/usr/bin/env bash
# The GPU check of issue 14, in one device call: the CUDA backend-ops table, the golden / exactness /
# batch-invariance / server tests on --device cuda, then benchmarks; logs and JSON results go to $OUT.
# Binaries come from gpu-carry/tandem-gpu.tar.xz (tools/gpu/pack.sh, built on the development machine).
# Usage (device tool): bash tools/gpu/run_checks.sh [tests|bench|all]   (default all)
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
export LD_LIBRARY_PATH=/tmp/tg/lib
if ldd /tmp/tg/bin/tandem | grep -q "not found\|GLIBCXX.*not found" || ! /tmp/tg/bin/tandem --help >/dev/null 2>&1; then
  export LD_LIBRARY_PATH=/tmp/tg/lib:/tmp/tg/lib-fallback
fi
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

if [ "$MODE" = tests ] || [ "$MODE" = all ]; then
  run_test backend_ops_test --gtest_filter=*cuda*
  run_test glm4_moe_golden_test
  run_test spec_decode_test --gtest_filter=-SpecSampling.*
  run_test trained_acceptance_test
  if [ "${QUICK:-0}" != 1 ]; then
    run_test seeded_identity_test
    run_test batch_invariance_test
    run_test server_api_test
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
# The device tool returns at most 8 files: everything goes into one archive beside the console log.
cd "$OUT" && tar -czf /tmp/results.tgz --exclude=checks.log . && find . -type f ! -name checks.log -delete &&
  mv /tmp/results.tgz results.tgz
exit 0
