//! Real re-execution: each test runs a probe binary that spawns its own entries.

use std::os::unix::fs::symlink;
use std::process::{Command, Output};

use reexec_tests::{assert_exit_code, assert_fields, describe, field, fields, temp_dir};

const PROBE: &str = env!("CARGO_BIN_EXE_probe");

fn probe(args: &[&str]) -> Output {
    Command::new(PROBE)
        .args(args)
        .output()
        .expect("the probe binary runs")
}

fn child_status(args: &[&str]) -> (Option<String>, Output) {
    let output = probe(args);
    assert!(output.status.success(), "{}", describe(&output));
    (field(&output, "code").map(str::to_owned), output)
}

#[test]
fn entries_exit_with_their_status() {
    for (entry, code) in [
        ("exit-zero", "0"),
        ("exit-seven", "7"),
        ("fail-with-err", "1"),
        ("panics", "101"),
        ("never-returns", "9"),
        ("default_named", "3"),
    ] {
        let (status, output) = child_status(&["status", entry]);
        assert_eq!(
            status.as_deref(),
            Some(code),
            "entry {entry}: {}",
            describe(&output)
        );
    }
}

#[test]
fn err_and_panic_messages_reach_stderr() {
    let output = probe(&["output", "fail-with-err"]);
    assert_eq!(
        field(&output, "stderr"),
        Some(r#"Error: \"deliberate failure\"\n"#),
        "{}",
        describe(&output)
    );

    let output = probe(&["output", "panics"]);
    let stderr = field(&output, "stderr").unwrap();
    assert!(
        stderr.contains("deliberate panic in an entry"),
        "{}",
        describe(&output)
    );
}

#[test]
fn an_entry_hides_its_arguments_from_proc_and_from_itself_when_it_has_one_thread() {
    let output = probe(&["raw-output", "hide-arguments", "secret-one", "two words"]);
    assert_fields(
        "one thread",
        &output,
        &[
            ("code", "0"),
            ("args_before", "hide-arguments|secret-one|two words"),
            ("hidden", "true"),
            ("args_after", "hide-arguments"),
            ("cmdline", "hide-arguments"),
        ],
    );
    // Another thread could be reading them: they stay as they are.
    let output = probe(&["raw-output", "hide-arguments", "threaded", "secret-one"]);
    let all = "hide-arguments|threaded|secret-one";
    assert_fields(
        "two threads",
        &output,
        &[("code", "0"), ("hidden", "false"), ("args_after", all)],
    );
    // Nothing after them either, through the fork server too, whose children write
    // their arguments over its own: no padding of the server's for ps or pgrep to show.
    assert_fields("two threads", &output, &[("cmdline", all)]);
}

#[test]
fn arguments_environment_and_directory_reach_the_entry() {
    let output = Command::new(PROBE)
        .arg("env-args-cwd")
        .env("PROBE_REMOVED", "should not arrive")
        .env("PROBE_KEPT", "inherited")
        .output()
        .unwrap();
    assert_fields(
        "env-args-cwd",
        &output,
        &[("code", "0"), ("argv0", "echo-args-env"), ("cwd", "/tmp")],
    );
    assert_eq!(fields(&output, "arg"), ["two words", "ünïcode", ""]);
    let env = fields(&output, "env");
    assert!(env.contains(&"PROBE_SET=set-value"), "{env:?}");
    assert!(env.contains(&"PROBE_KEPT=inherited"), "{env:?}");
    assert!(
        !env.iter().any(|var| var.starts_with("PROBE_REMOVED=")),
        "{env:?}"
    );
    assert!(
        !env.iter().any(|var| var.starts_with("REEXEC_ENTRY=")),
        "the dispatch marker must not reach the entry: {env:?}"
    );
}

#[test]
fn env_clear_leaves_only_what_was_set() {
    let output = probe(&["env-clear"]);
    assert_fields("env-clear", &output, &[("code", "0")]);
    assert_eq!(fields(&output, "env"), ["ONLY=this"]);
}

#[test]
fn piped_stdin_stdout_and_stderr() {
    let output = probe(&["piped"]);
    assert_fields(
        "piped",
        &output,
        &[
            ("code", "0"),
            ("stdout", "through the pipe"),
            ("stderr", "stderr-of-cat"),
        ],
    );
}

#[test]
fn output_larger_than_a_pipe_does_not_deadlock() {
    let output = probe(&["large-output"]);
    assert_fields("large-output", &output, &[("stdout_len", "1048576")]);
}

#[test]
fn kill_try_wait_and_wait() {
    let output = probe(&["kill"]);
    assert!(output.status.success(), "{}", describe(&output));
    assert_fields(
        "kill",
        &output,
        &[
            ("running", "true"),
            ("signal", "9"),
            ("after_wait", "false"),
        ],
    );
}

#[test]
fn a_child_side_failure_names_its_step_and_errno() {
    let output = probe(&["missing-cwd"]);
    assert_fields(
        "missing-cwd",
        &output,
        &[("step", "change-directory"), ("errno", "2")],
    );
}

#[test]
fn invalid_input_is_refused_with_a_reason() {
    let output = probe(&["invalid"]);
    let errors = fields(&output, "error");
    let expected = [
        r#"invalid entry name "": an entry name can't be empty"#,
        r#"invalid entry name "a/b": an entry name can't contain '/'"#,
        r#"invalid argument "nul\0byte": it contains a NUL byte"#,
        r#"invalid environment variable name "KEY=WITH=EQUALS": a variable name must be non-empty and can't contain '='"#,
        r#"invalid death signal "0": signals are numbered 1 to 64"#,
        r#"invalid entry name "..": an entry name can't be '.' or '..'"#,
        r#"invalid entry name "nul\0name": it contains a NUL byte"#,
        r#"invalid environment variable "KEY=nul\0value": it contains a NUL byte"#,
        r#"invalid environment variable name "": a variable name must be non-empty"#,
        r#"invalid working directory "/tmp/nul\0dir": it contains a NUL byte"#,
        r#"invalid death signal "65": signals are numbered 1 to 64"#,
        r#"invalid descriptor number for the child (Command::fd) "0": 0, 1 and 2 are stdin, stdout and stderr: set them with Command::stdin"#,
        r#"invalid descriptor number for the child (Command::fd) "2": 0, 1 and 2 are stdin"#,
        r#"invalid descriptor number for the child (Command::fd) "-1": descriptor numbers are 0 or more"#,
        r#"invalid descriptor number for the child (Command::fd) "5": it was given twice"#,
        r#"invalid descriptor number for the child (Command::fd) "2147483647": the limit of open files (RLIMIT_NOFILE) is"#,
    ];
    assert_eq!(errors.len(), expected.len(), "{}", describe(&output));
    for (error, expected) in errors.iter().zip(expected) {
        assert!(
            error.starts_with(expected),
            "{error:?} should start with {expected:?}"
        );
    }
}

/// The parent holds a pipe without close-on-exec (and whatever the test harness left it
/// inheritable); the entry sees none of them. tests/tests/fds.rs tests given descriptors.
#[test]
fn the_entry_sees_only_stdio_not_what_the_parent_left_inheritable() {
    let output = probe(&["fds"]);
    let inheritable = field(&output, "parent_inheritable").unwrap();
    assert!(
        inheritable.split(',').count() >= 2,
        "the probe's pipe must be inheritable for the test to mean anything: {}",
        describe(&output)
    );
    assert_fields("fds", &output, &[("fds", "0,1,2")]);
}

#[test]
fn an_entry_in_another_crate_is_found() {
    let output = probe(&["output", "from-another-crate", "x"]);
    assert_fields("from-another-crate", &output, &[("code", "42")]);
    assert!(
        field(&output, "stdout")
            .unwrap()
            .contains("entry from reexec-entry-lib")
    );
}

#[test]
fn an_unknown_entry_exits_with_its_code_and_never_runs_main() {
    let dir = temp_dir("main-count");
    let count = dir.path().join("count");
    let output = Command::new(PROBE)
        .args(["output", "no-such-entry"])
        .env("PROBE_MAIN_COUNT", &count)
        .output()
        .unwrap();
    let code = reexec::EXIT_UNKNOWN_ENTRY.to_string();
    assert_fields("no-such-entry", &output, &[("code", &code)]);
    let stderr = field(&output, "stderr").unwrap();
    assert!(stderr.contains(r#"entry \"no-such-entry\""#), "{stderr}");
    assert!(
        stderr.contains("exit-seven") && stderr.contains("from-another-crate"),
        "{stderr}"
    );
    let runs = std::fs::read_to_string(&count).unwrap();
    assert_eq!(runs.lines().count(), 1, "main ran more than once:\n{runs}");
}

#[test]
fn started_normally_under_any_name_the_binary_runs_main() {
    let dir = temp_dir("names");
    let count = dir.path().join("count");
    // A name that is no entry: main runs, and its own spawns work.
    let plain = dir.path().join("no-such-entry");
    symlink(PROBE, &plain).unwrap();
    let output = Command::new(&plain)
        .args(["status", "exit-seven"])
        .env("PROBE_MAIN_COUNT", &count)
        .output()
        .unwrap();
    assert_fields("under another name", &output, &[("code", "7")]);
    assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 1);

    // An inherited marker that disagrees with argv[0] does not stop main either.
    let output = Command::new(PROBE)
        .args(["status", "exit-zero"])
        .env("REEXEC_ENTRY", "some-other-name")
        .output()
        .unwrap();
    assert_fields("an inherited marker", &output, &[("code", "0")]);

    // A registered name dispatches, as Go's reexec does for argv[0].
    let entry_named = dir.path().join("exit-seven");
    symlink(PROBE, &entry_named).unwrap();
    let status = Command::new(&entry_named).status().unwrap();
    assert_eq!(status.code(), Some(7));
}

#[test]
fn duplicate_entry_names_are_refused_before_anything_runs() {
    let output = Command::new(env!("CARGO_BIN_EXE_probe-duplicates"))
        .output()
        .unwrap();
    assert_exit_code("duplicates", &output, reexec::EXIT_DUPLICATE_ENTRY.into());
    assert!(output.stdout.is_empty(), "main ran: {}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(r#""twice""#), "{stderr}");
    assert!(
        stderr.contains("probe-duplicates.rs:3") && stderr.contains("probe-duplicates.rs:7"),
        "both definitions must be named: {stderr}"
    );
}

#[test]
fn dispatch_runs_before_the_tokio_runtime_starts() {
    let output = Command::new(env!("CARGO_BIN_EXE_probe-tokio"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let main_threads: usize = field(&output, "main_threads").unwrap().parse().unwrap();
    assert!(
        main_threads > 1,
        "the runtime should have started workers: {}",
        describe(&output)
    );
    assert_fields("tokio", &output, &[("entry_threads", "1")]);
}

#[test]
fn the_binary_replaced_on_disk_still_re_executes_itself() {
    let dir = temp_dir("replaced");
    let copy = dir.path().join("probe-copy");
    reexec_tests::copy_executable(std::path::Path::new(PROBE), &copy);
    let output = Command::new(&copy).arg("replaced").output().unwrap();
    assert_fields("replaced", &output, &[("code", "7")]);
    assert_eq!(
        field(&output, "stdout"),
        Some(""),
        "the replacement ran: {}",
        describe(&output)
    );
}

#[test]
fn a_parent_killed_with_sigkill_sends_the_death_signal() {
    // The death signal by default, one chosen, and none: then the orphan lives on.
    for (death_signal, orphan_end) in [
        (None, Some("signal:15 count=1")),
        (Some("10"), Some("signal:10 count=1")),
        (Some("off"), None),
    ] {
        let mut args = vec!["orphan-harness"];
        args.extend(death_signal);
        let output = probe(&args);
        let context = format!("death signal {death_signal:?}: {}", describe(&output));
        assert_eq!(field(&output, "orphan_end"), orphan_end, "{context}");
        let survivors = if orphan_end.is_some() { "0" } else { "1" };
        assert_eq!(field(&output, "survivors"), Some(survivors), "{context}");
    }
}

#[test]
fn a_signal_sent_before_the_execve_meets_the_default_action_not_the_parents_handler() {
    // Each way the spawner makes the child: clone3 with CLONE_CLEAR_SIGHAND where the
    // kernel has it, clone(2) and a reset of each signal where clone3 is refused (as
    // container runtimes' seccomp profiles refuse it), and whichever this machine takes.
    let filters: &[&str] = match reexec_tests::faults::clone3_clears_signal_handlers() {
        Ok(()) => &["none", "no-clone", "no-clone3"],
        Err(why) => {
            println!("skipped the spawns without clone(2): {why}");
            &["none", "no-clone3"]
        }
    };
    for user in reexec_tests::TestUser::all(PROBE) {
        for &filter in filters {
            let output = user
                .command()
                .args(["signal-window", filter])
                .output()
                .expect("the probe binary runs");
            let label = format!("{} {filter}", user.label());
            assert_fields(
                &label,
                &output,
                &[
                    // Handled by the parent: the default action, which ends the child.
                    ("SIGUSR1", "signal=10"),
                    // Ignored by std's start in the parent, back to default as across
                    // std's own spawn.
                    ("SIGPIPE", "signal=13"),
                    // Ignored by the parent: still ignored, as execve keeps it.
                    ("SIGUSR2", "code=0"),
                    ("code", "0"),
                ],
            );
        }
    }
}
