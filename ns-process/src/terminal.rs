//! The command's sessions and terminals, and the few terminal calls nix has no safe
//! wrapper for: every `unsafe` block about terminals is in this file.
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

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::libc;
use nix::mount::{MsFlags, mount};
use nix::pty::Winsize;
use nix::sys::signal::SigSet;
use nix::unistd::{setsid, ttyname};

/// Puts the init in a session of its own, with no controlling terminal, before anything
/// of the command's can run.
pub(crate) fn leave_callers_session() -> Result<(), String> {
    setsid()
        .map(drop)
        .map_err(|errno| format!("setsid: {}", errno.desc()))
}

/// Prepares the command's start: no signal blocked (the init blocks the ones it waits
/// for, and std keeps a blocked mask across exec), a session of its own, and with
/// `own_terminal` the pty on its stdin as its controlling terminal.
pub(crate) fn prepare_command(command: &mut std::process::Command, own_terminal: bool) {
    // SAFETY: the closure runs in the forked child before exec, after std has put its
    // stdio in place; it makes only async-signal-safe calls (pthread_sigmask, setsid, and
    // ioctl through `take_stdin_as_controlling_terminal`) on stack values and allocates
    // nothing, as pre_exec requires.
    unsafe {
        command.pre_exec(move || {
            SigSet::all().thread_unblock()?;
            setsid()?;
            if own_terminal {
                take_stdin_as_controlling_terminal()?;
            }
            Ok(())
        });
    }
}

/// Makes the terminal on stdin the controlling terminal of this process, which must lead
/// a session that has none; its process group becomes the terminal's foreground. Never
/// steals a terminal another session holds. Async-signal-safe: one ioctl on descriptor 0
/// (`std::io::stdin()` could allocate on its first call).
fn take_stdin_as_controlling_terminal() -> nix::Result<()> {
    // SAFETY: TIOCSCTTY takes an int argument by value (0: do not steal), no pointer; a
    // descriptor 0 that is closed or no terminal only makes the call fail.
    Errno::result(unsafe { libc::ioctl(libc::STDIN_FILENO, libc::TIOCSCTTY, 0) }).map(drop)
}

/// The window size of the terminal `fd`.
pub(crate) fn window_size(fd: BorrowedFd<'_>) -> nix::Result<Winsize> {
    let mut size = Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` through the pointer, which points to
    // a live, writable local of that type.
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size) })?;
    Ok(size)
}

/// Sets the window size of the terminal `fd`; set on a pty's master, the kernel sends
/// SIGWINCH to the foreground process group of its slave.
pub(crate) fn set_window_size(fd: BorrowedFd<'_>, size: &Winsize) -> nix::Result<()> {
    // SAFETY: TIOCSWINSZ reads one `struct winsize` through the pointer, which points to
    // a live value of that type.
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, size) }).map(drop)
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
