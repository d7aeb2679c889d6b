#!/usr/bin/env python3
"""Offline Pod Security Standards check of rendered Kubernetes manifests.

The checks are those of Pod Security Admission (k8s.io/pod-security-admission,
policy/check_*.go, as of its "latest" version), which implements
https://kubernetes.io/docs/concepts/security/pod-security-standards/ ; each function
below names the check it follows. Every pod template is checked: Pods and the templates
of Deployments, StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs,
CronJobs and PodTemplates (PSA enforces on the Pods they create; it warns and audits on
the templates).

Usage (from the repository root):
  check_pod_security.py admit FILE [--level L] [--expect-violations ID,ID]
      Admission as the kit's namespace asks for it: every pod template in FILE must pass
      the `pod-security.kubernetes.io/enforce` level of its Namespace in FILE (or L).
      With --level, also print the violations at L; --expect-violations then requires
      exactly those check ids to fail at L (the net-raw overlay, which must fail
      restricted and baseline, and nothing else).
  check_pod_security.py self-test FILE
      FILE must pass restricted; then each negative case changes its first pod template
      in one way and must fail exactly the check it targets (at baseline too, for
      baseline checks), and each allowed variation must still pass.
Exit status 1 on any failure.
"""
import copy
import sys

import yaml

BASELINE = "baseline"
RESTRICTED = "restricted"
PRIVILEGED = "privileged"
LEVELS = (PRIVILEGED, BASELINE, RESTRICTED)

# ---- helpers ------------------------------------------------------------------------


def containers(spec):
    """initContainers, containers, ephemeralContainers (PSA's visitContainers)."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            yield c


def sc(obj):
    return obj.get("securityContext") or {}


def windows(spec):
    return (spec.get("os") or {}).get("name") == "windows"


def user_namespace(spec):
    """hostUsers: false relaxes runAsNonRoot, runAsUser and procMount (1.35)."""
    return spec.get("hostUsers") is False


# ---- baseline -----------------------------------------------------------------------

def host_namespaces(meta, spec):  # check_hostNamespaces.go
    bad = [k for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k) is True]
    return ["%s=true" % k for k in bad]


def privileged(meta, spec):  # check_privileged.go
    return [c["name"] for c in containers(spec) if sc(c).get("privileged") is True]


BASELINE_CAPS = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                 "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}


def capabilities_baseline(meta, spec):  # check_capabilities_baseline.go
    out = []
    for c in containers(spec):
        added = (sc(c).get("capabilities") or {}).get("add") or []
        out += ["%s adds %s" % (c["name"], a) for a in added if a not in BASELINE_CAPS]
    return out


def host_path_volumes(meta, spec):  # check_hostPathVolumes.go
    return [v["name"] for v in spec.get("volumes") or [] if v.get("hostPath") is not None]


def host_ports(meta, spec):  # check_hostPorts.go
    return ["%s hostPort %s" % (c["name"], p["hostPort"])
            for c in containers(spec) for p in c.get("ports") or [] if p.get("hostPort", 0) != 0]


def host_probes_and_lifecycle(meta, spec):  # check_hostProbesAndhostLifecycle.go (1.34)
    out = []
    for c in containers(spec):
        handlers = [c.get(p) for p in ("livenessProbe", "readinessProbe", "startupProbe")]
        handlers += [(c.get("lifecycle") or {}).get(h) for h in ("postStart", "preStop")]
        for h in handlers:
            for kind in ("httpGet", "tcpSocket"):
                host = ((h or {}).get(kind) or {}).get("host")
                if host:
                    out.append("%s %s.host=%s" % (c["name"], kind, host))
    return out


APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"


def apparmor(meta, spec):  # check_appArmorProfile.go
    out = []
    setters = [("pod", sc(spec))] + [(c["name"], sc(c)) for c in containers(spec)]
    for who, s in setters:
        t = (s.get("appArmorProfile") or {}).get("type")
        if s.get("appArmorProfile") is not None and t not in ("RuntimeDefault", "Localhost"):
            out.append("%s appArmorProfile.type=%s" % (who, t))
    for k, v in ((meta or {}).get("annotations") or {}).items():
        if k.startswith(APPARMOR_ANNOTATION) and not (
                v == "" or v == "runtime/default" or v.startswith("localhost/")):
            out.append("%s=%s" % (k, v))
    return out


SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}


def selinux(meta, spec):  # check_seLinuxOptions.go (1.31)
    out = []
    setters = [("pod", sc(spec))] + [(c["name"], sc(c)) for c in containers(spec)]
    for who, s in setters:
        o = s.get("seLinuxOptions")
        if o is None:
            continue
        if o.get("type", "") not in SELINUX_TYPES:
            out.append("%s seLinuxOptions.type=%s" % (who, o.get("type")))
        for field in ("user", "role"):
            if o.get(field):
                out.append("%s seLinuxOptions.%s set" % (who, field))
    return out


def proc_mount(meta, spec):  # check_procMount_baseline.go (1.35) and _restricted.go
    if user_namespace(spec):
        return []
    return ["%s procMount=%s" % (c["name"], sc(c)["procMount"])
            for c in containers(spec) if sc(c).get("procMount") not in (None, "Default")]


def proc_mount_restricted(meta, spec):  # restricted: no user-namespace relaxation
    return ["%s procMount=%s" % (c["name"], sc(c)["procMount"])
            for c in containers(spec) if sc(c).get("procMount") not in (None, "Default")]


SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_ANNOTATION = "container.seccomp.security.alpha.kubernetes.io/"


def seccomp_baseline(meta, spec):  # check_seccompProfile_baseline.go
    out = []
    for k, v in ((meta or {}).get("annotations") or {}).items():
        if (k == SECCOMP_POD_ANNOTATION or k.startswith(SECCOMP_CONTAINER_ANNOTATION)) and not (
                v in ("runtime/default", "docker/default") or v.startswith("localhost/")):
            out.append("%s=%s" % (k, v))
    setters = [("pod", sc(spec))] + [(c["name"], sc(c)) for c in containers(spec)]
    for who, s in setters:
        p = s.get("seccompProfile")
        if p is not None and p.get("type") not in ("RuntimeDefault", "Localhost"):
            out.append("%s seccompProfile.type=%s" % (who, p.get("type")))
    return out


# Safe sysctls, cumulative by Kubernetes version (check_sysctls.go): 1.0, 1.27, 1.29, 1.32,
# 1.37. "latest" allows all of them.
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
    "net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat",
}


def sysctls(meta, spec):  # check_sysctls.go
    return [s["name"] for s in sc(spec).get("sysctls") or [] if s["name"] not in SAFE_SYSCTLS]


def windows_host_process(meta, spec):  # check_windowsHostProcess.go
    setters = [("pod", sc(spec))] + [(c["name"], sc(c)) for c in containers(spec)]
    return [who for who, s in setters if (s.get("windowsOptions") or {}).get("hostProcess") is True]


# ---- restricted ---------------------------------------------------------------------

ALLOWED_VOLUME_SOURCES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image",
                          "persistentVolumeClaim", "projected", "secret"}


def restricted_volumes(meta, spec):  # check_restrictedVolumes.go
    out = []
    for v in spec.get("volumes") or []:
        sources = [k for k in v if k != "name"]
        if not sources or any(s not in ALLOWED_VOLUME_SOURCES for s in sources):
            out.append("%s (%s)" % (v["name"], ", ".join(sources) or "unknown"))
    return out


def allow_privilege_escalation(meta, spec):  # check_allowPrivilegeEscalation.go (1.25)
    if windows(spec):
        return []
    return [c["name"] for c in containers(spec) if sc(c).get("allowPrivilegeEscalation") is not False]


def run_as_non_root(meta, spec):  # check_runAsNonRoot.go (1.35)
    if user_namespace(spec):
        return []
    explicit, implicit = [], []
    pod = sc(spec).get("runAsNonRoot")
    if pod is False:
        explicit.append("pod runAsNonRoot=false")
    for c in containers(spec):
        v = sc(c).get("runAsNonRoot")
        if v is False:
            explicit.append("%s runAsNonRoot=false" % c["name"])
        elif v is None and pod is not True:
            implicit.append("pod or %s must set runAsNonRoot=true" % c["name"])
    # PSA names the explicit setters when there are any, else the containers left unset.
    return explicit or implicit


def run_as_user(meta, spec):  # check_runAsUser.go (1.35)
    if user_namespace(spec):
        return []
    setters = [("pod", sc(spec))] + [(c["name"], sc(c)) for c in containers(spec)]
    return ["%s runAsUser=0" % who for who, s in setters if s.get("runAsUser") == 0]


def seccomp_restricted(meta, spec):  # check_seccompProfile_restricted.go (1.25)
    if windows(spec):
        return []
    explicit, implicit = [], []
    p = sc(spec).get("seccompProfile")
    pod_set = False
    if p is not None:
        if p.get("type") in ("RuntimeDefault", "Localhost"):
            pod_set = True
        else:
            explicit.append("pod seccompProfile.type=%s" % p.get("type"))
    for c in containers(spec):
        cp = sc(c).get("seccompProfile")
        if cp is not None:
            if cp.get("type") not in ("RuntimeDefault", "Localhost"):
                explicit.append("%s seccompProfile.type=%s" % (c["name"], cp.get("type")))
        elif not pod_set:
            implicit.append("pod or %s must set seccompProfile.type RuntimeDefault or Localhost" % c["name"])
    return explicit or implicit


def capabilities_restricted(meta, spec):  # check_capabilities_restricted.go (1.25)
    if windows(spec):
        return []
    out = []
    for c in containers(spec):
        caps = sc(c).get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append('%s must drop ["ALL"]' % c["name"])
        out += ["%s adds %s" % (c["name"], a) for a in caps.get("add") or [] if a != "NET_BIND_SERVICE"]
    return out


# (id, level, function, ids it overrides at its level)
CHECKS = [
    ("hostNamespaces", BASELINE, host_namespaces, ()),
    ("privileged", BASELINE, privileged, ()),
    ("capabilities_baseline", BASELINE, capabilities_baseline, ()),
    ("hostPathVolumes", BASELINE, host_path_volumes, ()),
    ("hostPorts", BASELINE, host_ports, ()),
    ("hostProbesAndHostLifecycle", BASELINE, host_probes_and_lifecycle, ()),
    ("appArmorProfile", BASELINE, apparmor, ()),
    ("seLinuxOptions", BASELINE, selinux, ()),
    ("procMount", BASELINE, proc_mount, ()),
    ("seccompProfile_baseline", BASELINE, seccomp_baseline, ()),
    ("sysctls", BASELINE, sysctls, ()),
    ("windowsHostProcess", BASELINE, windows_host_process, ()),
    ("restrictedVolumes", RESTRICTED, restricted_volumes, ("hostPathVolumes",)),
    ("allowPrivilegeEscalation", RESTRICTED, allow_privilege_escalation, ()),
    ("runAsNonRoot", RESTRICTED, run_as_non_root, ()),
    ("runAsUser", RESTRICTED, run_as_user, ()),
    ("seccompProfile_restricted", RESTRICTED, seccomp_restricted, ("seccompProfile_baseline",)),
    ("capabilities_restricted", RESTRICTED, capabilities_restricted, ("capabilities_baseline",)),
    ("procMount_restricted", RESTRICTED, proc_mount_restricted, ("procMount",)),
]


def evaluate(meta, spec, level):
    """{check id: [details]} of the checks of `level` that fail."""
    if level == PRIVILEGED:
        return {}
    active = [c for c in CHECKS if c[1] == BASELINE or level == RESTRICTED]
    overridden = {o for c in active for o in c[3]}
    result = {}
    for cid, _, fn, _ in active:
        if cid in overridden:
            continue
        bad = fn(meta or {}, spec)
        if bad:
            result[cid] = bad
    return result


# ---- manifests ----------------------------------------------------------------------

def pod_templates(doc):
    """(name, metadata, spec) of every pod (template) in a manifest."""
    kind = doc.get("kind")
    name = "%s/%s" % (kind, (doc.get("metadata") or {}).get("name"))
    if kind == "Pod":
        return [(name, doc.get("metadata"), doc["spec"])]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"):
        t = doc["spec"]["template"]
        return [(name, t.get("metadata"), t["spec"])]
    if kind == "CronJob":
        t = doc["spec"]["jobTemplate"]["spec"]["template"]
        return [(name, t.get("metadata"), t["spec"])]
    if kind == "PodTemplate":
        return [(name, doc["template"].get("metadata"), doc["template"]["spec"])]
    return []


def load(path):
    return [d for d in yaml.safe_load_all(open(path, encoding="utf-8")) if d]


def namespace_level(docs):
    ns = [d for d in docs if d.get("kind") == "Namespace"]
    if len(ns) != 1:
        raise SystemExit("want exactly one Namespace in the manifests, found %d" % len(ns))
    labels = ns[0]["metadata"].get("labels") or {}
    level = labels.get("pod-security.kubernetes.io/enforce")
    if level not in LEVELS:
        raise SystemExit("Namespace %s: pod-security.kubernetes.io/enforce=%r is not a level"
                         % (ns[0]["metadata"]["name"], level))
    for mode in ("enforce", "audit", "warn"):
        v = labels.get("pod-security.kubernetes.io/%s-version" % mode)
        if v not in (None, "latest"):
            raise SystemExit("this check implements the latest version of the profiles, "
                             "the namespace asks %s-version=%s" % (mode, v))
    return level


def admit(path, level=None, expect=None):
    docs = load(path)
    enforce = namespace_level(docs)
    pods = [p for d in docs for p in pod_templates(d)]
    if not pods:
        print("FAIL: no pod template in %s" % path)
        return 1
    failed = 0
    for name, meta, spec in pods:
        bad = evaluate(meta, spec, enforce)
        if bad:
            failed = 1
            print("FAIL: %s is refused by the namespace's enforce=%s: %s" % (name, enforce, bad))
        else:
            print("ok: %s passes the namespace's enforce=%s" % (name, enforce))
        if level:
            got = evaluate(meta, spec, level)
            print("     at %s: %s" % (level, "; ".join("%s: %s" % kv for kv in sorted(got.items())) or "passes"))
            if expect is not None and set(got) != expect:
                failed = 1
                print("FAIL: %s at %s fails %s, want exactly %s" % (name, level, sorted(got), sorted(expect)))
    return failed


# ---- self-test ----------------------------------------------------------------------

def c0(spec):
    return spec["containers"][0]


def csc(spec):
    return c0(spec).setdefault("securityContext", {})


def psc(spec):
    return spec.setdefault("securityContext", {})


def delete(d, key):
    d.pop(key, None)


# (expected failing check, level at which it must fail, what, mutation of (meta, spec))
NEGATIVE = [
    ("hostNamespaces", BASELINE, "hostNetwork", lambda m, s: s.update(hostNetwork=True)),
    ("hostNamespaces", BASELINE, "hostPID", lambda m, s: s.update(hostPID=True)),
    ("hostNamespaces", BASELINE, "hostIPC", lambda m, s: s.update(hostIPC=True)),
    ("privileged", BASELINE, "privileged container", lambda m, s: csc(s).update(privileged=True)),
    ("capabilities_baseline", BASELINE, "NET_RAW added (not in the baseline set)",
     lambda m, s: csc(s)["capabilities"].update(add=["NET_RAW"])),
    ("capabilities_baseline", BASELINE, "SYS_ADMIN added to an init container",
     lambda m, s: s.update(initContainers=[dict(copy.deepcopy(c0(s)), name="init",
                                                securityContext=dict(copy.deepcopy(sc(c0(s))), capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]}))])),
    ("hostPathVolumes", BASELINE, "hostPath volume",
     lambda m, s: s["volumes"].append({"name": "host", "hostPath": {"path": "/"}})),
    ("hostPorts", BASELINE, "hostPort", lambda m, s: c0(s)["ports"][0].update(hostPort=9808)),
    ("hostProbesAndHostLifecycle", BASELINE, "probe host",
     lambda m, s: c0(s)["livenessProbe"]["httpGet"].update(host="10.0.0.1")),
    ("appArmorProfile", BASELINE, "AppArmor Unconfined (field)",
     lambda m, s: psc(s).update(appArmorProfile={"type": "Unconfined"})),
    ("appArmorProfile", BASELINE, "AppArmor unconfined (annotation)",
     lambda m, s: m.setdefault("annotations", {}).update(
         {APPARMOR_ANNOTATION + "diemcau": "unconfined"})),
    ("seLinuxOptions", BASELINE, "SELinux type spc_t",
     lambda m, s: csc(s).update(seLinuxOptions={"type": "spc_t"})),
    ("seLinuxOptions", BASELINE, "SELinux user", lambda m, s: psc(s).update(seLinuxOptions={"user": "system_u"})),
    ("procMount", BASELINE, "procMount Unmasked", lambda m, s: csc(s).update(procMount="Unmasked")),
    ("seccompProfile_baseline", BASELINE, "seccomp Unconfined on the container",
     lambda m, s: csc(s).update(seccompProfile={"type": "Unconfined"})),
    ("sysctls", BASELINE, "unsafe sysctl net.core.somaxconn",
     lambda m, s: psc(s)["sysctls"].append({"name": "net.core.somaxconn", "value": "1024"})),
    ("sysctls", BASELINE, "unsafe sysctl kernel.msgmax",
     lambda m, s: psc(s)["sysctls"].append({"name": "kernel.msgmax", "value": "65536"})),
    ("windowsHostProcess", BASELINE, "Windows hostProcess",
     lambda m, s: psc(s).update(windowsOptions={"hostProcess": True})),
    ("restrictedVolumes", RESTRICTED, "nfs volume",
     lambda m, s: s["volumes"].append({"name": "n", "nfs": {"server": "nfs", "path": "/"}})),
    ("restrictedVolumes", RESTRICTED, "hostPath volume (restricted overrides hostPathVolumes)",
     lambda m, s: s["volumes"].append({"name": "host", "hostPath": {"path": "/"}})),
    ("allowPrivilegeEscalation", RESTRICTED, "allowPrivilegeEscalation unset",
     lambda m, s: delete(csc(s), "allowPrivilegeEscalation")),
    ("allowPrivilegeEscalation", RESTRICTED, "allowPrivilegeEscalation true",
     lambda m, s: csc(s).update(allowPrivilegeEscalation=True)),
    ("runAsNonRoot", RESTRICTED, "runAsNonRoot unset", lambda m, s: delete(psc(s), "runAsNonRoot")),
    ("runAsNonRoot", RESTRICTED, "container runAsNonRoot false",
     lambda m, s: csc(s).update(runAsNonRoot=False)),
    ("runAsUser", RESTRICTED, "container runAsUser 0", lambda m, s: csc(s).update(runAsUser=0)),
    ("runAsUser", RESTRICTED, "pod runAsUser 0", lambda m, s: psc(s).update(runAsUser=0)),
    ("seccompProfile_restricted", RESTRICTED, "seccomp unset",
     lambda m, s: delete(psc(s), "seccompProfile")),
    ("seccompProfile_restricted", RESTRICTED, "seccomp Unconfined (restricted overrides baseline)",
     lambda m, s: psc(s).update(seccompProfile={"type": "Unconfined"})),
    ("capabilities_restricted", RESTRICTED, "capabilities not dropped",
     lambda m, s: delete(csc(s), "capabilities")),
    ("capabilities_restricted", RESTRICTED, "CHOWN added (baseline allows it, restricted does not)",
     lambda m, s: csc(s)["capabilities"].update(add=["CHOWN"])),
    ("procMount_restricted", RESTRICTED, "procMount Unmasked with hostUsers false",
     lambda m, s: (s.update(hostUsers=False), csc(s).update(procMount="Unmasked"))),
]

# Variations the profiles allow: the checks must not be stricter than PSA.
ALLOWED = [
    ("NET_BIND_SERVICE added", lambda m, s: csc(s)["capabilities"].update(add=["NET_BIND_SERVICE"])),
    ("Localhost seccomp profile", lambda m, s: psc(s).update(seccompProfile={"type": "Localhost", "localhostProfile": "p.json"})),
    ("runAsNonRoot on the container only",
     lambda m, s: (delete(psc(s), "runAsNonRoot"), csc(s).update(runAsNonRoot=True))),
    ("AppArmor RuntimeDefault", lambda m, s: psc(s).update(appArmorProfile={"type": "RuntimeDefault"})),
    ("SELinux level only", lambda m, s: psc(s).update(seLinuxOptions={"level": "s0:c123,c456"})),
    ("every safe sysctl", lambda m, s: psc(s).update(sysctls=[{"name": n, "value": "1"} for n in sorted(SAFE_SYSCTLS)])),
    ("hostUsers false relaxes runAsNonRoot and runAsUser",
     lambda m, s: (s.update(hostUsers=False), delete(psc(s), "runAsNonRoot"), psc(s).update(runAsUser=0))),
    ("csi, ephemeral, secret, downwardAPI and image volumes",
     lambda m, s: s["volumes"].extend([{"name": "a", "csi": {"driver": "x"}}, {"name": "b", "ephemeral": {}},
                                       {"name": "c", "secret": {"secretName": "s"}},
                                       {"name": "d", "downwardAPI": {}}, {"name": "e", "image": {"reference": "r"}}])),
    ("procMount Default", lambda m, s: csc(s).update(procMount="Default")),
]


def self_test(path):
    docs = load(path)
    pods = [p for d in docs for p in pod_templates(d)]
    if not pods:
        print("FAIL: no pod template in %s" % path)
        return 1
    name, meta0, spec0 = pods[0]
    failed = 0
    base = evaluate(meta0, spec0, RESTRICTED)
    if base:
        print("FAIL: %s does not pass restricted: %s" % (name, base))
        return 1
    print("ok: %s passes restricted" % name)
    covered = set()
    for cid, level, what, mutate in NEGATIVE:
        meta, spec = copy.deepcopy(meta0 or {}), copy.deepcopy(spec0)
        mutate(meta, spec)
        got = evaluate(meta, spec, level)
        want_restricted = {cid} if level == RESTRICTED else {cid if cid not in OVERRIDES else OVERRIDES[cid]}
        got_restricted = evaluate(meta, spec, RESTRICTED)
        if set(got) != {cid} or set(got_restricted) != want_restricted:
            failed = 1
            print("FAIL: %s: want %s to fail at %s (restricted: %s), got %s (restricted: %s)"
                  % (what, cid, level, sorted(want_restricted), sorted(got), sorted(got_restricted)))
        else:
            covered.add(cid)
            print("ok: %s -> %s" % (what, "; ".join(got[cid])))
    for what, mutate in ALLOWED:
        meta, spec = copy.deepcopy(meta0 or {}), copy.deepcopy(spec0)
        mutate(meta, spec)
        got = evaluate(meta, spec, RESTRICTED)
        if got:
            failed = 1
            print("FAIL: allowed variation %s refused: %s" % (what, got))
        else:
            print("ok: allowed: %s" % what)
    missing = {c[0] for c in CHECKS} - covered
    if missing:
        failed = 1
        print("FAIL: checks without a negative case: %s" % sorted(missing))
    print("%d checks, %d negative cases, %d allowed variations" % (len(CHECKS), len(NEGATIVE), len(ALLOWED)))
    return failed


# At restricted, a baseline check that a restricted one overrides reports under the latter.
OVERRIDES = {o: c[0] for c in CHECKS for o in c[3]}


def main(argv):
    if len(argv) >= 2 and argv[0] == "self-test":
        return self_test(argv[1])
    if len(argv) >= 2 and argv[0] == "admit":
        level = expect = None
        rest = argv[2:]
        while rest:
            flag = rest.pop(0)
            if flag == "--level":
                level = rest.pop(0)
                if level not in LEVELS:
                    raise SystemExit("unknown level %s" % level)
            elif flag == "--expect-violations":
                expect = {x for x in rest.pop(0).split(",") if x}
            else:
                raise SystemExit("unknown argument %s" % flag)
        return admit(argv[1], level, expect)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
