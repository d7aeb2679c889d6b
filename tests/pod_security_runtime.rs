//! The kernel side of deploy/kubernetes, without a cluster: the real binary run under the
//! credentials a container runtime gives the kit's pods, through `setpriv` in a private network
//! namespace (needs root).
//!
//! - The Pod Security "restricted" pod (prober/statefulset.yaml): its runAsUser/runAsGroup, an
//!   empty bounding set (capabilities.drop: [ALL]), no_new_privs (allowPrivilegeEscalation:
//!   false) and its net.ipv4.ping_group_range. The daemon probes and traces over ping sockets.
//! - The pitfall the image avoids (deploy/Containerfile): the same pod cannot even exec a copy
//!   of the binary that carries a file capability (EPERM: the capability is outside the bounding
//!   set), so /usr/bin/diemcau must carry none.
//! - components/net-raw: NET_RAW in the bounding set, no ping sysctl (the kernel default "1 0"),
//!   no ambient capability (Kubernetes sets none): the copy with cap_net_raw+ep probes over raw
//!   sockets, and the plain binary cannot.

mod common;

use std::process::Command;

const STATEFULSET: &str = "deploy/kubernetes/prober/statefulset.yaml";

fn as_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("the pod security runtime tests switch users with setpriv and must run as root in CI");
    }
    eprintln!("SKIPPED: not root");
    false
}

/// The value of the first `key: value` line of the kit's StatefulSet after `after` (quotes off).
fn manifest_value(key: &str, after: &str) -> String {
    let text = std::fs::read_to_string(STATEFULSET).expect("read the StatefulSet");
    let start = text.find(after).unwrap_or_else(|| panic!("{after} in {STATEFULSET}"));
    text[start..]
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("{key} in {STATEFULSET}"))
        .trim()
        .trim_matches('"')
        .to_string()
}

struct Pod {
    uid: String,
    gid: String,
    ping_range: String,
}

fn restricted_pod() -> Pod {
    Pod {
        uid: manifest_value("runAsUser", "securityContext:"),
        gid: manifest_value("runAsGroup", "securityContext:"),
        ping_range: manifest_value("value", "name: net.ipv4.ping_group_range"),
    }
}

/// Runs `exe args` as the pod's user in a private network namespace whose ping_group_range is
/// `range`, with bounding set `bounding` (setpriv syntax) and no_new_privs if `nnp`; `wrap`
/// goes before setpriv (e.g. a timeout).
fn run_as(pod: &Pod, range: &str, bounding: &str, nnp: bool, wrap: &str, exe: &str, args: &str) -> (i32, String) {
    let script = format!(
        "echo '{range}' > /proc/sys/net/ipv4/ping_group_range && ip link set lo up && \
         exec {wrap} setpriv --reuid={} --regid={} --clear-groups --inh-caps=-all --bounding-set={bounding} {} {exe} {args}",
        pod.uid,
        pod.gid,
        if nnp { "--no-new-privs" } else { "" },
    );
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .output()
        .expect("spawn unshare");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// A directory the pod's user can enter, on the target directory's file system (a nosuid mount
/// would silently ignore file capabilities), holding the binary and a copy with the image's
/// file capability.
fn binaries() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let mut perms = std::fs::metadata(dir.path()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(dir.path(), perms).unwrap();
    let plain = dir.path().join("diemcau");
    let raw = dir.path().join("diemcau-net-raw");
    std::fs::copy(common::bin(), &plain).expect("copy the binary");
    std::fs::copy(common::bin(), &raw).expect("copy the binary");
    let containerfile = std::fs::read_to_string("deploy/Containerfile").expect("Containerfile");
    let caps = containerfile
        .split_whitespace()
        .skip_while(|w| *w != "setcap")
        .nth(1)
        .expect("setcap in the Containerfile")
        .to_string();
    assert_eq!(caps, "cap_net_raw+ep", "the image's file capability");
    let st = Command::new("setcap").arg(&caps).arg(&raw).status().expect("setcap");
    assert!(st.success(), "setcap {caps}");
    (dir, plain.display().to_string(), raw.display().to_string())
}

#[test]
fn the_restricted_pod_probes_and_traces_over_ping_sockets_and_cannot_exec_a_file_capability() {
    if !as_root() || !common::require_tool("setpriv") || !common::require_tool("setcap") {
        return;
    }
    let pod = restricted_pod();
    assert_eq!(pod.uid, "10001");
    let (dir, plain, raw) = binaries();

    let (code, text) = run_as(&pod, &pod.ping_range, "-all", true, "", &plain, "probe 127.0.0.1");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("3 received") && text.contains("socket: dgram"), "{text}");

    // The pitfall: a file capability outside the bounding set makes the exec itself fail.
    let (code, text) = run_as(&pod, &pod.ping_range, "-all", true, "", &raw, "probe 127.0.0.1");
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("Operation not permitted"), "{text}");

    // The daemon: ping socket, and the trace socket path tracing needs, both without privilege.
    std::fs::write(dir.path().join("inventory.csv"), common::loopback_inventory(5)).unwrap();
    std::fs::write(
        dir.path().join("diemcau.toml"),
        "[web]\nlisten_address = \"127.0.0.1:0\"\n[inventory]\nfiles = [\"inventory.csv\"]\n[store]\npath = \"data/diemcau.db\"\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let id: u32 = pod.uid.parse().unwrap();
    let gid: u32 = pod.gid.parse().unwrap();
    nix::unistd::chown(&dir.path().join("data"), Some(id.into()), Some(gid.into())).unwrap();
    let config = dir.path().join("diemcau.toml").display().to_string();
    let (code, text) = run_as(
        &pod,
        &pod.ping_range,
        "-all",
        true,
        "timeout -s TERM 4",
        &plain,
        &format!("run --config {config}"),
    );
    assert!(
        text.contains("ICMP socket open") && text.contains("dgram"),
        "exit {code}: {text}"
    );
    assert!(!text.contains("no trace socket"), "{text}");
    assert!(text.contains("stopped"), "exit {code}: {text}");
}

#[test]
fn the_net_raw_component_needs_the_file_capability_copy() {
    if !as_root() || !common::require_tool("setpriv") || !common::require_tool("setcap") {
        return;
    }
    let pod = restricted_pod();
    let (_dir, plain, raw) = binaries();
    // No ping sysctl (the kernel's default range admits nobody), NET_RAW in the bounding set,
    // privilege escalation allowed, no ambient capability.
    let (code, text) = run_as(&pod, "1 0", "-all,+net_raw", false, "", &raw, "probe 127.0.0.1");
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("3 received") && text.contains("socket: raw (CAP_NET_RAW)"),
        "{text}"
    );
    let (code, text) = run_as(&pod, "1 0", "-all,+net_raw", false, "", &plain, "probe 127.0.0.1");
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("cannot open an ICMP socket"), "{text}");
}
