//! Writes the 10,000 entries that `src/bin/dispatch-many.rs` includes: a binary with that
//! many registered names shows what dispatch costs at start-up when the table is large.

use std::fmt::Write as _;
use std::path::PathBuf;

/// How many entries `dispatch-many` registers.
const MANY: usize = 10_000;

fn main() {
    let mut code = String::new();
    for index in 0..MANY {
        writeln!(
            code,
            "#[reexec::entry(\"many-{index:05}\")]\nfn many_{index:05}() {{}}"
        )
        .unwrap();
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("many_entries.rs");
    std::fs::write(out, code).unwrap();
    println!("cargo::rerun-if-changed=build.rs");
}
