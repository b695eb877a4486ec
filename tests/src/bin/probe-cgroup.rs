//! Cgroups for real: creates cgroups below the probe's own with `reexec::Cgroup`, starts
//! entries in them with `Command::cgroup`, and prints what each side saw as `key=value`
//! lines. Every cgroup it makes is removed before it exits.

use std::process::ExitCode;
use std::time::Duration;

use nix::libc;
use reexec::{Cgroup, Command, Controller};
use reexec_tests::faults::SeccompFilter;
use reexec_tests::{print_status, step_name};

/// The prefix of every cgroup the probe makes, for `Cgroup::remove_leftovers`.
const PREFIX: &str = "reexec-probe";

/// Prints the child's own cgroups, one `cgroup=ID:CONTROLLERS:PATH` line each.
#[reexec::entry("cgroup-report")]
fn cgroup_report() {
    for line in std::fs::read_to_string("/proc/self/cgroup")
        .unwrap()
        .lines()
    {
        println!("cgroup={line}");
    }
}

/// Starts `sleep` children until the kernel refuses one, then ends them all.
#[reexec::entry("fork-until-refused")]
fn fork_until_refused() {
    let mut children = Vec::new();
    let refusal = loop {
        match std::process::Command::new("sleep").arg("30").spawn() {
            Ok(child) if children.len() < 1000 => children.push(child),
            Ok(mut child) => {
                let _ = child.kill();
                let _ = child.wait();
                break "none".to_owned();
            }
            Err(error) => break format!("{:?}", error.kind()),
        }
    };
    println!("started={}", children.len());
    println!("refusal={refusal}");
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Allocates and touches 256 MiB, a page at a time.
#[reexec::entry("hog")]
fn hog() {
    let mut memory: Vec<u8> = Vec::with_capacity(256 << 20);
    for _ in 0..(256 << 20) / 4096 {
        memory.extend(std::iter::repeat_n(1u8, 4096));
    }
    println!("allocated={}", memory.len());
}

/// An inotify watch of a `cgroup.procs` file: whether anyone opened or wrote it.
struct ProcsWatch {
    inotify: std::os::fd::OwnedFd,
}

impl ProcsWatch {
    fn new(file: &std::path::Path) -> ProcsWatch {
        use std::os::fd::FromRawFd;
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(file.as_os_str().as_bytes()).unwrap();
        // SAFETY: makes a new descriptor, which the OwnedFd below alone owns.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(
            fd >= 0,
            "inotify_init1: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: `fd` is ours and unowned until here.
        let inotify = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        // SAFETY: `path` is a NUL-terminated string that outlives the call.
        let watch =
            unsafe { libc::inotify_add_watch(fd, path.as_ptr(), libc::IN_OPEN | libc::IN_MODIFY) };
        assert!(
            watch >= 0,
            "inotify_add_watch {}: {}",
            file.display(),
            std::io::Error::last_os_error()
        );
        ProcsWatch { inotify }
    }

    /// How many opens and writes of the file were seen so far.
    fn events(&self) -> (usize, usize) {
        let (mut opened, mut written) = (0, 0);
        let mut buffer = [0u8; 4096];
        while let Ok(length) = nix::unistd::read(&self.inotify, &mut buffer) {
            let mut at = 0;
            while at + size_of::<libc::inotify_event>() <= length {
                // SAFETY: the kernel wrote a whole event header at `at`; read unaligned.
                let event: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buffer[at..].as_ptr().cast()) };
                opened += usize::from(event.mask & libc::IN_OPEN != 0);
                written += usize::from(event.mask & libc::IN_MODIFY != 0);
                at += size_of::<libc::inotify_event>() + event.len as usize;
            }
        }
        (opened, written)
    }
}

fn controllers(which: &str) -> Vec<Controller> {
    match which {
        "v1" => vec![Controller::Memory, Controller::Pids, Controller::Cpu],
        "v2" => Vec::new(),
        other => panic!("unknown layout {other}"),
    }
}

/// Prints the error of `result`, or returns its value.
fn or_report<T>(what: &str, result: Result<T, reexec::Error>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(error) => {
            println!("{what}_error_step={}", step_name(error.step()));
            println!("{what}_error={error}");
            None
        }
    }
}

/// Prints the cgroup's directories, then what a child started in it sees of its
/// cgroups; returns the directories.
fn report_from_inside(cgroup: &Cgroup) -> Vec<std::path::PathBuf> {
    let paths: Vec<_> = cgroup.paths().map(ToOwned::to_owned).collect();
    for path in &paths {
        println!("path={}", path.display());
    }
    if let Some(output) = or_report(
        "spawn",
        Command::new("cgroup-report").cgroup(cgroup).output(),
    ) {
        print!("{}", String::from_utf8_lossy(&output.stdout));
        print_status(output.status);
    }
    paths
}

/// Prints whether each of `paths` is gone.
fn print_left(paths: &[std::path::PathBuf]) {
    let left: Vec<String> = paths
        .iter()
        .filter(|path| path.exists())
        .map(|path| path.display().to_string())
        .collect();
    println!("left={}", left.join(","));
}

reexec::main! {
    fn main() -> ExitCode {
        reexec_tests::fork_server::use_fork_server_if_asked();
        let args: Vec<String> = std::env::args().skip(1).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match args[..] {
            ["join", layout] => {
                let Some(cgroup) = or_report("create", Cgroup::create_owned(PREFIX, &controllers(layout))) else {
                    return ExitCode::SUCCESS;
                };
                let paths = report_from_inside(&cgroup);
                or_report("remove", cgroup.remove());
                print_left(&paths);
            }
            ["pids", count] => {
                let cgroup = Cgroup::create_owned(PREFIX, &[Controller::Pids]).unwrap();
                cgroup.set_pids_max(count.parse().unwrap()).unwrap();
                let paths: Vec<_> = cgroup.paths().map(ToOwned::to_owned).collect();
                let output = Command::new("fork-until-refused").cgroup(&cgroup).output().unwrap();
                print!("{}", String::from_utf8_lossy(&output.stdout));
                print_status(output.status);
                cgroup.remove().unwrap();
                print_left(&paths);
            }
            ["memory", megabytes] => {
                let cgroup = Cgroup::create_owned(PREFIX, &[Controller::Memory]).unwrap();
                let bytes = megabytes.parse::<u64>().unwrap() << 20;
                cgroup.set_memory_max(bytes).unwrap();
                // Without swap accounting there is no memory+swap file, and no swap to
                // escape to either when the machine has none.
                if let Err(error) = cgroup.set_memory_swap_max(bytes) {
                    println!("swap_limit={error}");
                }
                let paths: Vec<_> = cgroup.paths().map(ToOwned::to_owned).collect();
                println!("oom_kills_before={}", cgroup.oom_kills().unwrap());
                let output = Command::new("hog").cgroup(&cgroup).output().unwrap();
                print!("{}", String::from_utf8_lossy(&output.stdout));
                print_status(output.status);
                println!("oom_kills={}", cgroup.oom_kills().unwrap());
                cgroup.remove().unwrap();
                print_left(&paths);
            }
            ["cpu", layout] => {
                let cgroup = Cgroup::create_owned(PREFIX, &controllers(layout)).unwrap();
                let (quota, period) = (Duration::from_millis(25), Duration::from_millis(100));
                or_report("cpu", cgroup.set_cpu_max(quota, period));
                let dir = cgroup.path(Controller::Cpu).map(ToOwned::to_owned);
                for file in ["cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.max"] {
                    if let Some(text) = dir.as_ref().and_then(|dir| std::fs::read_to_string(dir.join(file)).ok()) {
                        println!("{file}={}", text.trim());
                    }
                }
                cgroup.remove().unwrap();
            }
            ["into-v2", how] => {
                // How the child got into a v2 cgroup: created there by clone3, or, with
                // clone3 refused by a seccomp filter (as a container's profile does), by
                // the parent's write to cgroup.procs — which inotify sees.
                let Some(cgroup) = or_report("create", Cgroup::create_owned(PREFIX, &[])) else {
                    return ExitCode::SUCCESS;
                };
                let paths: Vec<_> = cgroup.paths().map(ToOwned::to_owned).collect();
                println!("path={}", paths[0].display());
                let procs = paths[0].join("cgroup.procs");
                let watch = ProcsWatch::new(&procs);
                let refusal = match how {
                    "clone3" => None,
                    "enosys" => Some(libc::ENOSYS),
                    "eperm" => Some(libc::EPERM),
                    other => panic!("unknown way {other}"),
                };
                if let Some(errno) = refusal {
                    // On this thread, the one that spawns; its children inherit it.
                    if let Err(error) = SeccompFilter::failing(&[libc::SYS_clone3], errno).install() {
                        println!("filter_error={error}");
                    }
                }
                if let Some(output) = or_report("spawn", Command::new("cgroup-report").cgroup(&cgroup).output()) {
                    print!("{}", String::from_utf8_lossy(&output.stdout));
                    print_status(output.status);
                }
                let (opened, written) = watch.events();
                println!("procs_opened={opened}");
                println!("procs_written={written}");
                or_report("remove", cgroup.remove());
                print_left(&paths);
            }
            ["join-fails", layout] => {
                // The cgroup is gone by the time the child would join it.
                let cgroup = Cgroup::create_owned(PREFIX, &controllers(layout)).unwrap();
                for path in cgroup.paths() {
                    std::fs::remove_dir(path).unwrap();
                }
                let result = Command::new("cgroup-report").cgroup(&cgroup).output();
                or_report("spawn", result.map(drop));
                // The fork server, when the suite runs through it, is a child that belongs.
                let (zombies, live) = reexec_tests::stress::leftovers();
                println!("children_left={}", zombies + live > 0);
            }
            ["create-at", layout, path] => {
                // A cgroup at a path, with parents made for it, that a child starts in.
                let path = std::path::Path::new(path);
                let Some(mut cgroup) = or_report("create", Cgroup::create_at(path, &controllers(layout))) else {
                    return ExitCode::SUCCESS;
                };
                report_from_inside(&cgroup);
                // Kept past this process; the test opens and removes it.
                cgroup.keep();
            }
            ["leftovers", layout] => {
                let controllers = controllers(layout);
                // A pid no process has any more: a child that ran and was reaped.
                let mut gone = std::process::Command::new("true").spawn().unwrap();
                let dead = gone.id();
                gone.wait().unwrap();
                let pidns = std::fs::metadata("/proc/self/ns/pid").map(|meta| std::os::unix::fs::MetadataExt::ino(&meta)).unwrap();
                let of_dead = Cgroup::create(&format!("{PREFIX}-{pidns}-{dead}-0"), &controllers).unwrap();
                let of_dead_paths: Vec<_> = of_dead.paths().map(ToOwned::to_owned).collect();
                // As a SIGKILLed owner leaves it: never removed.
                std::mem::forget(of_dead);
                let ours = Cgroup::create_owned(PREFIX, &controllers).unwrap();
                let removed = Cgroup::remove_leftovers(PREFIX, &controllers);
                println!("removed_all_of_dead={}", of_dead_paths.iter().all(|path| removed.contains(path)));
                println!("kept_ours={}", ours.paths().all(|path| path.exists() && !removed.iter().any(|gone| gone == path)));
                print_left(&of_dead_paths);
                ours.remove().unwrap();
            }
            _ => {
                eprintln!("usage: probe-cgroup join|join-fails|leftovers|cpu v1|v2, create-at v1|v2 PATH, pids N, memory MIB, into-v2 clone3|enosys|eperm");
                return ExitCode::from(2);
            }
        }
        ExitCode::SUCCESS
    }
}
