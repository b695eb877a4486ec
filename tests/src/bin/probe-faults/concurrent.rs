//! Many threads spawning at once: under locks and allocation (`load`), under a storm of
//! signals (`eintr`), and with descriptors watched in parent and children (`fd-hygiene`).

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::libc;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use reexec::{Command, Stdio};
use reexec_tests::faults::{
    install_interrupting_handlers, read_is_interrupted, signal_thread, signals_handled, sleep_until,
};
use reexec_tests::open_fds;
use reexec_tests::procfs::{descriptors, same_open_file, wait_until_in_syscall};
use reexec_tests::stress::{Failures, Stress, allocate_on_threads};

use crate::spawns::{HookExtra, KINDS, Kind, code_for, spawn_one};
use reexec_tests::SEED_NAMESPACES;

/// A run of `threads` × `per_thread` spawns, given `per_spawn` of the watchdog's time
/// each beyond a minute.
fn stress(threads: usize, per_thread: usize, per_spawn: Duration) -> Stress {
    Stress {
        threads,
        rounds: per_thread,
        limit: Duration::from_secs(60) + per_spawn * (threads * per_thread) as u32,
    }
}

/// `load THREADS PER_THREAD`: spawns of every kind from THREADS threads, while four other
/// threads allocate and free under a lock, and locks are held across spawn calls:
///
/// - threads 0, 4, 8…  hold `held` across each whole spawn and wait;
/// - threads 1, 5, 9…  hold `heap`, the allocators' lock, across each spawn and wait;
/// - the hooks of every other thread take `held`, which a spawn of another thread may
///   hold at that moment. A child must never need anything from a spawn of another
///   thread, or the two wait for each other.
pub(crate) fn load(threads: usize, per_thread: usize) {
    let held = Arc::new(Mutex::new(0u64));
    let heap = Mutex::new(Vec::<Vec<u8>>::new());
    let (outcome, ()) = stress(threads, per_thread, Duration::from_millis(20)).run(
        |done| allocate_on_threads(4, done, &heap),
        |thread, round| {
            let kind = KINDS[(thread + round) % KINDS.len()];
            let tag = format!("t{thread}r{round}");
            let code = code_for(thread, round);
            if thread % 4 == 0 {
                // Its own lock is not reentrant: this thread's hooks leave it alone.
                let _guard = held.lock().unwrap();
                return spawn_one(kind, &tag, code, None);
            }
            let hook_held = Arc::clone(&held);
            let hook: HookExtra = Arc::new(move |_pid| {
                *hook_held.lock().unwrap() += 1;
                Ok(())
            });
            if thread % 4 == 1 {
                let mut guard = heap.lock().unwrap();
                guard.push(vec![round as u8; 1 + round % 512]);
                spawn_one(kind, &tag, code, Some(hook))
            } else {
                spawn_one(kind, &tag, code, Some(hook))
            }
        },
    );
    outcome.print();
}

/// `eintr THREADS PER_THREAD`: spawns, waits and output of every kind while one thread
/// sends SIGUSR1, with a handler and no SA_RESTART, to each spawning thread and to the
/// process, in a loop, and SIGCHLD (same kind of handler) comes with every child's end.
pub(crate) fn eintr(threads: usize, per_thread: usize) {
    install_interrupting_handlers();
    println!("eintr_seen={}", read_is_interrupted());
    // Each spawning thread's id while it spawns, 0 before and after.
    let tids: Vec<AtomicI32> = (0..threads).map(|_| AtomicI32::new(0)).collect();
    let before = signals_handled();
    let send_until = |done: &AtomicBool| {
        let mut sent = 0usize;
        while !done.load(Ordering::Relaxed) {
            for tid in &tids {
                let tid = tid.load(Ordering::Relaxed);
                if tid != 0 {
                    signal_thread(tid, Signal::SIGUSR1);
                    sent += 1;
                }
            }
            nix::sys::signal::kill(Pid::this(), Signal::SIGUSR1).unwrap();
            sent += 1;
        }
        sent
    };
    let (outcome, sent) =
        stress(threads, per_thread, Duration::from_millis(50)).run(send_until, |thread, round| {
            if round == 0 {
                tids[thread].store(nix::unistd::gettid().as_raw(), Ordering::Relaxed);
            }
            let kind = KINDS[(thread + round) % KINDS.len()];
            let hook: HookExtra = Arc::new(|_pid| {
                // A hook that sleeps is a hook that gets interrupted.
                sleep_until(Instant::now() + Duration::from_micros(200));
                Ok(())
            });
            let tag = format!("t{thread}r{round}");
            let result = spawn_one(kind, &tag, code_for(thread, round), Some(hook));
            if round + 1 == per_thread {
                tids[thread].store(0, Ordering::Relaxed);
            }
            result
        });
    outcome.print();
    println!("signals_sent={sent}");
    println!("signals_handled={}", signals_handled() - before);
}

/// The number each child of `fd-hygiene` gets a descriptor at, with `Command::fd`.
const GIVEN_FD: i32 = 7;

/// `fd-hygiene THREADS PER_THREAD`: from THREADS threads at once, children list their
/// descriptors — which must be 0, 1, 2 and the one each is given, never what the parent
/// left inheritable on purpose — and hooks look at what a child holds while it waits for
/// its parent: only what that spawn needs, never a descriptor of another spawn. A
/// monitor checks the whole time that no descriptor of ours in the parent is inheritable,
/// even for a moment.
pub(crate) fn fd_hygiene(threads: usize, per_thread: usize) {
    // Left without close-on-exec on purpose: no child may see it.
    let (_inheritable_read, inheritable_write) = nix::unistd::pipe().unwrap();
    // Each child gets a copy of this one as GIVEN_FD.
    let (given, _given_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let inheritable = open_fds(true);
    let stdio = ["0", "1", "2"].map(String::from);
    let not_for_children: Vec<String> = inheritable
        .iter()
        .filter(|fd| !stdio.contains(fd))
        .cloned()
        .collect();
    // Compared as open files, not by number: a child of the fork server has the server's
    // table of descriptors, whose numbers say nothing of ours.
    let files_not_for_children: Arc<Vec<i32>> = Arc::new(
        not_for_children
            .iter()
            .map(|fd| fd.parse().unwrap())
            .collect(),
    );
    // The comparison's control: it knows one of our descriptors as a copy of itself.
    let copy = nix::unistd::dup(&inheritable_write).unwrap();
    let write_end = std::os::fd::AsRawFd::as_raw_fd(&inheritable_write);
    let copy_end = std::os::fd::AsRawFd::as_raw_fd(&copy);
    assert_eq!(
        same_open_file(std::process::id(), copy_end, write_end),
        Ok(true)
    );
    assert_eq!(same_open_file(std::process::id(), copy_end, 0), Ok(false));
    drop(copy);
    let mut expected: Vec<String> = stdio.to_vec();
    expected.push(GIVEN_FD.to_string());
    let expected = expected.join(",");
    println!("given_fd={GIVEN_FD}");
    println!("expected={expected}");
    println!("inheritable={}", not_for_children.join(","));
    let syscall_readable = std::fs::read_to_string("/proc/self/syscall").is_ok();
    println!("waiting_children_inspected={syscall_readable}");

    let leaks = Failures::default();
    let monitor = |done: &AtomicBool| {
        let mut samples = 0usize;
        while !done.load(Ordering::Relaxed) {
            let now = open_fds(true);
            let extra: Vec<&String> = now.iter().filter(|fd| !inheritable.contains(fd)).collect();
            if !extra.is_empty() {
                leaks.record(format!("inheritable in the parent: {extra:?}"));
            }
            samples += 1;
        }
        samples
    };
    let waiting_checked = Arc::new(AtomicUsize::new(0));
    let (outcome, samples) =
        stress(threads, per_thread, Duration::from_millis(50)).run(monitor, |thread, round| {
            let kind = KINDS[(thread + round) % KINDS.len()];
            let tag = format!("t{thread}r{round} {kind:?}");
            let mut command = kind.command("list-fds");
            command.fd(GIVEN_FD, given.try_clone().unwrap());
            // What the hook found in the waiting child, once it ran.
            let waiting = Arc::new(Mutex::new(Ok(())));
            if matches!(kind, Kind::PlainHook | Kind::NamespacedHook) {
                if syscall_readable {
                    let (not_for_children, checked) = (
                        Arc::clone(&files_not_for_children),
                        Arc::clone(&waiting_checked),
                    );
                    let found = Arc::clone(&waiting);
                    command.parent_setup(move |pid| {
                        *found.lock().unwrap() = check_waiting_child(pid, &not_for_children);
                        checked.fetch_add(1, Ordering::Relaxed);
                        Ok(())
                    });
                }
            } else if matches!(kind, Kind::PlainPiped | Kind::NamespacedPiped) {
                // A file of ours handed over as stderr: the child sees it as 2 only.
                let null = std::fs::File::options()
                    .write(true)
                    .open("/dev/null")
                    .unwrap();
                command.stderr(null);
            }
            let output = command
                .output()
                .map_err(|error| format!("{tag}: {error}"))?;
            let waiting = waiting.lock().unwrap().clone();
            waiting.map_err(|what| format!("{tag}: {what}"))?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            let seen = stdout.lines().find_map(|line| line.strip_prefix("fds="));
            if output.status.code() != Some(0) || seen != Some(expected.as_str()) {
                return Err(format!(
                    "{tag}: expected fds={expected} and code 0, got {seen:?}, {:?}, stderr {:?}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            Ok(())
        });
    outcome.print();
    println!(
        "waiting_checked={}",
        waiting_checked.load(Ordering::Relaxed)
    );
    println!("monitor_samples={samples}");
    leaks.print("parent_inheritable_leaks");
}

/// Waits (bounded) until the child `pid` blocks in read(2), where it waits for its parent,
/// then checks the descriptors it holds: besides 0, 1, 2, only the six it needs — the read
/// end it waits on, the write end of the pipe whose end-of-file tells the parent it
/// exec'd, its stdin, stdout and stderr and the descriptor it is given (it installs them
/// after the wait) — and none the parent left inheritable. Anything else would be a
/// descriptor of our own or of another spawn, kept open for as long as this child waits.
fn check_waiting_child(pid: u32, not_for_children: &[i32]) -> Result<(), String> {
    wait_until_in_syscall(
        pid,
        libc::SYS_read,
        Instant::now() + Duration::from_secs(10),
    )?;
    let mut extra = Vec::new();
    for (fd, target) in descriptors(pid)? {
        let number: i32 = fd.parse().map_err(|_| format!("/proc/{pid}/fd/{fd}"))?;
        for &ours in not_for_children {
            if same_open_file(pid, number, ours)? {
                return Err(format!(
                    "while waiting for its parent it holds {fd}, our {ours}, which we left \
                     inheritable and the child will never use"
                ));
            }
        }
        let stdio = ["0", "1", "2"].contains(&fd.as_str());
        if !stdio {
            extra.push(format!("{fd}->{}", target.display()));
        }
    }
    if extra.len() > 6 {
        return Err(format!(
            "while waiting for its parent it holds {} descriptors beyond stdio, 6 at most \
             needed: {}",
            extra.len(),
            extra.join(" ")
        ));
    }
    Ok(())
}

/// `can-userns`: whether this user may create the namespaces the other modes use, so that
/// a test can skip with the reason instead of failing where the system forbids them.
pub(crate) fn can_userns() {
    match Command::new("exit-with")
        .args(["0", "x"])
        .namespaces(SEED_NAMESPACES)
        .map_root_to_caller()
        .stdout(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => println!("userns=ok"),
        Ok(status) => println!("userns=no: the child ended with {status:?}"),
        Err(error) => println!("userns=no: {error}"),
    }
}
