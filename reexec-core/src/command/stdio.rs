//! `Stdio`: where a child's stdin, stdout and stderr come from and go to.
//!
//! Runs in the parent, in `Command::spawn` before the clone: each slot becomes the
//! descriptor the child installs and, for a pipe, the end the parent keeps.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{ChildStderr, ChildStdin, ChildStdout};

use crate::error::{Error, Step};
use crate::sys;

/// Where a child's stdin, stdout or stderr comes from or goes to.
///
/// ```
/// use reexec::Stdio;
///
/// let log = std::fs::File::options().write(true).open("/dev/null")?;
/// let _ = (Stdio::inherit(), Stdio::null(), Stdio::piped(), Stdio::from(log));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Stdio(StdioKind);

#[derive(Debug)]
enum StdioKind {
    Inherit,
    Null,
    Piped,
    Fd(OwnedFd),
}

impl Stdio {
    /// The child uses the parent's descriptor.
    pub fn inherit() -> Stdio {
        Stdio(StdioKind::Inherit)
    }

    /// The child reads nothing and its writes go nowhere (`/dev/null`).
    pub fn null() -> Stdio {
        Stdio(StdioKind::Null)
    }

    /// A new pipe, whose other end appears in [`Child::stdin`], [`Child::stdout`] or
    /// [`Child::stderr`].
    ///
    /// [`Child::stdin`]: crate::Child::stdin
    /// [`Child::stdout`]: crate::Child::stdout
    /// [`Child::stderr`]: crate::Child::stderr
    pub fn piped() -> Stdio {
        Stdio(StdioKind::Piped)
    }
}

impl From<OwnedFd> for Stdio {
    fn from(fd: OwnedFd) -> Stdio {
        Stdio(StdioKind::Fd(fd))
    }
}

impl From<File> for Stdio {
    fn from(file: File) -> Stdio {
        Stdio::from(OwnedFd::from(file))
    }
}

impl From<ChildStdin> for Stdio {
    fn from(pipe: ChildStdin) -> Stdio {
        Stdio::from(OwnedFd::from(pipe))
    }
}

impl From<ChildStdout> for Stdio {
    fn from(pipe: ChildStdout) -> Stdio {
        Stdio::from(OwnedFd::from(pipe))
    }
}

impl From<ChildStderr> for Stdio {
    fn from(pipe: ChildStderr) -> Stdio {
        Stdio::from(OwnedFd::from(pipe))
    }
}

/// What a method of [`Command`](crate::Command) uses for stdio the caller left unset.
#[derive(Clone, Copy)]
pub(super) enum StdioDefault {
    Inherit,
    /// `output()`: stdin from `/dev/null`, stdout and stderr captured.
    Capture,
}

/// Which way a stdio slot carries data, seen from the child.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Direction {
    Input,
    Output,
}

/// One stdio slot resolved into descriptors: the child's end, and our end of a pipe.
pub(super) struct PreparedStdio {
    /// What the child installs; `None` keeps the parent's descriptor.
    pub(super) child: Option<OwnedFd>,
    /// Our end of a [`Stdio::piped`] slot.
    pub(super) parent: Option<OwnedFd>,
}

impl PreparedStdio {
    pub(super) fn child_fd(&self) -> Option<i32> {
        self.child.as_ref().map(AsRawFd::as_raw_fd)
    }
}

/// Resolves the slot set to `stdio`, or left unset (`None`), into descriptors.
pub(super) fn prepare_stdio(
    stdio: Option<&Stdio>,
    default: StdioDefault,
    direction: Direction,
) -> Result<PreparedStdio, Error> {
    let kind = match (stdio, default, direction) {
        (Some(Stdio(kind)), _, _) => kind,
        (None, StdioDefault::Inherit, _) => &StdioKind::Inherit,
        (None, StdioDefault::Capture, Direction::Input) => &StdioKind::Null,
        (None, StdioDefault::Capture, Direction::Output) => &StdioKind::Piped,
    };
    Ok(match kind {
        StdioKind::Inherit => PreparedStdio {
            child: None,
            parent: None,
        },
        StdioKind::Null => {
            let null = File::options()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map_err(|error| Error::os(Step::OpenDevNull, error))?;
            PreparedStdio {
                child: Some(null.into()),
                parent: None,
            }
        }
        StdioKind::Piped => {
            let (read, write) =
                sys::cloexec_pipe().map_err(|error| Error::os(Step::CreatePipe, error))?;
            match direction {
                Direction::Input => PreparedStdio {
                    child: Some(read),
                    parent: Some(write),
                },
                Direction::Output => PreparedStdio {
                    child: Some(write),
                    parent: Some(read),
                },
            }
        }
        // A close-on-exec copy: the user's descriptor may lack the flag, and the child
        // must see it only as 0, 1 or 2.
        StdioKind::Fd(fd) => PreparedStdio {
            child: Some(
                fd.try_clone()
                    .map_err(|error| Error::os(Step::DuplicateStdio, error))?,
            ),
            parent: None,
        },
    })
}
