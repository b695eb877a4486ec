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
//! # Platform support
//!
//! | platform | support |
//! |---|---|
//! | Linux (glibc or musl), x86_64 and aarch64 | everything |
//! | other Unix, Windows | not supported: the crate relies on `/proc/self/exe` and `clone(2)` |
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
//! [linkme]: https://docs.rs/linkme

#![doc(test(attr(deny(warnings))))]

extern crate self as reexec;

// The README's examples are compiled and run as doctests too.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

mod command;
mod diagnose;
mod dispatch;
mod error;
mod namespaces;
mod registry;
mod sys;

pub use command::{Child, Command, Stdio};
pub use dispatch::{EXIT_DUPLICATE_ENTRY, EXIT_PANIC, EXIT_UNKNOWN_ENTRY, dispatch};
pub use error::{Error, Step};
pub use namespaces::{IdMap, Namespaces};
pub use registry::{Entry, entries, lookup};

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
    pub use linkme;
    pub use std::process::{ExitCode, Termination};

    /// Turns what `main` or an entry returned into its exit status, printing an `Err` as
    /// `main` does.
    pub fn report<T: Termination>(value: T) -> ExitCode {
        value.report()
    }
}
