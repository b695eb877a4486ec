//! Parents killed on purpose, and what became of their children: this process becomes the
//! reaper of orphans (PR_SET_CHILD_SUBREAPER), starts a "middle" process that spawns
//! children, kills it, and collects the orphans — each process of a run carries a mark in
//! its environment, so that one still alive afterwards is found wherever it went.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::procfs::{environment_has, processes_where};
use crate::run::first_line;

/// The environment variable every process of one run carries; a process with it that is
/// alive after the run is a survivor, wherever it was reparented to.
pub const MARK: &str = "REEXEC_FAULTS_MARK";

/// Makes this process the reaper of its descendants' orphans. Its own fork server, if
/// it runs one (the suites through the server), is stopped first: the middle's is the
/// one that counts, and ours would be one more child, alive, for [`collect`] to wait for.
pub fn become_subreaper() {
    reexec::ForkServer::stop();
    nix::sys::prctl::set_child_subreaper(true).unwrap();
}

/// Starts this binary again with `args` as the middle process, marked with `mark`; its
/// stdout is piped, its stderr ours.
pub fn start_middle(args: &[&str], mark: &str) -> std::process::Child {
    let mut middle = std::process::Command::new(std::env::current_exe().unwrap());
    if crate::fork_server::asked() {
        middle.env(crate::fork_server::ASK, "1");
    }
    middle
        .args(args)
        .env(MARK, mark)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// What became of the orphans of killed parents.
#[derive(Debug, Default)]
pub struct Orphans {
    /// How each reaped orphan ended (`code:N`, `signal:N`), counted.
    pub ends: BTreeMap<String, usize>,
    /// Alive after the grace time: killed by [`collect`], by pid, and described.
    pub survivors: Vec<String>,
    /// How the middle's fork server ended, when [`collect_apart`] was told its pid.
    pub fork_server_end: Option<String>,
}

impl Orphans {
    /// How many orphans were reaped.
    pub fn count(&self) -> usize {
        self.ends.values().sum()
    }

    /// Adds what another run left.
    pub fn add(&mut self, other: Orphans) {
        for (end, count) in other.ends {
            *self.ends.entry(end).or_default() += count;
        }
        self.survivors.extend(other.survivors);
    }

    /// Prints `orphans=N`, an `orphan_end=END count=N` line per way they ended,
    /// `survivors=N` and a `survivor=` line for each.
    pub fn print(&self) {
        println!("orphans={}", self.count());
        for (end, count) in &self.ends {
            println!("orphan_end={end} count={count}");
        }
        if let Some(end) = &self.fork_server_end {
            println!("fork_server_end={end}");
        }
        println!("survivors={}", self.survivors.len());
        for survivor in &self.survivors {
            println!("survivor={survivor}");
        }
    }
}

/// Once the middle process is dead: reaps the orphans it left us as they end, for up to
/// `grace`; then any process still carrying `mark` is a survivor — described, killed by
/// its pid and reaped.
pub fn collect(mark: &str, grace: Duration) -> Orphans {
    collect_apart(mark, grace, None)
}

/// [`collect`], with the middle's fork server, if it had one, counted apart: it is no
/// orphan of the spawn but the middle's helper, which must end with it too.
pub fn collect_apart(mark: &str, grace: Duration, fork_server: Option<u32>) -> Orphans {
    let mut orphans = Orphans::default();
    let deadline = Instant::now() + grace;
    let count = |orphans: &mut Orphans, pid: Pid, end: String| {
        if Some(pid.as_raw() as u32) == fork_server {
            orphans.fork_server_end = Some(end);
        } else {
            *orphans.ends.entry(end).or_default() += 1;
        }
    };
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {
                if Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(WaitStatus::Exited(pid, code)) => count(&mut orphans, pid, format!("code:{code}")),
            Ok(WaitStatus::Signaled(pid, signal, _)) => {
                count(&mut orphans, pid, format!("signal:{}", signal as i32));
            }
            Ok(_) => {}
            Err(Errno::EINTR) => {}
            Err(Errno::ECHILD) => break,
            Err(errno) => panic!("waitpid: {errno}"),
        }
    }
    let wanted = format!("{MARK}={mark}");
    let marked = processes_where(|pid, stat| stat.state != 'Z' && environment_has(pid, &wanted));
    for (pid, description) in &marked {
        orphans.survivors.push(format!("{pid} {description}"));
        let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
    }
    if !marked.is_empty() {
        // Ours (reparented to us) are reaped here; others by whoever they were given to.
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(1)),
                Err(Errno::ECHILD) => break,
                _ => {}
            }
        }
    }
    orphans
}

/// Becomes the reaper of orphans, starts this binary with `middle_args` as the middle
/// process, SIGKILLs it once it has spawned its sleeping child, and prints (see
/// [`Orphans::print`]) how the orphan ended — or that it survived: was still alive a
/// second later (it is then killed). The middle process must print `child=PID` once it
/// has spawned the child, then wait.
pub fn orphan_harness(middle_args: &[&str]) {
    become_subreaper();
    let mark = format!("{}-orphan", std::process::id());
    let mut middle = start_middle(middle_args, &mark);
    let line = first_line(&mut middle);
    assert!(
        line.starts_with("child="),
        "the middle process said {line:?}"
    );
    let fork_server = fork_server_of(middle.id());
    middle.kill().unwrap();
    middle.wait().unwrap();
    // A signalled orphan ends within milliseconds.
    collect_apart(&mark, Duration::from_secs(1), fork_server).print();
}

/// The fork server among the children of `parent`, if it has one: the process whose
/// command line starts with the server's entry name.
pub fn fork_server_of(parent: u32) -> Option<u32> {
    processes_where(|pid, stat| {
        stat.ppid == parent
            && std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| cmdline.starts_with(b"reexec-fork-server\0"))
    })
    .first()
    .map(|(pid, _)| *pid)
}
