//! `reexec::Command::without_exec`: a child that is a copy of its caller, set up as a
//! re-executed child would be. Each test runs `probe-without-exec` in one mode; the
//! namespaced ones both as root and as uid 65534.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reexec_tests::procfs::wait_until_ended;
use reexec_tests::{
    as_root_and_unprivileged, assert_exit_code, assert_fields, describe, field,
    output_with_timeout, pid_field, read_until_field,
};

const PROBE: &str = env!("CARGO_BIN_EXE_probe-without-exec");

/// Bounds a probe run that hangs; they take milliseconds.
const TIMEOUT: Duration = Duration::from_secs(60);

fn probe(args: &[&str]) -> std::process::Output {
    output_with_timeout(Command::new(PROBE).args(args), TIMEOUT)
}

#[test]
fn the_copy_runs_the_body_with_the_commands_arguments_environment_and_directory() {
    // In the probe's environment from its start: in the strings /proc/PID/environ shows;
    // and an argument of the caller's, in those /proc/PID/cmdline shows.
    let output = output_with_timeout(
        Command::new(PROBE)
            .args(["copy", "callers-own-argument"])
            .env("WX_REMOVED", "here"),
        TIMEOUT,
    );
    let probe_pid = field(&output, "probe_pid").unwrap_or_default().to_owned();
    assert_fields(
        "copy",
        &output,
        &[
            ("code", "0"),
            // A copy: the body ran, on memory `main` wrote before the spawn.
            ("ran", "body"),
            ("set_by_main", "42"),
            ("args", "two words|ünïcode|"),
            ("env_WX_SET", "set-value"),
            ("env_WX_REMOVED", "unset"),
            // No dispatch runs in a copy, so no marker is set for one.
            ("env_REEXEC_ENTRY", "unset"),
            ("proc_environ_callers", "false"),
            ("cwd", "/tmp"),
            ("ppid", &probe_pid),
            // Named after its entry, as `ps` shows it, and with its name alone for
            // arguments, as a re-executed entry without any would have.
            ("comm", "copy-or-entry"),
            ("proc_cmdline", "copy-or-entry"),
            ("std_args", "copy-or-entry"),
        ],
    );
}

#[test]
fn the_copys_name_is_cut_to_the_room_the_callers_command_line_left() {
    use std::os::unix::process::CommandExt;
    // "p\0copy\0": seven bytes, where "copy-or-entry" and its NUL take fourteen.
    let output = output_with_timeout(Command::new(PROBE).arg0("p").arg("copy"), TIMEOUT);
    assert_fields(
        "copy with a short command line",
        &output,
        &[
            ("ran", "body"),
            ("args", "two words|ünïcode|"),
            ("comm", "copy-or-entry"),
            ("proc_cmdline", "copy-o"),
            ("std_args", "copy-o"),
        ],
    );
}

#[test]
fn the_copys_environment_is_the_commands_alone() {
    let output = probe(&["env-clear"]);
    assert_fields(
        "env-clear",
        &output,
        &[
            ("ran", "body"),
            ("env_ONLY", "this"),
            ("env_count", "1"),
            ("proc_environ_only", "true"),
        ],
    );
}

#[test]
fn a_caller_with_two_threads_re_executes_into_the_entry() {
    let output = probe(&["threads"]);
    assert_fields(
        "threads",
        &output,
        &[("code", "0"), ("ran", "entry"), ("args", "a|b")],
    );
}

#[test]
fn copies_the_caller_says_beforehand_what_the_spawn_does() {
    let output = probe(&["copies"]);
    assert_fields(
        "copies",
        &output,
        &[
            ("copies_one_thread", "true"),
            ("code", "0"),
            ("ran", "body"),
            ("copies_no_body", "false"),
            ("copies_with_capabilities", "false"),
            ("copies_two_threads", "false"),
        ],
    );
}

#[test]
fn the_bodys_exit_status_is_the_childs() {
    for code in ["0", "9", "255"] {
        let output = probe(&["exit-code", code]);
        assert_fields("exit-code", &output, &[("code", code)]);
    }
}

#[test]
fn a_body_that_panics_ends_as_a_panicking_entry_does() {
    let output = probe(&["panic"]);
    assert_fields(
        "panic",
        &output,
        &[("code", "101"), ("panic_message", "true")],
    );
}

#[test]
fn output_buffered_before_the_spawn_is_written_once_by_the_caller() {
    let output = probe(&["buffered"]);
    assert_exit_code("buffered", &output, 0);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.matches("before-the-spawn").count(),
        1,
        "{}",
        describe(&output)
    );
    assert_fields("buffered", &output, &[("child_stdout", "from-the-copy")]);
}

#[test]
fn the_copy_has_stdio_and_the_given_descriptors_and_nothing_else_of_the_callers() {
    let output = probe(&["fds"]);
    let inherited = field(&output, "inherited_fd").unwrap_or_default();
    assert!(!inherited.is_empty(), "{}", describe(&output));
    assert_fields(
        "fds",
        &output,
        &[("code", "0"), ("fds", "0,1,2,7"), ("fd7", "/dev/zero")],
    );
}

/// What a copy of the probe's mode `signals` finds of the caller's signals.
const SIGNALS_IN_A_COPY: &[(&str, &str)] = &[
    ("code", "0"),
    // Handled in the caller: the handler's code is in the copy, and must not run.
    ("usr1", "default"),
    // Ignored stays ignored, as across an execve.
    ("usr2", "ignore"),
    ("pipe", "ignore"),
    ("blocked_usr1", "false"),
];

#[test]
fn the_callers_handlers_are_reset_and_sigpipe_is_ignored_as_std_leaves_it() {
    assert_fields("signals", &probe(&["signals"]), SIGNALS_IN_A_COPY);
}

#[test]
fn the_callers_handlers_are_reset_whichever_clone_made_the_copy() {
    // clone3 with CLONE_CLEAR_SIGHAND where the kernel has it; clone(2) and a reset of
    // each signal where clone3 is refused, as container runtimes' seccomp profiles do.
    let filters: &[&str] = match reexec_tests::faults::clone3_clears_signal_handlers() {
        Ok(()) => &["no-clone", "no-clone3"],
        Err(why) => {
            println!("skipped the copy without clone(2): {why}");
            &["no-clone3"]
        }
    };
    for user in reexec_tests::TestUser::all(PROBE) {
        for &filter in filters {
            let output = user
                .command()
                .args(["signals-under", filter])
                .output()
                .expect("the probe binary runs");
            assert_fields(
                &format!("{} {filter}", user.label()),
                &output,
                SIGNALS_IN_A_COPY,
            );
        }
    }
}

#[test]
fn the_copy_runs_in_its_namespaces_as_root_mapped_to_the_caller() {
    as_root_and_unprivileged(PROBE, TIMEOUT, &["namespaces"], |label, output| {
        assert_fields(
            label,
            output,
            &[
                ("code", "0"),
                ("hostname", "in-a-copy"),
                ("uid", "0"),
                ("gid", "0"),
                ("pid", "1"),
                ("host_hostname_kept", "true"),
            ],
        );
    });
}

#[test]
fn the_parent_setup_hook_runs_for_the_copy_before_its_body() {
    as_root_and_unprivileged(PROBE, TIMEOUT, &["parent-setup"], |label, output| {
        assert_fields(label, output, &[("code", "0"), ("ran", "body")]);
        assert_eq!(
            field(output, "hook_pid"),
            field(output, "pid"),
            "{label}: the hook got the copy's pid: {}",
            describe(output)
        );
    });
}

#[test]
fn a_seccomp_filter_that_refuses_execve_fails_the_spawn_as_for_a_re_exec() {
    let output = probe(&["seccomp-refuses-exec"]);
    assert_fields(
        "seccomp",
        &output,
        &[("step", "exec"), ("ran_nothing", "true")],
    );
}

/// Starts `orphan`, waits for the copy to be running, SIGKILLs the probe: the copy must
/// end with it, by its death signal.
fn the_copy_ends_with_its_killed_caller(args: &[&str]) {
    let mut probe = Command::new(PROBE)
        .arg("orphan")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = probe.stdout.take().unwrap();
    // The probe says the copy's pid; the copy, that its body runs.
    let mut text = read_until_field(&mut stdout, "child");
    if !text.contains("ready=") {
        text += &read_until_field(&mut stdout, "ready");
    }
    assert!(text.contains("ready=body"), "the body never ran: {text}");
    let child = pid_field(&text, "child");
    probe.kill().unwrap();
    let _ = probe.wait();
    assert!(
        wait_until_ended(child, Instant::now() + Duration::from_secs(20)),
        "the copy {child} outlived its SIGKILLed caller ({args:?})"
    );
}

#[test]
fn the_copy_ends_when_its_caller_is_sigkilled() {
    the_copy_ends_with_its_killed_caller(&[]);
}

#[test]
fn the_copy_as_pid_1_ends_when_its_caller_is_sigkilled() {
    the_copy_ends_with_its_killed_caller(&["pid-namespace"]);
}

#[test]
fn a_failed_setup_names_its_step_and_leaves_no_child() {
    let output = probe(&["missing-cwd"]);
    assert_fields(
        "missing-cwd",
        &output,
        &[("step", "change-directory"), ("children_left", "none")],
    );
}
