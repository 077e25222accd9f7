#!/usr/bin/env python3
"""Development-only stand-in for tierline's Kamailio adapter.

Proves the SIP side (Kamailio + SIPp) before tierline is involved: every `/route` is answered at
once with single-line rtjson to one agent, every `/report` is logged and answered 204. Calls to
`--hold-queue` are held like a queue with no free agent: answered 410 once the caller's CANCEL is
reported, or 202 ("ask again") after `--hold-s`. Not used by
CI or in production.

    python3 stub_router.py [--port 8089] [--agent sip:agent1@127.0.0.1:5071] [--ring-ms 3000]
"""

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8089)
    ap.add_argument("--agent", action="append", default=None,
                    help="agent address; repeat to rotate through several")
    ap.add_argument("--ring-ms", type=int, default=3000)
    ap.add_argument("--hold-queue", default="billing",
                    help="calls to this queue wait (up to --hold-s) for an abandon, never an agent")
    ap.add_argument("--hold-s", type=float, default=20.0)
    args = ap.parse_args()
    gone = {}
    agents = args.agent or ["sip:agent1@127.0.0.1:5071"]
    turn = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        def _body(self):
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            try:
                return json.loads(raw or b"{}")
            except ValueError:
                return {"_raw": raw.decode("utf-8", "replace")}

        def _send(self, status, doc=None):
            data = b"" if doc is None else json.dumps(doc, separators=(",", ":")).encode()
            self.send_response(status)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            body = self._body()
            print(f"{self.path} {json.dumps(body)}", file=sys.stderr, flush=True)
            if self.path.endswith("/route") and body.get("queue") == args.hold_queue:
                ev = gone.setdefault(body.get("call_id"), threading.Event())
                self._send(410 if ev.wait(args.hold_s) else 202)
            elif self.path.endswith("/route"):
                agent = agents[turn["n"] % len(agents)]
                turn["n"] += 1
                self._send(200, {
                    "version": "1.0", "routing": "serial",
                    "routes": [{"uri": agent, "fr_timer": args.ring_ms,
                                "fr_inv_timer": args.ring_ms}],
                    "agent": agent.split(":")[1].split("@")[0],
                    "offer": f"o{turn['n']}",
                })
            elif self.path.endswith("/report"):
                if body.get("event") == "abandoned":
                    gone.setdefault(body.get("call_id"), threading.Event()).set()
                self._send(204)
            else:
                self._send(404, {"error": {"code": "not_found", "message": self.path}})

        def log_message(self, *a):
            pass

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
