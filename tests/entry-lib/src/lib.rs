//! Entries defined in a library, to prove that a binary depending on it finds them.

use std::process::ExitCode;

/// Exits with 42 and prints who it is, so a test can tell it ran.
#[reexec::entry("from-another-crate")]
fn from_another_crate() -> ExitCode {
    println!(
        "entry from reexec-entry-lib, args {:?}",
        std::env::args().skip(1).collect::<Vec<_>>()
    );
    ExitCode::from(42)
}

/// Something for the binary to name, so the linker keeps this crate's object file and its
/// entries (see "Entries in other crates" in the `reexec` docs).
pub fn link() {}
