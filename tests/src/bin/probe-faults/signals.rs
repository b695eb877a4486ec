//! `signals`: children killed by signals, and what their status says.

use std::io::{BufRead, BufReader};

use nix::libc;
use reexec::{Command, Namespaces, Stdio};
use reexec_tests::SEED_NAMESPACES;
use reexec_tests::status_text;
use reexec_tests::stress::leftovers;

/// `signals`: children ended by signals, sent by the parent or raised by the child, and
/// what their status says.
pub(crate) fn signals() {
    let plain = || Command::new("wait-for-signal");
    let cases: Vec<(&str, Command, i32)> = vec![
        ("plain-sigterm", plain(), libc::SIGTERM),
        ("plain-sigint", plain(), libc::SIGINT),
        ("plain-sighup", plain(), libc::SIGHUP),
        ("plain-sigquit", plain(), libc::SIGQUIT),
        ("plain-sigusr1", plain(), libc::SIGUSR1),
        ("plain-sigusr2", plain(), libc::SIGUSR2),
        ("plain-sigalrm", plain(), libc::SIGALRM),
        ("plain-sigkill", plain(), libc::SIGKILL),
        ("userns-sigint", namespaced_not_pid1(), libc::SIGINT),
        ("userns-sigterm", namespaced_not_pid1(), libc::SIGTERM),
        ("pid1-sigkill", pid1(), libc::SIGKILL),
        // The death signal (SIGTERM): as PID 1 the entry's dispatch has a handler for it.
        ("pid1-sigterm", pid1(), libc::SIGTERM),
    ];
    for (name, mut command, signal) in cases {
        // PID 1 leaves SIGTERM to the handler dispatch installs; everyone else gets the
        // signal back to its default first.
        if !name.starts_with("pid1") {
            command.arg(signal.to_string());
        }
        let result = command
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                let mut line = String::new();
                BufReader::new(child.stdout.take().unwrap())
                    .read_line(&mut line)
                    .unwrap();
                child.signal(signal)?;
                child.wait()
            });
        print_case(name, result);
    }
    for (name, signal) in [
        ("raise-sigsegv", "11"),
        ("raise-sigbus", "7"),
        ("raise-sigfpe", "8"),
        ("raise-sigterm", "15"),
        ("abort", "abort"),
    ] {
        let result = Command::new("raise")
            .arg(signal)
            .stderr(Stdio::null())
            .status();
        print_case(name, result);
    }
    let (zombies, live) = leftovers();
    println!("zombies={zombies}");
    println!("live_children={live}");
}

fn namespaced_not_pid1() -> Command {
    let mut command = Command::new("wait-for-signal");
    command
        .namespaces(Namespaces::USER | Namespaces::MOUNT | Namespaces::UTS)
        .map_root_to_caller();
    command
}

fn pid1() -> Command {
    let mut command = Command::new("wait-for-signal");
    command.namespaces(SEED_NAMESPACES).map_root_to_caller();
    command
}

/// `case=NAME code=N` (or `signal=N`, or `error=…`).
fn print_case(name: &str, result: Result<std::process::ExitStatus, reexec::Error>) {
    match result {
        Ok(status) => println!("case={name} {}", status_text(status)),
        Err(error) => println!("case={name} error={error}"),
    }
}
