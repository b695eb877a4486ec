//! Handing the terminal's foreground to the namespace and back.
//!
//! An interactive shell restores, when it exits, the foreground process group it found
//! when it started. If that group is the parent's, it lives outside the new PID
//! namespace, the shell can't name it ("Cannot set tty process group (No such process)")
//! and exits with an error. So the init makes a process group of its own, inside, and
//! makes it the foreground before starting the shell; the parent takes the foreground
//! back when it is done. Ctrl-C then reaches the shell, not ns-process.

use std::io::IsTerminal;
use std::os::fd::AsFd;

use nix::sys::signal::{SigSet, Signal};
use nix::unistd::{Pid, getpgrp, setpgid, tcgetpgrp, tcsetpgrp};

/// The foreground process group of the terminal on stdin, if stdin is a terminal whose
/// foreground is our group.
pub(crate) fn foreground_group() -> Option<Pid> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return None;
    }
    tcgetpgrp(stdin.as_fd())
        .ok()
        .filter(|&group| group == getpgrp())
}

/// Makes `group` the terminal's foreground. A process outside the foreground gets
/// SIGTTOU for trying, unless it blocks the signal, as here.
pub(crate) fn set_foreground(group: Pid) -> nix::Result<()> {
    let mut ttou = SigSet::empty();
    ttou.add(Signal::SIGTTOU);
    ttou.thread_block()?;
    let result = tcsetpgrp(std::io::stdin().as_fd(), group);
    ttou.thread_unblock()?;
    result
}

/// In the init: a process group of its own, made the foreground if the parent's group
/// had it.
pub(crate) fn take_foreground_inside() {
    if foreground_group().is_none() {
        return;
    }
    if setpgid(Pid::from_raw(0), Pid::from_raw(0)).is_ok() {
        let _ = set_foreground(getpgrp());
    }
}
