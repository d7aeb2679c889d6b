//! A private network namespace for the daemon itself (`--private-netns`), used by tests, the
//! benchmark and the lab: the web listener is bound first in the caller's namespace, so it stays
//! reachable from there, and every probe then runs in a fresh namespace that only this process
//! and its children can see. Must be called while the process has a single thread.

use std::io;

use nix::sched::{CloneFlags, unshare};
use nix::unistd::{getegid, geteuid};

/// Moves the calling (single-threaded) process into new network (and, unless root, user)
/// namespaces and brings the loopback interface up.
pub fn enter_private_network() -> io::Result<()> {
    let (uid, gid) = (geteuid(), getegid());
    let root = uid.is_root();
    let flags = if root {
        CloneFlags::CLONE_NEWNET
    } else {
        CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET
    };
    unshare(flags).map_err(|e| {
        io::Error::other(format!(
            "cannot create a private network namespace ({e}); run as root, or enable unprivileged user namespaces \
             (sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0)"
        ))
    })?;
    if !root {
        std::fs::write("/proc/self/setgroups", "deny")?;
        std::fs::write("/proc/self/uid_map", format!("0 {uid} 1"))?;
        std::fs::write("/proc/self/gid_map", format!("0 {gid} 1"))?;
    }
    set_interface_up("lo")
}

/// `ip link set NAME up`, through the SIOCSIFFLAGS ioctl so no external tool is needed.
pub fn set_interface_up(name: &str) -> io::Result<()> {
    // SAFETY: plain socket/ioctl calls on a zeroed ifreq whose name is NUL-terminated; the fd is
    // closed on every path.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes().take(libc::IFNAMSIZ - 1)) {
            *dst = src as libc::c_char;
        }
        let mut rc = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req);
        if rc == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            rc = libc::ioctl(fd, libc::SIOCSIFFLAGS, &mut req);
        }
        let err = io::Error::last_os_error();
        libc::close(fd);
        if rc == 0 { Ok(()) } else { Err(err) }
    }
}
