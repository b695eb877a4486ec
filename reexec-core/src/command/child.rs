//! `Child`: a child started by `Command`, as its parent holds it.
//!
//! Runs in the parent, after the spawn: waiting for the child, signalling it, and reading
//! its piped output.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{ChildStderr, ChildStdin, ChildStdout, ExitStatus, Output};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use crate::error::{Error, Step};
use crate::sys;

/// A running or exited child started by [`Command`](crate::Command).
///
/// As with [`std::process::Child`], dropping it neither kills nor reaps the child: call
/// [`wait`](Self::wait) so that no zombie stays behind.
#[derive(Debug)]
pub struct Child {
    pid: Pid,
    /// The child's pidfd, through which it is waited for and signalled; `None` on a
    /// kernel before 5.2.
    pidfd: Option<OwnedFd>,
    status: Option<ExitStatus>,
    /// Our end of the child's stdin, when it was [`Stdio::piped`](crate::Stdio::piped).
    pub stdin: Option<ChildStdin>,
    /// Our end of the child's stdout, when it was [`Stdio::piped`](crate::Stdio::piped).
    pub stdout: Option<ChildStdout>,
    /// Our end of the child's stderr, when it was [`Stdio::piped`](crate::Stdio::piped).
    pub stderr: Option<ChildStderr>,
}

impl Child {
    /// The child `pid`, just spawned, with our ends of its piped stdio.
    pub(super) fn new(
        pid: Pid,
        pidfd: Option<OwnedFd>,
        stdin: Option<OwnedFd>,
        stdout: Option<OwnedFd>,
        stderr: Option<OwnedFd>,
    ) -> Child {
        Child {
            pid,
            pidfd,
            status: None,
            stdin: stdin.map(ChildStdin::from),
            stdout: stdout.map(ChildStdout::from),
            stderr: stderr.map(ChildStderr::from),
        }
    }

    /// The child's process id, as seen from the parent's PID namespace.
    pub fn id(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// The child's pidfd (`CLONE_PIDFD`, Linux 5.2): a descriptor that names this child
    /// and no other, even once it has ended and its pid went to another process. `None` on
    /// an older kernel, which has no pidfds. It is close-on-exec, and closes when the
    /// `Child` is dropped.
    ///
    /// [`wait`](Self::wait), [`try_wait`](Self::try_wait) and [`signal`](Self::signal)
    /// go through it already. Use it to wait for the child with `poll(2)` or an event
    /// loop (it becomes readable once the child has ended), or to join its namespaces
    /// with [`Command::join`](crate::Command::join).
    ///
    /// ```no_run
    /// use std::os::fd::AsRawFd;
    ///
    /// #[reexec::entry("pidfd-child")]
    /// fn pidfd_child() {}
    ///
    /// reexec::main! {
    ///     fn main() -> Result<(), reexec::Error> {
    ///         let mut child = reexec::Command::new("pidfd-child").spawn()?;
    ///         if let Some(pidfd) = child.pidfd() {
    ///             println!("child {} has pidfd {}", child.id(), pidfd.as_raw_fd());
    ///         }
    ///         child.wait()?;
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(AsFd::as_fd)
    }

    /// Waits for the child to exit. Closes our end of its stdin first, so a child that
    /// reads to end-of-file can finish.
    ///
    /// Through the child's pidfd (`waitid(P_PIDFD)`, Linux 5.4) where there is one: should
    /// another part of the program have reaped the child already (a `waitpid(-1)` loop),
    /// this fails with `ECHILD` instead of reaping whichever child has the pid now.
    pub fn wait(&mut self) -> Result<ExitStatus, Error> {
        drop(self.stdin.take());
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = self
            .wait_raw(false)
            .map_err(|error| Error::os(Step::Wait, error))?
            .map(ExitStatus::from_raw);
        self.status = status;
        status.ok_or_else(|| Error::os(Step::Wait, io::ErrorKind::WouldBlock.into()))
    }

    /// The exit status if the child has exited, without blocking. Through the pidfd, as
    /// [`wait`](Self::wait).
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, Error> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        let status = self
            .wait_raw(true)
            .map_err(|error| Error::os(Step::Wait, error))?
            .map(ExitStatus::from_raw);
        self.status = status;
        Ok(status)
    }

    /// The raw status, through the pidfd where the kernel can (5.4), else by pid.
    fn wait_raw(&self, nohang: bool) -> io::Result<Option<i32>> {
        if let Some(pidfd) = &self.pidfd {
            match sys::pidfd::wait(pidfd.as_fd(), nohang) {
                // EINVAL: a kernel of 5.2 or 5.3, with pidfds but no P_PIDFD.
                Err(error) if error.raw_os_error() == Some(libc::EINVAL) => {}
                result => return result,
            }
        }
        if nohang {
            sys::wait(self.pid.as_raw(), true)
        } else {
            sys::reap(self.pid.as_raw()).map(Some)
        }
    }

    /// Sends `SIGKILL` to the child. Succeeds without doing anything if the child was
    /// already waited for.
    pub fn kill(&mut self) -> Result<(), Error> {
        self.signal(libc::SIGKILL)
    }

    /// Sends `signal` to the child, unless it was already waited for.
    ///
    /// Through the child's pidfd (`pidfd_send_signal`, Linux 5.1) where there is one:
    /// should another part of the program have reaped the child already, this fails with
    /// `ESRCH` instead of signalling whichever process has the pid now.
    pub fn signal(&mut self, signal: i32) -> Result<(), Error> {
        if self.status.is_some() {
            return Ok(());
        }
        let signal =
            Signal::try_from(signal).map_err(|errno| Error::os(Step::Kill, errno.into()))?;
        if let Some(pidfd) = &self.pidfd {
            match sys::pidfd::send_signal(pidfd.as_fd(), signal as i32) {
                Err(error) if error.raw_os_error() == Some(libc::ENOSYS) => {}
                result => return result.map_err(|error| Error::os(Step::Kill, error)),
            }
        }
        signal::kill(self.pid, signal).map_err(|errno| Error::os(Step::Kill, errno.into()))
    }

    /// Waits for the child to exit without blocking a thread: the future completes once
    /// the child's pidfd turns readable, which the tokio runtime watches (with the
    /// `tokio` feature). Closes our end of its stdin first, as [`wait`](Self::wait) does.
    ///
    /// Must be awaited inside a tokio runtime with I/O enabled (`Builder::enable_io`,
    /// or `#[tokio::main]`); `AsyncFd` panics outside one. On a kernel without pollable
    /// pidfds (before 5.3) or without `P_PIDFD` (before 5.4), the wait runs on tokio's
    /// blocking pool instead, one thread per waiting child.
    ///
    /// ```no_run
    /// #[reexec::entry("async-child")]
    /// fn async_child() {}
    ///
    /// reexec::main! {
    ///     #[tokio::main(flavor = "current_thread")]
    ///     async fn main() -> Result<(), reexec::Error> {
    ///         let mut children = Vec::new();
    ///         for _ in 0..10 {
    ///             children.push(reexec::Command::new("async-child").spawn()?);
    ///         }
    ///         for child in &mut children {
    ///             assert!(child.wait_async().await?.success());
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// ```
    #[cfg(feature = "tokio")]
    pub async fn wait_async(&mut self) -> Result<ExitStatus, Error> {
        drop(self.stdin.take());
        if let Some(status) = self.status {
            return Ok(status);
        }
        let waited = match &self.pidfd {
            Some(pidfd) => sys::pidfd::wait_async(pidfd.as_fd()).await,
            None => None,
        };
        let raw = match waited {
            Some(result) => result,
            None => {
                let pid = self.pid.as_raw();
                tokio::task::spawn_blocking(move || sys::reap(pid))
                    .await
                    .unwrap_or_else(|error| Err(io::Error::other(error)))
            }
        }
        .map_err(|error| Error::os(Step::Wait, error))?;
        let status = ExitStatus::from_raw(raw);
        self.status = Some(status);
        Ok(status)
    }

    /// Waits for the child and collects everything it writes to piped stdout and stderr.
    pub fn wait_with_output(mut self) -> Result<Output, Error> {
        drop(self.stdin.take());
        let (stdout, stderr) = read_both(self.stdout.take(), self.stderr.take())
            .map_err(|error| Error::os(Step::ReadOutput, error))?;
        let status = self.wait()?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

/// Reads two pipes to their ends at once, so that a child filling one while we block on
/// the other cannot deadlock us.
fn read_both(
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
) -> io::Result<(Vec<u8>, Vec<u8>)> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut stdout = stdout.map(|pipe| File::from(OwnedFd::from(pipe)));
    let mut stderr = stderr.map(|pipe| File::from(OwnedFd::from(pipe)));
    let mut chunk = [0u8; 16 * 1024];
    while stdout.is_some() || stderr.is_some() {
        let (out_ready, err_ready) = {
            let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(2);
            for file in [&stdout, &stderr].into_iter().flatten() {
                fds.push(PollFd::new(file.as_fd(), PollFlags::POLLIN));
            }
            sys::retry_interrupted(|| Ok(poll(&mut fds, PollTimeout::NONE)?))?;
            let mut ready = fds.iter().map(|fd| fd.any().unwrap_or(true));
            let out_ready = stdout.is_some() && ready.next().unwrap_or(false);
            let err_ready = stderr.is_some() && ready.next().unwrap_or(false);
            (out_ready, err_ready)
        };
        for (ready, source, sink) in [
            (out_ready, &mut stdout, &mut out),
            (err_ready, &mut stderr, &mut err),
        ] {
            if !ready {
                continue;
            }
            if let Some(file) = source {
                match sys::retry_interrupted(|| file.read(&mut chunk))? {
                    0 => *source = None,
                    read => sink.extend_from_slice(&chunk[..read]),
                }
            }
        }
    }
    Ok((out, err))
}
