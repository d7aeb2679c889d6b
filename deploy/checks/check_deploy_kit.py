#!/usr/bin/env python3
"""Static checks of the deploy kit (used by scripts/check-deploy).

Usage: check_deploy_kit.py WHAT   (run from the repository root)
  compose       deploy/compose/compose.yaml parses; 4 services; every relative
                bind-mount source exists (env-var defaults excepted);
                Alertmanager's notification templates are mounted beside its config
  provisioning  grafana/provisioning YAML parses; dashboard path is the one
                compose mounts grafana/dashboards at; datasource is prometheus
  kubernetes    every manifest under deploy/kubernetes parses; every file a
                kustomization names exists; PrometheusRule rules extracted to argv[2]
  rendered FILE TOPOLOGY
                one rendered topology (kubectl kustomize output; TOPOLOGY is
                default, net-raw, sharded or per-vantage): StatefulSets with
                ledger claim, probes, security context, ping sysctl covering
                runAsGroup (or, net-raw, the file-capability binary); headless
                governing Services; the ServiceMonitor selects every Service and
                gives job="diemcau"; configs parse; shard count = replicas
  systemd       required hardening directives present with expected values
  toml          deploy/examples/diemcau.toml parses, only [web] listen_address
                and [inventory] files
  containerfile multi-stage rust:1-bookworm -> debian:bookworm-slim, non-root
                numeric USER, no file capability on /usr/bin/diemcau, setcap
                cap_net_raw on the net-raw copy only, ledger on the state volume
  images        the diemcau image in deploy/kubernetes and deploy/compose is tagged
                with the Cargo.toml version (as the Containerfile's label); no
                image anywhere uses `latest` or no tag
"""
import glob
import os
import re
import sys

import yaml

errors = []


def need(cond, msg):
    if not cond:
        errors.append(msg)


def compose():
    f = "deploy/compose/compose.yaml"
    d = yaml.safe_load(open(f, encoding="utf-8"))
    svcs = d.get("services", {})
    need(set(svcs) >= {"diemcau", "prometheus", "alertmanager", "grafana"},
         "compose services: %s" % sorted(svcs))
    base = os.path.dirname(f)
    for name, s in svcs.items():
        for v in s.get("volumes", []):
            src = v.split(":", 1)[0]
            if src.startswith("${") or not src.startswith("."):
                continue  # named volume or env-provided path
            need(os.path.exists(os.path.join(base, src)), "compose %s: bind source %s missing" % (name, src))
        b = s.get("build")
        if b:
            need(os.path.exists(os.path.join(base, b["context"], b["dockerfile"])),
                 "compose %s: build dockerfile missing" % name)
    d_svc = svcs.get("diemcau", {})
    need(not d_svc.get("cap_add"), "compose diemcau adds capabilities: %s" % d_svc.get("cap_add"))
    need(d_svc.get("cap_drop") == ["ALL"], "compose diemcau does not drop ALL capabilities")
    need(ping_range_covers((d_svc.get("sysctls") or {}).get("net.ipv4.ping_group_range"), 10001),
         "compose diemcau: sysctl net.ipv4.ping_group_range does not cover the image's gid 10001")
    # Alertmanager resolves `templates` relative to its config file: the compose
    # mounts must put every template directory beside the mounted config.
    am = yaml.safe_load(open("deploy/alertmanager/alertmanager.yml", encoding="utf-8"))
    mounts = {}
    for v in svcs.get("alertmanager", {}).get("volumes", []):
        parts = v.split(":")
        if len(parts) >= 2:
            mounts[os.path.normpath(parts[1])] = os.path.normpath(os.path.join(base, parts[0]))
    conf_in = [dst for dst, src in mounts.items() if src.endswith(os.path.join("alertmanager", "alertmanager.yml"))]
    need(conf_in, "compose alertmanager: deploy/alertmanager/alertmanager.yml not mounted")
    for t in am.get("templates", []) or []:
        if not conf_in or os.path.isabs(t):
            continue
        want_dst = os.path.normpath(os.path.join(os.path.dirname(conf_in[0]), os.path.dirname(t)))
        want_src = os.path.normpath(os.path.join("deploy/alertmanager", os.path.dirname(t)))
        need(mounts.get(want_dst) == want_src,
             "compose alertmanager: templates %s need %s mounted at %s" % (t, want_src, want_dst))
    print("compose services: %s" % ", ".join(sorted(svcs)))


def provisioning():
    dash = yaml.safe_load(open("grafana/provisioning/dashboards/diemcau.yml", encoding="utf-8"))
    ds = yaml.safe_load(open("grafana/provisioning/datasources/prometheus.yml", encoding="utf-8"))
    comp = yaml.safe_load(open("deploy/compose/compose.yaml", encoding="utf-8"))
    path = dash["providers"][0]["options"]["path"]
    mounts = [v for v in comp["services"]["grafana"]["volumes"] if v.startswith("../../grafana/dashboards:")]
    need(mounts and mounts[0].split(":")[1] == path, "dashboard provider path %s not mounted by compose" % path)
    need(ds["datasources"][0]["type"] == "prometheus", "datasource type is not prometheus")
    print("dashboard provider path %s, datasource %s" % (path, ds["datasources"][0]["url"]))


def kubernetes(rules_out):
    files = sorted(glob.glob("deploy/kubernetes/**/*.yaml", recursive=True))
    kinds = {}
    for f in files:
        for d in yaml.safe_load_all(open(f, encoding="utf-8")):
            if not d:
                continue
            need(all(k in d for k in ("apiVersion", "kind")), "%s: no apiVersion/kind" % f)
            kinds.setdefault(d.get("kind"), []).append(f)
            if d.get("kind") in ("Kustomization", "Component"):
                base = os.path.dirname(f)
                for key in ("resources", "components"):
                    for r in d.get(key, []):
                        need(os.path.exists(os.path.join(base, r)), "%s: %s %s missing" % (f, key, r))
                for p in d.get("patches", []):
                    if "path" in p:
                        need(os.path.exists(os.path.join(base, p["path"])), "%s: patch %s missing" % (f, p["path"]))
            if d.get("kind") == "PrometheusRule":
                with open(rules_out, "w", encoding="utf-8") as out:
                    yaml.safe_dump({"groups": d["spec"]["groups"]}, out, allow_unicode=True, sort_keys=False)
    need(not glob.glob("deploy/kubernetes/**/deployment.yaml", recursive=True), "a Deployment is back")
    need("PrometheusRule" in kinds, "no PrometheusRule")
    print("kubernetes: %d files, kinds %s" % (len(files), ", ".join(sorted(kinds))))


def ping_range_covers(value, gid):
    try:
        lo, hi = (int(x) for x in str(value).split())
    except (TypeError, ValueError):
        return False
    return lo <= gid <= hi


def matches(selector, labels):
    return bool(selector) and selector.items() <= (labels or {}).items()


def rendered(path, topology):
    """Checks of one rendered topology (see the module doc)."""
    import tomllib
    docs = [d for d in yaml.safe_load_all(open(path, encoding="utf-8")) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    need(not by_kind.get("Deployment"), "a Deployment is rendered")
    sets, services, maps = by_kind.get("StatefulSet", []), by_kind.get("Service", []), by_kind.get("ConfigMap", [])
    monitors = by_kind.get("ServiceMonitor", [])
    need(len(by_kind.get("Namespace", [])) == 1 and len(monitors) == 1 and len(by_kind.get("PrometheusRule", [])) == 1,
         "want one Namespace, one ServiceMonitor and one PrometheusRule, got %s"
         % {k: len(v) for k, v in by_kind.items()})
    want_sets = {"default": 1, "net-raw": 1, "sharded": 1, "per-vantage": 2}[topology]
    need(len(sets) == want_sets, "%d StatefulSets, want %d" % (len(sets), want_sets))
    net_raw = topology == "net-raw"
    cm_names = {m["metadata"]["name"] for m in maps}
    vantages = []
    for s in sets:
        name = s["metadata"]["name"]
        spec = s["spec"]
        pod = spec["template"]["spec"]
        psc = pod.get("securityContext", {})
        c = pod["containers"][0]
        csc = c.get("securityContext", {})
        need(spec.get("podManagementPolicy") == "Parallel", "%s: podManagementPolicy is not Parallel" % name)
        need(spec.get("updateStrategy", {}).get("type") == "RollingUpdate", "%s: updateStrategy" % name)
        need(matches(spec["selector"]["matchLabels"], spec["template"]["metadata"]["labels"]),
             "%s: selector does not match the pod template" % name)
        # The ledger: a claim template mounted at the state directory.
        claims = {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])}
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        need(mounts.get("/var/lib/diemcau") in claims, "%s: /var/lib/diemcau is not a volumeClaimTemplate" % name)
        need(mounts.get("/var/lib/diemcau") not in {v["name"] for v in pod.get("volumes", [])},
             "%s: /var/lib/diemcau is also a pod volume" % name)
        need(psc.get("fsGroup") == psc.get("runAsGroup"), "%s: fsGroup differs from runAsGroup: the ledger claim is not writable" % name)
        for probe, path in (("readinessProbe", "/-/ready"), ("livenessProbe", "/-/healthy"), ("startupProbe", "/-/healthy")):
            need(c.get(probe, {}).get("httpGet", {}).get("path") == path, "%s: %s is not httpGet %s" % (name, probe, path))
        need(csc.get("readOnlyRootFilesystem") is True, "%s: readOnlyRootFilesystem" % name)
        need(psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0, "%s: not non-root" % name)
        need(csc.get("capabilities", {}).get("drop") == ["ALL"], "%s: capabilities not dropped" % name)
        sysctls = {x["name"]: x["value"] for x in psc.get("sysctls", [])}
        if net_raw:
            need(c.get("command") == ["/usr/libexec/diemcau/diemcau-net-raw"], "%s: not the net-raw binary" % name)
            need(csc.get("capabilities", {}).get("add") == ["NET_RAW"], "%s: NET_RAW not added" % name)
            need(csc.get("allowPrivilegeEscalation") is True,
                 "%s: file capabilities need allowPrivilegeEscalation (no_new_privs off)" % name)
        else:
            need("command" not in c, "%s: overrides the image entrypoint %s" % (name, c.get("command")))
            need(not csc.get("capabilities", {}).get("add"), "%s: adds capabilities" % name)
            need(csc.get("allowPrivilegeEscalation") is False, "%s: allowPrivilegeEscalation" % name)
            need(ping_range_covers(sysctls.get("net.ipv4.ping_group_range"), psc.get("runAsGroup")),
                 "%s: net.ipv4.ping_group_range %r does not cover runAsGroup %s"
                 % (name, sysctls.get("net.ipv4.ping_group_range"), psc.get("runAsGroup")))
        # The governing Service: headless, selecting exactly this StatefulSet's pods.
        gov = [v for v in services if v["metadata"]["name"] == spec.get("serviceName")]
        need(len(gov) == 1, "%s: serviceName %s is not a rendered Service" % (name, spec.get("serviceName")))
        for v in gov:
            need(v["spec"].get("clusterIP") == "None", "%s: Service %s is not headless" % (name, v["metadata"]["name"]))
            need(matches(v["spec"]["selector"], spec["template"]["metadata"]["labels"]),
                 "%s: its Service does not select its pods" % name)
            for other in sets:
                if other is not s:
                    need(not matches(v["spec"]["selector"], other["spec"]["template"]["metadata"]["labels"]),
                         "Service %s also selects the pods of %s" % (v["metadata"]["name"], other["metadata"]["name"]))
            port = [p for p in v["spec"]["ports"] if p.get("name") == "metrics"]
            need(port and port[0]["targetPort"] in [p["name"] for p in c["ports"]], "%s: Service port" % name)
        # Its config.
        refs = [src["configMap"]["name"] for vol in pod.get("volumes", []) for src in
                vol.get("projected", {}).get("sources", []) if "configMap" in src]
        need("diemcau-inventory" in refs, "%s: does not mount the diemcau-inventory ConfigMap" % name)
        own = [r for r in refs if r != "diemcau-inventory"]
        need(len(own) == 1 and own[0] in cm_names, "%s: config ConfigMap %s not rendered" % (name, own))
        if own and own[0] in cm_names:
            text = [m for m in maps if m["metadata"]["name"] == own[0]][0]["data"]["diemcau.toml"]
            cfg = tomllib.loads(text)
            need(cfg.get("web", {}).get("listen_address") == "0.0.0.0:9808", "%s: listen_address" % name)
            shard = cfg.get("shard", {})
            if shard.get("count", 1) > 1:
                need(shard.get("index_from_hostname") is True, "%s: shards without index_from_hostname" % name)
                need(shard["count"] == spec.get("replicas", 1),
                     "%s: [shard] count %s differs from replicas %s" % (name, shard["count"], spec.get("replicas")))
            else:
                need(spec.get("replicas", 1) == 1, "%s: %s replicas of one unsharded prober would probe everything %s times"
                     % (name, spec.get("replicas"), spec.get("replicas")))
            vantages.append(cfg.get("vantage", {}).get("name"))
    if topology == "sharded":
        need(any(s["spec"].get("replicas", 1) > 1 for s in sets), "sharded: one replica")
    if topology == "per-vantage":
        need(sorted(vantages) == ["viettel-hanoi", "vnpt-hanoi"], "per-vantage: vantages %s" % vantages)
    # The ServiceMonitor: every Service, port "metrics", job "diemcau" (what the rules expect).
    for sm in monitors:
        sel = sm["spec"]["selector"]["matchLabels"]
        need(sm["spec"]["endpoints"][0].get("port") == "metrics", "ServiceMonitor port")
        need(sm["spec"]["endpoints"][0].get("honorLabels") is True, "ServiceMonitor does not honour labels")
        for v in services:
            need(matches(sel, v["metadata"].get("labels")), "ServiceMonitor does not select Service %s" % v["metadata"]["name"])
            job = v["metadata"].get("labels", {}).get(sm["spec"].get("jobLabel", ""), v["metadata"]["name"])
            need(job == "diemcau", "Service %s: the ServiceMonitor gives job=%s, the rules expect diemcau"
                 % (v["metadata"]["name"], job))
    print("%s: %s" % (topology, ", ".join("%s %s" % (k, [d["metadata"]["name"] for d in v]) for k, v in sorted(by_kind.items()))))


def systemd():
    text = open("deploy/systemd/diemcau.service", encoding="utf-8").read()
    kv = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+)=(.*)$", line)
        if m:
            kv.setdefault(m.group(1), m.group(2))
    want = {"AmbientCapabilities": "CAP_NET_RAW", "CapabilityBoundingSet": "CAP_NET_RAW",
            "NoNewPrivileges": "yes", "ProtectSystem": "strict", "StateDirectory": "diemcau",
            "Restart": "on-failure",
            "ExecStart": "/usr/bin/diemcau run --config /etc/diemcau/diemcau.toml",
            "ExecReload": "/bin/kill -HUP $MAINPID"}
    for k, v in want.items():
        need(kv.get(k) == v, "systemd %s=%r, want %r" % (k, kv.get(k), v))
    need(kv.get("DynamicUser") == "yes" or kv.get("User") == "diemcau", "systemd: no DynamicUser/User")
    print("systemd directives: %s" % ", ".join(sorted(want)))


def toml():
    import tomllib
    d = tomllib.load(open("deploy/examples/diemcau.toml", "rb"))
    need(d == {"web": {"listen_address": d.get("web", {}).get("listen_address")},
               "inventory": {"files": d.get("inventory", {}).get("files")}}, "unexpected keys: %s" % d)
    need(d["web"]["listen_address"] == "0.0.0.0:9808", "listen_address")
    need(d["inventory"]["files"] == ["inventory.csv"], "inventory.files")
    print("diemcau.toml: %s" % d)


def containerfile():
    t = open("deploy/Containerfile", encoding="utf-8").read()
    froms = re.findall(r"^FROM\s+(\S+)", t, re.M)
    need(len(froms) == 2 and froms[0].endswith("rust:1-bookworm") and froms[1].endswith("debian:bookworm-slim"),
         "stages: %s" % froms)
    users = re.findall(r"^USER\s+(\S+)", t, re.M)
    need(users and not users[-1].startswith(("root", "0")), "final USER is root or missing")
    need(bool(users) and re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", users[-1]) is not None,
         "final USER is not a numeric uid (runAsNonRoot needs one): %s" % users)
    need("setcap cap_net_raw+ep /usr/libexec/diemcau/diemcau-net-raw" in t, "no setcap cap_net_raw on the net-raw copy")
    # A file capability on the entrypoint would make its exec fail (EPERM) under
    # capabilities.drop: [ALL], i.e. in every Pod Security "restricted" pod.
    need(re.search(r"setcap[^\n]*/usr/bin/diemcau\b", t) is None, "/usr/bin/diemcau gets a file capability")
    need(re.search(r'^ENTRYPOINT \["/usr/bin/diemcau"\]$', t, re.M) is not None, "ENTRYPOINT is not /usr/bin/diemcau")
    need(re.search(r"^ENV STATE_DIRECTORY=/var/lib/diemcau$", t, re.M) is not None,
         "no ENV STATE_DIRECTORY=/var/lib/diemcau: the ledger would go beside the read-only config")
    print("Containerfile stages: %s, USER %s" % (froms, users[-1] if users else None))


def images():
    import tomllib
    version = tomllib.load(open("Cargo.toml", "rb"))["package"]["version"]
    want = "ghcr.io/diemcau/diemcau:" + version
    found = []
    for f in sorted(glob.glob("deploy/kubernetes/**/*.yaml", recursive=True)) + ["deploy/compose/compose.yaml"]:
        for m in re.finditer(r"^\s*(?:-\s*)?image:\s*(\S+)", open(f, encoding="utf-8").read(), re.M):
            image = m.group(1).strip("'\"")
            found.append((f, image))
            name, _, tag = image.rpartition(":")
            need(bool(name) and "/" not in tag and tag not in ("", "latest"),
                 "%s: image %s is not pinned to a tag" % (f, image))
    ours = [(f, i) for f, i in found if "diemcau/diemcau" in i or i.startswith("localhost/diemcau")]
    need({f for f, _ in ours} == {"deploy/kubernetes/prober/statefulset.yaml", "deploy/compose/compose.yaml"},
         "diemcau image not found in both the StatefulSet and compose: %s" % ours)
    for f, i in ours:
        need(i == want, "%s: image %s, want %s (the Cargo.toml version)" % (f, i, want))
    label = re.search(r'org\.opencontainers\.image\.version="([^"]+)"', open("deploy/Containerfile").read())
    need(label is not None and label.group(1) == version,
         "Containerfile label org.opencontainers.image.version=%s, want %s" % (label and label.group(1), version))
    print("images: %s" % ", ".join(sorted({i for _, i in found})))


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "kubernetes":
        kubernetes(sys.argv[2])
    elif what == "rendered":
        rendered(sys.argv[2], sys.argv[3])
    else:
        {"compose": compose, "provisioning": provisioning, "systemd": systemd, "toml": toml,
         "containerfile": containerfile, "images": images}[what]()
    for e in errors:
        print("FAIL: " + e)
    sys.exit(1 if errors else 0)
