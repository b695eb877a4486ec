//! Compile-time checks of `#[reexec::entry]`: every misuse in `ui/` must fail with the
//! message in its `.stderr` snapshot, and everything in `ui-pass/` must build and run.
//!
//! Regenerate the snapshots with `TRYBUILD=overwrite cargo test -p reexec-tests --test ui`,
//! then review the diff like code.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui/*.rs");
    cases.pass("ui-pass/*.rs");
}
