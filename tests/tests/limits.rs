//! Resource limits, capabilities and no_new_privs of a re-executed child (issue #13), for
//! real: what the exec'd entry has in /proc/self/status and /proc/self/limits, and what it
//! can still do — as root and as uid/gid 65534. Every capability test runs in user, UTS
//! and network namespaces the probe creates: the host's hostname and ports are never
//! touched.

use std::time::Duration;

use reexec_tests::procfs::LIMIT_NAMES;
use reexec_tests::{TestUser, assert_fields, describe, field, output_with_timeout};

const PROBE: &str = env!("CARGO_BIN_EXE_probe-limits");
const TIMEOUT: Duration = Duration::from_secs(60);

/// The five capability fields, all holding `bits`.
fn all_sets(bits: &'static str) -> [(&'static str, &'static str); 5] {
    ["cap_inh", "cap_prm", "cap_eff", "cap_bnd", "cap_amb"].map(|key| (key, bits))
}

#[test]
fn only_the_kept_capabilities_reach_the_exec_d_program_as_root_inside_and_as_another_uid() {
    // CAP_NET_BIND_SERVICE is bit 10.
    const NET_BIND_SERVICE: &str = "0000000000000400";
    for user in TestUser::all(PROBE) {
        for uid in ["0", "1000"] {
            let label = format!("{}, uid {uid} inside", user.label());
            let output = output_with_timeout(
                user.command().args(["caps", uid, "netbind", "nnp"]),
                TIMEOUT,
            );
            assert_fields(&label, &output, &[("code", "0"), ("uid", uid)]);
            assert_fields(&label, &output, &all_sets(NET_BIND_SERVICE));
            // The kept capability works, a dropped one is missing.
            assert_fields(
                &label,
                &output,
                &[
                    ("no_new_privs", "1"),
                    ("bind", "ok"),
                    ("sethostname", "EPERM"),
                ],
            );
        }
        // no_new_privs only when asked for.
        let output =
            output_with_timeout(user.command().args(["caps", "0", "netbind", "no"]), TIMEOUT);
        assert_fields(
            user.label(),
            &output,
            &[("code", "0"), ("no_new_privs", "0")],
        );
    }
}

#[test]
fn with_no_capabilities_every_guarded_operation_fails_and_without_the_call_all_succeed() {
    for user in TestUser::all(PROBE) {
        let label = user.label();
        let output = output_with_timeout(user.command().args(["caps", "0", "none", "no"]), TIMEOUT);
        assert_fields(label, &output, &[("code", "0"), ("uid", "0")]);
        assert_fields(label, &output, &all_sets("0000000000000000"));
        assert_fields(
            label,
            &output,
            &[("sethostname", "EPERM"), ("bind", "EACCES")],
        );
        // The same namespaces, capabilities left as they are: root inside may do both.
        let output = output_with_timeout(
            user.command().args(["caps", "0", "unchanged", "no"]),
            TIMEOUT,
        );
        assert_fields(
            label,
            &output,
            &[("code", "0"), ("sethostname", "ok"), ("bind", "ok")],
        );
        assert_ne!(
            field(&output, "cap_eff"),
            Some("0000000000000000"),
            "{label}"
        );
    }
}

#[test]
fn a_root_child_regains_its_bounding_set_at_exec_and_another_uid_keeps_only_ambient_ones() {
    for user in TestUser::all(PROBE) {
        // Permitted, effective, inheritable and ambient given up, the bounding set kept.
        let root = output_with_timeout(
            user.command().args(["caps", "0", "bounding-only", "no"]),
            TIMEOUT,
        );
        let context = format!("{}: {}", user.label(), describe(&root));
        assert_fields(user.label(), &root, &[("code", "0"), ("sethostname", "ok")]);
        assert_eq!(
            field(&root, "cap_eff"),
            field(&root, "cap_bnd"),
            "{context}"
        );
        assert_eq!(
            field(&root, "cap_prm"),
            field(&root, "cap_bnd"),
            "{context}"
        );
        assert_ne!(
            field(&root, "cap_eff"),
            Some("0000000000000000"),
            "{context}"
        );

        let other = output_with_timeout(
            user.command().args(["caps", "1000", "bounding-only", "no"]),
            TIMEOUT,
        );
        assert_fields(
            user.label(),
            &other,
            &[
                ("code", "0"),
                ("uid", "1000"),
                ("cap_eff", "0000000000000000"),
                ("cap_prm", "0000000000000000"),
                ("sethostname", "EPERM"),
            ],
        );
        // Kept in permitted and inheritable, but not ambient: gone at exec.
        let not_ambient = output_with_timeout(
            user.command()
                .args(["caps", "1000", "netbind-not-ambient", "no"]),
            TIMEOUT,
        );
        assert_fields(
            user.label(),
            &not_ambient,
            &[
                ("code", "0"),
                ("cap_eff", "0000000000000000"),
                ("cap_inh", "0000000000000400"),
                ("cap_bnd", "0000000000000400"),
                ("bind", "EACCES"),
            ],
        );
    }
}

#[test]
fn cutting_the_bounding_set_without_cap_setpcap_is_refused_naming_the_capability() {
    for user in TestUser::all(PROBE) {
        let output = output_with_timeout(user.command().args(["caps-here", "netbind"]), TIMEOUT);
        if user.is_root() {
            // Root has CAP_SETPCAP in its own namespace: the entry keeps only the one.
            assert_fields("root", &output, &[("code", "0")]);
            assert_fields("root", &output, &all_sets("0000000000000400"));
            continue;
        }
        assert_fields(
            user.label(),
            &output,
            &[
                ("error_step", "drop-bounding-capabilities"),
                ("error_errno", "1"),
                ("error_kind", "refused"),
            ],
        );
        let error = field(&output, "error").unwrap_or_default();
        assert!(
            error.contains("; CAP_CHOWN: dropping from the bounding set")
                && error.contains("needs CAP_SETPCAP"),
            "{}",
            describe(&output)
        );
    }
}

#[test]
fn every_resource_limit_reaches_the_exec_d_program() {
    for user in TestUser::all(PROBE) {
        let output = output_with_timeout(user.command().arg("rlimits"), TIMEOUT);
        let context = format!("{}: {}", user.label(), describe(&output));
        assert_fields(user.label(), &output, &[("code", "0")]);
        for name in LIMIT_NAMES {
            let wanted = field(&output, &format!("want_{name}"));
            assert!(wanted.is_some(), "{name}: {context}");
            assert_eq!(
                field(&output, &format!("limit_{name}")),
                wanted,
                "{name}: {context}"
            );
        }
        // Not the limits it would have had anyway.
        assert_ne!(
            field(&output, "limit_nofile"),
            field(&output, "parent_nofile"),
            "{context}"
        );
    }
}

#[test]
fn a_later_limit_for_the_same_resource_replaces_the_earlier_one() {
    for user in TestUser::all(PROBE) {
        let output = output_with_timeout(user.command().arg("rlimit-twice"), TIMEOUT);
        let soft = field(&output, "limit_nofile").and_then(|limit| limit.split(' ').next());
        assert_eq!(soft, Some("48"), "{}: {}", user.label(), describe(&output));
    }
}

#[test]
fn raising_a_hard_limit_from_a_user_namespace_is_refused_naming_the_limit() {
    for user in TestUser::all(PROBE) {
        let output = output_with_timeout(user.command().arg("rlimit-raise"), TIMEOUT);
        assert_fields(
            user.label(),
            &output,
            &[
                ("error_step", "set-resource-limit"),
                ("error_errno", "1"),
                ("error_kind", "refused"),
            ],
        );
        let raised = field(&output, "raised").unwrap_or("?");
        let error = field(&output, "error").unwrap_or_default();
        assert!(
            error.contains(&format!("; {raised} (RLIMIT_")) && error.contains("CAP_SYS_RESOURCE"),
            "{}: {}",
            user.label(),
            describe(&output)
        );
        assert_eq!(field(&output, "code"), None, "the entry never ran");
    }
}

#[test]
fn a_soft_limit_above_the_hard_one_is_refused_before_any_child_exists() {
    for user in TestUser::all(PROBE) {
        let output = output_with_timeout(user.command().arg("rlimit-inverted"), TIMEOUT);
        assert_fields(
            user.label(),
            &output,
            &[("error_kind", "invalid-input"), ("error_step", "none")],
        );
        let error = field(&output, "error").unwrap_or_default();
        assert!(
            error.contains("soft 10 hard 5")
                && error.contains("the soft limit is above the hard one"),
            "{}",
            describe(&output)
        );
    }
}
