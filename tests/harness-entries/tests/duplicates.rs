//! A test binary in which two entries share a name: the harness still runs, but every child
//! refuses with status 122, naming both definitions once.

use reexec::Command;
use reexec_harness_entries::{assert_exit_code, describe, harness_lines};

mod one {
    #[reexec::entry("dup-twice")]
    pub(crate) fn first() {}
}

mod other {
    #[reexec::entry("dup-twice")]
    pub(crate) fn second() {}
}

#[reexec::entry("dup-unique")]
fn unique() {
    println!("an entry of a binary with duplicates ran");
}

#[test]
fn every_child_of_a_binary_with_duplicates_refuses_once_with_both_places() {
    for name in ["dup-twice", "dup-unique"] {
        let output = Command::new(name).output().unwrap();
        assert_exit_code(name, &output, reexec::EXIT_DUPLICATE_ENTRY.into());
        assert!(output.stdout.is_empty(), "{name}: {}", describe(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            stderr.matches("registered twice").count(),
            1,
            "{name}: {stderr}"
        );
        assert!(
            stderr.contains("duplicates.rs:8") && stderr.contains("duplicates.rs:13"),
            "{name}: both definitions must be named: {stderr}"
        );
        assert!(harness_lines(&stderr).is_empty(), "{name}: {stderr}");
    }
}
