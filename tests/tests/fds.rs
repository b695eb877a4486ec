//! Nothing crosses to a child by descriptor unless given: a parent holding an open
//! directory and a pipe without close-on-exec spawns entries that see only 0, 1, 2 and the
//! descriptors given with `Command::fd`, each at its number with its open file — a swap,
//! a number the parent's inheritable pipe holds, a source at its own number, one far
//! above. Without namespaces (vfork), as PID 1 without maps (vfork), and in user, PID and
//! mount namespaces with root mapped (the child waits for its parent); each with
//! close_range(2) working, then failing with ENOSYS and with EINVAL under a seccomp
//! filter (the /proc/self/fd fallback). As root and as uid/gid 65534. (A child that
//! waits for its parent has closed what it does not need before waiting, so there the
//! fallback has less to do; the first two kinds depend on it alone.)

use std::process::Output;
use std::time::Duration;

use reexec_tests::{as_root_and_unprivileged, describe, field};

const PROBE: &str = env!("CARGO_BIN_EXE_probe-fds");
const TIMEOUT: Duration = Duration::from_secs(120);

/// The value of `key` for one case (`KIND,FILTER key=value` lines).
fn case_field<'a>(output: &'a Output, case: &str, key: &str) -> Option<&'a str> {
    field(output, &format!("{case} {key}"))
}

fn check_given_descriptors(kind: &str) {
    as_root_and_unprivileged(PROBE, TIMEOUT, &["given", kind], |label, output| {
        let context = format!("{label}, {kind}: {}", describe(output));
        assert!(output.status.success(), "{context}");
        let root_dir = field(output, "root_dir").unwrap();
        let inheritable = field(output, "parent_inheritable").unwrap();
        assert!(
            inheritable.split(',').any(|fd| fd == root_dir),
            "the parent's directory must be inheritable for the test to mean anything: {context}"
        );
        assert_eq!(
            field(output, "parent_inheritable_after"),
            Some(inheritable),
            "spawning changed the parent's own inheritable descriptors: {context}"
        );
        for filter in ["none", "enosys", "einval"] {
            let case = format!("{kind},{filter}");
            if let Some(reason) = case_field(output, &case, "skipped") {
                println!("{label}: skipped {case}: {reason}");
                continue;
            }
            let get = |key: &str| case_field(output, &case, key);
            if filter != "none" {
                assert_eq!(
                    get("close_range_refused"),
                    Some("true"),
                    "{case}: the filter did not make close_range fail: {context}"
                );
            }
            assert_eq!(get("error"), None, "{case}: {context}");
            assert_eq!(get("code"), Some("0"), "{case}: {context}");
            // Exactly 0, 1, 2 and the given numbers: neither the directory nor the pipe
            // the parent left inheritable, nor any descriptor of the spawn itself.
            assert_eq!(
                get("child_fds"),
                get("expected"),
                "{case}: the child's descriptors: {context}"
            );
            assert_eq!(get("child_to_child"), Some("to-child"), "{case}: {context}");
            assert_eq!(
                get("child_from_child"),
                Some("written"),
                "{case}: {context}"
            );
            assert_eq!(get("parent_read"), Some("from-child"), "{case}: {context}");
            assert_eq!(
                get("child_marked"),
                Some("given-at-marked"),
                "{case}: {context}"
            );
            assert_eq!(
                get("child_same"),
                Some("given-at-same"),
                "{case}: {context}"
            );
            assert_eq!(get("child_far"), Some("given-at-far"), "{case}: {context}");
            for name in ["to_child", "from_child", "marked", "same", "far"] {
                assert_eq!(
                    get(&format!("child_{name}_cloexec")),
                    Some("false"),
                    "{case}: a given descriptor must pass on to what the child executes: \
                     {context}"
                );
            }
            assert_eq!(
                get("parent_closed_given"),
                Some("true"),
                "{case}: spawn must close the parent's copies of what it gave: {context}"
            );
        }
    });
}

/// The vfork path: no namespace, nothing between clone and exec.
#[test]
fn a_plain_child_gets_only_stdio_and_the_given_descriptors() {
    check_given_descriptors("plain");
}

/// PID 1 of new user and PID namespaces without maps: vfork, its parent checked in /proc.
#[test]
fn a_pid_1_child_gets_only_stdio_and_the_given_descriptors() {
    check_given_descriptors("userpid");
}

/// User, PID and mount namespaces with root mapped: the child waits while the parent
/// writes its maps, holding the pipe whose end-of-file says it has exec'd.
#[test]
fn a_child_that_waits_for_its_maps_gets_only_stdio_and_the_given_descriptors() {
    check_given_descriptors("seed");
}

/// A spawn takes what it was given: after a spawn that failed in the child
/// (ChangeDirectory), no write end of the given pipe is left anywhere; a command spawned
/// a second time passes the descriptor no more.
#[test]
fn a_spawn_takes_the_given_descriptors_even_when_it_fails() {
    as_root_and_unprivileged(PROBE, TIMEOUT, &["taken"], |label, output| {
        let context = format!("{label}: {}", describe(output));
        assert!(output.status.success(), "{context}");
        assert_eq!(
            field(output, "failed_spawn_step"),
            Some("change-directory"),
            "{context}"
        );
        assert_eq!(
            field(output, "failed_spawn_left_a_writer"),
            Some("false"),
            "{context}"
        );
        assert_eq!(
            field(output, "first_spawn_fds"),
            Some("0,1,2,5"),
            "{context}"
        );
        assert_eq!(
            field(output, "second_spawn_fds"),
            Some("0,1,2"),
            "{context}"
        );
    });
}
