//! Re-execute the running binary into a named function — optionally inside new Linux
//! namespaces.
//!
//! A function marked [`#[reexec::entry]`](entry) is registered at link time. A process
//! started by [`Command`] runs `/proc/self/exe` (this very binary, even if the file on
//! disk has since been replaced) with `argv[0]` set to the entry's name; [`main!`] makes
//! that child run the entry and exit with its status before any of `main` runs.
//!
//! ```
//! #[reexec::entry("nsInitialisation")]
//! fn ns_initialisation() -> std::io::Result<()> {
//!     // Runs in the re-executed child.
//!     Ok(())
//! }
//!
//! reexec::main! {
//!     fn main() -> Result<(), reexec::Error> {
//!         let status = reexec::Command::new("nsInitialisation").arg("x").status()?;
//!         assert!(status.success());
//!         Ok(())
//!     }
//! }
//! ```
//!
//! # Limits
//!
//! A [`Cgroup`] is made below the caller's own cgroup — one directory per controller
//! hierarchy on cgroup v1, one on v2, the same code for both — and bounds memory, swap,
//! processes and CPU time ([`Cgroup::set_memory_max`], [`Cgroup::set_pids_max`], …);
//! [`Command::cgroup`] starts a child in it before it runs anything of its own. Creating
//! one needs write access to the caller's cgroup: root's, or a delegated one; without it,
//! [`Error::Cgroup`] says so.
//!
//! # Platform support
//!
//! | platform | support |
//! |---|---|
//! | Linux (glibc or musl), x86_64 and aarch64 | everything |
//! | other Unix, Windows | not supported: the crate relies on `/proc/self/exe` and `clone(2)` |
//!
//! # Children: pidfds, async waits, joined namespaces
//!
//! A [`Child`] holds its pidfd ([`Child::pidfd`], from `CLONE_PIDFD`, Linux 5.2), and
//! [`wait`](Child::wait), [`try_wait`](Child::try_wait), [`kill`](Child::kill) and
//! [`signal`](Child::signal) go through it: once the child was reaped elsewhere, they fail
//! (`ECHILD`, `ESRCH`) instead of reaching whichever process took over its pid. On older
//! kernels they work by pid, as before. With the `tokio` feature,
//! `Child::wait_async` waits on the pidfd from a tokio runtime without blocking a thread.
//!
//! [`Command::join`] enters existing namespaces — a `/proc/PID/ns/*` file, or a pidfd —
//! instead of creating them, user namespace first, as `nsenter` and OCI runtimes do.
//!
//! | feature | what it adds |
//! |---|---|
//! | `early-dispatch` | entries in tests: see below |
//! | `tokio` | `Child::wait_async` (an optional dependency on tokio, features `net` and `rt`) |
//!
//! # Limits and privileges
//!
//! A child can be bounded and confined beyond its namespaces: resource limits with
//! [`Command::rlimit`] ([`Resource`]), the capabilities it keeps with
//! [`Command::capabilities`] ([`Capabilities`], [`CapabilitySet`], [`Capability`]; what
//! `execve` makes of each set, for root and for other uids, is in [`Capabilities`]'s docs),
//! and [`Command::no_new_privs`]. The child takes them on between clone and exec with raw
//! system calls, after changing directory, in that order; a refusal there comes back as
//! [`Error::Refused`], whose hint names the limit or capability, and the entry never
//! runs.
//!
//! # Entries in other crates
//!
//! Entries live in a [linkme] distributed slice, so an entry defined in a library crate
//! is found as long as that crate is linked into the binary. rustc leaves out a
//! dependency that the binary never names, and its entries with it (linkme#36): name
//! the crate somewhere in the binary — `use my_entries as _;` is enough — and all its
//! entries are linked, those in private modules too (the workspace's tests check both,
//! in debug and release builds, with GNU ld). A missing entry shows up as exit status
//! [`EXIT_UNKNOWN_ENTRY`] with a message listing the entries the binary does have.
//!
//! Doctests of edition 2024 are merged into one binary: entry names must then be unique
//! across all the doctests of a crate, or the bundle refuses to run (status 122).
//!
//! # Entries in tests
//!
//! With the `early-dispatch` feature, entries defined in a crate's unit tests
//! (`#[cfg(test)] mod tests`) and integration tests (`tests/*.rs`) can be started from
//! ordinary `#[test]` functions, under `cargo test` and `cargo nextest run` alike — with
//! no `harness = false`, no `main` of your own and no dummy test:
//!
//! ```toml
//! [dev-dependencies]
//! reexec = { version = "0.1", features = ["early-dispatch"] }
//! ```
//!
//! ```rust,no_run,test_harness
//! #[reexec::entry("greet-from-a-test")]
//! fn greet() {
//!     println!("hello {}", std::env::args().nth(1).unwrap_or_default());
//! }
//!
//! #[test]
//! fn the_entry_greets() {
//!     let output = reexec::Command::new("greet-from-a-test")
//!         .arg("--exact")
//!         .output()
//!         .unwrap();
//!     assert_eq!(output.stdout, b"hello --exact\n");
//! }
//! ```
//!
//! **How it works.** The feature places a function in the ELF `.init_array` section, which
//! glibc calls with `argc`, `argv` and `envp` before `main` — so before libtest parses a
//! single flag. It reads `argv[0]` from those arguments and does what [`main!`] does: when
//! `argv[0]` names an entry, or [`Command`] marked the process as re-executed, it runs the
//! entry (or reports an unknown name, status [`EXIT_UNKNOWN_ENTRY`], or two entries of one
//! name, [`EXIT_DUPLICATE_ENTRY`]) and exits with its status, flushing stdout. In any
//! other process it returns, and the harness, or `main`, runs as if nothing happened. A
//! child's arguments are its entry's and never the harness's, so test filters, `--exact`,
//! `--test-threads`, `--nocapture`, `--include-ignored` and flags libtest adds later
//! neither reach nor break it. A binary that also has [`main!`] finds nothing left to do
//! in a child; in any other process `main!` dispatches as it always does.
//!
//! **What it costs.** Every start of every binary that links `reexec` with the feature
//! on makes one function call, one `getenv`, and compares the last component of `argv[0]`
//! with the entry names; it allocates and prints nothing. Cargo unifies features, so
//! during `cargo test` that is every binary of the package that links `reexec` (ones
//! using [`main!`] included, harmlessly); `cargo build` and `cargo run` leave the feature
//! off.
//!
//! **What is set up that early.** glibc is up: the environment, `malloc`, thread-locals
//! and threads work. So do `std::env::args()` — std stores them from its own
//! `.init_array` function, which GNU ld, gold and lld all order before ours (should a
//! linker ever not, the child refuses with a message instead of running the entry without
//! its arguments) — stdout and stderr, and panics: a panicking entry exits with
//! [`EXIT_PANIC`] as under `main!`, and a write to a closed pipe is an `EPIPE` error as
//! under `main`. What std's `main` start-up does is not done: there is no stack-overflow
//! handler (an entry that overflows its stack dies of `SIGSEGV` with no message), the
//! thread is not named `main` (a panic reports `thread '<unnamed>'`), and closed
//! descriptors 0–2 are not reopened on `/dev/null`. Constructors ordered after ours —
//! `.init_array` functions of crates and C libraries linked after `reexec` — have not run
//! in the child, and a `#[global_allocator]` must work without them.
//!
//! **Limits.**
//! - Linux with glibc only. musl calls `.init_array`
//!   functions without arguments and std learns its arguments only in `main` there, so
//!   the feature does not compile for other targets: enable it under
//!   `[target.'cfg(target_env = "gnu")'.dev-dependencies]` if you also build for musl.
//! - Entries belong to a binary: a unit-test binary has the crate's entries, test-only
//!   ones included; each `tests/*.rs` file is a binary of its own, with its own entries
//!   and those of the crates it links (see above).
//! - In a test binary with two entries of one name the harness runs, and every child
//!   exits with [`EXIT_DUPLICATE_ENTRY`], naming both definitions.
//! - libtest runs tests on threads of its own, and the kernel ties the death signal to
//!   the spawning thread: a child that must outlive the test that spawned it needs
//!   [`Command::death_signal(None)`](Command::death_signal).
//!
//! [linkme]: https://docs.rs/linkme
//!
// With the feature only: its examples need it to build.
#![cfg_attr(feature = "typed", doc = include_str!("typed.md"))]
#![doc(test(attr(deny(warnings))))]

extern crate self as reexec;

// The README's examples are compiled and run as doctests too — with the `typed` feature,
// which its typed example needs (the workspace's `cargo test` has it on).
#[cfg(all(doctest, feature = "typed"))]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

mod capabilities;
mod cgroup;
mod command;
mod diagnose;
mod dispatch;
mod error;
mod fork_server;
mod namespaces;
mod registry;
mod rlimit;
mod seccomp;
mod sys;
#[cfg(feature = "typed")]
mod typed;
mod without_exec;

pub use cgroup::{Cgroup, Controller, MountedHierarchy};
pub use command::{Child, Command, IdMapHelpers, Stdio, SubordinateIds, SubordinateRange};
pub use dispatch::{
    EXIT_DUPLICATE_ENTRY, EXIT_PANIC, EXIT_UNKNOWN_ENTRY, dispatch, hide_arguments,
};
pub use error::{Error, Step};
pub use fork_server::ForkServer;
pub use namespaces::{IdMap, Namespaces};
pub use registry::{Entry, entries, lookup};
// Limits and privileges (issue #13).
pub use capabilities::{Capabilities, Capability, CapabilitySet, UnknownCapability};
pub use rlimit::{RLIM_INFINITY, Resource, UnknownResource};
pub use seccomp::{ArgCondition, SeccompAction, SeccompFilter, SeccompProgram};
#[cfg(feature = "typed")]
pub use typed::{
    EXIT_NOT_A_TYPED_CALL, Pool, TypedChild, TypedCommand, TypedEntry, TypedOutput, call,
};

/// Registers a function as an entry that [`Command`] can start by name.
///
/// `#[reexec::entry("name")]` registers the function under `name`; `#[reexec::entry]`
/// uses the function's own name. The function takes no arguments and returns anything
/// that `main` may return — `()`, [`ExitCode`](std::process::ExitCode),
/// `Result<(), E: Debug>`, any [`Termination`](std::process::Termination) — or `!`.
/// It reads its arguments with [`std::env::args`] like `main` does.
///
/// ```
/// use std::process::ExitCode;
///
/// #[reexec::entry("exit-seven")]
/// fn exit_seven() -> ExitCode {
///     ExitCode::from(7)
/// }
///
/// #[reexec::entry]
/// fn greet() {
///     let who = std::env::args().nth(1).unwrap_or_default();
///     println!("hello {who}");
/// }
/// # fn main() {}
/// ```
///
/// A crate that re-exports `reexec` names its copy with `crate = path`:
///
/// ```
/// # use reexec as my_reexec;
/// #[reexec::entry("from-a-wrapper", crate = my_reexec)]
/// fn wrapped() {}
/// # fn main() {}
/// ```
pub use reexec_macros::entry;

/// Wraps `main` so that a re-executed child runs its entry instead, before anything in
/// `main` — attributes such as `#[tokio::main]` included — starts.
///
/// `main` keeps its attributes and any signature `main` accepts. A process started for
/// an entry exits with the entry's status and never reaches the body.
///
/// ```
/// reexec::main! {
///     fn main() {
///         println!("only the original process prints this");
///     }
/// }
/// ```
///
/// With a runtime, the attribute goes inside:
///
/// ```no_run
/// reexec::main! {
///     #[tokio::main]
///     async fn main() -> std::io::Result<()> {
///         Ok(())
///     }
/// }
/// ```
#[macro_export]
macro_rules! main {
    (
        $(#[$attr:meta])*
        $vis:vis async fn main() $(-> $ret:ty)? $body:block
    ) => {
        $(#[$attr])*
        #[doc(hidden)]
        async fn __reexec_user_main() $(-> $ret)? $body

        fn main() -> ::std::process::ExitCode {
            if let ::std::option::Option::Some(code) = $crate::__private::dispatch_status() {
                return code;
            }
            #[allow(unreachable_code)]
            $crate::__private::report(__reexec_user_main())
        }
    };
    (
        $(#[$attr:meta])*
        $vis:vis fn main() $(-> $ret:ty)? $body:block
    ) => {
        $(#[$attr])*
        #[doc(hidden)]
        fn __reexec_user_main() $(-> $ret)? $body

        fn main() -> ::std::process::ExitCode {
            if let ::std::option::Option::Some(code) = $crate::__private::dispatch_status() {
                return code;
            }
            #[allow(unreachable_code)]
            $crate::__private::report(__reexec_user_main())
        }
    };
}

// What generated code needs, under paths that never depend on the user's imports.
#[doc(hidden)]
pub mod __private {
    pub use crate::dispatch::dispatch_status;
    pub use crate::registry::{ENTRIES, Entry};
    #[cfg(feature = "typed")]
    pub use crate::typed::serve;
    pub use linkme;
    pub use std::process::{ExitCode, Termination};

    #[cfg(feature = "typed")]
    pub use crate::typed::{Decoder, Encoder, input_type, output_type};

    /// Turns what `main` or an entry returned into its exit status, printing an `Err` as
    /// `main` does.
    pub fn report<T: Termination>(value: T) -> ExitCode {
        value.report()
    }
}
