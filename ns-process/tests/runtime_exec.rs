//! `ns-runtime exec`: a process in a running container's namespaces, root and cgroup.
//!
//! The container is one `ns-process --rootfs BUSYBOX -- sleep` starts (ns-runtime's own
//! `create`/`start` are tested in runtime.rs); exec finds it by its init's host pid,
//! given with the hidden `--internal-container-pid` instead of a state directory. Each
//! test runs as root and as uid 65534 (the container and exec both as that user), and
//! kills what it started by pid.

mod support;

use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use reexec_tests::{
    TestUser, Unprivileged, assert_exit_code, assert_failed_with, describe, is_root, or_skip,
    output_with_timeout, stdout_text, world_writable_dir,
};

const NS_PROCESS: &str = env!("CARGO_BIN_EXE_ns-process");
const NS_RUNTIME: &str = env!("CARGO_BIN_EXE_ns-runtime");
const TIMEOUT: Duration = Duration::from_secs(60);
const HOSTNAME: &str = "exec-test";

/// A container of `user`'s, and the runtime run as the same user.
struct Container {
    label: &'static str,
    ns_process: Child,
    init: u32,
    /// ns-runtime's copy for uid 65534, when the tests run as root.
    runtime: Option<Unprivileged>,
}

impl Container {
    /// `ns-process --rootfs BUSYBOX -- sleep 300` as `user`, once its command runs.
    fn start(user: &TestUser) -> Result<Container, String> {
        Container::start_with(user, &[])
    }

    /// The same with ns-process's `flags` too.
    fn start_with(user: &TestUser, flags: &[&str]) -> Result<Container, String> {
        let rootfs = support::rootfs()?;
        let runtime = match user.ids() {
            (65534, _) if is_root() => Some(Unprivileged::prepare(NS_RUNTIME)?),
            _ => None,
        };
        let ns_process = user
            .command()
            .arg("--rootfs")
            .arg(rootfs)
            .args(flags)
            .args(["--hostname", HOSTNAME, "--", "sleep", "300"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|error| error.to_string())?;
        let mut container = Container {
            label: user.label(),
            init: 0,
            ns_process,
            runtime,
        };
        // ns-process's one child is the init; the init's one child, the command, once
        // the setup is done.
        container.init = wait_for_child(container.ns_process.id())?;
        wait_for_child(container.init)?;
        Ok(container)
    }

    /// `ns-runtime exec --internal-container-pid INIT` with `args`, as the container's
    /// user.
    fn exec(&self, args: &[&str]) -> Command {
        let init = self.init.to_string();
        let mut all = vec!["exec", "--internal-container-pid", &init];
        all.extend_from_slice(args);
        match &self.runtime {
            Some(unprivileged) => unprivileged.command(NS_RUNTIME, &all),
            None => {
                let mut command = Command::new(NS_RUNTIME);
                command.args(&all);
                command
            }
        }
    }

    fn output(&self, args: &[&str]) -> Output {
        output_with_timeout(&mut self.exec(args), TIMEOUT)
    }

    /// The link of the init's namespace `name`, as the host sees it.
    fn namespace(&self, name: &str) -> String {
        std::fs::read_link(format!("/proc/{}/ns/{name}", self.init))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // The init dies with ns-process (its death signal), and the PID namespace with it.
        let _ = self.ns_process.kill();
        let _ = self.ns_process.wait();
    }
}

/// The first child of `pid`, waited for.
fn wait_for_child(pid: u32) -> Result<u32, String> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .map_err(|error| format!("process {pid} ended early: {error}"))?;
        if let Some(child) = children.split_whitespace().next() {
            return Ok(child.parse().unwrap());
        }
        if Instant::now() > deadline {
            return Err(format!("process {pid} started no child in {TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `check` on a container of each test user.
fn in_each_container(check: impl Fn(&Container)) {
    for user in TestUser::all(NS_PROCESS) {
        let container = or_skip!(Container::start(&user), "no container");
        check(&container);
    }
}

#[test]
fn exec_runs_in_the_containers_namespaces_and_root() {
    in_each_container(|container| {
        let script = "hostname; for n in pid mnt uts; do readlink /proc/self/ns/$n; done; \
                      cat /proc/[0-9]*/comm | sort | tr '\\n' ' '; echo; \
                      test -e /bin/busybox && echo busybox; \
                      test -e \"$1\" && echo host-visible; pwd; id -u";
        let manifest = env!("CARGO_MANIFEST_DIR");
        let output = container.output(&["id", "--", "sh", "-c", script, "sh", manifest]);
        let label = container.label;
        assert_exit_code(label, &output, 0);
        let text = stdout_text(&output);
        let lines: Vec<&str> = text.lines().collect();
        let context = format!("{label}: {}", describe(&output));
        assert_eq!(lines.first(), Some(&HOSTNAME), "{context}");
        assert_eq!(
            lines.get(1),
            Some(&&*container.namespace("pid")),
            "{context}"
        );
        assert_eq!(
            lines.get(2),
            Some(&&*container.namespace("mnt")),
            "{context}"
        );
        assert_eq!(
            lines.get(3),
            Some(&&*container.namespace("uts")),
            "{context}"
        );
        // The container's processes, and nothing of the host's: the command, the init
        // and the shell with its pipeline.
        let names = lines.get(4).copied().unwrap_or_default();
        assert!(names.contains("sleep"), "{context}");
        assert!(!names.contains("ns-process"), "{context}");
        assert_eq!(lines.get(5), Some(&"busybox"), "{context}");
        // No line "host-visible": the host's files are not there; the container's root
        // is `/`.
        assert_eq!(lines.get(6), Some(&"/"), "{context}");
        assert_eq!(lines.get(7), Some(&"0"), "{context}");
    });
}

#[test]
fn exec_exits_with_the_process_status() {
    in_each_container(|container| {
        let output = container.output(&["id", "sh", "-c", "exit 7"]);
        assert_exit_code(container.label, &output, 7);
        // Killed by a signal: 128 + its number, as a shell reports it.
        let output = container.output(&["id", "sh", "-c", "kill -TERM $$"]);
        assert_exit_code(container.label, &output, 128 + 15);
    });
}

#[test]
fn exec_takes_env_cwd_and_user() {
    in_each_container(|container| {
        let label = container.label;
        let output = container.output(&[
            "--env",
            "GREETING=hello there",
            "--cwd",
            "/tmp",
            "id",
            "sh",
            "-c",
            "echo \"$GREETING\"; pwd; id -u; id -g; grep CapEff /proc/self/status",
        ]);
        assert_exit_code(label, &output, 0);
        let text = stdout_text(&output);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[..4],
            ["hello there", "/tmp", "0", "0"],
            "{label}: {}",
            describe(&output)
        );
        // Docker's 14 capabilities, not all of root's.
        assert_eq!(lines[4], "CapEff:\t00000000a80425fb", "{label}");

        let uid_map = std::fs::read_to_string(format!("/proc/{}/uid_map", container.init)).unwrap();
        let maps_nobody = uid_map.lines().any(|line| {
            let fields: Vec<u64> = line
                .split_whitespace()
                .map(|f| f.parse().unwrap())
                .collect();
            fields[0] <= 65534 && 65534 < fields[0] + fields[2]
        });
        let as_nobody = container.output(&[
            "--user",
            "65534:65534",
            "id",
            "sh",
            "-c",
            "id -u; id -g; grep CapEff /proc/self/status",
        ]);
        if maps_nobody {
            assert_exit_code(label, &as_nobody, 0);
            assert_eq!(
                stdout_text(&as_nobody),
                "65534\n65534\nCapEff:\t0000000000000000\n",
                "{label}"
            );
        } else {
            // Only root is mapped (uid 65534 without subordinate ids): refused by name.
            assert_failed_with(
                label,
                &as_nobody,
                1,
                &["uid 65534 is not mapped in the container's user namespace"],
            );
        }
    });
}

#[test]
fn exec_detach_returns_at_once_and_writes_the_pid_file() {
    in_each_container(|container| {
        let label = container.label;
        let dir = world_writable_dir("exec-detach");
        let pid_file = dir.path().join("pid");
        // The process inherits exec's stdio, as conmon's pipes: nothing a test waits on.
        let started = Instant::now();
        let mut exec = container
            .exec(&[
                "--detach",
                "--pid-file",
                pid_file.to_str().unwrap(),
                "id",
                "sleep",
                "200",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let status = loop {
            if let Some(status) = exec.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < TIMEOUT,
                "{label}: exec --detach still runs"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(0), "{label}");
        let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
        // The pid is the host's, of the process in the container's PID namespace.
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        assert_eq!(comm, "sleep\n", "{label}");
        let pid_namespace = std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
        assert_eq!(
            pid_namespace.to_string_lossy(),
            container.namespace("pid"),
            "{label}"
        );
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    });
}

/// Accepts one connection on `listener` within the timeout, and receives the descriptor
/// sent over it and the payload.
fn receive_master(listener: &UnixListener) -> (OwnedFd, String) {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let (connection, _) = loop {
        match listener.accept() {
            Ok(accepted) => break accepted,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "no connection on the console socket"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(error) => panic!("accept: {error}"),
        }
    };
    connection.set_nonblocking(false).unwrap();
    connection.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut buffer = [0u8; 256];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buffer)];
    let message = recvmsg::<()>(
        std::os::fd::AsRawFd::as_raw_fd(&connection),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .unwrap();
    let bytes = message.bytes;
    let fds: Vec<RawFd> = message
        .cmsgs()
        .unwrap()
        .flat_map(|cmsg| match cmsg {
            ControlMessageOwned::ScmRights(fds) => fds,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(fds.len(), 1, "one descriptor");
    // SAFETY: the descriptor was just received with this message; nothing else owns it.
    let master = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    (
        master,
        String::from_utf8_lossy(&buffer[..bytes]).into_owned(),
    )
}

/// Reads what the pty's `master` gives until `done` says it has seen enough; fails after
/// the timeout, or if the pty closes first.
fn read_until(master: &mut std::fs::File, label: &str, done: impl Fn(&str) -> bool) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut seen = String::new();
    let mut buffer = [0u8; 1024];
    let deadline = Instant::now() + TIMEOUT;
    while !done(&seen) {
        assert!(Instant::now() < deadline, "{label}: only {seen:?}");
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(100u16)).unwrap() == 0 {
            continue;
        }
        let count = master.read(&mut buffer).unwrap_or(0);
        assert!(count > 0, "{label}: the pty closed after {seen:?}");
        seen.push_str(&String::from_utf8_lossy(&buffer[..count]));
    }
}

#[test]
fn exec_with_a_tty_sends_the_pty_master_over_the_console_socket() {
    in_each_container(|container| {
        let label = container.label;
        let dir = world_writable_dir("exec-console");
        let socket = dir.path().join("console.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        // uid 65534's runtime connects to it.
        std::fs::set_permissions(&socket, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let exec = container
            .exec(&[
                "--tty",
                "--console-socket",
                socket.to_str().unwrap(),
                "id",
                "sh",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (master, name) = receive_master(&listener);
        // The slave's name, inside the container's devpts.
        assert!(name.starts_with("/dev/pts/"), "{label}: {name:?}");
        let mut master = std::fs::File::from(master);
        master.write_all(b"tty\n").unwrap();
        // The shell echoes the line, then prints its terminal's path.
        read_until(&mut master, label, |seen| {
            seen.contains(&format!("{name}\r\n"))
        });
        master.write_all(b"exit 3\n").unwrap();
        let output = exec.wait_with_output().unwrap();
        assert_exit_code(label, &output, 3);
    });
}

#[test]
fn exec_refuses_what_it_cannot_do() {
    in_each_container(|container| {
        let label = container.label;
        let dir = world_writable_dir("exec-refusals");
        let missing = dir.path().join("missing.sock");
        let missing = missing.to_str().unwrap();
        for (args, expected) in [
            (
                &["--tty", "id", "sh"][..],
                "cannot allocate a tty without --console-socket",
            ),
            (
                &["--console-socket", missing, "id", "sh"][..],
                "--console-socket is for a process with a terminal",
            ),
            (&["id"][..], "no command: give it after the container's id"),
            (
                &["--tty", "--console-socket", missing, "id", "sh"][..],
                "no such socket",
            ),
            (&["--user", "x", "id", "sh"][..], "give UID or UID:GID"),
            (&["--env", "NOEQUALS", "id", "sh"][..], "give KEY=VALUE"),
            (
                &["id", "no-such-program"][..],
                "executable file not found in $PATH",
            ),
            (
                &["--cwd", "/no/such/dir", "id", "sh"][..],
                "is no directory in the container",
            ),
        ] {
            let output = container.output(args);
            assert_failed_with(&format!("{label}: {args:?}"), &output, 1, &[expected]);
        }
    });
}

#[test]
fn exec_into_a_container_that_is_gone_is_refused() {
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id().to_string();
    gone.wait().unwrap();
    let output = output_with_timeout(
        Command::new(NS_RUNTIME).args(["exec", "--internal-container-pid", &pid, "id", "sh"]),
        TIMEOUT,
    );
    assert_failed_with("gone", &output, 1, &["container id is not running"]);
}

#[test]
fn the_init_sends_the_commands_pty_over_a_handed_console_socket() {
    // What `create --console-socket` hands the engine: a connected socket, by number.
    const CONSOLE_FD: RawFd = 5;
    let rootfs = or_skip!(support::rootfs(), "no busybox rootfs");
    for user in TestUser::all(NS_PROCESS) {
        let label = user.label();
        let dir = world_writable_dir("init-console");
        let socket = dir.path().join("console.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let connection = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        let raw = std::os::fd::AsRawFd::as_raw_fd(&connection);
        let mut command = user.command();
        command
            .arg("--rootfs")
            .arg(rootfs)
            .arg(format!("--internal-console-fd={CONSOLE_FD}"))
            .args(["--internal-console-size=33x101", "--", "sh"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: dup2(2) is async-signal-safe and touches no memory; `raw` stays open in
        // the parent until after the spawn, and the copy at 5 is not close-on-exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
                // dup2 onto itself would keep close-on-exec: clear it instead.
                let result = if raw == CONSOLE_FD {
                    nix::libc::fcntl(raw, nix::libc::F_SETFD, 0)
                } else {
                    nix::libc::dup2(raw, CONSOLE_FD)
                };
                if result < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let ns_process = command.spawn().unwrap();
        drop(connection);
        let (master, name) = receive_master(&listener);
        assert!(name.starts_with("/dev/pts/"), "{label}: {name:?}");
        let mut master = std::fs::File::from(master);
        master
            .write_all(b"tty; stty size; readlink /proc/self/fd/0\n")
            .unwrap();
        // The echo and the answers: tty's, the size (consoleSize reached the pty), and
        // stdin's link, all inside.
        read_until(&mut master, label, |seen| {
            seen.contains("33 101\r\n") && seen.matches(&name).count() >= 2
        });
        master.write_all(b"exit 4\n").unwrap();
        let output = ns_process.wait_with_output().unwrap();
        assert_exit_code(label, &output, 4);
    }
}

#[test]
fn a_console_descriptor_that_is_no_open_socket_is_refused() {
    for (args, expected) in [
        (
            &["--internal-console-fd=77", "--", "true"][..],
            "--internal-console-fd 77: not open",
        ),
        (
            &["--internal-console-fd=2", "--", "true"][..],
            "--internal-console-fd 2: stdio",
        ),
        (
            &["--internal-console-size=24", "--", "true"][..],
            "give ROWSxCOLUMNS",
        ),
    ] {
        reexec_tests::assert_refused(NS_PROCESS, args, 125, expected);
    }
}

#[test]
fn exec_runs_the_oci_process_of_a_process_file() {
    in_each_container(|container| {
        let label = container.label;
        let dir = world_writable_dir("exec-process");
        let file = dir.path().join("process.json");
        // As podman writes it for `podman exec`: the whole process, no command line.
        std::fs::write(
            &file,
            r#"{
                "terminal": false,
                "user": { "uid": 0, "gid": 0 },
                "args": ["sh", "-c", "echo $WHO; pwd; ulimit -n; grep -E 'CapEff|NoNewPrivs' /proc/self/status; exit 5"],
                "env": ["PATH=/bin:/usr/bin", "WHO=from-the-file"],
                "cwd": "/etc",
                "capabilities": {
                    "bounding": ["CAP_CHOWN", "CAP_KILL"],
                    "effective": ["CAP_KILL"],
                    "permitted": ["CAP_CHOWN", "CAP_KILL"]
                },
                "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 200, "soft": 100 }],
                "noNewPrivileges": true
            }"#,
        )
        .unwrap();
        let output = container.output(&["--process", file.to_str().unwrap(), "id"]);
        assert_exit_code(label, &output, 5);
        // CHOWN and KILL: a root program's effective set is its permitted one after exec
        // (capabilities(7)), whatever `effective` said; nothing beyond the bounding set.
        assert_eq!(
            stdout_text(&output),
            "from-the-file\n/etc\n100\nCapEff:\t0000000000000021\nNoNewPrivs:\t1\n",
            "{label}: {}",
            describe(&output)
        );
    });
}

#[test]
fn exec_forwards_signals_to_the_process() {
    in_each_container(|container| {
        let label = container.label;
        let mut command = container.exec(&[
            "id",
            "sh",
            "-c",
            "trap 'exit 42' TERM; echo ready; while :; do sleep 1; done",
        ]);
        command.stdin(Stdio::null()).stderr(Stdio::null());
        let mut exec = reexec_tests::spawn_until_ready(&mut command);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(exec.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = exec.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "{label}: exec did not end");
            std::thread::sleep(Duration::from_millis(20));
        };
        // The shell's trap ran: the signal went to it, and its status is exec's.
        assert_eq!(status.code(), Some(42), "{label}");
    });
}

#[test]
fn exec_joins_the_containers_cgroup() {
    for user in TestUser::all(NS_PROCESS) {
        // A cgroup of the container's own (root only: see the limits tests).
        if !user.is_root() {
            println!(
                "skipped {}: ns-process makes cgroups as root only here",
                user.label()
            );
            continue;
        }
        let container = or_skip!(
            Container::start_with(&user, &["--pids-limit", "64"]),
            "no container with a cgroup"
        );
        let label = container.label;
        let dir = world_writable_dir("exec-cgroup");
        let pid_file = dir.path().join("pid");
        let output = container.output(&[
            "--detach",
            "--pid-file",
            pid_file.to_str().unwrap(),
            "id",
            "sh",
            "-c",
            "exec sleep 100 >/dev/null 2>&1",
        ]);
        assert_exit_code(label, &output, 0);
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let theirs = std::fs::read_to_string(format!("/proc/{}/cgroup", container.init)).unwrap();
        let ours = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        assert_ne!(
            theirs, ours,
            "{label}: the container has no cgroup of its own"
        );
        let execs = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        assert_eq!(execs, theirs, "{label}");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid.parse().unwrap()),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    }
}
