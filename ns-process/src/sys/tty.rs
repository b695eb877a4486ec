//! The terminal calls nix has no safe wrapper for, and the command's start in a session
//! of its own: the ioctls, and the hook its forked child runs before exec.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;

use nix::errno::Errno;
use nix::libc;
use nix::pty::Winsize;
use nix::sys::signal::SigSet;
use nix::unistd::setsid;

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
