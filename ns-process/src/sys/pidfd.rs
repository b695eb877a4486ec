//! Pidfds of processes that are not our children (ns-runtime's containers, whose inits
//! live on past `create`): a handle on one process that a later process given the same
//! pid can't be mistaken for. nix wraps neither call.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::libc;

/// `pidfd_open(pid, 0)` (Linux 5.3): ENOSYS before, ESRCH when there is no such process.
pub(crate) fn open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes two integers and returns a new descriptor or -1; it reads
    // or writes no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just returned by the kernel, so it is open and owned by
    // nothing else in this process.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `pidfd_send_signal(pidfd, signal, NULL, 0)` (Linux 5.1): ESRCH once it has ended.
pub(crate) fn send_signal(pidfd: &OwnedFd, signal: i32) -> io::Result<()> {
    // SAFETY: the descriptor is open for the call (borrowed from `pidfd`); a null siginfo
    // is allowed and makes the kernel fill one in as kill(2) would.
    let result = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
