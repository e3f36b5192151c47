#!/usr/bin/env bash
# Issue 15's measurements in one call: speculation never costs. For each device given (cpu, cuda), the
# speculation curve (plain, fixed K = 1..3 and the adaptive policy, interleaved rounds) on the bundled model in
# BF16 and FP8 at the trained draft's real acceptance, on the random bench model at its real (near-zero)
# acceptance and at synthetic rates 0.5..0.9, then `tandem bench serve` at concurrency 1 / 8 / 32, plain vs
# adaptive NEXTN, A B A B. Run after tools/gpu/run_checks.sh has unpacked the binaries into /tmp/tg (or with
# TANDEM=path/to/tandem on any machine). Results: $OUT/spec-*.{txt,json}.
# Usage: bash tools/gpu/spec_bench.sh "cpu cuda" [curve|serve|all]
set -uo pipefail
OUT=${OUT:-/tmp/tandem-spec-out}
DEVICES=${1:-cuda}
MODE=${2:-all}
TANDEM=${TANDEM:-/tmp/tg/bin/tandem}
THREADS=${THREADS:-8}
mkdir -p "$OUT"
log() { echo "== $*"; }

bench_model=/tmp/bench-model
if [ ! -e $bench_model/config.json ]; then
  env -u LD_LIBRARY_PATH python3 tools/make_bench_model.py --out $bench_model > "$OUT/make_bench_model.log" 2>&1 ||
    tail -3 "$OUT/make_bench_model.log"
fi

for dev in $DEVICES; do
  if [ "$MODE" = curve ] || [ "$MODE" = all ]; then
    for m in models/tandem-tiny models/tandem-tiny-fp8; do
      name=spec-curve-$dev-$(basename $m)
      log "$name"
      timeout ${CURVE_TIMEOUT:-150} $TANDEM bench --device $dev --threads $THREADS --model $m --speculative-algorithm NEXTN \
        --speculative-num-steps 3 --speculative-curve --repeats ${ROUNDS:-3} --decode-tokens ${DECODE_TOKENS:-128} > "$OUT/$name.txt" 2>&1
      grep -v "\[info\]" "$OUT/$name.txt" | tail -14
    done
    if [ -e $bench_model/config.json ]; then
      name=spec-curve-$dev-bench-model
      log "$name"
      timeout ${CURVE_TIMEOUT:-150} $TANDEM bench --device $dev --threads $THREADS --model $bench_model \
        --speculative-algorithm NEXTN --speculative-num-steps 3 --speculative-curve \
        --speculative-acceptance-sweep 0.5,0.6,0.7,0.8,0.9 --repeats ${ROUNDS:-3} --decode-tokens ${DECODE_TOKENS:-128} > "$OUT/$name.txt" 2>&1
      grep -v "\[info\]" "$OUT/$name.txt" | tail -18
    fi
  fi
  if [ "$MODE" = serve ] || [ "$MODE" = all ]; then
    for round in 1 2; do
      for variant in plain adaptive; do
        extra=""
        [ $variant = adaptive ] && extra="--speculative-algorithm NEXTN --speculative-num-steps 3"
        port=$((18000 + RANDOM % 1000))
        $TANDEM serve --device $dev --threads $THREADS --model models/tandem-tiny --port $port \
          --max-running-requests 32 $extra > "$OUT/serve-$dev-$variant-$round.log" 2>&1 &
        pid=$!
        for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/health >/dev/null && break; sleep 0.2; done
        for c in 1 8 32; do
          n=$((c * 4 > 16 ? c * 4 : 16))
          name=spec-serve-$dev-$variant-c$c-r$round
          timeout 120 $TANDEM bench serve --url http://127.0.0.1:$port --concurrency $c --requests $n \
            --input-len 128 --output-len 64 --json > "$OUT/$name.json" 2> "$OUT/$name.err"
          python3 - "$OUT/$name.json" "$name" <<'PY'
import json, sys
try:
    j = json.load(open(sys.argv[1]))
    print(f"{sys.argv[2]}: output {j.get('output_throughput', j.get('output_tokens_per_s'))} tok/s")
except Exception as e:
    print(sys.argv[2], "no result", e)
PY
        done
        kill $pid; wait $pid 2>/dev/null
      done
    done
  fi
done
