#!/usr/bin/env bash
# Reproduce the numbers in docs/BENCHMARKS.md in one command (not run by CI).
#
#   scripts/bench.sh              # everything
#   scripts/bench.sh http         # only the HTTP load part
#   scripts/bench.sh soak         # 180 s at 20,000/s against one daemon (SOAK_RATE, SOAK_DURATION)
#   scripts/bench.sh flamegraph   # perf + inferno flame graphs of the daemon under load and of the
#                                 # engine's freed agent at 500,000 waiting ($OUT/*.svg)
#   RUNS=5 DURATION=20s scripts/bench.sh http
#   BINS="main=/tmp/tierline-main new=target/release/tierline" scripts/bench.sh ab
#                                 # daemons side by side with the baseline, interleaved run by run
#
# Results (one JSON file per run, written by `tierline loadgen --out`) and a summary table land in
# $OUT (default target/bench). Each tierline run starts a fresh daemon on config/bench.toml with
# its journal in a temporary directory; the bare-hyper baseline (`tierline baseline-server`) is
# driven by the same generator with the same request bodies, interleaved run by run, so the
# ratio tierline / baseline is measured side by side on the same (shared) machine.
set -euo pipefail
cd "$(dirname "$0")/.."

PART=${1:-all}
OUT=${OUT:-target/bench}
RUNS=${RUNS:-3}                      # medians are taken over this many runs
DURATION=${DURATION:-10s}            # measured phase of the fixed-rate runs
SEARCH_DURATION=${SEARCH_DURATION:-5s}  # measured phase of each step of the max-rate search
RATE=${RATE:-10000}                  # the fixed rate of the side-by-side runs
# Keep-alive connections, one request in flight each: a rate needs more than rate × latency of
# them (Little's law). With sync = batch every answer waits ≈ 2.5 ms (the group-commit window
# and its sync), so 32 connections cap any server at ≈ 12,800/s; 128 leave room to 50,000/s.
CONNECTIONS=${CONNECTIONS:-128}
AGENTS=${AGENTS:-5000}
QUEUES=${QUEUES:-16}
LOADGEN_THREADS=${LOADGEN_THREADS:-1}
# The generator's pacer wakes at most once per this long (`loadgen --pace-quantum`): a slot may
# go out up to this late, and that wait counts in its latency. 0s (the default, as in every
# table so far) wakes for every slot; 0.25ms saves the generator ≈ 15 µs of CPU per event at
# 10,000/s, but the bunched arrivals also make the servers cheaper per event (the baseline most).
PACE_QUANTUM=${PACE_QUANTUM:-0s}
SUSTAIN_P99_MS=${SUSTAIN_P99_MS:-50} # a step is "sustained" if every event is answered, no 5xx, p99 under this
SEARCH_RATES=${SEARCH_RATES:-"5000 10000 15000 20000 25000 30000 35000 40000 50000 60000 70000 80000 100000"}
SYNC_MODES=${SYNC_MODES:-"batch none"}  # also batch:MS, batch with max_batch_delay_ms = MS (e.g. batch:0)
# Optional CPU pinning (taskset lists, e.g. SERVER_CPUS=0 LOADGEN_CPUS=1) to keep the generator
# and the server off each other's core; empty = no pinning.
SERVER_CPUS=${SERVER_CPUS:-}
LOADGEN_CPUS=${LOADGEN_CPUS:-}
API=127.0.0.1:18080
METRICS=127.0.0.1:19464
BASE=127.0.0.1:18090
BIN=${BIN:-target/release/tierline}          # the server binary (and the generator unless LOADGEN_BIN)
LOADGEN_BIN=${LOADGEN_BIN:-$BIN}

mkdir -p "$OUT"
pin() {  # cpu-list command… — run under taskset when a list is given
    local cpus=$1
    shift
    if [[ -n "$cpus" ]]; then taskset -c "$cpus" "$@"; else "$@"; fi
}
# Start a server in the background with SERVER_PID = its own pid (not a subshell's: the CPU
# ticks read from /proc/$SERVER_PID/stat and the TERM on stop must reach the server itself).
start_server() {  # log cpu-list command…
    local log=$1 cpus=$2
    shift 2
    if [[ -n "$cpus" ]]; then
        taskset -c "$cpus" "$@" >"$log" 2>&1 &
    else
        "$@" >"$log" 2>&1 &
    fi
    SERVER_PID=$!
}
SERVER_PID=""
WORKDIR=$(mktemp -d)
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORKDIR"
}
trap cleanup EXIT

machine() {
    echo "## machine"
    echo "date: $(date -u +%FT%TZ)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') ($(nproc) online)"
    echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "kernel: $(uname -r)"
    echo "rustc: $(rustc --version)"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# ------------------------------------------------------------------------------------------------
# Part 1: engine micro-benchmarks, memory at scale, recovery, simulator speed.
# Filled in by the `benches` branch (cargo bench --bench engine …); the HTTP part below does not
# depend on it.
# ------------------------------------------------------------------------------------------------
engine_part() {  # criterion engine benches + memory per interaction/agent
    "$(dirname "$0")/bench-engine.sh"
}

# ------------------------------------------------------------------------------------------------
# Part 2: HTTP load.
# ------------------------------------------------------------------------------------------------
wait_port() {  # host:port — until something accepts, at most 30 s
    local host=${1%:*} port=${1#*:}
    for _ in $(seq 300); do
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on $1 after 30 s" >&2
    return 1
}

stop_server() {
    if [[ -n "$SERVER_PID" ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}

start_baseline() {  # [workers] (0 = tokio's default, one per CPU)
    start_server "$WORKDIR/baseline.log" "$SERVER_CPUS" "$BIN" baseline-server --listen "$BASE" \
        --workers "${1:-0}"
    wait_port "$BASE"
}

start_tierline() {  # sync mode, or batch:MS for another group-commit window [binary]
    local dir="$WORKDIR/tierline-$1-$RANDOM" bin=${2:-$BIN} mode=${1%%:*} window=2
    [[ $1 == *:* ]] && window=${1#*:}
    mkdir -p "$dir/data"
    TIERLINE_DATA=$dir/data
    sed -e "s|^dir = .*|dir = \"$dir/data\"|" -e "s|^sync = .*|sync = \"$mode\"|" \
        -e "s|^max_batch_delay_ms = .*|max_batch_delay_ms = $window|" \
        config/bench.toml >"$dir/bench.toml"
    start_server "$dir/daemon.log" "$SERVER_CPUS" "$bin" serve --config "$dir/bench.toml" \
        --listen "$API" --metrics-listen "$METRICS" --data "$dir/data"
    wait_port "$API"
}

# A generator that knows --server-pid reads the server's CPU time around the measured phase
# itself (`server_cpu_s` in its JSON), without the setup (logins) or the /metrics scrape; an
# older LOADGEN_BIN does not, and the summary falls back to the ticks in OUT.cpu.
SERVER_PID_FLAG=""
if "$LOADGEN_BIN" loadgen --help 2>/dev/null | grep -- '--server-pid' >/dev/null; then SERVER_PID_FLAG=yes; fi
loadgen() {  # mode url rate duration out [extra…]
    local mode=$1 url=$2 rate=$3 duration=$4 out=$5
    shift 5
    if [[ -n "$SERVER_PID_FLAG" && -n "$SERVER_PID" ]]; then set -- --server-pid "$SERVER_PID" "$@"; fi
    pin "$LOADGEN_CPUS" "$LOADGEN_BIN" loadgen --mode "$mode" --url "$url" --rate "$rate" --duration "$duration" \
        --connections "$CONNECTIONS" --agents "$AGENTS" --queues "$QUEUES" \
        --threads "$LOADGEN_THREADS" --pace-quantum "$PACE_QUANTUM" --sustained-p99-ms "$SUSTAIN_P99_MS" --out "$out" "$@"
}

cpu_ticks() {  # user + system CPU ticks of the server so far
    awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"
}

# Besides the generator's JSON, each run writes OUT.cpu: the server's CPU ticks over the whole
# loadgen command (setup included), the fallback for a generator without --server-pid. CPU per
# event is the figure least disturbed by other work on a shared machine: contention delays a
# process but does not make it do more work.
run_one() {  # target(baseline|tierline-SYNC|bin:LABEL) rate duration out
    local target=$1 rate=$2 duration=$3 out=$4 before after
    case $target in
        bin:*)
            start_tierline "${SYNC_MODES%% *}" "$(bin_of "${target#bin:}")"
            before=$(cpu_ticks)
            loadgen tierline "http://$API" "$rate" "$duration" "$out" \
                --metrics-url "http://$METRICS/metrics" || true
            ;;
        baseline | baseline:*)
            if [[ $target == baseline:* ]]; then start_baseline "${target#baseline:}"; else start_baseline 0; fi
            before=$(cpu_ticks)
            loadgen baseline "http://$BASE" "$rate" "$duration" "$out" || true
            ;;
        tierline-*)
            start_tierline "${target#tierline-}"
            before=$(cpu_ticks)
            loadgen tierline "http://$API" "$rate" "$duration" "$out" \
                --metrics-url "http://$METRICS/metrics" || true
            ;;
    esac
    after=$(cpu_ticks)
    echo "$(( after - before )) $(getconf CLK_TCK)" >"$out.cpu"
    stop_server
}

targets() {
    echo baseline
    for s in $SYNC_MODES; do echo "tierline-$s"; done
}

http_part() {
    echo "## HTTP load: building release"
    cargo build --release --quiet
    echo "## HTTP load: $RATE events/s side by side, $RUNS runs of $DURATION"
    for run in $(seq "$RUNS"); do
        for target in $(targets); do
            run_one "$target" "$RATE" "$DURATION" "$OUT/fixed-$target-$run.json"
        done
    done
    echo "## HTTP load: max sustained rate (p99 < $SUSTAIN_P99_MS ms, all answered, no 5xx), $RUNS searches"
    for run in $(seq "$RUNS"); do
        for target in $(targets); do
            # A step above the first failure is not run: drop an earlier search's files for it.
            rm -f "$OUT/search-$target-$run-"*.json "$OUT/search-$target-$run-"*.json.cpu
            for rate in $SEARCH_RATES; do
                local out="$OUT/search-$target-$run-$rate.json"
                run_one "$target" "$rate" "$SEARCH_DURATION" "$out"
                if ! grep -q '"sustained": true' "$out" 2>/dev/null; then break; fi
            done
        done
    done
    summarize
}

# Part 3 (on demand): daemons side by side. BINS="label=path …" names the daemons; each run
# starts every one of them fresh (journal sync = the first of SYNC_MODES) and the bare-hyper
# baseline, interleaved, all driven by LOADGEN_BIN at RATE for DURATION.
BINS=${BINS:-"current=$BIN"}
bin_of() {  # label → path
    local pair
    for pair in $BINS; do
        if [[ ${pair%%=*} == "$1" ]]; then echo "${pair#*=}"; return; fi
    done
    echo "no binary labelled $1 in BINS" >&2
    return 1
}

# BASELINE_WORKERS="1 …" adds the baseline on that many worker threads too (label baseline-wN),
# e.g. at the daemon's own default (one fewer than the CPUs); the ratio column stays relative to
# the baseline on tokio's default.
BASELINE_WORKERS=${BASELINE_WORKERS:-}
ab_part() {
    local labels="" bins="" pair w
    for w in $BASELINE_WORKERS; do labels="$labels baseline-w$w"; done
    for pair in $BINS; do bins="$bins ${pair%%=*}"; done
    labels="$labels$bins"
    echo "## side by side: baseline$labels; $RATE events/s, $RUNS runs of $DURATION, sync = ${SYNC_MODES%% *}"
    for run in $(seq "$RUNS"); do
        run_one baseline "$RATE" "$DURATION" "$OUT/ab-baseline-$run.json"
        for w in $BASELINE_WORKERS; do
            run_one "baseline:$w" "$RATE" "$DURATION" "$OUT/ab-baseline-w$w-$run.json"
        done
        for label in $bins; do
            run_one "bin:$label" "$RATE" "$DURATION" "$OUT/ab-$label-$run.json"
        done
    done
    ab_summary $labels
}

ab_summary() {  # labels…
    python3 - "$OUT" "$RUNS" baseline "$@" <<'PY'
import json, statistics, sys, pathlib
out, runs, targets = pathlib.Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
med = lambda xs: statistics.median(xs) if xs else float("nan")
def load(t, i):
    try:
        r = json.loads((out / f"ab-{t}-{i}.json").read_text())
        if r.get("server_cpu_us_per_event"):
            # Read by the generator around the measured phase only.
            r["cpu_us"] = r["server_cpu_us_per_event"]
        else:
            ticks, hz = map(int, (out / f"ab-{t}-{i}.json.cpu").read_text().split())
            r["cpu_us"] = ticks / hz * 1e6 / max(1, r["answered"] + r["setup_events"])
        return r
    except Exception:
        return None
runs_of = {t: [load(t, i) for i in range(1, runs + 1)] for t in targets}
print("| server | achieved ev/s | p50 ms | p99 ms | answered / scheduled | server CPU µs/event (runs) | baseline CPU ÷ this | timer lateness p99 ms |")
print("|---|---|---|---|---|---|---|---|")
for t in targets:
    rs = [r for r in runs_of[t] if r]
    if not rs: continue
    cpu = [r["cpu_us"] for r in rs]
    base = [b["cpu_us"] / r["cpu_us"] for b, r in zip(runs_of["baseline"], runs_of[t]) if b and r]
    tl = [r["timer_lateness"]["p99_ms"] for r in rs if r.get("timer_lateness")]
    print(f"| {t} | {med([r['achieved_rate'] for r in rs]):,.0f} | {med([r['latency_ms']['p50'] for r in rs]):.2f} "
          f"| {med([r['latency_ms']['p99'] for r in rs]):.2f} | {med([r['answered'] for r in rs]):,.0f} / {med([r['scheduled'] for r in rs]):,.0f} "
          f"| **{med(cpu):.1f}** ({', '.join('%.1f' % c for c in cpu)}) | {med(base):.2f} | {('%.2f' % med(tl)) if tl else '–'} |")
PY
}

summarize() {
    python3 - "$OUT" "$RUNS" "$SEARCH_RATES" "$SYNC_MODES" <<'PY'
import json, statistics, sys, pathlib
out, runs, rates, syncs = pathlib.Path(sys.argv[1]), int(sys.argv[2]), [int(r) for r in sys.argv[3].split()], sys.argv[4].split()
targets = ["baseline"] + [f"tierline-{s}" for s in syncs]
def load(p):
    try: return json.loads(p.read_text())
    except Exception: return None
med = lambda xs: statistics.median(xs) if xs else float("nan")
print("\n### fixed rate (median of %d runs)\n" % runs)
def cpu_us_per_event(t, i, r):
    if r.get("server_cpu_us_per_event"):
        # Read by the generator around the measured phase only (--server-pid).
        return r["server_cpu_us_per_event"]
    try:
        ticks, hz = map(int, (out / f"fixed-{t}-{i}.json.cpu").read_text().split())
        return ticks / hz * 1e6 / max(1, r["answered"] + r["setup_events"])
    except Exception:
        return None
print("| target | achieved ev/s | p50 ms | p99 ms | p99.9 ms | max ms | non-200 | server errors | server CPU µs/event | generator CPU µs/event | timer lateness p99 ms |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
# Run i of every target is kept at index i - 1 (None when missing), so a missing run neither
# takes another run's .cpu file nor shifts the run-by-run pairing with the baseline.
fixed = {}
cpus = {}
for t in targets:
    by_run = [load(out / f"fixed-{t}-{i}.json") for i in range(1, runs + 1)]
    rs = [r for r in by_run if r]
    if not rs: continue
    fixed[t] = by_run
    cpus[t] = [cpu_us_per_event(t, i, r) if r else None for i, r in enumerate(by_run, 1)]
    cpu = [c for c in cpus[t] if c is not None]
    lat = lambda k: med([r["latency_ms"][k] for r in rs])
    non200 = med([r["answered"] - r["statuses"].get("200", 0) for r in rs])
    tl = [r["timer_lateness"]["p99_ms"] for r in rs if r.get("timer_lateness")]
    gen = [r["generator_cpu_us_per_event"] for r in rs if r.get("generator_cpu_us_per_event")]
    print(f"| {t} | {med([r['achieved_rate'] for r in rs]):.0f} | {lat('p50'):.3f} | {lat('p99'):.3f} | {lat('p99_9'):.3f} | {lat('max'):.3f} | {non200:.0f} | {med([r['server_errors'] for r in rs]):.0f} | {('%.1f' % med(cpu)) if cpu else 'n/a'} | {('%.1f' % med(gen)) if gen else 'n/a'} | {('%.3f' % med(tl)) if tl else 'n/a'} |")
if "baseline" in fixed:
    print("\nratios to the baseline, per run then median (latency: lower is better for tierline when < 1):\n")
    for t in targets[1:]:
        if t not in fixed: continue
        pairs = [(b1, b2) for b1, b2 in zip(fixed["baseline"], fixed[t]) if b1 and b2]
        p99 = med([b2["latency_ms"]["p99"] / b1["latency_ms"]["p99"] for b1, b2 in pairs if b1["latency_ms"]["p99"] > 0])
        p50 = med([b2["latency_ms"]["p50"] / b1["latency_ms"]["p50"] for b1, b2 in pairs if b1["latency_ms"]["p50"] > 0])
        cpu = med([c2 / c1 for c1, c2 in zip(cpus.get("baseline", []), cpus.get(t, [])) if c1 and c2 is not None])
        print(f"- {t}: p50 ×{p50:.2f}, p99 ×{p99:.2f}, server CPU per event ×{cpu:.2f} (throughput ceiling ≈ 1/that = ×{1 / cpu if cpu else float('nan'):.2f} of the baseline)")
    print("\nCPU arithmetic (1 s / CPU per event = events/s one core can carry):\n")
    for t in targets:
        c = med([x for x in cpus.get(t, []) if x is not None])
        gen = med([r["generator_cpu_us_per_event"] for r in fixed.get(t, []) if r and r.get("generator_cpu_us_per_event")])
        if c == c and c > 0:
            both = f"; with the generator on the same 2 cores: 2 s / ({c:.1f} + {gen:.1f}) µs ≈ {2e6 / (c + gen):,.0f} ev/s" if gen == gen else ""
            print(f"- {t}: server alone {1e6 / c:,.0f} ev/s per core{both}")
print("\n### max sustained rate (highest step sustained, median of %d searches)\n" % runs)
print("| target | per search | median |")
print("|---|---|---|")
best = {}
for t in targets:
    maxes = []
    for i in range(1, runs + 1):
        # The search stops at its first step not sustained; a file for a higher step is from
        # an earlier search, so it does not count.
        highest = 0
        for r in rates:
            x = load(out / f"search-{t}-{i}-{r}.json")
            if not (x and x.get("sustained")): break
            highest = r
        maxes.append(highest)
    best[t] = maxes
    print(f"| {t} | {', '.join(map(str, maxes))} | {med(maxes):.0f} |")
if "baseline" in best:
    for t in targets[1:]:
        ratios = [a / b for a, b in zip(best[t], best["baseline"]) if b]
        print(f"\n{t} / baseline max sustained rate: per search {', '.join('%.2f' % r for r in ratios)}; median ×{med(ratios):.2f}")
PY
}

# Part 4: a long run at one rate against one daemon (sync = the first of SYNC_MODES), so the
# state grows to its steady size (retained interactions, idempotency ids) and several snapshots
# are written during the run, as they are in production; the short runs above see at most one.
# Every 10 s the daemon's RSS, CPU ticks and journal directory size go to $OUT/soak-samples.txt.
SOAK_RATE=${SOAK_RATE:-20000}
SOAK_DURATION=${SOAK_DURATION:-180}   # seconds
SOAK_CONNECTIONS=${SOAK_CONNECTIONS:-128}
soak_part() {
    echo "## soak: building release"
    cargo build --release --quiet
    echo "## soak: $SOAK_RATE events/s for $SOAK_DURATION s, $SOAK_CONNECTIONS connections"
    local out="$OUT/soak.json" samples="$OUT/soak-samples.txt" started lg
    start_tierline "${SYNC_MODES%% *}"
    CONNECTIONS=$SOAK_CONNECTIONS loadgen tierline "http://$API" "$SOAK_RATE" "${SOAK_DURATION}s" "$out" \
        --metrics-url "http://$METRICS/metrics" &
    lg=$!
    started=$(date +%s)
    echo "# seconds rss_kib cpu_ticks journal_kib" >"$samples"
    while kill -0 "$lg" 2>/dev/null; do
        echo "$(( $(date +%s) - started )) $(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status") $(cpu_ticks) $(du -sk "$TIERLINE_DATA" | cut -f1)" >>"$samples"
        sleep 10
    done
    wait "$lg" || true
    stop_server
    cat "$samples"
    grep -h -o '"sustained": [a-z]*' "$out" || true
}

# ------------------------------------------------------------------------------------------------
# Flame graphs: where the CPU goes, for the two targets still missed (docs/BENCHMARKS.md,
# "Flame graphs"). perf (Debian: linux-perf) with DWARF call stacks; inferno renders them
# (installed with `cargo install inferno` if absent).
#   - daemon.svg: `tierline serve` (config/bench.toml, sync = batch) under FLAME_RATE events/s
#     from the generator (128 connections), sampled for FLAME_SECONDS after 3 s of load;
#   - engine-agent-frees.svg: the engine benchmark's freed agent at 500,000 waiting, only the
#     timed operation (stacks through `time_each`), not the fixture's build.
# ------------------------------------------------------------------------------------------------
FLAME_RATE=${FLAME_RATE:-10000}
FLAME_SECONDS=${FLAME_SECONDS:-5}
flame_tools() {
    command -v perf >/dev/null || { echo "perf is needed (Debian: apt-get install linux-perf)" >&2; exit 2; }
    if ! command -v inferno-flamegraph >/dev/null; then cargo install inferno --locked --quiet; fi
}
render() {  # perf.data out.svg title [stack filter]
    perf script -i "$1" 2>/dev/null | inferno-collapse-perf 2>/dev/null | grep -e "${4:-.}" \
        | inferno-flamegraph --title "$3" --width 1600 >"$2"
    echo "wrote $2"
}
flamegraph_part() {
    flame_tools
    echo "## flame graphs: building release and the engine benchmark"
    cargo build --release --quiet
    local engine
    engine=$(cargo bench --no-run --bench engine 2>&1 | grep -o 'target/release/deps/engine-[a-z0-9]*' | head -1)
    start_tierline batch
    loadgen tierline "http://$API" "$FLAME_RATE" "$((FLAME_SECONDS + 6))s" "$OUT/flame-load.json" >/dev/null &
    local lg=$!
    sleep 3
    perf record -F 999 --call-graph dwarf,16384 -p "$SERVER_PID" -o "$WORKDIR/daemon.data" \
        -- sleep "$FLAME_SECONDS" 2>/dev/null >/dev/null
    wait "$lg" || true
    stop_server
    render "$WORKDIR/daemon.data" "$OUT/daemon.svg" \
        "tierline serve, $FLAME_RATE events/s, sync = batch ($(git rev-parse --short HEAD 2>/dev/null))"
    TIERLINE_BENCH_SIZES=500000 perf record -F 999 --call-graph dwarf,16384 -o "$WORKDIR/engine.data" \
        -- "$engine" --bench agent_frees/500000 --profile-time 10 >/dev/null 2>&1
    render "$WORKDIR/engine.data" "$OUT/engine-agent-frees.svg" \
        "engine: agent frees at 500,000 waiting, timed operation only" time_each
}

case $PART in
    all) machine; engine_part; http_part; soak_part ;;
    flamegraph) machine; flamegraph_part ;;
    http) machine; http_part ;;
    soak) machine; soak_part ;;
    summary) summarize ;;
    ab) machine; ab_part ;;
    *) echo "usage: $0 [all|http|soak|summary|ab|flamegraph]" >&2; exit 2 ;;
esac
