//! What probes print and tests read: `key=value` lines on stdout, how a process ended, the
//! step an error names; and the assertions tests make on them.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Output};

use nix::sys::wait::WaitStatus;

/// The value of the first `key=value` line of a probe's stdout.
pub fn field<'a>(output: &'a Output, key: &str) -> Option<&'a str> {
    fields(output, key).into_iter().next()
}

/// Every value of `key=value` lines of a probe's stdout, in order.
pub fn fields<'a>(output: &'a Output, key: &str) -> Vec<&'a str> {
    let stdout = std::str::from_utf8(&output.stdout).unwrap_or("");
    values(stdout, key).collect()
}

/// The values of the `key=value` lines of `text`, in order.
fn values<'a>(text: &'a str, key: &str) -> impl Iterator<Item = &'a str> {
    text.lines()
        .filter_map(move |line| line.strip_prefix(key)?.strip_prefix('='))
}

/// Stdout and stderr of a probe run, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A process's stdout as text.
pub fn stdout_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A process's stderr as text.
pub fn stderr_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// How a process ended, as probes print it: `code=N` or `signal=N`.
pub fn status_text(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("code={code}"),
        (None, Some(signal)) => format!("signal={signal}"),
        (None, None) => format!("status={status:?}"),
    }
}

/// Prints how the child ended: `code=N` or `signal=N`.
pub fn print_status(status: ExitStatus) {
    println!("{}", status_text(status));
}

/// The end `waitpid` reported, as an [`ExitStatus`] for [`status_text`]; `None` for a
/// process that has not ended (stopped, continued, still alive).
pub fn exit_status(status: WaitStatus) -> Option<ExitStatus> {
    // The encoding of wait(2): the code in the second byte, or the signal in the first
    // (0x80 added for a core dump).
    match status {
        WaitStatus::Exited(_, code) => Some(ExitStatus::from_raw((code & 0xff) << 8)),
        WaitStatus::Signaled(_, signal, core) => Some(ExitStatus::from_raw(
            signal as i32 | if core { 0x80 } else { 0 },
        )),
        _ => None,
    }
}

/// The stable name a probe prints for the step an error names (`Error::step`), which tests
/// compare: `change-directory`, `write-uid-map`…; `none` for an error of no step. A step
/// no test compares is printed with its description.
pub fn step_name(step: Option<reexec::Step>) -> String {
    use reexec::Step;
    let name = match step {
        None => "none",
        Some(Step::Clone) => "clone",
        Some(Step::WriteUidMap) => "write-uid-map",
        Some(Step::WriteGidMap) => "write-gid-map",
        Some(Step::ParentSetup) => "parent-setup",
        Some(Step::ChangeDirectory) => "change-directory",
        Some(Step::Exec) => "exec",
        Some(Step::ReadSubordinateIds) => "read-subordinate-ids",
        Some(Step::RunNewuidmap) => "run-newuidmap",
        Some(Step::RunNewgidmap) => "run-newgidmap",
        // Limits and privileges (issue #13).
        Some(Step::SetResourceLimit) => "set-resource-limit",
        Some(Step::DropBoundingCapabilities) => "drop-bounding-capabilities",
        Some(Step::SetCapabilities) => "set-capabilities",
        Some(Step::SetAmbientCapabilities) => "set-ambient-capabilities",
        Some(Step::SetNoNewPrivs) => "set-no-new-privs",
        Some(Step::InstallSeccomp) => "install-seccomp",
        Some(Step::TakeRootInside) => "take-root-inside",
        Some(Step::ManageCgroup) => "manage-cgroup",
        Some(Step::JoinCgroup) => "join-cgroup",
        Some(Step::ForkServer) => "fork-server",
        Some(other) => return format!("unnamed: {other}"),
    };
    name.to_owned()
}

/// Asserts that each key has the value given (in its first `key=value` line); the message
/// names `label` and the key, and shows the output.
pub fn assert_fields(label: &str, output: &Output, expected: &[(&str, &str)]) {
    for &(key, value) in expected {
        assert_eq!(
            field(output, key),
            Some(value),
            "{label}: {key}: {}",
            describe(output)
        );
    }
}

/// A value a probe prints that may be missing: the value, or `none`.
pub fn or_none<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "none".to_owned(), |value| value.to_string())
}

/// Asserts that the process ended with exit status `code`; the message names `label` and
/// shows its output.
pub fn assert_exit_code(label: &str, output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{label}: expected exit status {code}: {}",
        describe(output)
    );
}

/// Asserts that the process failed with exit status `code` and said each of `expected` on
/// stderr.
pub fn assert_failed_with(label: &str, output: &Output, code: i32, expected: &[&str]) {
    assert_exit_code(label, output, code);
    let stderr = stderr_text(output);
    for part in expected {
        assert!(
            stderr.contains(part),
            "{label}: expected {part:?} in: {}",
            describe(output)
        );
    }
}

/// Reads a running probe's stdout up to the whole line that sets `key`, or to its end,
/// and returns what it read. For a test that must act while the probe still runs.
pub fn read_until_field(stdout: &mut impl std::io::Read, key: &str) -> String {
    let prefix = format!("{key}=");
    let mut text = String::new();
    let mut byte = [0u8];
    while !(text.ends_with('\n') && text.lines().any(|line| line.starts_with(&prefix))) {
        if stdout.read(&mut byte).unwrap() == 0 {
            break;
        }
        text.push(byte[0] as char);
    }
    text
}

/// The pid a `key=PID` line of `text` gives; panics, showing `text`, without one.
pub fn pid_field(text: &str, key: &str) -> u32 {
    values(text, key)
        .next()
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= pid: {text}"))
}
