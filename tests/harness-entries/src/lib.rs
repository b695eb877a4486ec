//! `#[reexec::entry]` functions defined in tests and spawned from ordinary `#[test]`s, under
//! the default libtest harness (`cargo test`) and under `cargo nextest run`.
//!
//! The entries live in this crate's unit tests (`mod tests` below) and in
//! `tests/entries.rs`. reexec's `early-dispatch` feature, enabled in `[dev-dependencies]`
//! and nothing else, runs a re-executed child's entry before libtest starts. What is
//! public here are the helpers both kinds of tests share: running the test binary itself
//! with libtest's flags, as the current user and without privilege.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use reexec_tests::{Unprivileged, output_with_timeout};
/// Status, stdout and stderr of a run, for assertion messages; an assertion on the exit
/// status that shows them.
pub use reexec_tests::{assert_exit_code, describe};

/// Set in the environment of a test binary started by [`run_test_binary`]: the tests that
/// run the binary again check it (see [`is_inner_run`]) and skip, or every run would start
/// another.
pub const INNER_RUN_ENV: &str = "REEXEC_HARNESS_ENTRIES_INNER";

/// How long a run of the test binary may take before it is killed and its test fails.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// Whether this process is a test binary started by [`run_test_binary`] or
/// [`run_test_binary_unprivileged`].
///
/// ```
/// if reexec_harness_entries::is_inner_run() {
///     println!("skipped: already inside a run of the test binary");
/// }
/// ```
pub fn is_inner_run() -> bool {
    std::env::var_os(INNER_RUN_ENV).is_some()
}

/// Runs the running test binary again with `args` (libtest's flags and filters), marked as
/// an inner run, and returns its output; kills it after [`TIMEOUT`].
///
/// ```no_run
/// let output = reexec_harness_entries::run_test_binary(&["--exact", "tests::one"]);
/// assert!(output.status.success());
/// ```
pub fn run_test_binary(args: &[&str]) -> Output {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let mut command = Command::new(exe);
    command
        .args(args)
        .env(INNER_RUN_ENV, "1")
        .stdin(Stdio::null());
    output_with_timeout(&mut command, TIMEOUT)
}

/// Runs the running test binary again with `args` (see [`run_test_binary`]) and checks
/// that it passed under one harness, its own: a child that started another would show a
/// second `running N tests` line. Returns the output.
///
/// ```no_run
/// let output = reexec_harness_entries::assert_passes_under_one_harness(&["--exact", "tests::one"]);
/// assert!(String::from_utf8_lossy(&output.stdout).contains("1 passed"));
/// ```
pub fn assert_passes_under_one_harness(args: &[&str]) -> Output {
    let output = run_test_binary(args);
    let context = format!("{args:?}: {}", describe(&output));
    assert!(output.status.success(), "{context}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let running = stdout
        .lines()
        .filter(|line| line.starts_with("running "))
        .count();
    assert_eq!(running, 1, "one harness, the parent's: {context}");
    assert!(stdout.contains("test result: ok."), "{context}");
    output
}

/// Runs the running test binary again with `args` as uid and gid 65534, through
/// `setpriv(1)`, marked as an inner run; or says why it can't, for the test to print.
///
/// ```no_run
/// match reexec_harness_entries::run_test_binary_unprivileged(&["--exact", "tests::one"]) {
///     Ok(output) => assert!(output.status.success()),
///     Err(reason) => println!("skipped: {reason}"),
/// }
/// ```
pub fn run_test_binary_unprivileged(args: &[&str]) -> Result<Output, String> {
    let exe = std::env::current_exe().map_err(|error| error.to_string())?;
    let exe = exe.to_str().ok_or("the test binary's path is not UTF-8")?;
    match Unprivileged::prepare(exe)? {
        Unprivileged::AlreadyUnprivileged => Err(format!(
            "the tests run as uid {} already, unprivileged: the ordinary run covers it",
            effective_ids().0
        )),
        unprivileged => {
            let mut command = unprivileged.command(exe, args);
            command.env(INNER_RUN_ENV, "1").stdin(Stdio::null());
            Ok(output_with_timeout(&mut command, TIMEOUT))
        }
    }
}

/// The lines of `text` that libtest writes: `running N tests`, `test NAME ... ok`,
/// `test result: …`. A re-executed child that printed any has run the harness.
///
/// ```
/// let text = "hello\nrunning 2 tests\ntest a ... ok\n\ntest result: ok. 2 passed\n";
/// assert_eq!(
///     reexec_harness_entries::harness_lines(text),
///     ["running 2 tests", "test a ... ok", "test result: ok. 2 passed"]
/// );
/// ```
pub fn harness_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|line| {
            let running = line.starts_with("running ")
                && (line.ends_with(" test") || line.ends_with(" tests"));
            let result = line.starts_with("test result:");
            let one_test = line.starts_with("test ") && line.contains(" ... ");
            running || result || one_test
        })
        .collect()
}

/// Runs one test of the running test binary again, as uid and gid 65534 (see
/// [`run_test_binary_unprivileged`]), and checks that it passed. Prints why where it can't
/// run, and does nothing in an inner run.
///
/// ```no_run
/// reexec_harness_entries::assert_passes_unprivileged("tests::one");
/// ```
pub fn assert_passes_unprivileged(test: &str) {
    reexec_tests::skip_unless!(!is_inner_run(), "this is the inner run");
    match run_test_binary_unprivileged(&["--exact", test]) {
        Ok(output) => {
            assert!(output.status.success(), "uid 65534: {}", describe(&output));
            assert!(
                String::from_utf8_lossy(&output.stdout).contains("test result: ok. 1 passed"),
                "uid 65534: {}",
                describe(&output)
            );
        }
        Err(reason) => println!("skipped the unprivileged run: {reason}"),
    }
}

/// This process's effective uid and gid, read from `/proc/self/status` (so that the
/// tests need no crate beyond reexec).
///
/// ```
/// let (uid, gid) = reexec_harness_entries::effective_ids();
/// println!("running as {uid}:{gid}");
/// ```
pub fn effective_ids() -> (u32, u32) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc is mounted");
    let effective = |key: &str| -> u32 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("no {key} line in /proc/self/status"))
    };
    (effective("Uid:"), effective("Gid:"))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::process::ExitCode;

    use super::*;

    // ---- the entries: each runs in a child re-executed from a #[test] below ----

    /// Prints its whole argv, `|`-separated, argv[0] included: what `std::env::args`
    /// returns this early is part of what is tested.
    #[reexec::entry("unit-echo")]
    fn unit_echo() {
        let args: Vec<String> = std::env::args().collect();
        println!("{}", args.join("|"));
    }

    #[reexec::entry("unit-status")]
    fn unit_status() -> ExitCode {
        let code = std::env::args().nth(1).and_then(|arg| arg.parse().ok());
        ExitCode::from(code.unwrap_or(255))
    }

    #[reexec::entry("unit-fail")]
    fn unit_fail() -> Result<(), String> {
        Err("unit failure".to_owned())
    }

    #[reexec::entry("unit-panic")]
    fn unit_panic() {
        panic!("unit panic on purpose");
    }

    #[reexec::entry("unit-env")]
    fn unit_env() {
        println!("marker={:?}", std::env::var_os("REEXEC_ENTRY"));
        println!("given={:?}", std::env::var_os("UNIT_GIVEN"));
    }

    /// `unit-nest N` starts `unit-nest N-1`, …, and `unit-nest 0` starts `unit-echo`:
    /// children spawning children, each before its own harness would have started.
    #[reexec::entry("unit-nest")]
    fn unit_nest() -> Result<(), reexec::Error> {
        let depth: u32 = std::env::args()
            .nth(1)
            .and_then(|arg| arg.parse().ok())
            .unwrap_or(0);
        let inner = if depth == 0 {
            reexec::Command::new("unit-echo")
                .arg("innermost")
                .output()?
        } else {
            reexec::Command::new("unit-nest")
                .arg((depth - 1).to_string())
                .output()?
        };
        print!("{depth}:{}", String::from_utf8_lossy(&inner.stdout));
        std::io::stderr().write_all(&inner.stderr).unwrap();
        Ok(())
    }

    /// Prints what a namespaced child must see: its ids, its pid and its uid map.
    #[reexec::entry("unit-ns")]
    fn unit_ns() {
        let (uid, gid) = effective_ids();
        let map = std::fs::read_to_string("/proc/self/uid_map").unwrap();
        let map: Vec<&str> = map.split_whitespace().collect();
        println!("uid={uid} gid={gid} pid={}", std::process::id());
        println!("uid_map={}", map.join(" "));
    }

    thread_local! {
        static PER_THREAD: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }

    /// Threads and thread-locals inside an entry that runs before `main`.
    #[reexec::entry("unit-threads")]
    fn unit_threads() {
        let workers: Vec<_> = (1..=4u64)
            .map(|n| {
                std::thread::spawn(move || {
                    for _ in 0..n {
                        PER_THREAD.with(|count| count.set(count.get() + 10));
                    }
                    PER_THREAD.with(std::cell::Cell::get)
                })
            })
            .collect();
        let sum: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
        PER_THREAD.with(|count| count.set(1));
        println!("sum={sum} own={}", PER_THREAD.with(std::cell::Cell::get));
    }

    /// Writes until its stdout, a pipe whose reader is gone, refuses.
    #[reexec::entry("unit-broken-pipe")]
    fn unit_broken_pipe() -> ExitCode {
        let chunk = [b'x'; 4096];
        let mut stdout = std::io::stdout().lock();
        for _ in 0..10_000 {
            if let Err(error) = stdout.write_all(&chunk).and_then(|()| stdout.flush()) {
                eprintln!("write failed: {:?}", error.kind());
                return ExitCode::from(3);
            }
        }
        ExitCode::from(4)
    }

    /// Prints one line to the stdout it inherits from the test binary.
    #[reexec::entry("unit-inherit")]
    fn unit_inherit() {
        println!("unit-inherit was here");
    }

    // ---- the tests ----

    fn stdout(output: &Output) -> &str {
        std::str::from_utf8(&output.stdout).unwrap()
    }

    fn stderr(output: &Output) -> &str {
        std::str::from_utf8(&output.stderr).unwrap()
    }

    #[test]
    fn an_entry_gets_exactly_its_arguments_even_ones_that_look_like_libtest_flags() {
        // Had the child started libtest, `--help` or `--list` would have printed a usage
        // or a test list, and the unknown flag would have been refused.
        let args = [
            "--exact",
            "--test-threads=1",
            "--nocapture",
            "--include-ignored",
            "--list",
            "--help",
            "--a-flag-libtest-may-add-one-day",
            "tests::",
            "",
            "ünïcode, two words",
        ];
        let output = reexec::Command::new("unit-echo")
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", describe(&output));
        assert_eq!(stdout(&output), format!("unit-echo|{}\n", args.join("|")));
        assert_eq!(stderr(&output), "");
    }

    #[test]
    fn an_entry_without_arguments_prints_only_its_own_line() {
        let output = reexec::Command::new("unit-echo").output().unwrap();
        assert!(output.status.success(), "{}", describe(&output));
        assert_eq!(stdout(&output), "unit-echo\n");
        assert!(harness_lines(stdout(&output)).is_empty());
        assert_eq!(stderr(&output), "");
    }

    #[test]
    fn the_exit_status_of_an_entry_reaches_the_test() {
        for code in [0, 7, 42, 200] {
            let status = reexec::Command::new("unit-status")
                .arg(code.to_string())
                .stdout(reexec::Stdio::null())
                .status()
                .unwrap();
            assert_eq!(status.code(), Some(code), "entry asked for {code}");
        }
    }

    #[test]
    fn an_err_is_printed_and_exits_1_as_from_main() {
        let output = reexec::Command::new("unit-fail").output().unwrap();
        assert_exit_code("unit-fail", &output, 1);
        assert_eq!(stdout(&output), "");
        assert_eq!(stderr(&output), "Error: \"unit failure\"\n");
    }

    #[test]
    fn a_panic_is_printed_and_exits_101() {
        let output = reexec::Command::new("unit-panic").output().unwrap();
        assert_exit_code("unit-panic", &output, reexec::EXIT_PANIC.into());
        assert_eq!(stdout(&output), "");
        assert!(
            stderr(&output).contains("unit panic on purpose"),
            "{}",
            describe(&output)
        );
    }

    #[test]
    fn the_environment_arrives_and_the_marker_does_not() {
        let output = reexec::Command::new("unit-env")
            .env("UNIT_GIVEN", "yes")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", describe(&output));
        assert_eq!(stdout(&output), "marker=None\ngiven=Some(\"yes\")\n");
    }

    #[test]
    fn an_entry_spawns_entries_that_spawn_entries() {
        let output = reexec::Command::new("unit-nest").arg("3").output().unwrap();
        assert!(output.status.success(), "{}", describe(&output));
        assert_eq!(stdout(&output), "3:2:1:0:unit-echo|innermost\n");
        assert_eq!(stderr(&output), "");
    }

    #[test]
    fn a_name_the_binary_lacks_exits_121_instead_of_running_the_tests() {
        let output = reexec::Command::new("unit-no-such-entry").output().unwrap();
        assert_exit_code(
            "unit-no-such-entry",
            &output,
            reexec::EXIT_UNKNOWN_ENTRY.into(),
        );
        assert_eq!(stdout(&output), "", "the harness ran in the child");
        let stderr = stderr(&output);
        assert!(
            stderr.contains("\"unit-no-such-entry\"") && stderr.contains("unit-echo"),
            "the message names the missing entry and those there are: {stderr}"
        );
    }

    #[test]
    fn many_children_at_once_from_many_threads() {
        let threads: Vec<_> = (0..8)
            .map(|thread| {
                std::thread::spawn(move || {
                    for round in 0..4 {
                        let word = format!("t{thread}r{round}");
                        let output = reexec::Command::new("unit-echo")
                            .arg(&word)
                            .output()
                            .unwrap();
                        assert!(output.status.success(), "{}", describe(&output));
                        assert_eq!(stdout(&output), format!("unit-echo|{word}\n"));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
    }

    #[test]
    fn threads_and_thread_locals_work_in_an_entry() {
        let output = reexec::Command::new("unit-threads").output().unwrap();
        assert!(output.status.success(), "{}", describe(&output));
        assert_eq!(stdout(&output), "sum=100 own=1\n");
    }

    #[test]
    fn a_broken_pipe_is_an_error_as_under_main_not_a_sigpipe() {
        let mut child = reexec::Command::new("unit-broken-pipe")
            .stdout(reexec::Stdio::piped())
            .stderr(reexec::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(
            status.code(),
            Some(3),
            "{status:?}; stderr: {stderr} (signal 13 would be SIGPIPE)"
        );
        assert_eq!(stderr, "write failed: BrokenPipe\n");
    }

    #[test]
    fn an_entry_in_new_user_and_pid_namespaces_is_root_and_pid_1() {
        let (uid, gid) = effective_ids();
        let output = reexec::Command::new("unit-ns")
            .namespaces(reexec::Namespaces::USER | reexec::Namespaces::PID)
            .map_root_to_caller()
            .output()
            .unwrap_or_else(|error| panic!("as uid {uid}: {error}"));
        assert!(output.status.success(), "{}", describe(&output));
        assert_eq!(
            stdout(&output),
            format!("uid=0 gid=0 pid=1\nuid_map=0 {uid} 1\n"),
            "as uid {uid} gid {gid}"
        );
    }

    /// Run only by `libtest_flags_never_reach_a_child`, with `--include-ignored`: its
    /// child writes to the test binary's own stdout, where a harness would show.
    #[test]
    #[ignore = "writes to the test binary's stdout; run by libtest_flags_never_reach_a_child"]
    fn a_child_on_the_test_binarys_stdout() {
        let status = reexec::Command::new("unit-inherit").status().unwrap();
        assert!(status.success());
    }

    #[test]
    fn libtest_flags_never_reach_a_child() {
        reexec_tests::skip_unless!(!is_inner_run(), "this is the inner run");
        let runs: [&[&str]; 4] = [
            &[
                "--exact",
                "tests::a_child_on_the_test_binarys_stdout",
                "--include-ignored",
                "--test-threads=2",
                "--nocapture",
            ],
            &["entry", "--test-threads=2", "--skip", "unprivileged"],
            &["--nocapture", "--color", "never", "--skip", "unprivileged"],
            &[
                "--test-threads=1",
                "--exact",
                "tests::an_entry_spawns_entries_that_spawn_entries",
                "--show-output",
            ],
        ];
        let outputs = runs.map(assert_passes_under_one_harness);

        // The child wrote straight to the inner binary's stdout: its line is there once,
        // and nothing a second harness would have printed.
        let output = &outputs[0];
        let stdout = stdout(output);
        assert_eq!(
            stdout.matches("unit-inherit was here\n").count(),
            1,
            "{}",
            describe(output)
        );
        let lines = harness_lines(stdout);
        assert_eq!(lines.len(), 3, "{}", describe(output));
        assert_eq!(lines[0], "running 1 test");
        assert_eq!(
            lines[1],
            "test tests::a_child_on_the_test_binarys_stdout ... ok"
        );
        assert!(lines[2].starts_with("test result: ok. 1 passed;"));
    }

    #[test]
    fn namespaced_entries_work_unprivileged_too() {
        assert_passes_unprivileged(
            "tests::an_entry_in_new_user_and_pid_namespaces_is_root_and_pid_1",
        );
    }
}
