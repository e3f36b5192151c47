#!/usr/bin/env bash
# Prefix caching A/B: `tandem serve` with the cache on and off (interleaved, ROUNDS times each), each run driven
# by `tandem bench serve --multi-turn` (conversations growing turn by turn over a shared system prompt).
# Prints one JSON line per run (bench serve's --json) into $OUT and a per-turn TTFT table.
#
# Usage: bash tools/bench/prefix_cache.sh MODEL_DIR [extra serve flags...]
# Env: TANDEM (binary, default build/bin/tandem), OUT (default /tmp/prefix-cache-bench), ROUNDS (2), TURNS (10),
#      PREFIX (2000), INPUT (64), OUTPUT (32), CONVS (2), CONCURRENCY (1), THREADS (0: all cores)
set -euo pipefail
MODEL=$1; shift
TANDEM=${TANDEM:-build/bin/tandem}
OUT=${OUT:-/tmp/prefix-cache-bench}
ROUNDS=${ROUNDS:-2}; TURNS=${TURNS:-10}; PREFIX=${PREFIX:-2000}; INPUT=${INPUT:-64}; OUTPUT=${OUTPUT:-32}
CONVS=${CONVS:-2}; CONCURRENCY=${CONCURRENCY:-1}; THREADS=${THREADS:-0}
mkdir -p "$OUT"
port=$((20000 + RANDOM % 20000))
for round in $(seq 1 "$ROUNDS"); do
  for variant in on off; do
    flag=--enable-prefix-caching; [ $variant = off ] && flag=--disable-prefix-caching
    log="$OUT/serve-$variant-$round.log"
    $TANDEM serve --model "$MODEL" --port $port --threads "$THREADS" $flag "$@" > "$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 600); do
      curl -sf http://127.0.0.1:$port/health > /dev/null 2>&1 && break
      kill -0 $pid 2> /dev/null || { echo "server died: $log"; tail -20 "$log"; exit 1; }
      sleep 0.5
    done
    $TANDEM bench serve --url http://127.0.0.1:$port --multi-turn "$TURNS" --shared-prefix-len "$PREFIX" \
      --input-len "$INPUT" --output-len "$OUTPUT" --requests "$CONVS" --concurrency "$CONCURRENCY" --json \
      > "$OUT/bench-$variant-$round.json"
    kill -TERM $pid; wait $pid || true
    python3 - "$OUT/bench-$variant-$round.json" "$variant" "$round" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
turns = " ".join(f"{t['mean_ttft_ms']:.0f}" for t in j["per_turn"])
print(f"cache {sys.argv[2]:3} round {sys.argv[3]}: hit rate {100 * j['prefix_cache_hit_rate']:5.1f}%  "
      f"duration {j['duration_s']:.1f} s  output {j['output_throughput']:.1f} tok/s  TTFT per turn (ms): {turns}")
PY
  done
done
