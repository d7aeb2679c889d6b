//! Build metadata for `diemcau --version` and `diemcau_build_info`: the git revision and the
//! rustc version, exported as `DIEMCAU_REVISION`, `DIEMCAU_RUSTC_VERSION` (`1.95.0`) and
//! `DIEMCAU_RUSTC_VERSION_LONG` (`rustc 1.95.0 (59807616e 2026-04-14)`).
//!
//! Outside a git checkout of this crate the revision comes from `.cargo_vcs_info.json` (what
//! `cargo package` records in a crate tarball), else it is "unknown"; `DIEMCAU_REVISION` in the
//! environment overrides both, for builds from an exported tree. The script reruns only when HEAD, the branch it points to or the
//! packed refs change (and when the compiler changes, which rebuilds everything anyway).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DIEMCAU_REVISION");
    let revision = match std::env::var("DIEMCAU_REVISION") {
        Ok(r) if !r.trim().is_empty() => r.trim().to_string(),
        _ => git_revision()
            .or_else(packaged_revision)
            .unwrap_or_else(|| "unknown".into()),
    };
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let long = run(Command::new(rustc).arg("--version")).unwrap_or_else(|| "rustc unknown".into());
    let short = long.split_whitespace().nth(1).unwrap_or("unknown").to_string();
    println!("cargo:rustc-env=DIEMCAU_REVISION={revision}");
    println!("cargo:rustc-env=DIEMCAU_RUSTC_VERSION={short}");
    println!("cargo:rustc-env=DIEMCAU_RUSTC_VERSION_LONG={long}");
}

/// The short commit of HEAD, when the crate directory is the top of a git work tree.
fn git_revision() -> Option<String> {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let git = |args: &[&str]| run(Command::new("git").current_dir(&manifest).args(args));
    let top = git(&["rev-parse", "--show-toplevel"])?;
    if !same_dir(Path::new(&top), &manifest) {
        return None;
    }
    // Worktrees keep HEAD in their own git dir and the refs in the common one.
    let git_dir = manifest.join(git(&["rev-parse", "--git-dir"])?);
    let common_dir = manifest.join(git(&["rev-parse", "--git-common-dir"])?);
    let mut watched = vec![git_dir.join("HEAD"), common_dir.join("packed-refs")];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(common_dir.join(branch));
    }
    // A missing path would make cargo rerun the script on every build.
    for path in watched.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    git(&["rev-parse", "--short", "HEAD"])
}

/// The commit `cargo package` wrote into `.cargo_vcs_info.json` (`"sha1": "…"`), shortened.
fn packaged_revision() -> Option<String> {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let text = std::fs::read_to_string(manifest.join(".cargo_vcs_info.json")).ok()?;
    let after = text.split("\"sha1\"").nth(1)?;
    let sha: String = after
        .chars()
        .skip_while(|c| !c.is_ascii_hexdigit())
        .take_while(char::is_ascii_hexdigit)
        .take(7)
        .collect();
    (sha.len() == 7).then_some(sha)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Standard output of a command that succeeded, trimmed; `None` otherwise.
fn run(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok().filter(|o| o.status.success())?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}
