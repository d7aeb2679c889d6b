#!/usr/bin/env python3
"""Static checks for grafana/dashboards/*.json (used by scripts/check-deploy).

Usage: check_dashboards.py DASHBOARD_DIR PROMQL_RULES_OUT
Checks, printing one "ok"/"FAIL" line each:
  - every file is valid JSON with a non-empty, unique uid and unique title
  - a `datasource` variable of type datasource (query prometheus) exists
  - every panel (and every target) uses datasource uid ${datasource}
  - every $var / ${var} / [[var]] used in a query or variable is defined in
    templating (Grafana built-ins $__* excepted)
  - dashboard links /d/<uid> point to a uid that exists
  - both maps of Vietnam (district optional since July 2025): a `district`
    variable lists only non-empty districts (district!="") and offers All
    (allValue .*, which also matches a missing label); no legend prints
    {{district}} (blank for two-tier endpoints: use an area/place label)
Writes every PromQL query (variables substituted) as recording rules to
PROMQL_RULES_OUT so that `promtool check rules` can parse them.
"""
import glob
import json
import os
import re
import sys

VAR_RE = re.compile(r"\$\{(\w+)(?::[\w]+)?\}|\$(\w+)|\[\[(\w+)\]\]")
BUILTIN = re.compile(r"^__")
DS_REFS = ("${datasource}", "$datasource")


def panels_of(d):
    for p in d.get("panels", []):
        yield p
        for q in p.get("panels", []):  # collapsed rows
            yield q


def main():
    ddir, rules_out = sys.argv[1], sys.argv[2]
    files = sorted(glob.glob(os.path.join(ddir, "*.json")))
    results = []
    uids, titles, dashboards = {}, {}, {}

    def res(ok, msg):
        results.append((ok, msg))

    if not files:
        res(False, "no dashboards in %s" % ddir)
    for f in files:
        try:
            d = json.load(open(f, encoding="utf-8"))
            res(True, "%s: valid JSON" % f)
        except Exception as e:  # noqa: BLE001
            res(False, "%s: invalid JSON: %s" % (f, e))
            continue
        dashboards[f] = d
        uid = d.get("uid")
        if not uid or uid in uids:
            res(False, "%s: uid %r empty or duplicate of %s" % (f, uid, uids.get(uid)))
        uids.setdefault(uid, f)
        if d.get("title") in titles:
            res(False, "%s: title duplicate of %s" % (f, titles[d.get("title")]))
        titles.setdefault(d.get("title"), f)
    res(len(uids) == len(dashboards), "uids unique across %d dashboards: %s" % (len(dashboards), sorted(uids)))

    rules = []
    for f, d in dashboards.items():
        errs = []
        variables = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
        ds = variables.get("datasource")
        if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
            errs.append("no datasource variable of type datasource/prometheus")

        def used_vars(text, where):
            for m in VAR_RE.finditer(text or ""):
                name = m.group(1) or m.group(2) or m.group(3)
                if not BUILTIN.match(name) and name not in variables:
                    errs.append("%s uses undefined variable $%s" % (where, name))

        for name, v in variables.items():
            if v.get("type") == "query":
                q = v.get("query")
                q = q.get("query") if isinstance(q, dict) else q
                used_vars(q, "variable %s" % name)
                if (v.get("datasource") or {}).get("uid") not in DS_REFS:
                    errs.append("variable %s datasource is not ${datasource}" % name)
                if name == "district" and not ('district!=""' in (q or "") and v.get("includeAll")
                                                and v.get("allValue") == ".*"):
                    errs.append('variable district must list non-empty districts (district!="") '
                                'and offer All with allValue ".*"')
                m = re.match(r"^label_values\((.*),\s*\w+\)$", q or "")
                if m:
                    rules.append((f, "var " + name, m.group(1)))
        for p in panels_of(d):
            if p.get("type") == "row":
                continue
            where = "panel %r" % p.get("title")
            if (p.get("datasource") or {}).get("uid") not in DS_REFS:
                errs.append("%s datasource is not ${datasource}" % where)
            if not p.get("targets"):
                errs.append("%s has no query" % where)
            for t in p.get("targets", []):
                if (t.get("datasource") or {}).get("uid") not in DS_REFS:
                    errs.append("%s target %s datasource is not ${datasource}" % (where, t.get("refId")))
                used_vars(t.get("expr"), where)
                if "{{district}}" in (t.get("legendFormat") or ""):
                    errs.append("%s target %s legend prints {{district}}, blank for two-tier endpoints"
                                % (where, t.get("refId")))
                rules.append((f, where, t.get("expr", "")))
            for l in (p.get("fieldConfig", {}).get("defaults", {}).get("links", [])):
                used_vars(l.get("url", "").replace("${__data", "${__x").replace("${__url", "${__x"), where + " link")
        for l in d.get("links", []) + [l for p in panels_of(d) for l in
                                       p.get("fieldConfig", {}).get("defaults", {}).get("links", [])]:
            for target_uid in re.findall(r"/d/([\w-]+)", l.get("url", "")):
                if target_uid not in uids:
                    errs.append("link to unknown dashboard uid %s" % target_uid)
        for e in errs:
            res(False, "%s: %s" % (f, e))
        if not errs:
            res(True, "%s: datasource=${datasource} on all panels/targets, all variables defined, links resolve" % f)

    subst = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
    with open(rules_out, "w", encoding="utf-8") as out:
        out.write("groups:\n- name: dashboards\n  rules:\n")
        for i, (f, where, expr) in enumerate(rules):
            e = VAR_RE.sub(lambda m: subst.get(m.group(1) or m.group(2) or m.group(3), "x"), expr)
            out.write("  - record: dashboard_query_%d\n    expr: %s\n" % (i, json.dumps(e, ensure_ascii=False)))
    failed = 0
    for ok, msg in results:
        print(("ok: " if ok else "FAIL: ") + msg)
        failed += 0 if ok else 1
    print("%d dashboard queries written to %s" % (len(rules), rules_out))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
