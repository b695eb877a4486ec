//! The `early-dispatch` constructor: the dispatch run from `.init_array`, before `main`
//! and before the libtest harness, in every start of a binary built with the feature.
//!
//! Runs in every process of such a binary, single-threaded, before std's `main` start-up:
//! it reads `argv[0]` and returns at once unless this process was re-executed.

#[cfg(feature = "early-dispatch")]
use std::{ffi::OsStr, process::ExitCode};

#[cfg(feature = "early-dispatch")]
use super::{Caller, EXIT_PANIC, dispatch_as, exit};

/// Makes a write to a closed pipe fail with `EPIPE` instead of killing the process, as
/// std's runtime arranges just before `main`: an entry run before `main` would otherwise
/// die of `SIGPIPE` where the same entry under `main!` gets an error.
pub(super) fn ignore_sigpipe_as_std_does() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: installs SIG_IGN, which runs no code of ours; the process is still
    // single-threaded (see the dispatch's `take_entry_marker`), so nothing races the
    // change.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) };
}

/// The constructor's dispatch: ends a process that was re-executed — into its entry, or
/// with status 121 or 122 as `main!` would — and returns in any other, for `main` to run.
#[cfg(feature = "early-dispatch")]
fn dispatch_before_main(argv0: &OsStr) {
    // Unwinding out of the constructor would abort with a message about a foreign frame;
    // a panic here ends the process the way a panicking `main` does instead.
    match std::panic::catch_unwind(|| dispatch_as(argv0, Caller::BeforeMain)) {
        Ok(None) => {}
        Ok(Some(code)) => exit(code),
        Err(_) => exit(ExitCode::from(EXIT_PANIC)),
    }
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
    dispatch_before_main(OsStr::from_bytes(argv0.to_bytes()));
}
