//! The parent's calls on a child's pidfd, and on the descriptors given to
//! `Command::join`: waiting, signalling, and telling what a descriptor is.
//!
//! Runs in the parent, after the spawn (or before the clone, for `join`'s checks):
//! ordinary code, which may use libc's wrappers and `errno`.
//!
//! A pidfd names one process for as long as the descriptor is open, even after the process
//! was reaped and its pid given to another: waiting and signalling through it can't reach
//! a process that merely took over the number (`waitpid` and `kill` by pid can).

use std::ffi::c_int;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::spawn::retry_interrupted;

/// `waitid`'s id type for a pidfd (Linux 5.4); not in the `libc` crate.
const P_PIDFD: libc::idtype_t = 3;

/// `waitid(P_PIDFD, pidfd, WEXITED)`: the raw status (as `waitpid` gives it) of the
/// process behind `pidfd`, which is reaped; `None` if `nohang` and it still runs.
///
/// Fails with `ECHILD` when the process is not our child or was reaped already — never
/// with the status of another process that took over its pid — and with `EINVAL` on a
/// kernel before 5.4, which has no `P_PIDFD`.
pub(crate) fn wait(pidfd: BorrowedFd<'_>, nohang: bool) -> io::Result<Option<c_int>> {
    let flags = libc::WEXITED | if nohang { libc::WNOHANG } else { 0 };
    retry_interrupted(|| {
        let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
        // SAFETY: waitid writes one siginfo_t into a zeroed local of that type.
        let result = unsafe {
            libc::waitid(
                P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                info.as_mut_ptr(),
                flags,
            )
        };
        if result == -1 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: zeroed, then filled in by waitid (or left zero under WNOHANG).
        let info = unsafe { info.assume_init() };
        // SAFETY: waitid filled a SIGCHLD siginfo, whose pid and status fields are set.
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if pid == 0 {
            // WNOHANG and still running: waitid leaves the zeroed siginfo as it was.
            return Ok(None);
        }
        Ok(Some(raw_status(info.si_code, status)))
    })
}

/// Waits until `pidfd` turns readable — its process has ended — in the current tokio
/// runtime, then reaps through it: the raw status. `None` when the kernel can't: pidfds
/// that can't be polled (before 5.3; epoll refuses them) or waited for (before 5.4).
#[cfg(feature = "tokio")]
pub(crate) async fn wait_async(pidfd: BorrowedFd<'_>) -> Option<io::Result<c_int>> {
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    // SAFETY: a BorrowedFd stays open, as the same open file, for as long as it lives,
    // which outlasts `watched`, and always returns the same number.
    let watched = unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) }.ok()?;
    loop {
        let mut ready = match watched.readable().await {
            Ok(ready) => ready,
            Err(error) => return Some(Err(error)),
        };
        match wait(pidfd, true) {
            Ok(Some(raw)) => return Some(Ok(raw)),
            // Woken before the child could be reaped: wait for the next readiness.
            Ok(None) => ready.clear_ready(),
            Err(error) if error.raw_os_error() == Some(libc::EINVAL) => return None,
            Err(error) => return Some(Err(error)),
        }
    }
}

/// The raw status `waitpid` would give, from what `waitid` says: `ExitStatus::from_raw`
/// and the `WIFEXITED` family read that form.
fn raw_status(code: c_int, status: c_int) -> c_int {
    match code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_KILLED => status & 0x7f,
        libc::CLD_DUMPED => (status & 0x7f) | 0x80,
        // Stopped or continued: waitid(WEXITED) reports neither; keep the signal.
        _ => (status & 0xff) << 8 | 0x7f,
    }
}

/// `pidfd_send_signal(pidfd, signal, NULL, 0)` (Linux 5.1): `ESRCH` once the process was
/// reaped, whoever has its pid now.
pub(crate) fn send_signal(pidfd: BorrowedFd<'_>, signal: c_int) -> io::Result<()> {
    // SAFETY: numbers only; a NULL siginfo makes the kernel fill it as kill(2) would.
    let result = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if result == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `pidfd_open(pid, 0)` (Linux 5.3), close-on-exec: a pidfd of `pid`, which must be a
/// child of ours not yet reaped for it to be the process meant — until then its pid can't
/// be taken by another.
pub(crate) fn open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: numbers only.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor the kernel just made for us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// What a descriptor given to `Command::join` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinFd {
    /// A namespace file (`/proc/PID/ns/*`) of this `CLONE_NEW*` type.
    Namespace(c_int),
    /// A pidfd: setns(2) joins several namespaces of its process at once (Linux 5.8).
    Pidfd,
    /// Neither.
    Other,
}

/// `ioctl(NS_GET_NSTYPE)`: the `CLONE_NEW*` flag of a namespace file's namespace.
pub(crate) fn namespace_type(fd: BorrowedFd<'_>) -> io::Result<c_int> {
    // SAFETY: NS_GET_NSTYPE takes no argument and returns a number (Linux 4.11).
    match unsafe { libc::ioctl(fd.as_raw_fd(), libc::NS_GET_NSTYPE) } {
        -1 => Err(io::Error::last_os_error()),
        nstype => Ok(nstype),
    }
}

/// Tells a namespace file from a pidfd from anything else.
pub(crate) fn classify(fd: BorrowedFd<'_>) -> JoinFd {
    if let Ok(nstype) = namespace_type(fd) {
        return JoinFd::Namespace(nstype);
    }
    // Signal 0 only checks: EBADF says it is no pidfd; EPERM and ESRCH that it is one.
    match send_signal(fd, 0) {
        Err(error) if error.raw_os_error() == Some(libc::EBADF) => JoinFd::Other,
        Err(error) if error.raw_os_error() == Some(libc::ENOSYS) => JoinFd::Other,
        _ => JoinFd::Pidfd,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_waitpid_gives_them() {
        let exited = raw_status(libc::CLD_EXITED, 7);
        assert!(libc::WIFEXITED(exited) && libc::WEXITSTATUS(exited) == 7);
        let killed = raw_status(libc::CLD_KILLED, libc::SIGKILL);
        assert!(libc::WIFSIGNALED(killed) && libc::WTERMSIG(killed) == libc::SIGKILL);
        assert!(!libc::WCOREDUMP(killed));
        let dumped = raw_status(libc::CLD_DUMPED, libc::SIGSEGV);
        assert!(libc::WIFSIGNALED(dumped) && libc::WTERMSIG(dumped) == libc::SIGSEGV);
        assert!(libc::WCOREDUMP(dumped));
    }

    #[test]
    fn a_namespace_file_a_pidfd_and_a_pipe_are_told_apart() {
        let net = std::fs::File::open("/proc/self/ns/net").unwrap();
        use std::os::fd::AsFd;
        assert_eq!(classify(net.as_fd()), JoinFd::Namespace(libc::CLONE_NEWNET));
        let (read, _write) = super::super::cloexec_pipe().unwrap();
        assert_eq!(classify(read.as_fd()), JoinFd::Other);
        // SAFETY: pidfd_open(2) with numbers only.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, std::process::id(), 0) };
        if pidfd < 0 {
            println!("skipped the pidfd: pidfd_open fails here");
            return;
        }
        // SAFETY: the descriptor pidfd_open just made.
        let pidfd = unsafe {
            <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(pidfd as c_int)
        };
        assert_eq!(classify(pidfd.as_fd()), JoinFd::Pidfd);
    }
}
