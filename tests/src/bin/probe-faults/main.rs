//! Load and faults for `reexec::Command`: spawns from many threads under locks, allocation
//! and signal storms; parents killed in the middle of a spawn; children killed by signals;
//! descriptor hygiene under concurrency. Prints what it saw as `key=value` lines, which
//! tests/tests/faults.rs reads; RELIABILITY.md describes each mode and its figures.
//!
//! ```text
//! probe-faults load THREADS PER_THREAD        16 threads × 1250 is the full load
//! probe-faults eintr THREADS PER_THREAD       signal storm without SA_RESTART
//! probe-faults fd-hygiene THREADS PER_THREAD  what children hold, before and after exec
//! probe-faults signals                        children killed by signals
//! probe-faults sweep ROUNDS THREADS           parents SIGKILLed at spread-out moments
//! probe-faults kill-at POINT KIND             a parent killed at one chosen point
//! probe-faults can-userns                     may this user create the namespaces?
//! ```
//!
//! The modes are in the modules below: [`concurrent`] (load, eintr, fd-hygiene), [`signals`]
//! and [`killed`] (sweep, kill-at); [`spawns`] is the spawn of each kind they share. What
//! any probe may use — the stress runner, /proc, seccomp and ptrace — is in the library.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use nix::sys::signal::Signal;
use reexec_tests::faults::default_and_unblock;
use reexec_tests::open_fds;

mod concurrent;
mod killed;
mod signals;
mod spawns;

/// `exit-with CODE TOKEN`: prints the token and its pid, then exits with CODE.
#[reexec::entry("exit-with")]
fn exit_with() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let code: u8 = args
        .next()
        .and_then(|code| code.parse().ok())
        .unwrap_or(255);
    println!("token={}", args.next().unwrap_or_default());
    println!("pid={}", std::process::id());
    ExitCode::from(code)
}

/// Copies stdin to stdout.
#[reexec::entry("cat")]
fn cat() -> std::io::Result<()> {
    let mut input = Vec::new();
    std::io::stdin().read_to_end(&mut input)?;
    std::io::stdout().write_all(&input)
}

/// Sleeps long enough that ending any other way than by a signal is a failure.
#[reexec::entry("sleeper")]
fn sleeper() -> ExitCode {
    std::thread::sleep(Duration::from_secs(30));
    ExitCode::from(33)
}

/// `wait-for-signal [SIG]`: puts SIG back to its default action (an inherited SIG_IGN
/// would keep it from killing us), says `ready`, and sleeps.
#[reexec::entry("wait-for-signal")]
fn wait_for_signal() -> ExitCode {
    if let Some(signal) = std::env::args().nth(1) {
        default_and_unblock(Signal::try_from(signal.parse::<i32>().unwrap()).unwrap());
    }
    println!("ready");
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(30));
    ExitCode::from(33)
}

/// `raise SIG`: sends SIG to itself with its default action; `abort` aborts.
#[reexec::entry("raise")]
fn raise() -> ExitCode {
    let signal: String = std::env::args().nth(1).unwrap_or_default();
    if signal == "abort" {
        std::process::abort();
    }
    let signal = Signal::try_from(signal.parse::<i32>().unwrap()).unwrap();
    default_and_unblock(signal);
    nix::sys::signal::raise(signal).unwrap();
    ExitCode::from(99)
}

/// Prints the descriptors this process has.
#[reexec::entry("list-fds")]
fn list_fds() {
    println!("fds={}", open_fds(false).join(","));
}

reexec::main! {
    fn main() {
        reexec_tests::fork_server::use_fork_server_if_asked();
        let args: Vec<String> = std::env::args().skip(1).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let number = |text: &str| -> usize { text.parse().expect("a number") };
        match args.as_slice() {
            ["load", threads, per_thread] => concurrent::load(number(threads), number(per_thread)),
            ["eintr", threads, per_thread] => concurrent::eintr(number(threads), number(per_thread)),
            ["fd-hygiene", threads, per_thread] => {
                concurrent::fd_hygiene(number(threads), number(per_thread))
            }
            ["can-userns"] => concurrent::can_userns(),
            ["signals"] => signals::signals(),
            ["sweep", rounds, threads] => killed::sweep(number(rounds), threads),
            ["spawn-loop", threads] => killed::spawn_loop(number(threads)),
            ["kill-at", point, kind] => killed::kill_at(point, kind),
            ["die-at", point, kind] => killed::die_at(point, kind),
            other => {
                eprintln!("probe-faults: unknown mode {other:?}");
                std::process::exit(2);
            }
        }
    }
}
