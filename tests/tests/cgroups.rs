//! `reexec::Cgroup` and `Command::cgroup`, for real: cgroups made below the test's own,
//! in the v1 controllers' hierarchies and in the (empty) v2 one, and removed after.

use std::process::Command;
use std::time::Duration;

use reexec_tests::{
    Unprivileged, assert_fields, describe, field, fields, is_root, output_with_timeout, skip_unless,
};

const PROBE: &str = env!("CARGO_BIN_EXE_probe-cgroup");
const TIMEOUT: Duration = Duration::from_secs(120);

/// The layouts this host has: `v1` when the memory, pids and cpu controllers are
/// mounted as v1 hierarchies, `v2` when a cgroup v2 hierarchy is.
fn layouts() -> Vec<&'static str> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut layouts = Vec::new();
    let v1 = ["memory", "pids", "cpu"].iter().all(|controller| {
        mounts.lines().any(|line| {
            line.contains(" - cgroup ") && line.rsplit(',').any(|option| option == *controller)
        })
    });
    if v1 {
        layouts.push("v1");
    } else {
        println!("skipped v1: the memory, pids and cpu controllers are not all on cgroup v1 here");
    }
    if mounts.contains(" - cgroup2 ") {
        layouts.push("v2");
    } else {
        println!("skipped v2: no cgroup v2 hierarchy is mounted");
    }
    layouts
}

fn probe(args: &[&str]) -> std::process::Output {
    output_with_timeout(Command::new(PROBE).args(args), TIMEOUT)
}

#[test]
fn the_child_is_in_the_cgroup_from_its_start_and_nothing_is_left() {
    skip_unless!(
        is_root(),
        "creating cgroups needs root here (no delegation)"
    );
    for layout in layouts() {
        let output = probe(&["join", layout]);
        let context = format!("{layout}: {}", describe(&output));
        let paths = fields(&output, "path");
        assert!(!paths.is_empty(), "{context}");
        let seen = fields(&output, "cgroup");
        for path in &paths {
            // The child's /proc/self/cgroup names the cgroup's directory in each hierarchy
            // (the path below the mount point ends with the cgroup's own name).
            let name = path.rsplit('/').next().unwrap();
            let below_mount = path.split_once("/sys/fs/cgroup/").unwrap().1;
            let hierarchy_relative = below_mount.split_once('/').unwrap().1;
            assert!(
                seen.iter()
                    .any(|line| line.ends_with(&format!("/{hierarchy_relative}"))),
                "{name} not in the child's cgroups: {context}"
            );
        }
        assert_fields(layout, &output, &[("code", "0"), ("left", "")]);
    }
}

/// Whether this test run can make cgroups on a v2 hierarchy: as root (nothing is
/// delegated here), with one mounted.
fn can_make_v2_cgroups() -> bool {
    is_root() && layouts().contains(&"v2")
}

/// Whether the running kernel is `major.minor` or later.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|number| number.parse::<u32>().unwrap_or(0));
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0)) >= (major, minor)
}

/// The child's v2 cgroup line names the probe's cgroup directory (below its own).
fn in_its_v2_cgroup(output: &std::process::Output) -> bool {
    let Some(path) = field(output, "path") else {
        return false;
    };
    let below = path.split_once("/sys/fs/cgroup/").unwrap().1;
    let relative = below.split_once('/').map_or("", |(_, rest)| rest);
    fields(output, "cgroup")
        .iter()
        .any(|line| line.starts_with("0::/") && line.ends_with(&format!("/{relative}")))
}

#[test]
fn on_v2_clone3_creates_the_child_in_the_cgroup_and_nothing_writes_its_procs() {
    skip_unless!(
        can_make_v2_cgroups(),
        "creating cgroups needs root here (no delegation), and a cgroup v2 hierarchy"
    );
    skip_unless!(
        cfg!(target_arch = "x86_64"),
        "reexec has clone3 on x86_64 only; elsewhere it writes cgroup.procs"
    );
    skip_unless!(
        kernel_at_least(5, 7),
        "CLONE_INTO_CGROUP needs Linux 5.7; an older kernel gets the write"
    );
    let output = probe(&["into-v2", "clone3"]);
    assert!(in_its_v2_cgroup(&output), "{}", describe(&output));
    // The write path opens and writes cgroup.procs (the fallback test below sees it);
    // clone3 takes the child in through the directory's descriptor alone. The fork
    // server's clone is not clone3: its caller writes the pid while the child waits for
    // it, before the child runs anything of its entry (ForkServer's docs).
    let writes = match reexec_tests::fork_server::suite_goes_through_the_server() {
        false => "0",
        true => "1",
    };
    assert_fields(
        "clone3",
        &output,
        &[
            ("code", "0"),
            ("procs_opened", writes),
            ("procs_written", writes),
            ("left", ""),
        ],
    );
}

#[test]
fn when_seccomp_refuses_clone3_the_parent_writes_the_pid_instead() {
    skip_unless!(
        can_make_v2_cgroups(),
        "creating cgroups needs root here (no delegation), and a cgroup v2 hierarchy"
    );
    // ENOSYS, as ns-process's default profile and other containers' answer clone3, and
    // EPERM, as other filters do.
    for refusal in ["enosys", "eperm"] {
        let output = probe(&["into-v2", refusal]);
        assert_eq!(
            field(&output, "filter_error"),
            None,
            "{}",
            describe(&output)
        );
        assert!(
            in_its_v2_cgroup(&output),
            "{refusal}: {}",
            describe(&output)
        );
        assert_fields(
            refusal,
            &output,
            &[
                ("code", "0"),
                ("procs_opened", "1"),
                ("procs_written", "1"),
                ("left", ""),
            ],
        );
    }
}

#[test]
fn a_failed_join_ends_the_child_and_names_its_step() {
    skip_unless!(
        is_root(),
        "creating cgroups needs root here (no delegation)"
    );
    for layout in layouts() {
        let output = probe(&["join-fails", layout]);
        assert_fields(
            layout,
            &output,
            &[
                ("spawn_error_step", "join-cgroup"),
                ("children_left", "false"),
            ],
        );
        let error = field(&output, "spawn_error").unwrap();
        assert!(
            error.contains("cgroup.procs") && error.contains("the cgroup is gone"),
            "{error}"
        );
    }
}

#[test]
fn pids_max_stops_the_forks_past_it() {
    skip_unless!(
        is_root(),
        "creating cgroups needs root here (no delegation)"
    );
    let output = probe(&["pids", "16"]);
    // The entry itself is one of the 16: it starts 15 children, then fork fails (EAGAIN).
    assert_fields(
        "pids.max 16",
        &output,
        &[
            ("started", "15"),
            ("refusal", "WouldBlock"),
            ("code", "0"),
            ("left", ""),
        ],
    );
}

#[test]
fn the_memory_limit_kills_and_the_oom_kill_is_counted() {
    skip_unless!(
        is_root(),
        "creating cgroups needs root here (no delegation)"
    );
    let output = probe(&["memory", "32"]);
    assert_fields(
        "memory 32 MiB, 256 MiB allocated",
        &output,
        &[
            ("oom_kills_before", "0"),
            ("signal", "9"),
            ("oom_kills", "1"),
            ("left", ""),
        ],
    );
    assert_eq!(field(&output, "allocated"), None, "{}", describe(&output));
}

#[test]
fn the_cpu_quota_is_written_in_the_hosts_terms() {
    skip_unless!(
        is_root(),
        "creating cgroups needs root here (no delegation)"
    );
    for layout in layouts() {
        let output = probe(&["cpu", layout]);
        if layout == "v1" {
            assert_fields(
                layout,
                &output,
                &[
                    ("cpu.cfs_quota_us", "25000"),
                    ("cpu.cfs_period_us", "100000"),
                ],
            );
        } else {
            // This host's v2 hierarchy has no cpu controller: the refusal says so.
            match field(&output, "cpu.max") {
                Some(max) => assert_eq!(max, "25000 100000"),
                None => assert!(
                    field(&output, "cpu_error").is_some_and(|error| error.contains("cpu")),
                    "{}",
                    describe(&output)
                ),
            }
        }
    }
}

#[test]
fn empty_leftovers_of_dead_owners_are_removed_and_live_ones_kept() {
    skip_unless!(
        is_root(),
        "creating cgroups needs root here (no delegation)"
    );
    for layout in layouts() {
        let output = probe(&["leftovers", layout]);
        assert_fields(
            layout,
            &output,
            &[
                ("removed_all_of_dead", "true"),
                ("kept_ours", "true"),
                ("left", ""),
            ],
        );
    }
}

#[test]
fn without_delegation_creating_refuses_and_says_what_is_needed() {
    let unprivileged = reexec_tests::or_skip!(Unprivileged::prepare(PROBE), "no unprivileged run");
    for layout in layouts() {
        let output =
            output_with_timeout(&mut unprivileged.command(PROBE, &["join", layout]), TIMEOUT);
        if matches!(unprivileged, Unprivileged::AlreadyUnprivileged)
            && field(&output, "create_error").is_none()
        {
            // Run by a user who has a cgroup delegated to it: nothing to refuse.
            println!("skipped {layout}: this user may create cgroups here (delegated)");
            continue;
        }
        assert_fields(layout, &output, &[("create_error_step", "manage-cgroup")]);
        let error = field(&output, "create_error").unwrap();
        assert!(
            error.contains("no delegation") && error.contains("Permission denied"),
            "{layout}: {error}"
        );
    }
}

/// The caller's own cgroup in the hierarchy of `controller` (v1), from /proc/self/cgroup.
fn own_v1_cgroup(controller: &str) -> Option<String> {
    std::fs::read_to_string("/proc/self/cgroup")
        .unwrap()
        .lines()
        .find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, listed, path) = (parts.next()?, parts.next()?, parts.next()?);
            listed
                .split(',')
                .any(|name| name == controller)
                .then(|| path.to_owned())
        })
}

#[test]
fn a_cgroup_at_a_path_is_made_with_its_parents_kept_opened_and_removed() {
    skip_unless!(
        is_root(),
        "creating cgroups needs root here (no delegation)"
    );
    for layout in layouts() {
        let top = format!("reexec-test-at-{layout}-{}", std::process::id());
        let path = format!("{top}/parent/job");
        // The probe makes it, starts a child in it, keeps it and ends.
        let output = probe(&["create-at", layout, &path]);
        let context = format!("{layout}: {}", describe(&output));
        let paths = fields(&output, "path");
        assert!(!paths.is_empty(), "{context}");
        for dir in &paths {
            assert!(dir.ends_with(&format!("/{path}")), "{context}");
            assert!(std::path::Path::new(dir).is_dir(), "{dir} gone: {context}");
        }
        let seen = fields(&output, "cgroup");
        assert!(
            seen.iter().any(|line| line.ends_with(&format!("/{path}"))),
            "the child was not in it: {context}"
        );
        assert_fields(layout, &output, &[("code", "0")]);

        // Another process — this one — finds it by path, empty now, and removes it.
        let cgroup = reexec::Cgroup::open(std::path::Path::new(&path)).unwrap();
        let opened: Vec<String> = cgroup.paths().map(|p| p.display().to_string()).collect();
        for dir in &paths {
            assert!(opened.contains(&dir.to_string()), "{opened:?}: {context}");
        }
        assert_eq!(cgroup.processes().unwrap(), Vec::<u32>::new(), "{context}");
        cgroup.remove().unwrap();
        for dir in &paths {
            let dir = std::path::Path::new(dir);
            assert!(!dir.exists(), "{} left: {context}", dir.display());
            // open's remove takes the cgroup only: the parents the probe made stay.
            assert!(dir.parent().unwrap().is_dir(), "{context}");
            let top = dir.parent().unwrap().parent().unwrap();
            std::fs::remove_dir(dir.parent().unwrap()).unwrap();
            std::fs::remove_dir(top).unwrap();
        }
        let error = reexec::Cgroup::open(std::path::Path::new(&path)).unwrap_err();
        assert!(error.to_string().contains("never made"), "{error}");
    }
}

#[test]
fn removal_takes_back_exactly_the_parents_it_made() {
    skip_unless!(
        is_root(),
        "creating cgroups needs root here (no delegation)"
    );
    use reexec::{Cgroup, Controller};
    use std::path::Path;
    // The cpuset hierarchy too: made parents need CPUs and memory nodes, or no process
    // could join the cgroup.
    let controllers = [Controller::Pids, Controller::Cpuset];
    if !layouts().contains(&"v1")
        || !std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(",cpuset")
    {
        println!("skipped: the pids and cpuset controllers are not on cgroup v1 here");
        return;
    }
    let there = format!("reexec-test-parents-{}", std::process::id());
    let made_first = Cgroup::create_at(Path::new(&there), &controllers).unwrap();
    let path = format!("{there}/made/job");
    let cgroup = Cgroup::create_at(Path::new(&path), &controllers).unwrap();
    let dirs: Vec<_> = cgroup.paths().map(Path::to_path_buf).collect();
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    let cpuset = cgroup.path(Controller::Cpuset).unwrap().to_path_buf();
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let text = std::fs::read_to_string(cpuset.join(file)).unwrap();
        assert!(
            !text.trim().is_empty(),
            "{file} of {} is empty",
            cpuset.display()
        );
    }
    // A process joins it, and is listed.
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    for dir in &dirs {
        std::fs::write(dir.join("cgroup.procs"), sleeper.id().to_string()).unwrap();
    }
    assert_eq!(cgroup.processes().unwrap(), vec![sleeper.id()]);
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    // Removal takes the cgroup and the parent it made, not the one that was there.
    cgroup.remove().unwrap();
    for dir in &dirs {
        assert!(!dir.exists() && !dir.parent().unwrap().exists(), "{dirs:?}");
        assert!(dir.parent().unwrap().parent().unwrap().is_dir(), "{dirs:?}");
    }
    // Kept: dropping it leaves it, for a later open.
    let kept = format!("{there}/kept");
    let mut cgroup = Cgroup::create_at(Path::new(&kept), &controllers).unwrap();
    let dirs: Vec<_> = cgroup.paths().map(Path::to_path_buf).collect();
    cgroup.keep();
    drop(cgroup);
    assert!(dirs.iter().all(|dir| dir.is_dir()), "{dirs:?}");
    Cgroup::open(Path::new(&kept)).unwrap().remove().unwrap();
    assert!(dirs.iter().all(|dir| !dir.exists()), "{dirs:?}");
    // One that was there already is taken as it is: its removal leaves it.
    let taken = Cgroup::create_at(Path::new(&there), &controllers).unwrap();
    taken.remove().unwrap();
    assert!(made_first.paths().all(Path::is_dir));
    made_first.remove().unwrap();
}

/// Whether this test run can make cgroups on v1 hierarchies (as root: nothing is
/// delegated here); prints why not.
fn can_make_v1_cgroups() -> bool {
    if !is_root() {
        println!("skipped: creating cgroups needs root here (no delegation)");
        return false;
    }
    layouts().contains(&"v1")
}

#[test]
fn an_absolute_path_is_from_the_hierarchys_root() {
    use reexec::{Cgroup, Controller};
    use std::path::Path;
    if !can_make_v1_cgroups() {
        return;
    }
    // Below the test's own memory cgroup, named from the root of the hierarchy.
    let own = own_v1_cgroup("memory").unwrap();
    let path = format!(
        "{}/reexec-test-abs-{}",
        own.trim_end_matches('/'),
        std::process::id()
    );
    let cgroup = Cgroup::create_at(Path::new(&path), &[Controller::Memory]).unwrap();
    let dir = cgroup.path(Controller::Memory).unwrap().to_path_buf();
    assert!(
        dir.ends_with(path.trim_start_matches('/')),
        "{}",
        dir.display()
    );
    // The memory hierarchy's mount point, from /proc/self/mountinfo.
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mount_point = mountinfo
        .lines()
        .find(|line| line.contains(" - cgroup ") && line.rsplit(',').any(|o| o == "memory"))
        .and_then(|line| line.split(' ').nth(4))
        .unwrap();
    assert_eq!(
        dir,
        Path::new(mount_point).join(path.trim_start_matches('/'))
    );
    assert!(dir.is_dir());
    cgroup.remove().unwrap();
    assert!(!dir.exists());
}

fn read_freezer(cgroup: &reexec::Cgroup) -> String {
    let dir = cgroup.path(reexec::Controller::Freezer).unwrap();
    std::fs::read_to_string(dir.join("freezer.state"))
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn the_runtime_limits_are_written_in_the_hosts_terms() {
    use reexec::{Cgroup, Controller};
    use std::path::Path;
    if !can_make_v1_cgroups() {
        return;
    }
    let path = format!("reexec-test-limits-{}", std::process::id());
    let all = [Controller::Memory, Controller::Cpu, Controller::Cpuset];
    let cgroup = Cgroup::create_at(Path::new(&path), &all).unwrap();
    let read = |controller, file: &str| {
        let dir = cgroup.path(controller).unwrap();
        std::fs::read_to_string(dir.join(file))
            .unwrap()
            .trim()
            .to_owned()
    };
    cgroup.set_memory_reservation(32 << 20).unwrap();
    assert_eq!(
        read(Controller::Memory, "memory.soft_limit_in_bytes"),
        (32u64 << 20).to_string()
    );
    cgroup.set_cpu_shares(512).unwrap();
    assert_eq!(read(Controller::Cpu, "cpu.shares"), "512");
    cgroup.set_cpu_period(Duration::from_millis(50)).unwrap();
    assert_eq!(read(Controller::Cpu, "cpu.cfs_period_us"), "50000");
    cgroup.set_cpuset_cpus("0").unwrap();
    assert_eq!(read(Controller::Cpuset, "cpuset.cpus"), "0");
    cgroup.set_cpuset_mems("0").unwrap();
    assert_eq!(read(Controller::Cpuset, "cpuset.mems"), "0");
    assert!(Cgroup::available().contains(&Controller::Devices));
    let devices = Cgroup::create_at(
        Path::new(&format!("{path}-devices")),
        &[Controller::Devices],
    )
    .unwrap();
    devices.deny_device("a").unwrap();
    devices.allow_device("c 1:3 rwm").unwrap();
    let list = std::fs::read_to_string(
        devices
            .path(Controller::Devices)
            .unwrap()
            .join("devices.list"),
    )
    .unwrap();
    assert_eq!(list.trim(), "c 1:3 rwm");
    devices.remove().unwrap();
    // Frozen: a process in it stops (state T), and runs again thawed.
    if Cgroup::available().contains(&Controller::Freezer) {
        let frozen = Cgroup::create_at(
            Path::new(&format!("{path}-freezer")),
            &[Controller::Freezer],
        )
        .unwrap();
        let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
        let procs = frozen
            .path(Controller::Freezer)
            .unwrap()
            .join("cgroup.procs");
        std::fs::write(&procs, sleeper.id().to_string()).unwrap();
        let state = |pid: u32| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            stat.rsplit(')')
                .next()
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned()
        };
        frozen.freeze().unwrap();
        assert_eq!(read_freezer(&frozen), "FROZEN");
        assert!(
            ["D", "T"].contains(&state(sleeper.id()).as_str()),
            "{}",
            state(sleeper.id())
        );
        frozen.thaw().unwrap();
        assert_eq!(read_freezer(&frozen), "THAWED");
        // Running again: no longer stopped (it may be seen running before it sleeps).
        assert!(
            ["R", "S"].contains(&state(sleeper.id()).as_str()),
            "{}",
            state(sleeper.id())
        );
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
        frozen.remove().unwrap();
    } else {
        println!("freezing skipped: no v1 freezer hierarchy here");
    }
    // A CPU the host lacks: the kernel refuses, and the error names the file.
    let error = cgroup.set_cpuset_cpus("4095").unwrap_err().to_string();
    assert!(error.contains("cpuset.cpus"), "{error}");
    cgroup.remove().unwrap();
}

#[test]
fn without_delegation_a_cgroup_at_a_path_is_refused_and_says_what_is_needed() {
    let unprivileged = reexec_tests::or_skip!(Unprivileged::prepare(PROBE), "no unprivileged run");
    for layout in layouts() {
        let path = format!("reexec-test-refused-{}/job", std::process::id());
        let output = output_with_timeout(
            &mut unprivileged.command(PROBE, &["create-at", layout, &path]),
            TIMEOUT,
        );
        if matches!(unprivileged, Unprivileged::AlreadyUnprivileged)
            && field(&output, "create_error").is_none()
        {
            println!("skipped {layout}: this user may create cgroups here (delegated)");
            if let Ok(cgroup) = reexec::Cgroup::open(std::path::Path::new(&path)) {
                cgroup.remove().unwrap();
            }
            continue;
        }
        assert_fields(layout, &output, &[("create_error_step", "manage-cgroup")]);
        let error = field(&output, "create_error").unwrap();
        assert!(
            error.contains("no delegation")
                && error.contains(&path.split('/').next().unwrap().to_string()),
            "{layout}: {error}"
        );
        assert!(
            field(&output, "path").is_none(),
            "{layout}: {}",
            describe(&output)
        );
    }
}
