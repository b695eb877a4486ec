//! One registered entry: the start-up cost of dispatch in the common small case.
//! `reexec-bench` runs it with `--report`.
//!
//! `main` is written by hand, calling `reexec::dispatch()` first as `main!` would, so
//! that the call can be timed.

#[reexec::entry("only-one")]
fn only_one() {}

#[path = "../dispatch_cost.rs"]
mod dispatch_cost;

fn main() {
    dispatch_cost::main();
}
