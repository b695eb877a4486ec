//! Load and faults, for real: thousands of spawns under locks, allocation and signal
//! storms; parents SIGKILLed in the middle of a spawn; children killed by signals; what
//! descriptors children hold. As root and as uid/gid 65534. RELIABILITY.md says what
//! each test shows and gives the full-size figures.

use std::process::Output;
use std::time::Duration;

use reexec_tests::stress::{assert_clean, assert_no_leftovers};
use reexec_tests::{TestUser, describe, field, fields, output_with_timeout};

const PROBE: &str = env!("CARGO_BIN_EXE_probe-faults");
/// Against hangs only: the CI-sized runs take seconds, and the probe's own watchdog
/// reports a hang (where each thread waits) well before this.
const TIMEOUT: Duration = Duration::from_secs(300);

/// Why `run` can't create the namespaces the probe uses, if it can't.
fn userns_refusal(run: &dyn Fn(&[&str]) -> Output) -> Option<String> {
    let output = run(&["can-userns"]);
    match field(&output, "userns") {
        Some("ok") => None,
        Some(reason) => Some(reason.to_owned()),
        None => Some(describe(&output)),
    }
}

/// Runs the probe with `args` as each of [`TestUser::all`] — the test's own user (root in
/// CI) and, when that works here, uid and gid 65534; `check` gets each output with a
/// label. A user who may not create user namespaces is skipped with the reason.
fn as_root_and_unprivileged(args: &[&str], check: impl Fn(&str, &Output)) {
    for user in TestUser::all(PROBE) {
        let run = |args: &[&str]| output_with_timeout(user.command().args(args), TIMEOUT);
        match userns_refusal(&run) {
            None => check(user.label(), &run(args)),
            Some(reason) => println!(
                "skipped the run as {}: no user namespace: {reason}",
                user.label()
            ),
        }
    }
}

fn number(output: &Output, key: &str, context: &str) -> u64 {
    field(output, key)
        .unwrap_or_else(|| panic!("no {key}: {context}"))
        .parse()
        .unwrap_or_else(|_| panic!("{key} is no number: {context}"))
}

/// 16 threads spawn every kind of child (plain and namespaced; status, hooks, piped
/// stdio) while four threads allocate and free, threads hold one lock across whole spawns
/// and another — the allocators' — across others, and hooks take the first lock. Every
/// exit status is checked (each spawn has its own), and what each child printed.
#[test]
fn spawns_from_16_threads_under_locks_and_allocation_all_come_right() {
    as_root_and_unprivileged(&["load", "16", "40"], |label, output| {
        assert_clean(label, output, "640");
        println!(
            "{label}: 640 spawns in {} ms",
            field(output, "wall_ms").unwrap()
        );
    });
}

/// SIGUSR1 (a handler, no SA_RESTART) is sent without pause to each spawning thread and
/// to the process, and SIGCHLD (the same kind of handler) comes with each child's end,
/// while 16 threads spawn, wait and read output: the signals interrupt the system calls
/// with EINTR — the probe checks first that they do — and nothing changes.
#[test]
fn signals_interrupting_spawn_and_wait_change_nothing() {
    as_root_and_unprivileged(&["eintr", "16", "40"], |label, output| {
        let context = format!("{label}: {}", describe(output));
        assert_eq!(
            field(output, "eintr_seen"),
            Some("true"),
            "the handler does not interrupt a blocked read: {context}"
        );
        assert!(
            number(output, "signals_handled", &context) > 0,
            "no signal was handled during the spawns: {context}"
        );
        assert_clean(label, output, "640");
    });
}

/// 8 threads at once start children that list their descriptors: each sees 0, 1, 2 and
/// the one it was given with `Command::fd` — never what the parent left inheritable on
/// purpose, nor a descriptor of another spawn, nor of its own but those. Hooks look at
/// each child while it waits for its parent (before exec): it holds only the descriptors
/// its spawn needs. And a monitor finds no descriptor of ours in the parent without
/// close-on-exec, at any moment.
#[test]
fn children_hold_only_their_own_descriptors_under_concurrency() {
    as_root_and_unprivileged(&["fd-hygiene", "8", "30"], |label, output| {
        let context = format!("{label}: {}", describe(output));
        assert_clean(label, output, "240");
        let given = field(output, "given_fd").unwrap();
        let expected: Vec<&str> = field(output, "expected").unwrap().split(',').collect();
        assert_eq!(expected, ["0", "1", "2", given], "{context}");
        let inheritable = field(output, "inheritable").unwrap();
        assert!(
            !inheritable.is_empty() && !inheritable.split(',').any(|fd| expected.contains(&fd)),
            "the parent must hold inheritable descriptors no child expects: {context}"
        );
        if field(output, "waiting_children_inspected") == Some("true") {
            assert_eq!(field(output, "waiting_checked"), Some("80"), "{context}");
        } else {
            println!(
                "{label}: skipped the check of waiting children: /proc/PID/syscall is unreadable here"
            );
        }
        assert_eq!(
            field(output, "parent_inheritable_leaks"),
            Some("0"),
            "{context}"
        );
        assert!(
            number(output, "monitor_samples", &context) > 0,
            "the monitor never looked: {context}"
        );
    });
}

/// A child ended by a signal — sent by the parent or raised by itself — has a status
/// that names the signal. PID 1 of a namespace is the exception the kernel makes: it gets
/// only signals it handles, and for the death signal (SIGTERM) the entry's dispatch has a
/// handler that exits with 128 + the signal, as a shell reports it.
#[test]
fn a_child_killed_by_a_signal_says_which() {
    as_root_and_unprivileged(&["signals"], |label, output| {
        let context = format!("{label}: {}", describe(output));
        let expected = [
            "plain-sigterm signal=15",
            "plain-sigint signal=2",
            "plain-sighup signal=1",
            "plain-sigquit signal=3",
            "plain-sigusr1 signal=10",
            "plain-sigusr2 signal=12",
            "plain-sigalrm signal=14",
            "plain-sigkill signal=9",
            "userns-sigint signal=2",
            "userns-sigterm signal=15",
            "pid1-sigkill signal=9",
            "pid1-sigterm code=143",
            "raise-sigsegv signal=11",
            "raise-sigbus signal=7",
            "raise-sigfpe signal=8",
            "raise-sigterm signal=15",
            "abort signal=6",
        ];
        assert_eq!(fields(output, "case"), expected, "{context}");
        assert_no_leftovers(label, output);
    });
}

/// 150 times: a process whose 4 threads spawn every kind of child in a loop — sleepers
/// kept running, PID 1 of their namespace or not; children waiting for maps or a hook;
/// short children waited for — is SIGKILLed after a delay that walks over 0 to 30 ms.
/// Every orphan must end within 5 s (its entry sleeps 30 s), wherever it was: before the
/// clone returned, waiting for its parent, or running its entry; any process still
/// carrying the run's mark is a survivor, and is killed by its pid.
#[test]
fn a_parent_killed_at_spread_out_moments_leaves_no_child_alive() {
    as_root_and_unprivileged(&["sweep", "150", "4"], |label, output| {
        let context = format!("{label}: {}", describe(output));
        assert_eq!(field(output, "rounds"), Some("150"), "{context}");
        assert_eq!(field(output, "survivors"), Some("0"), "{context}");
        let ends = fields(output, "orphan_end");
        let count = |end: &str| -> u64 {
            ends.iter()
                .find_map(|line| line.strip_prefix(&format!("{end} count=")))
                .map_or(0, |count| count.parse().unwrap())
        };
        // Not a sweep that killed nothing: running entries ended by their death signal,
        // plain (SIGTERM) and as PID 1 (the dispatch's handler: 143).
        assert!(count("signal:15") > 0, "{context}");
        assert!(count("code:143") > 0, "{context}");
        println!(
            "{label}: {} orphans, ended: {}",
            field(output, "orphans").unwrap(),
            ends.join("; ")
        );
    });
}

/// The parent SIGKILLed at chosen points of a spawn, and how its one orphan ended.
/// Before exec the child ends itself (127, the status of a failed setup, which no parent
/// is left to read): at the open of the first id map file (a seccomp filter on that
/// openat), inside the hook, at the write that releases the child (seccomp again), and —
/// with ptrace holding the new child before its first instruction — after the parent did
/// everything, before the child ran at all. After exec the death signal ends it: SIGTERM,
/// or 143 as PID 1. The last row is the control: with the death signal off, a child its
/// parent already released runs on, and the harness sees it.
#[test]
fn a_parent_killed_at_chosen_points_leaves_no_child_alive() {
    let rows = [
        ("open-map", "seed", Some("code:127")),
        ("hook", "seed", Some("code:127")),
        ("release", "seed", Some("code:127")),
        ("before-child-runs", "seed", Some("code:127")),
        ("after-exec", "seed", Some("code:143")),
        ("hook", "plain-hook", Some("code:127")),
        ("release", "plain-hook", Some("code:127")),
        ("before-child-runs", "plain-hook", Some("code:127")),
        ("after-exec", "plain-hook", Some("signal:15")),
        ("before-child-runs", "plain", Some("code:127")),
        ("after-exec", "plain", Some("signal:15")),
        ("before-child-runs", "userpid", Some("code:127")),
        ("after-exec", "userpid", Some("code:143")),
        ("hook", "seed-no-death-signal", Some("code:127")),
        // The control: survives by design, and is found.
        ("before-child-runs", "seed-no-death-signal", None),
    ];
    // One probe run per row and user; `as_root_and_unprivileged` takes fixed arguments.
    for (point, kind, end) in rows {
        as_root_and_unprivileged(&["kill-at", point, kind], |label, output| {
            let context = format!("{label}, {point} {kind}: {}", describe(output));
            if let Some(reason) = field(output, "skipped") {
                println!("{label}: skipped {point} {kind}: {reason}");
                return;
            }
            assert_eq!(
                field(output, "middle_signal"),
                Some("9"),
                "the parent must die of SIGKILL: {context}"
            );
            if ["open-map", "hook", "release", "after-exec"].contains(&point) {
                let dying_at = field(output, "middle_dying_at").unwrap_or_default();
                assert!(dying_at.starts_with(point), "killed elsewhere: {context}");
                // Run through the fork server (tests/fork_server.rs), the middle's server
                // ends with it: of its own death signal, SIGKILL, or at the end-of-file on
                // its socket, whichever comes first.
                if std::env::var_os(reexec_tests::fork_server::ASK).is_some() {
                    let server_end = field(output, "fork_server_end");
                    assert!(
                        matches!(server_end, Some("signal:9" | "code:0")),
                        "{context}"
                    );
                }
            }
            match end {
                Some(end) => {
                    assert_eq!(field(output, "survivors"), Some("0"), "{context}");
                    assert_eq!(field(output, "orphans"), Some("1"), "{context}");
                    assert_eq!(
                        fields(output, "orphan_end"),
                        [format!("{end} count=1")],
                        "{context}"
                    );
                }
                None => assert_eq!(
                    field(output, "survivors"),
                    Some("1"),
                    "the control must survive and be found: {context}"
                ),
            }
        });
    }
}
