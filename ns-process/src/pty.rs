//! The parent's side of an interactive run: a pty of the command's own, whose master
//! ns-process relays to the caller's terminal, as `docker run -t`, podman and ssh do.
//!
//! Nothing inside reaches the caller's terminal itself: the command's stdio, its
//! `/dev/tty` and `/dev/console` are the pty's slave, so TIOCSTI from inside fills the
//! pty's own input, which dies with it. The caller's terminal is put in raw mode, so
//! every key — Ctrl-C, Ctrl-Z included — goes through as typed, and the pty's line
//! discipline turns it into the command's signals; the settings found at the start come
//! back however the relay ends: the command's exit, a signal, an error, a panic.
//!
//! Stdin being a terminal makes a run interactive. Of stdout and stderr, those that are
//! terminals get the slave as well; those redirected stay as they are, so
//! `ns-process -- cmd > file` still writes the file directly. The pty's output goes to
//! the caller's stdout if it is a terminal, else to its stderr, else to the terminal on
//! stdin (terminals are opened for reading and writing).

use std::io::IsTerminal;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::Mode;
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};
use nix::unistd::{read, write};

use crate::signals::{self, Blocked};
use crate::terminal::{set_window_size, window_size};

/// A pty for the command of an interactive run, and the caller's terminal it relays to.
pub(crate) struct Pty {
    /// Non-blocking, so that a command that does not read its input never stalls us.
    master: OwnedFd,
    slave: OwnedFd,
    /// Which of the caller's stdin, stdout and stderr are terminals.
    terminals: [bool; 3],
    /// The caller's terminal, as stdin has it.
    input: OwnedFd,
    /// Where the pty's output goes; `None` once writing there failed.
    output: Option<OwnedFd>,
}

/// A new pty from `/dev/ptmx` as this process sees it: its master, its slave and the
/// slave's name, both ends close-on-exec and opened `O_NOCTTY` — the slave becomes a
/// session's terminal only where that session takes it, never the opener's by accident.
/// `opening` words a failed call (its name and errno) for the caller.
pub(crate) fn open_pair(
    opening: impl Fn(&str, Errno) -> String,
) -> Result<(OwnedFd, OwnedFd, String), String> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|errno| opening("posix_openpt(/dev/ptmx)", errno))?;
    grantpt(&master).map_err(|errno| opening("grantpt", errno))?;
    unlockpt(&master).map_err(|errno| opening("unlockpt", errno))?;
    let name = ptsname_r(&master).map_err(|errno| opening("ptsname", errno))?;
    let slave = open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| opening(&format!("open({name})"), errno))?;
    Ok((OwnedFd::from(master), slave, name))
}

impl Pty {
    /// A new pty, with the settings and window size of the terminal on stdin, when stdin
    /// is a terminal; `None` otherwise.
    pub(crate) fn for_caller() -> Result<Option<Pty>, String> {
        let terminals = [
            std::io::stdin().is_terminal(),
            std::io::stdout().is_terminal(),
            std::io::stderr().is_terminal(),
        ];
        if !terminals[0] {
            return Ok(None);
        }
        let dup = |fd: BorrowedFd<'_>, name: &str| {
            fd.try_clone_to_owned()
                .map_err(|error| format!("duplicating {name}: {error}"))
        };
        let input = dup(std::io::stdin().as_fd(), "stdin")?;
        let output = if terminals[1] {
            dup(std::io::stdout().as_fd(), "stdout")?
        } else if terminals[2] {
            dup(std::io::stderr().as_fd(), "stderr")?
        } else {
            dup(input.as_fd(), "stdin")?
        };
        let settings = tcgetattr(&input)
            .map_err(|errno| format!("tcgetattr on the terminal on stdin: {}", errno.desc()))?;
        let opening = |call: &str, errno: Errno| {
            format!(
                "opening a pty for the command: {call}: {}; to run without a terminal, \
                 give it a stdin that is none (< /dev/null)",
                errno.desc()
            )
        };
        let (master, slave, name) = open_pair(opening)?;
        tcsetattr(&slave, SetArg::TCSANOW, &settings)
            .map_err(|errno| opening(&format!("tcsetattr({name})"), errno))?;
        // A terminal that knows no size (a serial line) leaves the kernel's 0x0.
        if let Ok(size) = window_size(input.as_fd()) {
            set_window_size(master.as_fd(), &size)
                .map_err(|errno| opening("ioctl(TIOCSWINSZ)", errno))?;
        }
        fcntl(
            &master,
            FcntlArg::F_SETFL(OFlag::O_RDWR | OFlag::O_NONBLOCK),
        )
        .map_err(|errno| opening("fcntl(O_NONBLOCK)", errno))?;
        Ok(Some(Pty {
            master,
            slave,
            terminals,
            input,
            output: Some(output),
        }))
    }

    /// Gives `command` the slave in place of each of the caller's stdio that is a
    /// terminal.
    pub(crate) fn attach(&self, command: &mut reexec::Command) -> Result<(), String> {
        let slave = || {
            self.slave
                .try_clone()
                .map_err(|error| format!("duplicating the pty's slave: {error}"))
        };
        command.stdin(slave()?);
        if self.terminals[1] {
            command.stdout(slave()?);
        }
        if self.terminals[2] {
            command.stderr(slave()?);
        }
        Ok(())
    }

    /// Relays between the caller's terminal and the pty, in raw mode, and forwards
    /// signals to `child`, until it ends; then relays what the pty still holds, puts the
    /// caller's terminal back as it was, and returns the child's status. The caller must
    /// have dropped every other copy of the slave (the `reexec::Command` it went to), so
    /// that the pty reports its end.
    pub(crate) fn relay(self, child: &mut reexec::Child, blocked: &Blocked) -> Result<u8, String> {
        let Pty {
            master,
            slave,
            input,
            mut output,
            ..
        } = self;
        drop(slave);
        // SIGCONT: a stopped ns-process that goes on puts raw mode back, as the caller's
        // shell may have changed the settings meanwhile.
        let mut mask = blocked.set();
        mask.add(Signal::SIGCONT);
        mask.thread_block()
            .map_err(|errno| format!("blocking SIGCONT: {}", errno.desc()))?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|errno| format!("signalfd: {}", errno.desc()))?;
        let raw = RawMode::enter(&input)?;

        let mut buffer = vec![0u8; 16 * 1024];
        // What was typed and the pty has not taken yet.
        let mut typed: Vec<u8> = Vec::new();
        let mut input_open = true;
        let mut master_open = true;
        let status = 'relay: loop {
            if let Some(code) = ended(child)? {
                break code;
            }
            let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
            let input_at = (input_open && typed.is_empty()).then(|| {
                fds.push(PollFd::new(input.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });
            let master_at = master_open.then(|| {
                let mut events = PollFlags::POLLIN;
                if !typed.is_empty() {
                    events |= PollFlags::POLLOUT;
                }
                fds.push(PollFd::new(master.as_fd(), events));
                fds.len() - 1
            });
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(errno) => return Err(format!("poll: {}", errno.desc())),
            }
            let ready = |at: Option<usize>, flags: PollFlags| {
                at.and_then(|at| fds[at].revents())
                    .is_some_and(|revents| revents.intersects(flags))
            };
            let readable = PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR;
            let (signal_ready, input_ready) = (ready(Some(0), readable), ready(input_at, readable));
            let (master_readable, master_writable) = (
                ready(master_at, readable),
                ready(master_at, PollFlags::POLLOUT),
            );
            drop(fds);

            if signal_ready {
                while let Some(info) = signals
                    .read_signal()
                    .map_err(|errno| format!("reading signals: {}", errno.desc()))?
                {
                    let Ok(signal) = Signal::try_from(info.ssi_signo as i32) else {
                        continue;
                    };
                    match signal {
                        Signal::SIGCHLD => {
                            if let Some(code) = ended(child)? {
                                break 'relay code;
                            }
                        }
                        // The pty's own size follows the caller's terminal; the kernel
                        // tells the command's foreground job.
                        Signal::SIGWINCH => copy_window_size(&input, &master),
                        Signal::SIGCONT => {
                            let _ = raw.apply();
                            copy_window_size(&input, &master);
                        }
                        // A child that already ended is reaped at the top of the loop.
                        _ => {
                            let _ = child.signal(signal as i32);
                        }
                    }
                }
            }
            if input_ready {
                match read(&input, &mut buffer) {
                    Ok(0) => input_open = false,
                    Ok(count) => typed.extend_from_slice(&buffer[..count]),
                    Err(Errno::EINTR | Errno::EAGAIN) => {}
                    // EIO: the caller's terminal hung up; SIGHUP tells the command.
                    Err(_) => input_open = false,
                }
            }
            if master_writable {
                match write(&master, &typed) {
                    Ok(count) => drop(typed.drain(..count)),
                    Err(Errno::EINTR | Errno::EAGAIN) => {}
                    Err(_) => typed.clear(),
                }
            }
            if master_readable && relay_output(&master, &mut output, &mut buffer) == Relayed::Closed
            {
                master_open = false;
                typed.clear();
            }
        };
        // Everything the command wrote before it ended is still in the pty.
        if master_open {
            while relay_output(&master, &mut output, &mut buffer) == Relayed::Moved {}
        }
        drop(raw);
        Ok(status)
    }
}

/// The child's status as a shell reports it, if it has ended.
fn ended(child: &mut reexec::Child) -> Result<Option<u8>, String> {
    Ok(child
        .try_wait()
        .map_err(|error| error.to_string())?
        .map(signals::exit_code))
}

/// What one read from the pty's master gave.
#[derive(PartialEq)]
enum Relayed {
    /// Some output, passed on to the caller.
    Moved,
    /// Nothing for now (EAGAIN).
    Empty,
    /// Nothing ever again: no slave is open any longer (EIO).
    Closed,
}

/// Moves one read's worth of the pty's output to the caller.
fn relay_output(master: &OwnedFd, output: &mut Option<OwnedFd>, buffer: &mut [u8]) -> Relayed {
    match read(master, buffer) {
        Ok(0) => Relayed::Closed,
        Ok(count) => {
            if let Some(fd) = output {
                if write_all(fd.as_fd(), &buffer[..count]).is_err() {
                    // Gone (a hung-up terminal): what the command writes is dropped from
                    // now on, rather than left to block it.
                    *output = None;
                }
            }
            Relayed::Moved
        }
        Err(Errno::EINTR | Errno::EAGAIN) => Relayed::Empty,
        Err(_) => Relayed::Closed,
    }
}

/// Writes all of `data`, waiting whenever `fd` — which is the caller's and may be
/// non-blocking — is full.
fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> nix::Result<()> {
    while !data.is_empty() {
        match write(fd, data) {
            Ok(count) => data = &data[count..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let _ = poll(
                    &mut [PollFd::new(fd, PollFlags::POLLOUT)],
                    PollTimeout::NONE,
                );
            }
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}

fn copy_window_size(from: &OwnedFd, to: &OwnedFd) {
    if let Ok(size) = window_size(from.as_fd()) {
        let _ = set_window_size(to.as_fd(), &size);
    }
}

/// The caller's terminal in raw mode. Its settings, as they were found, come back when
/// this is dropped: on return, on error, and when a panic unwinds.
struct RawMode<'fd> {
    terminal: &'fd OwnedFd,
    saved: Termios,
}

impl<'fd> RawMode<'fd> {
    fn enter(terminal: &'fd OwnedFd) -> Result<RawMode<'fd>, String> {
        let saved = tcgetattr(terminal)
            .map_err(|errno| format!("tcgetattr on the terminal on stdin: {}", errno.desc()))?;
        let mode = RawMode { terminal, saved };
        mode.apply().map_err(|errno| {
            format!(
                "putting the terminal on stdin in raw mode: tcsetattr: {}",
                errno.desc()
            )
        })?;
        Ok(mode)
    }

    fn apply(&self) -> nix::Result<()> {
        let mut raw = self.saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(self.terminal, SetArg::TCSANOW, &raw)
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        // A process in the background that changes its terminal's settings is stopped by
        // SIGTTOU unless it blocks it: ns-process, put in the background meanwhile,
        // still leaves the terminal as it found it rather than stopping.
        let mut ttou = SigSet::empty();
        ttou.add(Signal::SIGTTOU);
        let previous = ttou.thread_swap_mask(SigmaskHow::SIG_BLOCK);
        let _ = tcsetattr(self.terminal, SetArg::TCSANOW, &self.saved);
        if let Ok(previous) = previous {
            let _ = previous.thread_set_mask();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::termios::LocalFlags;

    #[test]
    fn a_panic_in_the_relay_puts_the_terminal_back() {
        // A pty's slave stands in for the caller's terminal.
        let pair = nix::pty::openpty(None, None).unwrap();
        let before = tcgetattr(&pair.slave).unwrap();
        let relay = std::panic::catch_unwind(|| {
            let _raw = RawMode::enter(&pair.slave).unwrap();
            let during = tcgetattr(&pair.slave).unwrap();
            assert!(
                !during
                    .local_flags
                    .intersects(LocalFlags::ICANON | LocalFlags::ECHO)
            );
            panic!("in the relay");
        });
        assert!(relay.is_err());
        assert_eq!(tcgetattr(&pair.slave).unwrap(), before);
    }
}
