#!/usr/bin/env bash
# End-to-end proof of tierline's metrics: the real daemon, scraped by a real Prometheus (issue 4).
#
#  1. Installs Prometheus from Debian if missing (and stops any system service that starts).
#  2. Builds and starts `tierline serve` (debug build: in CI `cargo test` has already built it)
#     with the day in miniature's config (tests/metrics_support/day.rs, written out by
#     examples/day_driver.rs), its own API and metrics ports, and one `[[subscriber]]` pointing
#     at a tiny local receiver so the subscriber panel has data.
#  3. Starts its own Prometheus on loopback (temp data dir, 1 s scrape interval), waits until it
#     has scraped every counter at 0, then drives the day over HTTP as a PBX would (day_driver:
#     each event at its time, a live reload through PUT /v1/config, one refused event).
#  4. Every PromQL expression of grafana/dashboards/tierline-wallboard.json (variables
#     substituted, for "all queues" and for each queue) must return at least one series, and the
#     key ones must equal what the scenario implies. These run first, while the day's state holds.
#  5. `promtool check metrics` on the scraped text, `promtool check rules` on the rules, and
#     `promtool test rules` (config/prometheus-rules.test.yml: every recording rule and alert).
#  6. Negative self-check: the same checker, run on a copy of the dashboard with one metric
#     renamed and one query broken, must fail.
#
# Time: 1 scenario unit = 100 ms, so the day lasts 40 s. In the day's own config support's s4
# (waiting since 34 s) overflows at 46 s, which would race the checks; this run gives support a
# max_wait of 1200 units (2 minutes) instead, so "1 call waiting" still holds while the checks
# run. Everything else is exactly the day the unit tests check. Waits go through real HTTP, so
# the ASA checks allow 50 ms; every count and count ratio is checked exactly.
#
# Every process it starts (tierline, Prometheus, the receiver) is stopped on exit, pass or fail.
#
# Usage: scripts/e2e-prometheus.sh   (needs root for apt-get if Prometheus is missing)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
UNIT_MS=100
SUPPORT_MAX_WAIT_UNITS=1200
WORK="$(mktemp -d -t tierline-e2e.XXXXXX)"
PIDS=()

log() { printf '[e2e] %s\n' "$*" >&2; }
fail() {
  printf '[e2e] FAIL: %s\n' "$*" >&2
  if [[ -s "$WORK/tierline.log" ]]; then
    printf '[e2e] last lines of the tierline log:\n' >&2
    tail -n 20 "$WORK/tierline.log" >&2
  fi
  exit 1
}

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

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what="$2"
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out waiting for $what"
    sleep 0.2
  done
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
command -v python3 >/dev/null || fail "python3 is needed for the receiver and the PromQL checks"
command -v curl >/dev/null || fail "curl is needed"
log "$(prometheus --version 2>&1 | head -1)"

# --- 2. tierline, and a subscriber for its decisions -------------------------------------------
log "building tierline and the day driver"
cargo build --quiet --bin tierline --example day_driver
TIERLINE="$ROOT/target/debug/tierline"
DRIVER="$ROOT/target/debug/examples/day_driver"
API_PORT="$(free_port)"
METRICS_PORT="$(free_port)"
PROM_PORT="$(free_port)"
SUB_PORT="$(free_port)"
API="http://127.0.0.1:$API_PORT"
PROM="http://127.0.0.1:$PROM_PORT"
RECEIVER="http://127.0.0.1:$SUB_PORT"

# The subscriber: answers every POST 200 and counts the decisions it got (GET tells the count).
cat >"$WORK/receiver.py" <<'PY'
import http.server, json, sys

class Receiver(http.server.BaseHTTPRequestHandler):
    received = 0

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Receiver.received += len(json.loads(body)["decisions"])
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        text = str(Receiver.received).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Receiver).serve_forever()
PY
python3 "$WORK/receiver.py" "$SUB_PORT" >"$WORK/receiver.log" 2>&1 &
PIDS+=("$!")

"$DRIVER" config "$UNIT_MS" "$SUPPORT_MAX_WAIT_UNITS" "127.0.0.1:$API_PORT" \
  "127.0.0.1:$METRICS_PORT" "$RECEIVER/decisions" >"$WORK/tierline.toml"
# The journal goes to the work directory: never the repository's ./data (a previous run's journal
# there would be replayed into this one).
printf '\n[journal]\ndir = "%s"\n' "$WORK/journal" >>"$WORK/tierline.toml"
"$TIERLINE" check-config "$WORK/tierline.toml" >/dev/null || fail "the day's config does not validate"
RUST_LOG=warn "$TIERLINE" serve --config "$WORK/tierline.toml" >"$WORK/tierline.log" 2>&1 &
PIDS+=("$!")
wait_for 30 "tierline /readyz" curl -fsS "$API/readyz"
wait_for 30 "tierline /metrics" curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics"
wait_for 10 "the subscriber receiver" curl -fsS "$RECEIVER/"

# --- 3. our own Prometheus, then the day ---------------------------------------------------------
cat >"$WORK/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $ROOT/config/prometheus-rules.yml
scrape_configs:
  - job_name: tierline
    static_configs:
      - targets: ["127.0.0.1:$METRICS_PORT"]
YML
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/data" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$WORK/prometheus.log" 2>&1 &
PIDS+=("$!")
wait_for 30 "prometheus ready" curl -fsS "$PROM/-/ready"

# increase() is exact only from a zero sample, and the scenario's ratios are checked exactly:
# Prometheus must have scraped every counter at 0 before the first event.
zeros_scraped() {
  curl -fsS "$PROM/api/v1/query" --data-urlencode 'query=count(tierline_interactions_answered_total == 0) >= 3' |
    grep -q '"result":\[{'
}
wait_for 60 "prometheus to scrape the zero counters" zeros_scraped
log "tierline on $API (metrics :$METRICS_PORT), prometheus on $PROM; driving the day (40 s)"
"$DRIVER" drive "$API" "$UNIT_MS" "$WORK/tierline.toml" >"$WORK/driver.out" 2>&1 ||
  { cat "$WORK/driver.out" >&2; fail "the day driver"; }
EVENTS="$(sed -n 's/^events posted: //p' "$WORK/driver.out")"
grep -q "day done" "$WORK/driver.out" && [[ -n "$EVENTS" ]] ||
  { cat "$WORK/driver.out" >&2; fail "the day driver did not finish"; }
received_decisions() { [[ "$(curl -fsS "$RECEIVER/")" -gt 0 ]]; }
wait_for 15 "the subscriber to receive decisions" received_decisions
sleep 3 # a few scrapes after the last event

# --- 4. every dashboard query, and the scenario's numbers ---------------------------------------
cat >"$WORK/check.py" <<'PY'
import json, math, sys, urllib.parse, urllib.request

prom, dashboard_path, events = sys.argv[1], sys.argv[2], int(sys.argv[3])
api = sys.argv[4] if len(sys.argv) > 4 else None
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
            if queue == ".*" and not result:
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

# Waits are measured by the daemon between two HTTP requests: allow 50 ms of delivery jitter.
WAIT_TOL = 0.05

try:
    print("key values:")
    expect("calls waiting in support", one(substitute(panel_expr("Calls waiting"), "support")), 1)
    expect("chats waiting (all queues)", one(substitute(panel_expr("Chats waiting"), ".*")), 0)
    # No queue of the day serves email or callback: the tiles read 0, not "no data". Their
    # fallback (`or (0 * ...)`) would hide a misspelt metric, so the same query without it, asked
    # for voice, must count support's waiting call like the calls tile; and a selection with no
    # series at all (tierline down, or not scraped) reads "no data", not a green 0.
    expect("emails waiting (all queues)", one(substitute(panel_expr("Emails waiting"), ".*")), 0)
    expect("callbacks waiting in support", one(substitute(panel_expr("Callbacks waiting"), "support")), 0)
    for title, channel in (("Emails waiting", "email"), ("Callbacks waiting", "callback")):
        expr = panel_expr(title)
        bare = expr.split(" or ", 1)[0].replace(f'channel="{channel}"', 'channel="voice"')
        expect(f"{title!r} without its fallback, for voice, in support", one(substitute(bare, "support")), 1)
        gone = query(substitute(expr, "no-such-queue"))
        print(f"  {title!r} for a selection with no series: {gone} (expected no series)")
        if gone:
            problems.append(f"{title!r} reads {gone} for a selection with no series, not no data")
    expect("answered in total", one("sum(tierline_interactions_answered_total)"), 6)
    sl = by_queue(substitute(panel_expr("Service level (selected range)"), ".*"))
    expect("service level billing (2 in SLA / (3 answered + 1 abandoned))", sl.get("billing"), 0.5)
    expect("service level support (3 / (3 + 1))", sl.get("support"), 0.75)
    asa = by_queue(substitute(panel_expr("ASA (selected range)"), ".*"))
    expect("ASA billing ((0.4 + 3.3 + 1.0) / 3 s)", asa.get("billing"), 4.7 / 3, WAIT_TOL)
    ab = by_queue(substitute(panel_expr("Abandon rate (selected range)"), ".*"))
    expect("abandon rate support", ab.get("support"), 0.25)
    expect("first-contact resolution (3 resolved / 5 ended)",
           one(substitute(panel_expr("First-contact resolution (target >= 90 %)"), ".*")), 0.6)
    expect("satisfaction (ratings 5, 3, 4)",
           one(substitute(panel_expr("Satisfaction (target >= 85 %)"), ".*")), 2 / 3)
    expect("complaint share (1 of 10 arrivals)",
           one(substitute(panel_expr("Complaint share (target <= 1 %)"), ".*")), 0.1)
    agents = {(r["metric"]["tier"], r["metric"]["state"]): float(r["value"][1])
              for r in query(substitute(panel_expr("Agents by state and tier (per queue served)"), "support"))}
    expect("support L1 busy (cat)", agents.get(("1", "busy")), 1)
    expect("support L1 not ready (eve)", agents.get(("1", "not_ready")), 1)
    expect("support L2 not ready (dan)", agents.get(("2", "not_ready")), 1)
    # The centre panel counts each agent once: it must equal a count of the daemon's own agent
    # list by activity (the per-queue panel summed over all queues counts some agents twice).
    centre = {r["metric"]["state"]: float(r["value"][1])
              for r in query(panel_expr("Agents in the centre (each counted once)"))}
    if api:
        with urllib.request.urlopen(api + "/v1/agents", timeout=10) as r:
            listed = json.load(r)["agents"]
        by_activity = {}
        for a in listed:
            by_activity[a["activity"]] = by_activity.get(a["activity"], 0) + 1
        for state in sorted(set(by_activity) | set(centre)):
            expect(f"agents {state} in the centre (GET /v1/agents)",
                   centre.get(state, 0.0), by_activity.get(state, 0))
        print(f"  agents in the centre: {sum(centre.values())} "
              f"(the per-queue panel over all queues: "
              f"{one(substitute('sum(' + panel_expr('Agents by state and tier (per queue served)') + ')', '.*'))})")
    esc = {(r["metric"]["queue"], r["metric"]["step"]): float(r["value"][1])
           for r in query('sum by (queue, step) (tierline_escalations_total)')}
    expect("ladder escalations in support", esc.get(("support", "1")), 3)
    oldest = one(substitute(panel_expr("Longest wait"), "support"))
    print(f"  longest wait in support: {oldest} s (s4 waits since 34 s of the day)")
    if oldest is None or oldest < 0.6:
        problems.append(f"longest wait in support should be >= 0.6 s, got {oldest}")
    # What only the daemon's own layers record.
    expect("events answered 200 (every event of the day, one request each)",
           one('sum(tierline_http_requests_total{route="/v1/events",status="200"})'), events)
    expect("events refused (the one bogus accept)",
           one('sum(tierline_http_requests_total{route="/v1/events",status=~"4.."})'), 1)
    expect("live reloads applied (PUT /v1/config at 25 s)",
           one('sum(tierline_config_reloads_total{result="ok"})'), 1)
    delivered = one('sum(tierline_subscriber_deliveries_total{subscriber="pbx",result="ok"})')
    print(f"  decision batches delivered to the subscriber: {delivered}")
    if delivered is None or delivered < 1:
        problems.append(f"the subscriber should have had deliveries, got {delivered}")
    expect("commands queued for the engine now", one("max(tierline_event_queue_depth)"), 0)
except ValueError as e:
    problems.append(f"key value query failed: {e}")

print(f"{checked} dashboard queries run")
for p in problems:
    print("PROBLEM:", p)
sys.exit(1 if problems else 0)
PY

log "checking every dashboard query against Prometheus"
python3 "$WORK/check.py" "$PROM" "$ROOT/grafana/dashboards/tierline-wallboard.json" "$EVENTS" "$API" ||
  fail "dashboard queries (see PROBLEM lines above)"

# --- 5. promtool ---------------------------------------------------------------------------------
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
log "promtool test rules: recording rules and all five alerts behave as specified"

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
if python3 "$WORK/check.py" "$PROM" "$WORK/broken.json" "$EVENTS" >"$WORK/negative.txt" 2>&1; then
  cat "$WORK/negative.txt" >&2
  fail "negative self-check: a renamed metric and a broken query went unnoticed"
fi
grep -q "no series: .*tierline_queue_oldest_wait\b" "$WORK/negative.txt" ||
  fail "negative self-check: the renamed metric was not reported"
grep -q "query error" "$WORK/negative.txt" || fail "negative self-check: the broken query was not reported"
log "negative self-check: renamed metric and broken query are caught"
log "PASS"
