// Signatures and options that the attribute accepts; run as a binary, it checks each
// entry is registered under the expected name, and runs a few of them.
use std::io;
use std::process::ExitCode;

mod wrapper {
    pub use reexec as runtime;
}

/// Attributes and doc comments stay on the function.
#[reexec::entry("nsInitialisation")]
#[inline(never)]
pub(crate) fn ns_initialisation() -> io::Result<()> {
    Ok(())
}

#[reexec::entry]
fn own_name() {}

#[reexec::entry]
fn r#raw() -> ExitCode {
    ExitCode::from(3)
}

#[reexec::entry("never")]
fn never() -> ! {
    std::process::exit(0)
}

#[reexec::entry("renamed", crate = crate::wrapper::runtime)]
fn renamed() -> Result<(), String> {
    Ok(())
}

#[reexec::entry(crate = ::reexec)]
fn absolute_crate() {}

#[reexec::entry]
#[cfg(any())]
fn compiled_out() {}

// Names that differ only in case, and names of the items the attribute generates: each
// function keeps its own registration and is the one its entry calls.
#[reexec::entry]
fn case() -> ExitCode {
    ExitCode::from(4)
}

#[reexec::entry]
#[allow(non_snake_case)]
fn CASE() -> ExitCode {
    ExitCode::from(5)
}

#[reexec::entry]
#[allow(non_snake_case)]
fn __REEXEC_ENTRY() -> ExitCode {
    ExitCode::from(6)
}

#[reexec::entry]
fn __reexec_run() -> ExitCode {
    ExitCode::from(7)
}

// Dispatches, so that `main` can run the entries above in children.
reexec::main! {
    fn main() {
        // An entry in a function's body.
        #[reexec::entry("in-a-block")]
        fn in_a_block() {}

        // Called directly too: the function is still an ordinary function.
        ns_initialisation().unwrap();
        raw();
        renamed().unwrap();
        absolute_crate();
        // Other crates linked in may add entries of their own: look only for ours.
        for name in [
            "CASE",
            "__REEXEC_ENTRY",
            "__reexec_run",
            "absolute_crate",
            "case",
            "in-a-block",
            "never",
            "nsInitialisation",
            "own_name",
            "raw",
            "renamed",
        ] {
            assert!(reexec::lookup(name).is_some(), "{name} is not registered");
        }
        assert!(reexec::lookup("compiled_out").is_none());
        let entry = reexec::lookup("nsInitialisation").unwrap();
        assert!(entry.file().ends_with("entries.rs"));
        assert_eq!(entry.line(), 11);
        // Each of these runs its own function, not an item of the expansion of the same name.
        let expected = [
            ("case", 4),
            ("CASE", 5),
            ("__REEXEC_ENTRY", 6),
            ("__reexec_run", 7),
        ];
        for (name, code) in expected {
            let status = reexec::Command::new(name).status().unwrap();
            assert_eq!(status.code(), Some(code), "entry {name}");
        }
    }
}
