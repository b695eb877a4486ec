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

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use nix::libc;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use reexec::{Command, Namespaces, Stdio};
use reexec_tests::{SEED_NAMESPACES, SyscallArg, filter_syscall, open_fds};

// ---------------------------------------------------------------------------------------
// Entries
// ---------------------------------------------------------------------------------------

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
        default_and_unblock(signal.parse().unwrap());
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
    let signal: i32 = signal.parse().unwrap();
    default_and_unblock(signal);
    nix::sys::signal::raise(Signal::try_from(signal).unwrap()).unwrap();
    ExitCode::from(99)
}

/// Prints the descriptors this process has.
#[reexec::entry("list-fds")]
fn list_fds() {
    println!("fds={}", open_fds(false).join(","));
}

fn default_and_unblock(signal: i32) {
    if signal == libc::SIGKILL || signal == libc::SIGSTOP {
        // Neither can be caught, ignored or blocked.
        return;
    }
    let signal = Signal::try_from(signal).unwrap();
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: installs the default action, which runs no code of ours.
    unsafe { sigaction(signal, &default) }.unwrap();
    SigSet::from(signal).thread_unblock().unwrap();
}

// ---------------------------------------------------------------------------------------
// One spawn of each kind, checked
// ---------------------------------------------------------------------------------------

/// The kinds of spawn the load, EINTR and fd modes mix.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// No namespace, `status()`: the vfork path.
    Plain,
    /// `SEED_NAMESPACES` with root mapped to the caller, `status()`: the child waits for
    /// its maps, and is PID 1 of its namespace.
    Namespaced,
    /// No namespace, a `parent_setup` hook, stdout piped: the child waits for the hook.
    PlainHook,
    /// SEED, maps, a hook and piped stdout.
    NamespacedHook,
    /// No namespace, stdin, stdout and stderr piped through `cat`.
    PlainPiped,
    /// SEED, maps, and all three piped through `cat`.
    NamespacedPiped,
}

const KINDS: [Kind; 6] = [
    Kind::Plain,
    Kind::Namespaced,
    Kind::PlainHook,
    Kind::NamespacedHook,
    Kind::PlainPiped,
    Kind::NamespacedPiped,
];

impl Kind {
    fn namespaced(self) -> bool {
        matches!(
            self,
            Kind::Namespaced | Kind::NamespacedHook | Kind::NamespacedPiped
        )
    }

    fn command(self, entry: &str) -> Command {
        let mut command = Command::new(entry);
        if self.namespaced() {
            command.namespaces(SEED_NAMESPACES).map_root_to_caller();
        }
        command
    }
}

/// What a hook does besides recording the pid it was given.
type HookExtra = Arc<dyn Fn(u32) -> std::io::Result<()> + Send + Sync>;

/// Spawns one child of `kind` and checks everything it can about the result: the exit
/// status (each spawn has its own), what the child printed, the pid the hook saw.
fn spawn_one(kind: Kind, tag: &str, code: u8, hook: Option<HookExtra>) -> Result<(), String> {
    let wrong = |what: String| Err(format!("{tag} {kind:?}: {what}"));
    match kind {
        Kind::Plain | Kind::Namespaced => {
            let status = kind
                .command("exit-with")
                .args([code.to_string().as_str(), tag])
                .stdout(Stdio::null())
                .status();
            match status {
                Ok(status) if status.code() == Some(i32::from(code)) => Ok(()),
                other => wrong(format!("expected code {code}, got {other:?}")),
            }
        }
        Kind::PlainHook | Kind::NamespacedHook => {
            let seen = Arc::new(AtomicI32::new(0));
            let hook_seen = Arc::clone(&seen);
            let mut command = kind.command("exit-with");
            command
                .args([code.to_string().as_str(), tag])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .parent_setup(move |pid| {
                    hook_seen.store(pid as i32, Ordering::Relaxed);
                    hook.as_ref().map_or(Ok(()), |extra| extra(pid))
                });
            let child = command
                .spawn()
                .map_err(|error| format!("{tag} {kind:?}: {error}"))?;
            let pid = child.id() as i32;
            let output = child
                .wait_with_output()
                .map_err(|error| format!("{tag} {kind:?}: {error}"))?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            let expected_pid = if kind.namespaced() {
                "pid=1".to_owned()
            } else {
                format!("pid={pid}")
            };
            if output.status.code() != Some(i32::from(code))
                || !stdout.lines().any(|line| line == format!("token={tag}"))
                || !stdout.lines().any(|line| line == expected_pid)
                || seen.load(Ordering::Relaxed) != pid
            {
                return wrong(format!(
                    "expected code {code}, token {tag}, {expected_pid}, hook pid {pid}; got \
                     {:?}, stdout {stdout:?}, stderr {:?}, hook pid {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr),
                    seen.load(Ordering::Relaxed)
                ));
            }
            Ok(())
        }
        Kind::PlainPiped | Kind::NamespacedPiped => {
            let mut child = kind
                .command("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|error| format!("{tag} {kind:?}: {error}"))?;
            let text = format!("through the pipe: {tag}\n");
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .map_err(|error| format!("{tag} {kind:?}: writing stdin: {error}"))?;
            let output = child
                .wait_with_output()
                .map_err(|error| format!("{tag} {kind:?}: {error}"))?;
            if output.status.code() != Some(0) || output.stdout != text.as_bytes() {
                return wrong(format!(
                    "expected code 0 and {text:?}, got {:?}, {:?}, stderr {:?}",
                    output.status,
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            Ok(())
        }
    }
}

/// The exit status each spawn expects: different for neighbours, never 0.
fn code_for(thread: usize, round: usize) -> u8 {
    1 + ((thread * 131 + round * 7) % 200) as u8
}

/// Failures counted, the first few kept for the report.
#[derive(Default)]
struct Failures {
    count: AtomicUsize,
    first: Mutex<Vec<String>>,
}

impl Failures {
    fn record(&self, what: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut first = self
            .first
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if first.len() < 10 {
            first.push(what);
        }
    }

    fn print(&self, key: &str) {
        println!("{key}={}", self.count.load(Ordering::Relaxed));
        for what in self.first.lock().unwrap().iter() {
            println!("{key}_example={}", what.replace('\n', "\\n"));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Bounds against hangs, and what is left behind
// ---------------------------------------------------------------------------------------

/// Ends the process with a description of where each thread waits if it is not dropped
/// within `limit`: a hang becomes a failure with a reason, not a stuck CI job. Exiting
/// ends the spawning threads, whose death signal ends their children.
struct Watchdog(Option<mpsc::Sender<()>>);

impl Watchdog {
    fn start(limit: Duration, progress: Arc<AtomicUsize>) -> Watchdog {
        let (cancel, cancelled) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = cancelled.recv_timeout(limit) {
                println!("timed_out_after_s={}", limit.as_secs());
                println!("completed={}", progress.load(Ordering::Relaxed));
                for line in thread_states() {
                    println!("hung_thread={line}");
                }
                for (pid, line) in processes_where(|stat| stat.ppid == std::process::id()) {
                    println!("hung_child={pid} {line}");
                }
                std::io::stdout().flush().unwrap();
                std::process::exit(3);
            }
        });
        Watchdog(Some(cancel))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.0.take());
    }
}

/// `name state wchan` of each of our threads.
fn thread_states() -> Vec<String> {
    let mut states = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten() {
        let path = task.unwrap().path();
        let read = |file: &str| std::fs::read_to_string(path.join(file)).unwrap_or_default();
        let stat = read("stat");
        let state = stat.rsplit(") ").next().unwrap_or("").split(' ').next();
        states.push(format!(
            "{} {} {}",
            read("comm").trim(),
            state.unwrap_or("?"),
            read("wchan")
        ));
    }
    states
}

/// The few fields of `/proc/PID/stat` we use.
struct Stat {
    state: char,
    ppid: u32,
}

fn stat_of(pid: u32) -> Option<Stat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let mut fields = stat.rsplit_once(") ")?.1.split(' ');
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some(Stat { state, ppid })
}

/// Every process (pid, short description) whose stat satisfies `filter`.
fn processes_where(filter: impl Fn(&Stat) -> bool) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
        else {
            continue;
        };
        if let Some(stat) = stat_of(pid)
            && filter(&stat)
        {
            found.push((pid, describe_process(pid)));
        }
    }
    found
}

fn describe_process(pid: u32) -> String {
    let read = |file: &str| std::fs::read(format!("/proc/{pid}/{file}")).unwrap_or_default();
    let cmdline: Vec<String> = read("cmdline")
        .split(|&byte| byte == 0)
        .filter(|arg| !arg.is_empty())
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect();
    let state = stat_of(pid).map_or('?', |stat| stat.state);
    // NSpid says whether it is PID 1 of a namespace; the masks, what it blocks and catches.
    let status = String::from_utf8_lossy(&read("status")).into_owned();
    let status_fields: Vec<String> = status
        .lines()
        .filter(|line| {
            ["NSpid:", "SigBlk:", "SigCgt:"]
                .iter()
                .any(|key| line.starts_with(key))
        })
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    format!(
        "state={state} wchan={} cmdline={} {}",
        String::from_utf8_lossy(&read("wchan")),
        cmdline.join(" "),
        status_fields.join(" ")
    )
}

/// Reaps what is left and says how many children were left: zombies (exited, never
/// waited for) and live ones. 0 and 0 is the only right answer.
fn leftovers() -> (usize, usize) {
    let live = processes_where(|stat| stat.ppid == std::process::id() && stat.state != 'Z');
    for (pid, description) in &live {
        println!("leftover_child={pid} {description}");
    }
    let mut zombies = 0;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => break,
            Ok(_) => zombies += 1,
            Err(nix::errno::Errno::EINTR) => {}
            Err(errno) => panic!("waitpid: {errno}"),
        }
    }
    (zombies, live.len())
}

// ---------------------------------------------------------------------------------------
// load
// ---------------------------------------------------------------------------------------

/// `load THREADS PER_THREAD`: spawns of every kind from THREADS threads, while four other
/// threads allocate and free under a lock, and locks are held across spawn calls:
///
/// - threads 0, 4, 8…  hold `held` across each whole spawn and wait;
/// - threads 1, 5, 9…  hold `heap`, the allocators' lock, across each spawn and wait;
/// - the hooks of every other thread take `held`, which a spawn of another thread may
///   hold at that moment. A child must never need anything from a spawn of another
///   thread, or the two wait for each other.
fn load(threads: usize, per_thread: usize) {
    let fds_before = open_fds(false);
    let started = Instant::now();
    let total = threads * per_thread;
    let progress = Arc::new(AtomicUsize::new(0));
    let watchdog = Watchdog::start(
        Duration::from_secs(60) + Duration::from_millis(20) * total as u32,
        Arc::clone(&progress),
    );
    let held = Arc::new(Mutex::new(0u64));
    let heap = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    let done = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Failures::default());

    let allocators: Vec<_> = (0..4)
        .map(|seed: usize| {
            let (heap, done) = (Arc::clone(&heap), Arc::clone(&done));
            std::thread::spawn(move || allocate_until(&done, &heap, seed))
        })
        .collect();
    let spawners: Vec<_> = (0..threads)
        .map(|thread| {
            let (held, heap) = (Arc::clone(&held), Arc::clone(&heap));
            let (failures, progress) = (Arc::clone(&failures), Arc::clone(&progress));
            std::thread::spawn(move || {
                for round in 0..per_thread {
                    let kind = KINDS[(thread + round) % KINDS.len()];
                    let tag = format!("t{thread}r{round}");
                    let holds_held = thread % 4 == 0;
                    let hook: Option<HookExtra> = if holds_held {
                        // Its own lock is not reentrant: this thread's hooks leave it alone.
                        None
                    } else {
                        let held = Arc::clone(&held);
                        Some(Arc::new(move |_pid| {
                            *held.lock().unwrap() += 1;
                            Ok(())
                        }))
                    };
                    let result = if holds_held {
                        let _guard = held.lock().unwrap();
                        spawn_one(kind, &tag, code_for(thread, round), hook)
                    } else if thread % 4 == 1 {
                        let mut guard = heap.lock().unwrap();
                        guard.push(vec![round as u8; 1 + round % 512]);
                        spawn_one(kind, &tag, code_for(thread, round), hook)
                    } else {
                        spawn_one(kind, &tag, code_for(thread, round), hook)
                    };
                    if let Err(what) = result {
                        failures.record(what);
                    }
                    progress.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for spawner in spawners {
        spawner.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    for allocator in allocators {
        allocator.join().unwrap();
    }
    let wall = started.elapsed();
    drop(watchdog);
    let fds_after = open_fds(false);
    let (zombies, live) = leftovers();
    println!("spawns={}", progress.load(Ordering::Relaxed));
    println!("wall_ms={}", wall.as_millis());
    println!(
        "spawns_per_s={:.0}",
        progress.load(Ordering::Relaxed) as f64 / wall.as_secs_f64()
    );
    failures.print("wrong");
    println!("fds_before={}", fds_before.join(","));
    println!("fds_after={}", fds_after.join(","));
    println!("fds_same={}", fds_before == fds_after);
    println!("zombies={zombies}");
    println!("live_children={live}");
}

/// Allocates and frees blocks of many sizes, inside and outside `heap`'s lock, until
/// `done`: the allocator's own locks are taken all the time by this thread.
fn allocate_until(done: &AtomicBool, heap: &Mutex<Vec<Vec<u8>>>, seed: usize) {
    let mut round = seed;
    let mut own: Vec<Box<[u8]>> = Vec::new();
    while !done.load(Ordering::Relaxed) {
        // Sizes from 1 byte to 300 KiB: above 128 KiB glibc maps and unmaps each block.
        let size = 1 + (round * 7919) % (300 * 1024);
        {
            let mut blocks = heap.lock().unwrap();
            blocks.push(vec![round as u8; size]);
            if blocks.len() > 32 {
                blocks.drain(..16);
            }
        }
        own.push(vec![0u8; size / 8 + 1].into_boxed_slice());
        if own.len() > 64 {
            own.clear();
        }
        let _text = format!("{round} {size}");
        round += 1;
    }
}

// ---------------------------------------------------------------------------------------
// eintr
// ---------------------------------------------------------------------------------------

static SIGNALS_HANDLED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    SIGNALS_HANDLED.fetch_add(1, Ordering::Relaxed);
}

/// Handlers for SIGUSR1 and SIGCHLD without SA_RESTART: every blocking system call a
/// signal interrupts in a thread that has them unblocked fails with EINTR.
fn install_interrupting_handlers() {
    let action = SigAction::new(
        SigHandler::Handler(count_signal),
        SaFlags::SA_NOCLDSTOP,
        SigSet::empty(),
    );
    for signal in [Signal::SIGUSR1, Signal::SIGCHLD] {
        // SAFETY: the handler only increments an atomic, which is async-signal-safe.
        unsafe { sigaction(signal, &action) }.unwrap();
    }
}

/// Shows that the handlers do interrupt: a thread blocked in read(2) on an empty pipe
/// gets EINTR when SIGUSR1 reaches it.
fn read_is_interrupted() -> bool {
    let (read_end, _write_end) = nix::unistd::pipe().unwrap();
    let tid = Arc::new(AtomicI32::new(0));
    let reader_tid = Arc::clone(&tid);
    let reader = std::thread::spawn(move || {
        reader_tid.store(nix::unistd::gettid().as_raw(), Ordering::SeqCst);
        let mut byte = [0u8];
        nix::unistd::read(&read_end, &mut byte)
    });
    // Until the reader answers: a signal that came before it blocked in read was handled
    // and lost, so send another.
    while !reader.is_finished() {
        let target = tid.load(Ordering::SeqCst);
        if target != 0 {
            tgkill(target, libc::SIGUSR1);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    reader.join().unwrap() == Err(nix::errno::Errno::EINTR)
}

/// Sleeps until `deadline`, however often signals interrupt it. `std::thread::sleep`
/// does not, under a storm: it restarts a relative sleep with the time the kernel says
/// is left, which includes the timer slack (50 µs), so a thread interrupted every few
/// microseconds is owed more after each interruption than before it, and sleeps for ever.
fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    let mut until = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into a live local.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut until) };
    let left = deadline.saturating_duration_since(now);
    let nanos = until.tv_nsec as u64 + u64::from(left.subsec_nanos());
    until.tv_sec += (left.as_secs() + nanos / 1_000_000_000) as libc::time_t;
    until.tv_nsec = (nanos % 1_000_000_000) as libc::c_long;
    // An absolute deadline: each restart after EINTR asks for the same moment.
    // SAFETY: clock_nanosleep reads one timespec from a live local; no remainder.
    while unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &until,
            std::ptr::null_mut(),
        )
    } == libc::EINTR
    {}
}

fn tgkill(tid: i32, signal: i32) {
    // SAFETY: tgkill(2) takes numbers; it signals only a thread of this process (the
    // thread group is ours), and a tid that ended meanwhile gives ESRCH, ignored.
    unsafe {
        libc::syscall(libc::SYS_tgkill, std::process::id() as i32, tid, signal);
    }
}

/// `eintr THREADS PER_THREAD`: spawns, waits and output of every kind while one thread
/// sends SIGUSR1, with a handler and no SA_RESTART, to each spawning thread and to the
/// process, in a loop, and SIGCHLD (same kind of handler) comes with every child's end.
fn eintr(threads: usize, per_thread: usize) {
    install_interrupting_handlers();
    println!("eintr_seen={}", read_is_interrupted());
    let fds_before = open_fds(false);
    let progress = Arc::new(AtomicUsize::new(0));
    let watchdog = Watchdog::start(
        Duration::from_secs(60) + Duration::from_millis(50) * (threads * per_thread) as u32,
        Arc::clone(&progress),
    );
    let failures = Arc::new(Failures::default());
    let tids: Arc<Vec<AtomicI32>> = Arc::new((0..threads).map(|_| AtomicI32::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));
    let before = SIGNALS_HANDLED.load(Ordering::Relaxed);
    let sender = {
        let (tids, done) = (Arc::clone(&tids), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut sent = 0usize;
            while !done.load(Ordering::Relaxed) {
                for tid in tids.iter() {
                    let tid = tid.load(Ordering::Relaxed);
                    if tid != 0 {
                        tgkill(tid, libc::SIGUSR1);
                        sent += 1;
                    }
                }
                nix::sys::signal::kill(Pid::this(), Signal::SIGUSR1).unwrap();
                sent += 1;
            }
            sent
        })
    };
    let spawners: Vec<_> = (0..threads)
        .map(|thread| {
            let (tids, failures, progress) = (
                Arc::clone(&tids),
                Arc::clone(&failures),
                Arc::clone(&progress),
            );
            std::thread::spawn(move || {
                tids[thread].store(nix::unistd::gettid().as_raw(), Ordering::Relaxed);
                for round in 0..per_thread {
                    let kind = KINDS[(thread + round) % KINDS.len()];
                    let hook: HookExtra = Arc::new(|_pid| {
                        // A hook that sleeps is a hook that gets interrupted.
                        sleep_until(Instant::now() + Duration::from_micros(200));
                        Ok(())
                    });
                    let tag = format!("t{thread}r{round}");
                    if let Err(what) = spawn_one(kind, &tag, code_for(thread, round), Some(hook)) {
                        failures.record(what);
                    }
                    progress.fetch_add(1, Ordering::Relaxed);
                }
                tids[thread].store(0, Ordering::Relaxed);
            })
        })
        .collect();
    for spawner in spawners {
        spawner.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let sent = sender.join().unwrap();
    drop(watchdog);
    let (zombies, live) = leftovers();
    println!("spawns={}", progress.load(Ordering::Relaxed));
    println!("signals_sent={sent}");
    println!(
        "signals_handled={}",
        SIGNALS_HANDLED.load(Ordering::Relaxed) - before
    );
    failures.print("wrong");
    println!("fds_same={}", fds_before == open_fds(false));
    println!("zombies={zombies}");
    println!("live_children={live}");
}

// ---------------------------------------------------------------------------------------
// fd-hygiene
// ---------------------------------------------------------------------------------------

/// The number each child of `fd-hygiene` gets a descriptor at, with `Command::fd`.
const GIVEN_FD: i32 = 7;

/// `fd-hygiene THREADS PER_THREAD`: from THREADS threads at once, children list their
/// descriptors — which must be 0, 1, 2 and the one each is given, never what the parent
/// left inheritable on purpose — and hooks look at what a child holds while it waits for
/// its parent: only what that spawn needs, never a descriptor of another spawn. A
/// monitor checks the whole time that no descriptor of ours in the parent is inheritable,
/// even for a moment.
fn fd_hygiene(threads: usize, per_thread: usize) {
    // Left without close-on-exec on purpose: no child may see it.
    let (_inheritable_read, _inheritable_write) = nix::unistd::pipe().unwrap();
    // Each child gets a copy of this one as GIVEN_FD.
    let (given, _given_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let given = Arc::new(given);
    let inheritable = open_fds(true);
    let stdio = ["0", "1", "2"].map(String::from);
    let not_for_children: Vec<String> = inheritable
        .iter()
        .filter(|fd| !stdio.contains(fd))
        .cloned()
        .collect();
    let mut expected: Vec<String> = stdio.to_vec();
    expected.push(GIVEN_FD.to_string());
    println!("given_fd={GIVEN_FD}");
    println!("expected={}", expected.join(","));
    println!("inheritable={}", not_for_children.join(","));
    let expected = Arc::new(expected);
    let not_for_children = Arc::new(not_for_children);
    let syscall_readable = std::fs::read_to_string("/proc/self/syscall").is_ok();
    println!("waiting_children_inspected={syscall_readable}");

    let fds_before = open_fds(false);
    let progress = Arc::new(AtomicUsize::new(0));
    let watchdog = Watchdog::start(
        Duration::from_secs(60) + Duration::from_millis(50) * (threads * per_thread) as u32,
        Arc::clone(&progress),
    );
    let failures = Arc::new(Failures::default());
    let leaks = Arc::new(Failures::default());
    let done = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (done, inheritable, leaks) =
            (Arc::clone(&done), inheritable.clone(), Arc::clone(&leaks));
        std::thread::spawn(move || {
            let mut samples = 0usize;
            while !done.load(Ordering::Relaxed) {
                let now = open_fds(true);
                let extra: Vec<&String> =
                    now.iter().filter(|fd| !inheritable.contains(fd)).collect();
                if !extra.is_empty() {
                    leaks.record(format!("inheritable in the parent: {extra:?}"));
                }
                samples += 1;
            }
            samples
        })
    };
    let waiting_checked = Arc::new(AtomicUsize::new(0));
    let spawners: Vec<_> = (0..threads)
        .map(|thread| {
            let (expected, failures, progress) = (
                Arc::clone(&expected),
                Arc::clone(&failures),
                Arc::clone(&progress),
            );
            let (given, not_for_children) = (Arc::clone(&given), Arc::clone(&not_for_children));
            let waiting_checked = Arc::clone(&waiting_checked);
            std::thread::spawn(move || {
                for round in 0..per_thread {
                    let kind = KINDS[(thread + round) % KINDS.len()];
                    let tag = format!("t{thread}r{round} {kind:?}");
                    let mut command = kind.command("list-fds");
                    command.fd(GIVEN_FD, given.try_clone().unwrap());
                    if matches!(kind, Kind::PlainHook | Kind::NamespacedHook) {
                        if syscall_readable {
                            let (not_for_children, failures) =
                                (Arc::clone(&not_for_children), Arc::clone(&failures));
                            let (tag, checked) = (tag.clone(), Arc::clone(&waiting_checked));
                            command.parent_setup(move |pid| {
                                if let Err(what) = check_waiting_child(pid, &not_for_children) {
                                    failures.record(format!("{tag}: {what}"));
                                }
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
                    match command.output() {
                        Ok(output) => {
                            let stdout = String::from_utf8_lossy(&output.stdout);
                            let seen = stdout.lines().find_map(|line| line.strip_prefix("fds="));
                            if output.status.code() != Some(0)
                                || seen != Some(expected.join(",").as_str())
                            {
                                failures.record(format!(
                                    "{tag}: expected fds={} and code 0, got {seen:?}, {:?}, \
                                     stderr {:?}",
                                    expected.join(","),
                                    output.status,
                                    String::from_utf8_lossy(&output.stderr)
                                ));
                            }
                        }
                        Err(error) => failures.record(format!("{tag}: {error}")),
                    }
                    progress.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for spawner in spawners {
        spawner.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let samples = monitor.join().unwrap();
    drop(watchdog);
    let (zombies, live) = leftovers();
    println!("spawns={}", progress.load(Ordering::Relaxed));
    println!(
        "waiting_checked={}",
        waiting_checked.load(Ordering::Relaxed)
    );
    println!("monitor_samples={samples}");
    failures.print("wrong");
    leaks.print("parent_inheritable_leaks");
    println!("fds_same={}", fds_before == open_fds(false));
    println!("zombies={zombies}");
    println!("live_children={live}");
}

/// Waits (bounded) until the child `pid` blocks in read(2), where it waits for its parent,
/// then checks the descriptors it holds: besides 0, 1, 2, only the six it needs — the read
/// end it waits on, the write end of the pipe whose end-of-file tells the parent it
/// exec'd, its stdin, stdout and stderr and the descriptor it is given (it installs them
/// after the wait) — and none the parent left inheritable. Anything else would be a
/// descriptor of our own or of another spawn, kept open for as long as this child waits.
fn check_waiting_child(pid: u32, not_for_children: &[String]) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let syscall = std::fs::read_to_string(format!("/proc/{pid}/syscall"))
            .map_err(|error| format!("/proc/{pid}/syscall: {error}"))?;
        if syscall.split(' ').next() == Some(libc::SYS_read.to_string().as_str()) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("the child never blocked in read(2): {syscall}"));
        }
        std::thread::yield_now();
    }
    let mut extra = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).map_err(|error| error.to_string())? {
        let entry = entry.map_err(|error| error.to_string())?;
        let fd = entry.file_name().to_string_lossy().into_owned();
        if not_for_children.contains(&fd) {
            return Err(format!(
                "while waiting for its parent it holds {fd}, which the parent left \
                 inheritable and the child will never use"
            ));
        }
        if !["0", "1", "2"].contains(&fd.as_str()) {
            let target = std::fs::read_link(entry.path()).unwrap_or_default();
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
fn can_userns() {
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

// ---------------------------------------------------------------------------------------
// signals
// ---------------------------------------------------------------------------------------

/// `signals`: children ended by signals, sent by the parent or raised by the child, and
/// what their status says.
fn signals() {
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
        match result {
            Ok(status) => println!("case={name} {}", status_text(status)),
            Err(error) => println!("case={name} error={error}"),
        }
    }
    for (name, signal) in [
        ("raise-sigsegv", "11"),
        ("raise-sigbus", "7"),
        ("raise-sigfpe", "8"),
        ("raise-sigterm", "15"),
        ("abort", "abort"),
    ] {
        match Command::new("raise")
            .arg(signal)
            .stderr(Stdio::null())
            .status()
        {
            Ok(status) => println!("case={name} {}", status_text(status)),
            Err(error) => println!("case={name} error={error}"),
        }
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

fn status_text(status: std::process::ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("code={code}"),
        (None, Some(signal)) => format!("signal={signal}"),
        _ => format!("other={status:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Parents killed: the harness
// ---------------------------------------------------------------------------------------

/// The environment variable every process of one harness run carries; a process with it
/// that is alive after the run is a survivor, wherever it was reparented to.
const MARK: &str = "REEXEC_FAULTS_MARK";

/// How long orphans get to end after their parent was killed. They end in microseconds;
/// this only bounds the wait for one that never does (its entry sleeps 30 s).
const ORPHAN_GRACE: Duration = Duration::from_secs(5);

/// What became of the orphans of one killed parent.
#[derive(Default)]
struct Orphans {
    /// How each reaped orphan ended, counted.
    ends: BTreeMap<String, usize>,
    /// Alive after ORPHAN_GRACE: killed by the harness, by pid.
    survivors: Vec<String>,
}

impl Orphans {
    fn count(&self) -> usize {
        self.ends.values().sum()
    }

    fn add(&mut self, other: Orphans) {
        for (end, count) in other.ends {
            *self.ends.entry(end).or_default() += count;
        }
        self.survivors.extend(other.survivors);
    }

    fn print(&self) {
        println!("orphans={}", self.count());
        for (end, count) in &self.ends {
            println!("orphan_end={end} count={count}");
        }
        println!("survivors={}", self.survivors.len());
        for survivor in &self.survivors {
            println!("survivor={survivor}");
        }
    }
}

/// Makes this process the reaper of its descendants' orphans, once.
fn become_subreaper() {
    nix::sys::prctl::set_child_subreaper(true).unwrap();
}

/// Starts this binary as the middle process with `args`, marked with `mark`; its stdout
/// is piped, its stderr ours.
fn start_middle(args: &[&str], mark: &str) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args(args)
        .env(MARK, mark)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Once the middle process is dead: reaps the orphans it left us as they end, for up to
/// ORPHAN_GRACE; then any process still carrying `mark` is a survivor — described, killed
/// by its pid and reaped.
fn collect_orphans(mark: &str) -> Orphans {
    let mut orphans = Orphans::default();
    let deadline = Instant::now() + ORPHAN_GRACE;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => {
                *orphans.ends.entry(format!("code:{code}")).or_default() += 1
            }
            Ok(WaitStatus::Signaled(_, signal, _)) => {
                *orphans
                    .ends
                    .entry(format!("signal:{}", signal as i32))
                    .or_default() += 1;
            }
            Ok(WaitStatus::StillAlive) => {
                if Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::ECHILD) => break,
            Err(errno) => panic!("waitpid: {errno}"),
        }
    }
    let marked = marked_processes(mark);
    for (pid, description) in &marked {
        orphans.survivors.push(format!("{pid} {description}"));
        let _ = nix::sys::signal::kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
    }
    if !marked.is_empty() {
        // Ours (reparented to us) are reaped here; others by whoever they were given to.
        let deadline = Instant::now() + ORPHAN_GRACE;
        while Instant::now() < deadline {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(1)),
                Err(nix::errno::Errno::ECHILD) => break,
                _ => {}
            }
        }
    }
    orphans
}

/// Live (not zombie) processes whose environment holds `MARK=mark`.
fn marked_processes(mark: &str) -> Vec<(u32, String)> {
    let wanted = format!("{MARK}={mark}").into_bytes();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        // Other users' processes are unreadable without privilege: none of them is ours.
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if environ.split(|&byte| byte == 0).any(|var| var == wanted)
            && stat_of(pid).is_some_and(|stat| stat.state != 'Z')
        {
            found.push((pid, describe_process(pid)));
        }
    }
    found
}

/// `sweep ROUNDS THREADS`: ROUNDS times, starts a middle process whose THREADS threads
/// spawn children of every kind in a loop, and SIGKILLs it after a delay that walks over
/// 0 to 30 ms; then every orphan must end within ORPHAN_GRACE.
fn sweep(rounds: usize, threads: &str) {
    become_subreaper();
    let mut all = Orphans::default();
    let started = Instant::now();
    for round in 0..rounds {
        // 7919 is prime: the delays spread over the whole range, not in one direction.
        let delay = Duration::from_micros(((round * 7919) % 30_000) as u64);
        let mark = format!("{}-{round}", std::process::id());
        let mut middle = start_middle(&["spawn-loop", threads], &mark);
        let mut line = String::new();
        BufReader::new(middle.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "ready\n", "the middle process did not start");
        std::thread::sleep(delay);
        middle.kill().unwrap();
        let status = middle.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "the middle ended before the kill"
        );
        all.add(collect_orphans(&mark));
    }
    println!("rounds={rounds}");
    println!("wall_ms={}", started.elapsed().as_millis());
    all.print();
}

/// `spawn-loop THREADS`, the middle of `sweep`: THREADS threads spawn children of every
/// kind — long sleepers kept running (ended by the death signal when we are killed), and
/// short children waited for — until killed.
fn spawn_loop(threads: usize) {
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

// ---------------------------------------------------------------------------------------
// Parents killed at chosen points
// ---------------------------------------------------------------------------------------

/// `kill-at POINT KIND`: a middle process spawns one child of KIND and dies of SIGKILL at
/// POINT; the harness reports how the middle and its orphan ended.
fn kill_at(point: &str, kind: &str) {
    if point == "before-child-runs" {
        return kill_before_child_runs(kind);
    }
    become_subreaper();
    let mark = format!("{}-{point}-{kind}", std::process::id());
    let mut middle = start_middle(&["die-at", point, kind], &mark);
    let mut stdout = String::new();
    middle
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = middle.wait().unwrap();
    println!("middle_{}", status_text(status));
    for line in stdout.lines() {
        println!("middle_{line}");
    }
    collect_orphans(&mark).print();
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
    let middle_pid = middle.id() as libc::pid_t;
    // Every child the middle creates is attached at birth, stopped before it runs.
    let options = libc::PTRACE_O_TRACEFORK
        | libc::PTRACE_O_TRACEVFORK
        | libc::PTRACE_O_TRACECLONE
        | libc::PTRACE_O_EXITKILL;
    if let Err(error) = ptrace(libc::PTRACE_SEIZE, middle_pid, options as usize) {
        println!("skipped=ptrace(PTRACE_SEIZE) refused here: {error}");
        middle.kill().unwrap();
        middle.wait().unwrap();
        return;
    }
    // The middle waits for this byte before it spawns: it is traced from here on.
    middle.stdin.take().unwrap().write_all(b"x").unwrap();

    let mut child = None;
    let mut child_stopped = false;
    while !child_stopped {
        let (pid, status) = wait_any_traced();
        if pid == middle_pid {
            if !libc::WIFSTOPPED(status) {
                println!("error=the middle process ended before its child was created");
                return;
            }
            let event = status >> 16;
            let pass_on = if event == 0 {
                libc::WSTOPSIG(status)
            } else {
                0
            };
            if [
                libc::PTRACE_EVENT_FORK,
                libc::PTRACE_EVENT_VFORK,
                libc::PTRACE_EVENT_CLONE,
            ]
            .contains(&event)
            {
                let mut new_pid: libc::c_ulong = 0;
                ptrace(
                    libc::PTRACE_GETEVENTMSG,
                    middle_pid,
                    &mut new_pid as *mut libc::c_ulong as usize,
                )
                .unwrap();
                child = Some(new_pid as libc::pid_t);
            }
            ptrace(libc::PTRACE_CONT, middle_pid, pass_on as usize).unwrap();
        } else if libc::WIFSTOPPED(status) {
            // The new child's first stop: it has not run an instruction of its own.
            child.get_or_insert(pid);
            child_stopped = true;
        }
    }
    let child = child.unwrap();
    println!("child_held={child}");
    if kind != "plain" && kind != "userpid" {
        // A waiting child: the middle writes the maps, runs the hook, writes the byte that
        // releases the child, and then waits in read(2) for the child's exec.
        let deadline = Instant::now() + Duration::from_secs(10);
        let read = libc::SYS_read.to_string();
        while std::fs::read_to_string(format!("/proc/{middle_pid}/syscall"))
            .is_ok_and(|syscall| syscall.split(' ').next() != Some(read.as_str()))
        {
            assert!(
                Instant::now() < deadline,
                "the middle never waited for its child"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    // Vfork kinds: the middle sleeps in clone(2) until its child execs, which it can't.
    nix::sys::signal::kill(Pid::from_raw(middle_pid), Signal::SIGKILL).unwrap();
    loop {
        let (pid, status) = wait_any_traced();
        if pid == middle_pid && (libc::WIFEXITED(status) || libc::WIFSIGNALED(status)) {
            println!(
                "middle_{}",
                status_text(std::process::ExitStatus::from_raw(status))
            );
            break;
        }
    }
    // Let the child run: its parent is dead.
    ptrace(libc::PTRACE_DETACH, child, 0).unwrap();
    collect_orphans(&mark).print();
    let mut stdout = String::new();
    middle
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    for line in stdout.lines() {
        println!("middle_{line}");
    }
}

/// `ptrace(request, pid, 0, data)`.
fn ptrace(request: libc::c_uint, pid: libc::pid_t, data: usize) -> std::io::Result<()> {
    // SAFETY: the requests used here take no address, and as data a number or (for
    // PTRACE_GETEVENTMSG) a pointer to a live c_ulong.
    let result = unsafe { libc::ptrace(request, pid, 0usize, data) };
    if result == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// waitpid(-1, __WALL): the next child or tracee that changed state.
fn wait_any_traced() -> (libc::pid_t, libc::c_int) {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes one int into a live local.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL) };
        if pid > 0 {
            return (pid, status);
        }
        let error = std::io::Error::last_os_error();
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::Interrupted,
            "waitpid: {error}"
        );
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
fn die_at(point: &str, kind: &str) {
    let point = match point {
        "open-map" => Point::OpenMap,
        "hook" => Point::Hook,
        "release" => Point::Release,
        "after-exec" => Point::AfterExec,
        "before-child-runs" => Point::BeforeChildRuns,
        other => panic!("unknown point {other}"),
    };
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
        // for writing; nothing else in this thread opens a file that way.
        Point::OpenMap => Some((
            libc::SYS_openat,
            2,
            (libc::O_WRONLY | libc::O_CLOEXEC) as u32,
            "dying_at=open-map\n",
        )),
        // write(…, 1): the one-byte write that releases the child; the maps are longer.
        Point::Release => Some((libc::SYS_write, 2, 1, "dying_at=release\n")),
        Point::Hook | Point::AfterExec | Point::BeforeChildRuns => None,
    };
    if let Some((number, arg, value, message)) = trapped
        && let Err(error) = die_at_syscall(number, arg, value, message)
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

/// The message `die_now_on_sigsys` writes; set once, before the filter goes in.
static DYING_MESSAGE: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// Writes `message` to stdout and SIGKILLs this process: a death at this exact point.
fn die_now(message: &str) -> ! {
    // SAFETY: write(2) from a live string, then kill(2) of our own process.
    unsafe {
        libc::write(1, message.as_ptr().cast(), message.len());
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    unreachable!("SIGKILL returned")
}

extern "C" fn die_now_on_sigsys(_: libc::c_int) {
    let message = DYING_MESSAGE.get().copied().unwrap_or("dying_at=?\n");
    // SAFETY: write(2) and kill(2) are async-signal-safe; the message is a static string.
    unsafe {
        libc::write(1, message.as_ptr().cast(), message.len());
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
}

/// Makes this thread's next system call `number` whose argument `arg` (its low 32 bits,
/// masked for open flags) equals `value` raise SIGSYS instead of running, and SIGSYS
/// write `message` and SIGKILL the process: a seccomp filter (seccomp(2)) on this
/// thread only. The child inherits the filter but makes no such call before execve.
fn die_at_syscall(
    number: i64,
    arg: usize,
    value: u32,
    message: &'static str,
) -> Result<(), String> {
    let _ = DYING_MESSAGE.set(message);
    let sigsys = SigAction::new(
        SigHandler::Handler(die_now_on_sigsys),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler makes only async-signal-safe calls.
    unsafe { sigaction(Signal::SIGSYS, &sigsys) }.map_err(|errno| errno.to_string())?;
    // Flags as the kernel sees them may carry O_LARGEFILE: compare the bits we set only.
    let mask = if number == libc::SYS_openat {
        (libc::O_ACCMODE | libc::O_CLOEXEC | libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND) as u32
    } else {
        u32::MAX
    };
    filter_syscall(
        number,
        Some(SyscallArg {
            index: arg,
            mask,
            value,
        }),
        libc::SECCOMP_RET_TRAP,
    )
}

reexec::main! {
    fn main() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let number = |text: &str| -> usize { text.parse().expect("a number") };
        match args.as_slice() {
            ["load", threads, per_thread] => load(number(threads), number(per_thread)),
            ["eintr", threads, per_thread] => eintr(number(threads), number(per_thread)),
            ["fd-hygiene", threads, per_thread] => fd_hygiene(number(threads), number(per_thread)),
            ["signals"] => signals(),
            ["can-userns"] => can_userns(),
            ["sweep", rounds, threads] => sweep(number(rounds), threads),
            ["spawn-loop", threads] => spawn_loop(number(threads)),
            ["kill-at", point, kind] => kill_at(point, kind),
            ["die-at", point, kind] => die_at(point, kind),
            other => {
                eprintln!("probe-faults: unknown mode {other:?}");
                std::process::exit(2);
            }
        }
    }
}
