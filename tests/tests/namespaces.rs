//! Namespaced re-execution, for real: as root and as uid/gid 65534.

use std::process::Command;
use std::time::Duration;

use reexec_tests::{
    Unprivileged, as_root_and_unprivileged, describe, field, fields, is_root, output_with_timeout,
};

const PROBE: &str = env!("CARGO_BIN_EXE_probe-ns");
const TIMEOUT: Duration = Duration::from_secs(120);

fn caller_ids(label: &str) -> (u32, u32) {
    if label == "uid 65534" {
        (65534, 65534)
    } else {
        (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    }
}

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
    as_root_and_unprivileged(
        PROBE,
        TIMEOUT,
        &["ns", list, "root", "inside-host"],
        |label, output| {
            let context = format!("{label}: {}", describe(output));
            assert_eq!(field(output, "code"), Some("0"), "{context}");
            let names: &[&str] = if list.ends_with("time") {
                &["user", "mnt", "uts", "ipc", "pid", "net", "cgroup", "time"]
            } else {
                &["user", "mnt", "uts", "ipc", "pid", "net", "cgroup"]
            };
            for name in names {
                let inside = field(output, &format!("ns_{name}"));
                let outside = field(output, &format!("parent_ns_{name}"));
                assert!(inside.is_some() && outside.is_some(), "{name}: {context}");
                assert_ne!(
                    inside, outside,
                    "the {name} namespace is not new: {context}"
                );
            }
            let (uid, gid) = caller_ids(label);
            assert_eq!(
                field(output, "pid"),
                Some("1"),
                "PID 1 of its namespace: {context}"
            );
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
            assert_eq!(field(output, "setgroups"), Some("deny"), "{context}");
            assert_eq!(
                field(output, "net_devices"),
                Some("lo"),
                "only loopback: {context}"
            );
            assert_eq!(field(output, "hostname"), Some("inside-host"), "{context}");
            assert_eq!(
                field(output, "parent_hostname_after"),
                field(output, "parent_hostname"),
                "the hostname set inside leaked out: {context}"
            );
        },
    );
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
    if !is_root() {
        println!("skipped: mapping ranges of other ids needs root");
        return;
    }
    let output = output_with_timeout(
        Command::new(PROBE).args(["ns", "user,mount", "multi"]),
        TIMEOUT,
    );
    assert_eq!(field(&output, "code"), Some("0"), "{}", describe(&output));
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
    let Ok(unprivileged) = Unprivileged::prepare(PROBE) else {
        println!("skipped: can't run unprivileged here");
        return;
    };
    let output = output_with_timeout(
        &mut unprivileged.command(PROBE, &["ns", "user", "own-uid-as-5"]),
        TIMEOUT,
    );
    assert_eq!(field(&output, "code"), Some("0"), "{}", describe(&output));
    assert!(
        fields(&output, "uid")
            .iter()
            .any(|ids| ids.starts_with("5 ")),
        "{}",
        describe(&output)
    );

    let output = output_with_timeout(
        &mut unprivileged.command(PROBE, &["ns", "user", "foreign"]),
        TIMEOUT,
    );
    assert_eq!(
        field(&output, "error_step"),
        Some("write-uid-map"),
        "{}",
        describe(&output)
    );
    assert_eq!(field(&output, "error_errno"), Some("1"));
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
    let Ok(unprivileged) = Unprivileged::prepare(PROBE) else {
        println!("skipped: can't run unprivileged here");
        return;
    };
    let output = output_with_timeout(
        &mut unprivileged.command(PROBE, &["ns", "mount,uts", "none"]),
        TIMEOUT,
    );
    assert_eq!(
        field(&output, "error_step"),
        Some("clone"),
        "{}",
        describe(&output)
    );
    let error = field(&output, "error").unwrap();
    assert!(
        error.contains("mount, uts") && error.contains("CAP_SYS_ADMIN"),
        "{error}"
    );
}

#[test]
fn an_exec_failure_comes_back_as_an_error() {
    as_root_and_unprivileged(PROBE, TIMEOUT, &["e2big"], |label, output| {
        assert_eq!(
            field(output, "error_step"),
            Some("exec"),
            "{label}: {}",
            describe(output)
        );
        assert_eq!(
            field(output, "error_errno"),
            Some(libc_e2big().as_str()),
            "{label}"
        );
    });
}

fn libc_e2big() -> String {
    (nix::errno::Errno::E2BIG as i32).to_string()
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
    let dir = reexec_tests::TempDir::new("replaced-ns");
    let copy = dir.path().join("probe-ns-copy");
    reexec_tests::copy_executable(std::path::Path::new(PROBE), &copy);
    let output = output_with_timeout(Command::new(&copy).arg("replaced"), TIMEOUT);
    assert_eq!(field(&output, "code"), Some("0"), "{}", describe(&output));
    assert_eq!(field(&output, "pid"), Some("1"), "{}", describe(&output));
}

#[test]
fn eight_threads_spawn_namespaced_children_while_others_allocate() {
    as_root_and_unprivileged(PROBE, TIMEOUT, &["stress", "8", "25"], |label, output| {
        let context = format!("{label}: {}", describe(output));
        assert_eq!(field(output, "spawns"), Some("200"), "{context}");
        assert_eq!(field(output, "wrong_statuses"), Some("0"), "{context}");
        assert_eq!(
            field(output, "fds_same"),
            Some("true"),
            "leaked descriptors: {context}"
        );
        assert_eq!(
            field(output, "children_left"),
            Some("false"),
            "zombies: {context}"
        );
    });
}

#[test]
fn the_death_signal_reaches_a_pid_1_child_whose_parent_was_sigkilled() {
    as_root_and_unprivileged(PROBE, TIMEOUT, &["orphan-harness"], |label, output| {
        // PID 1 ends through the handler dispatch installs: 128 + SIGTERM.
        assert_eq!(
            field(output, "orphan_code"),
            Some("143"),
            "{label}: {}",
            describe(output)
        );
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
                assert_eq!(
                    field(output, "setgroups"),
                    Some("allow"),
                    "{label}: {}",
                    describe(output)
                );
            } else {
                assert_eq!(
                    field(output, "error_step"),
                    Some("write-gid-map"),
                    "{label}: {}",
                    describe(output)
                );
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
    assert_eq!(
        field(&output, "error_step"),
        Some("clone"),
        "{}",
        describe(&output)
    );
    let error = field(&output, "error").unwrap();
    assert!(error.contains("user.max_user_namespaces is 0"), "{error}");
}

#[test]
fn the_parent_setup_hook_runs_before_the_child_and_can_stop_it() {
    let dir = reexec_tests::TempDir::new("parent-setup");
    let marker = dir.path().join("hook");
    let marker = marker.to_str().unwrap();
    let output = output_with_timeout(
        Command::new(PROBE).args(["parent-setup", marker, "ok"]),
        TIMEOUT,
    );
    assert_eq!(field(&output, "code"), Some("0"), "{}", describe(&output));
    assert_eq!(
        field(&output, "hook_ran_before_entry"),
        Some("true"),
        "{}",
        describe(&output)
    );
    assert_eq!(field(&output, "entry_ran"), Some("true"));

    std::fs::remove_file(marker).unwrap();
    std::fs::remove_file(format!("{marker}.entry")).unwrap();
    let output = output_with_timeout(
        Command::new(PROBE).args(["parent-setup", marker, "fail"]),
        TIMEOUT,
    );
    assert_eq!(
        field(&output, "error_step"),
        Some("parent-setup"),
        "{}",
        describe(&output)
    );
    assert!(
        field(&output, "error")
            .unwrap()
            .contains("the hook refuses"),
        "{}",
        describe(&output)
    );
    assert_eq!(
        field(&output, "entry_ran"),
        Some("false"),
        "the child ran after a failed hook"
    );
    assert_eq!(
        field(&output, "children_left"),
        Some("false"),
        "a zombie was left"
    );
}

#[test]
fn setgroups_allowed_sheds_a_group_and_denied_does_not() {
    use std::os::unix::fs::PermissionsExt;
    if !is_root() {
        println!(
            "skipped: giving a process a supplementary group, and allowing setgroups, need root"
        );
        return;
    }
    // Readable by others, not by group 4242, owned by someone unmapped: only shedding
    // the group lets a member read it.
    let dir = reexec_tests::TempDir::new("shed-groups");
    let file = dir.path().join("denied-to-group");
    std::fs::write(&file, "secret").unwrap();
    nix::unistd::chown(&file, Some(1234.into()), Some(4242.into())).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o604)).unwrap();
    let run = |policy: &str| {
        output_with_timeout(
            Command::new("setpriv").arg("--groups=4242").args([
                PROBE,
                "shed-groups",
                file.to_str().unwrap(),
                policy,
            ]),
            TIMEOUT,
        )
    };
    let allowed = run("allow");
    assert_eq!(
        field(&allowed, "setgroups"),
        Some("done"),
        "{}",
        describe(&allowed)
    );
    assert_eq!(
        field(&allowed, "read"),
        Some("secret"),
        "{}",
        describe(&allowed)
    );
    let denied = run("deny");
    assert_eq!(
        field(&denied, "setgroups"),
        Some("refused: Operation not permitted"),
        "{}",
        describe(&denied)
    );
    assert_eq!(
        field(&denied, "read"),
        Some("refused: permission denied"),
        "{}",
        describe(&denied)
    );
}
