//! How the command starts: with no signal blocked, and owning the terminal's foreground.
//!
//! An interactive shell restores, when it exits, the foreground process group it found
//! at its start. Were that the parent's group, which lives outside the new PID namespace,
//! the shell could not name it ("Cannot set tty process group (No such process)") and
//! would exit with an error. So the command gets a process group of its own, inside,
//! which it makes the foreground before it execs; the parent takes the foreground back
//! when all is done. Ctrl-C then reaches the command, and neither ns-process nor its init.

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;

use nix::sys::signal::{SigSet, Signal};
use nix::unistd::{Pid, getpgrp, tcgetpgrp, tcsetpgrp};

/// Our process group, if stdin is a terminal whose foreground it is.
pub(crate) fn foreground_group() -> Option<Pid> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return None;
    }
    tcgetpgrp(stdin.as_fd())
        .ok()
        .filter(|&group| group == getpgrp())
}

/// Makes `group` the foreground of the terminal on stdin. A background process that
/// tries gets SIGTTOU unless it blocks the signal, as here; blocking and tcsetpgrp are
/// both async-signal-safe, which `in_foreground_group` relies on.
pub(crate) fn set_foreground(group: Pid) -> nix::Result<()> {
    let mut ttou = SigSet::empty();
    ttou.add(Signal::SIGTTOU);
    ttou.thread_block()?;
    let result = tcsetpgrp(std::io::stdin().as_fd(), group);
    ttou.thread_unblock()?;
    result
}

/// Prepares the command's start: no signal blocked (the init blocks the ones it waits
/// for, and std keeps a blocked mask across exec), and with `take_terminal` a process
/// group of its own made the terminal's foreground.
pub(crate) fn prepare_command(command: &mut std::process::Command, take_terminal: bool) {
    if take_terminal {
        command.process_group(0);
    }
    // SAFETY: the closure runs in the forked child before exec; it makes only
    // async-signal-safe calls (pthread_sigmask, getpgrp, and tcsetpgrp, an ioctl) on
    // stack values and allocates nothing, as pre_exec requires.
    unsafe {
        command.pre_exec(move || {
            SigSet::all().thread_unblock()?;
            if take_terminal {
                set_foreground(getpgrp())?;
            }
            Ok(())
        });
    }
}
