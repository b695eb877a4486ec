//! Fault injection: system calls that fail or kill (seccomp filters), processes held before
//! their first instruction (ptrace), and signals that interrupt every blocking call.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::time::Instant;

use nix::errno::Errno;
use nix::libc;
use nix::sys::ptrace;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

// ---------------------------------------------------------------------------------------
// seccomp
// ---------------------------------------------------------------------------------------

/// Whether reexec's spawner takes clone3 with `CLONE_CLEAR_SIGHAND` on this machine —
/// x86_64, whose clone3 is reexec's own assembly, and Linux 5.5 or later — so that a
/// child is still made under a filter that refuses clone(2). `Err` names the release when
/// not, for a test's printed skip.
pub fn clone3_clears_signal_handlers() -> Result<(), String> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let version: Vec<u32> = release
        .split(|c: char| !c.is_ascii_digit())
        .take(2)
        .filter_map(|part| part.parse().ok())
        .collect();
    if cfg!(target_arch = "x86_64") && version >= vec![5, 5] {
        Ok(())
    } else {
        Err(format!("no clone3 spawner on Linux {}", release.trim()))
    }
}

/// The filter a probe spawns under so that the spawner has one way left to make a child:
/// `no-clone` refuses clone(2), `no-clone3` clone3, both with ENOSYS (as container
/// runtimes' profiles refuse clone3); `none` is no filter. Another word panics: a
/// probe's mode is its test's to get right.
pub fn clone_refused(mode: &str) -> Result<Option<reexec::SeccompProgram>, reexec::Error> {
    let number = match mode {
        "none" => return Ok(None),
        "no-clone" => libc::SYS_clone,
        "no-clone3" => libc::SYS_clone3,
        other => panic!("none, no-clone or no-clone3, not {other:?}"),
    };
    let program = reexec::SeccompFilter::new(reexec::SeccompAction::Allow)
        .rule(number, reexec::SeccompAction::Errno(libc::ENOSYS as u16))
        .compile()?;
    Ok(Some(program))
}

/// The argument a [`SeccompFilter`] compares: the low 32 bits of argument `index`, masked
/// with `mask`, against `value`.
#[derive(Clone, Copy, Debug)]
pub struct SyscallArg {
    /// Which argument, from 0.
    pub index: usize,
    /// The bits compared.
    pub mask: u32,
    /// What they must equal.
    pub value: u32,
}

/// A seccomp filter (seccomp(2)): the system calls it names get one action
/// (`SECCOMP_RET_TRAP`, `SECCOMP_RET_ERRNO | errno`, …), every other call runs, and so does
/// every call of another architecture's numbering.
pub struct SeccompFilter {
    program: Vec<libc::sock_filter>,
}

impl std::fmt::Debug for SeccompFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SeccompFilter({} instructions)", self.program.len())
    }
}

impl SeccompFilter {
    /// `action` for each system call `number` of `calls` — when an argument is given, only
    /// for calls with that argument.
    pub fn new(calls: &[(i64, Option<SyscallArg>)], action: u32) -> SeccompFilter {
        #[cfg(target_arch = "x86_64")]
        const AUDIT_ARCH: u32 = 0xC000_003E;
        #[cfg(target_arch = "aarch64")]
        const AUDIT_ARCH: u32 = 0xC000_00B7;
        let statement = |code: u32, k: u32| libc::sock_filter {
            code: code as u16,
            jt: 0,
            jf: 0,
            k,
        };
        let jump_if_equal = |k: u32, jt: u8, jf: u8| libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt,
            jf,
            k,
        };
        let load =
            |offset: usize| statement(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset as u32);
        let ret = |k: u32| statement(libc::BPF_RET | libc::BPF_K, k);
        let allow = libc::SECCOMP_RET_ALLOW;
        let mut program = vec![
            load(std::mem::offset_of!(libc::seccomp_data, arch)),
            jump_if_equal(AUDIT_ARCH, 1, 0),
            ret(allow),
        ];
        for &(number, arg) in calls {
            let compare_arg = match arg {
                None => Vec::new(),
                // The low half of a 64-bit argument: both architectures are little-endian.
                // Another value skips the action, to the next call's test.
                Some(SyscallArg { index, mask, value }) => vec![
                    load(std::mem::offset_of!(libc::seccomp_data, args) + 8 * index),
                    statement(libc::BPF_ALU | libc::BPF_AND | libc::BPF_K, mask),
                    jump_if_equal(value, 0, 1),
                ],
            };
            // Each test loads the number again: an argument's test replaced it.
            program.push(load(std::mem::offset_of!(libc::seccomp_data, nr)));
            // Another call: jump over the argument's test and the action.
            program.push(jump_if_equal(number as u32, 0, compare_arg.len() as u8 + 1));
            program.extend(compare_arg);
            program.push(ret(action));
        }
        program.push(ret(allow));
        SeccompFilter { program }
    }

    /// The system calls `numbers` fail with `errno`: ENOSYS, as on a kernel that lacks
    /// them, or another error.
    pub fn failing(numbers: &[i64], errno: i32) -> SeccompFilter {
        let calls: Vec<_> = numbers.iter().map(|&number| (number, None)).collect();
        SeccompFilter::new(&calls, libc::SECCOMP_RET_ERRNO | errno as u32)
    }

    /// Installs the filter on the calling thread only; the thread's children inherit it.
    /// Sets `no_new_privs`, which an unprivileged filter needs. Makes two prctl(2) calls
    /// and nothing else — no allocation, no lock — so it may run between fork and exec.
    /// Fails where this kernel or the surrounding sandbox refuses filters: a test then
    /// skips with the reason.
    pub fn install(&self) -> nix::Result<()> {
        nix::sys::prctl::set_no_new_privs()?;
        let program = libc::sock_fprog {
            len: self.program.len() as u16,
            filter: self.program.as_ptr().cast_mut(),
        };
        // SAFETY: `program` points at `self.program`'s `len` instructions, which outlive
        // the call; the kernel only reads and copies them.
        let result = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &program as *const libc::sock_fprog,
            )
        };
        Errno::result(result).map(drop)
    }

    /// Installs the filter in the child of `command` just before it executes its program,
    /// and so for the program and everything it starts.
    pub fn install_before_exec(self, command: &mut Command) {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs between fork and exec; `install` makes only prctl(2)
        // calls, which are async-signal-safe, on instructions built before the fork.
        unsafe { command.pre_exec(move || self.install().map_err(std::io::Error::from)) };
    }
}

/// The message [`die_at_syscall`]'s handler writes; set once, before the filter goes in.
static DYING_MESSAGE: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// Writes `message` to stdout and SIGKILLs this process: a death at this exact point.
pub fn die_now(message: &str) -> ! {
    write_and_die(message);
    unreachable!("SIGKILL returned")
}

fn write_and_die(message: &str) {
    // SAFETY: write(2) from a live string to stdout; like kill(2) it is async-signal-safe.
    unsafe { libc::write(1, message.as_ptr().cast(), message.len()) };
    let _ = nix::sys::signal::kill(Pid::this(), Signal::SIGKILL);
}

extern "C" fn die_now_on_sigsys(_: libc::c_int) {
    write_and_die(DYING_MESSAGE.get().copied().unwrap_or("dying_at=?\n"));
}

/// Makes this thread's next system call `number` with argument `arg` raise SIGSYS instead
/// of running (a [`SeccompFilter`] on this thread only), and SIGSYS write `message` and
/// SIGKILL the process: a process that dies at exactly that call. A child the thread
/// creates inherits the filter.
pub fn die_at_syscall(number: i64, arg: SyscallArg, message: &'static str) -> Result<(), String> {
    let _ = DYING_MESSAGE.set(message);
    let sigsys = SigAction::new(
        SigHandler::Handler(die_now_on_sigsys),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler makes only async-signal-safe calls.
    unsafe { sigaction(Signal::SIGSYS, &sigsys) }.map_err(|errno| errno.to_string())?;
    SeccompFilter::new(&[(number, Some(arg))], libc::SECCOMP_RET_TRAP)
        .install()
        .map_err(|errno| errno.to_string())
}

// ---------------------------------------------------------------------------------------
// ptrace
// ---------------------------------------------------------------------------------------

/// A process traced with ptrace(2) from this thread: every child, vfork child and thread it
/// creates is attached at birth and stopped before its first instruction.
#[derive(Debug)]
pub struct Tracer {
    tracee: Pid,
}

impl Tracer {
    /// Seizes `tracee`, which runs on; killed should this process die (PTRACE_O_EXITKILL).
    pub fn seize(tracee: Pid) -> nix::Result<Tracer> {
        let options = ptrace::Options::PTRACE_O_TRACEFORK
            | ptrace::Options::PTRACE_O_TRACEVFORK
            | ptrace::Options::PTRACE_O_TRACECLONE
            | ptrace::Options::PTRACE_O_EXITKILL;
        ptrace::seize(tracee, options)?;
        Ok(Tracer { tracee })
    }

    /// Lets the tracee run — passing on the signals it gets — until a child it created
    /// stands stopped before its first instruction, and returns that child, held until
    /// [`Tracer::release`]. `Err` if the tracee ends first.
    ///
    /// Returns only once both have been seen, in whichever order waitpid(2) reports them:
    /// the tracee's fork/vfork/clone event, after which it runs on, and the new child's
    /// first stop.
    pub fn hold_first_child(&self) -> Result<Pid, String> {
        let mut created = None;
        let mut stopped = Vec::new();
        loop {
            if let Some(child) = created
                && stopped.contains(&child)
            {
                return Ok(child);
            }
            let status = wait_any();
            if status.pid() == Some(self.tracee) {
                match status {
                    // A signal for the tracee: it gets it.
                    WaitStatus::Stopped(_, signal) => ptrace::cont(self.tracee, signal),
                    WaitStatus::PtraceEvent(_, _, event) => {
                        if created.is_none()
                            && [
                                libc::PTRACE_EVENT_FORK,
                                libc::PTRACE_EVENT_VFORK,
                                libc::PTRACE_EVENT_CLONE,
                            ]
                            .contains(&event)
                        {
                            let pid = ptrace::getevent(self.tracee).map_err(|e| e.to_string())?;
                            created = Some(Pid::from_raw(pid as libc::pid_t));
                        }
                        ptrace::cont(self.tracee, None)
                    }
                    other => {
                        return Err(format!(
                            "the traced process ended before its child was created: {other:?}"
                        ));
                    }
                }
                .map_err(|errno| format!("ptrace(PTRACE_CONT): {errno}"))?;
            } else if let WaitStatus::Stopped(pid, _) | WaitStatus::PtraceEvent(pid, _, _) = status
            {
                // A new child's first stop: it has not run an instruction of its own.
                stopped.push(pid);
            }
        }
    }

    /// Once the tracee was killed: how it ended.
    pub fn wait_for_end(&self) -> WaitStatus {
        loop {
            let status = wait_any();
            if status.pid() == Some(self.tracee)
                && matches!(status, WaitStatus::Exited(..) | WaitStatus::Signaled(..))
            {
                return status;
            }
        }
    }

    /// Lets a child held by [`Tracer::hold_first_child`] run.
    pub fn release(&self, child: Pid) -> nix::Result<()> {
        ptrace::detach(child, None)
    }
}

/// waitpid(-1, __WALL): the next child or tracee that changed state.
fn wait_any() -> WaitStatus {
    loop {
        match waitpid(None, Some(WaitPidFlag::__WALL)) {
            Ok(status) => return status,
            Err(Errno::EINTR) => {}
            Err(errno) => panic!("waitpid: {errno}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// signals
// ---------------------------------------------------------------------------------------

/// Sends `signal` to thread `tid` of this process (tgkill(2)); a thread that ended
/// meanwhile is no error.
pub fn signal_thread(tid: i32, signal: Signal) {
    // SAFETY: tgkill(2) takes numbers; it signals only a thread of this process (the
    // thread group is ours), and a tid that ended meanwhile gives ESRCH, ignored.
    unsafe {
        libc::syscall(
            libc::SYS_tgkill,
            std::process::id() as i32,
            tid,
            signal as i32,
        );
    }
}

/// Puts `signal` back to its default action (an inherited SIG_IGN would keep it from
/// killing) and unblocks it in the calling thread.
pub fn default_and_unblock(signal: Signal) {
    if signal == Signal::SIGKILL || signal == Signal::SIGSTOP {
        // Neither can be caught, ignored or blocked.
        return;
    }
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: installs the default action, which runs no code of ours.
    unsafe { sigaction(signal, &default) }.unwrap();
    SigSet::from(signal).thread_unblock().unwrap();
}

static SIGNALS_HANDLED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    SIGNALS_HANDLED.fetch_add(1, Ordering::Relaxed);
}

/// Handlers for SIGUSR1 and SIGCHLD without SA_RESTART, which count what they handle (see
/// [`signals_handled`]): every blocking system call a signal interrupts in a thread that
/// has them unblocked fails with EINTR.
pub fn install_interrupting_handlers() {
    let action = SigAction::new(
        SigHandler::Handler(count_signal),
        SaFlags::SA_NOCLDSTOP,
        SigSet::empty(),
    );
    for signal in [Signal::SIGUSR1, Signal::SIGCHLD] {
        // SAFETY: the handler only increments an atomic, which is async-signal-safe.
        unsafe { sigaction(signal, &action) }.unwrap();
    }
}

/// How many signals the handlers of [`install_interrupting_handlers`] have handled.
pub fn signals_handled() -> usize {
    SIGNALS_HANDLED.load(Ordering::Relaxed)
}

/// Shows that the handlers of [`install_interrupting_handlers`] do interrupt: a thread
/// blocked in read(2) on an empty pipe gets EINTR when SIGUSR1 reaches it.
pub fn read_is_interrupted() -> bool {
    let (read_end, _write_end) = nix::unistd::pipe().unwrap();
    let tid = Arc::new(AtomicI32::new(0));
    let reader_tid = Arc::clone(&tid);
    let reader = std::thread::spawn(move || {
        reader_tid.store(nix::unistd::gettid().as_raw(), Ordering::SeqCst);
        let mut byte = [0u8];
        nix::unistd::read(&read_end, &mut byte)
    });
    // Until the reader answers: a signal that came before it blocked in read was handled
    // and lost, so send another.
    while !reader.is_finished() {
        let target = tid.load(Ordering::SeqCst);
        if target != 0 {
            signal_thread(target, Signal::SIGUSR1);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    reader.join().unwrap() == Err(Errno::EINTR)
}

/// Sleeps until `deadline`, however often signals interrupt it. `std::thread::sleep`
/// does not, under a storm: it restarts a relative sleep with the time the kernel says
/// is left, which includes the timer slack (50 µs), so a thread interrupted every few
/// microseconds is owed more after each interruption than before it, and sleeps for ever.
pub fn sleep_until(deadline: Instant) {
    use nix::time::{ClockId, ClockNanosleepFlags, clock_gettime, clock_nanosleep};
    let left = deadline.saturating_duration_since(Instant::now());
    let until = clock_gettime(ClockId::CLOCK_MONOTONIC).unwrap() + left.into();
    // An absolute deadline: each restart after EINTR asks for the same moment.
    while clock_nanosleep(
        ClockId::CLOCK_MONOTONIC,
        ClockNanosleepFlags::TIMER_ABSTIME,
        &until,
    ) == Err(Errno::EINTR)
    {}
}
