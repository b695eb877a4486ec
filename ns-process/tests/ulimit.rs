//! `--ulimit` (issue #13): each of podman's names reaches the command, as root and as uid
//! 65534; bad input is refused with 125 before anything is created.

use std::time::Duration;

use reexec_tests::procfs::{LIMIT_NAMES, limits_in, own_limits};
use reexec_tests::{
    as_root_and_unprivileged, assert_refused, describe, output_with_timeout, stdout_text,
};

const NS_PROCESS: &str = env!("CARGO_BIN_EXE_ns-process");
const TIMEOUT: Duration = Duration::from_secs(60);

/// What the command prints: its soft and hard limit of open files as `ulimit` gives them,
/// then its /proc/self/limits.
const SHOW_LIMITS: &str = "ulimit -Sn; ulimit -Hn; cat /proc/self/limits";

/// A limit no higher than `has` (`unlimited` or a number).
fn at_most(limit: u64, has: &str) -> u64 {
    has.parse().map_or(limit, |has: u64| limit.min(has))
}

/// The command's limits in `output`, by name.
fn command_limits(output: &std::process::Output) -> Vec<(&'static str, String, String)> {
    limits_in(&stdout_text(output))
}

#[test]
fn each_ulimit_reaches_the_command() {
    // Each resource's own values, lower than what this process (and so ns-process, run
    // as root or through setpriv) has, so that no privilege is needed.
    let wanted: [(u64, u64); 16] = [
        (3600, 7200),           // cpu
        (1 << 30, 1 << 31),     // fsize
        (3 << 30, 4 << 30),     // data
        (8 << 20, 16 << 20),    // stack
        (0, 4096),              // core
        (5 << 20, 6 << 20),     // rss
        (5000, 6000),           // nproc
        (64, 128),              // nofile
        (32768, 65536),         // memlock
        (16 << 30, 32 << 30),   // as
        (100, 200),             // locks
        (300, 400),             // sigpending
        (4096, 8192),           // msgqueue
        (0, 0),                 // nice
        (0, 0),                 // rtprio
        (1_000_000, 2_000_000), // rttime
    ];
    let mut args = Vec::new();
    let mut expected = Vec::new();
    for ((name, _, has_hard), (soft, hard)) in own_limits().into_iter().zip(wanted) {
        let hard = at_most(hard, &has_hard);
        let soft = soft.min(hard);
        args.push("--ulimit".to_owned());
        args.push(format!("{name}={soft}:{hard}"));
        expected.push((name, soft.to_string(), hard.to_string()));
    }
    let names: Vec<&str> = expected.iter().map(|(name, ..)| *name).collect();
    assert_eq!(names, LIMIT_NAMES, "every one of podman's names is given");
    args.extend(["--", "sh", "-c", SHOW_LIMITS].map(str::to_owned));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    as_root_and_unprivileged(NS_PROCESS, TIMEOUT, &args, |label, output| {
        let context = format!("{label}: {}", describe(output));
        assert!(output.status.success(), "{context}");
        assert!(
            stdout_text(output).starts_with("64\n128\n"),
            "ulimit -n: {context}"
        );
        assert_eq!(command_limits(output), expected, "{context}");
    });
}

#[test]
fn unlimited_minus_one_a_lone_soft_limit_and_a_later_flag_are_taken_as_podman_takes_them() {
    let unlimited: Vec<&str> = own_limits()
        .into_iter()
        .filter(|(_, _, hard)| hard == "unlimited")
        .map(|(name, ..)| name)
        .collect();
    let mut args = vec![
        "--ulimit",
        "core=0",
        "--ulimit",
        "nofile=50:60",
        "--ulimit",
        "nofile=40:60",
    ];
    // Only where this process has no hard limit: raising one would need privilege.
    let flags: Vec<String> = unlimited
        .iter()
        .zip(["unlimited", "-1"])
        .map(|(name, word)| format!("{name}={word}"))
        .collect();
    if flags.len() < 2 {
        println!("skipped unlimited and -1: fewer than two resources have no hard limit here");
    }
    for flag in &flags {
        args.extend(["--ulimit", flag]);
    }
    args.extend(["--", "sh", "-c", SHOW_LIMITS]);
    as_root_and_unprivileged(NS_PROCESS, TIMEOUT, &args, |label, output| {
        let context = format!("{label}: {}", describe(output));
        assert!(output.status.success(), "{context}");
        let limits = command_limits(output);
        let of = |name: &str| {
            limits
                .iter()
                .find(|(found, ..)| *found == name)
                .map(|(_, soft, hard)| (soft.as_str(), hard.as_str()))
        };
        assert_eq!(of("core"), Some(("0", "0")), "HARD is SOFT: {context}");
        assert_eq!(
            of("nofile"),
            Some(("40", "60")),
            "the later flag: {context}"
        );
        for name in unlimited.iter().take(flags.len()) {
            assert_eq!(
                of(name),
                Some(("unlimited", "unlimited")),
                "{name}: {context}"
            );
        }
    });
}

#[test]
fn bad_ulimits_are_refused_with_125_and_what_to_write() {
    for (flag, message) in [
        (
            "nofiles=10",
            "unknown resource \"nofiles\"; use one of: core, cpu, data",
        ),
        ("nofile", "it has no '='"),
        (
            "nofile=ten",
            "the soft limit \"ten\" is not a number from 0 up, unlimited or -1",
        ),
        ("nofile=10:x", "the hard limit \"x\" is not a number"),
        ("nofile=10:5", "the soft limit 10 is above the hard limit 5"),
    ] {
        assert_refused(NS_PROCESS, &["--ulimit", flag, "--", "true"], 125, message);
    }
}

#[test]
fn raising_a_hard_limit_is_refused_with_125_naming_the_limit_and_the_capability() {
    // A resource with a hard limit here; from the init's new user namespace no process
    // may raise it, root included.
    let Some((name, _, hard)) = own_limits()
        .into_iter()
        .find(|(name, _, hard)| hard != "unlimited" && *name != "nofile")
    else {
        println!("skipped: every resource but nofile is unlimited here");
        return;
    };
    let raised = hard.parse::<u64>().unwrap() + 1;
    let flag = format!("{name}={hard}:{raised}");
    as_root_and_unprivileged(
        NS_PROCESS,
        TIMEOUT,
        &["--ulimit", &flag, "--", "echo", "ran"],
        |label, output| {
            let context = format!("{label}: {}", describe(output));
            assert_eq!(output.status.code(), Some(125), "{context}");
            assert_eq!(stdout_text(output), "", "the command never ran: {context}");
            let stderr = reexec_tests::stderr_text(output);
            assert!(
                stderr.contains("ns-process: --ulimit: setting a resource limit")
                    && stderr.contains(&format!("; {name} (RLIMIT_"))
                    && stderr.contains("CAP_SYS_RESOURCE"),
                "{context}"
            );
        },
    );
}

#[test]
fn nproc_stops_the_forks_of_a_user_other_than_host_root() {
    // fork(2) never enforces nproc on host root: as uid 65534, where it binds.
    let user = reexec_tests::or_skip!(
        reexec_tests::TestUser::unprivileged(NS_PROCESS),
        "no unprivileged user to run as"
    );
    let script = "for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait; echo waited";
    let output = output_with_timeout(
        user.command()
            .args(["--ulimit", "nproc=5", "--", "sh", "-c", script]),
        TIMEOUT,
    );
    let context = format!("{}: {}", user.label(), describe(&output));
    // The init, sh and three sleeps are five processes of root inside: the next fork fails.
    // dash says "Cannot fork", busybox "can't fork".
    let refused = |output: &std::process::Output| {
        reexec_tests::stderr_text(output)
            .to_lowercase()
            .contains("fork")
    };
    assert!(refused(&output), "{context}");
    // Without the limit, all eight start.
    let output = output_with_timeout(user.command().args(["--", "sh", "-c", script]), TIMEOUT);
    assert!(output.status.success(), "{}", describe(&output));
    assert!(!refused(&output), "{}", describe(&output));
}
