#!/usr/bin/env bash
# Engine benchmarks and memory measurement (docs/BENCHMARKS.md). Not run by CI: takes several
# minutes and wants a quiet machine. Writes target/bench/{machine,engine,memory,summary}.md.
#
#   scripts/bench-engine.sh           # everything (scripts/bench.sh all runs it too)
#   scripts/bench-engine.sh summary   # only re-read the last criterion results
#   scripts/bench-engine.sh ab old=BIN new=BIN   # interleave built bench binaries (copies of
#       target/release/deps/engine-<hash>), RUNS rounds (default 3), FILTER (criterion filter,
#       e.g. "agent_frees|ladder"), SIZES (default 1000,500000); prints each median per binary
#   scripts/bench-engine.sh misses BIN   # cache misses per timed operation, counted (not timed)
#       by valgrind's cache simulator inside the timed calls only: OP (criterion filter, default
#       agent_frees), SIZES (default 1000,500000), this machine's L1d and L3 (D1_BYTES, LL_BYTES
#       override them, e.g. LL_BYTES=2097152 to model a 2 MiB L2). Deterministic: the
#       figure to compare when the machine is too noisy for timings. ~3 min per size.
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

if [[ "${1:-}" == "ab" ]]; then
  shift
  log="$out/ab.txt"
  : >"$log"
  for r in $(seq 1 "${RUNS:-3}"); do
    for nb in "$@"; do
      name=${nb%%=*} bin=${nb#*=}
      # shellcheck disable=SC2086
      TIERLINE_BENCH_SIZES=${SIZES:-1000,500000} "$bin" --bench --noplot --measurement-time 3 \
        --warm-up-time 1 ${FILTER:-} 2>&1 | grep -E "^[a-z_]+/[0-9]+|time:" | grep -v "%" |
        paste -sd' ' | sed "s/^/$name r$r: /" >>"$log"
    done
  done
  python3 - "$log" <<'PY'
import collections, re, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name = line.split()[0]
    for op, val, unit in re.findall(r"([a-z_]+/\d+)\s+time:\s+\[\S+ \S+ ([\d.]+) (ns|µs)", line):
        runs[(op, name)].append(float(val) * (1000 if unit == "µs" else 1))
for (op, name), v in sorted(runs.items()):
    print(f"{op:28} {name:10} median {statistics.median(v):8.0f} ns  runs {[round(x) for x in v]}")
PY
  exit 0
fi

if [[ "${1:-}" == "misses" ]]; then
  bin=${2:?usage: scripts/bench-engine.sh misses BENCH_BINARY}
  op=${OP:-agent_frees}
  # Timed calls only: `time_each` (events) and `time_advance` (timers) are never inlined.
  collect='*time_each*'
  [[ "$op" == ladder* ]] && collect='*time_advance*'
  # One core's caches as sysfs gives them (lscpu -B sums over cores and sockets): L1d and L3
  # by default; LL_BYTES sets the last level instead, e.g. 2097152 to model this core's L2.
  cache_bytes() {  # index → size in bytes, or nothing
    local f=/sys/devices/system/cpu/cpu0/cache/index$1/size
    [[ -r $f ]] && awk '{ n = $1 + 0; if ($1 ~ /K$/) n *= 1024; if ($1 ~ /M$/) n *= 1048576; print n }' "$f"
  }
  # valgrind wants a power-of-two number of sets: sizes are rounded down to a power of two (a
  # 260 MiB L3 becomes 256 MiB, a 48 KiB L1d 32 KiB).
  pow2() { python3 -c "import sys; n=int(sys.argv[1]); print(1 << (n.bit_length() - 1))" "$1"; }
  l3=$(pow2 "${LL_BYTES:-$(cache_bytes 3)}" 2>/dev/null || echo 33554432)
  d1=$(pow2 "${D1_BYTES:-$(cache_bytes 0)}" 2>/dev/null || echo 32768)
  echo "simulated caches: L1d $d1 bytes (8-way), last level $l3 bytes (16-way)"
  printf '%-24s %8s %12s %14s %14s\n' operation size timed_ops "instr/op" "LL misses/op"
  sizes=${SIZES:-1000,500000}
  for n in ${sizes//,/ }; do
    prof="$out/callgrind.$op.$n"
    TIERLINE_BENCH_SIZES=$n valgrind --tool=callgrind --cache-sim=yes --D1="$d1,8,64" \
      --LL="$l3,16,64" --toggle-collect="$collect" --callgrind-out-file="$prof" "$bin" --bench \
      "$op" --warm-up-time 1 --measurement-time 3 --sample-size 10 --noplot >"$prof.log" 2>&1 || { tail -n 20 "$prof.log"; exit 1; }
    ops=$(sed -n 's/^timed operations: //p' "$prof.log")
    callgrind_annotate --show=Ir,DLmr,DLmw "$prof" 2>/dev/null | awk -v op="$op" -v n="$n" -v ops="$ops" '
      /PROGRAM TOTALS/ { gsub(/,/, ""); printf "%-24s %8s %12d %14.0f %14.1f\n", op, n, ops, $1 / ops, ($3 + $5) / ops }'
  done
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
cargo bench --bench config_preview 2>&1 | tee "$out/preview.log"
grep -v -E '^ *(Finished|Running|Compiling|Blocking)' "$out/memory.log" > "$out/memory.md" || true
summary
