#!/usr/bin/env python3
"""Alertmanager high-availability test for deploy/alertmanager/alertmanager.yml (issue 12).

Starts, all on 127.0.0.1 and nowhere else:
  - the SMTP sink and the HTTP sink (fake Telegram Bot API + webhooks) of delivery_test.py,
  - TWO real prometheus-alertmanager processes clustered with each other
    (--cluster.listen-address / --cluster.advertise-address on 127.0.0.1, --cluster.peer
    pointing at the other one, short gossip / push-pull / peer-timeout intervals so the
    cluster settles in seconds), each with its own storage directory and ports, both with
    the same configuration derived from the shipped one as delivery_test.py derives it
    (every receiver pointed at the sinks, group_wait 1s), group_interval 9s (3 x the
    3 s peer timeout, see GROUP_INTERVAL),
then posts every alert to BOTH, as an HA pair of Prometheus servers does (each lists both
Alertmanagers), and checks what people receive:

  1. two page incidents (VNPT and Viettel endpoints) and a district outage: exactly one
     e-mail, one Telegram message and one webhook call per incident, although both
     Alertmanagers hold every alert (the notification log is gossiped: the peer at
     position 1 waits --cluster.peer-timeout, sees the entry and sends nothing);
  2. one incident resolves: exactly one "resolved" notification per channel;
  3. the Alertmanager that sent them (cluster position 0) is killed (SIGKILL): a new
     incident posted to both (the dead one refuses the connection) gives exactly one
     notification per channel from the survivor; an incident the dead one had notified
     resolves: exactly one "resolved", and its "firing" is not sent again (the survivor
     holds the replicated notification log).

Every wait is bounded (at most 30 s each; about 80 s in all). The Alertmanagers are
killed, the sinks stopped and the temporary directory removed at the end.

Usage: ha_test.py [path/to/alertmanager.yml]
Prints one "ok"/"FAIL" line per check; exit 0 when every check passes.
"""
import copy
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import delivery_test as dt  # noqa: E402  (sinks, config derivation, alert helpers)

PEER_TIMEOUT = 3      # --cluster.peer-timeout: how long position 1 waits for position 0
# group_interval well above the peer timeout, as in production (5 m vs 15 s): position 1
# takes its snapshot of a group when it flushes and decides a peer timeout later; with
# flushes closer together than that its snapshot can predate what position 0 sent (a
# resolve in between) and it re-sends "firing", then position 0 "resolved" again.
GROUP_INTERVAL = 3 * PEER_TIMEOUT
WAIT = 30             # longest wait for anything expected
# After a delivery: long enough for the peer at position 1 to flush, wait its peer timeout
# and decide, and for one more flush of every group.
QUIET = PEER_TIMEOUT + GROUP_INTERVAL + 1.5
CLUSTER_FLAGS = [
    "--cluster.peer-timeout=%ds" % PEER_TIMEOUT,
    "--cluster.gossip-interval=100ms",
    "--cluster.pushpull-interval=2s",
    "--cluster.settle-timeout=15s",
    "--cluster.reconnect-interval=2s",
    # Lenient failure detection: on a busy machine a late probe ack must not make a peer
    # think it is alone (both would then send). The survivor needs none of it: position 1
    # sends after the peer timeout anyway when position 0 sent nothing.
    "--cluster.probe-interval=4s",
    "--cluster.probe-timeout=2s",
]


def strip_instance(alert):
    """DiemcauEndpointDown as the rules make it since issue 12 (quorum: no job/instance)."""
    a = copy.deepcopy(alert)
    for k in ("job", "instance"):
        a["labels"].pop(k, None)
    return a


# Incidents. Keys registered in delivery_test's tables so its counting helpers work.
HA = {
    "H1": (strip_instance(dt.I1), dt.RECIPIENTS["I1"]),  # VNPT, Hồ Chí Minh (two-tier)
    "H2": (strip_instance(dt.I2), dt.RECIPIENTS["I2"]),  # Viettel, Sa Pa, Lào Cai
    "HP": (dt.P, dt.RECIPIENTS["P"]),                    # district outage, Thủ Đức
    "H3": (strip_instance(dt.endpoint_alert(             # after the kill
        "DiemcauEndpointDown", "page", "VN75-26068", "Tỉnh Đồng Nai", None, "Phường Biên Hòa", "VNPT",
        "mất kết nối")), (sorted([dt.ONCALL, "noc@vnpt.example"]), True)),
}
for key, (alert, rcpt) in HA.items():
    dt.ALERTS[key] = alert
    dt.RECIPIENTS[key] = rcpt


def hooks_about(key, status):
    """Webhook calls whose payload carries alert KEY with STATUS (firing/resolved)."""
    labels = dt.ALERTS[key]["labels"]
    _, _, hooks, _ = dt.SINK.snapshot()
    return [h for h in hooks
            if any(a.get("labels") == labels and a.get("status") == status for a in h["body"].get("alerts", []))]


def delivered(keys, resolved=False):
    status = "resolved" if resolved else "firing"
    return all(hooks_about(k, status) for k in keys) and dt.wait_delivered(keys, resolved, timeout=0)


def exactly_one(key, resolved=False):
    """One e-mail, one Telegram message (pages) and one webhook call about KEY."""
    status = "resolved" if resolved else "firing"
    dt.check_exactly_one(key, resolved, label="%s %s" % (key, status))
    hs = hooks_about(key, status)
    dt.ok(len(hs) == 1, "%s %s: exactly one webhook call" % (key, status), "got %d" % len(hs))
    return hs


def post_both(bases, keys, resolve=False):
    """As an HA Prometheus pair does: every alert to every Alertmanager; a dead one refuses."""
    sent = 0
    for base in bases:
        try:
            dt.post(base, keys, resolve)
            sent += 1
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
    return sent


def free_port():
    """A port free for TCP and UDP on 127.0.0.1 (the cluster listens on both)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise SystemExit("FAIL: no free TCP+UDP port on 127.0.0.1")


def status(base):
    try:
        return dt.api(base, "/api/v2/status")
    except Exception:
        return None


def cluster_ready(base, n):
    st = status(base)
    c = (st or {}).get("cluster") or {}
    return c.get("status") == "ready" and len(c.get("peers") or []) == n


def alerts_held(base, keys):
    """Whether this Alertmanager holds every alert of KEYS (active)."""
    try:
        held = [a["labels"] for a in dt.api(base, "/api/v2/alerts")]
    except Exception:
        return False
    return all(dt.ALERTS[k]["labels"] in held for k in keys)


def main():
    if not dt.BIN:
        print("FAIL: prometheus-alertmanager binary not found (Debian: prometheus-alertmanager)")
        return 1
    shipped = yaml.safe_load(open(dt.CONFIG, encoding="utf-8"))

    smtp = dt.ThreadingSMTP(("127.0.0.1", 0), dt.SMTPHandler)
    web = dt.ThreadingHTTPServer(("127.0.0.1", 0), dt.HTTPHandler)
    web.daemon_threads = True
    for srv in (smtp, web):
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()

    tmp = tempfile.mkdtemp(prefix="diemcau-am-ha-")
    cfg_path = os.path.join(tmp, "alertmanager.yml")
    cfg = dt.derive(shipped, smtp.server_address[1], web.server_address[1], dt.interval_outside_now())
    cfg["route"]["group_interval"] = "%ds" % GROUP_INTERVAL
    with open(cfg_path, "w", encoding="utf-8") as f:
        yaml.safe_dump(cfg, f, allow_unicode=True, sort_keys=False)
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    names = ("am-a", "am-b")
    web_ports = {n: free_port() for n in names}
    cluster_ports = {n: free_port() for n in names}
    bases = {n: "http://127.0.0.1:%d" % web_ports[n] for n in names}
    procs, logs = {}, {}
    try:
        for n in names:
            other = names[1 - names.index(n)]
            logs[n] = open(os.path.join(tmp, n + ".log"), "w")
            procs[n] = subprocess.Popen(
                [dt.BIN, "--config.file=" + cfg_path, "--storage.path=" + os.path.join(tmp, n),
                 "--web.listen-address=127.0.0.1:%d" % web_ports[n], "--web.external-url=" + bases[n],
                 "--cluster.listen-address=127.0.0.1:%d" % cluster_ports[n],
                 "--cluster.advertise-address=127.0.0.1:%d" % cluster_ports[n],
                 "--cluster.peer=127.0.0.1:%d" % cluster_ports[other], "--log.level=info"] + CLUSTER_FLAGS,
                stdout=logs[n], stderr=subprocess.STDOUT, env=env)
        up = dt.wait_for(lambda: all(procs[n].poll() is None and cluster_ready(bases[n], 2) for n in names), WAIT)
        if not dt.ok(up, "both Alertmanagers up, clustered on 127.0.0.1, 2 peers each, settled (status ready)"):
            for n in names:
                logs[n].flush()
                print("---- %s log:\n%s" % (n, open(logs[n].name).read()[-2000:]))
            return 1
        # Position in the cluster: index of the own name among the sorted peer names. Position
        # 0 sends at once, position 1 waits --cluster.peer-timeout and sends only what the
        # gossiped notification log does not show as sent.
        peer_names = sorted(p["name"] for p in status(bases[names[0]])["cluster"]["peers"])
        position = {n: peer_names.index(status(bases[n])["cluster"]["name"]) for n in names}
        first = min(names, key=lambda n: position[n])
        survivor = names[1 - names.index(first)]
        print("== cluster: %s" % ", ".join("%s position %d" % (n, position[n]) for n in names))

        print("== incidents posted to both Alertmanagers")
        post_both(bases.values(), ["H1", "H2", "HP"])
        dt.ok(dt.wait_for(lambda: all(alerts_held(bases[n], ["H1", "H2", "HP"]) for n in names), WAIT),
              "both Alertmanagers hold all three alerts")
        dt.ok(dt.wait_for(lambda: delivered(["H1", "H2", "HP"]), WAIT),
              "the three incidents delivered (e-mail, Telegram, webhook)")
        time.sleep(QUIET)
        senders = set()
        for key in ("H1", "H2", "HP"):
            senders |= {h["body"].get("externalURL") for h in exactly_one(key)}
        print("   sent by: %s" % ", ".join(sorted(n for n in names if bases[n] in senders)))

        print("== one incident resolves (posted to both)")
        post_both(bases.values(), ["H1"], resolve=True)
        dt.ok(dt.wait_for(lambda: delivered(["H1"], resolved=True), WAIT), "H1 resolved delivered")
        time.sleep(QUIET)
        exactly_one("H1", resolved=True)
        exactly_one("H1")

        print("== %s (position %d) killed; %s survives" % (first, position[first], survivor))
        procs[first].kill()
        procs[first].wait(timeout=10)
        n_sent = post_both([bases[first], bases[survivor]], ["H3"])
        dt.ok(n_sent == 1, "new incident H3: the dead Alertmanager refuses it, the survivor takes it",
              "accepted by %d" % n_sent)
        dt.ok(dt.wait_for(lambda: delivered(["H3"]), WAIT), "H3 delivered by the survivor")
        post_both([bases[first], bases[survivor]], ["H2"], resolve=True)
        dt.ok(dt.wait_for(lambda: delivered(["H2"], resolved=True), WAIT),
              "H2 (notified before the kill) resolved delivered by the survivor")
        time.sleep(QUIET)
        for h in exactly_one("H3"):
            dt.ok(h["body"].get("externalURL") == bases[survivor], "H3 sent by the survivor")
        exactly_one("H2", resolved=True)
        exactly_one("H2")       # its firing notification is not sent again
        exactly_one("HP")
        exactly_one("H1")

        _, _, _, other = dt.SINK.snapshot()
        dt.ok(not other, "no unexpected HTTP requests", str(other))
        for n in names:
            logs[n].flush()
            bad = [l for l in open(logs[n].name, encoding="utf-8", errors="replace")
                   if "level=error" in l and "Notify" in l]
            dt.ok(not bad, "%s: no failed notifications in its log" % n, "".join(bad[:3]))
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for srv in (smtp, web):
            srv.shutdown()
            srv.server_close()
        for f in logs.values():
            f.close()
        if dt.failed and os.environ.get("VERBOSE"):
            for n in logs:
                print("---- %s log:\n%s" % (n, open(os.path.join(tmp, n + ".log")).read()[-3000:]))
        shutil.rmtree(tmp, ignore_errors=True)
    mails, tgs, hooks, _ = dt.SINK.snapshot()
    print("figure: e-mails / Telegram messages / webhook calls: %d / %d / %d; whole test %.1f s"
          % (len(mails), len(tgs), len(hooks), time.monotonic() - dt.T0))
    return 1 if dt.failed else 0


if __name__ == "__main__":
    sys.exit(main())
