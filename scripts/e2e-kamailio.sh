#!/usr/bin/env bash
# End to end with a real PBX: SIPp callers -> Kamailio -> tierline -> SIPp agent phones, all on
# 127.0.0.1. Runs in well under a minute; CI runs it from .ci/run.
#
#   scripts/e2e-kamailio.sh            (KEEP=1 keeps the work directory with every log)
#
# What runs (every port is one the system hands out free at the start, so a busy 5060 or 18080
# on the machine does not fail the test; the config's agent addresses are rewritten to match):
#   tierline   integrations/kamailio/tierline-e2e.toml (API and metrics on free TCP ports)
#   Kamailio   integrations/kamailio/kamailio.cfg on a free UDP port (the cfg's LISTEN)
#   agents     agent1, agent2 (L1, answer), agent3 (L1, 486), agent4 (L1, never answers),
#              agent5 (L2, answers): SIPp UAS processes, one free UDP port each
#   callers    CALLS patient callers to `support` and ABANDONS impatient callers to `billing`,
#              where no agent is logged in: SIPp UAC processes, one free UDP port each
# What it asserts (from SIPp's counts and tierline's read API): see check() below.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CALLS=${CALLS:-8}
ABANDONS=${ABANDONS:-3}
TALK_MS=${TALK_MS:-4000}
WORK=$(mktemp -d /tmp/tierline-e2e-kamailio.XXXXXX)
PIDS=()
OK=0

log() { printf '==> %s\n' "$*"; }

cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    if [[ $OK != 1 ]]; then
        # CI keeps nothing but the output: show what went wrong there.
        local f
        for f in "$WORK"/*.errors.log; do
            [[ -s $f ]] || continue
            echo "---- $(basename "$f") (last 40 lines)"
            tail -n 40 "$f"
        done
        echo "---- kamailio.log (warnings and errors)"
        grep -E "WARN|ERROR|CRITICAL" "$WORK/kamailio.log" 2>/dev/null | tail -n 40 || true
        echo "---- tierline.log (last 40 lines)"
        tail -n 40 "$WORK/tierline.log" 2>/dev/null || true
    fi
    if [[ $OK == 1 && -z ${KEEP:-} ]]; then
        rm -rf "$WORK"
    else
        echo "logs kept in $WORK"
    fi
}
trap cleanup EXIT

# ---- packages (no system service left running) ----
MODS=/usr/lib/x86_64-linux-gnu/kamailio/modules
need=()
command -v kamailio >/dev/null || need+=(kamailio)
[[ -f $MODS/http_client.so ]] || need+=(kamailio-utils-modules)
[[ -f $MODS/jansson.so ]] || need+=(kamailio-extra-modules)
command -v sipp >/dev/null || need+=(sip-tester)
command -v python3 >/dev/null || need+=(python3)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]})); then
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq kamailio kamailio-utils-modules kamailio-extra-modules sip-tester python3 curl >/dev/null
    # Debian may start the packaged service; this test runs its own processes only.
    if command -v systemctl >/dev/null; then systemctl disable --now kamailio 2>/dev/null || true; fi
    if command -v service >/dev/null; then service kamailio stop 2>/dev/null || true; fi
fi

log "cargo build (tierline binary)"
cargo build --quiet --bin tierline
TIERLINE=$ROOT/target/debug/tierline

cd "$WORK"

# ---- ports: free ones, asked of the system (bound to port 0, then released) ----
free_ports() { # tcp|udp count
    python3 - "$1" "$2" <<'PY'
import socket, sys
kind = socket.SOCK_STREAM if sys.argv[1] == "tcp" else socket.SOCK_DGRAM
held = []
for _ in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    held.append(s)
print(" ".join(str(s.getsockname()[1]) for s in held))
PY
}
read -r API_PORT METRICS_PORT < <(free_ports tcp 2)
read -r SIP_PORT PATIENT_PORT IMPATIENT_PORT AGENT1_PORT AGENT2_PORT AGENT3_PORT AGENT4_PORT \
    AGENT5_PORT < <(free_ports udp 8)
API=http://127.0.0.1:$API_PORT
export E2E_METRICS=http://127.0.0.1:$METRICS_PORT/metrics
# The roster's agent addresses name the phones' ports: rewritten to the ones chosen.
sed -e "s/127\.0\.0\.1:5071/127.0.0.1:$AGENT1_PORT/" -e "s/127\.0\.0\.1:5072/127.0.0.1:$AGENT2_PORT/" \
    -e "s/127\.0\.0\.1:5073/127.0.0.1:$AGENT3_PORT/" -e "s/127\.0\.0\.1:5074/127.0.0.1:$AGENT4_PORT/" \
    -e "s/127\.0\.0\.1:5075/127.0.0.1:$AGENT5_PORT/" \
    "$ROOT/integrations/kamailio/tierline-e2e.toml" >tierline-e2e.toml
log "ports: API $API_PORT, metrics $METRICS_PORT, Kamailio $SIP_PORT, callers $PATIENT_PORT" \
    "$IMPATIENT_PORT, agents $AGENT1_PORT $AGENT2_PORT $AGENT3_PORT $AGENT4_PORT $AGENT5_PORT"

# ---- tierline ----
log "starting tierline"
"$TIERLINE" serve --config tierline-e2e.toml --data "$WORK/data" \
    --listen "127.0.0.1:$API_PORT" --metrics-listen "127.0.0.1:$METRICS_PORT" \
    >tierline.log 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
    curl -sf "$API/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -sf "$API/readyz" >/dev/null || { echo "tierline did not become ready"; cat tierline.log; exit 1; }

post_events() {
    curl -sf -X POST -H 'Content-Type: application/json' --data "$1" "$API/v1/events" >/dev/null
}
log "agents 1-5 log in"
post_events '[{"id":"e2e-login-1","type":"agent.login","agent":"agent1"},
              {"id":"e2e-login-2","type":"agent.login","agent":"agent2"},
              {"id":"e2e-login-3","type":"agent.login","agent":"agent3"},
              {"id":"e2e-login-4","type":"agent.login","agent":"agent4"},
              {"id":"e2e-login-5","type":"agent.login","agent":"agent5"}]'

# ---- agent phones ----
SIPP_DIR=$ROOT/integrations/sipp
start_agent() { # name port scenario [extra sipp args]
    local name=$1 port=$2 scenario=$3
    shift 3
    # -deadcall_wait 0: the same call may come back to a phone (after a decline or a ring-out)
    # with the same Call-ID; SIPp would otherwise swallow it as a message of a finished call.
    sipp -sf "$SIPP_DIR/$scenario" -i 127.0.0.1 -p "$port" -nostdin -trace_err -deadcall_wait 0 \
        -error_file "$WORK/$name.errors.log" "$@" >"$name.out" 2>&1 &
    PIDS+=($!)
}
log "starting agent phones"
start_agent agent1 "$AGENT1_PORT" agent-answer.xml -d "$TALK_MS"
start_agent agent2 "$AGENT2_PORT" agent-answer.xml -d "$TALK_MS"
start_agent agent3 "$AGENT3_PORT" agent-decline.xml
start_agent agent4 "$AGENT4_PORT" agent-noanswer.xml
start_agent agent5 "$AGENT5_PORT" agent-answer.xml -d "$TALK_MS"

# ---- Kamailio ----
log "starting Kamailio"
kamailio -f "$ROOT/integrations/kamailio/kamailio.cfg" -DD -E \
    -A "LISTEN=udp:127.0.0.1:$SIP_PORT" \
    -A "ROUTER_CON=\"router=>$API/v1/adapters/kamailio;timeout=40\"" \
    -A "REPORT_CON=\"report=>$API/v1/adapters/kamailio;timeout=3\"" \
    -A 'ASYNC_WORKERS=16' >kamailio.log 2>&1 &
PIDS+=($!)
for _ in $(seq 1 50); do
    grep -q "udp: 127.0.0.1" kamailio.log 2>/dev/null && break
    sleep 0.1
done
sleep 0.5
kill -0 "${PIDS[-1]}" 2>/dev/null || { echo "Kamailio did not start"; cat kamailio.log; exit 1; }

# ---- callers ----
log "placing $CALLS calls to support and $ABANDONS to billing"
sipp -sf "$SIPP_DIR/caller.xml" "127.0.0.1:$SIP_PORT" -s support -i 127.0.0.1 -p "$PATIENT_PORT" \
    -r 2 -m "$CALLS" -timeout 120s -nostdin -trace_stat -trace_counts -trace_err \
    -stf patient_stat.csv -error_file patient.errors.log >patient.out 2>&1 &
PATIENT=$!
PIDS+=($PATIENT)
sipp -sf "$SIPP_DIR/caller-impatient.xml" "127.0.0.1:$SIP_PORT" -s billing -i 127.0.0.1 \
    -p "$IMPATIENT_PORT" \
    -r 1 -m "$ABANDONS" -timeout 60s -nostdin -trace_stat -trace_counts -trace_err \
    -stf impatient_stat.csv -error_file impatient.errors.log >impatient.out 2>&1 &
IMPATIENT=$!
PIDS+=($IMPATIENT)
rc_patient=0
rc_impatient=0
wait "$PATIENT" || rc_patient=$?
wait "$IMPATIENT" || rc_impatient=$?
log "SIPp callers exited: support $rc_patient, billing $rc_impatient"
# Last BYE reports and wrap-ups (0.5 s) settle.
sleep 1.5

# ---- checks ----
log "checking"
python3 - "$API" "$PATIENT" "$IMPATIENT" "$CALLS" "$ABANDONS" "$rc_patient" "$rc_impatient" <<'EOF'
import csv, glob, json, os, sys, urllib.parse, urllib.request
from datetime import datetime

api, patient, impatient = sys.argv[1], sys.argv[2], sys.argv[3]
calls, abandons = int(sys.argv[4]), int(sys.argv[5])
rc_patient, rc_impatient = int(sys.argv[6]), int(sys.argv[7])
STEP_MS = 2000
failures = []

def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)

def get(path):
    with urllib.request.urlopen(api + path, timeout=10) as r:
        return json.load(r)

def counts(pid):
    rows = list(csv.DictReader(open(glob.glob(f"*_{pid}_counts.csv")[0]), delimiter=";"))
    return rows[-1]

def ms(ts):
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000

pc, ic = counts(patient), counts(impatient)
answered_sipp = int(pc["4_200_Recv"])
cancels_sipp = int(ic["8_CANCEL_Sent"])
check(rc_patient == 0, f"SIPp: every support call succeeded (exit {rc_patient})")
check(rc_impatient == 0, f"SIPp: every billing caller hung up cleanly (exit {rc_impatient})")
check(answered_sipp == calls, f"SIPp: {answered_sipp} of {calls} support calls answered by an agent")
check(int(pc["8_CANCEL_Sent"]) == 0, "SIPp: no support caller had to hang up")
check(cancels_sipp == abandons and int(ic["10_487_Recv"]) == abandons,
      f"SIPp: {cancels_sipp} billing callers hung up while waiting (CANCEL, 487)")

queues = {q["id"]: q for q in get("/v1/queues")["queues"]}
sup, bil = queues["support"]["sla"], queues["billing"]["sla"]
check(sup["arrived"] == calls and sup["answered"] == answered_sipp and sup["abandoned"] == 0,
      f"tierline support: arrived {sup['arrived']}, answered {sup['answered']}, abandoned {sup['abandoned']} "
      f"= SIPp {calls} calls, {answered_sipp} answered")
check(bil["arrived"] == abandons and bil["abandoned"] == cancels_sipp and bil["answered"] == 0,
      f"tierline billing: arrived {bil['arrived']}, abandoned {bil['abandoned']} = SIPp CANCELs {cancels_sipp}")

# The same counts in Prometheus, once serve exports the engine's series (the check becomes
# binding as soon as the series exist; until then it says so).
def metric_sum(text, name, queue):
    total, seen = 0.0, False
    for line in text.splitlines():
        if line.startswith(name + "{") and f'queue="{queue}"' in line:
            total += float(line.rsplit(" ", 1)[1])
            seen = True
    return total if seen else None
try:
    with urllib.request.urlopen(os.environ["E2E_METRICS"], timeout=10) as r:
        prom = r.read().decode()
except OSError as e:
    prom = ""
    print(f"note: no /metrics listener ({e})")
m = {
    "support arrived": (metric_sum(prom, "tierline_interactions_arrived_total", "support"), calls),
    "support answered": (metric_sum(prom, "tierline_interactions_answered_total", "support"), answered_sipp),
    "billing abandoned": (metric_sum(prom, "tierline_interactions_abandoned_total", "billing"), cancels_sipp),
}
if all(v is None for v, _ in m.values()):
    print("note: /metrics has no tierline_interactions_*_total series yet (serve does not export "
          "engine facts); counts were checked through /v1/queues")
else:
    for what, (got, want) in m.items():
        check(got == want, f"metrics {what}: {got} = SIPp {want}")

# Per call: who answered, when it was offered to them, when it ended.
busy = {}  # agent -> [(offered_at, ended_at, call)]
taken_by = {}
declined_by = {"agent3": 0, "agent4": 0}
offers_to = {"agent3": 0, "agent4": 0}
l2_waits = []
views = []
for n in range(1, calls + 1):
    call = f"{n}-{patient}@127.0.0.1"
    view = get("/v1/interactions/" + urllib.parse.quote(call, safe=""))
    views.append(view)
    offered = {}
    accepted = ended = None
    for t in view["history"]:
        why = t["why"]
        if why["kind"] == "offered":
            offered[why["agent"]] = ms(t["at"])
            if why["agent"] in offers_to:
                offers_to[why["agent"]] += 1
        elif why["kind"] == "declined" and why["agent"] in declined_by:
            declined_by[why["agent"]] += 1
        elif why["kind"] == "accepted":
            accepted = (why["agent"], ms(t["at"]))
        elif why["kind"] == "ended":
            ended = ms(t["at"])
    if accepted is None or ended is None:
        check(False, f"call {call} was answered and ended in tierline (state {view['state']})")
        continue
    agent = accepted[0]
    taken_by[call] = agent
    busy.setdefault(agent, []).append((offered[agent], ended, call))
    if agent == "agent5":
        l2_waits.append(offered[agent] - ms(view["entered_queue_at"]))

check(len(taken_by) == answered_sipp, f"tierline: {len(taken_by)} calls accepted = SIPp {answered_sipp} answered")
overlaps = [(a, x[2], y[2]) for a, spans in busy.items()
            for i, x in enumerate(sorted(spans)) for y in sorted(spans)[i + 1:] if y[0] < x[1]]
check(not overlaps, f"no agent had two calls at once {overlaps or ''}")
check(set(taken_by.values()) <= {"agent1", "agent2", "agent5"},
      f"only answering phones took calls: {sorted(set(taken_by.values()))}")
check(len(l2_waits) > 0 and min(l2_waits) >= STEP_MS,
      f"L2 (agent5) took {len(l2_waits)} calls, each only after waiting >= {STEP_MS} ms: "
      f"{sorted(int(w) for w in l2_waits)}")
check(declined_by["agent3"] > 0,
      f"agent3 declined {declined_by['agent3']} offers (486) and every one of those calls was re-routed")
check(declined_by["agent4"] == 1 and offers_to["agent4"] == 1,
      f"agent4 rang out once ({declined_by['agent4']} no-answer) and was never offered again")
a3, a4 = get("/v1/agents/agent3"), get("/v1/agents/agent4")
json.dump({"interactions": views, "agents": get("/v1/agents")["agents"]},
          open("tierline-state.json", "w"), indent=1)
check(a4["status"] == "not_ready" and a4["reason"] == "no_answer",
      f"agent4 is {a4['status']} ({a4['reason']}) after max_no_answer = 1")
check(declined_by["agent3"] == 1 and offers_to["agent3"] == 1,
      f"agent3 declined once (486) and was never offered again ({offers_to['agent3']} offers)")
check(a3["status"] == "not_ready" and a3["reason"] == "declined",
      f"agent3 is {a3['status']} ({a3['reason']}) after max_no_answer = 1 (486 counts: count_declines)")
for a in ("agent1", "agent2", "agent5"):
    v = get(f"/v1/agents/{a}")
    check(v["activity"] == "available", f"{a} is free again after its calls ({v['activity']})")

print(f"{len(failures) == 0 and 'e2e-kamailio: all checks passed' or 'e2e-kamailio: FAILED'}")
sys.exit(1 if failures else 0)
EOF
OK=1
