//! The init's side of `create` and `start`: set up, it tells `ns-runtime create` so,
//! waits until the runtime has saved the container's state, then takes off its death
//! signal (it outlives `create` from here on) and waits for `start`.
//!
//! `start` is runc's exec FIFO turned around: `create` makes a FIFO in the container's
//! state directory and opens its read end before any writer exists, which it hands to
//! the init. Linux reports no hang-up on a FIFO read end until a writer has come and gone,
//! so the init's `poll` sleeps until `start` opens the FIFO for writing and writes a byte.
//! `start` then removes the FIFO: a container whose init lives and whose FIFO is gone is
//! running. The init needs no path for any of it, so it waits the same after the pivot
//! into a rootfs without `/proc`, and whatever uid it runs as on the host.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::cli::Options;
use crate::{EXIT_OWN_FAILURE, signals};

/// What the init says on the ready socket once it is set up.
pub(crate) const READY: u8 = b'R';
/// What `create` answers once the container's state is saved.
pub(crate) const SAVED: u8 = b'S';
/// What the init answers once it took off its death signal: `create` may end now.
pub(crate) const LIVING_ON: u8 = b'L';
/// What `start` writes into the FIFO.
pub(crate) const START: u8 = b'G';

/// The init's ends, when `ns-runtime create` started it.
pub(crate) struct Waiting {
    ready: Option<UnixStream>,
    fifo: Option<OwnedFd>,
}

impl Waiting {
    /// Takes the descriptors the runtime named, close-on-exec at once so that nothing the
    /// init starts inherits them. Both or neither: an init of ns-process has neither.
    pub(crate) fn take(options: &Options) -> Result<Waiting, String> {
        let claim = |fd: Option<RawFd>, what: &str| -> Result<Option<OwnedFd>, String> {
            let Some(fd) = fd else { return Ok(None) };
            // Never stdio: claimed, it would be closed with the claim.
            let owned = (fd > 2)
                .then(|| crate::sys::claim_handed_fd(fd))
                .flatten()
                .ok_or_else(|| {
                    format!("init: the runtime's {what} (descriptor {fd}) is not open, or is stdio")
                })?;
            fcntl(owned.as_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(|errno| {
                format!("init: fcntl(FD_CLOEXEC) on the {what}: {}", errno.desc())
            })?;
            Ok(Some(owned))
        };
        let ready = claim(options.internal_ready_fd, "ready socket")?;
        let fifo = claim(options.internal_start_fifo_fd, "start FIFO")?;
        if ready.is_some() != fifo.is_some() {
            return Err("init: the runtime gave its ready socket or its start FIFO alone".into());
        }
        Ok(Waiting {
            ready: ready.map(UnixStream::from),
            fifo,
        })
    }

    /// Set up: tells the runtime, waits until it saved the container, lives on past it,
    /// then waits for `start`. `Err` is the init's exit status: the runtime went away
    /// before it saved anything (then nothing of the container is left), or a signal
    /// came before `start` (128 + it, as if the command had been killed).
    pub(crate) fn until_started(self, blocked: &signals::Blocked) -> Result<(), u8> {
        let (Some(mut ready), Some(fifo)) = (self.ready, self.fifo) else {
            return Ok(());
        };
        let failed = |what: &str, why: &dyn std::fmt::Display| {
            eprintln!("ns-runtime: init: {what}: {why}");
            EXIT_OWN_FAILURE
        };
        ready
            .write_all(&[READY])
            .map_err(|error| failed("telling the runtime it is set up", &error))?;
        let mut answer = [0u8; 1];
        match ready.read(&mut answer) {
            Ok(1) if answer[0] == SAVED => {}
            // The runtime was killed or failed before saving the container: it is not
            // to be, and no state names this process.
            Ok(_) => return Err(EXIT_OWN_FAILURE),
            Err(error) => return Err(failed("waiting for the runtime", &error)),
        }
        // From here the container exists without `create`: whoever reaps orphans (conmon,
        // a subreaper, the host's init) is its parent. `create` waits for the answer, so
        // as not to end (and kill the init) before the death signal is off.
        nix::sys::prctl::set_pdeathsig(None)
            .map_err(|errno| failed("prctl(PR_SET_PDEATHSIG, 0)", &errno.desc()))?;
        ready
            .write_all(&[LIVING_ON])
            .map_err(|error| failed("telling the runtime it lives on", &error))?;
        drop(ready);
        wait_for_start(&fifo, blocked)
    }
}

/// Sleeps until `start` writes into the FIFO, or a forwarded signal asks the init to end.
fn wait_for_start(fifo: &OwnedFd, blocked: &signals::Blocked) -> Result<(), u8> {
    let failed = |what: &str, errno: nix::errno::Errno| {
        eprintln!(
            "ns-runtime: init: waiting for start: {what}: {}",
            errno.desc()
        );
        EXIT_OWN_FAILURE
    };
    // The signals stay blocked: one that is not read here waits for the command.
    let signals = SignalFd::with_flags(
        &blocked.set(),
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )
    .map_err(|errno| failed("signalfd", errno))?;
    loop {
        let mut fds = [
            PollFd::new(fifo.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(failed("poll", errno)),
            Ok(_) => {}
        }
        let fifo_event = fds[0].revents().unwrap_or(PollFlags::empty());
        let signal_event = fds[1].revents().unwrap_or(PollFlags::empty());
        if !signal_event.is_empty() {
            while let Ok(Some(info)) = signals.read_signal() {
                let Ok(signal) = Signal::try_from(info.ssi_signo as i32) else {
                    continue;
                };
                if signal != Signal::SIGCHLD {
                    // `kill` of a created container: it ends as the command would have.
                    return Err(128u8.wrapping_add(signal as u8));
                }
            }
        }
        if !fifo_event.is_empty() {
            let mut byte = [0u8; 1];
            return match nix::unistd::read(fifo, &mut byte) {
                Ok(1) if byte[0] == START => Ok(()),
                Err(nix::errno::Errno::EAGAIN) => continue,
                Ok(_) => {
                    eprintln!(
                        "ns-runtime: init: the start FIFO was opened and closed without a \
                         start; the container ends"
                    );
                    Err(EXIT_OWN_FAILURE)
                }
                Err(errno) => Err(failed("read", errno)),
            };
        }
    }
}
