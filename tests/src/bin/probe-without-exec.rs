//! Spawns whose child is a copy of this probe (`reexec::Command::without_exec`), in the
//! ways `tests/tests/without_exec.rs` asks for; prints what each child saw as
//! `key=value` lines. Every command names the entry `copy-or-entry`, which the child runs
//! only when the spawn re-executed instead.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};

use reexec::{Command, Namespaces, SeccompAction, SeccompFilter, Step};
use reexec_tests::{open_fds, print_status, step_name};

/// Set by `main` before each spawn: a copy of the probe sees it, a re-executed child
/// (which never ran `main`) sees 0.
static SET_BY_MAIN: AtomicU32 = AtomicU32::new(0);

const ENTRY: &str = "copy-or-entry";

/// What runs when the spawn re-executed: says so, with the arguments it got.
#[reexec::entry("copy-or-entry")]
fn copy_or_entry() -> ExitCode {
    println!("ran=entry");
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    println!("args={}", joined(&args));
    ExitCode::SUCCESS
}

/// The copy's view of itself: what ran, its arguments, environment and working directory.
fn report(args: &[OsString]) -> ExitCode {
    println!("ran=body");
    println!("set_by_main={}", SET_BY_MAIN.load(Ordering::Relaxed));
    println!("args={}", joined(args));
    for key in ["WX_SET", "WX_REMOVED", "REEXEC_ENTRY", "ONLY"] {
        let value = std::env::var_os(key);
        let shown = value.map_or("unset".into(), |value| value.to_string_lossy().into_owned());
        println!("env_{key}={shown}");
    }
    println!("env_count={}", std::env::vars_os().count());
    // What others see of it: the command's environment, none of the caller's.
    let shown = std::fs::read("/proc/self/environ").unwrap();
    let shows = |pair: &str| {
        shown
            .split(|&byte| byte == 0)
            .any(|item| item == pair.as_bytes())
    };
    println!("proc_environ_callers={}", shows("WX_REMOVED=here"));
    println!("proc_environ_only={}", shows("ONLY=this"));
    // Its command line, to others and to std: the entry's name, none of the caller's
    // arguments (whatever is left in the area must be zeros, shown as nothing here).
    println!("proc_cmdline={}", reexec_tests::procfs::own_cmdline());
    println!(
        "std_args={}",
        joined(&std::env::args_os().collect::<Vec<_>>())
    );
    println!("cwd={}", std::env::current_dir().unwrap().display());
    println!("ppid={}", nix::unistd::getppid());
    let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
    println!("comm={}", comm.trim_end());
    println!("pid={}", std::process::id());
    ExitCode::SUCCESS
}

fn joined(args: &[OsString]) -> String {
    let args: Vec<_> = args.iter().map(|arg| arg.to_string_lossy()).collect();
    args.join("|")
}

/// The disposition of `signal` in this process: default, ignore or handled.
fn disposition(signal: nix::sys::signal::Signal) -> &'static str {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, sigaction};
    let probe = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: sets the default for a moment and puts back what was there; no other
    // thread runs in the copy.
    let old = unsafe { sigaction(signal, &probe) }.unwrap();
    // SAFETY: as above: restores the disposition just read.
    unsafe { sigaction(signal, &old) }.unwrap();
    match old.handler() {
        SigHandler::SigDfl => "default",
        SigHandler::SigIgn => "ignore",
        _ => "handled",
    }
}

extern "C" fn on_usr1(_: i32) {}

/// `signals`: handles SIGUSR1 and ignores SIGUSR2, then prints what a copy finds of
/// them, of SIGPIPE (which std's start ignores) and of its signal mask.
fn signals() -> Result<(), reexec::Error> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let handled = SigAction::new(
        SigHandler::Handler(on_usr1),
        SaFlags::empty(),
        SigSet::empty(),
    );
    let ignored = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: a handler that does nothing; SIG_IGN for SIGUSR2.
    unsafe {
        sigaction(Signal::SIGUSR1, &handled).unwrap();
        sigaction(Signal::SIGUSR2, &ignored).unwrap();
    }
    let output = without_exec()
        .without_exec(|_: &[OsString]| {
            println!("usr1={}", disposition(Signal::SIGUSR1));
            println!("usr2={}", disposition(Signal::SIGUSR2));
            println!("pipe={}", disposition(Signal::SIGPIPE));
            let blocked = SigSet::thread_get_mask().unwrap();
            println!("blocked_usr1={}", blocked.contains(Signal::SIGUSR1));
            ExitCode::SUCCESS
        })
        .output()?;
    print_output(&output);
    Ok(())
}

/// `signals` in a re-executed child (see the mode `signals-under`), which prints the
/// copy's lines and its status and ends with code 0.
#[reexec::entry("signals-in-a-copy")]
fn signals_in_a_copy() -> Result<(), reexec::Error> {
    signals()
}

fn without_exec() -> Command {
    SET_BY_MAIN.store(42, Ordering::Relaxed);
    let mut command = Command::new(ENTRY);
    command.without_exec(report);
    command
}

/// Prints the status and what the child wrote.
fn print_output(output: &std::process::Output) {
    print_status(output.status);
    print!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
}

reexec::main! {
    fn main() -> Result<(), reexec::Error> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mode = args.first().map(String::as_str).unwrap_or("");
        match mode {
            "copy" => {
                println!("probe_pid={}", std::process::id());
                let output = without_exec()
                    .args(["two words", "ünïcode", ""])
                    .env("WX_SET", "set-value")
                    .env_remove("WX_REMOVED")
                    .current_dir("/tmp")
                    .output()?;
                print_output(&output);
            }
            "env-clear" => {
                let output = without_exec().env_clear().env("ONLY", "this").output()?;
                print_output(&output);
            }
            "copies" => {
                // What copies_the_caller answers, and what each spawn then did.
                let mut one_thread = without_exec();
                println!("copies_one_thread={}", one_thread.copies_the_caller());
                print_output(&one_thread.output()?);
                let plain = Command::new(ENTRY);
                println!("copies_no_body={}", plain.copies_the_caller());
                let mut with_capabilities = without_exec();
                with_capabilities.capabilities(Some(reexec::Capabilities::none()));
                println!(
                    "copies_with_capabilities={}",
                    with_capabilities.copies_the_caller()
                );
                let (stop, stopped) = std::sync::mpsc::channel::<()>();
                let thread = std::thread::spawn(move || stopped.recv());
                println!("copies_two_threads={}", without_exec().copies_the_caller());
                drop(stop);
                let _ = thread.join();
            }
            "threads" => {
                // A second thread, alive at the spawn: the copy can't be made.
                let (stop, stopped) = std::sync::mpsc::channel::<()>();
                let thread = std::thread::spawn(move || stopped.recv());
                let output = without_exec().args(["a", "b"]).output()?;
                print_output(&output);
                drop(stop);
                let _ = thread.join();
            }
            "exit-code" => {
                let status = without_exec()
                    .without_exec(|args: &[OsString]| {
                        ExitCode::from(args[0].to_str().unwrap().parse::<u8>().unwrap())
                    })
                    .arg(&args[1])
                    .status()?;
                print_status(status);
            }
            "panic" => {
                let output = without_exec()
                    .without_exec(|_: &[OsString]| panic!("deliberate panic in a copy"))
                    .output()?;
                print_status(output.status);
                let stderr = String::from_utf8_lossy(&output.stderr);
                println!("panic_message={}", stderr.contains("deliberate panic in a copy"));
            }
            "buffered" => {
                // Left in the buffers at the spawn: written once, by the caller.
                print!("before-the-spawn ");
                let output = without_exec()
                    .without_exec(|_: &[OsString]| {
                        print!("from-the-copy");
                        ExitCode::SUCCESS
                    })
                    .output()?;
                println!();
                println!("child_stdout={}", String::from_utf8_lossy(&output.stdout));
            }
            "fds" => {
                // Not close-on-exec, and not given: a re-executed child would not have it.
                let file = std::fs::File::open("/dev/null").unwrap();
                let inherited = nix::unistd::dup(&file).unwrap();
                let given = OwnedFd::from(std::fs::File::open("/dev/zero").unwrap());
                println!("inherited_fd={}", inherited.as_raw_fd());
                let output = without_exec()
                    .without_exec(|_: &[OsString]| {
                        println!("fds={}", open_fds(false).join(","));
                        let target = std::fs::read_link("/proc/self/fd/7").unwrap();
                        println!("fd7={}", target.display());
                        ExitCode::SUCCESS
                    })
                    .fd(7, given)
                    .output()?;
                print_output(&output);
                drop(inherited);
            }
            "signals" => signals()?,
            "signals-under" => {
                // The same, in a re-executed child of this probe under a seccomp filter
                // that refuses clone(2), or clone3, with ENOSYS: the copy can then only be
                // made the other way.
                let mode = args.get(1).map_or("", String::as_str);
                let mut command = Command::new("signals-in-a-copy");
                if let Some(program) = reexec_tests::faults::clone_refused(mode)? {
                    command.seccomp(program);
                }
                print_output(&command.output()?);
            }
            "namespaces" => {
                let output = without_exec()
                    .without_exec(|_: &[OsString]| {
                        nix::unistd::sethostname("in-a-copy").unwrap();
                        println!("hostname={}", nix::unistd::gethostname().unwrap().to_string_lossy());
                        println!("uid={}", nix::unistd::getuid());
                        println!("gid={}", nix::unistd::getgid());
                        println!("pid={}", std::process::id());
                        println!("dumpable={}", nix::sys::prctl::get_dumpable().unwrap());
                        ExitCode::SUCCESS
                    })
                    .namespaces(reexec_tests::SEED_NAMESPACES)
                    .map_root_to_caller()
                    .output()?;
                print_output(&output);
                println!("host_hostname_kept={}", nix::unistd::gethostname().unwrap() != "in-a-copy");
            }
            "parent-setup" => {
                let mut seen = None;
                let output = without_exec()
                    .namespaces(Namespaces::USER)
                    .map_root_to_caller()
                    .spawn_with_parent_setup(|pid| {
                        seen = Some(pid);
                        Ok(())
                    })?
                    .wait_with_output()?;
                println!("hook_pid={}", seen.unwrap_or(0));
                print_output(&output);
            }
            "seccomp-refuses-exec" => {
                let mut filter = SeccompFilter::new(SeccompAction::Allow);
                filter.rule(nix::libc::SYS_execve, SeccompAction::Errno(nix::libc::EPERM as u16));
                let error = without_exec().seccomp(filter.compile()?).status().unwrap_err();
                println!("step={}", step_name(error.step()));
                println!("ran_nothing={}", !matches!(error.step(), Some(Step::Clone)));
            }
            "missing-cwd" => {
                let error = without_exec().current_dir("/nonexistent/dir").status().unwrap_err();
                println!("step={}", step_name(error.step()));
                // The copy that failed was reaped: no child of ours is left, not even a
                // zombie.
                let left = match nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
                    Err(nix::errno::Errno::ECHILD) => "none".to_owned(),
                    other => format!("{other:?}"),
                };
                println!("children_left={left}");
            }
            "orphan" => {
                // The copy says where it is and waits to be killed with its caller.
                let pid_namespace = args.get(1).is_some_and(|arg| arg == "pid-namespace");
                let mut command = without_exec();
                command.without_exec(|_: &[OsString]| {
                    println!("ready=body");
                    let _ = std::io::stdout().flush();
                    loop {
                        std::thread::sleep(std::time::Duration::from_secs(60));
                    }
                });
                if pid_namespace {
                    command.namespaces(Namespaces::USER | Namespaces::PID).map_root_to_caller();
                }
                let child = command.spawn()?;
                println!("child={}", child.id());
                let _ = std::io::stdout().flush();
                let _ = child.wait_with_output();
            }
            other => {
                eprintln!("probe-without-exec: unknown mode {other:?}");
                std::process::exit(2);
            }
        }
        Ok(())
    }
}
