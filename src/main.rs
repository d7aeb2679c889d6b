//! The `diemcau` binary: the command line lives in [`diemcau::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    // First of all: a SIGHUP during start-up must not kill a daemon (see cli::main).
    diemcau::app::boot::ignore_sighup_until_ready();
    // Few threads allocate here; one arena each for the engine and the async workers keeps
    // freed scrape buffers from being held in many per-thread arenas.
    // SAFETY: mallopt only tunes the allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    diemcau::cli::main()
}
