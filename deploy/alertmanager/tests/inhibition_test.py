#!/usr/bin/env python3
"""Live inhibition test for deploy/alertmanager/alertmanager.yml.

amtool cannot evaluate inhibit_rules, so this starts a throw-away
prometheus-alertmanager on 127.0.0.1 (random free port, temporary storage,
clustering off), posts alerts through the v2 API and checks every child
alert's status.state / inhibitedBy. Both maps: endpoints with a district
(2021) and two-tier endpoints without one (since July 2025), which a district
outage must never silence. A failing router (DiemcauPathHopDown) silences the
endpoint alerts that carry its failing_hop, in any district or province, and
nothing else. Several vantages (issue 12): the endpoint and outage alerts are
taken by quorum and carry no instance, so a dead prober silences only the alerts
of its own instance; DiemcauAllVantagesBlind (no live vantage) silences all.
Bounded: each wait is <= 20 s, the whole run <= ~90 s; alertmanager is always
killed at the end.

Usage: inhibition_test.py [path/to/alertmanager.yml]
Exit 0 when every case passes. Prints one "ok"/"FAIL" line per case.
"""
import datetime
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

CONFIG = sys.argv[1] if len(sys.argv) > 1 else "deploy/alertmanager/alertmanager.yml"
BIN = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")

HCM, TD, Q1 = "Thành phố Hồ Chí Minh", "Thành phố Thủ Đức", "Quận 1"
LC, SP = "Tỉnh Lào Cai", "Thị xã Sa Pa"
DN = "Tỉnh Đồng Nai"
HN, BD, SS = "Thành phố Hà Nội", "Quận Ba Đình", "Huyện Sóc Sơn"
CM = "Tỉnh Cà Mau"
HOP, OTHER_HOP = "10.2.3.1", "10.9.9.1"


def ep(alert, endpoint, province, district, commune, carrier, severity="page", hop=None):
    """An endpoint alert as the rules make it: no job/instance (DiemcauEndpointDown is taken
    by quorum across vantages, DiemcauEndpointDegraded by max across them); district None =
    the two-tier map (no district label at all); hop = the failing_hop a trace placed its
    fault at (None: no such label, as without fault info)."""
    labels = {"alertname": alert, "severity": severity, "endpoint": endpoint,
              "province": province, "district": district, "commune": commune,
              "carrier": carrier}
    if district is None:
        del labels["district"]
    if hop is not None:
        labels["failing_hop"] = hop
    return labels


def hop_down(hop, carrier="VNPT", instance="127.0.0.1:9808"):
    """DiemcauPathHopDown as the rule makes it (hop None: without failing_hop, which the rule
    never produces; it must silence nothing)."""
    labels = {"alertname": "DiemcauPathHopDown", "severity": "page", "domain": "path",
              "carrier": carrier, "failing_hop": hop, "job": "diemcau", "instance": instance}
    if hop is None:
        del labels["failing_hop"]
    return labels


# Phase 1: wide outages inhibit their children, unrelated alerts stay active.
PHASE1_SOURCES = [
    {"alertname": "DiemcauDistrictOutage", "severity": "page", "province": HCM, "district": TD},
    {"alertname": "DiemcauProvinceOutage", "severity": "page", "province": LC},
    {"alertname": "DiemcauCarrierOutage", "severity": "page", "province": HCM, "carrier": "Viettel"},
    # A district outage WITHOUT a district label, as the rules produced for two-tier endpoints
    # before they counted only series with a district: it must silence nothing by district.
    {"alertname": "DiemcauDistrictOutage", "severity": "page", "province": DN},
    # A VNPT router fails; and a hop alert without failing_hop must silence nothing.
    hop_down(HOP),
    hop_down(None, "Viettel"),
]
PHASE1_EXPECT = [  # (description, labels, expected state)
    ("endpoint down in outaged district is inhibited",
     ep("DiemcauEndpointDown", "79-26803", HCM, TD, "Phường Cát Lái", "VNPT"), "suppressed"),
    ("degraded endpoint in outaged district is inhibited",
     ep("DiemcauEndpointDegraded", "79-26791", HCM, TD, "Phường Thảo Điền", "VNPT", "ticket"), "suppressed"),
    ("endpoint down in outaged province is inhibited",
     ep("DiemcauEndpointDown", "10-02845", LC, SP, "Xã Tả Van", "Viettel"), "suppressed"),
    ("district outage inside outaged province is inhibited",
     {"alertname": "DiemcauDistrictOutage", "severity": "page", "province": LC, "district": SP}, "suppressed"),
    ("Viettel endpoint in province with Viettel outage is inhibited",
     ep("DiemcauEndpointDown", "79-26743", HCM, Q1, "Phường Bến Thành", "Viettel"), "suppressed"),
    ("VNPT endpoint in another district stays active",
     ep("DiemcauEndpointDown", "79-26740", HCM, Q1, "Phường Bến Nghé", "VNPT"), "active"),
    ("district outage itself stays active",
     PHASE1_SOURCES[0], "active"),
    # Two-tier endpoints (no district label) in the same provinces.
    ("two-tier endpoint beside an outaged district stays active",
     ep("DiemcauEndpointDown", "VN79-26740", HCM, None, "Phường Sài Gòn", "VNPT"), "active"),
    ("two-tier degraded endpoint beside an outaged district stays active",
     ep("DiemcauEndpointDegraded", "VN79-26737", HCM, None, "Phường Tân Định", "VNPT", "ticket"), "active"),
    ("two-tier endpoint in outaged province is inhibited",
     ep("DiemcauEndpointDown", "VN15-02647", LC, None, "Phường Lào Cai", "VNPT"), "suppressed"),
    ("two-tier Viettel endpoint in province with Viettel outage is inhibited",
     ep("DiemcauEndpointDown", "VN79-26743", HCM, None, "Phường Bến Thành", "Viettel"), "suppressed"),
    ("two-tier endpoint is not silenced by a district outage without a district",
     ep("DiemcauEndpointDown", "VN75-26068", DN, None, "Phường Biên Hòa", "VNPT"), "active"),
    # Path hops: the endpoints behind the failing router, in two districts of Hà Nội and in a
    # two-tier province (Cà Mau), none of them under a wide outage, are silenced by it alone.
    ("endpoint behind the failing router (Hà Nội, Ba Đình) is inhibited",
     ep("DiemcauEndpointDown", "01-00001", HN, BD, "Phường Phúc Xá", "VNPT", hop=HOP), "suppressed"),
    ("endpoint behind the failing router in another district (Sóc Sơn) is inhibited",
     ep("DiemcauEndpointDown", "01-08974", HN, SS, "Xã Minh Trí", "VNPT", hop=HOP), "suppressed"),
    ("two-tier endpoint behind the failing router in another province (Cà Mau) is inhibited",
     ep("DiemcauEndpointDown", "VN96-32047", CM, None, "Xã Đất Mũi", "VNPT", hop=HOP), "suppressed"),
    ("endpoint behind another router (no hop alert for it) stays active",
     ep("DiemcauEndpointDown", "01-00004", HN, BD, "Phường Trúc Bạch", "VNPT", hop=OTHER_HOP), "active"),
    ("endpoint without a failing hop beside them stays active",
     ep("DiemcauEndpointDown", "01-00006", HN, BD, "Phường Vĩnh Phúc", "VNPT"), "active"),
    ("two-tier endpoint without a failing hop stays active (a hop alert without failing_hop silences nothing)",
     ep("DiemcauEndpointDown", "VN96-32050", CM, None, "Xã Viên An", "Viettel"), "active"),
    ("the path hop alert itself stays active", hop_down(HOP), "active"),
]
# Phase 2: one prober (vantage) is down -> only its own instance's alerts are inhibited; the
# quorum alerts (what the other vantages still see) go on.
PHASE2_SOURCES = [{"alertname": "DiemcauProberDown", "severity": "page", "cause": "scrape_failed",
                   "job": "diemcau", "instance": "127.0.0.1:9808"}]
OTHER_INSTANCE_HOP = hop_down("10.7.7.1", "Viettel", "127.0.0.2:9808")
OTHER_INSTANCE_FLAP = dict(ep("DiemcauEndpointFlapping", "01-00007", HN, BD, "Phường Điện Biên", "Viettel", "ticket"),
                           job="diemcau", instance="127.0.0.2:9808")
OWN_INSTANCE_FLAP = dict(OTHER_INSTANCE_FLAP, instance="127.0.0.1:9808")
PATH_FAULT = {"alertname": "DiemcauVantagePathFault", "severity": "ticket", "scope": "vantage",
              "vantage": "viettel-hcm"}
PHASE2_EXPECT = [
    ("one prober down does not inhibit an endpoint page (quorum of the others, no instance)",
     ep("DiemcauEndpointDown", "79-26740", HCM, Q1, "Phường Bến Nghé", "VNPT"), "active"),
    ("one prober down does not inhibit a district outage", PHASE1_SOURCES[0], "active"),
    ("prober down inhibits its own instance's path hop alert", hop_down(HOP), "suppressed"),
    ("prober down inhibits its own instance's flapping ticket", OWN_INSTANCE_FLAP, "suppressed"),
    ("prober down does not inhibit another instance's path hop alert", OTHER_INSTANCE_HOP, "active"),
    ("prober down does not inhibit another instance's flapping ticket", OTHER_INSTANCE_FLAP, "active"),
    ("prober down does not inhibit another vantage's path fault", PATH_FAULT, "active"),
    ("prober down alert itself stays active", PHASE2_SOURCES[0], "active"),
]
# Phase 3: no live vantage is left -> every other diemcau alert is inhibited, the prober
# alerts still page.
PHASE3_SOURCES = [{"alertname": "DiemcauAllVantagesBlind", "severity": "info"}]
PHASE3_EXPECT = [
    ("no live vantage inhibits an endpoint page",
     ep("DiemcauEndpointDown", "79-26740", HCM, Q1, "Phường Bến Nghé", "VNPT"), "suppressed"),
    ("no live vantage inhibits a district outage", PHASE1_SOURCES[0], "suppressed"),
    ("no live vantage inhibits another instance's path hop alert", OTHER_INSTANCE_HOP, "suppressed"),
    ("no live vantage inhibits a vantage path fault", PATH_FAULT, "suppressed"),
    ("no live vantage leaves the prober down page active", PHASE2_SOURCES[0], "active"),
    ("DiemcauAllVantagesBlind itself stays active", PHASE3_SOURCES[0], "active"),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Never go through an HTTP proxy for 127.0.0.1.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def api(base, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method="POST" if data else "GET",
                                 headers={"Content-Type": "application/json"})
    with OPENER.open(req, timeout=5) as r:
        raw = r.read()
        if "json" not in r.headers.get("Content-Type", ""):
            return raw.decode()
        return json.loads(raw) if raw else None


def post(base, labelsets):
    now = datetime.datetime.now(datetime.timezone.utc)
    end = now + datetime.timedelta(minutes=30)
    api(base, "/api/v2/alerts", [{
        "labels": l,
        "annotations": {"summary": "inhibition test"},
        "startsAt": now.isoformat(), "endsAt": end.isoformat(),
    } for l in labelsets])


def state_of(alerts, labels):
    for a in alerts:
        if a["labels"] == labels:
            return a["status"]["state"], a["status"].get("inhibitedBy") or []
    return None, []


def check(base, expect, deadline_s=20):
    """Poll until every expectation holds or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    while True:
        alerts = api(base, "/api/v2/alerts")
        results = []
        for desc, labels, want in expect:
            got, by = state_of(alerts, labels)
            ok = got == want and (want != "suppressed" or len(by) > 0)
            results.append((ok, desc, want, got, by))
        if all(r[0] for r in results) or time.monotonic() > deadline:
            return results
        time.sleep(0.5)


def main():
    if not BIN:
        print("FAIL: prometheus-alertmanager binary not found")
        return 1
    port = free_port()
    base = "http://127.0.0.1:%d" % port
    tmp = tempfile.mkdtemp(prefix="diemcau-am-")
    log = open(os.path.join(tmp, "alertmanager.log"), "w")
    proc = subprocess.Popen([BIN, "--config.file=" + CONFIG, "--storage.path=" + tmp,
                             "--web.listen-address=127.0.0.1:%d" % port,
                             "--cluster.listen-address=", "--log.level=warn"],
                            stdout=log, stderr=subprocess.STDOUT)
    failed = 0
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                api(base, "/-/ready")
                break
            except Exception:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    print("FAIL: alertmanager did not start:\n" + open(log.name).read())
                    return 1
                time.sleep(0.2)
        for sources, expect in ((PHASE1_SOURCES, PHASE1_EXPECT), (PHASE2_SOURCES, PHASE2_EXPECT),
                                (PHASE3_SOURCES, PHASE3_EXPECT)):
            post(base, sources + [e[1] for e in expect if e[1] not in sources])
            for ok, desc, want, got, by in check(base, expect):
                print("%s: %s (want %s, got %s%s)" % ("ok" if ok else "FAIL", desc, want, got,
                      ", inhibitedBy %d" % len(by) if by else ""))
                failed += 0 if ok else 1
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
