//! `Child`: a child started by `Command`, as its parent holds it.
//!
//! Runs in the parent, after the spawn: waiting for the child, signalling it, and reading
//! its piped output.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
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
        stdin: Option<OwnedFd>,
        stdout: Option<OwnedFd>,
        stderr: Option<OwnedFd>,
    ) -> Child {
        Child {
            pid,
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

    /// Waits for the child to exit. Closes our end of its stdin first, so a child that
    /// reads to end-of-file can finish.
    pub fn wait(&mut self) -> Result<ExitStatus, Error> {
        drop(self.stdin.take());
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = sys::reap(self.pid.as_raw())
            .map(ExitStatus::from_raw)
            .map_err(|error| Error::os(Step::Wait, error))?;
        self.status = Some(status);
        Ok(status)
    }

    /// The exit status if the child has exited, without blocking.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, Error> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        let status = sys::wait(self.pid.as_raw(), true)
            .map_err(|error| Error::os(Step::Wait, error))?
            .map(ExitStatus::from_raw);
        self.status = status;
        Ok(status)
    }

    /// Sends `SIGKILL` to the child. Succeeds without doing anything if the child was
    /// already waited for.
    pub fn kill(&mut self) -> Result<(), Error> {
        self.signal(libc::SIGKILL)
    }

    /// Sends `signal` to the child, unless it was already waited for.
    pub fn signal(&mut self, signal: i32) -> Result<(), Error> {
        if self.status.is_some() {
            return Ok(());
        }
        let signal =
            Signal::try_from(signal).map_err(|errno| Error::os(Step::Kill, errno.into()))?;
        signal::kill(self.pid, signal).map_err(|errno| Error::os(Step::Kill, errno.into()))
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
