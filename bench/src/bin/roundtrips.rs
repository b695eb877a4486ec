//! The Rust side of the benchmark's peer rows (BENCHMARKS.md, items 7, 12 and 13): COUNT
//! re-exec round trips from a `#[tokio::main]` program, as a user of `reexec` would write
//! it. Its Go twin is `bench/go/roundtrips/main.go` (moby's `pkg/reexec`); both take the
//! same arguments, and `reexec-bench` times each whole process, alternating them.
//!
//! ```text
//! roundtrips plain COUNT     entries that return at once
//! roundtrips ns COUNT        in new user (root mapped), mount, UTS, IPC, PID and net
//!                            namespaces; the entry sets the hostname
//! roundtrips --fork-server plain|ns COUNT
//!                            the same, each child started by the fork server
//!                            (`reexec::ForkServer`) instead of an execve (item 12)
//! roundtrips posix-spawn COUNT PATH
//!                            COUNT `posix_spawn`s of PATH, each waited for: the floor a
//!                            fork-server round trip is held to (item 13)
//! ```

use std::ffi::CString;
use std::process::ExitCode;

use reexec::Namespaces;

#[reexec::entry("rt-return")]
fn returns() {}

#[reexec::entry("rt-hostname")]
fn sets_the_hostname() -> ExitCode {
    match nix::unistd::sethostname("roundtrip") {
        Ok(()) => ExitCode::SUCCESS,
        Err(errno) => {
            eprintln!("sethostname: {errno}");
            ExitCode::FAILURE
        }
    }
}

/// What the program's round trips are.
enum Mode {
    /// Entries that return at once.
    Plain,
    /// Entries in new namespaces that set the hostname.
    Namespaced,
    /// `posix_spawn` of this program, not a re-exec.
    PosixSpawn(CString),
}

const USAGE: &str =
    "usage: roundtrips [--fork-server] plain|ns COUNT | roundtrips posix-spawn COUNT PATH";

reexec::main! {
    fn main() -> ExitCode {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let (fork_server, args) = match args.split_first() {
            Some((flag, rest)) if flag == "--fork-server" => (true, rest),
            _ => (false, args.as_slice()),
        };
        let (mode, count) = match args {
            [mode, count] if mode == "plain" => (Mode::Plain, count),
            [mode, count] if mode == "ns" => (Mode::Namespaced, count),
            [mode, count, path] if mode == "posix-spawn" && !fork_server => {
                match CString::new(path.as_str()) {
                    Ok(path) => (Mode::PosixSpawn(path), count),
                    Err(error) => return usage(&format!("PATH: {error}")),
                }
            }
            _ => return usage(USAGE),
        };
        let count = match count.parse::<usize>() {
            Ok(count) => count,
            Err(error) => return usage(&format!("COUNT: {error}")),
        };
        // Before tokio's runtime exists: the server must be started while the program
        // has one thread (reexec::ForkServer, "Threads and the death signal").
        if fork_server {
            if let Err(error) = reexec::ForkServer::start() {
                eprintln!("starting the fork server: {error}");
                return ExitCode::FAILURE;
            }
        }
        let status = round_trips(&mode, count, fork_server);
        // Waits for the server, so that its own page faults count in the run's.
        reexec::ForkServer::stop();
        status
    }
}

#[tokio::main]
async fn round_trips(mode: &Mode, count: usize, fork_server: bool) -> ExitCode {
    if let Mode::PosixSpawn(path) = mode {
        return posix_spawns(path, count);
    }
    for round in 0..count {
        let mut command = if let Mode::Namespaced = mode {
            let mut command = reexec::Command::new("rt-hostname");
            command
                .namespaces(
                    Namespaces::USER
                        | Namespaces::MOUNT
                        | Namespaces::UTS
                        | Namespaces::IPC
                        | Namespaces::PID
                        | Namespaces::NET,
                )
                .map_root_to_caller();
            command
        } else {
            reexec::Command::new("rt-return")
        };
        command.fork_server(fork_server);
        match command.status() {
            Ok(status) if status.success() => {}
            Ok(status) => return failed(round, &status.to_string()),
            Err(error) => return failed(round, &error.to_string()),
        }
    }
    ExitCode::SUCCESS
}

/// COUNT `posix_spawn`s of `path`, each waited for, with no file actions or attributes
/// and an empty environment: what a C program starting a small helper does.
fn posix_spawns(path: &CString, count: usize) -> ExitCode {
    use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, posix_spawn};
    use nix::sys::wait::{WaitStatus, waitpid};

    let (actions, attributes) = match (PosixSpawnFileActions::init(), PosixSpawnAttr::init()) {
        (Ok(actions), Ok(attributes)) => (actions, attributes),
        (Err(error), _) | (_, Err(error)) => {
            return failed(0, &format!("posix_spawn setup: {error}"));
        }
    };
    let argv = [path.as_c_str()];
    let envp: [&std::ffi::CStr; 0] = [];
    for round in 0..count {
        let pid = match posix_spawn(path.as_c_str(), &actions, &attributes, &argv, &envp) {
            Ok(pid) => pid,
            Err(error) => return failed(round, &format!("posix_spawn: {error}")),
        };
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, 0)) => {}
            Ok(status) => return failed(round, &format!("{status:?}")),
            Err(error) => return failed(round, &format!("waitpid: {error}")),
        }
    }
    ExitCode::SUCCESS
}

fn usage(message: &str) -> ExitCode {
    eprintln!("{message}");
    ExitCode::from(2)
}

fn failed(round: usize, why: &str) -> ExitCode {
    eprintln!("round trip {round}: {why}");
    ExitCode::FAILURE
}
