//! `--seccomp`: the default profile refuses one call of each family it names and lets
//! ordinary programs run; a family comes back with its capability; `--privileged` runs
//! unconfined; a profile file is applied, and a bad one refused. As root and as uid 65534.
//!
//! Which calls a filter refuses is seen without making any of them: the probe (this very
//! test binary, run inside ns-process as the test `probe`) adds a filter of its own that
//! answers the calls it tries with `SECCOMP_RET_TRACE`. With no tracer, such a call fails
//! with ENOSYS and never runs — `reboot` included — unless ns-process's filter refuses it
//! first: an errno action outranks a trace (seccomp(2)), so a refused call fails with
//! the profile's errno instead.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::Duration;

use nix::libc;
use reexec::SeccompFilter;
use reexec_tests::faults::SeccompFilter as ProbeFilter;
use reexec_tests::{
    TempDir, TestUser, as_root_and_unprivileged, assert_exit_code, assert_refused, copy_executable,
    describe, or_skip, output_with_timeout, stdout_text, temp_dir,
};

const NS_PROCESS: &str = env!("CARGO_BIN_EXE_ns-process");
const TIMEOUT: Duration = Duration::from_secs(60);
/// The calls the probe tries, given in its environment: `NAME[:ARG0]`, comma-separated.
const CALLS: &str = "SECCOMP_PROBE_CALLS";

/// The probe, not a test of its own: does nothing unless run by the tests below, inside
/// ns-process, with [`CALLS`] set. Prints `probe:NAME[:ARG0]=RESULT` for each call, RESULT
/// `EPERM`, `ENOSYS` or another errno's number.
#[test]
fn probe() {
    let Ok(calls) = std::env::var(CALLS) else {
        return;
    };
    let calls: Vec<(&str, i64, u64)> = calls
        .split(',')
        .map(|call| {
            let (name, arg) = call.split_once(':').unwrap_or((call, "0"));
            let number = SeccompFilter::syscall_number(name).expect("a known name");
            let arg = u64::from_str_radix(arg.trim_start_matches("0x"), 16).expect("hex");
            (call, number, arg)
        })
        .collect();
    let numbers: Vec<i64> = calls.iter().map(|&(_, number, _)| number).collect();
    let trace = numbers
        .iter()
        .map(|&number| (number, None))
        .collect::<Vec<_>>();
    ProbeFilter::new(&trace, libc::SECCOMP_RET_TRACE)
        .install()
        .expect("the probe's own filter");
    for (label, number, arg) in calls {
        // SAFETY: with no tracer the call fails before it runs (SECCOMP_RET_TRACE), or
        // ns-process's filter refuses it: either way nothing reads or writes our memory.
        let result = unsafe { libc::syscall(number, arg, 0, 0, 0, 0, 0) };
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        let result = match (result, errno) {
            (-1, libc::EPERM) => "EPERM".to_owned(),
            (-1, libc::ENOSYS) => "ENOSYS".to_owned(),
            (-1, errno) => errno.to_string(),
            (value, _) => format!("ran:{value}"),
        };
        println!("probe:{label}={result}");
    }
}

/// A copy of this test binary that uid 65534 may run, made once.
fn probe_copy() -> &'static Path {
    static COPY: OnceLock<(TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = COPY.get_or_init(|| {
        let dir = temp_dir("seccomp-probe");
        let path = dir.path().join("probe");
        copy_executable(&std::env::current_exe().unwrap(), &path);
        (dir, path)
    });
    path
}

/// ns-process's arguments that run the probe with `options`, trying `calls`.
fn probe_args(options: &[&str], calls: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = options.iter().map(|&option| option.to_owned()).collect();
    args.extend(["-e".into(), format!("{CALLS}={}", calls.join(","))]);
    args.extend(["--".into(), probe_copy().display().to_string()]);
    args.extend(["--exact", "probe", "--nocapture", "--test-threads=1"].map(String::from));
    args
}

/// What each call gave, from the probe's output: `(call, result)`.
fn results(output: &Output) -> Vec<(String, String)> {
    stdout_text(output)
        .lines()
        // The first shares its line with libtest's "test probe ... ".
        .filter_map(|line| line.split_once("probe:").map(|(_, rest)| rest))
        .filter_map(|line| line.split_once('='))
        .map(|(call, result)| (call.to_owned(), result.to_owned()))
        .collect()
}

/// Runs the probe in ns-process with `options` as root and as uid 65534, and checks
/// that each of `calls` gives `expected`.
fn assert_calls(options: &[&str], calls: &[&str], expected: &str) {
    let args = probe_args(options, calls);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    as_root_and_unprivileged(NS_PROCESS, TIMEOUT, &args, |label, output| {
        assert_exit_code(label, output, 0);
        let results = results(output);
        let names: Vec<&str> = results.iter().map(|(call, _)| call.as_str()).collect();
        assert_eq!(names, calls, "{label} {options:?}: {}", describe(output));
        for (call, result) in &results {
            assert_eq!(
                result,
                expected,
                "{label} {options:?}: {call}: {}",
                describe(output)
            );
        }
    });
}

const CLONE_NEWUSER: &str = "0x10000000";

/// One call of each family the default profile refuses whatever the command keeps by
/// default, with an argument where the profile tests one.
fn refused_by_default() -> Vec<String> {
    let mut calls: Vec<String> = [
        "keyctl",
        "add_key",
        "request_key",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "open_by_handle_at",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "ptrace",
        "process_vm_readv",
        "mount",
        "umount2",
        "pivot_root",
        "fsopen",
        "fsmount",
        "move_mount",
        "open_tree",
        "mount_setattr",
        "setns",
        "reboot",
        "swapon",
        "swapoff",
        "acct",
        "settimeofday",
        "clock_settime",
        "quotactl",
        "io_uring_setup",
        "lookup_dcookie",
        "syslog",
        "mbind",
        // ADDR_NO_RANDOMIZE: turning address randomisation off.
        "personality:0x0040000",
    ]
    .map(String::from)
    .to_vec();
    calls.push(format!("unshare:{CLONE_NEWUSER}"));
    calls.push(format!("clone:{CLONE_NEWUSER}"));
    if cfg!(target_arch = "x86_64") {
        calls.extend(["iopl", "ioperm"].map(String::from));
    }
    calls
}

/// Calls the default profile lets through: ordinary ones, and those whose argument is not
/// the one refused.
const LET_THROUGH: &[&str] = &[
    "getpid",
    "uname",
    "personality:0xffffffff",
    "personality:0x0",
    // CLONE_NEWUTS: not a user namespace (the kernel wants CAP_SYS_ADMIN for it).
    "unshare:0x04000000",
    "clone:0x01200011",
    "chroot",
];

#[test]
fn the_default_profile_refuses_one_call_of_each_family() {
    let refused = refused_by_default();
    let refused: Vec<&str> = refused.iter().map(String::as_str).collect();
    assert_calls(&[], &refused, "EPERM");
    assert_calls(&["--seccomp", "default"], &refused, "EPERM");
    assert_calls(&[], LET_THROUGH, "ENOSYS");
    // The control: without a filter, every one of them reaches the probe's trace.
    assert_calls(&["--seccomp", "unconfined"], &refused, "ENOSYS");
}

#[test]
fn a_capability_given_back_gives_its_family_back() {
    assert_calls(
        &["--cap-add", "SYS_ADMIN"],
        &["mount", "fsopen", "setns", "unshare:0x10000000", "bpf"],
        "ENOSYS",
    );
    assert_calls(
        &["--cap-add", "SYS_PTRACE"],
        &["ptrace", "process_vm_readv", "userfaultfd"],
        "ENOSYS",
    );
    // Given back by no capability.
    assert_calls(
        &["--cap-add", "ALL"],
        &["keyctl", "io_uring_setup"],
        "EPERM",
    );
}

#[test]
fn privileged_runs_unconfined_unless_a_profile_is_given() {
    let seccomp_line = |options: &[&str], expected: &str| {
        let mut args = options.to_vec();
        args.extend(["--", "grep", "^Seccomp:", "/proc/self/status"]);
        as_root_and_unprivileged(NS_PROCESS, TIMEOUT, &args, |label, output| {
            assert_exit_code(label, output, 0);
            assert_eq!(
                stdout_text(output),
                format!("Seccomp:\t{expected}\n"),
                "{label} {options:?}"
            );
        });
    };
    seccomp_line(&[], "2");
    seccomp_line(&["--privileged"], "0");
    seccomp_line(&["--privileged", "--seccomp", "default"], "2");
    seccomp_line(&["--seccomp", "unconfined"], "0");
}

#[test]
fn a_profile_file_is_applied() {
    let dir = temp_dir("seccomp-profile");
    let profile = dir.path().join("profile.json");
    // EXDEV for getpid, the default for the rest.
    std::fs::write(
        &profile,
        r#"{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [
    {"names": ["getpid", "_llseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18},
    {"names": ["unshare"], "action": "SCMP_ACT_ERRNO",
     "args": [{"index": 0, "value": 268435456, "valueTwo": 268435456, "op": "SCMP_CMP_MASKED_EQ"}]}
  ]
}
"#,
    )
    .unwrap();
    let profile = profile.to_str().unwrap();
    assert_calls(
        &["--seccomp", profile],
        &["getpid"],
        &libc::EXDEV.to_string(),
    );
    assert_calls(&["--seccomp", profile], &["unshare:0x10000000"], "EPERM");
    // What the profile does not name runs, keyctl included: the default is not added.
    assert_calls(
        &["--seccomp", profile],
        &["keyctl", "unshare:0x04000000"],
        "ENOSYS",
    );
}

/// Docker's and podman's profile files carry what their engine decides per container:
/// rules for some capabilities, architectures or kernels only (`includes`, `excludes`),
/// errno names, an `archMap`. Each rule here shows by its errno whether it applied.
#[test]
fn a_docker_style_profile_is_judged_against_the_commands_capabilities_machine_and_kernel() {
    let dir = temp_dir("seccomp-docker-profile");
    let profile = dir.path().join("profile.json");
    // Every architecture ns-process builds for, as Docker's profiles name them.
    let here = r#"["amd64", "arm64"]"#;
    std::fs::write(
        &profile,
        format!(
            r#"{{
  "defaultAction": "SCMP_ACT_ALLOW", "defaultErrno": "EXDEV",
  "archMap": [{{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}},
              {{"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}}],
  "syscalls": [
    {{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errno": "EXDEV", "errnoRet": 18,
      "includes": {{"arches": {here}, "minKernel": "3.0"}}, "excludes": {{}}}},
    {{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "includes": {{"minKernel": "999.0"}}}},
    {{"names": ["gettid"], "action": "SCMP_ACT_ERRNO", "excludes": {{"arches": {here}}}}},
    {{"names": ["getuid"], "action": "SCMP_ACT_ERRNO", "excludes": {{"caps": ["CAP_SYS_ADMIN"]}}}},
    {{"names": ["getgid"], "action": "SCMP_ACT_ERRNO",
      "includes": {{"caps": ["CAP_SYS_ADMIN", "CAP_CHOWN"]}}, "args": null}},
    {{"names": ["getegid"], "action": "SCMP_ACT_ERRNO"}}
  ]
}}"#
        ),
    )
    .unwrap();
    let profile = profile.to_str().unwrap();
    let exdev = libc::EXDEV.to_string();
    // Applied: this machine, a kernel above 3.0, no SYS_ADMIN; the default errno by name.
    assert_calls(
        &["--seccomp", profile],
        &["getpid", "getuid", "getegid"],
        &exdev,
    );
    // Not applied: a kernel below 999.0, this machine excluded, SYS_ADMIN not kept.
    assert_calls(
        &["--seccomp", profile],
        &["getppid", "gettid", "getgid"],
        "ENOSYS",
    );
    // With SYS_ADMIN kept (and CHOWN, which the command keeps by default), the other way.
    let with_admin = ["--cap-add", "SYS_ADMIN", "--seccomp", profile];
    assert_calls(&with_admin, &["getgid", "getpid"], &exdev);
    assert_calls(&with_admin, &["getuid", "getppid"], "ENOSYS");
}

/// What podman itself hands its runtime for a container: its default profile file,
/// resolved for the container's capabilities. The probe, a Rust program, runs under it.
#[test]
fn podmans_own_profile_file_applies_as_podman_resolves_it() {
    let profile = "/usr/share/containers/seccomp.json";
    if !Path::new(profile).exists() {
        println!(
            "skipped: no {profile} (Debian's golang-github-containers-common, which \
             podman brings; scripts/install-test-deps installs it)"
        );
        return;
    }
    // Refused unless their capability is kept, with EPERM; allowed calls reach the trace:
    // chroot by SYS_CHROOT, which the command keeps by default, personality by its
    // argument.
    assert_calls(&["--seccomp", profile], &["acct", "bpf"], "EPERM");
    assert_calls(
        &["--seccomp", profile],
        &["getpid", "chroot", "personality:0"],
        "ENOSYS",
    );
    assert_calls(
        &[
            "--seccomp",
            profile,
            "--cap-add",
            "SYS_PACCT",
            "--cap-add",
            "SYS_ADMIN",
        ],
        &["acct", "bpf"],
        "ENOSYS",
    );
}

/// ns-process reads a profile once and hands the init the program it compiled (#14): a
/// profile that can be read only once — a pipe, as a shell's `<(…)` or `/dev/stdin` gives
/// it — binds the command. The init used to read the file again, finding the pipe empty.
#[test]
fn a_profile_read_from_a_pipe_is_read_once_and_applied() {
    let profile = r#"{"defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18}]}"#;
    let args = probe_args(&["--seccomp", "/dev/stdin"], &["getpid"]);
    for user in TestUser::all(NS_PROCESS) {
        // The pipe is the shell's, made as the user: stdin of ns-process, and its init's.
        let output = output_with_timeout(
            user.command_of("/bin/sh")
                .args(["-c", "printf '%s' \"$0\" | \"$@\"", profile])
                .arg(user.program())
                .args(&args),
            TIMEOUT,
        );
        let label = user.label();
        assert_exit_code(label, &output, 0);
        assert_eq!(
            results(&output),
            [("getpid".to_owned(), libc::EXDEV.to_string())],
            "{label}: {}",
            describe(&output)
        );
    }
}

#[test]
fn bad_profiles_are_refused_naming_the_file_and_what_is_wrong() {
    let dir = temp_dir("seccomp-bad-profiles");
    for (name, content, expected) in [
        (
            "truncated.json",
            "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n",
            "line 3",
        ),
        (
            "unknown-field.json",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "includes": {}}"#,
            "\"includes\"",
        ),
        (
            "unknown-condition.json",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"os": ["linux"]}}]}"#,
            "syscalls[0].includes has the field \"os\"",
        ),
        (
            "errnos-disagree.json",
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "defaultErrno": "EPERM"}"#,
            "defaultErrno \"EPERM\" is 1, but defaultErrnoRet is 38",
        ),
        (
            "typo.json",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["keyctll"], "action": "SCMP_ACT_ERRNO"}]}"#,
            "syscalls[0].names[0]",
        ),
        (
            "bad-action.json",
            r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#,
            "defaultAction",
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let path = path.to_str().unwrap();
        let message = format!("--seccomp {path}");
        assert_refused(
            NS_PROCESS,
            &["--seccomp", path, "--", "true"],
            125,
            &message,
        );
        assert_refused(
            NS_PROCESS,
            &["--seccomp", path, "--", "true"],
            125,
            expected,
        );
    }
    assert_refused(
        NS_PROCESS,
        &["--seccomp", "/nonexistent/profile.json", "--", "true"],
        125,
        "--seccomp /nonexistent/profile.json: No such file or directory",
    );
}

#[test]
fn ordinary_work_runs_under_the_default_profile_in_busybox() {
    let rootfs = or_skip!(
        reexec_tests::busybox_rootfs(env!("CARGO_TARGET_TMPDIR")),
        "no busybox rootfs"
    );
    let script = "grep ^Seccomp: /proc/self/status && cd /tmp && mkdir d && echo x > d/f \
                  && cat d/f | sort | wc -l && rm -r d && (sleep 0.1 & wait) \
                  && ps -o pid,comm | grep -c ps && echo done";
    let rootfs = rootfs.to_str().unwrap();
    let args = ["--rootfs", rootfs, "--", "/bin/sh", "-c", script];
    as_root_and_unprivileged(NS_PROCESS, TIMEOUT, &args, |label, output| {
        assert_exit_code(label, output, 0);
        assert_eq!(
            stdout_text(output),
            "Seccomp:\t2\n1\n1\ndone\n",
            "{label}: {}",
            describe(output)
        );
    });
}

#[test]
fn ordinary_work_runs_under_the_default_profile_in_debian() {
    let rootfs = or_skip!(
        reexec_tests::debian_rootfs(env!("CARGO_TARGET_TMPDIR")),
        "no Debian rootfs"
    );
    let python = "import json, subprocess, threading, sqlite3; \
                  t = threading.Thread(target=lambda: None); t.start(); t.join(); \
                  db = sqlite3.connect(':memory:'); \
                  print(json.dumps(db.execute('select 1 + 1').fetchone()), \
                  subprocess.run(['grep', '^Seccomp:', '/proc/self/status'], \
                  capture_output=True, text=True).stdout.split())";
    for user in TestUser::all(NS_PROCESS) {
        let run = |args: &[&str]| output_in(&user, rootfs, args);
        let output = run(&["--", "python3", "-c", python]);
        assert_exit_code(user.label(), &output, 0);
        assert_eq!(
            stdout_text(&output),
            "[2] ['Seccomp:', '2']\n",
            "{}: {}",
            user.label(),
            describe(&output)
        );
        if user.is_root() {
            // Only root may take apt's lock in a rootfs root built (see debian.rs).
            let output = run(&["--", "apt-get", "check"]);
            assert_exit_code(user.label(), &output, 0);
        }
    }
}

fn output_in(user: &TestUser, rootfs: &Path, args: &[&str]) -> Output {
    reexec_tests::output_with_timeout(
        user.command().arg("--rootfs").arg(rootfs).args(args),
        Duration::from_secs(120),
    )
}
