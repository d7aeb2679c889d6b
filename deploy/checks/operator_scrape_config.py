#!/usr/bin/env python3
"""The Prometheus scrape job the Prometheus Operator generates for the kit's ServiceMonitor,
pointed at a static target (used by tests/operator_labels.rs).

The job follows the operator's generateServiceMonitorConfig (pkg/prometheus/promcfg.go,
role "endpoints"): honor_labels (forced false by a Prometheus with overrideHonorLabels),
the keep rules of the Service selector and the port, the target labels namespace, service,
pod, container, job (jobLabel) and endpoint, the running-pod filter, and the endpoint's
metricRelabelings. Kubernetes service discovery is replaced by one static target that
carries the __meta_kubernetes_* labels the endpoints role gives the first pod of the
StatefulSet behind the Service, so the relabelling runs exactly as in a cluster.

Usage: operator_scrape_config.py --target HOST:PORT --job-name NAME [--variant V]
           [--override-honor-labels] [--bare] [--service-name NAME] [--interval 1s]
  --bare          the ServiceMonitor without honorLabels and metricRelabelings (the
                  operator's defaults): what the kit must not be
  --service-name  rename the Service (as a per-vantage overlay does)
  --variant V     a static target label variant=V, to tell jobs apart in one Prometheus
Prints the job as JSON (a YAML document too). Run from the repository root.
"""
import argparse
import json
import re

import yaml

KIT = "deploy/kubernetes"


def load(path, kind):
    for d in yaml.safe_load_all(open(path, encoding="utf-8")):
        if d and d.get("kind") == kind:
            return d
    raise SystemExit("%s: no %s" % (path, kind))


def sanitize(name):
    """The operator's sanitizeLabelName."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def snake(relabel):
    """A monitoring.coreos.com RelabelConfig as a Prometheus relabel_config."""
    names = {"sourceLabels": "source_labels", "targetLabel": "target_label"}
    out = {names.get(k, k): v for k, v in relabel.items()}
    if "action" in out:
        out["action"] = out["action"].lower()
    return out


def job(args):
    sm = load(KIT + "/shared/servicemonitor.yaml", "ServiceMonitor")
    svc = load(KIT + "/prober/service.yaml", "Service")
    sts = load(KIT + "/prober/statefulset.yaml", "StatefulSet")
    ep = sm["spec"]["endpoints"][0]
    if args.bare:
        ep = {k: v for k, v in ep.items() if k not in ("honorLabels", "metricRelabelings")}
    service_name = args.service_name or svc["metadata"]["name"]
    pod = "%s-0" % sts["metadata"]["name"]
    container = sts["spec"]["template"]["spec"]["containers"][0]
    svc_port = [p for p in svc["spec"]["ports"] if p["name"] == ep["port"]][0]

    # What the endpoints role says about the first pod's address behind the Service.
    meta = {
        "__meta_kubernetes_namespace": sm["metadata"]["namespace"],
        "__meta_kubernetes_service_name": service_name,
        "__meta_kubernetes_endpoints_name": service_name,
        "__meta_kubernetes_endpoint_port_name": svc_port["name"],
        "__meta_kubernetes_endpoint_port_protocol": svc_port.get("protocol", "TCP"),
        "__meta_kubernetes_endpoint_ready": "true",
        "__meta_kubernetes_endpoint_address_target_kind": "Pod",
        "__meta_kubernetes_endpoint_address_target_name": pod,
        "__meta_kubernetes_pod_name": pod,
        "__meta_kubernetes_pod_container_name": container["name"],
        "__meta_kubernetes_pod_container_port_name": container["ports"][0]["name"],
        "__meta_kubernetes_pod_phase": "Running",
        "__meta_kubernetes_pod_ready": "true",
    }
    for k, v in (svc["metadata"].get("labels") or {}).items():
        meta["__meta_kubernetes_service_label_" + sanitize(k)] = v
        meta["__meta_kubernetes_service_labelpresent_" + sanitize(k)] = "true"
    for k, v in (sts["spec"]["template"]["metadata"].get("labels") or {}).items():
        meta["__meta_kubernetes_pod_label_" + sanitize(k)] = v
        meta["__meta_kubernetes_pod_labelpresent_" + sanitize(k)] = "true"
    if args.variant:
        meta["variant"] = args.variant

    relabel = [{"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"}]
    for k in sorted(sm["spec"]["selector"].get("matchLabels", {})):
        relabel.append({"action": "keep",
                        "source_labels": ["__meta_kubernetes_service_label_" + sanitize(k),
                                          "__meta_kubernetes_service_labelpresent_" + sanitize(k)],
                        "regex": "(%s);true" % sm["spec"]["selector"]["matchLabels"][k]})
    relabel.append({"action": "keep", "source_labels": ["__meta_kubernetes_endpoint_port_name"],
                    "regex": ep["port"]})
    kind_name = ["__meta_kubernetes_endpoint_address_target_kind", "__meta_kubernetes_endpoint_address_target_name"]
    relabel += [
        {"source_labels": kind_name, "separator": ";", "regex": "Node;(.*)", "replacement": "${1}",
         "target_label": "node"},
        {"source_labels": kind_name, "separator": ";", "regex": "Pod;(.*)", "replacement": "${1}",
         "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)"},
    ]
    for l in sm["spec"].get("targetLabels", []):
        relabel.append({"source_labels": ["__meta_kubernetes_service_label_" + sanitize(l)],
                        "target_label": sanitize(l), "regex": "(.+)", "replacement": "${1}"})
    for l in sm["spec"].get("podTargetLabels", []):
        relabel.append({"source_labels": ["__meta_kubernetes_pod_label_" + sanitize(l)],
                        "target_label": sanitize(l), "regex": "(.+)", "replacement": "${1}"})
    relabel.append({"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job",
                    "replacement": "${1}"})
    if sm["spec"].get("jobLabel"):
        relabel.append({"source_labels": ["__meta_kubernetes_service_label_" + sanitize(sm["spec"]["jobLabel"])],
                        "target_label": "job", "regex": "(.+)", "replacement": "${1}"})
    relabel.append({"target_label": "endpoint", "replacement": ep["port"]})
    relabel += [snake(r) for r in ep.get("relabelings", [])]

    out = {
        "job_name": args.job_name,
        "honor_labels": bool(ep.get("honorLabels", False)) and not args.override_honor_labels,
        "static_configs": [{"targets": [args.target], "labels": meta}],
        "scrape_interval": args.interval or ep.get("interval", "30s"),
        "scrape_timeout": args.interval or ep.get("scrapeTimeout", "10s"),
        "metrics_path": ep.get("path", "/metrics"),
        "relabel_configs": relabel,
    }
    if ep.get("metricRelabelings"):
        out["metric_relabel_configs"] = [snake(r) for r in ep["metricRelabelings"]]
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--target", required=True)
    p.add_argument("--job-name", required=True)
    p.add_argument("--variant")
    p.add_argument("--override-honor-labels", action="store_true")
    p.add_argument("--bare", action="store_true")
    p.add_argument("--service-name")
    p.add_argument("--interval")
    print(json.dumps(job(p.parse_args()), indent=1))


if __name__ == "__main__":
    main()
