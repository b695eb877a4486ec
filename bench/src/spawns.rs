//! The spawns being measured, and the worker processes that measure them.
//!
//! Each measurement runs in a worker — this binary re-executed into `bench-worker` — so
//! that its parent's memory and threads are exactly what the row says: a worker grows
//! to the resident size it is given before it spawns anything.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use reexec::Namespaces;

use crate::stats::Samples;

/// The namespaces the seed's `ns-process` creates, which the `ns` rows spawn into: user,
/// mount, UTS, IPC, PID and network.
const SEED: Namespaces = Namespaces::USER
    .union(Namespaces::MOUNT)
    .union(Namespaces::UTS)
    .union(Namespaces::IPC)
    .union(Namespaces::PID)
    .union(Namespaces::NET);

/// The flag that makes this binary exit at once: the floor for exec'ing it.
pub(crate) const EXIT_NOW: &str = "--exit-now";

/// An entry that returns at once.
#[reexec::entry("bench-noop")]
fn noop() {}

/// An entry that sets the hostname of its new UTS namespace, then returns.
#[reexec::entry("bench-ns")]
fn in_namespaces() -> ExitCode {
    match nix::unistd::sethostname("reexec-bench") {
        Ok(()) => ExitCode::SUCCESS,
        Err(errno) => {
            eprintln!("bench-ns: sethostname: {errno}");
            ExitCode::FAILURE
        }
    }
}

/// One kind of spawn-and-wait.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    /// `std::process::Command` running this binary with [`EXIT_NOW`].
    Std,
    /// `reexec::Command` into `bench-noop`.
    Plain,
    /// `reexec::Command` into `bench-ns` in new user (root mapped), mount, UTS, IPC, PID
    /// and network namespaces.
    Ns,
    /// The same without the network namespace.
    NsNoNet,
}

impl Kind {
    pub(crate) const ALL: [Kind; 4] = [Kind::Std, Kind::Plain, Kind::Ns, Kind::NsNoNet];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Std => "std",
            Kind::Plain => "plain",
            Kind::Ns => "ns",
            Kind::NsNoNet => "ns-no-net",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// Spawns one child and waits for it; a failure ends the benchmark, whose figures
    /// would mean nothing.
    pub(crate) fn run_once(self) {
        let result = match self {
            Kind::Std => std::process::Command::new("/proc/self/exe")
                .arg(EXIT_NOW)
                .status()
                .map_err(|error| error.to_string()),
            Kind::Plain => reexec::Command::new("bench-noop")
                .status()
                .map_err(|error| error.to_string()),
            Kind::Ns | Kind::NsNoNet => {
                let namespaces = if self == Kind::Ns {
                    SEED
                } else {
                    SEED.without(Namespaces::NET)
                };
                reexec::Command::new("bench-ns")
                    .namespaces(namespaces)
                    .map_root_to_caller()
                    .status()
                    .map_err(|error| error.to_string())
            }
        };
        match result {
            Ok(status) if status.success() => {}
            Ok(status) => fail(&format!("a {} spawn ended with {status}", self.name())),
            Err(error) => fail(&format!("a {} spawn failed: {error}", self.name())),
        }
    }

    /// How many spawns of this kind one round of `spawn_worker` makes: the namespaced
    /// ones take several times longer.
    fn per_round(self) -> usize {
        match self {
            Kind::Std | Kind::Plain => 24,
            Kind::Ns | Kind::NsNoNet => 6,
        }
    }
}

pub(crate) fn fail(message: &str) -> ! {
    eprintln!("reexec-bench: {message}");
    std::process::exit(2)
}

/// `bench-worker spawn MIB` and `bench-worker threads N KIND MILLIS`.
#[reexec::entry("bench-worker")]
fn worker() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["spawn", mib] => spawn_worker(number(mib)),
        ["threads", threads, kind, millis] => {
            let kind = Kind::parse(kind).unwrap_or_else(|| fail("unknown kind"));
            threads_worker(number(threads), kind, number(millis))
        }
        _ => fail(&format!("bench-worker: bad arguments {args:?}")),
    }
    ExitCode::SUCCESS
}

fn number(text: &str) -> usize {
    text.parse()
        .unwrap_or_else(|_| fail(&format!("not a number: {text}")))
}

/// Grows to `mib` MiB resident, says `ready`, then runs one round for each `round N`
/// line on its standard input — every [`Kind`] a few times, in an order that turns with
/// N, so that drift of the machine hits every kind alike — and answers `done`. At `end`
/// (or end-of-file) prints one line per kind: `kind=… rss_kib=… n=… samples=…`.
///
/// The orchestrator keeps a worker of each size alive and hands the rounds out to them
/// in turn, so that both sizes are measured on the same machine, at the same time.
fn spawn_worker(mib: usize) {
    use std::io::BufRead;

    let _ballast = Ballast::resident(mib << 20);
    let rss_kib = resident_kib();
    // Warm up: the binary's pages, the kernel's caches.
    for kind in Kind::ALL {
        kind.run_once();
    }
    println!("ready");
    let mut samples = [(); 4].map(|()| Samples::default());
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Some(round) = line.strip_prefix("round ") else {
            break;
        };
        let round = number(round);
        for offset in 0..Kind::ALL.len() {
            let index = (round + offset) % Kind::ALL.len();
            let kind = Kind::ALL[index];
            for _ in 0..kind.per_round() {
                samples[index].time(|| kind.run_once());
            }
        }
        println!("done");
    }
    for (kind, samples) in Kind::ALL.into_iter().zip(&samples) {
        println!(
            "kind={} rss_kib={rss_kib} {}",
            kind.name(),
            samples.encode()
        );
    }
}

/// `threads` threads spawn `kind` children, each waiting for its own, for `millis`
/// milliseconds. Prints `spawns=… nanos=…`.
fn threads_worker(threads: usize, kind: Kind, millis: usize) {
    kind.run_once();
    let deadline = Instant::now() + Duration::from_millis(millis as u64);
    let start = Instant::now();
    let counts: Vec<usize> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(move || {
                    let mut count = 0;
                    while Instant::now() < deadline {
                        kind.run_once();
                        count += 1;
                    }
                    count
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or(0))
            .collect()
    });
    let nanos = crate::stats::duration_ns(start.elapsed());
    println!("spawns={} nanos={nanos}", counts.iter().sum::<usize>());
}

/// Memory kept resident: written once per page, so the kernel backs each page and a
/// fork-style clone has page tables to copy.
struct Ballast {
    _pages: Vec<u8>,
}

impl Ballast {
    /// Enough to bring this process's resident size to `bytes`.
    fn resident(bytes: usize) -> Ballast {
        // Small pages, as a long-running program's heap mostly is: transparent huge pages
        // would hide the page-table cost behind 512 times fewer entries.
        if let Err(errno) = nix::sys::prctl::set_thp_disable(true) {
            eprintln!("reexec-bench: could not turn off transparent huge pages: {errno}");
        }
        let missing = bytes.saturating_sub(resident_kib() << 10);
        // Zeroed by the kernel, not yet resident: the writes below make every page so.
        let mut ballast = vec![0u8; missing];
        for page in ballast.iter_mut().step_by(4096) {
            *page = 1;
        }
        Ballast {
            _pages: std::hint::black_box(ballast),
        }
    }
}

/// This process's resident set size, from `VmRSS` in `/proc/self/status`.
pub(crate) fn resident_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
