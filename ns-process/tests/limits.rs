//! `--memory`, `--pids-limit` and `--cpus`, for real: the cgroup ns-process makes below its
//! own, what it does to the command, and that nothing of it is left after the run — also
//! after ns-process was killed. The cgroups are read from the test's side, in the v1
//! hierarchies of this host (cgroup v1 hybrid); elsewhere the tests skip with the reason.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reexec_tests::{
    Unprivileged, assert_failed_with, describe, is_root, output_with_timeout, spawn_until_ready,
    stderr_text, stdout_text,
};

const NS_PROCESS: &str = env!("CARGO_BIN_EXE_ns-process");
const TIMEOUT: Duration = Duration::from_secs(120);

/// This process's own cgroup directory in the v1 hierarchy of `controller`, where
/// ns-process (a child of ours) makes its cgroups; `None` when the controller is not on
/// cgroup v1 at /sys/fs/cgroup/CONTROLLER.
fn own_v1_dir(controller: &str) -> Option<PathBuf> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = membership.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|listed| listed == controller)
            .then_some(path)
    })?;
    let mount = Path::new("/sys/fs/cgroup").join(controller);
    mount
        .join("cgroup.procs")
        .exists()
        .then(|| mount.join(path.trim_start_matches('/')))
}

/// Whether the tests can see ns-process's cgroups: as root, on cgroup v1.
fn can_test(controller: &str) -> bool {
    if !is_root() {
        println!("skipped: creating cgroups needs root here (no delegation)");
        return false;
    }
    if own_v1_dir(controller).is_none() {
        println!("skipped: the {controller} controller is not on cgroup v1 here");
        return false;
    }
    true
}

/// The cgroups ns-process `pid` made in `controller`'s hierarchy (named
/// `ns-process-PIDNS-PID-N`).
fn cgroups_of(pid: u32, controller: &str) -> Vec<PathBuf> {
    let dir = own_v1_dir(controller).unwrap();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let mut parts = name.rsplitn(3, '-');
            let (_, owner) = (parts.next(), parts.next());
            name.starts_with("ns-process-") && owner == Some(&pid.to_string())
        })
        .collect()
}

/// Every cgroup any ns-process made in `controller`'s hierarchy below ours.
fn all_ns_process_cgroups(controller: &str) -> Vec<PathBuf> {
    let dir = own_v1_dir(controller).unwrap();
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| {
                    path.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("ns-process-")
                })
                .collect()
        })
        .unwrap_or_default()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The single cgroup of running ns-process `pid` in `controller`'s hierarchy.
fn the_cgroup_of(pid: u32, controller: &str) -> PathBuf {
    let dirs = cgroups_of(pid, controller);
    assert_eq!(
        dirs.len(),
        1,
        "ns-process {pid}'s {controller} cgroups: {dirs:?}"
    );
    dirs.into_iter().next().unwrap()
}

/// The pids of every process of the host (of this PID namespace).
fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect()
}

/// The inode of `pid`'s PID namespace, if it still runs.
fn pid_namespace(pid: u32) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/pid"))
        .ok()
        .map(|meta| meta.ino())
}

#[test]
fn a_fork_bomb_under_pids_limit_is_contained_and_gone_after() {
    if !can_test("pids") {
        return;
    }
    let before = all_pids().len();
    // The bomb goes on in the background; the shell then becomes `sleep` (no fork), and
    // when that ends the init ends, and the kernel the whole PID namespace with it.
    let mut child = spawn_until_ready(
        Command::new(NS_PROCESS)
            .args(["--pids-limit", "64", "--", "sh", "-c"])
            .arg("echo ready; b() { b | b & }; b 2>/dev/null; exec sleep 4")
            .stderr(Stdio::null()),
    );
    let cgroup = the_cgroup_of(child.id(), "pids");
    assert_eq!(read(&cgroup.join("pids.max")), "64");
    // The bomb's PID namespace, the init's: no process of it may be left after.
    let init = reexec_tests::procfs::children(child.id());
    assert_eq!(init.len(), 1, "ns-process's children: {init:?}");
    let bomb_namespace = pid_namespace(init[0]).unwrap();
    // Contained: the kernel refuses forks past the limit (counted in pids.events), and
    // the count never goes over it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut highest = 0;
    let refused = loop {
        let current: u64 = read(&cgroup.join("pids.current")).parse().unwrap_or(0);
        highest = highest.max(current);
        let refused: u64 = read(&cgroup.join("pids.events"))
            .strip_prefix("max ")
            .and_then(|count| count.parse().ok())
            .unwrap_or(0);
        if refused > 0 || Instant::now() > deadline {
            break refused;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let status = child.wait().unwrap();
    assert!(refused > 0, "no fork was refused at pids.max 64");
    assert!(highest <= 64, "pids.current reached {highest}");
    assert_eq!(status.code(), Some(0), "{status}");
    // Nothing of the bomb survives: its cgroup, which no process can leave, is removed
    // (rmdir succeeds only once it is empty), no process of its PID namespace is left,
    // and the host's count is back.
    assert!(!cgroup.exists(), "{} left behind", cgroup.display());
    let survivors: Vec<u32> = all_pids()
        .into_iter()
        .filter(|&pid| pid_namespace(pid) == Some(bomb_namespace))
        .collect();
    assert!(survivors.is_empty(), "left of the bomb: {survivors:?}");
    // Other tests and other users of the machine start and end processes meanwhile: the
    // count is compared with a margin, and given time to settle.
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let after = all_pids().len();
        if after <= before + 16 || Instant::now() > deadline {
            break after;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    println!("host processes: {before} before, {after} after");
    assert!(
        after <= before + 16,
        "{before} processes before, {after} after"
    );
}

#[test]
fn the_memory_limit_kills_with_137_and_says_so() {
    if !can_test("memory") {
        return;
    }
    let before = all_ns_process_cgroups("memory");
    // tail keeps its whole input when no newline comes: 300 MiB against 64 MiB. The
    // shell reports tail's death by SIGKILL as 137, and so does ns-process; had the
    // kernel killed the init instead, ns-process's status would be 137 too.
    let output = output_with_timeout(
        Command::new(NS_PROCESS).args([
            "--memory",
            "64M",
            "--",
            "sh",
            "-c",
            "head -c 300M /dev/zero | tail",
        ]),
        TIMEOUT,
    );
    assert_failed_with(
        "--memory 64M, 300 MiB",
        &output,
        137,
        &[
            "the memory limit (--memory 64M) was reached",
            "OOM killer killed",
        ],
    );
    let after = all_ns_process_cgroups("memory");
    assert!(
        after.iter().all(|dir| before.contains(dir)),
        "left behind: {after:?}"
    );
}

/// Runs a busy loop for `seconds` of wall time under `--cpus cpus`, checks the quota in
/// the cgroup, and returns the loop's CPU time over wall time, and how often the kernel
/// throttled it (cpu.stat's `nr_throttled`, read just before the loop ends).
fn busy_loop_under(cpus: &str, quota_us: &str, seconds: u64) -> (f64, u64) {
    // `times` prints the CPU time of the shell's children, the loop included (each
    // waited for its own).
    let mut child = Command::new(NS_PROCESS)
        .args(["--cpus", cpus, "--", "sh", "-c"])
        .arg(format!(
            "echo ready; timeout {seconds} sh -c 'while :; do :; done'; times"
        ))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut ready = String::new();
    stdout.read_line(&mut ready).unwrap();
    assert_eq!(ready, "ready\n");
    let cgroup = the_cgroup_of(child.id(), "cpu");
    assert_eq!(read(&cgroup.join("cpu.cfs_quota_us")), quota_us);
    assert_eq!(read(&cgroup.join("cpu.cfs_period_us")), "100000");
    std::thread::sleep(Duration::from_millis(seconds * 1000 - 500));
    let throttled = read(&cgroup.join("cpu.stat"))
        .lines()
        .find_map(|line| line.strip_prefix("nr_throttled "))
        .and_then(|count| count.parse().ok())
        .unwrap_or(0);
    let mut text = String::new();
    stdout.read_to_string(&mut text).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status}: {text}");
    assert!(!cgroup.exists(), "{} left behind", cgroup.display());
    let children = text.lines().last().unwrap_or_default();
    let to_seconds = |field: &str| -> f64 {
        let (minutes, seconds) = field.trim_end_matches('s').split_once('m').unwrap();
        minutes.parse::<f64>().unwrap() * 60.0 + seconds.parse::<f64>().unwrap()
    };
    let cpu: f64 = children.split_whitespace().map(to_seconds).sum();
    let ratio = cpu / seconds as f64;
    println!(
        "--cpus {cpus}: CPU time {cpu:.2} s in {seconds} s of wall time, {ratio:.2} of a CPU; \
         throttled {throttled} times"
    );
    assert!(ratio > 0.005, "the loop did not run: {text}");
    (ratio, throttled)
}

#[test]
fn cpus_bounds_the_cpu_time_of_a_busy_loop() {
    if !can_test("cpu") {
        return;
    }
    // A limit check with a wide margin, not a speed claim: unlimited, the loop takes a
    // whole CPU (1.0) unless the machine is busy.
    let (ratio, _) = busy_loop_under("0.5", "50000", 4);
    assert!(ratio < 0.8, "{ratio:.2} of a CPU under --cpus 0.5");
    // On a busy machine the loop may get less than half a CPU anyway, and never meet the
    // quota: far below what it gets, the kernel must throttle it.
    let (ratio, throttled) = busy_loop_under("0.02", "2000", 2);
    assert!(
        throttled > 0,
        "the busy loop was never throttled at --cpus 0.02"
    );
    assert!(ratio < 0.1, "{ratio:.2} of a CPU under --cpus 0.02");
}

#[test]
fn the_cgroup_of_a_killed_ns_process_is_removed_by_the_next_run() {
    if !can_test("pids") {
        return;
    }
    let mut child = spawn_until_ready(
        Command::new(NS_PROCESS)
            .args([
                "--pids-limit",
                "64",
                "--",
                "sh",
                "-c",
                "echo ready; exec sleep 60",
            ])
            .stderr(Stdio::null()),
    );
    let cgroup = the_cgroup_of(child.id(), "pids");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    // The init dies of its death signal, the sleep with its PID namespace.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !read(&cgroup.join("cgroup.procs")).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Killed, ns-process could not remove it. Another test's ns-process, started
    // meanwhile, may have removed it already: only a run's cleanup of leftovers can.
    if cgroup.exists() {
        assert_eq!(
            read(&cgroup.join("cgroup.procs")),
            "",
            "the cgroup's processes did not end"
        );
    } else {
        println!("a concurrent run removed the leftover first");
    }

    // The next run removes it, whichever limit it is given (-v says so).
    let output = output_with_timeout(
        Command::new(NS_PROCESS).args(["-v", "--memory", "64m", "--", "true"]),
        TIMEOUT,
    );
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(
        !cgroup.exists(),
        "{} still there: {}",
        cgroup.display(),
        describe(&output)
    );
    // Removed by this run, or by another test's ns-process started meanwhile: any run
    // with a limit removes the leftovers of dead ones.
    let said = stderr_text(&output).contains(&format!("removed the cgroup {}", cgroup.display()));
    println!("this run said it removed the leftover: {said}");
}

#[test]
fn without_delegation_a_limit_refuses_and_nothing_runs() {
    let unprivileged =
        reexec_tests::or_skip!(Unprivileged::prepare(NS_PROCESS), "no unprivileged run");
    for limit in [
        ["--memory", "64m"],
        ["--pids-limit", "64"],
        ["--cpus", "0.5"],
    ] {
        let args = [limit[0], limit[1], "--", "sh", "-c", "echo ran"];
        let output = output_with_timeout(&mut unprivileged.command(NS_PROCESS, &args), TIMEOUT);
        let label = limit.join(" ");
        if matches!(unprivileged, Unprivileged::AlreadyUnprivileged) && output.status.success() {
            // Run by a user who has a cgroup delegated to it: the limit was set.
            println!("skipped {label}: this user may create cgroups here (delegated)");
            continue;
        }
        assert_failed_with(
            &label,
            &output,
            125,
            &[
                &label,
                "no delegation",
                "Permission denied",
                "cgroup delegated to it",
            ],
        );
        assert!(
            !stdout_text(&output).contains("ran"),
            "{label}: {}",
            describe(&output)
        );
    }
}

#[test]
fn bad_limits_are_refused_with_125_and_a_reason() {
    let cases: [(&[&str], &str); 8] = [
        (
            &["--memory", "64x"],
            "is not a size; write a number of bytes, with b, k, m or g",
        ),
        (&["--memory", "1.5g"], "is not a size"),
        (&["--memory", "1m"], "the smallest memory limit is 6m"),
        (&["--memory-swap", "128m"], "give --memory too"),
        (
            &["--memory", "64m", "--memory-swap", "32m"],
            "it counts memory plus swap",
        ),
        (&["--pids-limit", "0"], "0 would let no process start"),
        (&["--cpus", "0"], "is out of range: from 0.01 to"),
        (&["--cpus", "half"], "is not a number of CPUs"),
    ];
    for (options, expected) in cases {
        let mut args = options.to_vec();
        args.extend(["--", "true"]);
        reexec_tests::assert_refused(NS_PROCESS, &args, 125, expected);
    }
}

#[test]
fn the_command_cannot_leave_its_cgroup_unless_the_boundary_is_given_up() {
    if !can_test("pids") {
        return;
    }
    // Root inside tries to move itself back into the cgroup ns-process runs in (the
    // test's own: even a success moves nothing outside the test's subtree).
    let own = own_v1_dir("pids").unwrap().join("cgroup.procs");
    let script = format!(
        "echo $$ > {} 2>/dev/null && echo moved; grep ':pids:' /proc/self/cgroup",
        own.display()
    );
    let run = |extra: &[&str]| {
        let mut args = extra.to_vec();
        args.extend(["--pids-limit", "64", "--", "sh", "-c", &script]);
        output_with_timeout(Command::new(NS_PROCESS).args(&args), TIMEOUT)
    };
    // The cgroup filesystem is read-only inside, as the kernel's other knobs.
    let output = run(&[]);
    let out = stdout_text(&output);
    assert!(
        !out.contains("moved") && out.contains("/ns-process-"),
        "{}",
        describe(&output)
    );
    // The control: in the caller's mount namespace, root-run, nothing is read-only, and
    // the command can leave (SECURITY.md, `--share mount`).
    let output = run(&["--share", "mount"]);
    assert!(
        stdout_text(&output).contains("moved"),
        "the control did not move: {}",
        describe(&output)
    );
}
