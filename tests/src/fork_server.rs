//! Running the probes' suites again with every spawn going through the fork server.
//!
//! `tests/tests/fork_server.rs` compiles the suites of `reexec.rs`, `faults.rs`, `fds.rs`,
//! `namespaces.rs`, `limits.rs`, `seccomp.rs` and `cgroups.rs` once more and sets [`ASK`]
//! in its own environment before any test runs; the probes inherit it and, first thing
//! in `main`, call [`use_fork_server_if_asked`].

/// The variable that asks a probe to start the fork server for every command.
pub const ASK: &str = "REEXEC_TESTS_FORK_SERVER";

/// Whether the tests of this process run their probes through the fork server: the
/// suites compiled again into `tests/tests/fork_server.rs`, for the few checks that
/// differ there.
pub fn suite_goes_through_the_server() -> bool {
    std::env::var_os(ASK).is_some()
}

static ASKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this probe was asked to use the fork server: a probe that starts another
/// probe (`orphans::start_middle`) asks it too.
pub fn asked() -> bool {
    ASKED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Starts the fork server for every command of this probe when its caller asked for it
/// (see the module docs), and takes the variable out of the environment, so that the
/// probe's children see the environment they would see without it. Call it first thing
/// in `main`, while the probe has one thread.
pub fn use_fork_server_if_asked() {
    if std::env::var_os(ASK).is_none() {
        return;
    }
    ASKED.store(true, std::sync::atomic::Ordering::Relaxed);
    // SAFETY: called first thing in `main`, before the probe starts any thread, so no
    // other thread reads or writes the environment meanwhile.
    unsafe { std::env::remove_var(ASK) };
    if let Err(error) = reexec::ForkServer::start_for_every_command() {
        eprintln!("probe: the fork server did not start: {error}");
        std::process::exit(70);
    }
}

/// Where [`kill_the_server_at`] stops the fork server and kills it: a moment of one
/// spawn after the child exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moment {
    /// On its way out of the clone: the child exists, the answer is not sent.
    AfterTheClone,
    /// On its way out of sending the answer: the caller may read it.
    AfterTheAnswer,
}

impl std::str::FromStr for Moment {
    type Err = String;
    fn from_str(text: &str) -> Result<Moment, String> {
        match text {
            "after-the-clone" => Ok(Moment::AfterTheClone),
            "after-the-answer" => Ok(Moment::AfterTheAnswer),
            _ => Err(format!(
                "{text:?}: expected after-the-clone or after-the-answer"
            )),
        }
    }
}

/// Traces the fork server `server` from this process, which must be none of the
/// program's — a tracer in the program's own thread group would take the server's stops
/// from the program's waits: once its next clone (or the answer after it, at `moment`)
/// returns, the server is held there for `hold` — time for the child to run its entry —
/// and then killed with SIGKILL. `on_ready` is called once the tracing is in place, or
/// with why it could not be (PTRACE_GET_SYSCALL_INFO needs Linux 5.3).
/// Returns the pid the clone returned, and whether that clone was clone3 (the server
/// falls back to clone(2) where clone3 is refused).
pub fn kill_the_server_at(
    server: u32,
    moment: Moment,
    hold: std::time::Duration,
    on_ready: impl FnOnce(Result<(), &str>),
) -> Result<(i32, bool), String> {
    use nix::sys::ptrace::{self, Options};
    use nix::sys::signal::{Signal, kill};
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    use nix::unistd::Pid;

    let server = Pid::from_raw(server as i32);
    let fail = |what: &str, error: nix::Error| format!("{what}: {error}");
    let attach = || -> Result<(), String> {
        ptrace::seize(server, Options::PTRACE_O_TRACESYSGOOD)
            .map_err(|error| fail("PTRACE_SEIZE of the server", error))?;
        ptrace::interrupt(server).map_err(|error| fail("PTRACE_INTERRUPT", error))?;
        waitpid(server, Some(WaitPidFlag::__WALL))
            .map_err(|error| fail("waiting for the server to stop", error))?;
        syscall_info(server).map_err(|error| fail("PTRACE_GET_SYSCALL_INFO (Linux 5.3)", error))?;
        ptrace::syscall(server, None).map_err(|error| fail("PTRACE_SYSCALL", error))
    };
    if let Err(why) = attach() {
        on_ready(Err(&why));
        return Err(why);
    }
    on_ready(Ok(()));
    let mut last_entered = -1i64;
    let mut child = None;
    loop {
        let status = waitpid(server, Some(WaitPidFlag::__WALL))
            .map_err(|error| fail("waiting for the server", error))?;
        let pass_on = match status {
            WaitStatus::PtraceSyscall(_) => {
                let info =
                    syscall_info(server).map_err(|error| fail("PTRACE_GET_SYSCALL_INFO", error))?;
                if info.op == nix::libc::PTRACE_SYSCALL_INFO_ENTRY {
                    // SAFETY: an entry stop fills the union's `entry` member.
                    last_entered = unsafe { info.u.entry.nr } as i64;
                } else if info.op == nix::libc::PTRACE_SYSCALL_INFO_EXIT {
                    // SAFETY: an exit stop fills the union's `exit` member.
                    let returned = unsafe { info.u.exit.sval };
                    let cloned = last_entered == nix::libc::SYS_clone3
                        || last_entered == nix::libc::SYS_clone;
                    if cloned && returned > 0 {
                        child = Some((returned as i32, last_entered == nix::libc::SYS_clone3));
                    }
                    let answered = last_entered == nix::libc::SYS_sendmsg;
                    let now = match moment {
                        Moment::AfterTheClone => cloned && child.is_some(),
                        Moment::AfterTheAnswer => answered && child.is_some(),
                    };
                    if now {
                        std::thread::sleep(hold);
                        kill(server, Signal::SIGKILL)
                            .map_err(|error| fail("killing the server", error))?;
                        // Its end, seen as its tracer: then its parent sees it too.
                        let _ = waitpid(server, Some(WaitPidFlag::__WALL));
                        return child.ok_or_else(|| "no clone seen".to_owned());
                    }
                }
                None
            }
            WaitStatus::Stopped(_, signal) => Some(signal),
            WaitStatus::PtraceEvent(..) => None,
            other => {
                return Err(format!(
                    "the server stopped or ended unexpectedly: {other:?}"
                ));
            }
        };
        ptrace::syscall(server, pass_on).map_err(|error| fail("PTRACE_SYSCALL", error))?;
    }
}

/// `ptrace(PTRACE_GET_SYSCALL_INFO)` of the stopped tracee `pid`. nix's passes a size of
/// 0, for which the kernel copies nothing.
fn syscall_info(pid: nix::unistd::Pid) -> nix::Result<nix::libc::ptrace_syscall_info> {
    let mut info = std::mem::MaybeUninit::<nix::libc::ptrace_syscall_info>::zeroed();
    // SAFETY: the kernel writes at most the size given, that of `info`, a live local.
    let copied = unsafe {
        nix::libc::ptrace(
            nix::libc::PTRACE_GET_SYSCALL_INFO,
            pid.as_raw(),
            size_of::<nix::libc::ptrace_syscall_info>(),
            info.as_mut_ptr(),
        )
    };
    nix::errno::Errno::result(copied)?;
    // SAFETY: zeroed, then filled in by the kernel; every bit pattern is a valid value.
    Ok(unsafe { info.assume_init() })
}
