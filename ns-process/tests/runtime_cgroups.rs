//! The container's cgroup as ns-runtime uses it (`reexec::Cgroup::create_at`, kept, found
//! again by path): every process of an ns-process container — its parent, the init, the
//! command and what the command starts — is in it, so `ps` and `kill --all` see them all
//! and, killed, the cgroup empties and is removed. Real cgroups below the test's own, as
//! root (nothing is delegated here: without privilege the refusal is tested in
//! tests/tests/cgroups.rs and src/runtime/cgroups.rs). The runtime's resources, defaults
//! and refusals are tested in src/runtime/cgroups.rs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reexec::{Cgroup, Controller};
use reexec_tests::{is_root, skip_unless};

const NS_PROCESS: &str = env!("CARGO_BIN_EXE_ns-process");

/// The command line of `pid`, its NULs as spaces.
fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
        .unwrap_or_default()
}

/// Kills what is left in the cgroup at `.0` and removes it and its parent, even when an
/// assertion failed first.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Ok(cgroup) = Cgroup::open(Path::new(&self.0)) else {
            return;
        };
        for pid in cgroup.processes().unwrap_or_default() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        let parents: Vec<_> = cgroup
            .paths()
            .filter_map(Path::parent)
            .map(Path::to_path_buf)
            .collect();
        let _ = cgroup.remove();
        for parent in parents {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

#[test]
fn every_process_of_a_container_is_in_its_cgroup_and_killing_them_all_empties_it() {
    skip_unless!(
        is_root(),
        "creating cgroups needs root here (no delegation)"
    );
    if !Cgroup::available().contains(&Controller::Pids) {
        println!("skipped: no pids controller here");
        return;
    }
    let top = format!("ns-runtime-test-{}", std::process::id());
    let path = format!("{top}/c1");
    let mut cgroup = Cgroup::create_at(Path::new(&path), &[Controller::Pids]).unwrap();
    let _cleanup = Cleanup(path.clone());
    // As create leaves it: kept, and found again by path by the later commands.
    cgroup.keep();
    let procs = cgroup.path(Controller::Pids).unwrap().join("cgroup.procs");
    drop(cgroup);
    let mut container = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {} && exec {NS_PROCESS} -- /bin/sh -c 'sleep 61 & exec sleep 62'",
            procs.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let opened = Cgroup::open(Path::new(&path)).unwrap();
    // ns-process, its init, and the two sleeps.
    let deadline = Instant::now() + Duration::from_secs(30);
    let pids = loop {
        let pids = opened.processes().unwrap();
        let sleeps = pids
            .iter()
            .filter(|&&pid| cmdline(pid).starts_with("sleep 6"))
            .count();
        if pids.len() >= 4 && sleeps == 2 {
            break pids;
        }
        assert!(
            Instant::now() < deadline,
            "not all in the cgroup: {:?}",
            pids.iter().map(|&pid| cmdline(pid)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(pids.contains(&container.id()), "{pids:?}");
    // kill --all: every pid the cgroup lists, as host pids.
    for &pid in &pids {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
    container.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !opened.processes().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "{:?}", opened.processes());
        std::thread::sleep(Duration::from_millis(20));
    }
    let dir = opened.path(Controller::Pids).unwrap().to_path_buf();
    opened.remove().unwrap();
    assert!(!dir.exists());
    std::fs::remove_dir(dir.parent().unwrap()).unwrap();
}
