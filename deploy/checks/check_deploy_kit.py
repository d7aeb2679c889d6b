#!/usr/bin/env python3
"""Static checks of the deploy kit (used by scripts/check-deploy).

Usage: check_deploy_kit.py WHAT   (run from the repository root)
  compose       deploy/compose/compose.yaml parses; 4 services; every relative
                bind-mount source exists (env-var defaults excepted);
                Alertmanager's notification templates are mounted beside its config
  provisioning  grafana/provisioning YAML parses; dashboard path is the one
                compose mounts grafana/dashboards at; datasource is prometheus
  kubernetes    every manifest parses; Deployment security context (NET_RAW,
                runAsNonRoot, readOnlyRootFilesystem); ServiceMonitor selects
                the Service; PrometheusRule rules extracted to argv[2]
  systemd       required hardening directives present with expected values
  toml          deploy/examples/diemcau.toml parses, only [web] listen_address
                and [inventory] files
  containerfile multi-stage rust:1-bookworm -> debian:bookworm-slim, non-root
                numeric USER, setcap cap_net_raw, ledger on the state volume
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
    need("NET_RAW" in svcs.get("diemcau", {}).get("cap_add", []), "compose diemcau lacks cap_add NET_RAW")
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
    docs = {}
    for f in sorted(glob.glob("deploy/kubernetes/*.yaml")):
        for d in yaml.safe_load_all(open(f, encoding="utf-8")):
            if d:
                need(all(k in d for k in ("apiVersion", "kind")), "%s: no apiVersion/kind" % f)
                docs[d["kind"]] = d
    kust = docs.get("Kustomization", {})
    for r in kust.get("resources", []):
        need(os.path.exists(os.path.join("deploy/kubernetes", r)), "kustomization resource %s missing" % r)
    dep = docs["Deployment"]["spec"]["template"]["spec"]
    c = dep["containers"][0]
    sc = c["securityContext"]
    need("NET_RAW" in sc["capabilities"]["add"], "Deployment: NET_RAW not added")
    need(sc.get("readOnlyRootFilesystem") is True, "Deployment: readOnlyRootFilesystem not true")
    need(dep["securityContext"].get("runAsNonRoot") is True, "Deployment: runAsNonRoot not true")
    need(docs["Service"]["spec"]["selector"].items() <= dep_labels(docs), "Service selector does not match pods")
    sm = docs["ServiceMonitor"]
    need(sm["spec"]["selector"]["matchLabels"].items() <= docs["Service"]["metadata"]["labels"].items(),
         "ServiceMonitor does not select the Service")
    need(sm["spec"]["endpoints"][0]["port"] == docs["Service"]["spec"]["ports"][0]["name"],
         "ServiceMonitor port is not the Service port name")
    need("diemcau.toml" in docs["ConfigMap"]["data"], "ConfigMap lacks diemcau.toml")
    pr = docs["PrometheusRule"]
    with open(rules_out, "w", encoding="utf-8") as out:
        yaml.safe_dump({"groups": pr["spec"]["groups"]}, out, allow_unicode=True, sort_keys=False)
    print("kubernetes kinds: %s" % ", ".join(sorted(docs)))


def dep_labels(docs):
    return docs["Deployment"]["spec"]["template"]["metadata"]["labels"].items()


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
    need("setcap cap_net_raw+ep /usr/bin/diemcau" in t, "no setcap cap_net_raw")
    need(re.search(r"^ENV STATE_DIRECTORY=/var/lib/diemcau$", t, re.M) is not None,
         "no ENV STATE_DIRECTORY=/var/lib/diemcau: the ledger would go beside the read-only config")
    print("Containerfile stages: %s, USER %s" % (froms, users[-1] if users else None))


def images():
    import tomllib
    version = tomllib.load(open("Cargo.toml", "rb"))["package"]["version"]
    want = "ghcr.io/diemcau/diemcau:" + version
    found = []
    for f in sorted(glob.glob("deploy/kubernetes/*.yaml")) + ["deploy/compose/compose.yaml"]:
        for m in re.finditer(r"^\s*(?:-\s*)?image:\s*(\S+)", open(f, encoding="utf-8").read(), re.M):
            image = m.group(1).strip("'\"")
            found.append((f, image))
            name, _, tag = image.rpartition(":")
            need(bool(name) and "/" not in tag and tag not in ("", "latest"),
                 "%s: image %s is not pinned to a tag" % (f, image))
    ours = [(f, i) for f, i in found if "diemcau/diemcau" in i or i.startswith("localhost/diemcau")]
    need({f for f, _ in ours} == {"deploy/kubernetes/deployment.yaml", "deploy/compose/compose.yaml"},
         "diemcau image not found in both the Deployment and compose: %s" % ours)
    for f, i in ours:
        need(i == want, "%s: image %s, want %s (the Cargo.toml version)" % (f, i, want))
    label = re.search(r'org\.opencontainers\.image\.version="([^"]+)"', open("deploy/Containerfile").read())
    need(label is not None and label.group(1) == version,
         "Containerfile label org.opencontainers.image.version=%s, want %s" % (label and label.group(1), version))
    print("images: %s" % ", ".join(sorted({i for _, i in found})))


if __name__ == "__main__":
    what = sys.argv[1]
    {"compose": compose, "provisioning": provisioning, "systemd": systemd, "toml": toml,
     "containerfile": containerfile, "images": images}.get(what, lambda: kubernetes(sys.argv[2]))()
    for e in errors:
        print("FAIL: " + e)
    sys.exit(1 if errors else 0)
