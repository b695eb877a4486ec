//! Many threads spawning at once: [`Stress`] runs the rounds, with a watchdog against hangs,
//! a count of what went wrong, and a check of what the run left behind — descriptors,
//! zombies, children still running.

use std::io::Write;
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

use crate::output::{describe, field};
use crate::procfs::{open_fds, processes_where, thread_states};

/// `threads` threads, each doing `rounds` rounds at once.
#[derive(Debug, Clone, Copy)]
pub struct Stress {
    /// How many threads run rounds at once.
    pub threads: usize,
    /// How many rounds each thread does.
    pub rounds: usize,
    /// How long the whole run may take: past it the process reports where each thread
    /// waits and exits with status 3 (see [`Watchdog`]).
    pub limit: Duration,
}

impl Stress {
    /// Runs `round(thread, round)` for every round of every thread, while `beside` runs on
    /// a thread of its own until the flag it gets is set, once the last round is done;
    /// returns the outcome and what `beside` returned. A round that returns `Err` is a
    /// failure; the run goes on.
    pub fn run<R: Send>(
        &self,
        beside: impl FnOnce(&AtomicBool) -> R + Send,
        round: impl Fn(usize, usize) -> Result<(), String> + Sync,
    ) -> (Outcome, R) {
        let fds_before = open_fds(false);
        let started = Instant::now();
        let done = Arc::new(AtomicUsize::new(0));
        let watchdog = Watchdog::start(self.limit, Arc::clone(&done));
        let failures = Failures::default();
        let finished = AtomicBool::new(false);
        let besides = std::thread::scope(|scope| {
            let besides = scope.spawn(|| beside(&finished));
            let spawners: Vec<_> = (0..self.threads)
                .map(|thread| {
                    let (round, failures, done) = (&round, &failures, &done);
                    scope.spawn(move || {
                        for index in 0..self.rounds {
                            if let Err(what) = round(thread, index) {
                                failures.record(what);
                            }
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            // Every spawner is joined, and `beside` told to stop, before a panic of one is
            // passed on: the scope would otherwise wait for `beside` for ever.
            let joined: Vec<_> = spawners.into_iter().map(|spawner| spawner.join()).collect();
            finished.store(true, Ordering::Relaxed);
            let besides = besides.join();
            for result in joined {
                result.unwrap();
            }
            besides.unwrap()
        });
        let wall = started.elapsed();
        drop(watchdog);
        let fds_after = open_fds(false);
        let (zombies, live_children) = leftovers();
        let outcome = Outcome {
            rounds: done.load(Ordering::Relaxed),
            wall,
            failures,
            fds_before,
            fds_after,
            zombies,
            live_children,
        };
        (outcome, besides)
    }
}

/// What a [`Stress`] run did and left.
#[derive(Debug)]
pub struct Outcome {
    /// Rounds done: spawns, for the probes.
    pub rounds: usize,
    /// How long they took.
    pub wall: Duration,
    /// The rounds that failed.
    pub failures: Failures,
    /// This process's descriptors before the run…
    pub fds_before: Vec<String>,
    /// … and after it: the same, or the run leaked or closed one.
    pub fds_after: Vec<String>,
    /// Children that had ended and were never waited for (reaped now).
    pub zombies: usize,
    /// Children still running after the run.
    pub live_children: usize,
}

impl Outcome {
    /// Prints `spawns`, `wall_ms`, `spawns_per_s`, `wrong` (and `wrong_example` lines),
    /// `fds_before`, `fds_after`, `fds_same`, `zombies` and `live_children`.
    pub fn print(&self) {
        println!("spawns={}", self.rounds);
        println!("wall_ms={}", self.wall.as_millis());
        println!(
            "spawns_per_s={:.0}",
            self.rounds as f64 / self.wall.as_secs_f64()
        );
        self.failures.print("wrong");
        println!("fds_before={}", self.fds_before.join(","));
        println!("fds_after={}", self.fds_after.join(","));
        println!("fds_same={}", self.fds_before == self.fds_after);
        println!("zombies={}", self.zombies);
        println!("live_children={}", self.live_children);
    }
}

/// Asserts what every stress run must leave, as [`Outcome::print`] printed it: no hang,
/// `spawns` rounds done, none wrong, this process's descriptors as they were, and no
/// child left behind ([`assert_no_leftovers`]).
pub fn assert_clean(label: &str, output: &Output, spawns: &str) {
    let context = format!("{label}: {}", describe(output));
    assert_eq!(field(output, "timed_out_after_s"), None, "hung: {context}");
    assert_eq!(field(output, "spawns"), Some(spawns), "{context}");
    assert_eq!(field(output, "wrong"), Some("0"), "{context}");
    assert_eq!(
        field(output, "fds_same"),
        Some("true"),
        "the parent's descriptors changed: {context}"
    );
    assert_no_leftovers(label, output);
}

/// Asserts that a probe printed `zombies=0` and `live_children=0` (see [`leftovers`]).
pub fn assert_no_leftovers(label: &str, output: &Output) {
    for key in ["zombies", "live_children"] {
        assert_eq!(
            field(output, key),
            Some("0"),
            "{label}: children left behind: {}",
            describe(output)
        );
    }
}

/// Failures counted, the first few kept for the report.
#[derive(Debug, Default)]
pub struct Failures {
    count: AtomicUsize,
    first: Mutex<Vec<String>>,
}

impl Failures {
    /// Counts one; keeps what it says if fewer than 10 were kept.
    pub fn record(&self, what: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut first = self
            .first
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if first.len() < 10 {
            first.push(what);
        }
    }

    /// Prints `KEY=COUNT` and a `KEY_example=` line for each kept one.
    pub fn print(&self, key: &str) {
        println!("{key}={}", self.count.load(Ordering::Relaxed));
        for what in self.first.lock().unwrap().iter() {
            println!("{key}_example={}", what.replace('\n', "\\n"));
        }
    }
}

/// Ends the process with a description of where each thread waits if it is not dropped
/// within its limit: a hang becomes a failure with a reason, not a stuck CI job. Exiting
/// ends the spawning threads, whose death signal ends their children.
#[derive(Debug)]
pub struct Watchdog(Option<mpsc::Sender<()>>);

impl Watchdog {
    /// Starts the watchdog; `progress` is what it reports as `completed` should it fire.
    pub fn start(limit: Duration, progress: Arc<AtomicUsize>) -> Watchdog {
        let (cancel, cancelled) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = cancelled.recv_timeout(limit) {
                println!("timed_out_after_s={}", limit.as_secs());
                println!("completed={}", progress.load(Ordering::Relaxed));
                for line in thread_states() {
                    println!("hung_thread={line}");
                }
                for (pid, line) in processes_where(|_, stat| stat.ppid == std::process::id()) {
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

/// Reaps what is left and says how many children were left: zombies (exited, never
/// waited for) and live ones, each printed as a `leftover_child=` line. 0 and 0 is the
/// only right answer.
pub fn leftovers() -> (usize, usize) {
    // The fork server, when the suites run through it, is a child that belongs.
    let server = reexec::ForkServer::pid();
    let live = processes_where(|pid, stat| {
        stat.ppid == std::process::id() && stat.state != 'Z' && Some(pid) != server
    });
    for (pid, description) in &live {
        println!("leftover_child={pid} {description}");
    }
    let mut zombies = 0;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
            Ok(_) => zombies += 1,
            Err(Errno::EINTR) => {}
            Err(errno) => panic!("waitpid: {errno}"),
        }
    }
    (zombies, live.len())
}

/// Allocates and frees blocks of many sizes, inside and outside `heap`'s lock, until
/// `done`: the allocator's own locks are taken all the time by this thread.
pub fn allocate_until(done: &AtomicBool, heap: &Mutex<Vec<Vec<u8>>>, seed: usize) {
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

/// Runs `allocate_until` on `count` threads until `done`: what [`Stress::run`]'s `beside`
/// does for a run under allocation.
pub fn allocate_on_threads(count: usize, done: &AtomicBool, heap: &Mutex<Vec<Vec<u8>>>) {
    std::thread::scope(|scope| {
        for seed in 0..count {
            scope.spawn(move || allocate_until(done, heap, seed));
        }
    });
}
