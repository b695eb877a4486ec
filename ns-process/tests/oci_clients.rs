//! Real clients of an OCI runtime — podman (with conmon) and containerd (with `ctr` and the
//! runc v2 shim) — running containers with the runtime under test (issue 16), each
//! isolated from the host's own ([`Podman`], [`Containerd`]).
//!
//! The runtime under test is `NS_RUNTIME_UNDER_TEST` when set (`$(which runc)` proves the
//! harness and the tests against runc), or else the `ns-runtime` binary built next to
//! `ns-process`; while neither exists, each test prints why it skipped. Root only:
//! rootless podman and containerd are not covered.

use std::path::PathBuf;
use std::time::Duration;

use reexec_tests::{
    BUSYBOX_IMAGE, Containerd, Podman, TmuxServer, assert_exit_code, describe, is_root, or_skip,
    stderr_text, stdout_text,
};

/// The OCI runtime these tests run containers with; `Err` says why there is none.
fn runtime_under_test() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("NS_RUNTIME_UNDER_TEST") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "NS_RUNTIME_UNDER_TEST={} is not a file",
                path.display()
            ))
        };
    }
    // `env!("CARGO_BIN_EXE_ns-runtime")` would not compile while the binary does not
    // exist: its path is found beside ns-process's instead, at run time.
    let path = PathBuf::from(env!("CARGO_BIN_EXE_ns-process")).with_file_name("ns-runtime");
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} is not built; NS_RUNTIME_UNDER_TEST=$(which runc) runs these tests against runc",
            path.display()
        ))
    }
}

/// A [`Podman`] with the runtime under test, or the reason there is none.
fn podman() -> Result<Podman, String> {
    if !is_root() {
        return Err("podman is tested as root only (rootless podman is not covered)".into());
    }
    Podman::new(&runtime_under_test()?, env!("CARGO_TARGET_TMPDIR"))
}

/// A [`Containerd`] with the runtime under test, or the reason there is none.
fn containerd() -> Result<Containerd, String> {
    if !is_root() {
        return Err("containerd is tested as root only".into());
    }
    Containerd::new(&runtime_under_test()?, env!("CARGO_TARGET_TMPDIR"))
}

#[test]
fn podman_run_rm_gives_the_exit_code_and_removes_the_cgroup() {
    let podman = or_skip!(podman(), "podman");
    let hello = podman.run(&[], &["echo", "hello from the container"]);
    assert_exit_code("podman run --rm echo", &hello, 0);
    assert_eq!(stdout_text(&hello), "hello from the container\n");
    let seven = podman.run(&[], &["sh", "-c", "exit 7"]);
    assert_exit_code("podman run --rm sh -c 'exit 7'", &seven, 7);
    // The runtime removes the container's cgroup (libpod-ID) on delete; only podman's
    // own `conmon` cgroup stays beside where it was.
    let left: Vec<PathBuf> = podman
        .cgroup_parent()
        .cgroups_below()
        .into_iter()
        .filter(|dir| !dir.ends_with("conmon"))
        .collect();
    assert!(left.is_empty(), "cgroups left after run --rm: {left:?}");
}

#[test]
fn podman_kill_then_wait_gives_137() {
    let podman = or_skip!(podman(), "podman");
    let mut args = vec!["run".to_owned(), "--detach".to_owned()];
    args.extend(podman.run_args());
    args.extend([BUSYBOX_IMAGE.to_owned(), "sleep".into(), "1000".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let id = podman.podman_ok(&args);
    // SIGKILL from outside: from inside, PID 1 of the container would ignore it.
    podman.podman_ok(&["kill", &id]);
    assert_eq!(podman.podman_ok(&["wait", &id]), "137");
    podman.podman_ok(&["rm", &id]);
}

#[test]
fn podman_detached_container_lists_executes_stops_and_is_removed() {
    let podman = or_skip!(podman(), "podman");
    let mut args = vec!["run", "--detach", "--name", "detached"];
    let run_args = podman.run_args();
    args.extend(run_args.iter().map(String::as_str));
    args.extend([BUSYBOX_IMAGE, "sleep", "1000"]);
    let id = podman.podman_ok(&args);
    let listed = podman.podman_ok(&["ps", "--format", "{{.ID}} {{.Names}} {{.Status}}"]);
    assert!(
        listed.starts_with(&format!("{} detached Up", &id[..12])),
        "podman ps: {listed}"
    );
    // exec: in the container's namespaces, beside its command (PID 1 under runc; under
    // ns-runtime PID 2, its init being PID 1).
    let commands = podman.podman_ok(&["exec", &id, "sh", "-c", "cat /proc/[0-9]*/cmdline"]);
    assert!(
        commands.contains("sleep\u{0}1000\u{0}"),
        "the container's processes: {commands:?}"
    );
    let three = podman.podman(&["exec", &id, "sh", "-c", "exit 3"]);
    assert_exit_code("podman exec sh -c 'exit 3'", &three, 3);
    // `sleep` as runc's PID 1 ignores SIGTERM, and after a second podman stop sends
    // SIGKILL (137); ns-runtime's init forwards the SIGTERM to it, which ends it (143).
    podman.podman_ok(&["stop", "--time", "1", &id]);
    let stopped = podman.podman_ok(&["ps", "--all", "--format", "{{.ID}} {{.Status}}"]);
    let ended = |code: &str| stopped.starts_with(&format!("{} Exited ({code})", &id[..12]));
    assert!(
        ended("137") || ended("143"),
        "podman ps --all after stop: {stopped}"
    );
    podman.podman_ok(&["rm", &id]);
    assert_eq!(podman.podman_ok(&["ps", "--all", "--quiet"]), "");
}

#[test]
fn podman_run_interactive_in_a_terminal() {
    let podman = or_skip!(podman(), "podman");
    let server = or_skip!(TmuxServer::new(), "tmux");
    let work = reexec_tests::temp_dir("podman-terminal");
    let mut args = vec!["run", "--rm", "--interactive", "--tty"];
    let run_args = podman.run_args();
    args.extend(run_args.iter().map(String::as_str));
    args.extend([BUSYBOX_IMAGE, "sh"]);
    let run = server.run_recorded(work.path(), &podman.command_line(&args));
    // The runtime made a terminal inside and sent its master to conmon over the console
    // socket: the shell's standard input is a pty of the container's own devpts.
    // What is typed before the container's shell reads its terminal is lost to it.
    server.expect("/ #");
    server.type_line("tty; echo tty-$((6 * 7))");
    server.expect("tty-42");
    let screen = server.screen();
    assert!(
        screen.lines().any(|line| line.trim() == "/dev/pts/0"),
        "tty in the container:\n{screen}"
    );
    // Ctrl-C reaches the container's foreground process through its terminal; were it
    // lost, the sleep would outlast the 60 s `expect` waits.
    server.type_line("sleep 100");
    std::thread::sleep(Duration::from_millis(500));
    server.keys("C-c");
    server.type_line("echo interrupted-$?");
    server.expect("interrupted-130");
    server.type_line("exit 5");
    assert_eq!(run.status(), 5, "podman run -it's exit status");
    run.assert_settings_restored("podman run -it");
}

#[test]
fn podman_memory_limit_ends_in_an_oom_kill() {
    let podman = or_skip!(podman(), "podman");
    let limit = podman.run(
        &["--memory", "8m"],
        &["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"],
    );
    assert_exit_code(
        "podman run --memory 8m cat memory.limit_in_bytes",
        &limit,
        0,
    );
    assert_eq!(stdout_text(&limit), "8388608\n");
    // A string doubled until the limit stops it.
    let oom = podman.run(
        &["--memory", "8m"],
        &["sh", "-c", "x=a; while true; do x=$x$x; done"],
    );
    assert_exit_code("podman run --memory 8m (a growing string)", &oom, 137);
    // conmon saw the OOM kill in the cgroup's events and said so in its working directory.
    assert!(
        podman.work_dir().join("oom").exists(),
        "conmon wrote no oom file: {}",
        describe(&oom)
    );
}

#[test]
fn podman_pids_limit_stops_forks() {
    let podman = or_skip!(podman(), "podman");
    let limit = podman.run(
        &["--pids-limit", "20"],
        &["cat", "/sys/fs/cgroup/pids/pids.max"],
    );
    assert_exit_code("podman run --pids-limit 20 cat pids.max", &limit, 0);
    assert_eq!(stdout_text(&limit), "20\n");
    let forks = podman.run(
        &["--pids-limit", "5"],
        &[
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; wait",
        ],
    );
    assert!(
        !forks.status.success() && stderr_text(&forks).contains("can't fork"),
        "8 children under --pids-limit 5: {}",
        describe(&forks)
    );
}

#[test]
fn podman_network_none_has_only_loopback() {
    let podman = or_skip!(podman(), "podman");
    let output = podman.run(&[], &["cat", "/proc/net/dev"]);
    assert_exit_code("podman run --network none cat /proc/net/dev", &output, 0);
    let interfaces: Vec<String> = stdout_text(&output)
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, _)| name.trim().to_owned())
        .collect();
    assert_eq!(interfaces, ["lo"]);
}

#[test]
fn podman_user_runs_as_that_user_without_capabilities() {
    let podman = or_skip!(podman(), "podman");
    let output = podman.run(
        &["--user", "1234:5678"],
        &["sh", "-c", "id -u; id -g; grep CapEff /proc/self/status"],
    );
    assert_exit_code("podman run --user 1234:5678", &output, 0);
    assert_eq!(
        stdout_text(&output),
        "1234\n5678\nCapEff:\t0000000000000000\n"
    );
}

#[test]
fn podman_bind_mounts_read_write_and_read_only() {
    let podman = or_skip!(podman(), "podman");
    let shared = reexec_tests::temp_dir("podman-bind");
    std::fs::write(shared.path().join("in"), "from the host\n").unwrap();
    let bind = format!("{}:/data", shared.path().display());
    let output = podman.run(
        &["--volume", &bind],
        &[
            "sh",
            "-c",
            "cat /data/in; echo from the container > /data/out",
        ],
    );
    assert_exit_code("podman run -v DIR:/data", &output, 0);
    assert_eq!(stdout_text(&output), "from the host\n");
    assert_eq!(
        std::fs::read_to_string(shared.path().join("out")).unwrap(),
        "from the container\n"
    );
    let read_only = podman.run(
        &["--volume", &format!("{bind}:ro")],
        &["sh", "-c", "echo no > /data/refused"],
    );
    assert!(
        !read_only.status.success() && stderr_text(&read_only).contains("Read-only file system"),
        "a write into a :ro bind: {}",
        describe(&read_only)
    );
    assert!(!shared.path().join("refused").exists());
}

#[test]
fn podman_read_only_root_keeps_a_writable_tmp() {
    let podman = or_skip!(podman(), "podman");
    let root = podman.run(&["--read-only"], &["touch", "/written"]);
    assert!(
        !root.status.success() && stderr_text(&root).contains("Read-only file system"),
        "a write to / with --read-only: {}",
        describe(&root)
    );
    // podman mounts a tmpfs on /tmp (and /run, /var/tmp) of a read-only container.
    let tmp = podman.run(
        &["--read-only"],
        &["sh", "-c", "touch /tmp/written && echo ok"],
    );
    assert_exit_code("podman run --read-only touch /tmp/written", &tmp, 0);
    assert_eq!(stdout_text(&tmp), "ok\n");
}

#[test]
fn containerd_ctr_run_gives_the_exit_code() {
    let containerd = or_skip!(containerd(), "containerd");
    let mut args = containerd.ctr_run_args("rm-seven");
    args.insert(1, "--rm".into());
    args.extend(["/bin/sh", "-c", "echo hello from ctr; exit 7"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = containerd.ctr(&args);
    assert_exit_code("ctr run --rm sh -c 'exit 7'", &output, 7);
    assert_eq!(stdout_text(&output), "hello from ctr\n");
    assert_eq!(
        stdout_text(&containerd.ctr(&["container", "list", "--quiet"])),
        "",
        "ctr run --rm left its container"
    );
    assert_eq!(
        containerd.cgroup_parent().cgroups_below(),
        Vec::<PathBuf>::new()
    );
}

#[test]
fn containerd_detached_task_executes_and_is_killed() {
    let containerd = or_skip!(containerd(), "containerd");
    let mut args = containerd.ctr_run_args("detached");
    args.insert(1, "--detach".into());
    args.extend(["/bin/sleep", "1000"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = containerd.ctr(&args);
    assert_exit_code("ctr run --detach sleep", &started, 0);
    let listed = stdout_text(&containerd.ctr(&["task", "list"]));
    assert!(
        listed
            .lines()
            .any(|line| line.starts_with("detached") && line.ends_with("RUNNING")),
        "ctr task list: {listed}"
    );
    let fifo_dir = containerd.fifo_dir().to_string_lossy().into_owned();
    let exec = containerd.ctr(&[
        "task",
        "exec",
        "--fifo-dir",
        &fifo_dir,
        "--exec-id",
        "e1",
        "detached",
        "/bin/sh",
        "-c",
        "cat /proc/1/cmdline; exit 4",
    ]);
    assert_exit_code("ctr task exec sh -c 'exit 4'", &exec, 4);
    assert_eq!(stdout_text(&exec), "/bin/sleep\u{0}1000\u{0}");
    let kill = containerd.ctr(&["task", "kill", "--signal", "SIGKILL", "detached"]);
    assert_exit_code("ctr task kill -s SIGKILL", &kill, 0);
    // The shim reports the exit status to `task delete`, once the task has stopped.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let deleted = loop {
        let deleted = containerd.ctr(&["task", "delete", "detached"]);
        if deleted.status.success() || std::time::Instant::now() > deadline {
            break deleted;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        deleted.status.success() && stderr_text(&deleted).contains("exit code 137"),
        "ctr task delete after SIGKILL: {}",
        describe(&deleted)
    );
    assert_exit_code(
        "ctr container delete",
        &containerd.ctr(&["container", "delete", "detached"]),
        0,
    );
}
