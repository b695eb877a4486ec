//! Signal forwarding, for both ends: the ns-process parent forwards to the init, the init
//! (PID 1 inside) forwards to the command, reaps every orphan, and ends with the
//! command's status — what tini does.
//!
//! Both block the signals before starting their child and take them with sigwait(2) — or,
//! where the parent relays a pty, from a signalfd polled with the pty (`pty.rs`) — so none
//! is lost between the start and the wait, and no handler code is needed. (A PID 1 gets,
//! from outside, only the signals it handles or blocks: blocked ones are queued.) With a
//! pty, SIGWINCH is not forwarded: the parent resizes the pty, and the kernel signals the
//! command's foreground job.

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// What a terminal, a supervisor or a user sends to stop, reload or resize a command.
pub(crate) const FORWARDED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// The forwarded signals and SIGCHLD, blocked in this thread from now on.
pub(crate) struct Blocked(SigSet);

impl Blocked {
    pub(crate) fn now() -> nix::Result<Blocked> {
        let mut set = SigSet::empty();
        for signal in FORWARDED {
            set.add(signal);
        }
        set.add(Signal::SIGCHLD);
        set.thread_block()?;
        Ok(Blocked(set))
    }

    /// The blocked signals.
    pub(crate) fn set(&self) -> SigSet {
        self.0
    }

    /// The next of the blocked signals to arrive.
    fn wait(&self) -> nix::Result<Signal> {
        loop {
            match self.0.wait() {
                Err(Errno::EINTR) => continue,
                other => return other,
            }
        }
    }
}

/// How a child ended, as a shell reports it: its code, or 128 + the signal.
pub(crate) fn shell_status(status: WaitStatus) -> Option<u8> {
    match status {
        WaitStatus::Exited(_, code) => Some(code as u8),
        WaitStatus::Signaled(_, signal, _) => Some(128u8.wrapping_add(signal as u8)),
        _ => None,
    }
}

/// As PID 1: forwards signals to `main` and reaps every child, orphans included, until
/// `main` ends; returns its status.
pub(crate) fn supervise_as_init(main: Pid, blocked: &Blocked) -> nix::Result<u8> {
    loop {
        // Reap first: several SIGCHLD may have merged into one.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
                Ok(status) if status.pid() == Some(main) => {
                    if let Some(code) = shell_status(status) {
                        return Ok(code);
                    }
                }
                Ok(_) | Err(Errno::EINTR) => {}
                Err(errno) => return Err(errno),
            }
        }
        let signal = blocked.wait()?;
        if signal != Signal::SIGCHLD {
            // The command may be gone already; then there is nobody to tell.
            let _ = kill(main, signal);
        }
    }
}

/// How a child of ours ended, as a shell reports it: its code, or 128 + the signal.
pub(crate) fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) => 128u8.wrapping_add(signal as u8),
        (None, None) => 1,
    }
}

/// As the parent outside, when there is no terminal to relay (see `pty.rs` for when
/// there is): forwards signals to `child` until it ends; returns its status.
pub(crate) fn supervise_child(child: &mut reexec::Child, blocked: &Blocked) -> Result<u8, String> {
    loop {
        if let Some(status) = child.try_wait().map_err(|error| error.to_string())? {
            return Ok(exit_code(status));
        }
        let signal = blocked
            .wait()
            .map_err(|errno| format!("waiting for signals: {}", errno.desc()))?;
        if signal != Signal::SIGCHLD {
            // A child that already ended is reaped at the top of the loop.
            let _ = child.signal(signal as i32);
        }
    }
}
