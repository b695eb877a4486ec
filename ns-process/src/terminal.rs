//! The command's sessions and terminals (the few terminal calls nix has no safe wrapper
//! for are in `sys::tty`).
//!
//! The command never shares the caller's session. Were it in it, it could open
//! `/dev/tty` — the caller's terminal, whatever its stdio — and push a command line into
//! that terminal's input with TIOCSTI, for the caller's shell to run once ns-process
//! exits (bubblewrap's CVE-2017-5226). So the init and the command each start a session
//! of their own, with no controlling terminal: `/dev/tty` then fails with ENXIO, and
//! TIOCSTI on a terminal that is not one's own controlling terminal fails with EPERM.
//!
//! An interactive run (stdin a terminal) gives the command a terminal of its own instead:
//! the parent opens a pty and relays its master to the caller's terminal (`pty.rs`); the
//! init gets the slave as its stdio, binds it on `/dev/console`, and the command makes it
//! its controlling terminal in a new session, so a shell's job control works inside. The
//! init stays out of that session: the pty's signals reach the command's jobs only.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};
use nix::unistd::{setsid, ttyname};

pub(crate) use crate::sys::tty::{set_window_size, window_size};

/// Puts the init in a session of its own, with no controlling terminal, before anything
/// of the command's can run.
pub(crate) fn leave_callers_session() -> Result<(), String> {
    setsid()
        .map(drop)
        .map_err(|errno| format!("setsid: {}", errno.desc()))
}

/// The command's pty, by its path in this mount namespace: a bind through
/// /proc/self/fd/0 would name the caller's namespace's devpts mount, which mount(2)
/// refuses here (EINVAL). ttyname checks that the path it finds is the very device and
/// inode on stdin.
pub(crate) fn pty_path() -> Result<PathBuf, String> {
    ttyname(std::io::stdin().as_fd())
        .map_err(|errno| format!("finding the pty's path: ttyname(stdin): {}", errno.desc()))
}

/// Binds the pty at `slave` on `console`, which exists (the host's /dev/console, in our
/// own mount namespace).
pub(crate) fn bind_console(console: &Path, slave: &Path) -> Result<(), String> {
    mount(
        Some(slave),
        console,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|errno| {
        format!(
            "bind mount {} on {}: {}",
            slave.display(),
            console.display(),
            errno.desc()
        )
    })
}
