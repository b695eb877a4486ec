//! How the parent learns that the command started, both ends in one place.
//!
//! The parent gives the init the write end of a pipe; the init writes one byte to it
//! once the command has been spawned (std's `spawn` returns only after the command's
//! exec succeeded) and closes it. When the init has ended, a byte in the pipe means the
//! command ran; none means it never did: the init failed its setup, could not execute
//! the command, or never got that far. Only then may the parent take back what it
//! changed on the host for this run.

use std::os::fd::{AsFd, IntoRawFd, OwnedFd, RawFd};

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};

/// The parent's end.
pub(crate) struct Pipe {
    read: OwnedFd,
    write: Option<OwnedFd>,
    /// The write end's number in the init.
    child_fd: RawFd,
}

impl Pipe {
    /// A pipe whose write end the init gets as `child_fd` (3 or above, and none of the
    /// descriptors it gets otherwise). Non-blocking, so that reading it never waits on a
    /// writer that should not exist.
    pub(crate) fn new(child_fd: RawFd) -> Result<Pipe, String> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
            .map_err(|errno| format!("pipe2 for the start report: {}", errno.desc()))?;
        Ok(Pipe {
            read,
            write: Some(write),
            child_fd,
        })
    }

    /// The init's internal setting: where its end is.
    pub(crate) fn init_setting(&self) -> crate::cli::InitSetting {
        crate::cli::InitSetting::StartedFd(self.child_fd)
    }

    /// Hands the write end to the init: the spawn passes it on and closes the parent's
    /// copy, so the init (and nothing else) holds it.
    pub(crate) fn give_to(&mut self, command: &mut reexec::Command) {
        if let Some(write) = self.write.take() {
            command.fd(self.child_fd, write);
        }
    }

    /// Whether the command has started; once the init has ended, whether it ever did.
    pub(crate) fn command_started(&self) -> bool {
        let mut byte = [0u8; 1];
        matches!(nix::unistd::read(self.read.as_fd(), &mut byte), Ok(1))
    }
}

/// The init's end.
pub(crate) struct Report(Option<OwnedFd>);

impl Report {
    /// Takes the descriptor the parent named, and makes it close-on-exec at once
    /// (`reexec::Command` passes it without), so that the command never inherits it.
    /// Anything but an open pipe is left alone: the option is internal, but an init
    /// started by hand could name any descriptor.
    pub(crate) fn take(fd: Option<RawFd>) -> Report {
        let Some(fd) = fd.filter(|&fd| fd > 2) else {
            return Report(None);
        };
        let Some(owned) = crate::sys::claim_handed_fd(fd) else {
            return Report(None);
        };
        let is_pipe = nix::sys::stat::fstat(&owned)
            .is_ok_and(|stat| stat.st_mode & nix::libc::S_IFMT == nix::libc::S_IFIFO);
        if !is_pipe {
            let _ = owned.into_raw_fd();
            return Report(None);
        }
        if fcntl(owned.as_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).is_err() {
            return Report(None);
        }
        Report(Some(owned))
    }

    /// The command is running: one byte for the parent, then the end is closed.
    pub(crate) fn command_started(self) {
        if let Some(fd) = self.0 {
            // The parent reads it only after the init has ended. A failed write reads as
            // "never started": what this run added to the host is then taken back once
            // the command is over, which is no harm to the command.
            let _ = nix::unistd::write(&fd, &[1]);
        }
    }
}
