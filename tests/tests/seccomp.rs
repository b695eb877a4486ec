//! `Command::seccomp`: a filter compiled in the parent binds the entry from its execve on,
//! as root and as uid 65534 — who needs no privilege for it.

use std::process::Output;
use std::time::Duration;

use reexec_tests::{TestUser, assert_fields, describe, field};

const PROBE: &str = env!("CARGO_BIN_EXE_probe-seccomp");
const TIMEOUT: Duration = Duration::from_secs(30);

/// The probe run with `args` by each of [`TestUser::all`].
fn as_each_user(args: &[&str], check: impl Fn(&str, &Output)) {
    for user in TestUser::all(PROBE) {
        let output = reexec_tests::output_with_timeout(user.command().args(args), TIMEOUT);
        assert!(
            output.status.success(),
            "{}: {}",
            user.label(),
            describe(&output)
        );
        check(user.label(), &output);
    }
}

#[test]
fn a_denied_call_fails_with_the_filters_errno_in_the_entry() {
    let eperm = nix::libc::EPERM.to_string();
    let enosys = nix::libc::ENOSYS.to_string();
    as_each_user(&["unfiltered", "getppid"], |label, output| {
        assert_fields(label, output, &[("code", "0"), ("result", "ok")]);
    });
    as_each_user(&["deny", "getppid", &eperm], |label, output| {
        assert_fields(label, output, &[("code", "0"), ("result", "EPERM")]);
    });
    as_each_user(&["deny", "getpid", &enosys], |label, output| {
        assert_fields(label, output, &[("code", "0"), ("result", "ENOSYS")]);
    });
}

#[test]
fn the_kernel_takes_a_search_with_long_jumps_and_it_decides_as_written() {
    let eperm = nix::libc::EPERM.to_string();
    as_each_user(&["deny-among-many", "getppid", &eperm], |label, output| {
        assert_fields(label, output, &[("code", "0"), ("result", "EPERM")]);
        let jumps: usize = field(output, "ja").unwrap().parse().unwrap();
        assert!(
            jumps > 1,
            "{label}: no BPF_JA in the program: {}",
            describe(output)
        );
    });
}

#[test]
fn the_entry_runs_filtered_with_no_new_privs() {
    as_each_user(&["status"], |label, output| {
        // 2: SECCOMP_MODE_FILTER.
        assert_fields(
            label,
            output,
            &[("code", "0"), ("Seccomp", "2"), ("NoNewPrivs", "1")],
        );
    });
}

#[cfg(target_arch = "x86_64")]
#[test]
fn calls_of_another_architecture_take_their_own_action() {
    // Unfiltered, x32's getpid runs or is absent: never EXDEV.
    as_each_user(&["other-arch-unfiltered"], |label, output| {
        assert_eq!(
            field(output, "code"),
            Some("0"),
            "{label}: {}",
            describe(output)
        );
        assert_ne!(
            field(output, "result"),
            Some("EXDEV"),
            "{label}: {}",
            describe(output)
        );
    });
    as_each_user(&["other-arch", "errno"], |label, output| {
        assert_fields(label, output, &[("code", "0"), ("result", "EXDEV")]);
    });
    // By default the process is killed, as by SIGSYS.
    as_each_user(&["other-arch", "default"], |label, output| {
        assert_fields(label, output, &[("signal", &nix::libc::SIGSYS.to_string())]);
    });
}

#[test]
fn a_filter_that_refuses_execve_is_named_as_the_cause() {
    for mode in ["deny-exec", "deny-exec-and-exit"] {
        as_each_user(&[mode], |label, output| {
            assert_fields(label, output, &[("step", "exec"), ("errno", "EPERM")]);
            let error = field(output, "error").unwrap();
            assert!(
                error.contains("seccomp filter given with Command::seccomp"),
                "{label} {mode}: {}",
                describe(output)
            );
        });
    }
}

#[test]
fn a_filter_the_kernel_refuses_is_named_with_the_cause() {
    as_each_user(&["invalid-program"], |label, output| {
        assert_fields(
            label,
            output,
            &[("step", "install-seccomp"), ("errno", "22")],
        );
        assert!(
            field(output, "error")
                .unwrap()
                .contains("not valid classic BPF"),
            "{label}: {}",
            describe(output)
        );
    });
}
