//! The unsafe core: `clone(2)` and everything the child does before `execve(2)`.
//!
//! The parent may have any number of threads, some holding locks (the allocator's among
//! them) at the moment of the clone. Such locks are never released in the child, so the
//! child may only make async-signal-safe calls — raw system calls through libc — on data
//! prepared in full before the clone: no allocation, no locks, no formatting, no panics.
//! `ChildPlan` holds that data; `child_main` is all the code the child runs.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::RawFd;
use std::ptr;

use crate::error::Step;

/// What the child is to do, prepared by the parent before the clone.
pub(crate) struct ChildPlan<'a> {
    pub(crate) exe: &'a CStr,
    /// NULL-terminated `argv`, pointing into strings the parent keeps alive.
    pub(crate) argv: &'a [*const c_char],
    /// NULL-terminated `envp`, likewise.
    pub(crate) envp: &'a [*const c_char],
    pub(crate) cwd: Option<&'a CStr>,
    /// The descriptor to install as fd 0, 1 and 2; `None` keeps the parent's.
    pub(crate) stdio: [Option<RawFd>; 3],
    /// The signal the child gets when its parent dies; 0 for none.
    pub(crate) death_signal: c_int,
    /// The parent's pid, to catch a parent that died before the death signal was armed.
    pub(crate) parent_pid: libc::pid_t,
    /// Write end of the close-on-exec pipe on which a failed child reports `(step, errno)`.
    pub(crate) report_fd: RawFd,
    /// `CLONE_NEW*` flags for clone(2).
    pub(crate) clone_flags: c_int,
    /// The pipe on which the child waits for the parent to finish its part (id maps);
    /// `None` when there is nothing to wait for.
    pub(crate) wait_for_parent: Option<SyncPipe>,
    /// Enter a new time namespace with unshare(2) before execve: clone(2) can't.
    pub(crate) unshare_time: bool,
    /// A signal left blocked across execve; see `arm_death_signal_as_pid1`. 0 for none.
    pub(crate) keep_blocked: c_int,
}

/// Both ends of the parent-to-child "go on" pipe, as the child sees them.
#[derive(Clone, Copy)]
pub(crate) struct SyncPipe {
    pub(crate) read: RawFd,
    pub(crate) write: RawFd,
}

/// The exit status of a child whose setup failed; the parent learns the real cause from
/// the report pipe and never shows this number to users.
const SETUP_FAILED: c_int = 127;

/// Room for the child's stack. It runs a handful of system calls, no Rust formatting.
const CHILD_STACK_SIZE: usize = 64 * 1024;

/// Starts the child described by `plan` and returns its pid.
pub(crate) fn spawn(plan: &ChildPlan<'_>) -> io::Result<libc::pid_t> {
    debug_assert_eq!(plan.argv.last(), Some(&ptr::null()));
    debug_assert_eq!(plan.envp.last(), Some(&ptr::null()));
    let stack = ChildStack::new(CHILD_STACK_SIZE)?;
    let blocked = SignalsBlocked::all()?;
    // SAFETY: `child_entry` receives a pointer to `plan`, which outlives the call: without
    // CLONE_VM the child works on its own copy of this address space, and the parent
    // returns from here only after clone(2) has made that copy. The stack is a fresh
    // mapping of CHILD_STACK_SIZE bytes and clone gets its top, as the ABI wants.
    let pid = unsafe {
        libc::clone(
            child_entry,
            stack.top(),
            plan.clone_flags | libc::SIGCHLD,
            plan as *const ChildPlan<'_> as *mut c_void,
        )
    };
    let clone_error = io::Error::last_os_error();
    drop(blocked);
    if pid < 0 {
        return Err(clone_error);
    }
    Ok(pid)
}

extern "C" fn child_entry(plan: *mut c_void) -> c_int {
    // SAFETY: `spawn` passes a pointer to a live `ChildPlan`, copied into this child's own
    // address space by clone(2).
    let plan = unsafe { &*(plan as *const ChildPlan<'_>) };
    // SAFETY: we are the freshly cloned child, the one caller `child_main` allows.
    unsafe { child_main(plan) }
}

/// The child's whole life before `execve`.
///
/// # Safety
/// Only in a child just created by `clone(2)` without `CLONE_VM`, with every signal blocked.
unsafe fn child_main(plan: &ChildPlan<'_>) -> ! {
    // SAFETY (all blocks below): each is a plain system call through libc on descriptors
    // and NUL-terminated strings that `plan` keeps valid; none allocates or takes a lock,
    // which is what async-signal safety after clone asks.
    if plan.death_signal != 0 {
        // SAFETY: see above.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, plan.death_signal as libc::c_ulong) } != 0 {
            fail(plan, Step::SetDeathSignal);
        }
        // The parent may have died before the signal was armed; then nobody sends it.
        // getppid() says so, except in a new PID namespace where it is always 0: there
        // the end-of-file on the sync pipe below tells instead.
        // SAFETY: see above.
        if plan.wait_for_parent.is_none() && unsafe { libc::getppid() } != plan.parent_pid {
            // SAFETY: see above.
            unsafe { libc::_exit(SETUP_FAILED) };
        }
    }

    if let Some(sync) = plan.wait_for_parent {
        // Our copy of the write end must go, or a dead parent would never give us EOF.
        // SAFETY: see above.
        unsafe { libc::close(sync.write) };
        let mut go = 0u8;
        loop {
            // SAFETY: see above; reads one byte into a local. Signals are blocked, but a
            // stop/continue can still interrupt the read.
            let read = unsafe { libc::read(sync.read, (&mut go as *mut u8).cast(), 1) };
            if read == 1 {
                break;
            }
            if read < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            // End of file: the parent died or gave up on us; it reports on its side.
            // SAFETY: see above.
            unsafe { libc::_exit(SETUP_FAILED) };
        }
    }

    if plan.unshare_time {
        // SAFETY: see above.
        if unsafe { libc::unshare(libc::CLONE_NEWTIME) } != 0 {
            fail(plan, Step::EnterTimeNamespace);
        }
    }

    if reset_signals(plan.keep_blocked).is_err() {
        fail(plan, Step::ResetSignals);
    }

    if install_stdio(&plan.stdio).is_err() {
        fail(plan, Step::InstallStdio);
    }

    if let Some(cwd) = plan.cwd {
        // SAFETY: see above.
        if unsafe { libc::chdir(cwd.as_ptr()) } != 0 {
            fail(plan, Step::ChangeDirectory);
        }
    }

    // SAFETY: see above; `argv` and `envp` are NULL-terminated arrays of C strings.
    unsafe { libc::execve(plan.exe.as_ptr(), plan.argv.as_ptr(), plan.envp.as_ptr()) };
    fail(plan, Step::Exec)
}

/// Makes the parent-death signal end this process when it is PID 1 of a PID namespace.
///
/// The kernel delivers to a namespace's PID 1 only the signals it has a handler for
/// (SIGKILL aside), so a death signal such as SIGTERM would be dropped and the child
/// would outlive its parent. Blocked signals are never dropped, though: the spawner
/// leaves the death signal blocked across execve, and here, before the entry runs, a
/// handler that exits with 128 + the signal goes in and the signal is unblocked — a
/// parent that died meanwhile is noticed now. An entry that installs its own handler
/// replaces this one.
pub(crate) fn arm_death_signal_as_pid1() {
    // SAFETY: getpid and prctl(PR_GET_PDEATHSIG) only read this process's state into a
    // local int.
    let (pid, signal) = unsafe {
        let mut signal: c_int = 0;
        let pid = libc::getpid();
        let got = libc::prctl(libc::PR_GET_PDEATHSIG, &mut signal as *mut c_int);
        (pid, if got == 0 { signal } else { 0 })
    };
    if pid != 1 || signal <= 0 || signal == libc::SIGKILL || signal == libc::SIGSTOP {
        return;
    }
    let mut current = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: queries the disposition into a zeroed local.
    let queried = unsafe { libc::sigaction(signal, ptr::null(), current.as_mut_ptr()) } == 0;
    // SAFETY: sigaction filled `current` when it succeeded.
    if queried && unsafe { current.assume_init() }.sa_sigaction == libc::SIG_DFL {
        extern "C" fn exit_on_death_signal(signal: c_int) {
            // SAFETY: _exit is async-signal-safe and ends the process at once.
            unsafe { libc::_exit(128 + signal) };
        }
        // SAFETY: a zeroed sigaction is valid; we set only its handler, a plain
        // extern "C" function that does nothing but _exit.
        unsafe {
            let mut action = MaybeUninit::<libc::sigaction>::zeroed().assume_init();
            action.sa_sigaction =
                exit_on_death_signal as extern "C" fn(c_int) as libc::sighandler_t;
            libc::sigaction(signal, &action, ptr::null_mut());
        }
    }
    let mut unblock = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: the set is initialised by sigemptyset before sigaddset and pthread_sigmask
    // read it; only this one signal is unblocked, in the one thread there is.
    unsafe {
        libc::sigemptyset(unblock.as_mut_ptr());
        libc::sigaddset(unblock.as_mut_ptr(), signal);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, unblock.as_ptr(), ptr::null_mut());
    }
}

/// `waitpid(2)` on our own child: its raw status, or `None` if `nohang` and it still runs.
pub(crate) fn wait(pid: libc::pid_t, nohang: bool) -> io::Result<Option<c_int>> {
    let mut status: c_int = 0;
    let flags = if nohang { libc::WNOHANG } else { 0 };
    // SAFETY: waitpid writes one int into a valid local.
    let result = unsafe { libc::waitpid(pid, &mut status, flags) };
    match result {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        _ => Ok(Some(status)),
    }
}

/// Sends `(step, errno)` to the parent and ends the child.
fn fail(plan: &ChildPlan<'_>, step: Step) -> ! {
    let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
    let report = encode_report(step, errno);
    // SAFETY: writes a stack buffer to a descriptor the plan owns, then leaves without
    // running anything of Rust's exit path; both are async-signal-safe.
    unsafe {
        libc::write(
            plan.report_fd,
            report.as_ptr() as *const c_void,
            report.len(),
        );
        libc::_exit(SETUP_FAILED)
    }
}

pub(crate) const REPORT_LEN: usize = 8;

pub(crate) fn encode_report(step: Step, errno: i32) -> [u8; REPORT_LEN] {
    let mut report = [0; REPORT_LEN];
    report[..4].copy_from_slice(&step.code().to_ne_bytes());
    report[4..].copy_from_slice(&errno.to_ne_bytes());
    report
}

pub(crate) fn decode_report(report: [u8; REPORT_LEN]) -> (Option<Step>, i32) {
    let [s0, s1, s2, s3, e0, e1, e2, e3] = report;
    (
        Step::from_code(u32::from_ne_bytes([s0, s1, s2, s3])),
        i32::from_ne_bytes([e0, e1, e2, e3]),
    )
}

/// Puts every handled signal back to its default action and unblocks all signals but
/// `keep_blocked`, so the new program starts as a freshly executed one would, and no
/// handler of the parent's runs in the child before `execve`. SIGPIPE goes back to
/// default too, as `std::process::Command` does: Rust programs ignore it.
fn reset_signals(keep_blocked: c_int) -> Result<(), ()> {
    // 1 to 64 are all of Linux's signals; SIGRTMAX() would be a libc call, not a constant.
    for signal in 1..=64 {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        let mut old = MaybeUninit::<libc::sigaction>::zeroed();
        // SAFETY: queries the disposition into a zeroed local.
        if unsafe { libc::sigaction(signal, ptr::null(), old.as_mut_ptr()) } != 0 {
            // Signals glibc reserves for itself answer EINVAL; they need no reset.
            continue;
        }
        // SAFETY: sigaction filled `old`, or it was zeroed: both are valid values.
        let handler = unsafe { old.assume_init() }.sa_sigaction;
        let must_reset =
            handler != libc::SIG_DFL && (handler != libc::SIG_IGN || signal == libc::SIGPIPE);
        if must_reset {
            // SAFETY: a zeroed sigaction is SIG_DFL with an empty mask and no flags.
            let default = unsafe { MaybeUninit::<libc::sigaction>::zeroed().assume_init() };
            // SAFETY: installs the default action from a valid local.
            if unsafe { libc::sigaction(signal, &default, ptr::null_mut()) } != 0 {
                return Err(());
            }
        }
    }
    let mut mask = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set; sigaddset and sigprocmask use it.
    let unblocked = unsafe {
        libc::sigemptyset(mask.as_mut_ptr());
        if keep_blocked != 0 {
            libc::sigaddset(mask.as_mut_ptr(), keep_blocked);
        }
        libc::sigprocmask(libc::SIG_SETMASK, mask.as_ptr(), ptr::null_mut())
    };
    if unblocked != 0 { Err(()) } else { Ok(()) }
}

/// Makes the given descriptors fds 0, 1 and 2.
fn install_stdio(stdio: &[Option<RawFd>; 3]) -> Result<(), ()> {
    // A source that is itself one of 0..2 could be overwritten by an earlier dup2: move
    // every such source out of the way first.
    let mut sources = *stdio;
    for source in sources.iter_mut().flatten() {
        if *source <= 2 {
            // SAFETY: duplicates a descriptor the plan owns; async-signal-safe.
            let moved = unsafe { libc::fcntl(*source, libc::F_DUPFD_CLOEXEC, 3) };
            if moved < 0 {
                return Err(());
            }
            *source = moved;
        }
    }
    for (target, source) in (0..).zip(sources) {
        if let Some(source) = source {
            // SAFETY: dup2 between descriptors the plan owns; the copy at `target` is
            // not close-on-exec, which is what the new program needs.
            if unsafe { libc::dup2(source, target) } < 0 {
                return Err(());
            }
        }
    }
    Ok(())
}

/// A private anonymous mapping used as the child's stack, unmapped on drop.
struct ChildStack {
    base: *mut c_void,
    size: usize,
}

impl ChildStack {
    fn new(size: usize) -> io::Result<ChildStack> {
        // SAFETY: asks for a fresh anonymous mapping; no existing memory is touched.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(ChildStack { base, size })
    }

    /// The highest address: stacks grow down on every platform we support.
    fn top(&self) -> *mut c_void {
        // SAFETY: one past the end of the mapping, which `add` allows.
        unsafe { self.base.cast::<u8>().add(self.size).cast() }
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `new` made, which nothing else refers to.
        unsafe { libc::munmap(self.base, self.size) };
    }
}

/// Blocks every signal in this thread until dropped, so that no handler runs in the child
/// between clone and the moment it resets the dispositions.
struct SignalsBlocked {
    previous: libc::sigset_t,
}

impl SignalsBlocked {
    fn all() -> io::Result<SignalsBlocked> {
        let mut all = MaybeUninit::<libc::sigset_t>::uninit();
        let mut previous = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigfillset initialises `all`; pthread_sigmask reads it and fills `previous`.
        let result = unsafe {
            libc::sigfillset(all.as_mut_ptr());
            libc::pthread_sigmask(libc::SIG_SETMASK, all.as_ptr(), previous.as_mut_ptr())
        };
        if result != 0 {
            return Err(io::Error::from_raw_os_error(result));
        }
        // SAFETY: pthread_sigmask succeeded, so it wrote `previous`.
        let previous = unsafe { previous.assume_init() };
        Ok(SignalsBlocked { previous })
    }
}

impl Drop for SignalsBlocked {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `all` in this same thread.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.previous, ptr::null_mut()) };
    }
}

// ---------------------------------------------------------------------------------------
// The dispatch's unsafe parts: its one environment change, and the `early-dispatch`
// constructor that runs it before `main`. Nothing here is used by the spawner above.
// ---------------------------------------------------------------------------------------

/// Removes `key` from the environment, for the dispatch alone.
///
/// The dispatch runs while the process has a single thread: in the `early-dispatch`
/// constructor, before `main`; or first thing in `main`, through `main!` or `dispatch()`,
/// whose documented contract that is. Nothing else may call this.
pub(crate) fn remove_env_var_single_threaded(key: &str) {
    // SAFETY: changing the environment is unsound only while another thread reads or
    // writes it. The dispatch runs before this process has a second thread (see above):
    // before `main` only glibc's and other constructors have run, and std starts no
    // thread of its own before `main`.
    unsafe { std::env::remove_var(key) };
}

/// Makes a write to a closed pipe fail with `EPIPE` instead of killing the process, as
/// std's runtime arranges just before `main`: an entry run before `main` would otherwise
/// die of `SIGPIPE` where the same entry under `main!` gets an error.
pub(crate) fn ignore_sigpipe_as_std_does() {
    // SAFETY: installs SIG_IGN, which runs no code of ours; the process is still
    // single-threaded (see `remove_env_var_single_threaded`), so nothing races the change.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

// musl calls `.init_array` functions with no arguments and std only learns its arguments
// in `main` there, so an entry could not read them: refuse to build rather than let a
// child fall into the test harness.
#[cfg(all(
    feature = "early-dispatch",
    not(all(target_os = "linux", target_env = "gnu"))
))]
compile_error!(
    "reexec's `early-dispatch` feature needs Linux with glibc (target_env = \"gnu\"): \
     elsewhere nothing hands a constructor its argv; enable the feature only under \
     [target.'cfg(target_env = \"gnu\")'.dev-dependencies], or use reexec::main!"
);

/// glibc calls every function pointer in `.init_array` with `argc`, `argv` and `envp`
/// before `main` — before the libtest harness starts, too. The section has no priority
/// suffix on purpose: GNU ld, gold, lld and mold all place the plain `.init_array` after
/// every `.init_array.NNNNN`, hence after std's own constructor (`.init_array.00099`),
/// which stores argv for `std::env::args`, and after every constructor that asked for a
/// priority.
#[cfg(all(feature = "early-dispatch", target_os = "linux", target_env = "gnu"))]
#[used]
#[unsafe(link_section = ".init_array")]
static EARLY_DISPATCH: extern "C" fn(
    std::ffi::c_int,
    *const *const std::ffi::c_char,
    *const *const std::ffi::c_char,
) = early_dispatch;

/// Dispatches on `argv[0]` as read from our own arguments: std's `args()` is not to be
/// trusted this early, and the dispatch checks it before an entry runs.
#[cfg(all(feature = "early-dispatch", target_os = "linux", target_env = "gnu"))]
extern "C" fn early_dispatch(
    argc: std::ffi::c_int,
    argv: *const *const std::ffi::c_char,
    _envp: *const *const std::ffi::c_char,
) {
    use std::os::unix::ffi::OsStrExt;

    // Linux ≥ 5.18 turns an empty argv into `[""]`; older kernels may pass none at all.
    if argc < 1 || argv.is_null() {
        return;
    }
    // SAFETY: glibc hands over the argv the kernel built: `argc` (≥ 1, checked) valid
    // pointers followed by NULL, so reading the first is in bounds.
    let argv0 = unsafe { *argv };
    if argv0.is_null() {
        return;
    }
    // SAFETY: a non-NULL argv element is a NUL-terminated string that lives, unchanged,
    // for the whole process (nothing has run yet that could rewrite it).
    let argv0 = unsafe { std::ffi::CStr::from_ptr(argv0) };
    crate::dispatch::dispatch_before_main(std::ffi::OsStr::from_bytes(argv0.to_bytes()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip() {
        let report = encode_report(Step::ChangeDirectory, libc::ENOENT);
        assert_eq!(
            decode_report(report),
            (Some(Step::ChangeDirectory), libc::ENOENT)
        );
    }
}
