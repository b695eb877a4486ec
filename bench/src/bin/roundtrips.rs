//! The Rust side of the benchmark's peer rows (BENCHMARKS.md, item 7): COUNT re-exec
//! round trips from a `#[tokio::main]` program, as a user of `reexec` would write it. Its
//! Go twin is `bench/go/roundtrips/main.go` (moby's `pkg/reexec`); both take the same
//! arguments, and `reexec-bench` times each whole process, alternating them.
//!
//! ```text
//! roundtrips plain COUNT   entries that return at once
//! roundtrips ns COUNT      in new user (root mapped), mount, UTS, IPC, PID and net
//!                          namespaces; the entry sets the hostname
//! ```

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

reexec::main! {
    #[tokio::main]
    async fn main() -> ExitCode {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let (namespaced, count) = match args.as_slice() {
            [mode, count] if mode == "plain" || mode == "ns" => match count.parse::<usize>() {
                Ok(count) => (mode == "ns", count),
                Err(error) => return usage(&format!("COUNT: {error}")),
            },
            _ => return usage("usage: roundtrips plain|ns COUNT"),
        };
        for round in 0..count {
            let mut command = if namespaced {
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
            match command.status() {
                Ok(status) if status.success() => {}
                Ok(status) => return failed(round, &status.to_string()),
                Err(error) => return failed(round, &error.to_string()),
            }
        }
        ExitCode::SUCCESS
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!("{message}");
    ExitCode::from(2)
}

fn failed(round: usize, why: &str) -> ExitCode {
    eprintln!("round trip {round}: {why}");
    ExitCode::FAILURE
}
