//! Namespaced re-execution: spawns entries in new namespaces and prints what each side
//! sees as `key=value` lines.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use reexec::{Command, IdMap, Namespaces};
use reexec_tests::orphans::orphan_harness;
use reexec_tests::procfs::namespace_id;
use reexec_tests::stress::{Stress, allocate_on_threads};
use reexec_tests::{SEED_NAMESPACES, or_none, print_status, step_name};

const NAMESPACE_FILES: [&str; 8] = ["user", "mnt", "uts", "ipc", "pid", "net", "cgroup", "time"];

fn print_namespaces(prefix: &str) {
    for name in NAMESPACE_FILES {
        if let Some(id) = namespace_id(name) {
            println!("{prefix}ns_{name}={id}");
        }
    }
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Prints everything a test may compare: namespaces, ids, maps, pid, hostname, links.
#[reexec::entry("ns-report")]
fn ns_report() -> Result<(), String> {
    print_namespaces("");
    println!("pid={}", std::process::id());
    let death_signal = nix::sys::prctl::get_pdeathsig()
        .ok()
        .flatten()
        .map_or(0, |signal| signal as i32);
    println!("death_signal={death_signal}");
    println!(
        "uid={} gid={}",
        nix::unistd::getuid(),
        nix::unistd::getgid()
    );
    for (key, file) in [
        ("uid_map", "uid_map"),
        ("gid_map", "gid_map"),
        ("setgroups", "setgroups"),
    ] {
        let text = std::fs::read_to_string(format!("/proc/self/{file}")).unwrap_or_default();
        for line in text.lines() {
            println!(
                "{key}={}",
                line.split_whitespace().collect::<Vec<_>>().join(" ")
            );
        }
    }
    let devices = std::fs::read_to_string("/proc/self/net/dev").unwrap_or_default();
    let names: Vec<&str> = devices
        .lines()
        .skip(2)
        .filter_map(|line| line.split(':').next())
        .map(str::trim)
        .collect();
    println!("net_devices={}", names.join(","));
    if let Some(name) = std::env::args().nth(1) {
        nix::unistd::sethostname(&name).map_err(|errno| format!("sethostname: {errno}"))?;
    }
    println!("hostname={}", hostname());
    Ok(())
}

/// Reports whether the parent's setup hook ran before this entry did.
#[reexec::entry("after-parent-setup")]
fn after_parent_setup() {
    let marker = std::env::args().nth(1).unwrap();
    println!(
        "hook_ran_before_entry={}",
        std::path::Path::new(&marker).exists()
    );
    std::fs::write(format!("{marker}.entry"), "").unwrap();
}

/// Drops every supplementary group, then reads the file named by the first argument.
#[reexec::entry("shed-groups")]
fn shed_groups() {
    let file = std::env::args().nth(1).unwrap();
    match nix::unistd::setgroups(&[]) {
        Ok(()) => println!("setgroups=done"),
        Err(errno) => println!("setgroups=refused: {}", errno.desc()),
    }
    match std::fs::read_to_string(file) {
        Ok(text) => println!("read={text}"),
        Err(error) => println!("read=refused: {}", error.kind()),
    }
}

#[reexec::entry("exit-seven")]
fn exit_seven() -> ExitCode {
    ExitCode::from(7)
}

#[reexec::entry("sleeper")]
fn sleeper() -> ExitCode {
    std::thread::sleep(Duration::from_secs(30));
    ExitCode::from(33)
}

fn parse_namespaces(list: &str) -> Namespaces {
    let mut set = Namespaces::NONE;
    for name in list
        .split(',')
        .filter(|name| !name.is_empty() && *name != "none")
    {
        set |= match name {
            "user" => Namespaces::USER,
            "mount" => Namespaces::MOUNT,
            "uts" => Namespaces::UTS,
            "ipc" => Namespaces::IPC,
            "pid" => Namespaces::PID,
            "net" => Namespaces::NET,
            "cgroup" => Namespaces::CGROUP,
            "time" => Namespaces::TIME,
            "seed" => SEED_NAMESPACES,
            other => panic!("unknown namespace {other}"),
        };
    }
    set
}

/// `ns NAMESPACES MAPS [ARGS…]`: runs ns-report; MAPS is `none`, `root` (root to the
/// caller) or `multi` (two ranges each, for root callers).
fn namespaced(namespaces: &str, maps: &str) -> Command {
    let mut command = Command::new("ns-report");
    command.namespaces(parse_namespaces(namespaces));
    match maps {
        "none" => {}
        "root" => {
            command.map_root_to_caller();
        }
        "root-allow-setgroups" => {
            command.map_root_to_caller().allow_setgroups(true);
        }
        "multi" => {
            command
                .uid_maps([IdMap::new(0, 100_000, 1000), IdMap::new(1000, 200_000, 10)])
                .gid_maps([IdMap::new(0, 100_000, 1000), IdMap::new(1000, 200_000, 10)]);
        }
        "subordinate" => {
            command.map_root_to_caller_and_subordinate_range();
        }
        "helpers-own" => {
            command.map_root_to_caller().map_with_helpers(true);
        }
        "helpers-outside-range" => {
            let (uid, gid) = (
                nix::unistd::geteuid().as_raw(),
                nix::unistd::getegid().as_raw(),
            );
            command
                .uid_maps([IdMap::new(0, uid, 1), IdMap::new(1, 300_000, 5)])
                .gid_map(IdMap::new(0, gid, 1))
                .map_with_helpers(true);
        }
        "helpers-range-only" => {
            // As a tree mmdebstrap --mode=unshare built is owned: root is the range's
            // first id, and the caller's own ids are not mapped at all.
            // Taking ids clears a death signal: the child must arm it again after.
            command
                .uid_map(IdMap::new(0, 200_000, 65536))
                .gid_map(IdMap::new(0, 200_000, 65536))
                .map_with_helpers(true)
                .death_signal(Some(nix::libc::SIGUSR2));
        }
        "own-uid-as-5" => {
            command.uid_map(IdMap::new(5, nix::unistd::geteuid().as_raw(), 1));
        }
        "foreign" => {
            // Ids an unprivileged caller does not own.
            command
                .uid_map(IdMap::new(0, 0, 1))
                .gid_map(IdMap::new(0, 0, 1));
        }
        other => panic!("unknown map mode {other}"),
    }
    command
}

fn report_error(error: &reexec::Error) {
    println!("error_step={}", step_name(error.step()));
    println!("error_errno={}", or_none(error.raw_os_error()));
    println!("error={error}");
}

/// Spawns from many threads at once, mixed plain and namespaced, while other threads
/// allocate and hold a lock across spawn calls; then checks fds and children.
fn stress(threads: usize, per_thread: usize) {
    let heap = Mutex::new(Vec::<Vec<u8>>::new());
    let stress = Stress {
        threads,
        rounds: per_thread,
        limit: Duration::from_secs(100),
    };
    let (outcome, ()) = stress.run(
        |done| allocate_on_threads(2, done, &heap),
        |thread, round| {
            let mut command = Command::new("exit-seven");
            if (thread + round) % 2 == 0 {
                command.namespaces(SEED_NAMESPACES).map_root_to_caller();
            }
            // Half the spawns happen while holding a lock other threads want.
            let guard = (round % 2 == 0).then(|| heap.lock().unwrap());
            let status = command.status();
            drop(guard);
            match status {
                Ok(status) if status.code() == Some(7) => Ok(()),
                other => Err(format!("t{thread}r{round}: expected code 7, got {other:?}")),
            }
        },
    );
    outcome.print();
}

reexec::main! {
    fn main() -> Result<(), reexec::Error> {
        reexec_tests::fork_server::use_fork_server_if_asked();
        let args: Vec<String> = std::env::args().skip(1).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match args.as_slice() {
            ["ns", namespaces, maps, rest @ ..] => {
                print_namespaces("parent_");
                println!("parent_hostname={}", hostname());
                match namespaced(namespaces, maps).args(rest).output() {
                    Ok(output) => {
                        print_status(output.status);
                        print!("{}", String::from_utf8_lossy(&output.stdout));
                        eprint!("{}", String::from_utf8_lossy(&output.stderr));
                    }
                    Err(error) => report_error(&error),
                }
                println!("parent_hostname_after={}", hostname());
            }
            ["replaced"] => {
                let exe = std::env::current_exe().unwrap();
                std::fs::remove_file(&exe).unwrap();
                std::fs::write(&exe, b"#!/bin/sh\nexit 99\n").unwrap();
                let output = namespaced("seed", "root").output()?;
                print_status(output.status);
                print!("{}", String::from_utf8_lossy(&output.stdout));
            }
            ["parent-setup", marker, outcome] => {
                let marker = marker.to_string();
                let fail = *outcome == "fail";
                let hook_marker = marker.clone();
                let result = Command::new("after-parent-setup")
                    .namespaces(Namespaces::USER | Namespaces::PID | Namespaces::NET)
                    .map_root_to_caller()
                    .arg(&marker)
                    .parent_setup(move |pid| {
                        std::fs::write(&hook_marker, pid.to_string())?;
                        if fail {
                            return Err(std::io::Error::other("the hook refuses"));
                        }
                        Ok(())
                    })
                    .output();
                match result {
                    Ok(output) => {
                        print_status(output.status);
                        print!("{}", String::from_utf8_lossy(&output.stdout));
                    }
                    Err(error) => report_error(&error),
                }
                println!("entry_ran={}", std::path::Path::new(&format!("{marker}.entry")).exists());
                // Any child, a zombie too, but the fork server, when the suite runs through it.
                let (zombies, live) = reexec_tests::stress::leftovers();
                println!("children_left={}", zombies + live > 0);
            }
            ["shed-groups", file, policy] => {
                let output = Command::new("shed-groups")
                    .namespaces(Namespaces::USER)
                    .map_root_to_caller()
                    .allow_setgroups(*policy == "allow")
                    .arg(file)
                    .output()?;
                print_status(output.status);
                print!("{}", String::from_utf8_lossy(&output.stdout));
            }
            ["e2big"] => {
                let huge = "x".repeat(200 * 1024);
                let error = namespaced("seed", "root").arg(huge).spawn().unwrap_err();
                report_error(&error);
            }
            ["invalid-maps"] => {
                for error in [
                    Command::new("ns-report").uid_map(IdMap::new(0, 0, 1)).spawn().unwrap_err(),
                    Command::new("ns-report")
                        .namespaces(Namespaces::USER)
                        .uid_maps([IdMap::new(0, 0, 10), IdMap::new(5, 100, 1)])
                        .spawn()
                        .unwrap_err(),
                ] {
                    println!("error={error}");
                }
            }
            ["stress", threads, per_thread] => stress(threads.parse().unwrap(), per_thread.parse().unwrap()),
            ["orphan-harness"] => orphan_harness(&["spawn-sleeper-and-wait"]),
            ["spawn-sleeper-and-wait"] => {
                let child = Command::new("sleeper")
                    .namespaces(SEED_NAMESPACES)
                    .map_root_to_caller()
                    .spawn()?;
                println!("child={}", child.id());
                std::io::stdout().flush().unwrap();
                std::thread::sleep(Duration::from_secs(60));
            }
            other => {
                eprintln!("probe-ns: unknown mode {other:?}");
                std::process::exit(2);
            }
        }
        Ok(())
    }
}
