//! Start-up steps shared by `run` and `demo`, in the order the kernel requires: bind the web
//! ports in the caller's namespace, enter a private namespace (only while single-threaded), then
//! start the async runtime and serve until shutdown.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;

use anyhow::Context;

use crate::config::Config;

/// The addresses to serve on: those given with `--web.listen-address` (any number), else the
/// config's `[web] listen_address`. The config itself is left as the file says, so a reload
/// compares like with like.
pub fn listen_addresses(config: &Config, flags: &[SocketAddr]) -> Vec<SocketAddr> {
    if flags.is_empty() {
        vec![config.web.listen_address]
    } else {
        flags.to_vec()
    }
}

/// Binds every web address; the error names the setting to change.
pub fn bind(addresses: &[SocketAddr]) -> anyhow::Result<Vec<TcpListener>> {
    addresses
        .iter()
        .map(|address| {
            TcpListener::bind(address).with_context(|| {
                format!("cannot listen on {address}; choose another [web] listen_address or --web.listen-address")
            })
        })
        .collect()
}

/// Runs the daemon on a two-worker runtime until `shutdown` resolves. Call after [`bind`] and
/// after entering any private namespace: `unshare(CLONE_NEWUSER)` refuses a threaded process.
pub fn serve(
    config: Config,
    web_config: Option<PathBuf>,
    listeners: Vec<TcpListener>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(super::daemon::run(config, web_config, listeners, shutdown));
    // Whatever a blocking task is still doing (a reload reading a slow file), shutdown ends.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    result
}

/// How long shutdown waits for blocking tasks that are still running.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Ignores SIGHUP until the reload handler takes it over: its default action kills the process,
/// and an operator's `systemctl reload` during start-up must not stop monitoring. Called first
/// thing in `main`; commands that are not daemons give SIGHUP back its default.
pub fn ignore_sighup_until_ready() {
    // SAFETY: sets a signal disposition; no handler code runs.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
}

/// SIGHUP's default action again (a terminal hang-up ends a one-shot command).
pub fn default_sighup() {
    // SAFETY: as above.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_DFL);
    }
}
