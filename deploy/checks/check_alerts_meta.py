#!/usr/bin/env python3
"""Alert metadata, runbook and test-coverage checks (used by scripts/check-deploy).

Usage: check_alerts_meta.py ALERT_RULES RUNBOOK TEST_FILE...
  - every alert has labels.severity in page|ticket|info and annotations
    summary, description, runbook_url
  - summary/description name the place in Vietnamese: endpoint alerts use
    commune, district, province and carrier labels
  - runbook_url is .../docs/runbook.md#<anchor> and <anchor> is a heading of
    RUNBOOK (GitHub anchor rules); every alert has a heading named after it
  - every alert name has a promtool test where it fires (non-empty
    exp_alerts) and one where it must stay silent (empty exp_alerts)
"""
import re
import sys

import yaml


def github_anchor(heading):
    a = heading.strip().lower()
    a = re.sub(r"[^\w\- ]", "", a)
    return a.replace(" ", "-")


def main():
    rules_file, runbook, tests = sys.argv[1], sys.argv[2], sys.argv[3:]
    anchors = set()
    headings = set()
    for line in open(runbook, encoding="utf-8"):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            headings.add(m.group(1))
            anchors.add(github_anchor(m.group(1)))
    fires, silent = set(), set()
    for t in tests:
        for case in yaml.safe_load(open(t, encoding="utf-8")).get("tests", []):
            for a in case.get("alert_rule_test", []) or []:
                (fires if a.get("exp_alerts") else silent).add(a["alertname"])
    errors, names = [], set()
    for g in yaml.safe_load(open(rules_file, encoding="utf-8"))["groups"]:
        for r in g["rules"]:
            if "alert" not in r:
                continue
            n = r["alert"]
            names.add(n)
            lab, ann = r.get("labels", {}), r.get("annotations", {})
            if lab.get("severity") not in ("page", "ticket", "info"):
                errors.append("%s: severity %r not page|ticket|info" % (n, lab.get("severity")))
            for k in ("summary", "description", "runbook_url"):
                if not ann.get(k):
                    errors.append("%s: missing annotation %s" % (n, k))
            if n.startswith("DiemcauEndpoint"):
                for k in ("commune", "district", "province", "carrier"):
                    if "$labels.%s" % k not in ann.get("summary", ""):
                        errors.append("%s: summary does not name $labels.%s" % (n, k))
            m = re.match(r"^https://github\.com/diemcau/diemcau/blob/main/docs/runbook\.md#([\w-]+)$",
                         ann.get("runbook_url", ""))
            if not m:
                errors.append("%s: runbook_url %r is not .../docs/runbook.md#anchor" % (n, ann.get("runbook_url")))
            elif m.group(1) not in anchors:
                errors.append("%s: runbook anchor #%s is not a heading of %s" % (n, m.group(1), runbook))
    for n in sorted(names):
        if n not in headings:
            errors.append("%s: no heading '%s' in %s" % (n, n, runbook))
        if n not in fires:
            errors.append("%s: no promtool test where it fires" % n)
        if n not in silent:
            errors.append("%s: no promtool test where it stays silent" % n)
    for e in errors:
        print("FAIL: " + e)
    print("%d alerts checked (%s); %d runbook anchors" % (len(names), ", ".join(sorted(names)), len(anchors)))
    return 1 if errors or not names else 0


if __name__ == "__main__":
    sys.exit(main())
