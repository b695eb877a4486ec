//! Times the first `reexec::dispatch()` of a process whose `argv[0]` names no entry —
//! the work `main!` does at every ordinary start, before `main`'s body.
//!
//! Only the first call counts: dispatch decides once per process, and later calls
//! return at once.

use std::time::Instant;

use nix::sys::resource::{UsageWho, getrusage};

/// Dispatches, timing it; with `--report`, prints `entries=… first_call_ns=… faults=…`,
/// the last being the page faults the call took: a first call runs on code and data
/// this process has not touched yet, and here each fault costs about as much as all
/// the instructions of a small dispatch.
pub(crate) fn main() {
    let faults = || getrusage(UsageWho::RUSAGE_SELF).map_or(0, |usage| usage.minor_page_faults());
    // The first clock read faults in the vDSO's data page: not dispatch's cost.
    let _ = std::hint::black_box(Instant::now());
    let faults_before = faults();
    let start = Instant::now();
    reexec::dispatch();
    let first_call = start.elapsed();
    let faults_during = faults() - faults_before;
    if std::env::args().nth(1).as_deref() == Some("--report") {
        println!(
            "entries={} first_call_ns={} faults={faults_during}",
            reexec::entries().len(),
            first_call.as_nanos()
        );
    }
}
