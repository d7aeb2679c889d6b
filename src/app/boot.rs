//! Start-up steps shared by `run` and `demo`, in the order the kernel requires: bind the web
//! port in the caller's namespace, enter a private namespace (only while single-threaded), then
//! start the async runtime and serve until shutdown.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;

use anyhow::Context;

use crate::config::Config;

/// Binds the web port; the error names the setting to change.
pub fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).with_context(|| {
        format!("cannot listen on {address}; choose another [web] listen_address or --web.listen-address")
    })
}

/// Runs the daemon on a two-worker runtime until `shutdown` resolves. Call after [`bind`] and
/// after entering any private namespace: `unshare(CLONE_NEWUSER)` refuses a threaded process.
pub fn serve(
    config: Config,
    web_config: Option<PathBuf>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(super::daemon::run(config, web_config, listener, shutdown));
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
