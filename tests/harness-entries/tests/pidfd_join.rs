//! `Child::pidfd` and what goes through it (waiting, signalling, `wait_async`), and
//! `Command::join`: for real, as the tests' user and, where it needs no privilege, as uid
//! 65534.

use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reexec::{Command, Namespaces, Step};
use reexec_harness_entries::{assert_passes_unprivileged, describe, effective_ids};
use reexec_tests::NamespaceHolder;

#[reexec::entry("pj-exit")]
fn pj_exit() -> ExitCode {
    let code = std::env::args().nth(1).and_then(|arg| arg.parse().ok());
    ExitCode::from(code.unwrap_or(255))
}

/// Sleeps the milliseconds of its first argument, then exits with its second.
#[reexec::entry("pj-sleep")]
fn pj_sleep() -> ExitCode {
    let arg = |index: usize| std::env::args().nth(index).and_then(|arg| arg.parse().ok());
    std::thread::sleep(Duration::from_millis(arg(1).unwrap_or(0)));
    ExitCode::from(arg(2).unwrap_or(255) as u8)
}

/// Prints its namespaces and uid; sets the hostname its first argument gives, if any.
#[reexec::entry("pj-ns")]
fn pj_ns() -> Result<(), String> {
    for name in ["user", "net", "uts"] {
        let link =
            std::fs::read_link(format!("/proc/self/ns/{name}")).map_err(|e| e.to_string())?;
        println!("{name}={}", link.display());
    }
    println!("uid={}", effective_ids().0);
    if let Some(name) = std::env::args().nth(1) {
        nix::unistd::sethostname(&name).map_err(|errno| format!("sethostname: {errno}"))?;
        println!("hostname=set");
    }
    Ok(())
}

/// As PID 1 of a new PID namespace, so that it may choose the next pid
/// (/proc/sys/kernel/ns_last_pid): spawns a child, reaps it behind its `Child`'s back,
/// has another process take its pid, and reports what the `Child` then does.
#[reexec::entry("pj-pid-reuse")]
fn pj_pid_reuse() -> Result<(), String> {
    let mut first = Command::new("pj-exit")
        .arg("3")
        .spawn()
        .map_err(|error| error.to_string())?;
    if first.pidfd().is_none() {
        println!("skipped=no pidfd on this kernel");
        return Ok(());
    }
    let pid = first.id() as i32;
    // As a waitpid(-1) loop elsewhere in a program would.
    nix::sys::wait::waitpid(Pid::from_raw(pid), None).map_err(|errno| errno.to_string())?;
    std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string())
        .map_err(|error| format!("ns_last_pid: {error}"))?;
    let mut second = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .map_err(|error| error.to_string())?;
    println!("reused={}", second.id() as i32 == pid);
    let errno = |result: Result<(), reexec::Error>| {
        result
            .err()
            .and_then(|error| error.raw_os_error())
            .unwrap_or(0)
    };
    println!("kill_errno={}", errno(first.kill()));
    println!("wait_errno={}", errno(first.try_wait().map(drop)));
    let alive = second
        .try_wait()
        .map_err(|error| error.to_string())?
        .is_none();
    println!("second_alive={alive}");
    let _ = second.kill();
    let _ = second.wait();
    Ok(())
}

/// With waitid(2) failing EINVAL (as P_PIDFD does before Linux 5.4) and
/// pidfd_send_signal(2) ENOSYS (before 5.1): kills and waits for two children, by pid.
#[reexec::entry("pj-without-pidfd-calls")]
fn pj_without_pidfd_calls() -> Result<(), String> {
    use reexec_tests::faults::SeccompFilter;
    SeccompFilter::failing(&[nix::libc::SYS_waitid], nix::libc::EINVAL)
        .install()
        .map_err(|errno| format!("skipped=seccomp: {errno}"))?;
    SeccompFilter::failing(&[nix::libc::SYS_pidfd_send_signal], nix::libc::ENOSYS)
        .install()
        .map_err(|errno| format!("skipped=seccomp: {errno}"))?;
    let mut sleeper = Command::new("pj-sleep")
        .args(["60000", "0"])
        .spawn()
        .map_err(|error| error.to_string())?;
    sleeper.kill().map_err(|error| format!("kill: {error}"))?;
    let status = sleeper.wait().map_err(|error| format!("wait: {error}"))?;
    println!("killed_by={}", status.signal().unwrap_or(0));
    let mut exiting = Command::new("pj-exit")
        .arg("5")
        .spawn()
        .map_err(|error| error.to_string())?;
    let status = loop {
        match exiting
            .try_wait()
            .map_err(|error| format!("try_wait: {error}"))?
        {
            Some(status) => break status,
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    println!("code={}", status.code().unwrap_or(-1));
    Ok(())
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
}

#[test]
fn each_child_is_waited_for_through_its_own_pidfd() {
    let mut children: Vec<reexec::Child> = (0..64u8)
        .map(|code| {
            Command::new("pj-exit")
                .arg(code.to_string())
                .spawn()
                .unwrap()
        })
        .collect();
    if children.iter().any(|child| child.pidfd().is_none()) {
        println!("skipped: no pidfds on this kernel (before 5.2)");
        for child in &mut children {
            child.wait().unwrap();
        }
        return;
    }
    // Waited for in the reverse order of their starts: each wait is its own child's.
    for (code, child) in children.iter_mut().enumerate().rev() {
        assert_eq!(child.wait().unwrap().code(), Some(code as i32));
    }
}

#[test]
fn without_the_pidfd_calls_children_are_waited_for_and_killed_by_pid() {
    let output = Command::new("pj-without-pidfd-calls").output().unwrap();
    let text = stdout(&output);
    let context = describe(&output);
    if String::from_utf8_lossy(&output.stderr).contains("skipped=") {
        println!("skipped: no seccomp filter here: {context}");
        return;
    }
    assert!(output.status.success(), "{context}");
    assert_eq!(field(&text, "killed_by"), Some("9".to_owned()), "{context}");
    assert_eq!(field(&text, "code"), Some("5".to_owned()), "{context}");
}

#[test]
fn a_reused_pid_is_neither_signalled_nor_waited_for() {
    let output = Command::new("pj-pid-reuse")
        .namespaces(Namespaces::USER | Namespaces::PID)
        .map_root_to_caller()
        .output()
        .unwrap();
    let text = stdout(&output);
    let context = describe(&output);
    assert!(output.status.success(), "{context}");
    if let Some(why) = field(&text, "skipped") {
        println!("skipped: {why}");
        return;
    }
    assert_eq!(field(&text, "reused").as_deref(), Some("true"), "{context}");
    // By pid, kill would have hit the sleep, and waitpid reaped it.
    assert_eq!(field(&text, "kill_errno"), Some(libc_esrch()), "{context}");
    assert_eq!(field(&text, "wait_errno"), Some(libc_echild()), "{context}");
    assert_eq!(
        field(&text, "second_alive").as_deref(),
        Some("true"),
        "{context}"
    );
}

fn libc_esrch() -> String {
    (nix::errno::Errno::ESRCH as i32).to_string()
}

fn libc_echild() -> String {
    (nix::errno::Errno::ECHILD as i32).to_string()
}

#[test]
fn a_reused_pid_is_neither_signalled_nor_waited_for_unprivileged() {
    assert_passes_unprivileged("a_reused_pid_is_neither_signalled_nor_waited_for");
}

#[tokio::test(flavor = "current_thread")]
async fn many_children_are_waited_for_asynchronously_on_one_thread() {
    // A long child first: were its wait to block, it would hold the runtime's one thread,
    // and none of the others' waits could finish before it.
    let mut long = Command::new("pj-sleep")
        .args(["60000", "0"])
        .spawn()
        .unwrap();
    if long.pidfd().is_none() {
        println!("skipped: no pidfds on this kernel (before 5.2)");
        long.kill().unwrap();
        long.wait().unwrap();
        return;
    }
    let long_pid = Pid::from_raw(long.id() as i32);
    let long_wait = tokio::spawn(async move { long.wait_async().await });
    let mut waits = tokio::task::JoinSet::new();
    for code in 0..40u8 {
        let delay = (u32::from(code) * 7 % 100).to_string();
        let mut child = Command::new("pj-sleep")
            .args([delay, code.to_string()])
            .spawn()
            .unwrap();
        waits.spawn(async move { (code, child.wait_async().await) });
    }
    let started = Instant::now();
    let all = tokio::time::timeout(Duration::from_secs(60), waits.join_all())
        .await
        .expect("the short children's waits finished while the long one's was pending");
    for (code, status) in all {
        assert_eq!(status.unwrap().code(), Some(i32::from(code)));
    }
    assert!(!long_wait.is_finished(), "the long child ended on its own");
    println!("40 waits in {:?}", started.elapsed());
    kill(long_pid, Signal::SIGKILL).unwrap();
    let status = long_wait.await.unwrap().unwrap();
    assert_eq!(status.signal(), Some(Signal::SIGKILL as i32));
}

/// A process holding new user and network namespaces of its own (`unshare -Urn sleep`).
fn holder() -> Result<NamespaceHolder, String> {
    let mut unshare = std::process::Command::new("unshare");
    unshare.args(["-Urn", "sleep", "60"]);
    NamespaceHolder::start(unshare)
}

#[test]
fn joins_the_user_and_net_namespaces_of_another_process() {
    let holder = reexec_tests::or_skip!(holder(), "no holder of namespaces");
    // The network namespace given first: the user namespace is joined first all the same.
    let output = Command::new("pj-ns")
        .join(Namespaces::NET, holder.open("net"))
        .join(Namespaces::USER, holder.open("user"))
        .output()
        .unwrap();
    let text = stdout(&output);
    let context = describe(&output);
    assert!(output.status.success(), "{context}");
    assert_eq!(field(&text, "net"), holder.link("net"), "{context}");
    assert_eq!(field(&text, "user"), holder.link("user"), "{context}");
    // Root inside the holder's namespace, whose uid 0 is ours.
    assert_eq!(field(&text, "uid").as_deref(), Some("0"), "{context}");

    // Namespaces created besides: after the joins, owned by the joined user namespace,
    // so root there may set the new UTS namespace's hostname.
    let output = Command::new("pj-ns")
        .arg("joined-and-new")
        .join(Namespaces::USER, holder.open("user"))
        .join(Namespaces::NET, holder.open("net"))
        .namespaces(Namespaces::UTS | Namespaces::IPC)
        .output()
        .unwrap();
    let text = stdout(&output);
    let context = describe(&output);
    assert!(output.status.success(), "{context}");
    assert_eq!(
        field(&text, "hostname").as_deref(),
        Some("set"),
        "{context}"
    );
    assert_eq!(field(&text, "net"), holder.link("net"), "{context}");
    let ours = std::fs::read_link("/proc/self/ns/uts").unwrap();
    assert_ne!(
        field(&text, "uts"),
        Some(ours.display().to_string()),
        "{context}"
    );
}

#[test]
fn joins_the_user_and_net_namespaces_of_another_process_unprivileged() {
    assert_passes_unprivileged("joins_the_user_and_net_namespaces_of_another_process");
}

#[test]
fn a_network_namespace_alone_needs_capabilities_over_its_owner() {
    let holder = reexec_tests::or_skip!(holder(), "no holder of namespaces");
    let joined = Command::new("pj-ns")
        .join(Namespaces::NET, holder.open("net"))
        .output();
    if effective_ids().0 == 0 {
        // Root of the host has every capability over the holder's user namespace.
        let output = joined.unwrap();
        assert!(output.status.success(), "{}", describe(&output));
        assert_eq!(field(&stdout(&output), "net"), holder.link("net"));
    } else {
        let error = joined.unwrap_err();
        assert_eq!(error.step(), Some(Step::JoinNetNamespace), "{error}");
        assert_eq!(error.raw_os_error(), Some(nix::errno::Errno::EPERM as i32));
        assert!(error.to_string().contains("CAP_SYS_ADMIN"), "{error}");
    }
}

#[test]
fn a_network_namespace_alone_needs_capabilities_over_its_owner_unprivileged() {
    assert_passes_unprivileged("a_network_namespace_alone_needs_capabilities_over_its_owner");
}

/// Runs pj-ns joined to the `namespaces` of process `pid` through a pidfd; `None` where
/// pidfd_open is missing (before Linux 5.3).
fn joined_through_pidfd(
    pid: u32,
    namespaces: Namespaces,
) -> Option<Result<std::process::Output, reexec::Error>> {
    // SAFETY: pidfd_open(2) with numbers only.
    let pidfd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        println!("skipped: pidfd_open fails here (before Linux 5.3)");
        return None;
    }
    // SAFETY: the descriptor pidfd_open just made, owned by nothing else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    Some(Command::new("pj-ns").join(namespaces, pidfd).output())
}

/// Whether `result` is the refusal of a kernel that can't join by pidfd (before 5.8).
fn no_setns_by_pidfd(result: &Result<std::process::Output, reexec::Error>) -> bool {
    let unsupported = result.as_ref().is_err_and(|error| {
        error.raw_os_error() == Some(nix::errno::Errno::EINVAL as i32)
            && error.step() == Some(Step::JoinNamespacesOfPidfd)
    });
    if unsupported {
        println!("skipped: setns with a pidfd needs Linux 5.8");
    }
    unsupported
}

#[test]
fn joins_namespaces_through_a_pidfd() {
    let holder = reexec_tests::or_skip!(holder(), "no holder of namespaces");
    let Some(result) = joined_through_pidfd(holder.pid(), Namespaces::USER | Namespaces::NET)
    else {
        return;
    };
    if no_setns_by_pidfd(&result) {
        return;
    }
    let output = result.unwrap();
    let text = stdout(&output);
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(field(&text, "net"), holder.link("net"));
    assert_eq!(field(&text, "user"), holder.link("user"));
}

#[test]
fn a_pidfd_of_a_process_in_our_user_namespace_joins_its_other_namespaces() {
    reexec_tests::skip_unless!(effective_ids().0 == 0, "unshare --uts needs root");
    let mut unshare = std::process::Command::new("unshare");
    unshare.args(["--uts", "sleep", "60"]);
    let holder = reexec_tests::or_skip!(NamespaceHolder::start(unshare), "no holder");
    // Without the user namespace first: tells whether this kernel joins by pidfd at all.
    let Some(result) = joined_through_pidfd(holder.pid(), Namespaces::UTS) else {
        return;
    };
    if no_setns_by_pidfd(&result) {
        return;
    }
    // setns(2) would refuse the user namespace we are in (EINVAL): it is left out.
    let output = joined_through_pidfd(holder.pid(), Namespaces::USER | Namespaces::UTS)
        .unwrap()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(field(&stdout(&output), "uts"), holder.link("uts"));
}

#[test]
fn joins_that_cannot_work_are_refused_before_any_child_exists() {
    let net = || File::open("/proc/self/ns/net").unwrap();
    let refusals = [
        (
            Command::new("pj-ns")
                .namespaces(Namespaces::NET)
                .join(Namespaces::NET, net())
                .spawn(),
            "also to be created",
        ),
        (
            Command::new("pj-ns")
                .join(Namespaces::PID, File::open("/proc/self/ns/pid").unwrap())
                .spawn(),
            "later children",
        ),
        (
            Command::new("pj-ns").join(Namespaces::UTS, net()).spawn(),
            "the net namespace",
        ),
        (
            Command::new("pj-ns")
                .join(Namespaces::NET, File::open("/proc/self/stat").unwrap())
                .spawn(),
            "neither a namespace file",
        ),
        (
            Command::new("pj-ns")
                .join(Namespaces::NET, net())
                .join(Namespaces::NET, net())
                .spawn(),
            "joined twice",
        ),
        (
            // A user namespace created for the child owns no existing namespace.
            Command::new("pj-ns")
                .namespaces(Namespaces::USER)
                .map_root_to_caller()
                .join(Namespaces::NET, net())
                .spawn(),
            "join the user namespace that owns it",
        ),
    ];
    for (result, expected) in refusals {
        let error = result.unwrap_err();
        assert!(
            matches!(error, reexec::Error::InvalidInput { .. }),
            "{error}"
        );
        assert!(error.to_string().contains(expected), "{expected}: {error}");
    }
}
