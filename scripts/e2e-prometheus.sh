#!/usr/bin/env bash
# End-to-end proof of tierline's metrics against a real Prometheus (issue 4).
#
#  1. Installs Prometheus from Debian if missing (and stops any system service that starts).
#  2. Starts its own Prometheus on loopback (temp data dir, 1 s scrape interval).
#  3. Starts tierline and drives the day in miniature (tests/metrics_support/day.rs: two queues,
#     voice and chat, answers, abandons, ladder escalations, ratings, not-ready agents).
#  4. `promtool check metrics` on the scraped text, `promtool check rules` on the rules, and
#     `promtool test rules` (config/prometheus-rules.test.yml: every recording rule and alert).
#  5. Every PromQL expression of grafana/dashboards/tierline-wallboard.json (variables
#     substituted, for "all queues" and for each queue) must return at least one series, and the
#     key ones must equal what the scenario implies.
#  6. Negative self-check: the same checker, run on a copy of the dashboard with one metric
#     renamed and one query broken, must fail.
#
# TIERLINE_MODE=standin (default) runs `examples/metrics_day.rs`, a stand-in that drives the
# same engine + telemetry + metrics code the daemon uses. When the daemon serves /metrics, the
# `start_tierline` function below is the only part to switch (see its comment).
#
# Usage: scripts/e2e-prometheus.sh   (needs root for apt-get if Prometheus is missing)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODE="${TIERLINE_MODE:-standin}"
UNIT_MS=100          # 1 scenario unit = 100 ms: the day lasts 40 s
WORK="$(mktemp -d -t tierline-e2e.XXXXXX)"
PIDS=()

log() { printf '[e2e] %s\n' "$*" >&2; }
fail() { printf '[e2e] FAIL: %s\n' "$*" >&2; exit 1; }

cleanup() {
  local pid
  for pid in "${PIDS[@]:-}"; do
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# --- 1. Prometheus from Debian ---------------------------------------------------------------
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  log "installing prometheus from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq prometheus >/dev/null
fi
# The package may start a system service (where an init system runs): we want only our own.
for svc in prometheus prometheus-node-exporter; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
    systemctl disable "$svc" >/dev/null 2>&1 || true
  elif command -v service >/dev/null && service "$svc" status >/dev/null 2>&1; then
    service "$svc" stop >/dev/null 2>&1 || true
  fi
done
command -v python3 >/dev/null || fail "python3 is needed for the PromQL checks"
log "$(prometheus --version 2>&1 | head -1)"

# --- 2. tierline ---------------------------------------------------------------------------------
METRICS_PORT="$(free_port)"
PROM_PORT="$(free_port)"
TL_OUT="$WORK/tierline.out"

# start_tierline: serve /metrics on 127.0.0.1:$METRICS_PORT with every counter at 0.
# start_day: drive the day; "day done" must appear in $TL_OUT when it is over.
# Prometheus must have scraped the zeros before the first event: increase() is exact only from a
# zero sample, and the scenario's ratios are checked to 1e-6.
# For the daemon: start `tierline serve` with a config equal to day::config(UNIT_MS) and
# `[metrics] listen`; in start_day post day::events() to /v1/events at t * UNIT_MS from now, then
# echo "day done" >>"$TL_OUT"; keep the daemon running afterwards.
start_tierline() {
  case "$MODE" in
    standin)
      cargo build --quiet --example metrics_day
      mkfifo "$WORK/go"
      "$ROOT/target/debug/examples/metrics_day" "127.0.0.1:$METRICS_PORT" "$UNIT_MS" stdin \
        <"$WORK/go" >"$TL_OUT" 2>&1 &
      PIDS+=("$!")
      exec 3>"$WORK/go" # held open until start_day writes the go line
      ;;
    *) fail "unknown TIERLINE_MODE=$MODE" ;;
  esac
}

start_day() {
  case "$MODE" in
    standin) echo go >&3 ;;
  esac
}

zeros_scraped() {
  curl -fsS "$PROM/api/v1/query" --data-urlencode 'query=count(tierline_interactions_answered_total == 0) >= 3' |
    grep -q '"result":\[{'
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what="$2"
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out waiting for $what"
    sleep 0.2
  done
}

# --- 3. our own Prometheus -------------------------------------------------------------------------
cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $ROOT/config/prometheus-rules.yml
scrape_configs:
  - job_name: tierline
    static_configs:
      - targets: ["127.0.0.1:$METRICS_PORT"]
EOF
start_tierline
wait_for 300 "tierline /metrics" curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/data" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$WORK/prometheus.log" 2>&1 &
PIDS+=("$!")
PROM="http://127.0.0.1:$PROM_PORT"
wait_for 30 "prometheus ready" curl -fsS "$PROM/-/ready"
wait_for 60 "prometheus to scrape the zero counters" zeros_scraped
log "prometheus on $PROM, tierline metrics on 127.0.0.1:$METRICS_PORT; driving the day"
start_day
wait_for 120 "the day to finish" grep -q "day done" "$TL_OUT"
sleep 3 # a few scrapes after the last event

# --- 4. promtool ---------------------------------------------------------------------------------
curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics" >"$WORK/scrape.txt"
if ! promtool check metrics <"$WORK/scrape.txt" >"$WORK/lint.txt" 2>&1; then
  cat "$WORK/lint.txt" >&2
  fail "promtool check metrics"
fi
log "promtool check metrics: clean"
promtool check rules "$ROOT/config/prometheus-rules.yml" >"$WORK/rules.txt" 2>&1 ||
  { cat "$WORK/rules.txt" >&2; fail "promtool check rules"; }
log "promtool check rules: clean"
(cd "$ROOT/config" && promtool test rules prometheus-rules.test.yml) >"$WORK/rules-test.txt" 2>&1 ||
  { cat "$WORK/rules-test.txt" >&2; fail "promtool test rules (alert and recording rule unit tests)"; }
log "promtool test rules: recording rules and all four alerts behave as specified"

# --- 5. every dashboard query, and the scenario's numbers ---------------------------------------
cat >"$WORK/check.py" <<'PY'
import json, math, sys, urllib.parse, urllib.request

prom, dashboard_path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
# Queries whose data only the daemon produces (no subscribers in the stand-in).
DAEMON_ONLY = {"tierline_subscriber_deliveries_total"} if mode == "standin" else set()
QUEUES = ["billing", "support"]

def query(expr):
    url = prom + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        body = json.load(e)
    if body.get("status") != "success":
        raise ValueError(body.get("error", body))
    return body["data"]["result"]

def substitute(expr, queue):
    return (expr.replace("$__rate_interval", "10s").replace("$__range", "10m")
                .replace("${queue}", queue).replace("$queue", queue))

with open(dashboard_path) as f:
    dash = json.load(f)
problems, checked = [], 0
for panel in dash["panels"]:
    for target in panel.get("targets", []):
        raw = target["expr"]
        for queue in ([".*"] + QUEUES) if "$queue" in raw else [".*"]:
            expr = substitute(raw, queue)
            try:
                result = query(expr)
            except ValueError as e:
                problems.append(f'{panel["title"]!r}: query error: {e}: {expr}')
                continue
            checked += 1
            # "All queues" must show data; a single queue may lack a channel (no chat in support).
            if queue == ".*" and not result and not any(m in raw for m in DAEMON_ONLY):
                problems.append(f'{panel["title"]!r} (queue={queue}): no series: {expr}')

def by_queue(expr):
    return {r["metric"].get("queue", ""): float(r["value"][1]) for r in query(expr)}

def panel_expr(title, ref="A"):
    for p in dash["panels"]:
        if p["title"] == title:
            return next(t["expr"] for t in p["targets"] if t["refId"] == ref)
    problems.append(f"no panel titled {title!r}")
    return "vector(0)"

def expect(what, got, want, tol=1e-6):
    ok = got is not None and not math.isnan(got) and abs(got - want) <= tol
    print(f"  {what}: {got} (expected {want}) {'ok' if ok else 'WRONG'}")
    if not ok:
        problems.append(f"{what}: got {got}, expected {want}")

def one(expr):
    r = query(expr)
    return float(r[0]["value"][1]) if len(r) == 1 else None

try:
    print("key values:")
    expect("calls waiting in support", one(substitute(panel_expr("Calls waiting"), "support")), 1)
    expect("chats waiting (all queues)", one(substitute(panel_expr("Chats waiting"), ".*")), 0)
    expect("answered in total", one("sum(tierline_interactions_answered_total)"), 6)
    sl = by_queue(substitute(panel_expr("Service level (selected range)"), ".*"))
    expect("service level billing (2 in SLA / (3 answered + 1 abandoned))", sl.get("billing"), 0.5)
    expect("service level support (3 / (3 + 1))", sl.get("support"), 0.75)
    asa = by_queue(substitute(panel_expr("ASA (selected range)"), ".*"))
    expect("ASA billing ((0.4 + 3.3 + 1.0) / 3 s)", asa.get("billing"), 4.7 / 3)
    ab = by_queue(substitute(panel_expr("Abandon rate (selected range)"), ".*"))
    expect("abandon rate support", ab.get("support"), 0.25)
    expect("first-contact resolution (3 resolved / 5 ended)",
           one(substitute(panel_expr("First-contact resolution (target >= 90 %)"), ".*")), 0.6)
    expect("satisfaction (ratings 5, 3, 4)",
           one(substitute(panel_expr("Satisfaction (target >= 85 %)"), ".*")), 2 / 3)
    expect("complaint share (1 of 10 arrivals)",
           one(substitute(panel_expr("Complaint share (target <= 1 %)"), ".*")), 0.1)
    agents = {(r["metric"]["tier"], r["metric"]["state"]): float(r["value"][1])
              for r in query(substitute(panel_expr("Agents by state and tier"), "support"))}
    expect("support L1 busy (cat)", agents.get(("1", "busy")), 1)
    expect("support L1 not ready (eve)", agents.get(("1", "not_ready")), 1)
    expect("support L2 not ready (dan)", agents.get(("2", "not_ready")), 1)
    esc = {(r["metric"]["queue"], r["metric"]["step"]): float(r["value"][1])
           for r in query('sum by (queue, step) (tierline_escalations_total)')}
    expect("ladder escalations in support", esc.get(("support", "1")), 3)
    oldest = one(substitute(panel_expr("Longest wait"), "support"))
    print(f"  longest wait in support: {oldest} s (s4 waits since 34 s of the day)")
    if oldest is None or oldest < 0.6:
        problems.append(f"longest wait in support should be >= 0.6 s, got {oldest}")
except ValueError as e:
    problems.append(f"key value query failed: {e}")

print(f"{checked} dashboard queries run")
for p in problems:
    print("PROBLEM:", p)
sys.exit(1 if problems else 0)
PY

log "checking every dashboard query against Prometheus"
python3 "$WORK/check.py" "$PROM" "$ROOT/grafana/dashboards/tierline-wallboard.json" "$MODE" ||
  fail "dashboard queries (see PROBLEM lines above)"

# --- 6. the checker must catch a renamed metric and a broken query -----------------------------
python3 - "$ROOT/grafana/dashboards/tierline-wallboard.json" "$WORK/broken.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
renamed = broken = False
for p in d["panels"]:
    for t in p.get("targets", []):
        if not renamed and "tierline_queue_oldest_wait_seconds" in t["expr"]:
            t["expr"] = t["expr"].replace("tierline_queue_oldest_wait_seconds", "tierline_queue_oldest_wait")
            renamed = True
        elif not broken and "histogram_quantile" in t["expr"]:
            t["expr"] = t["expr"].replace("sum by (le)", "sum by (le")
            broken = True
assert renamed and broken
json.dump(d, open(sys.argv[2], "w"))
PY
if python3 "$WORK/check.py" "$PROM" "$WORK/broken.json" "$MODE" >"$WORK/negative.txt" 2>&1; then
  cat "$WORK/negative.txt" >&2
  fail "negative self-check: a renamed metric and a broken query went unnoticed"
fi
grep -q "no series: .*tierline_queue_oldest_wait\b" "$WORK/negative.txt" ||
  fail "negative self-check: the renamed metric was not reported"
grep -q "query error" "$WORK/negative.txt" || fail "negative self-check: the broken query was not reported"
log "negative self-check: renamed metric and broken query are caught"
log "PASS"
