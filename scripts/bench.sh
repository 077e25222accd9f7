#!/usr/bin/env bash
# Engine benchmarks and memory measurement (docs/BENCHMARKS.md). Not run by CI: takes several
# minutes and wants a quiet machine. Writes target/bench/{machine,engine,memory,summary}.md.
#
#   scripts/bench.sh             # everything
#   scripts/bench.sh summary     # only re-read the last criterion results
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/bench
mkdir -p "$out"

# Median of one criterion benchmark, in nanoseconds.
median_ns() {
  jq -r '.median.point_estimate' "target/criterion/$1/$2/new/estimates.json"
}

summary() {
  local small=1000 large=500000
  {
    echo "| operation | median @ $small waiting | median @ $large waiting | ratio (target < 2×) | throughput @ $large (target ≥ 500k/s) |"
    echo "|---|---:|---:|---:|---:|"
    for op in arrival_waits arrival_offered agent_frees ladder_step_fires; do
      local s l
      s=$(median_ns "$op" "$small")
      l=$(median_ns "$op" "$large")
      awk -v op="$op" -v s="$s" -v l="$l" 'BEGIN {
        printf "| %s | %.0f ns | %.0f ns | %.2f× | %.0f events/s |\n", op, s, l, l / s, 1e9 / l
      }'
    done
  } | tee "$out/summary.md"
}

if [[ "${1:-}" == "summary" ]]; then
  summary
  exit 0
fi

{
  echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), nproc $(nproc)"
  echo "- $(rustc --version)"
  echo "- load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (dirty)')"
} | tee "$out/machine.md"

cargo bench --bench engine -- --noplot 2>&1 | tee "$out/engine.log"
cargo bench --bench engine_memory 2>&1 | tee "$out/memory.log"
grep -v -E '^ *(Finished|Running|Compiling|Blocking)' "$out/memory.log" > "$out/memory.md" || true
summary
