//! Namespaced re-execution, for real: as root and as uid/gid 65534.

use std::process::Command;
use std::time::Duration;

use reexec_tests::stress::assert_clean;
use reexec_tests::{
    SubordinateIdFiles, TestUser, as_root_and_unprivileged, assert_fields, describe, field, fields,
    file_denied_to_group, in_denied_group, is_root, or_skip, output_with_timeout, skip_unless,
    temp_dir,
};

const PROBE: &str = env!("CARGO_BIN_EXE_probe-ns");
const TIMEOUT: Duration = Duration::from_secs(120);

fn has_time_namespaces() -> bool {
    let present = std::path::Path::new("/proc/self/ns/time").exists();
    if !present {
        println!("skipped the time namespace: this kernel has none (/proc/self/ns/time)");
    }
    present
}

#[test]
fn every_namespace_is_new_and_ids_map_to_root() {
    let list = if has_time_namespaces() {
        "seed,cgroup,time"
    } else {
        "seed,cgroup"
    };
    let names: &[&str] = if list.ends_with("time") {
        &["user", "mnt", "uts", "ipc", "pid", "net", "cgroup", "time"]
    } else {
        &["user", "mnt", "uts", "ipc", "pid", "net", "cgroup"]
    };
    for user in TestUser::all(PROBE) {
        let label = user.label();
        let args = ["ns", list, "root", "inside-host"];
        let output = &output_with_timeout(user.command().args(args), TIMEOUT);
        let context = format!("{label}: {}", describe(output));
        for name in names {
            let inside = field(output, &format!("ns_{name}"));
            let outside = field(output, &format!("parent_ns_{name}"));
            assert!(inside.is_some() && outside.is_some(), "{name}: {context}");
            assert_ne!(
                inside, outside,
                "the {name} namespace is not new: {context}"
            );
        }
        // PID 1 of its namespace, root mapped to the caller, only loopback.
        assert_fields(
            label,
            output,
            &[
                ("code", "0"),
                ("pid", "1"),
                ("setgroups", "deny"),
                ("net_devices", "lo"),
                ("hostname", "inside-host"),
            ],
        );
        let (uid, gid) = user.ids();
        assert_eq!(fields(output, "uid"), ["0 gid=0"], "{context}");
        assert_eq!(
            fields(output, "uid_map"),
            [format!("0 {uid} 1")],
            "{context}"
        );
        assert_eq!(
            fields(output, "gid_map"),
            [format!("0 {gid} 1")],
            "{context}"
        );
        assert_eq!(
            field(output, "parent_hostname_after"),
            field(output, "parent_hostname"),
            "the hostname set inside leaked out: {context}"
        );
    }
}

#[test]
fn only_the_namespaces_asked_for_are_new() {
    as_root_and_unprivileged(
        PROBE,
        TIMEOUT,
        &["ns", "user,uts", "root"],
        |label, output| {
            let context = format!("{label}: {}", describe(output));
            for name in ["user", "uts"] {
                assert_ne!(
                    field(output, &format!("ns_{name}")),
                    field(output, &format!("parent_ns_{name}")),
                    "{context}"
                );
            }
            for name in ["mnt", "ipc", "pid", "net"] {
                assert_eq!(
                    field(output, &format!("ns_{name}")),
                    field(output, &format!("parent_ns_{name}")),
                    "{context}"
                );
            }
            assert_ne!(field(output, "pid"), Some("1"), "{context}");
        },
    );
}

#[test]
fn root_maps_several_ranges() {
    skip_unless!(is_root(), "mapping ranges of other ids needs root");
    let output = output_with_timeout(
        Command::new(PROBE).args(["ns", "user,mount", "multi"]),
        TIMEOUT,
    );
    assert_fields("root", &output, &[("code", "0")]);
    assert_eq!(
        fields(&output, "uid_map"),
        ["0 100000 1000", "1000 200000 10"],
        "{}",
        describe(&output)
    );
    assert_eq!(
        fields(&output, "gid_map"),
        ["0 100000 1000", "1000 200000 10"],
        "{}",
        describe(&output)
    );
}

#[test]
fn an_unprivileged_caller_maps_its_own_id_anywhere_but_no_other() {
    let user = or_skip!(TestUser::unprivileged(PROBE), "no unprivileged run here");
    let run = |args: &[&str]| output_with_timeout(user.command().args(args), TIMEOUT);
    let output = run(&["ns", "user", "own-uid-as-5"]);
    assert_fields(user.label(), &output, &[("code", "0")]);
    assert!(
        fields(&output, "uid")
            .iter()
            .any(|ids| ids.starts_with("5 ")),
        "{}",
        describe(&output)
    );

    let output = run(&["ns", "user", "foreign"]);
    assert_fields(
        user.label(),
        &output,
        &[("error_step", "write-uid-map"), ("error_errno", "1")],
    );
    assert!(
        field(&output, "error")
            .unwrap()
            .contains("only your own uid"),
        "{}",
        describe(&output)
    );
    assert!(
        field(&output, "code").is_none(),
        "no child may have run: {}",
        describe(&output)
    );
}

#[test]
fn without_a_user_namespace_an_unprivileged_caller_gets_a_clear_refusal() {
    let user = or_skip!(TestUser::unprivileged(PROBE), "no unprivileged run here");
    let output = output_with_timeout(user.command().args(["ns", "mount,uts", "none"]), TIMEOUT);
    assert_fields(user.label(), &output, &[("error_step", "clone")]);
    let error = field(&output, "error").unwrap();
    assert!(
        error.contains("mount, uts") && error.contains("CAP_SYS_ADMIN"),
        "{error}"
    );
}

#[test]
fn an_exec_failure_comes_back_as_an_error() {
    let e2big = (nix::errno::Errno::E2BIG as i32).to_string();
    as_root_and_unprivileged(PROBE, TIMEOUT, &["e2big"], |label, output| {
        assert_fields(
            label,
            output,
            &[("error_step", "exec"), ("error_errno", &e2big)],
        );
    });
}

#[test]
fn impossible_maps_are_refused_before_anything_starts() {
    let output = output_with_timeout(Command::new(PROBE).arg("invalid-maps"), TIMEOUT);
    let errors = fields(&output, "error");
    assert_eq!(errors.len(), 2, "{}", describe(&output));
    assert!(errors[0].contains("add Namespaces::USER"));
    assert!(errors[1].contains("overlap inside"));
}

#[test]
fn a_replaced_binary_still_starts_namespaced_children() {
    let dir = temp_dir("replaced-ns");
    let copy = dir.path().join("probe-ns-copy");
    reexec_tests::copy_executable(std::path::Path::new(PROBE), &copy);
    let output = output_with_timeout(Command::new(&copy).arg("replaced"), TIMEOUT);
    assert_fields("replaced", &output, &[("code", "0"), ("pid", "1")]);
}

#[test]
fn eight_threads_spawn_namespaced_children_while_others_allocate() {
    as_root_and_unprivileged(PROBE, TIMEOUT, &["stress", "8", "25"], |label, output| {
        assert_clean(label, output, "200");
    });
}

#[test]
fn the_death_signal_reaches_a_pid_1_child_whose_parent_was_sigkilled() {
    as_root_and_unprivileged(PROBE, TIMEOUT, &["orphan-harness"], |label, output| {
        // PID 1 ends through the handler dispatch installs: 128 + SIGTERM.
        assert_fields(label, output, &[("orphan_end", "code:143 count=1")]);
    });
}

#[test]
fn setgroups_can_stay_allowed_for_a_privileged_caller_only() {
    as_root_and_unprivileged(
        PROBE,
        TIMEOUT,
        &["ns", "user", "root-allow-setgroups"],
        |label, output| {
            if label == "root" {
                assert_fields(label, output, &[("setgroups", "allow")]);
            } else {
                assert_fields(label, output, &[("error_step", "write-gid-map")]);
                assert!(
                    field(output, "error").unwrap().contains("setgroups denied"),
                    "{label}: {}",
                    describe(output)
                );
            }
        },
    );
}

#[test]
fn disabled_user_namespaces_are_named_in_the_error() {
    if Command::new("unshare").arg("--version").output().is_err() {
        println!("skipped: unshare(1) is missing (Debian package util-linux)");
        return;
    }
    // The limit is per user namespace: set it to 0 in one of our own, never the host's.
    let script =
        format!("echo 0 > /proc/sys/user/max_user_namespaces && exec {PROBE} ns user root");
    let output = output_with_timeout(
        Command::new("unshare").args(["-Ur", "sh", "-c", &script]),
        TIMEOUT,
    );
    assert_fields("no user namespaces", &output, &[("error_step", "clone")]);
    let error = field(&output, "error").unwrap();
    assert!(error.contains("user.max_user_namespaces is 0"), "{error}");
}

#[test]
fn the_parent_setup_hook_runs_before_the_child_and_can_stop_it() {
    let dir = temp_dir("parent-setup");
    let marker = dir.path().join("hook");
    let marker = marker.to_str().unwrap();
    let output = output_with_timeout(
        Command::new(PROBE).args(["parent-setup", marker, "ok"]),
        TIMEOUT,
    );
    assert_fields(
        "a hook that works",
        &output,
        &[
            ("code", "0"),
            ("hook_ran_before_entry", "true"),
            ("entry_ran", "true"),
        ],
    );

    std::fs::remove_file(marker).unwrap();
    std::fs::remove_file(format!("{marker}.entry")).unwrap();
    let output = output_with_timeout(
        Command::new(PROBE).args(["parent-setup", marker, "fail"]),
        TIMEOUT,
    );
    // No child ran, and none was left behind.
    assert_fields(
        "a hook that fails",
        &output,
        &[
            ("error_step", "parent-setup"),
            ("entry_ran", "false"),
            ("children_left", "false"),
        ],
    );
    assert!(
        field(&output, "error")
            .unwrap()
            .contains("the hook refuses"),
        "{}",
        describe(&output)
    );
}

#[test]
fn setgroups_allowed_sheds_a_group_and_denied_does_not() {
    skip_unless!(
        is_root(),
        "giving a process a supplementary group, and allowing setgroups, need root"
    );
    // Readable by others, not by its group, owned by someone unmapped: only shedding the
    // group lets a member read it.
    let (_dir, file) = file_denied_to_group("shed-groups", "secret");
    let run = |policy: &str| {
        let file = file.to_str().unwrap();
        output_with_timeout(
            in_denied_group(PROBE).args(["shed-groups", file, policy]),
            TIMEOUT,
        )
    };
    assert_fields(
        "allowed",
        &run("allow"),
        &[("setgroups", "done"), ("read", "secret")],
    );
    assert_fields(
        "denied",
        &run("deny"),
        &[
            ("setgroups", "refused: Operation not permitted"),
            ("read", "refused: permission denied"),
        ],
    );
}

/// The probe run by uid 65534 with `lines` as its /etc/subuid and /etc/subgid (copies
/// bound over them in a mount namespace of the test's own); `env` goes before it.
fn as_nobody_with_range(lines: &str, env: &[&str], args: &[&str]) -> Option<std::process::Output> {
    if !is_root() {
        println!("skipped: binding a copy over /etc/subuid needs root");
        return None;
    }
    let files = match SubordinateIdFiles::with(lines) {
        Ok(files) => files,
        Err(reason) => {
            println!("skipped: {reason}");
            return None;
        }
    };
    let nobody = match TestUser::unprivileged(PROBE) {
        Ok(nobody) => nobody,
        Err(reason) => {
            println!("skipped: {reason}");
            return None;
        }
    };
    let mut command = files.command(&[], "env");
    command.args(env).arg(nobody.program()).args(args);
    Some(output_with_timeout(&mut command, TIMEOUT))
}

#[test]
fn the_callers_subordinate_range_is_mapped_through_the_helpers() {
    let range = "nobody:200000:70000\n";
    let Some(output) = as_nobody_with_range(range, &[], &["ns", "user", "subordinate"]) else {
        return;
    };
    // 65536 ids after root, not all 70000; setgroups allowed by newgidmap.
    assert_fields(
        "uid 65534",
        &output,
        &[("code", "0"), ("setgroups", "allow")],
    );
    assert_eq!(
        fields(&output, "uid_map"),
        ["0 65534 1", "1 200000 65536"],
        "{}",
        describe(&output)
    );
    assert_eq!(
        fields(&output, "gid_map"),
        ["0 65534 1", "1 200000 65536"],
        "{}",
        describe(&output)
    );

    // Through the helpers, only its own ids: newgidmap denies setgroups, as the kernel
    // would.
    let output = as_nobody_with_range(range, &[], &["ns", "user", "helpers-own"]).unwrap();
    assert_fields(
        "own ids",
        &output,
        &[
            ("code", "0"),
            ("setgroups", "deny"),
            ("uid_map", "0 65534 1"),
        ],
    );
}

#[test]
fn maps_that_leave_the_caller_out_make_the_child_root_inside() {
    // Root is the range's first id and 65534 itself is unmapped: without taking uid and
    // gid 0 before execve, the child would run as the overflow id, without capabilities.
    let Some(output) = as_nobody_with_range(
        "nobody:200000:65536\n",
        &[],
        &["ns", "user", "helpers-range-only"],
    ) else {
        return;
    };
    assert_fields(
        "uid 65534, root mapped to 200000",
        &output,
        &[
            ("code", "0"),
            ("uid", "0 gid=0"),
            ("uid_map", "0 200000 65536"),
            ("gid_map", "0 200000 65536"),
            ("death_signal", &nix::libc::SIGUSR2.to_string()),
        ],
    );
}

#[test]
fn no_range_a_missing_helper_and_a_refused_map_are_three_errors() {
    let Some(output) = as_nobody_with_range("", &[], &["ns", "user", "subordinate"]) else {
        return;
    };
    assert_fields(
        "no range",
        &output,
        &[("error_step", "read-subordinate-ids")],
    );
    let error = field(&output, "error").unwrap_or_default();
    for part in [
        "nobody (uid 65534) has no range in /etc/subuid",
        "usermod --add-subuids",
    ] {
        assert!(error.contains(part), "{part:?}: {}", describe(&output));
    }

    let range = "nobody:200000:65536\n";
    let output = as_nobody_with_range(
        range,
        &["PATH=/nonexistent"],
        &["ns", "user", "subordinate"],
    )
    .unwrap();
    assert_fields("no helper", &output, &[("error_step", "run-newuidmap")]);
    let error = field(&output, "error").unwrap_or_default();
    for part in [
        "newuidmap was not found in PATH (/nonexistent)",
        "apt-get install uidmap",
    ] {
        assert!(error.contains(part), "{part:?}: {}", describe(&output));
    }

    let output =
        as_nobody_with_range(range, &[], &["ns", "user", "helpers-outside-range"]).unwrap();
    assert_fields("refused", &output, &[("error_step", "run-newuidmap")]);
    let error = field(&output, "error").unwrap_or_default();
    assert!(
        error.contains("newuidmap: uid range [1-6) -> [300000-300005) not allowed"),
        "the helper's own message: {}",
        describe(&output)
    );
    // No child ran: the probe reports the error and nothing from inside.
    assert_eq!(field(&output, "code"), None, "{}", describe(&output));
}
