//! `--join NS=PATH`: the command runs in namespaces that exist already, held by a process
//! the test starts (`unshare … sleep`) and kills by its pid; as root and as uid 65534.

use std::process::Command;
use std::time::Duration;

use reexec_tests::{
    NamespaceHolder, TestUser, assert_exit_code, assert_failed_with, describe, is_root, or_skip,
    output_with_timeout, skip_unless, stdout_text,
};

const NS_PROCESS: &str = env!("CARGO_BIN_EXE_ns-process");
const TIMEOUT: Duration = Duration::from_secs(60);

/// Prints the command's network and user namespaces, uid, and whether lo is up.
const REPORT: &str = "readlink /proc/self/ns/net /proc/self/ns/user; id -u; \
                      cat /sys/class/net/lo/operstate 2>/dev/null || echo no-sys";

#[test]
fn the_command_runs_in_the_joined_user_and_network_namespaces() {
    for user in TestUser::all(NS_PROCESS) {
        let label = user.label();
        let mut unshare = user.command_of("unshare");
        unshare.args(["-Urn", "sleep", "60"]);
        let holder = or_skip!(NamespaceHolder::start(unshare), "no holder of namespaces");
        let user_ns = format!("user={}", holder.path("user"));
        let net_ns = format!("net={}", holder.path("net"));
        let output = output_with_timeout(
            user.command().args([
                "--join", &net_ns, "--join", &user_ns, "--share", "pid", "--", "sh", "-c", REPORT,
            ]),
            TIMEOUT,
        );
        assert_exit_code(label, &output, 0);
        let lines: Vec<String> = stdout_text(&output).lines().map(str::to_owned).collect();
        let context = format!("{label}: {}", describe(&output));
        assert_eq!(lines.first(), holder.link("net").as_ref(), "{context}");
        assert_eq!(lines.get(1), holder.link("user").as_ref(), "{context}");
        // Root of the holder's user namespace, whose root is the caller.
        assert_eq!(lines.get(2).map(String::as_str), Some("0"), "{context}");
        // The init leaves a joined network namespace as it found it: lo stays down.
        assert_ne!(lines.get(3).map(String::as_str), Some("up"), "{context}");
    }
}

#[test]
fn as_root_the_command_joins_a_network_namespace_of_roots() {
    skip_unless!(is_root(), "unshare --net needs root");
    let mut unshare = Command::new("unshare");
    unshare.args(["--net", "sleep", "60"]);
    let holder = or_skip!(NamespaceHolder::start(unshare), "no holder of namespaces");
    let net_ns = format!("net={}", holder.path("net"));
    // Root's own user namespace is the owner: kept, it may enter.
    let output = output_with_timeout(
        Command::new(NS_PROCESS).args([
            "--share",
            "user",
            "--join",
            &net_ns,
            "--",
            "readlink",
            "/proc/self/ns/net",
        ]),
        TIMEOUT,
    );
    assert_exit_code("root", &output, 0);
    assert_eq!(
        stdout_text(&output).trim_end(),
        holder.link("net").unwrap(),
        "{}",
        describe(&output)
    );
    // From the user namespace ns-process would create, it can't: refused before it tries.
    let output = output_with_timeout(
        Command::new(NS_PROCESS).args(["--join", &net_ns, "--", "true"]),
        TIMEOUT,
    );
    assert_failed_with("root", &output, 125, &["--join user=/proc/PID/ns/user"]);
}

#[test]
fn bad_joins_exit_125_and_say_what_to_give() {
    let cases: [(&[&str], &str); 8] = [
        (&["--join", "bogus=/proc/self/ns/net"], "unknown namespace"),
        (&["--join", "pid=/proc/self/ns/pid"], "--share pid"),
        (&["--join", "net"], "write NS=PATH"),
        (
            &["--share", "user", "--join", "net=/nonexistent/ns"],
            "No such file",
        ),
        (
            &["--share", "user", "--join", "net=/proc/self/stat"],
            "not a namespace file",
        ),
        (
            &["--share", "user", "--join", "net=/proc/self/ns/uts"],
            "another kind (uts)",
        ),
        (
            &["--share", "net", "--join", "net=/proc/self/ns/net"],
            "drop one",
        ),
        (&["--join", "user=/proc/self/ns/user"], "add --share pid"),
    ];
    for user in TestUser::all(NS_PROCESS) {
        for (args, expected) in cases {
            let output =
                output_with_timeout(user.command().args(args).args(["--", "true"]), TIMEOUT);
            assert_failed_with(
                &format!("{} {args:?}", user.label()),
                &output,
                125,
                &[expected],
            );
        }
    }
}
