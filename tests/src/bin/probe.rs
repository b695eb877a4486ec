//! A binary that re-executes itself through `reexec` in the ways the tests ask for, and
//! prints what it saw as `key=value` lines.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use reexec::{Command, Stdio};
// Naming the crate is all it takes for its entries to be linked in.
use reexec_entry_lib as _;
use reexec_tests::orphans::orphan_harness;
use reexec_tests::{open_fds, or_none, print_status, step_name};

#[reexec::entry("exit-zero")]
fn exit_zero() {}

/// `kill-the-server-at SERVER MOMENT`: prints `traced=yes` (or `untraceable=WHY`) once
/// it traces the fork server SERVER, then `cloned=PID` once it killed it at MOMENT.
#[reexec::entry("kill-the-server-at")]
fn kill_the_server_at() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [server, moment] = args.as_slice() else {
        return Err(format!("kill-the-server-at SERVER MOMENT, not {args:?}"));
    };
    let server = server.parse().map_err(|_| format!("{server:?}: no pid"))?;
    // Long enough, most times, for the child to have run its entry and ended before the
    // server dies: the caller then takes on a child that is a zombie already.
    let hold = Duration::from_millis(300);
    let cloned =
        reexec_tests::fork_server::kill_the_server_at(server, moment.parse()?, hold, |ready| {
            match ready {
                Ok(()) => println!("traced=yes"),
                Err(why) => println!("untraceable={why}"),
            }
            std::io::stdout().flush().unwrap();
        })?;
    println!("cloned={}", cloned.0);
    println!("by_clone3={}", cloned.1);
    Ok(())
}

/// `signal-window`: with a handler for SIGUSR1 and SIGUSR2 ignored (SIGPIPE is, by
/// std's start), spawns `exit-zero` once per signal and sends it that signal while it
/// waits for its parent, signals blocked, before its execve; prints `SIGNAME=` and how
/// the child ended. A child whose handlers were put back to their defaults dies of
/// SIGUSR1 and SIGPIPE when it unblocks them; one that kept ours would run the handler
/// and go on.
#[reexec::entry("signal-window")]
fn signal_window() -> Result<(), String> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    extern "C" fn goes_on(_: std::ffi::c_int) {}
    let handled = SigAction::new(
        SigHandler::Handler(goes_on),
        SaFlags::empty(),
        SigSet::empty(),
    );
    let ignored = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: a handler that does nothing, and an ignored signal; this process is the
    // probe's re-executed child, which uses neither signal otherwise.
    unsafe {
        sigaction(Signal::SIGUSR1, &handled).map_err(|errno| errno.to_string())?;
        sigaction(Signal::SIGUSR2, &ignored).map_err(|errno| errno.to_string())?;
    }
    for signal in [Signal::SIGUSR1, Signal::SIGPIPE, Signal::SIGUSR2] {
        let status = Command::new("exit-zero")
            .fork_server(false)
            .parent_setup(move |pid| {
                let pid = nix::unistd::Pid::from_raw(pid as i32);
                nix::sys::signal::kill(pid, signal).map_err(std::io::Error::from)
            })
            .status()
            .map_err(|error| error.to_string())?;
        println!("{}={}", signal.as_str(), reexec_tests::status_text(status));
    }
    Ok(())
}

/// `count-a-run PATH`: appends a line to PATH, so that the test counts the runs.
#[reexec::entry("count-a-run")]
fn count_a_run() {
    let path = std::env::args_os().nth(1).expect("count-a-run PATH");
    let mut file = std::fs::File::options()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(b"ran\n").unwrap();
}

#[reexec::entry("exit-seven")]
fn exit_seven() -> ExitCode {
    ExitCode::from(7)
}

#[reexec::entry("fail-with-err")]
fn fail_with_err() -> Result<(), String> {
    Err("deliberate failure".to_owned())
}

#[reexec::entry("panics")]
fn panics() {
    panic!("deliberate panic in an entry");
}

#[reexec::entry("never-returns")]
fn never_returns() -> ! {
    std::process::exit(9)
}

/// Named after the function: the attribute has no name.
#[reexec::entry]
fn default_named() -> ExitCode {
    ExitCode::from(3)
}

#[reexec::entry("echo-args-env")]
fn echo_args_env() {
    for arg in std::env::args_os().skip(1) {
        println!("arg={}", arg.to_string_lossy());
    }
    println!("argv0={}", std::env::args().next().unwrap_or_default());
    for (key, value) in std::env::vars_os() {
        println!("env={}={}", key.to_string_lossy(), value.to_string_lossy());
    }
    println!("cwd={}", std::env::current_dir().unwrap().display());
}

/// Hides its arguments — with a second thread running, when the first is "threaded" —
/// and prints what std's `args()` and /proc/self/cmdline show before and after.
#[reexec::entry("hide-arguments")]
fn hide_arguments() {
    let before: Vec<String> = std::env::args().collect();
    println!("args_before={}", before.join("|"));
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let thread = (before.get(1).map(String::as_str) == Some("threaded"))
        .then(|| std::thread::spawn(move || stopped.recv()));
    println!("hidden={}", reexec::hide_arguments());
    drop(stop);
    if let Some(thread) = thread {
        let _ = thread.join();
    }
    println!(
        "args_after={}",
        std::env::args().collect::<Vec<_>>().join("|")
    );
    println!("cmdline={}", reexec_tests::procfs::own_cmdline());
}

#[reexec::entry("cat")]
fn cat() -> std::io::Result<()> {
    let mut input = Vec::new();
    std::io::stdin().read_to_end(&mut input)?;
    std::io::stdout().write_all(&input)?;
    eprint!("stderr-of-cat");
    Ok(())
}

#[reexec::entry("sleeper")]
fn sleeper() -> ExitCode {
    std::thread::sleep(Duration::from_secs(30));
    // Reaching this means no signal came.
    ExitCode::from(33)
}

#[reexec::entry("list-fds")]
fn list_fds() {
    println!("fds={}", open_fds(false).join(","));
}

/// Prints how many bytes the `PROBE_LARGE_*` variables hold together.
#[reexec::entry("env-size")]
fn env_size() {
    let bytes: usize = std::env::vars_os()
        .filter(|(key, _)| key.to_string_lossy().starts_with("PROBE_LARGE_"))
        .map(|(_, value)| value.len())
        .sum();
    println!("large_env_bytes={bytes}");
}

/// Prints the effective and permitted capability sets, as /proc/self/status shows them.
#[reexec::entry("print-capabilities")]
fn print_capabilities() {
    for (key, name) in [("effective", "CapEff"), ("permitted", "CapPrm")] {
        println!("{key}={}", reexec_tests::procfs::own_status_field(name));
    }
}

/// Leaves text in std's and C's stdout buffers, and registers an atexit handler that
/// writes more, then returns: what of it arrives shows how the child ended.
#[reexec::entry("buffered-then-return")]
fn buffered_then_return() {
    extern "C" fn at_exit() {
        // SAFETY: a C string literal; printf reads nothing else.
        unsafe { nix::libc::printf(c" atexit_ran".as_ptr()) };
    }
    print!("rust_buffered");
    // SAFETY: printf with a format without conversions; atexit with a function that
    // lives as long as the program.
    unsafe {
        nix::libc::printf(c" c_buffered".as_ptr());
        nix::libc::atexit(at_exit);
    }
}

/// `scan-memory PREFIX SUFFIX …`: for each pair, whether PREFIX followed by SUFFIX is
/// anywhere in this process's heap or anonymous writable memory, as `found_N=`. The pairs
/// are never joined here, so only memory that already held them whole can match.
#[reexec::entry("scan-memory")]
fn scan_memory() {
    use std::io::{Seek, SeekFrom};

    let args: Vec<Vec<u8>> = std::env::args().skip(1).map(String::into_bytes).collect();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let mut memory = std::fs::File::open("/proc/self/mem").unwrap();
    let mut found = vec![false; args.len() / 2];
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let anonymous = fields.len() < 6 || fields[5] == "[heap]";
        if fields.get(1) != Some(&"rw-p") || !anonymous {
            continue;
        }
        let (start, end) = fields[0].split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        let mut region = vec![0u8; (end - start) as usize];
        if memory.seek(SeekFrom::Start(start)).is_err() || memory.read_exact(&mut region).is_err() {
            continue;
        }
        for (index, pair) in args.chunks(2).enumerate() {
            let (prefix, suffix) = (&pair[0], &pair[1]);
            found[index] |= region
                .windows(prefix.len())
                .enumerate()
                .any(|(at, window)| {
                    window == prefix.as_slice() && region[at + prefix.len()..].starts_with(suffix)
                });
        }
    }
    for (index, found) in found.iter().enumerate() {
        println!("found_{index}={found}");
    }
}

fn count_main_run() {
    if let Some(path) = std::env::var_os("PROBE_MAIN_COUNT") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        writeln!(file, "main {}", std::process::id()).unwrap();
    }
}

reexec::main! {
    fn main() -> Result<(), reexec::Error> {
        reexec_tests::fork_server::use_fork_server_if_asked();
        count_main_run();
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mode = args.first().map(String::as_str).unwrap_or("");
        match mode {
            "status" => print_status(Command::new(&args[1]).args(&args[2..]).status()?),
            "output" => {
                let output = Command::new(&args[1]).args(&args[2..]).output()?;
                print_status(output.status);
                println!("stdout={}", String::from_utf8_lossy(&output.stdout).escape_debug());
                println!("stderr={}", String::from_utf8_lossy(&output.stderr).escape_debug());
            }
            "raw-output" => {
                let output = Command::new(&args[1]).args(&args[2..]).output()?;
                print_status(output.status);
                print!("{}", String::from_utf8_lossy(&output.stdout));
            }
            "env-args-cwd" => {
                let output = Command::new("echo-args-env")
                    .args(["two words", "ünïcode", ""])
                    .env("PROBE_SET", "set-value")
                    .env_remove("PROBE_REMOVED")
                    .current_dir("/tmp")
                    .output()?;
                print_status(output.status);
                print!("{}", String::from_utf8_lossy(&output.stdout));
            }
            "env-clear" => {
                let output = Command::new("echo-args-env").env_clear().env("ONLY", "this").output()?;
                print_status(output.status);
                print!("{}", String::from_utf8_lossy(&output.stdout));
            }
            "piped" => {
                let mut child = Command::new("cat")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()?;
                child.stdin.as_mut().unwrap().write_all(b"through the pipe").unwrap();
                let output = child.wait_with_output()?;
                print_status(output.status);
                println!("stdout={}", String::from_utf8_lossy(&output.stdout));
                println!("stderr={}", String::from_utf8_lossy(&output.stderr));
            }
            "large-output" => {
                // More than a pipe holds on both streams at once: needs concurrent reading.
                let size = 1 << 20;
                let mut child = Command::new("cat")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()?;
                let mut stdin = child.stdin.take().unwrap();
                let writer = std::thread::spawn(move || stdin.write_all(&vec![b'x'; size]));
                let output = child.wait_with_output()?;
                writer.join().unwrap().unwrap();
                print_status(output.status);
                println!("stdout_len={}", output.stdout.len());
            }
            "kill" => {
                let mut child = Command::new("sleeper").spawn()?;
                println!("running={}", child.try_wait()?.is_none());
                child.kill()?;
                print_status(child.wait()?);
                println!("after_wait={}", or_none(child.try_wait()?.map(|status| status.success())));
                child.kill()?;
            }
            "missing-cwd" => {
                let error = Command::new("exit-zero").current_dir("/definitely/not/here").spawn().unwrap_err();
                println!("step={}", step_name(error.step()));
                println!("errno={}", or_none(error.raw_os_error()));
                println!("error={error}");
            }
            "invalid" => {
                let null = || std::fs::File::open("/dev/null").unwrap();
                for error in [
                    Command::new("").spawn().unwrap_err(),
                    Command::new("a/b").spawn().unwrap_err(),
                    Command::new("exit-zero").arg("nul\0byte").spawn().unwrap_err(),
                    Command::new("exit-zero").env("KEY=WITH=EQUALS", "v").spawn().unwrap_err(),
                    Command::new("exit-zero").death_signal(Some(0)).spawn().unwrap_err(),
                    Command::new("..").spawn().unwrap_err(),
                    Command::new("nul\0name").spawn().unwrap_err(),
                    Command::new("exit-zero").env("KEY", "nul\0value").spawn().unwrap_err(),
                    Command::new("exit-zero").env("", "empty-name").spawn().unwrap_err(),
                    Command::new("exit-zero").current_dir("/tmp/nul\0dir").spawn().unwrap_err(),
                    Command::new("exit-zero").death_signal(Some(65)).spawn().unwrap_err(),
                    Command::new("exit-zero").fd(0, null()).spawn().unwrap_err(),
                    Command::new("exit-zero").fd(2, null()).spawn().unwrap_err(),
                    Command::new("exit-zero").fd(-1, null()).spawn().unwrap_err(),
                    Command::new("exit-zero").fd(5, null()).fd(5, null()).spawn().unwrap_err(),
                    Command::new("exit-zero").fd(i32::MAX, null()).spawn().unwrap_err(),
                ] {
                    println!("error={error}");
                }
            }
            "fds" => {
                // Left open without close-on-exec, as a careless parent leaves them.
                let (_read, _write) = nix::unistd::pipe().unwrap();
                let mut inheritable: Vec<String> = open_fds(true);
                inheritable.retain(|fd| !["0", "1", "2"].contains(&fd.as_str()));
                println!("parent_inheritable={}", inheritable.join(","));
                let output = Command::new("list-fds").output()?;
                print!("{}", String::from_utf8_lossy(&output.stdout));
            }
            "replaced" => {
                // Delete our own file and put something else at its path: /proc/self/exe
                // still names the running binary.
                let exe = std::env::current_exe().unwrap();
                std::fs::remove_file(&exe).unwrap();
                std::fs::write(&exe, b"#!/bin/sh\necho replaced-binary-ran\nexit 99\n").unwrap();
                let output = Command::new("exit-seven").output()?;
                print_status(output.status);
                println!("stdout={}", String::from_utf8_lossy(&output.stdout).escape_debug());
            }
            "spawn-sleeper-and-wait" => {
                let mut command = Command::new("sleeper");
                match args.get(1).map(String::as_str) {
                    None => {}
                    Some("off") => {
                        command.death_signal(None);
                    }
                    Some(signal) => {
                        command.death_signal(Some(signal.parse().unwrap()));
                    }
                }
                let child = command.spawn()?;
                println!("child={}", child.id());
                std::io::stdout().flush().unwrap();
                std::thread::sleep(Duration::from_secs(60));
            }
            "orphan-harness" => {
                let middle: Vec<&str> = ["spawn-sleeper-and-wait"].into_iter().chain(args.get(1).map(String::as_str)).collect();
                orphan_harness(&middle);
            }
            // The fork server (tests/tests/fork_server.rs).
            "fork-server-life" => {
                reexec::ForkServer::start()?;
                let status = Command::new("exit-zero").fork_server(true).status()?;
                println!("child_ok={}", status.success());
                println!("server={}", or_none(reexec::ForkServer::pid()));
                // Until the test closes our stdin, or kills us.
                let _ = std::io::stdin().read_to_end(&mut Vec::new());
            }
            "fork-server-restart" => fork_server_restart()?,
            "fork-server-dies-mid-spawn" => fork_server_dies_mid_spawn(&args[1..])?,
            "fork-server-cwd" => fork_server_cwd(&args[1..])?,
            "signal-window" => signal_window_under(&args[1])?,
            "fork-server-fds" => {
                reexec::ForkServer::start()?;
                let server = reexec::ForkServer::pid().expect("the server runs");
                let server_fds = std::fs::read_dir(format!("/proc/{server}/fd")).unwrap().count();
                println!("server_fds={server_fds}");
                let output = Command::new("list-fds").fork_server(true).output()?;
                print!("{}", String::from_utf8_lossy(&output.stdout));
            }
            "fork-server-wipe" => {
                reexec::ForkServer::start()?;
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .subsec_nanos();
                let (secret, own) = (format!("{}x{nanos}", std::process::id()), format!("{nanos}y"));
                // One child gets the secret in its environment; the next looks for it in
                // its memory, and for its own environment as the control.
                Command::new("exit-zero")
                    .env("FORK_SERVER_SECRET", format!("secret-{secret}"))
                    .fork_server(true)
                    .status()?;
                // A small request, with no environment but its own: the first one's
                // buffers are not all reused for it, which would hide what was not wiped.
                let output = Command::new("scan-memory")
                    .args(["secret-", &secret, "own-", &own])
                    .env_clear()
                    .env("FORK_SERVER_OWN", format!("own-{own}"))
                    .fork_server(true)
                    .output()?;
                print!("{}", String::from_utf8_lossy(&output.stdout));
            }
            "fork-server-caps" => {
                reexec::ForkServer::start()?;
                let (uid, gid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
                for (label, through_server) in [("plain", false), ("fork", true)] {
                    // A user namespace where the child is uid 1000, not root.
                    let output = Command::new("print-capabilities")
                        .namespaces(reexec::Namespaces::USER)
                        .uid_map(reexec::IdMap::new(1000, uid, 1))
                        .gid_map(reexec::IdMap::new(1000, gid, 1))
                        .fork_server(through_server)
                        .output()?;
                    for line in String::from_utf8_lossy(&output.stdout).lines() {
                        println!("{label}_{line}");
                    }
                }
            }
            "fork-server-forked" => {
                reexec::ForkServer::start()?;
                let server = reexec::ForkServer::pid();
                // SAFETY: the probe has one thread here (main, nothing started), so the
                // forked child may go on with ordinary code.
                match unsafe { nix::unistd::fork() }.unwrap() {
                    nix::unistd::ForkResult::Child => {
                        // The program's server is not this process's to use.
                        println!("forked_sees_server={}", reexec::ForkServer::pid().is_some());
                        let refused = Command::new("exit-seven").fork_server(true).status().is_err();
                        println!("forked_refused={refused}");
                        reexec::ForkServer::start().unwrap();
                        let own = reexec::ForkServer::pid();
                        println!("forked_own_server_differs={}", own.is_some() && own != server);
                        let status = Command::new("exit-seven").fork_server(true).status().unwrap();
                        println!("forked_code={}", or_none(status.code()));
                        let _ = std::io::stdout().flush();
                        std::process::exit(0);
                    }
                    nix::unistd::ForkResult::Parent { child } => {
                        nix::sys::wait::waitpid(child, None).unwrap();
                    }
                }
                println!("server_kept={}", reexec::ForkServer::pid() == server);
                let status = Command::new("exit-seven").fork_server(true).status()?;
                println!("code={}", or_none(status.code()));
            }
            "fork-server-large" => {
                // More than a socket buffers (about 200 KiB by default): the server reads
                // the request in parts.
                reexec::ForkServer::start()?;
                let value = "x".repeat(100_000);
                let output = Command::new("env-size")
                    .envs((0..3).map(|index| (format!("PROBE_LARGE_{index}"), value.as_str())))
                    .fork_server(true)
                    .output()?;
                print!("{}", String::from_utf8_lossy(&output.stdout));
            }
            "fork-server-buffers" => {
                reexec::ForkServer::start()?;
                for (label, through_server) in [("plain", false), ("fork", true)] {
                    let output = Command::new("buffered-then-return")
                        .fork_server(through_server)
                        .output()?;
                    println!("{label}={}", String::from_utf8_lossy(&output.stdout));
                }
            }
            "fork-server-stop-race" => fork_server_stop_race()?,
            "fork-server-not-started" => {
                let error = Command::new("exit-zero").fork_server(true).spawn().unwrap_err();
                println!("error={error}");
            }
            other => {
                eprintln!("probe: unknown mode {other:?}");
                std::process::exit(2);
            }
        }
        Ok(())
    }
}

/// Starts the server, kills it from outside once it has served a spawn, and spawns again:
/// the next spawn starts a new server and succeeds, and the dead one is reaped.
/// Commands left to the program's default, spawned from four threads while the main
/// thread stops the server and starts it again: each must start, through the server or
/// by a re-exec, and none fail because the server went away under it.
fn fork_server_stop_race() -> Result<(), reexec::Error> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    static DONE: AtomicBool = AtomicBool::new(false);
    static TRIED: AtomicUsize = AtomicUsize::new(0);
    reexec::ForkServer::start_for_every_command()?;
    let spawners: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                let (mut started, mut failures) = (0, Vec::new());
                while !DONE.load(Ordering::Relaxed) {
                    match Command::new("exit-zero").status() {
                        Ok(status) if status.success() => started += 1,
                        other => failures.push(format!("{other:?}")),
                    }
                    TRIED.fetch_add(1, Ordering::Relaxed);
                }
                (started, failures)
            })
        })
        .collect();
    // Before the fix of this race, about one stop in ten failed a spawn.
    for _ in 0..100 {
        // A few spawns through this server, so that the stop comes while they use it.
        let before = TRIED.load(Ordering::Relaxed);
        while TRIED.load(Ordering::Relaxed) < before + 8 {
            std::thread::yield_now();
        }
        reexec::ForkServer::stop();
        reexec::ForkServer::start_for_every_command()?;
    }
    DONE.store(true, Ordering::Relaxed);
    let (mut started, mut failures) = (0, Vec::new());
    for spawner in spawners {
        let (their_started, their_failures) = spawner.join().unwrap();
        started += their_started;
        failures.extend(their_failures);
    }
    println!("started_some={}", started > 0);
    println!("failed={}", failures.len());
    println!(
        "first_failure={}",
        failures.first().map_or("none", String::as_str)
    );
    Ok(())
}

/// `signal-window none|no-clone|no-clone3`: runs the entry `signal-window` as it is, or
/// under a seccomp filter that refuses clone(2), or clone3, with ENOSYS — so that its
/// spawns can only take the one left; prints its lines and `code=`.
fn signal_window_under(filter: &str) -> Result<(), reexec::Error> {
    let mut command = Command::new("signal-window");
    if let Some(program) = reexec_tests::faults::clone_refused(filter)? {
        command.seccomp(program);
    }
    print_status(command.fork_server(false).status()?);
    Ok(())
}

/// `fork-server-dies-mid-spawn MOMENT plain|namespaced MARKER`: the server is killed at
/// MOMENT of a spawn of `count-a-run MARKER` (see `reexec_tests::fork_server::Moment`);
/// namespaced, in a user namespace whose maps the caller writes. Prints what the spawn
/// gave, how many times the entry ran, what is left of the child the server cloned, and
/// whether the next spawn works.
fn fork_server_dies_mid_spawn(args: &[String]) -> Result<(), reexec::Error> {
    let [moment, kind, marker] = args else {
        panic!("fork-server-dies-mid-spawn MOMENT plain|namespaced MARKER, not {args:?}");
    };
    reexec::ForkServer::start()?;
    let server = reexec::ForkServer::pid().expect("the server runs");
    // The tracer is a process of its own (see `kill_the_server_at`).
    let mut tracer = Command::new("kill-the-server-at")
        .args([server.to_string().as_str(), moment])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut from_tracer = std::io::BufReader::new(tracer.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut from_tracer, &mut line).unwrap();
    if let Some(why) = line.trim_end().strip_prefix("untraceable=") {
        println!("skipped=the server could not be traced: {why}");
        let _ = tracer.wait();
        return Ok(());
    }
    let mut command = Command::new("count-a-run");
    command.arg(marker).fork_server(true);
    if kind == "namespaced" {
        let (uid, gid) = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        command
            .namespaces(reexec::Namespaces::USER)
            .uid_map(reexec::IdMap::new(0, uid, 1))
            .gid_map(reexec::IdMap::new(0, gid, 1));
    }
    let spawned = command.status();
    println!(
        "spawn={}",
        match &spawned {
            Ok(status) => format!("exited-{}", or_none(status.code())),
            Err(error) => format!("failed-at-{}", step_name(error.step())),
        }
    );
    let mut rest = String::new();
    from_tracer.read_to_string(&mut rest).unwrap();
    print!("{rest}");
    let _ = tracer.wait();
    let child = reexec_tests::pid_field(&rest, "cloned");
    if rest.lines().any(|line| line == "by_clone3=false") {
        // Then the server stores the pid itself after clone(2): the window of a few
        // instructions this test stops it in, on purpose.
        println!(
            "skipped=the server's clone3 is refused here (before Linux 5.3, or a seccomp \
             filter), so its child's pid is not written by the clone itself"
        );
        return Ok(());
    }
    // Reaped, whatever the spawn gave: neither running nor a zombie.
    let state = reexec_tests::procfs::Stat::of(child).map_or('-', |stat| stat.state);
    println!("child_state={state}");
    let runs = std::fs::read_to_string(marker).map_or(0, |runs| runs.lines().count());
    println!("entry_runs={runs}");
    let status = Command::new("exit-seven").fork_server(true).status()?;
    println!("next_code={}", or_none(status.code()));
    // Replaced by then, and reaped by the library.
    let server_state = reexec_tests::procfs::Stat::of(server).map_or('-', |stat| stat.state);
    println!("server_state={server_state}");
    println!(
        "next_server_differs={}",
        reexec::ForkServer::pid() != Some(server)
    );
    Ok(())
}

/// `fork-server-cwd A B [C]`: spawns through the fork server from A, B, A, A and, with C
/// (root: C is A bind-mounted, in a mount namespace of the probe's own made first), from
/// C and A again; prints the working directory each child found as `cwd_N=`.
fn fork_server_cwd(args: &[String]) -> Result<(), reexec::Error> {
    let mut places: Vec<&String> = match args {
        [a, b, ..] => vec![a, b, a, a],
        _ => panic!("fork-server-cwd A B [C], not {args:?}"),
    };
    if let [a, _, c] = args {
        use nix::mount::{MsFlags, mount};
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).unwrap();
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .unwrap();
        mount(
            Some(a.as_str()),
            c.as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .unwrap();
        places.extend([c, a]);
    }
    reexec::ForkServer::start()?;
    for (index, place) in places.into_iter().enumerate() {
        std::env::set_current_dir(place).unwrap();
        let output = Command::new("echo-args-env").fork_server(true).output()?;
        let cwd = reexec_tests::field(&output, "cwd").unwrap_or("none");
        println!("cwd_{index}={cwd}");
    }
    Ok(())
}

fn fork_server_restart() -> Result<(), reexec::Error> {
    reexec::ForkServer::start()?;
    let status = Command::new("exit-seven").fork_server(true).status()?;
    println!("first_code={}", or_none(status.code()));
    let first = reexec::ForkServer::pid().expect("the server runs");
    println!("first_server={first}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // Until it has died, without reaping it: that is the library's to do.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    println!(
        "first_ended={}",
        reexec_tests::procfs::wait_until_ended(first, deadline)
    );
    let status = Command::new("exit-seven").fork_server(true).status()?;
    println!("second_code={}", or_none(status.code()));
    let second = reexec::ForkServer::pid().expect("a new server runs");
    println!("second_server={second}");
    // Reaped: no zombie of it left behind.
    let first_state = reexec_tests::procfs::Stat::of(first).map_or('-', |stat| stat.state);
    println!("first_server_state={first_state}");
    Ok(())
}
