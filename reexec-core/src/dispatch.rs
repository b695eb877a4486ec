//! `argv[0]` → entry → exit status.
//!
//! Runs in every start of the binary, before `main` or first thing in it, while the process
//! has one thread — the re-executed child, after execve, included. `early.rs` is the
//! `early-dispatch` constructor that calls this before `main`; `death_signal.rs` is what a
//! child that is PID 1 of its namespace arms before its entry runs.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;

use crate::registry::{self, Entry};
use crate::sys;

mod death_signal;
mod early;

/// The environment variable that [`Command`](crate::Command) sets to the entry name, so
/// that a child started for a name this binary lacks can tell it was re-executed and
/// must not fall into `main`. Dispatch removes it before the entry runs.
pub(crate) const ENTRY_ENV: &str = "REEXEC_ENTRY";

/// Exit status of a re-executed child whose `argv[0]` names no entry of this binary.
pub const EXIT_UNKNOWN_ENTRY: u8 = 121;

/// Exit status of a binary in which two entries share one name; it refuses to run at all.
pub const EXIT_DUPLICATE_ENTRY: u8 = 122;

/// Exit status of an entry that panicked, as for `main`.
pub const EXIT_PANIC: u8 = 101;

/// What the start of this process asks for.
enum Role {
    /// Not re-executed: run `main`.
    Main,
    /// Re-executed into this entry.
    Entry(&'static Entry),
    /// Re-executed by [`Command`](crate::Command) under a name this binary does not have.
    Unknown(OsString),
}

/// Who runs the dispatch, which says how much of std's runtime is set up already.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    /// `main!` or [`dispatch`]: std's `lang_start` has run.
    Main,
    /// The `early-dispatch` constructor: `lang_start` has not run yet.
    #[cfg_attr(not(feature = "early-dispatch"), allow(dead_code))]
    BeforeMain,
}

/// Runs the entry that `argv[0]` names, if any, and says with what status the process
/// must end. `None` means: go on into `main`.
///
/// Must run before the program starts threads: it edits the environment.
#[doc(hidden)]
pub fn dispatch_status() -> Option<ExitCode> {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    dispatch_as(&argv0, Caller::Main)
}

/// The one dispatch behind [`main!`](crate::main), [`dispatch`] and the `early-dispatch`
/// constructor, for a process whose `argv[0]` is `argv0`.
fn dispatch_as(argv0: &OsStr, caller: Caller) -> Option<ExitCode> {
    let role = role(basename(argv0), take_entry_marker());
    if caller == Caller::BeforeMain && matches!(role, Role::Main) {
        // Not a re-executed child: every start of the binary pays no more than the lookup
        // above. Duplicates are left to `main!`, if the binary has it, which runs this
        // whole dispatch itself; a test harness runs, and only its children refuse.
        return None;
    }
    if let Some(duplicate) = registry::find_duplicate() {
        eprintln!(
            "reexec: the entry name {:?} is registered twice, at {}:{} and at {}:{}; \
             rename one of them (every entry needs a name of its own)",
            duplicate.first.name(),
            duplicate.first.file(),
            duplicate.first.line(),
            duplicate.second.file(),
            duplicate.second.line(),
        );
        return Some(ExitCode::from(EXIT_DUPLICATE_ENTRY));
    }
    match role {
        Role::Main => None,
        Role::Entry(entry) => {
            // The entry reads its arguments with `std::env::args`. Before `main`, those
            // come from std's own constructor, which every linker we know orders before
            // ours; should one not, the entry would see no arguments at all — refuse
            // rather than run it on the wrong input.
            if std::env::args_os().next().as_deref() != Some(argv0) {
                eprintln!(
                    "reexec: cannot run the entry {:?}: std::env::args() is not set up yet \
                     where reexec's early dispatch runs (this linker ordered the \
                     .init_array constructors unusually); use reexec::main! instead",
                    entry.name(),
                );
                return Some(ExitCode::FAILURE);
            }
            if caller == Caller::BeforeMain {
                early::ignore_sigpipe_as_std_does();
            }
            death_signal::arm_as_pid1();
            Some(run_entry(entry))
        }
        Role::Unknown(name) => Some(unknown_entry(&name)),
    }
}

/// Says that this binary has no entry `name`, listing those it has: the status of a
/// child started for a name it lacks.
fn unknown_entry(name: &OsStr) -> ExitCode {
    let mut known: Vec<&str> = registry::entries().map(Entry::name).collect();
    known.sort_unstable();
    eprintln!(
        "reexec: this process was re-executed to run the entry {:?}, but this binary \
         registers no entry by that name (it has: {}); check the name given to \
         reexec::Command::new, and that the crate defining the entry is linked in",
        name,
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        },
    );
    ExitCode::from(EXIT_UNKNOWN_ENTRY)
}

/// The entry a child of the fork server named `name` runs, looked up by the server
/// before the clone: code the child runs is a page fault in it for every page of it,
/// since a fork copies no page-table entries of unwritten file mappings, and this
/// lookup's (UTF-8 check, string compares, the entries' table) need not be its.
pub(crate) fn forked_entry(name: &OsStr) -> Option<&'static Entry> {
    name.to_str().and_then(registry::lookup)
}

/// Runs `entry`, found by [`forked_entry`] for `name`, in a child of the fork server,
/// which skipped the dispatch of a fresh start: as that dispatch would, it arms the death
/// signal of a PID 1 first — only asked when the child was cloned into a new PID
/// namespace (`may_be_pid1`), the one way it can be PID 1 — and an unknown name gets
/// status [`EXIT_UNKNOWN_ENTRY`].
pub(crate) fn run_forked(
    name: &OsStr,
    entry: Option<&'static Entry>,
    may_be_pid1: bool,
) -> ExitCode {
    match entry {
        Some(entry) => {
            if may_be_pid1 {
                death_signal::arm_as_pid1();
            }
            run_entry(entry)
        }
        None => unknown_entry(name),
    }
}

/// Runs the body of a copy of the caller (`Command::without_exec`) as [`run_forked`]
/// runs an entry: the death signal of a PID 1 armed first, when it may be one, and a
/// panic ending it with [`EXIT_PANIC`].
pub(crate) fn run_body(body: impl FnOnce() -> ExitCode, may_be_pid1: bool) -> ExitCode {
    if may_be_pid1 {
        death_signal::arm_as_pid1();
    }
    panic::catch_unwind(AssertUnwindSafe(body)).unwrap_or(ExitCode::from(EXIT_PANIC))
}

/// What a start whose `argv[0]` ends in `name` asks for, given the marker [`Command`]
/// left in the environment, if any. A query: it changes nothing.
///
/// [`Command`]: crate::Command
fn role(name: &OsStr, marker: Option<OsString>) -> Role {
    if let Some(entry) = name.to_str().and_then(registry::lookup) {
        return Role::Entry(entry);
    }
    match marker {
        // The marker is trusted only when it agrees with argv[0]: an inherited leftover
        // from some ancestor must not stop an ordinary start of the binary.
        Some(marker) if marker == name => Role::Unknown(marker),
        _ => Role::Main,
    }
}

/// Removes the marker [`Command`](crate::Command) sets from the environment, and returns
/// it: the entry, or `main`, must not see it, nor pass it on to what they start. The
/// dispatch's one change to the process.
fn take_entry_marker() -> Option<OsString> {
    take_env_var_in_dispatch(ENTRY_ENV)
}

/// Removes the variable `name` from the environment, if set, and returns its value. Only
/// for the dispatch and what it runs before the entry (a typed entry's descriptors).
pub(crate) fn take_env_var_in_dispatch(name: &str) -> Option<OsString> {
    let value = std::env::var_os(name)?;
    // SAFETY: changing the environment is unsound only while another thread reads or
    // writes it. The dispatch runs before this process has a second thread: in the
    // `early-dispatch` constructor, before `main`, where only glibc's and other
    // constructors have run and std has started no thread; or first thing in `main`,
    // through `main!` or `dispatch()`, whose documented contract that is.
    unsafe { std::env::remove_var(name) };
    Some(value)
}

fn basename(path: &OsStr) -> &OsStr {
    let bytes = path.as_bytes();
    match bytes.iter().rposition(|&byte| byte == b'/') {
        Some(slash) => OsStr::from_bytes(&bytes[slash + 1..]),
        None => path,
    }
}

fn run_entry(entry: &Entry) -> ExitCode {
    // The panic hook has printed the message by the time unwinding reaches us; what is
    // left is to end like a panicking `main` does.
    panic::catch_unwind(AssertUnwindSafe(|| entry.run())).unwrap_or(ExitCode::from(EXIT_PANIC))
}

/// Runs the entry named by `argv[0]` and exits with its status; returns when this process
/// was not re-executed into an entry.
///
/// [`main!`](crate::main) calls this for you. Call it yourself first thing in `main` when
/// you write `main` by hand, before the program starts any thread or runtime:
///
/// ```
/// #[reexec::entry("child")]
/// fn child() {
///     println!("hello from the child");
/// }
///
/// fn main() {
///     reexec::dispatch();
///     // Only the original process gets here.
/// }
/// ```
///
/// A binary with two entries of one name never gets past this call: it prints both
/// definitions and exits with [`EXIT_DUPLICATE_ENTRY`].
pub fn dispatch() {
    if let Some(code) = dispatch_status() {
        exit(code);
    }
}

/// Makes this process's command line its first argument alone — for a re-executed
/// child, its entry's name — in `/proc/PID/cmdline` and in `std::env::args()` alike,
/// and wipes the others' bytes. Returns whether it did.
///
/// For an entry given arguments that no one else should read: any process that sees
/// the PID may read its `/proc/PID/cmdline` (in a container, every process of its PID
/// namespace), where `/proc/PID/environ` is kept from all but the process's owner.
/// Take what you need of the arguments first (`std::env::args()` hands out copies),
/// then hide them, before the process starts anything that could read them. Better
/// still, hand a secret over a descriptor ([`Command::fd`](crate::Command::fd), or a
/// typed call, `reexec::call` with the `typed` feature), which no other process can
/// read in passing. A copy of the caller
/// ([`Command::without_exec`](crate::Command::without_exec)) needs none of this: it
/// shows its entry's name alone from its start.
///
/// It does nothing, and returns `false`, when the process has more than one thread
/// (another could be reading the arguments as they change), when the array of
/// arguments is no longer the one the kernel laid out (a C library rewrote it), or
/// when `/proc/self/stat` can't be read.
///
/// ```
/// use std::process::ExitCode;
///
/// #[reexec::entry("sign-with")]
/// fn sign_with() -> ExitCode {
///     let Some(key_name) = std::env::args().nth(1) else {
///         return ExitCode::from(2);
///     };
///     // From here on, `ps` shows "sign-with" alone.
///     if !reexec::hide_arguments() {
///         eprintln!("sign-with: the key's name stays readable in /proc/self/cmdline");
///     }
///     println!("signing with {key_name}");
///     ExitCode::SUCCESS
/// }
/// # fn main() {}
/// ```
pub fn hide_arguments() -> bool {
    sys::hide_arguments()
}

/// Ends the process with `code`, flushing standard output as returning from `main` would.
fn exit(code: ExitCode) -> ! {
    let _ = std::io::stdout().flush();
    std::process::exit(exit_status_number(code))
}

/// `ExitCode` hides its number on stable Rust; it does compare, and there are only 256.
pub(crate) fn exit_status_number(code: ExitCode) -> i32 {
    (0..=u8::MAX)
        .find(|&number| ExitCode::from(number) == code)
        .map_or(1, i32::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basename_takes_the_last_component() {
        assert_eq!(basename(OsStr::new("/proc/self/exe")), "exe");
        assert_eq!(basename(OsStr::new("nsInitialisation")), "nsInitialisation");
        assert_eq!(basename(OsStr::new("dir/")), "");
    }

    #[reexec::entry("dispatch-unit-test-entry")]
    fn an_entry() {}

    #[test]
    fn the_role_trusts_a_marker_only_when_argv0_agrees() {
        let name = OsStr::new("dispatch-unit-test-entry");
        assert!(matches!(role(name, None), Role::Entry(entry) if entry.name() == name));
        // A registered name wins over any marker.
        let marker = Some(OsString::from("something else"));
        assert!(matches!(role(name, marker), Role::Entry(_)));

        let missing = OsStr::new("dispatch-unit-test-missing");
        assert!(matches!(role(missing, None), Role::Main));
        // Re-executed under a name this binary lacks: the marker says so.
        let marker = Some(missing.to_owned());
        assert!(matches!(role(missing, marker), Role::Unknown(name) if name == missing));
        // A leftover from some ancestor, naming another entry: an ordinary start.
        let marker = Some(OsString::from("dispatch-unit-test-entry"));
        assert!(matches!(role(missing, marker), Role::Main));
    }

    #[test]
    fn exit_status_numbers_round_trip() {
        for number in [0u8, 1, 7, 101, 255] {
            assert_eq!(
                exit_status_number(ExitCode::from(number)),
                i32::from(number)
            );
        }
        assert_eq!(exit_status_number(ExitCode::SUCCESS), 0);
        assert_eq!(exit_status_number(ExitCode::FAILURE), 1);
    }
}
