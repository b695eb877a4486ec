//! Running the probes' suites again with every spawn going through the fork server.
//!
//! `tests/tests/fork_server.rs` compiles the suites of `reexec.rs`, `faults.rs`, `fds.rs`,
//! `namespaces.rs`, `limits.rs`, `seccomp.rs` and `cgroups.rs` once more and sets [`ASK`]
//! in its own environment before any test runs; the probes inherit it and, first thing
//! in `main`, call [`use_fork_server_if_asked`].

/// The variable that asks a probe to start the fork server for every command.
pub const ASK: &str = "REEXEC_TESTS_FORK_SERVER";

/// Whether the tests of this process run their probes through the fork server: the
/// suites compiled again into `tests/tests/fork_server.rs`, for the few checks that
/// differ there.
pub fn suite_goes_through_the_server() -> bool {
    std::env::var_os(ASK).is_some()
}

static ASKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this probe was asked to use the fork server: a probe that starts another
/// probe (`orphans::start_middle`) asks it too.
pub fn asked() -> bool {
    ASKED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Starts the fork server for every command of this probe when its caller asked for it
/// (see the module docs), and takes the variable out of the environment, so that the
/// probe's children see the environment they would see without it. Call it first thing
/// in `main`, while the probe has one thread.
pub fn use_fork_server_if_asked() {
    if std::env::var_os(ASK).is_none() {
        return;
    }
    ASKED.store(true, std::sync::atomic::Ordering::Relaxed);
    // SAFETY: called first thing in `main`, before the probe starts any thread, so no
    // other thread reads or writes the environment meanwhile.
    unsafe { std::env::remove_var(ASK) };
    if let Err(error) = reexec::ForkServer::start_for_every_command() {
        eprintln!("probe: the fork server did not start: {error}");
        std::process::exit(70);
    }
}
