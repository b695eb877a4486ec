//! Spawns entries under `reexec::Command::seccomp` filters and prints, as `key=value`
//! lines, what the entry saw and how the spawn ended.
//!
//! | mode | what it does |
//! |---|---|
//! | `deny NAME ERRNO` | a filter answers NAME with ERRNO; the entry calls NAME |
//! | `deny-among-many NAME ERRNO` | the same, in a filter of 600 more rules whose search jumps far |
//! | `unfiltered NAME` | the entry calls NAME with no filter: the control |
//! | `status` | the entry prints its `Seccomp` and `NoNewPrivs` lines of /proc/self/status |
//! | `other-arch ACTION` | the entry makes x32's getpid (x86_64 only); ACTION `errno` or `default` |
//! | `deny-exec` | a filter refuses execve; `deny-exec-and-exit` also exit_group |
//! | `invalid-program` | an instruction the kernel refuses |

use std::process::ExitCode;

use nix::libc;

use reexec::{ArgCondition, Command, SeccompAction, SeccompFilter, SeccompProgram};
use reexec_tests::{or_none, print_status, step_name};

/// The errno's name, for the lines the tests read.
fn errno_name(errno: i32) -> String {
    match errno {
        libc::EPERM => "EPERM".into(),
        libc::ENOSYS => "ENOSYS".into(),
        libc::EXDEV => "EXDEV".into(),
        libc::EFAULT => "EFAULT".into(),
        other => other.to_string(),
    }
}

/// Makes system call `number` with no argument and prints `result=ok` or
/// `result=ERRNO`.
fn call_and_print(number: i64) {
    // SAFETY: the calls the tests name here take no argument, or read none when given 0s
    // (getppid, getpid, uname with a NULL buffer: EFAULT).
    let result = unsafe { libc::syscall(number, 0, 0, 0) };
    if result == -1 {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        println!("result={}", errno_name(errno));
    } else {
        println!("result=ok");
    }
}

#[reexec::entry("call-by-name")]
fn call_by_name() {
    let name = std::env::args().nth(1).unwrap_or_default();
    call_and_print(SeccompFilter::syscall_number(&name).expect("a known name"));
}

#[reexec::entry("call-x32-getpid")]
fn call_x32_getpid() {
    call_and_print(0x4000_0000 | libc::SYS_getpid);
}

#[reexec::entry("filter-status")]
fn filter_status() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    for line in status.lines() {
        if let Some((key @ ("Seccomp" | "NoNewPrivs"), value)) = line.split_once(':') {
            println!("{key}={}", value.trim());
        }
    }
}

/// Spawns `entry` with `args` under `filter` (none for `None`) and prints how it went.
fn spawn(entry: &str, args: &[&str], filter: Option<SeccompProgram>) {
    let mut command = Command::new(entry);
    command.args(args);
    if let Some(filter) = filter {
        command.seccomp(filter);
    }
    match command.output() {
        Ok(output) => {
            print_status(output.status);
            print!("{}", String::from_utf8_lossy(&output.stdout));
        }
        Err(error) => {
            println!("step={}", step_name(error.step()));
            println!("errno={}", or_none(error.raw_os_error().map(errno_name)));
            println!("error={error}");
        }
    }
}

fn number(name: &str) -> i64 {
    SeccompFilter::syscall_number(name).expect("a known name")
}

fn main() -> Result<ExitCode, reexec::Error> {
    reexec::dispatch();
    reexec_tests::fork_server::use_fork_server_if_asked();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |index: usize| args.get(index).map(String::as_str).unwrap_or("");
    match arg(0) {
        "deny" => {
            let errno: u16 = arg(2).parse().expect("an errno");
            let filter = SeccompFilter::new(SeccompAction::Allow)
                .rule(number(arg(1)), SeccompAction::Errno(errno))
                .compile()?;
            spawn("call-by-name", &[arg(1)], Some(filter));
        }
        "deny-among-many" => {
            let errno: u16 = arg(2).parse().expect("an errno");
            // Rules on every other number from 2000, two actions in turn: a search too
            // long for a comparison's 8-bit jumps, which takes BPF_JA ones. NAME's first
            // rule tests an argument the call does not have (it passes 0s), so its call
            // jumps on to the rules, and the next one decides.
            let mut filter = SeccompFilter::new(SeccompAction::Allow);
            for step in 0..600 {
                let errno = if step % 2 == 0 {
                    libc::ENOSYS
                } else {
                    libc::EXDEV
                };
                filter.rule(2000 + 2 * step, SeccompAction::Errno(errno as u16));
            }
            filter
                .rule_if(
                    number(arg(1)),
                    ArgCondition::equal(0, 1),
                    SeccompAction::Trap,
                )
                .rule(number(arg(1)), SeccompAction::Errno(errno));
            let program = filter.compile()?;
            let ja = libc::BPF_JMP | libc::BPF_JA;
            let jumps = program
                .instructions()
                .iter()
                .filter(|instruction| u32::from(instruction.code) == ja)
                .count();
            println!("ja={jumps}");
            spawn("call-by-name", &[arg(1)], Some(program));
        }
        "unfiltered" => spawn("call-by-name", &[arg(1)], None),
        "status" => {
            let filter = SeccompFilter::new(SeccompAction::Allow).compile()?;
            spawn("filter-status", &[], Some(filter));
        }
        "other-arch" => {
            let mut filter = SeccompFilter::new(SeccompAction::Allow);
            if arg(1) == "errno" {
                filter.other_architectures(SeccompAction::Errno(libc::EXDEV as u16));
            }
            spawn("call-x32-getpid", &[], Some(filter.compile()?));
        }
        "other-arch-unfiltered" => spawn("call-x32-getpid", &[], None),
        mode @ ("deny-exec" | "deny-exec-and-exit") => {
            let mut filter = SeccompFilter::new(SeccompAction::Allow);
            filter.rule(libc::SYS_execve, SeccompAction::Errno(libc::EPERM as u16));
            if mode == "deny-exec-and-exit" {
                filter.rule(
                    libc::SYS_exit_group,
                    SeccompAction::Errno(libc::EPERM as u16),
                );
            }
            spawn("filter-status", &[], Some(filter.compile()?));
        }
        "invalid-program" => {
            // An opcode classic BPF does not have.
            let invalid = libc::sock_filter {
                code: 0xffff,
                jt: 0,
                jf: 0,
                k: 0,
            };
            let program = SeccompProgram::from_instructions(vec![invalid])?;
            spawn("filter-status", &[], Some(program));
        }
        other => {
            eprintln!("probe-seccomp: unknown mode {other:?}");
            return Ok(ExitCode::from(2));
        }
    }
    Ok(ExitCode::SUCCESS)
}
