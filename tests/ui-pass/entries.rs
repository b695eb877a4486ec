// Signatures and options that the attribute accepts; run as a binary, it checks each
// entry is registered under the expected name.
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

fn main() {
    // Called directly too: the function is still an ordinary function.
    ns_initialisation().unwrap();
    raw();
    renamed().unwrap();
    absolute_crate();
    // Other crates linked in may add entries of their own: look only for ours.
    for name in [
        "absolute_crate",
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
}
