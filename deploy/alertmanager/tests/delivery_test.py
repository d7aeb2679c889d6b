#!/usr/bin/env python3
"""End-to-end notification delivery test for deploy/alertmanager/alertmanager.yml.

Starts, all on 127.0.0.1 and nowhere else:
  - a minimal SMTP sink (stdlib socketserver; smtpd is gone from Python 3.12),
  - an HTTP sink standing in for the Telegram Bot API (and the webhooks),
  - a real prometheus-alertmanager with a config derived from the shipped
    one: the placeholders (smarthost, telegram_api_url, webhook URLs) point
    at the sinks, group_wait 1s / group_interval 2s, the `working-hours`
    time interval replaced by one the test controls, its own storage,
    listen address and no clustering,
then posts alerts through the v2 API and checks what people receive:

  1. outside working hours: each page incident gives exactly one e-mail and
     one Telegram message, with the Vietnamese text intact after MIME
     decoding (subject, text and HTML parts), the place read well with and
     without a `district` label, the start time in Vietnam time and the
     runbook link; the two tickets (carrier and non-carrier route) give
     nothing;
  2. working hours (config reloaded): the two held tickets are delivered,
     by e-mail only, once each;
  3. Alertmanager issue 2754: a child page that was sent before its parent
     (district outage) started gets no "resolved" when it resolves while
     inhibited; a child that starts under the parent gets no page; the
     parent's resolution IS sent (send_resolved: true); the still-down
     child pages once the parent has resolved; a config reload afterwards
     sends the child's missing "resolved" late (documented in the runbook).

Every wait is bounded (at most 15 s each; about 45 s in all). Alertmanager
is killed, the sinks stopped and the temporary directory removed at the end.

Usage: delivery_test.py [path/to/alertmanager.yml]
Prints one "ok"/"FAIL" line per check and the measured delivery latencies;
exit 0 when every check passes.
"""
import copy
import datetime
import email
import email.policy
import html
import json
import os
import re
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zoneinfo
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

CONFIG = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "deploy/alertmanager/alertmanager.yml")
BIN = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
HCM_TZ = zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")
GROUP_WAIT, GROUP_INTERVAL = 1, 2
QUIET = 2 * GROUP_INTERVAL + 1.5   # long enough for two flushes of every group
WAIT = 15                          # longest wait for an expected notification
RUNBOOK = "https://github.com/diemcau/diemcau/blob/main/docs/runbook.md#"
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
T0 = time.monotonic()


# ---------------------------------------------------------------- sinks

class Sink:
    """Everything the fake SMTP and HTTP servers received, with arrival times."""

    def __init__(self):
        self.lock = threading.Lock()
        self.mails = []      # dicts: mail_from, rcpt, raw, t
        self.telegram = []   # dicts: path, body (JSON), t
        self.hooks = []      # dicts: path, body (JSON), t
        self.other = []      # unexpected HTTP requests

    def snapshot(self):
        with self.lock:
            return list(self.mails), list(self.telegram), list(self.hooks), list(self.other)


SINK = Sink()


class SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough ESMTP for Go's net/smtp client: EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    def reply(self, line):
        self.wfile.write(line.encode("ascii") + b"\r\n")
        self.wfile.flush()

    def handle(self):
        self.request.settimeout(10)
        self.reply("220 127.0.0.1 diemcau-test-sink ESMTP")
        mail_from, rcpt = None, []
        while True:
            try:
                line = self.rfile.readline(4096)
            except OSError:
                return
            if not line:
                return
            cmd = line.decode("ascii", "replace").rstrip("\r\n")
            verb = cmd.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 127.0.0.1")
            elif verb == "MAIL":
                mail_from, rcpt = cmd, []
                self.reply("250 ok")
            elif verb == "RCPT":
                m = re.search(r"<([^>]*)>", cmd)
                rcpt.append(m.group(1) if m else cmd)
                self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                lines = []
                while True:
                    l = self.rfile.readline(1 << 20)
                    if not l or l in (b".\r\n", b".\n"):
                        break
                    lines.append(l[1:] if l.startswith(b"..") else l)
                with SINK.lock:
                    SINK.mails.append({"mail_from": mail_from, "rcpt": sorted(rcpt),
                                       "raw": b"".join(lines), "t": time.monotonic()})
                self.reply("250 queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 ok")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


class HTTPHandler(BaseHTTPRequestHandler):
    """Telegram Bot API (POST /telegram/bot<token>/sendMessage) and webhooks (POST /hooks/<name>)."""

    message_id = 0
    timeout = 10   # seconds per socket read: a stuck client cannot hang the test

    def log_message(self, *args):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        now = time.monotonic()
        m = re.fullmatch(r"/telegram/bot([^/]+)/(\w+)", self.path)
        if m and m.group(2) == "sendMessage":
            with SINK.lock:
                HTTPHandler.message_id += 1
                SINK.telegram.append({"token": m.group(1), "body": body, "t": now})
                mid = HTTPHandler.message_id
            chat = int(body.get("chat_id", 0))
            self.answer(200, {"ok": True, "result": {
                "message_id": mid, "date": int(time.time()), "text": body.get("text", ""),
                "chat": {"id": chat, "type": "supergroup", "title": "trực ban"}}})
        elif self.path.startswith("/hooks/"):
            with SINK.lock:
                SINK.hooks.append({"path": self.path, "body": body, "t": now})
            self.answer(200, {})
        else:
            with SINK.lock:
                SINK.other.append(self.path)
            self.answer(404, {"ok": False, "error_code": 404, "description": "Not Found"})

    def answer(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class ThreadingSMTP(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


# ---------------------------------------------------------------- config

def hcm_now():
    return datetime.datetime.now(HCM_TZ)


def hhmm(minutes):
    return "%02d:%02d" % divmod(minutes, 60)


def interval_outside_now():
    """Working hours on 4 weekdays that are not yesterday, today or tomorrow in Vietnam."""
    today = hcm_now().weekday()
    days = [WEEKDAYS[d] for d in range(7) if (d - today) % 7 not in (6, 0, 1)]
    return [{"weekdays": days, "times": [{"start_time": "07:30", "end_time": "17:00"}],
             "location": "Asia/Ho_Chi_Minh"}]


def interval_around_now():
    """Today, now ± 60 min in Vietnam time (spilling into yesterday/tomorrow near midnight)."""
    now = hcm_now()
    d, m = now.weekday(), now.hour * 60 + now.minute
    out = [{"weekdays": [WEEKDAYS[d]],
            "times": [{"start_time": hhmm(max(0, m - 60)), "end_time": hhmm(min(1440, m + 61))}],
            "location": "Asia/Ho_Chi_Minh"}]
    if m + 61 > 1440:
        out.append({"weekdays": [WEEKDAYS[(d + 1) % 7]], "times": [{"start_time": "00:00", "end_time": "01:00"}],
                    "location": "Asia/Ho_Chi_Minh"})
    if m - 60 < 0:
        out.append({"weekdays": [WEEKDAYS[(d - 1) % 7]], "times": [{"start_time": "23:00", "end_time": "24:00"}],
                    "location": "Asia/Ho_Chi_Minh"})
    return out


def walk_routes(route):
    yield route
    for r in route.get("routes", []) or []:
        yield from walk_routes(r)


def shipped_shape(cfg):
    """The shipped file's notification contract, checked before anything runs."""
    errs = []
    ti = {t["name"]: t for t in cfg.get("time_intervals", []) or []}
    wh = ti.get("working-hours")
    if not wh:
        errs.append("time_intervals has no working-hours")
    else:
        for i in wh["time_intervals"]:
            if i.get("location") != "Asia/Ho_Chi_Minh":
                errs.append("working-hours location is %r, not Asia/Ho_Chi_Minh" % i.get("location"))
    root = cfg["route"]
    for r in walk_routes(root):
        if r is root:
            continue
        active = r.get("active_time_intervals") or []
        recv = r.get("receiver", "")
        if recv.endswith("-ticket") and "working-hours" not in active:
            errs.append("ticket route %s %s lacks active_time_intervals [working-hours]" % (recv, r.get("matchers")))
        if recv.endswith("-page") and (active or r.get("mute_time_intervals")):
            errs.append("page route %s is time-gated: pages must always go" % recv)
    for rc in cfg["receivers"]:
        people = rc.get("email_configs", []) + rc.get("telegram_configs", [])
        for c in people:
            if not c.get("send_resolved"):
                errs.append("%s: a person-facing config lacks send_resolved: true" % rc["name"])
        if rc["name"].endswith("-page") and not (rc.get("email_configs") and rc.get("telegram_configs")):
            errs.append("%s: a page receiver needs e-mail and Telegram" % rc["name"])
        if rc["name"].endswith("-ticket") and not rc.get("email_configs"):
            errs.append("%s: a ticket receiver needs e-mail" % rc["name"])
    return errs


def derive(cfg, smtp_port, http_port, working_hours):
    """The shipped config with every outgoing target on the local sinks."""
    c = copy.deepcopy(cfg)
    base = os.path.dirname(CONFIG)
    g = c.setdefault("global", {})
    g["smtp_smarthost"] = "127.0.0.1:%d" % smtp_port
    g["smtp_require_tls"] = False
    g["telegram_api_url"] = "http://127.0.0.1:%d/telegram" % http_port
    g.pop("smtp_auth_password_file", None)
    g.pop("smtp_auth_username", None)
    c["templates"] = [t if os.path.isabs(t) else os.path.join(base, t) for t in c.get("templates", [])]
    for rc in c["receivers"]:
        for e in rc.get("email_configs", []):
            for k in ("smarthost", "require_tls", "auth_username", "auth_password_file", "auth_password"):
                e.pop(k, None)
        for t in rc.get("telegram_configs", []):
            t.pop("api_url", None)   # the global one (above) applies
        for w in rc.get("webhook_configs", []):
            w["url"] = re.sub(r"^https?://[^/]+", "http://127.0.0.1:%d" % http_port, w["url"])
        unknown = set(rc) - {"name", "email_configs", "telegram_configs", "webhook_configs"}
        if unknown:
            raise SystemExit("FAIL: receiver %s has %s: teach delivery_test.py to redirect it to a sink"
                             % (rc["name"], sorted(unknown)))
    root = c["route"]
    for r in walk_routes(root):
        r.pop("group_wait", None)
        r.pop("group_interval", None)
    root["group_wait"] = "%ds" % GROUP_WAIT
    root["group_interval"] = "%ds" % GROUP_INTERVAL
    for t in c["time_intervals"]:
        if t["name"] == "working-hours":
            t["time_intervals"] = working_hours
    return c


# ---------------------------------------------------------------- alerts

HCM, LC = "Thành phố Hồ Chí Minh", "Tỉnh Lào Cai"
INSTANCE = {"job": "diemcau", "instance": "127.0.0.1:9808"}


def endpoint_alert(name, severity, endpoint, province, district, commune, carrier, what):
    labels = dict(INSTANCE, alertname=name, severity=severity, endpoint=endpoint,
                  province=province, commune=commune, carrier=carrier)
    if district:
        labels["district"] = district
    place = ", ".join(p for p in (commune, district, province) if p)
    return {"labels": labels, "annotations": {
        # As the rules in deploy/prometheus/rules/diemcau-alerts.yml render them.
        "summary": "Điểm cầu %s (%s) %s" % (place, carrier, what),
        "description": "Điểm cầu %s tại %s không phản hồi ICMP trong hơn 45 giây (đã xác nhận). Nhà mạng: %s." % (endpoint, place, carrier),
        "runbook_url": RUNBOOK + name.lower()}}


# Page incidents: one after the July 2025 reform (no district), one with a district.
I1 = endpoint_alert("DiemcauEndpointDown", "page", "79-26734", HCM, None, "Phường Sài Gòn", "VNPT", "mất kết nối")
I2 = endpoint_alert("DiemcauEndpointDown", "page", "10-02845", LC, "Thị xã Sa Pa", "Xã Tả Van", "Viettel", "mất kết nối")
# Tickets: carrier route (VNPT) and the non-carrier ticket route.
T1 = endpoint_alert("DiemcauEndpointDegraded", "ticket", "79-26743", HCM, None, "Phường Bến Thành", "VNPT", "chất lượng kém")
T2 = {"labels": dict(INSTANCE, alertname="DiemcauConfigReloadFailed", severity="ticket"),
      "annotations": {"summary": "diemcau (127.0.0.1:9808) nạp lại cấu hình thất bại",
                      "description": "Lần nạp lại cấu hình/danh mục điểm cầu gần nhất của diemcau tại 127.0.0.1:9808 thất bại; tiến trình vẫn chạy với cấu hình cũ.",
                      "runbook_url": RUNBOOK + "diemcauconfigreloadfailed"}}
# Issue 2754: child C pages, then parent P (district outage) starts; L starts under P.
TD = "Thành phố Thủ Đức"
C = endpoint_alert("DiemcauEndpointDown", "page", "79-26803", HCM, TD, "Phường Cát Lái", "VNPT", "mất kết nối")
L = endpoint_alert("DiemcauEndpointDown", "page", "79-26794", HCM, TD, "Phường An Khánh", "Viettel", "mất kết nối")
P = {"labels": {"alertname": "DiemcauDistrictOutage", "severity": "page", "province": HCM, "district": TD},
     "annotations": {"summary": "Mất kết nối diện rộng tại %s, %s" % (TD, HCM),
                     "description": "50%% điểm cầu của %s, %s mất kết nối cùng lúc." % (TD, HCM),
                     "runbook_url": RUNBOOK + "diemcaudistrictoutage"}}

ONCALL = "truc-ban@diemcau.example"
RECIPIENTS = {  # alert -> (e-mail recipients, Telegram expected)
    "I1": (sorted([ONCALL, "noc@vnpt.example"]), True),
    "I2": (sorted([ONCALL, "noc@viettel.example"]), True),
    "C": (sorted([ONCALL, "noc@vnpt.example"]), True),
    "L": (sorted([ONCALL, "noc@viettel.example"]), True),
    "P": ([ONCALL], True),
    "T1": (sorted(["noc@diemcau.example", "noc@vnpt.example"]), False),
    "T2": (["noc@diemcau.example"], False),
}
ALERTS = {"I1": I1, "I2": I2, "T1": T1, "T2": T2, "C": C, "L": L, "P": P}


def iso(dt):
    return dt.astimezone(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def vn_time(dt):
    return dt.astimezone(HCM_TZ).strftime("%H:%M ngày %d/%m/%Y")


# ---------------------------------------------------------------- checks

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
failed = 0


def ok(cond, what, detail=""):
    global failed
    print("%s: %s%s" % ("ok" if cond else "FAIL", what, "" if cond or not detail else " (%s)" % detail))
    failed += 0 if cond else 1
    return cond


def api(base, path, body=None, method=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method or ("POST" if data else "GET"),
                                 headers={"Content-Type": "application/json"})
    with OPENER.open(req, timeout=5) as r:
        raw = r.read()
        return json.loads(raw) if raw and "json" in r.headers.get("Content-Type", "") else raw


STARTS = {}


def post(base, keys, resolve=False):
    now = datetime.datetime.now(datetime.timezone.utc)
    batch = []
    for k in keys:
        a = ALERTS[k]
        # As Prometheus sends them: startsAt = when the alert started firing.
        STARTS.setdefault(k, now.replace(microsecond=0))
        batch.append({"labels": a["labels"], "annotations": a["annotations"],
                      "startsAt": iso(STARTS[k]),
                      "endsAt": iso(now if resolve else now + datetime.timedelta(hours=1))})
    api(base, "/api/v2/alerts", batch)
    return time.monotonic()


def parse_mail(m):
    msg = email.message_from_bytes(m["raw"], policy=email.policy.default)
    text = msg.get_body(preferencelist=("plain",))
    htm = msg.get_body(preferencelist=("html",))
    return {"subject": str(msg["Subject"]), "from": msg["From"].addresses[0].addr_spec if msg["From"] else "",
            "to": msg["To"], "text": text.get_content() if text else "", "html": htm.get_content() if htm else "",
            "rcpt": m["rcpt"], "t": m["t"], "raw": m["raw"],
            "charsets": [p.get_content_charset() for p in msg.walk() if not p.is_multipart()]}


def tg_text(t):
    """What the Telegram user reads: tags removed, entities decoded."""
    return html.unescape(re.sub(r"<[^>]*>", "", t["body"].get("text", "")))


def about(key, text):
    """Whether a notification text is about alert KEY (its summary, i.e. its place)."""
    return ALERTS[key]["annotations"]["summary"] in text


def counts(key, resolved=None):
    """(e-mails, Telegram messages) about KEY, optionally only firing/resolved ones."""
    mails, tgs, _, _ = SINK.snapshot()
    word = "ĐÃ KHẮC PHỤC"
    ms = [p for p in map(parse_mail, mails) if about(key, p["subject"] + p["text"])]
    ts = [t for t in tgs if about(key, tg_text(t))]
    if resolved is not None:
        ms = [p for p in ms if (word in p["subject"]) == resolved]
        ts = [t for t in ts if (word in tg_text(t).split("\n", 1)[0]) == resolved]
    return ms, ts


def wait_for(cond, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def wait_delivered(keys, resolved=False, timeout=WAIT):
    def done():
        for k in keys:
            ms, ts = counts(k, resolved)
            if not ms or (RECIPIENTS[k][1] and not ts):
                return False
        return True
    return wait_for(done, timeout)


def check_exactly_one(key, resolved=False, label=""):
    ms, ts = counts(key, resolved)
    rcpt, tg = RECIPIENTS[key]
    ok(len(ms) == 1, "%s: exactly one %se-mail" % (label or key, "resolved " if resolved else ""), "got %d" % len(ms))
    ok(len(ts) == (1 if tg else 0), "%s: %s Telegram message" % (label or key, "exactly one" if tg else "no"),
       "got %d" % len(ts))
    if ms:
        ok(ms[0]["rcpt"] == rcpt, "%s: e-mail to %s" % (label or key, ", ".join(rcpt)), "got %s" % ms[0]["rcpt"])
    return ms, ts


def check_content(key, ms, ts, where, carrier):
    a = ALERTS[key]
    summary, url = a["annotations"]["summary"], a["annotations"]["runbook_url"]
    start = vn_time(STARTS[key])
    if ms:
        m = ms[0]
        want = "[KHẨN][SỰ CỐ] " + summary
        ok(m["subject"] == want, "%s: subject decodes to %r" % (key, want), "got %r" % m["subject"])
        ok(b"=?utf-8?q?" in m["raw"].lower() and "Đ".encode() not in m["raw"].split(b"\r\n\r\n", 1)[0],
           "%s: subject header is RFC 2047 encoded (no raw UTF-8 in headers)" % key)
        ok(m["from"] == "canhbao@diemcau.example", "%s: From is canhbao@diemcau.example" % key, m["from"])
        ok(set(m["charsets"]) == {"utf-8"} and m["text"] and m["html"],
           "%s: multipart text + HTML, both UTF-8" % key, str(m["charsets"]))
        ok("Địa bàn:         %s" % where in m["text"], "%s: text part names the place %r" % (key, where))
        ok("Nhà mạng:        %s" % carrier in m["text"], "%s: text part names the carrier" % key)
        ok("Bắt đầu:         %s (giờ Việt Nam, UTC+7)" % start in m["text"],
           "%s: text part gives the start in Vietnam time (%s)" % (key, start))
        ok("Hướng dẫn xử lý: " + url in m["text"], "%s: text part has the runbook link" % key)
        ok('<a href="%s">' % url in m["html"] and where in m["html"] and start in m["html"],
           "%s: HTML part has place, start time and runbook link" % key)
        ok(", ," not in m["text"] + m["html"] and "<no value>" not in m["text"] + m["html"],
           "%s: no empty place parts or <no value>" % key)
    if ts:
        t = ts[0]
        txt = tg_text(t)
        ok(t["body"].get("chat_id") in ("-1001000000001", -1001000000001) and t["body"].get("parse_mode") == "HTML",
           "%s: Telegram to the on-call chat, parse_mode HTML" % key, str({k: t["body"].get(k) for k in ("chat_id", "parse_mode")}))
        ok(txt.startswith("🔴 [KHẨN][SỰ CỐ] " + summary + "\n"), "%s: Telegram headline in Vietnamese" % key, txt[:120])
        ok("📍 %s · %s" % (where, carrier) in txt, "%s: Telegram names place and carrier" % key)
        ok("🕒 từ %s (giờ VN)" % start in txt, "%s: Telegram start time in Vietnam time" % key)
        ok(url in txt, "%s: Telegram has the runbook link" % key)
        tags = set(re.findall(r"</?([a-zA-Z]+)", t["body"].get("text", "")))
        ok(tags <= {"b", "i", "a", "code", "pre", "u", "s"}, "%s: only Telegram-supported HTML tags" % key, str(tags))


def inhibited(base, key):
    for a in api(base, "/api/v2/alerts"):
        if a["labels"] == ALERTS[key]["labels"]:
            return a["status"]["state"] == "suppressed" and bool(a["status"].get("inhibitedBy"))
    return False


# ---------------------------------------------------------------- main

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    if not BIN:
        print("FAIL: prometheus-alertmanager binary not found (Debian: prometheus-alertmanager)")
        return 1
    shipped = yaml.safe_load(open(CONFIG, encoding="utf-8"))
    for e in shipped_shape(shipped):
        ok(False, "shipped config: " + e)
    if failed:
        return 1
    ok(True, "shipped config: tickets gated by working-hours (Asia/Ho_Chi_Minh), pages not; "
             "page receivers e-mail + Telegram, send_resolved")

    smtp = ThreadingSMTP(("127.0.0.1", 0), SMTPHandler)
    web = ThreadingHTTPServer(("127.0.0.1", 0), HTTPHandler)
    web.daemon_threads = True
    for srv in (smtp, web):
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    smtp_port, http_port = smtp.server_address[1], web.server_address[1]

    tmp = tempfile.mkdtemp(prefix="diemcau-am-delivery-")
    cfg_path = os.path.join(tmp, "alertmanager.yml")

    def write_config(hours):
        with open(cfg_path, "w", encoding="utf-8") as f:
            yaml.safe_dump(derive(shipped, smtp_port, http_port, hours), f, allow_unicode=True, sort_keys=False)

    write_config(interval_outside_now())
    port = free_port()
    base = "http://127.0.0.1:%d" % port
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    log = open(os.path.join(tmp, "alertmanager.log"), "w")
    proc = subprocess.Popen([BIN, "--config.file=" + cfg_path, "--storage.path=" + os.path.join(tmp, "data"),
                             "--web.listen-address=127.0.0.1:%d" % port, "--web.external-url=" + base,
                             "--cluster.listen-address=", "--log.level=info"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    figures = {}
    try:
        if not wait_for(lambda: proc.poll() is None and ready(base), 20):
            log.flush()
            print("FAIL: alertmanager did not start:\n" + open(log.name).read()[-3000:])
            return 1
        figures["alertmanager ready"] = time.monotonic() - T0

        # -- 1. outside working hours: pages go, tickets are held
        print("== outside working hours (working-hours = %s)" % interval_outside_now()[0]["weekdays"])
        t = post(base, ["I1", "I2", "T1", "T2"])
        ok(wait_delivered(["I1", "I2"]), "page incidents delivered within %ds" % WAIT)
        mails, tgs, _, _ = SINK.snapshot()
        if mails and tgs:
            figures["page: first e-mail after POST"] = min(m["t"] for m in mails) - t
            figures["page: first Telegram after POST"] = min(x["t"] for x in tgs) - t
        time.sleep(QUIET)
        for key, where, carrier in (("I1", "Phường Sài Gòn, Thành phố Hồ Chí Minh", "VNPT"),
                                    ("I2", "Xã Tả Van, Thị xã Sa Pa, Tỉnh Lào Cai", "Viettel")):
            ms, ts = check_exactly_one(key)
            check_content(key, ms, ts, where, carrier)
        for key in ("T1", "T2"):
            ms, ts = counts(key)
            ok(not ms and not ts, "%s (ticket) outside working hours: nothing sent" % key,
               "%d e-mails, %d Telegram" % (len(ms), len(ts)))
        _, _, hooks, _ = SINK.snapshot()
        ok(not [h for h in hooks if "ticket" in h["path"]], "ticket webhooks held too")

        # -- 2. working hours: the held tickets go, by e-mail only
        print("== working hours (config reloaded, working-hours = now ± 1 h, Asia/Ho_Chi_Minh)")
        before = len(SINK.snapshot()[0]) + len(SINK.snapshot()[1])
        write_config(interval_around_now())
        t = time.monotonic()
        api(base, "/-/reload", {}, "POST")
        ok(wait_delivered(["T1", "T2"]), "held tickets delivered after the reload")
        ms = counts("T1")[0] + counts("T2")[0]
        if ms:
            figures["ticket: e-mail after reload into working hours"] = max(m["t"] for m in ms) - t
        time.sleep(QUIET)
        for key in ("T1", "T2"):
            ms, _ = check_exactly_one(key, label=key + " (ticket)")
            if ms:
                ok(ms[0]["subject"] == "[XỬ LÝ TRONG GIỜ][SỰ CỐ] " + ALERTS[key]["annotations"]["summary"],
                   "%s: ticket subject in Vietnamese" % key, ms[0]["subject"])
        after = len(SINK.snapshot()[0]) + len(SINK.snapshot()[1])
        ok(after - before == 2, "nothing but the two ticket e-mails after the reload", "got %d new" % (after - before))

        # -- 3. issue 2754: inhibited children and resolved notifications
        print("== inhibition and resolved notifications (Alertmanager issue 2754)")
        post(base, ["C"])
        ok(wait_delivered(["C"]), "child C (endpoint down, Thủ Đức) pages before its parent")
        t = post(base, ["P", "L"])
        ok(wait_delivered(["P"]), "parent P (district outage, Thủ Đức) pages")
        ok(wait_for(lambda: inhibited(base, "C") and inhibited(base, "L"), 5),
           "C and L are inhibited by P (status suppressed, inhibitedBy set)")
        time.sleep(QUIET)
        ms, ts = counts("L")
        ok(not ms and not ts, "L (starts under P) gets no page", "%d e-mails, %d Telegram" % (len(ms), len(ts)))
        post(base, ["C"], resolve=True)
        time.sleep(QUIET)
        ms, ts = counts("C", resolved=True)
        ok(not ms and not ts, "C resolved while inhibited: no resolved notification (issue 2754)",
           "%d e-mails, %d Telegram" % (len(ms), len(ts)))
        t = post(base, ["P"], resolve=True)
        ok(wait_delivered(["P"], resolved=True), "P's resolution is sent (send_resolved: true)")
        ms, ts = counts("P", resolved=True)
        if ms and ts:
            figures["resolved: e-mail after POST"] = ms[0]["t"] - t
        ok(wait_delivered(["L"]), "L, still down when P resolves, pages then")
        time.sleep(QUIET)
        ms, ts = check_exactly_one("P", resolved=True, label="P resolved")
        if ms:
            ok(ms[0]["subject"] == "[KHẨN][ĐÃ KHẮC PHỤC] " + P["annotations"]["summary"],
               "P resolved: subject says ĐÃ KHẮC PHỤC", ms[0]["subject"])
            ok("Kết thúc:" in ms[0]["text"], "P resolved: text part gives the end time")
        if ts:
            ok(tg_text(ts[0]).startswith("✅ [KHẨN][ĐÃ KHẮC PHỤC]"), "P resolved: Telegram starts with ✅ ĐÃ KHẮC PHỤC")
        check_exactly_one("P", resolved=False, label="P firing")
        check_exactly_one("L", resolved=False, label="L after P resolved")
        check_exactly_one("C", resolved=False, label="C firing")
        ms, ts = counts("C", resolved=True)
        ok(not ms and not ts, "C never gets a resolved notification, even after P resolved")
        # Documented in the runbook: a reload while Alertmanager still holds the
        # resolved child (until its alert GC, 30 min by default) re-creates the
        # child's group without the inhibiting parent, and the late resolved goes out.
        api(base, "/-/reload", {}, "POST")
        ok(wait_delivered(["C"], resolved=True, timeout=QUIET), "after a reload, C's late resolved notification goes out")

        # -- overall
        mails, tgs, hooks, other = SINK.snapshot()
        ok(not other, "no unexpected HTTP requests", str(other))
        log.flush()
        errors = [l for l in open(log.name, encoding="utf-8", errors="replace")
                  if "level=error" in l or "level=warn" in l]
        ok(not errors, "no errors or warnings in the Alertmanager log", "".join(errors[:5]))
        figures["e-mails / Telegram messages / webhook calls"] = "%d / %d / %d" % (len(mails), len(tgs), len(hooks))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for srv in (smtp, web):
            srv.shutdown()
            srv.server_close()
        log.close()
        if failed and os.environ.get("VERBOSE"):
            print(open(log.name).read()[-4000:])
        shutil.rmtree(tmp, ignore_errors=True)
    figures["whole test"] = time.monotonic() - T0
    for k, v in figures.items():
        print("figure: %s: %s" % (k, "%.2f s" % v if isinstance(v, float) else v))
    return 1 if failed else 0


def ready(base):
    try:
        api(base, "/-/ready")
        return True
    except Exception:
        return False


if __name__ == "__main__":
    sys.exit(main())
