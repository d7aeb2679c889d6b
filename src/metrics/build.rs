//! What this binary is: its version, the git revision it was built from and the compiler that
//! built it (set by `build.rs`). Exported as `diemcau_build_info` and printed by `--version`.

/// The crate version, `0.1.0`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The short git commit, or "unknown" when built outside a git checkout.
pub const REVISION: &str = env!("DIEMCAU_REVISION");
/// The rustc release, `1.95.0`.
pub const RUST_VERSION: &str = env!("DIEMCAU_RUSTC_VERSION");

/// `diemcau --version`: one line per fact, the node_exporter way.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\nrevision: ",
    env!("DIEMCAU_REVISION"),
    "\nrustc: ",
    env!("DIEMCAU_RUSTC_VERSION_LONG"),
);

/// `diemcau -V`: the same on one line.
pub const SHORT_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("DIEMCAU_REVISION"),
    ", rustc ",
    env!("DIEMCAU_RUSTC_VERSION"),
    ")"
);
