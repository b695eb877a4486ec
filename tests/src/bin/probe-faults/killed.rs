//! Parents killed: at spread-out moments while their threads spawn (`sweep`), and at
//! chosen points of one spawn (`kill-at`); what became of their children.

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use nix::libc;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use reexec::{Command, Namespaces, Stdio};
use reexec_tests::SEED_NAMESPACES;
use reexec_tests::faults::{SyscallArg, Tracer, die_at_syscall, die_now};
use reexec_tests::orphans::{
    MARK, Orphans, become_subreaper, collect, collect_apart, start_middle,
};
use reexec_tests::output::exit_status;
use reexec_tests::procfs::wait_until_in_syscall;
use reexec_tests::run::first_line;
use reexec_tests::status_text;

/// How long orphans get to end after their parent was killed. They end in microseconds;
/// this only bounds the wait for one that never does (its entry sleeps 30 s).
const ORPHAN_GRACE: Duration = Duration::from_secs(5);

/// `sweep ROUNDS THREADS`: ROUNDS times, starts a middle process whose THREADS threads
/// spawn children of every kind in a loop, and SIGKILLs it after a delay that walks over
/// 0 to 30 ms; then every orphan must end within ORPHAN_GRACE.
pub(crate) fn sweep(rounds: usize, threads: &str) {
    become_subreaper();
    let mut all = Orphans::default();
    let started = Instant::now();
    for round in 0..rounds {
        // 7919 is prime: the delays spread over the whole range, not in one direction.
        let delay = Duration::from_micros(((round * 7919) % 30_000) as u64);
        let mark = format!("{}-{round}", std::process::id());
        let mut middle = start_middle(&["spawn-loop", threads], &mark);
        assert_eq!(
            first_line(&mut middle),
            "ready\n",
            "the middle process did not start"
        );
        std::thread::sleep(delay);
        middle.kill().unwrap();
        let status = middle.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "the middle ended before the kill"
        );
        all.add(collect(&mark, ORPHAN_GRACE));
    }
    println!("rounds={rounds}");
    println!("wall_ms={}", started.elapsed().as_millis());
    all.print();
}

/// `spawn-loop THREADS`, the middle of `sweep`: THREADS threads spawn children of every
/// kind — long sleepers kept running (ended by the death signal when we are killed), and
/// short children waited for — until killed.
pub(crate) fn spawn_loop(threads: usize) {
    for thread in 0..threads {
        std::thread::spawn(move || {
            let mut sleepers = Vec::new();
            for round in 0.. {
                let result: Result<Option<reexec::Child>, reexec::Error> =
                    match (thread + round) % 6 {
                        // Plain: vfork, getppid checks the parent.
                        0 => Command::new("sleeper").arg("plain").spawn().map(Some),
                        // PID 1 without maps: vfork, a pipe checks the parent.
                        1 => Command::new("sleeper")
                            .arg("pid1-no-maps")
                            .namespaces(Namespaces::USER | Namespaces::PID)
                            .spawn()
                            .map(Some),
                        // PID 1 with maps: waits for them.
                        2 => Command::new("sleeper")
                            .arg("pid1-maps")
                            .namespaces(SEED_NAMESPACES)
                            .map_root_to_caller()
                            .spawn()
                            .map(Some),
                        // Plain with a hook that takes a while: waits for it.
                        3 => Command::new("sleeper")
                            .arg("plain-hook")
                            .parent_setup(move |_| {
                                std::thread::sleep(Duration::from_micros((round % 4) as u64 * 500));
                                Ok(())
                            })
                            .spawn()
                            .map(Some),
                        // PID 1, maps, hook, output: a short child waited for.
                        4 => Command::new("exit-with")
                            .args(["5", "x"])
                            .namespaces(SEED_NAMESPACES)
                            .map_root_to_caller()
                            .parent_setup(|_| Ok(()))
                            .output()
                            .map(|_| None),
                        // Plain, waited for.
                        _ => Command::new("exit-with")
                            .args(["5", "x"])
                            .stdout(Stdio::null())
                            .status()
                            .map(|_| None),
                    };
                match result {
                    Ok(child) => sleepers.extend(child),
                    Err(error) => eprintln!("spawn-loop: {error}"),
                }
                if sleepers.len() >= 8 {
                    for mut sleeper in sleepers.drain(..) {
                        let _ = sleeper.kill();
                        let _ = sleeper.wait();
                    }
                }
            }
        });
    }
    println!("ready");
    std::io::stdout().flush().unwrap();
    loop {
        std::thread::park();
    }
}

/// `kill-at POINT KIND`: a middle process spawns one child of KIND and dies of SIGKILL at
/// POINT; the harness reports how the middle and its orphan ended.
pub(crate) fn kill_at(point: &str, kind: &str) {
    if point == "before-child-runs" {
        // ptrace holds the child the middle clones: the plain spawn's point alone.
        return kill_before_child_runs(kind);
    }
    become_subreaper();
    let mark = format!("{}-{point}-{kind}", std::process::id());
    let mut middle = start_middle(&["die-at", point, kind], &mark);
    let stdout = read_all(&mut middle);
    let status = middle.wait().unwrap();
    println!("middle_{}", status_text(status));
    print_middle_lines(&stdout);
    let fork_server = stdout
        .lines()
        .find_map(|line| line.strip_prefix("fork_server="))
        .and_then(|pid| pid.parse().ok());
    collect_apart(&mark, ORPHAN_GRACE, fork_server).print();
}

/// `kill-at before-child-runs KIND`: the middle process does its whole part — writes the
/// maps, runs the hook, releases the child — while its child is held stopped by ptrace
/// before its first instruction; then the middle is SIGKILLed and the child let go. The
/// child meets a parent that died before it could arm its death signal: the one moment
/// no signal can cover, which only the child's own check after arming it catches.
#[allow(
    clippy::zombie_processes,
    reason = "the middle is traced: it is reaped with waitpid(__WALL), not Child::wait"
)]
fn kill_before_child_runs(kind: &str) {
    become_subreaper();
    let mark = format!("{}-before-child-runs-{kind}", std::process::id());
    let mut middle = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["die-at", "before-child-runs", kind])
        .env(MARK, &mark)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let tracer = match Tracer::seize(Pid::from_raw(middle.id() as i32)) {
        Ok(tracer) => tracer,
        Err(errno) => {
            println!("skipped=ptrace(PTRACE_SEIZE) refused here: {errno}");
            middle.kill().unwrap();
            middle.wait().unwrap();
            return;
        }
    };
    // The middle waits for this byte before it spawns: it is traced from here on.
    middle.stdin.take().unwrap().write_all(b"x").unwrap();
    let child = match tracer.hold_first_child() {
        Ok(child) => child,
        Err(what) => {
            println!("error={what}");
            return;
        }
    };
    println!("child_held={child}");
    if kind != "plain" && kind != "userpid" {
        // A waiting child: the middle writes the maps, runs the hook, writes the byte that
        // releases the child, and then waits in read(2) for the child's exec.
        let deadline = Instant::now() + Duration::from_secs(10);
        if let Err(what) = wait_until_in_syscall(middle.id(), libc::SYS_read, deadline) {
            panic!("the middle never waited for its child: {what}");
        }
    }
    // Vfork kinds: the middle sleeps in clone(2) until its child execs, which it can't.
    nix::sys::signal::kill(Pid::from_raw(middle.id() as i32), Signal::SIGKILL).unwrap();
    let ended = exit_status(tracer.wait_for_end()).unwrap();
    println!("middle_{}", status_text(ended));
    // Let the child run: its parent is dead.
    tracer.release(child).unwrap();
    collect(&mark, ORPHAN_GRACE).print();
    print_middle_lines(&read_all(&mut middle));
}

/// What the middle process wrote to its piped stdout, to its end.
fn read_all(middle: &mut std::process::Child) -> String {
    let mut stdout = String::new();
    middle
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    stdout
}

/// The middle's `key=value` lines, as `middle_key=value`.
fn print_middle_lines(stdout: &str) {
    for line in stdout.lines() {
        println!("middle_{line}");
    }
}

/// Where `die-at` dies.
#[derive(Clone, Copy, PartialEq)]
enum Point {
    /// At the first open of the child's /proc/PID/setgroups or uid_map: nothing of the
    /// id maps is written yet; the child waits for them.
    OpenMap,
    /// Inside the `parent_setup` hook: maps written, the child waits for the hook.
    Hook,
    /// At the write of the byte that releases the child: everything done but that.
    Release,
    /// Right after `spawn` returned: the child has exec'd and runs its entry.
    AfterExec,
    /// Killed from outside once everything is done but the child's own start, which a
    /// tracer holds back (see `kill_before_child_runs`).
    BeforeChildRuns,
}

/// `die-at POINT KIND`, the middle of `kill-at`. KIND: `plain` (vfork), `userpid` (PID 1
/// without maps, vfork), `plain-hook` (waits for a hook), `seed` (PID 1, maps, a hook),
/// `seed-no-death-signal` (the same with the death signal off).
pub(crate) fn die_at(point: &str, kind: &str) {
    let point = match point {
        "open-map" => Point::OpenMap,
        "hook" => Point::Hook,
        "release" => Point::Release,
        "after-exec" => Point::AfterExec,
        "before-child-runs" => Point::BeforeChildRuns,
        other => panic!("unknown point {other}"),
    };
    if let Some(server) = reexec::ForkServer::pid() {
        println!("fork_server={server}");
        std::io::stdout().flush().unwrap();
    }
    if point == Point::BeforeChildRuns {
        // Wait until the harness traces us.
        std::io::stdin().read_exact(&mut [0u8]).unwrap();
    }
    let mut command = Command::new("sleeper");
    command.stdout(Stdio::null());
    match kind {
        "plain" => {}
        "userpid" => {
            command.namespaces(Namespaces::USER | Namespaces::PID);
        }
        "plain-hook" | "seed" | "seed-no-death-signal" => {
            if kind != "plain-hook" {
                command.namespaces(SEED_NAMESPACES).map_root_to_caller();
            }
            if kind == "seed-no-death-signal" {
                command.death_signal(None);
            }
            command.parent_setup(move |pid| {
                if point == Point::Hook {
                    die_now(&format!("dying_at=hook child={pid}\n"));
                }
                println!("hook_ran=true");
                Ok(())
            });
        }
        other => panic!("unknown kind {other}"),
    }
    let trapped = match point {
        // openat(…, O_WRONLY | O_CLOEXEC): how std opens /proc/PID/setgroups and uid_map
        // for writing; nothing else in this thread opens a file that way. The flags as
        // the kernel sees them may carry O_LARGEFILE: compare the bits we set only.
        Point::OpenMap => Some((
            libc::SYS_openat,
            SyscallArg {
                index: 2,
                mask: (libc::O_ACCMODE
                    | libc::O_CLOEXEC
                    | libc::O_CREAT
                    | libc::O_TRUNC
                    | libc::O_APPEND) as u32,
                value: (libc::O_WRONLY | libc::O_CLOEXEC) as u32,
            },
            "dying_at=open-map\n",
        )),
        // write(…, 1): the one-byte write that releases the child; the maps are longer.
        Point::Release => Some((
            libc::SYS_write,
            SyscallArg {
                index: 2,
                mask: u32::MAX,
                value: 1,
            },
            "dying_at=release\n",
        )),
        Point::Hook | Point::AfterExec | Point::BeforeChildRuns => None,
    };
    if let Some((number, arg, message)) = trapped
        && let Err(error) = die_at_syscall(number, arg, message)
    {
        println!("skipped=no seccomp filter here: {error}");
        return;
    }
    match command.spawn() {
        Ok(child) if point == Point::AfterExec => {
            die_now(&format!("dying_at=after-exec child={}\n", child.id()));
        }
        Ok(child) => println!("not_killed=true child={}", child.id()),
        Err(error) => println!("error={error}"),
    }
}
