//! Times the first `reexec::dispatch()` of a process whose `argv[0]` names no entry —
//! the work `main!` does at every ordinary start, before `main`'s body.
//!
//! Only the first call counts: dispatch decides once per process, and later calls
//! return at once.

use std::time::Instant;

/// Dispatches, timing it; with `--report`, prints `entries=… first_call_ns=…`.
pub(crate) fn main() {
    let start = Instant::now();
    reexec::dispatch();
    let first_call = start.elapsed();
    if std::env::args().nth(1).as_deref() == Some("--report") {
        println!(
            "entries={} first_call_ns={}",
            reexec::entries().len(),
            first_call.as_nanos()
        );
    }
}
