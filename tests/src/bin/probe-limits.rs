//! Limits and privileges of a re-executed child (issue #13): spawns the entry
//! `restricted` with resource limits, capabilities and no_new_privs, and prints what the
//! entry — the program the child executed — saw as `key=value` lines.

use std::process::ExitCode;

use reexec::{
    Capabilities, Capability, CapabilitySet, Command, IdMap, Namespaces, RLIM_INFINITY, Resource,
};
use reexec_tests::procfs::{LIMIT_NAMES, own_limits, own_status_field};
use reexec_tests::{or_none, print_status, step_name};

/// Each resource's (soft, hard) limit in /proc/self/limits, `unlimited` as
/// [`RLIM_INFINITY`], in the order of [`LIMIT_NAMES`].
fn limits() -> Vec<(u64, u64)> {
    let value = |word: &str| match word {
        "unlimited" => RLIM_INFINITY,
        number => number.parse().unwrap(),
    };
    own_limits()
        .iter()
        .map(|(_, soft, hard)| (value(soft), value(hard)))
        .collect()
}

fn show(value: u64) -> String {
    if value == RLIM_INFINITY {
        "unlimited".into()
    } else {
        value.to_string()
    }
}

/// Prints its uid, capability sets, no_new_privs and limits, then tries each operation
/// its arguments name: `sethostname` (needs CAP_SYS_ADMIN over its UTS namespace), `bind`
/// (port 80, needs CAP_NET_BIND_SERVICE over its network namespace). Only ever run in
/// namespaces the probe made for it.
#[reexec::entry("restricted")]
fn restricted() {
    println!("uid={}", nix::unistd::getuid());
    for (key, name) in [
        ("cap_inh", "CapInh"),
        ("cap_prm", "CapPrm"),
        ("cap_eff", "CapEff"),
        ("cap_bnd", "CapBnd"),
        ("cap_amb", "CapAmb"),
        ("no_new_privs", "NoNewPrivs"),
    ] {
        println!("{key}={}", own_status_field(name));
    }
    for (name, (soft, hard)) in LIMIT_NAMES.iter().zip(limits()) {
        println!("limit_{name}={} {}", show(soft), show(hard));
    }
    for operation in std::env::args().skip(1) {
        let outcome = match operation.as_str() {
            "sethostname" => nix::unistd::sethostname("restricted")
                .map_or_else(|errno| format!("{errno:?}"), |()| "ok".into()),
            "bind" => std::net::TcpListener::bind("0.0.0.0:80").map_or_else(
                |error| {
                    format!(
                        "{:?}",
                        nix::errno::Errno::from_raw(error.raw_os_error().unwrap_or(0))
                    )
                },
                |_| "ok".into(),
            ),
            other => panic!("unknown operation {other}"),
        };
        println!("{operation}={outcome}");
    }
}

fn report_error(error: &reexec::Error) {
    println!("error_step={}", step_name(error.step()));
    println!("error_errno={}", or_none(error.raw_os_error()));
    println!("error_kind={}", kind(error));
    println!("error={error}");
}

fn kind(error: &reexec::Error) -> &'static str {
    match error {
        reexec::Error::InvalidInput { .. } => "invalid-input",
        reexec::Error::Refused { .. } => "refused",
        _ => "other",
    }
}

/// Runs `command` and prints how it went and what the entry printed.
fn run(command: &mut Command) {
    match command.output() {
        Ok(output) => {
            print_status(output.status);
            print!("{}", String::from_utf8_lossy(&output.stdout));
            eprint!("{}", String::from_utf8_lossy(&output.stderr));
        }
        Err(error) => report_error(&error),
    }
}

/// The capabilities of a `caps` mode's SPEC.
fn capabilities(spec: &str) -> Option<Capabilities> {
    match spec {
        "unchanged" => None,
        "none" => Some(Capabilities::none()),
        "netbind" => Some(Capabilities::only([Capability::NetBindService])),
        // Everything given up but the bounding set: root gets it all back at exec.
        "bounding-only" => {
            let mut caps = Capabilities::none();
            caps.bounding = CapabilitySet::ALL;
            Some(caps)
        }
        // Kept, but not ambient: lost at exec by a uid other than 0.
        "netbind-not-ambient" => {
            let mut caps = Capabilities::only([Capability::NetBindService]);
            caps.ambient = CapabilitySet::EMPTY;
            Some(caps)
        }
        other => panic!("unknown capability spec {other}"),
    }
}

/// A limit for each resource the entry can be checked to have: lower than what this
/// process has, where it has a limit, so that no privilege is needed, and each resource's
/// own, so that none can be mistaken for another.
fn chosen_limits() -> Vec<(Resource, u64, u64)> {
    let wanted: [(&str, u64, u64); 16] = [
        ("cpu", 3600, 7200),
        ("fsize", 1 << 30, 1 << 31),
        ("data", 3 << 30, 4 << 30),
        ("stack", 8 << 20, 16 << 20),
        ("core", 0, 4096),
        ("rss", 5 << 20, 6 << 20),
        ("nproc", 5000, 6000),
        ("nofile", 64, 128),
        ("memlock", 32768, 65536),
        ("as", 16 << 30, 32 << 30),
        ("locks", 100, 200),
        ("sigpending", 300, 400),
        ("msgqueue", 4096, 8192),
        ("nice", 0, 0),
        ("rtprio", 0, 0),
        ("rttime", 1_000_000, 2_000_000),
    ];
    let current = limits();
    wanted
        .iter()
        .zip(current)
        .map(|(&(name, soft, hard), (_, has_hard))| {
            let hard = hard.min(has_hard);
            (name.parse().unwrap(), soft.min(hard), hard)
        })
        .collect()
}

/// `uid` inside a new user namespace (USER, UTS and NET) in which root is the caller, or
/// — any other uid — in which that uid is the caller and nobody is root.
fn in_namespaces(uid: u32) -> Command {
    let mut command = Command::new("restricted");
    command.namespaces(Namespaces::USER | Namespaces::UTS | Namespaces::NET);
    if uid == 0 {
        command.map_root_to_caller();
    } else {
        command
            .uid_map(IdMap::new(uid, nix::unistd::geteuid().as_raw(), 1))
            .gid_map(IdMap::new(uid, nix::unistd::getegid().as_raw(), 1));
    }
    command
}

reexec::main! {
fn main() -> ExitCode {
    reexec_tests::fork_server::use_fork_server_if_asked();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        // The entry as `uid` in new namespaces, keeping SPEC's capabilities, with
        // no_new_privs when NNP is `nnp`.
        ["caps", uid, spec, nnp] => {
            let mut command = in_namespaces(uid.parse().unwrap());
            command
                .capabilities(capabilities(spec))
                .no_new_privs(*nnp == "nnp")
                .args(["sethostname", "bind"]);
            run(&mut command);
        }
        // The entry in the caller's own namespaces, keeping SPEC's capabilities.
        ["caps-here", spec] => {
            run(Command::new("restricted").capabilities(capabilities(spec)));
        }
        // Sets a limit for every resource; prints what it asked for.
        ["rlimits"] => {
            let mut command = Command::new("restricted");
            for (name, (soft, hard)) in LIMIT_NAMES.iter().zip(limits()) {
                println!("parent_{name}={} {}", show(soft), show(hard));
            }
            for (resource, soft, hard) in chosen_limits() {
                println!("want_{}={} {}", resource.name(), show(soft), show(hard));
                command.rlimit(resource, soft, hard);
            }
            run(&mut command);
        }
        // A limit given twice: the second wins.
        ["rlimit-twice"] => {
            let (_, nofile_hard) = limits()[7];
            let hard = nofile_hard.min(256);
            run(Command::new("restricted")
                .rlimit(Resource::NoFile, 32, hard)
                .rlimit(Resource::NoFile, 48, hard));
        }
        // A hard limit above the inherited one, from a new user namespace, where no
        // process has CAP_SYS_RESOURCE over the host's.
        ["rlimit-raise"] => {
            let (index, hard) = limits()
                .into_iter()
                .enumerate()
                .map(|(index, (_, hard))| (index, hard))
                .find(|&(index, hard)| hard != RLIM_INFINITY && LIMIT_NAMES[index] != "nofile")
                .expect("a resource with a finite hard limit");
            let resource: Resource = LIMIT_NAMES[index].parse().unwrap();
            println!("raised={}", resource.name());
            let mut command = in_namespaces(0);
            command.rlimit(resource, hard, hard + 1);
            run(&mut command);
        }
        // A soft limit above the hard one.
        ["rlimit-inverted"] => run(Command::new("restricted").rlimit(Resource::NoFile, 10, 5)),
        other => {
            eprintln!("probe-limits: unknown mode {other:?}");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
}
