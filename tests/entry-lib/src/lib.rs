//! Entries defined in a library, to prove that a binary depending on it finds them when it
//! only names the crate (`use reexec_entry_lib as _;`).

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

/// A private module nothing outside uses: the case rust-lang/rust#47384 once dropped.
mod nested {
    use std::process::ExitCode;

    #[reexec::entry("nested-in-another-crate")]
    fn nested_in_another_crate() -> ExitCode {
        ExitCode::from(43)
    }
}
