//! The parent-death signal of a child that is PID 1 of its PID namespace.
//!
//! Runs in the re-executed child, after execve — an ordinary process again, with one
//! thread — in the dispatch, before its entry runs.

use std::ffi::c_int;
use std::mem::MaybeUninit;
use std::ptr;

/// Makes the parent-death signal end this process when it is PID 1 of a PID namespace.
///
/// The kernel delivers to a namespace's PID 1 only the signals it has a handler for
/// (SIGKILL aside), so a death signal such as SIGTERM would be dropped and the child
/// would outlive its parent. Blocked signals are never dropped, though: the spawner
/// leaves the death signal blocked across execve, and here, before the entry runs, a
/// handler that exits with 128 + the signal goes in and the signal is unblocked — a
/// parent that died meanwhile is noticed now. An entry that installs its own handler
/// replaces this one.
///
/// libc rather than nix: the death signal may be a real-time one, which nix's `Signal`
/// cannot name, and nix has no sigaction that only queries.
pub(super) fn arm_as_pid1() {
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
