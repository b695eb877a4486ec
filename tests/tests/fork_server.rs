//! The fork server (`reexec::ForkServer`): the suites of the plain re-exec run again with
//! every spawn of their probes going through the server, and what only the server has —
//! its life, its restart, its descriptors.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reexec_tests::procfs::{Stat, wait_until_ended};
use reexec_tests::{
    as_root_and_unprivileged, assert_fields, describe, field, pid_field, read_until_field,
};

// The suites of the plain re-exec, compiled once more into this binary. Before any test
// runs, `ASK_FOR_THE_FORK_SERVER` puts the variable in this process's environment, which
// every probe they start inherits: each probe then starts the fork server for every
// command, first thing in its `main` (`reexec_tests::fork_server`).
#[path = "cgroups.rs"]
mod cgroups_suite;
#[path = "faults.rs"]
mod faults_suite;
#[path = "fds.rs"]
mod fds_suite;
#[path = "limits.rs"]
mod limits_suite;
#[path = "namespaces.rs"]
mod namespaces_suite;
#[path = "reexec.rs"]
mod reexec_suite;
#[path = "seccomp.rs"]
mod seccomp_suite;

/// Sets the variable before `main`, hence before the test harness starts a thread.
#[used]
#[unsafe(link_section = ".init_array")]
static ASK_FOR_THE_FORK_SERVER: extern "C" fn() = ask_for_the_fork_server;

extern "C" fn ask_for_the_fork_server() {
    // SAFETY: an .init_array function runs before `main`, while the process has one
    // thread: nothing else reads or writes the environment.
    unsafe { std::env::set_var(reexec_tests::fork_server::ASK, "1") };
}

const PROBE: &str = env!("CARGO_BIN_EXE_probe");

/// Bounds a probe run that hangs; they take milliseconds.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The probe in `mode`, alone: without the suites' variable, it starts the server itself
/// where the mode says so.
fn probe(mode: &str) -> Command {
    let mut command = Command::new(PROBE);
    command.arg(mode).env_remove(reexec_tests::fork_server::ASK);
    command
}

#[test]
fn the_suites_really_go_through_the_server() {
    // Were the variable lost, every suite above would test the plain re-exec twice.
    let output = Command::new(PROBE)
        .args(["fork-server-life"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_fields("server started", &output, &[("child_ok", "true")]);
    assert_eq!(
        std::env::var(reexec_tests::fork_server::ASK).as_deref(),
        Ok("1"),
        "the suites' probes inherit the variable"
    );
}

/// Starts `fork-server-life`, reads the server's pid while the probe holds it, and ends the
/// probe with `end`; the server must then end too.
fn the_server_ends_with_the_probe(end: impl FnOnce(&mut std::process::Child)) {
    let mut probe = probe("fork-server-life")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = probe.stdout.take().unwrap();
    let text = read_until_field(&mut stdout, "server");
    let server = pid_field(&text, "server");
    assert!(text.contains("child_ok=true"), "{text}");
    assert_eq!(
        Stat::of(server).map(|stat| stat.ppid),
        Some(probe.id()),
        "the server is the probe's child"
    );
    end(&mut probe);
    let _ = probe.wait();
    assert!(
        wait_until_ended(server, Instant::now() + Duration::from_secs(20)),
        "the fork server {server} outlived its program"
    );
}

#[test]
fn the_server_ends_when_its_program_exits() {
    the_server_ends_with_the_probe(|probe| drop(probe.stdin.take()));
}

#[test]
fn the_server_ends_when_its_program_is_sigkilled() {
    the_server_ends_with_the_probe(|probe| probe.kill().unwrap());
}

#[test]
fn a_server_killed_from_outside_is_replaced_at_the_next_spawn() {
    as_root_and_unprivileged(PROBE, TIMEOUT, &["fork-server-restart"], |label, output| {
        assert_fields(
            label,
            output,
            &[
                ("first_code", "7"),
                ("first_ended", "true"),
                ("second_code", "7"),
                // Reaped by the library: neither running nor a zombie.
                ("first_server_state", "-"),
            ],
        );
        assert_ne!(
            field(output, "first_server"),
            field(output, "second_server"),
            "{label}: {}",
            describe(output)
        );
    });
}

#[test]
fn a_child_never_sees_the_servers_descriptors() {
    as_root_and_unprivileged(PROBE, TIMEOUT, &["fork-server-fds"], |label, output| {
        // The server holds its socket at least, beyond 0 to 2; the child only stdio.
        let server_fds: usize = field(output, "server_fds")
            .and_then(|count| count.parse().ok())
            .unwrap_or_else(|| panic!("{label}: {}", describe(output)));
        assert!(server_fds > 3, "{label}: {}", describe(output));
        assert_fields(label, output, &[("fds", "0,1,2")]);
    });
}

#[test]
fn a_command_left_to_the_default_starts_while_the_server_is_stopped_and_restarted() {
    // A spawn holds the server from its choice of it to the server's answer: one that
    // chose it is answered before `stop` ends it, and one after `stop` re-executes.
    let output = probe("fork-server-stop-race").output().unwrap();
    assert_fields(
        "stop race",
        &output,
        &[
            ("started_some", "true"),
            ("failed", "0"),
            ("first_failure", "none"),
        ],
    );
}

#[test]
fn asking_for_a_server_that_is_not_running_is_refused_with_what_to_do() {
    let output = probe("fork-server-not-started").output().unwrap();
    let error = field(&output, "error").unwrap_or_else(|| panic!("{}", describe(&output)));
    assert!(
        error.contains("ForkServer::start()"),
        "{}",
        describe(&output)
    );
}

#[test]
fn the_server_entry_run_by_hand_explains_itself() {
    // argv[0] names the server's entry, as a user could by hand (exec -a): no socket.
    let output = std::process::Command::new("bash")
        .args(["-c", &format!("exec -a reexec-fork-server {PROBE}")])
        .env_remove(reexec_tests::fork_server::ASK)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    reexec_tests::assert_exit_code("by hand", &output, 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("started by reexec::ForkServer::start"),
        "{}",
        describe(&output)
    );
}

#[test]
fn a_child_finds_no_earlier_spawns_environment_in_the_servers_memory() {
    as_root_and_unprivileged(PROBE, TIMEOUT, &["fork-server-wipe"], |label, output| {
        assert_fields(
            label,
            output,
            &[
                // The control: the scan sees the child's own environment.
                ("found_1", "true"),
                // The earlier child's secret was wiped from the server once served.
                ("found_0", "false"),
            ],
        );
    });
}

#[test]
fn a_child_not_root_in_its_user_namespace_has_the_capabilities_a_plain_one_has() {
    // Both none: execve drops them for a uid other than 0, and the server's child, which
    // never execs, drops them itself.
    as_root_and_unprivileged(PROBE, TIMEOUT, &["fork-server-caps"], |label, output| {
        let none = "0000000000000000";
        assert_fields(
            label,
            output,
            &[
                ("plain_effective", none),
                ("plain_permitted", none),
                ("fork_effective", none),
                ("fork_permitted", none),
            ],
        );
    });
}

#[test]
fn a_forked_copy_of_the_program_leaves_the_programs_server_alone() {
    let output = probe("fork-server-forked").output().unwrap();
    assert_fields(
        "forked",
        &output,
        &[
            ("forked_sees_server", "false"),
            ("forked_refused", "true"),
            ("forked_own_server_differs", "true"),
            ("forked_code", "7"),
            ("server_kept", "true"),
            ("code", "7"),
        ],
    );
}

#[test]
fn a_request_larger_than_a_sockets_buffer_arrives_whole() {
    // 300 KB of environment: more than the socket buffers (about 200 KiB), so the server
    // reads the body in parts while the caller is still sending.
    let output = probe("fork-server-large").output().unwrap();
    assert_fields("large", &output, &[("large_env_bytes", "300000")]);
}

#[test]
fn a_childs_buffered_output_arrives_and_the_atexit_handlers_are_a_plain_starts_only() {
    // Through a pipe, std's stdout and C's stdio both buffer. A server's child flushes
    // both, then ends without libc's exit path: its atexit handlers are the server's
    // (README, "Spawns without an exec").
    let output = probe("fork-server-buffers").output().unwrap();
    assert_fields(
        "buffers",
        &output,
        &[
            ("plain", "rust_buffered c_buffered atexit_ran"),
            ("fork", "rust_buffered c_buffered"),
        ],
    );
}

/// Kills the server at `moment` of a spawn of each kind — plain, and namespaced, where
/// the caller writes maps and lets the child go — as root and as uid 65534. The child
/// was cloned by then: the spawn is whole, as if the server had lived (the clone wrote
/// the child's pid where the caller reads it), its entry ran once, the child is reaped,
/// and the next spawn works with a new server.
fn the_server_dies_mid_spawn(moment: &str) {
    for kind in ["plain", "namespaced"] {
        let dir = reexec_tests::world_writable_dir("fork-server-dies");
        let marker = dir.path().join(format!("{moment}-{kind}"));
        let marker = marker.to_str().unwrap();
        as_root_and_unprivileged(
            PROBE,
            TIMEOUT,
            &["fork-server-dies-mid-spawn", moment, kind, marker],
            |label, output| {
                if let Some(why) = field(output, "skipped") {
                    println!("skipped ({label}, {kind}): {why}");
                    return;
                }
                let label = format!("{label}, {kind}");
                assert_fields(
                    &label,
                    output,
                    &[
                        ("spawn", "exited-0"),
                        ("entry_runs", "1"),
                        ("child_state", "-"),
                        ("next_code", "7"),
                        ("server_state", "-"),
                        ("next_server_differs", "true"),
                    ],
                );
                let _ = std::fs::remove_file(marker);
            },
        );
    }
}

#[test]
fn a_server_killed_between_its_clone_and_its_answer_leaves_a_whole_spawn() {
    the_server_dies_mid_spawn("after-the-clone");
}

#[test]
fn a_server_killed_right_after_its_answer_leaves_a_whole_spawn() {
    the_server_dies_mid_spawn("after-the-answer");
}

#[test]
fn each_child_starts_where_its_caller_is_whichever_directory_the_last_one_did() {
    // The server stays where the last request that named a directory moved it: the
    // caller names one only when its own differs, by device, inode and mount.
    let dir = reexec_tests::world_writable_dir("fork-server-cwd");
    let [a, b, c] = ["a", "b", "c"].map(|name| {
        let path = dir.path().join(name);
        std::fs::create_dir(&path).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        path.to_str().unwrap().to_owned()
    });
    as_root_and_unprivileged(
        PROBE,
        TIMEOUT,
        &["fork-server-cwd", &a, &b],
        |label, output| {
            let expected = [&a, &b, &a, &a].map(String::as_str);
            for (index, place) in expected.into_iter().enumerate() {
                assert_fields(label, output, &[(&format!("cwd_{index}"), place)]);
            }
        },
    );
    if reexec_tests::is_root() {
        // The same directory through a bind mount is another place to start from.
        let output = probe("fork-server-cwd")
            .args([&a, &b, &c])
            .output()
            .unwrap();
        let expected = [&a, &b, &a, &a, &c, &a].map(String::as_str);
        for (index, place) in expected.into_iter().enumerate() {
            assert_fields("root", &output, &[(&format!("cwd_{index}"), place)]);
        }
    }
}
