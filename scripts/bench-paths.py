#!/usr/bin/env python3
"""What path tracing costs in packets: `diemcau demo` probes N emulated endpoints behind three
tiers of emulated routers (the monitor's gateway, one core per carrier, one router per carrier
and province), at the default settings (10 s interval, 3 packets, [paths] budget 0.05). Reports
how long every baseline takes to learn, the trace requests against the regular echo requests
while learning and afterwards, and the traces refused by the engine's budget.

    scripts/bench-paths.py BINARY [N]     (called by `scripts/bench paths`)

Every packet stays inside the demo's private network namespace. Bounded: gives up after
LEARN_LIMIT seconds (default 1500), then watches STEADY seconds (default 60) more.
"""

import csv
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

BIN = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
LEARN_LIMIT = float(os.environ.get("LEARN_LIMIT", "1500"))
STEADY = float(os.environ.get("STEADY", "60"))
PORT = 19897


def scenario(rows):
    carriers = sorted({r["carrier"] for r in rows})
    provinces = sorted({r["province"] for r in rows})
    out = ['[defaults]\ndelay = { kind = "fixed", ms = 5.0 }\n',
           '[[router]]\nname = "gw"\naddress = "198.19.0.254"\ndelay = { kind = "fixed", ms = 0.5 }\n']
    for c, carrier in enumerate(carriers):
        out.append(f'[[router]]\nname = "core-{c}"\naddress = "198.19.1.{c + 1}"\nparent = "gw"\n'
                   f'select = {{ carrier = "{carrier}" }}\ndelay = {{ kind = "fixed", ms = 1.0 }}\n')
        for p, province in enumerate(provinces):
            out.append(f'[[router]]\nname = "prov-{c}-{p}"\naddress = "198.19.{2 + c}.{p + 1}"\n'
                       f'parent = "core-{c}"\nselect = {{ province = "{province}" }}\n'
                       f'delay = {{ kind = "fixed", ms = 2.0 }}\n')
    return "".join(out)


def metrics():
    with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/metrics", timeout=10) as r:
        text = r.read().decode()
    def total(name):
        return sum(float(m) for m in re.findall(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.M))
    return {
        "baselines": total("diemcau_path_baselines"),
        "trace_requests": total("diemcau_path_trace_requests_total"),
        "regular": total("diemcau_endpoint_packets_sent_total"),
        "sent": sum(float(m) for m in re.findall(r'^diemcau_path_traces_total\{result="sent"\} (\S+)$', text, re.M)),
        "refused": sum(float(m) for m in re.findall(r'^diemcau_path_traces_total\{result="refused"\} (\S+)$', text, re.M)),
    }


def main():
    with tempfile.TemporaryDirectory() as d:
        inv = os.path.join(d, "inventory.csv")
        subprocess.run([BIN, "inventory", "generate", "--era", "2021", "--endpoints", str(N),
                        "--first-address", "198.18.0.1", "--out", inv], check=True)
        rows = list(csv.DictReader(open(inv, encoding="utf-8")))
        open(os.path.join(d, "scenario.toml"), "w", encoding="utf-8").write(scenario(rows))
        open(os.path.join(d, "diemcau.toml"), "w").write(
            f'[web]\nlisten_address = "127.0.0.1:{PORT}"\n[inventory]\nfiles = ["inventory.csv"]\n')
        log = open(os.path.join(d, "demo.log"), "w")
        demo = subprocess.Popen([BIN, "demo", "--config", os.path.join(d, "diemcau.toml"),
                                 "--scenario", os.path.join(d, "scenario.toml"), "--log.level", "warn"],
                                stderr=log)
        try:
            start = time.time()
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{PORT}/-/ready", timeout=2)
                    break
                except Exception:
                    if time.time() - start > 120 or demo.poll() is not None:
                        sys.exit("the demo did not become ready; see its log")
                    time.sleep(1)
            t0, m0 = time.time(), metrics()
            m, learned = m0, None
            while time.time() - t0 < LEARN_LIMIT:
                time.sleep(10)
                m = metrics()
                print(f"progress t={time.time() - t0:.0f}s baselines={m['baselines']:.0f} "
                      f"trace_requests={m['trace_requests']:.0f} refused={m['refused']:.0f}", flush=True)
                if m["baselines"] >= N:
                    learned = time.time() - t0
                    break
            t1 = time.time()
            d_trace, d_regular = m["trace_requests"] - m0["trace_requests"], m["regular"] - m0["regular"]
            print(f"RESULT paths-learning n={N} routers_per_path=3 learned_s={learned if learned else float('nan'):.0f} "
                  f"baselines={m['baselines']:.0f} traces={m['sent'] - m0['sent']:.0f} refused={m['refused'] - m0['refused']:.0f} "
                  f"trace_requests={d_trace:.0f} regular_requests={d_regular:.0f} "
                  f"extra_packets_pct={d_trace * 100 / max(d_regular, 1):.2f} "
                  f"requests_per_trace={d_trace / max(m['sent'] - m0['sent'], 1):.2f} window_s={t1 - t0:.0f}")
            time.sleep(STEADY)
            s = metrics()
            d_trace, d_regular = s["trace_requests"] - m["trace_requests"], s["regular"] - m["regular"]
            print(f"RESULT paths-steady n={N} window_s={time.time() - t1:.0f} trace_requests={d_trace:.0f} "
                  f"regular_requests={d_regular:.0f} extra_packets_pct={d_trace * 100 / max(d_regular, 1):.3f}")
        finally:
            demo.terminate()
            demo.wait(timeout=30)


main()
