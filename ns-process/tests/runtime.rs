//! ns-runtime's lifecycle on real bundles (the busybox rootfs and a config.json): create,
//! state, start, kill, delete, run, list, two containers at once, every refusal with its
//! message and exit status, runc's log lines, and a create killed half-way. As root and as
//! uid 65534 (a rootless container: ns-process's user namespace maps root to the caller).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use reexec_tests::procfs::processes_where;
use reexec_tests::{
    TempDir, TestUser, assert_exit_code, assert_failed_with, describe, mount_table, or_skip,
    output_with_timeout, stdout_text, world_writable_dir,
};

mod support;

const NS_RUNTIME: &str = env!("CARGO_BIN_EXE_ns-runtime");
const TIMEOUT: Duration = Duration::from_secs(60);

/// runc's exit statuses as ns-runtime distinguishes them (runtime/mod.rs).
const EXIT_USAGE: i32 = 2;
const EXIT_NOT_FOUND: i32 = 3;
const EXIT_WRONG_STATE: i32 = 4;
const EXIT_BAD_INPUT: i32 = 5;

/// A bundle whose config.json runs `script` with sh in the busybox rootfs, a state
/// directory of its own, and files for the container's output, all usable by `user`.
struct Bundle<'a> {
    user: &'a TestUser,
    dir: TempDir,
}

impl<'a> Bundle<'a> {
    fn new(user: &'a TestUser, script: &str) -> Result<Bundle<'a>, String> {
        let rootfs = support::rootfs()?;
        let dir = world_writable_dir("runtime-bundle");
        // The bundle's path in the command line of its inits: see `processes`.
        let script = format!(": {}; {script}", dir.path().display());
        // ns-runtime's own example, as runc's users start from `runc spec`: rootless for a
        // user without privilege.
        let mut spec = user.command();
        spec.arg("spec").arg("--bundle").arg(dir.path());
        if !user.is_root() {
            spec.arg("--rootless");
        }
        let written = output_with_timeout(spec.stdin(Stdio::null()), TIMEOUT);
        assert_exit_code("ns-runtime spec", &written, 0);
        let path = dir.path().join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        config["root"] = serde_json::json!({ "path": rootfs });
        config["hostname"] = serde_json::json!("box");
        config["process"]["terminal"] = serde_json::json!(false);
        config["process"]["args"] = serde_json::json!(["sh", "-c", &script]);
        config["process"]["env"] = serde_json::json!(["PATH=/bin:/usr/bin:/sbin:/usr/sbin"]);
        std::fs::write(&path, config.to_string()).unwrap();
        Ok(Bundle { user, dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `ns-runtime --root R ARGS` as the bundle's user, its stdio its own.
    fn runtime(&self, args: &[&str]) -> Command {
        let mut command = self.user.command();
        command.arg("--root").arg(self.root()).args(args);
        command
    }

    /// Runs `ns-runtime ARGS` to its end (not for create: its init keeps stdio open).
    fn output(&self, args: &[&str]) -> Output {
        output_with_timeout(self.runtime(args).stdin(Stdio::null()), TIMEOUT)
    }

    /// `create` of container `id`, its stdio (and so the container's) in files of the
    /// bundle: `out-ID` and `err-ID`. Returns its status and what create said on stderr.
    fn create(&self, id: &str, extra: &[&str]) -> (Option<i32>, String) {
        let out = File::create(self.path().join(format!("out-{id}"))).unwrap();
        let err_path = self.path().join(format!("err-{id}"));
        let err = File::create(&err_path).unwrap();
        let mut args = vec!["create", "--bundle", self.path().to_str().unwrap()];
        args.extend(extra);
        args.push(id);
        let status = self
            .runtime(&args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .unwrap();
        (status.code(), std::fs::read_to_string(err_path).unwrap())
    }

    fn create_ok(&self, id: &str) {
        let (code, stderr) = self.create(id, &[]);
        assert_eq!(
            code,
            Some(0),
            "{}: create {id}: {stderr}",
            self.user.label()
        );
    }

    /// What the container `id` wrote on stdout so far.
    fn container_output(&self, id: &str) -> String {
        std::fs::read_to_string(self.path().join(format!("out-{id}"))).unwrap_or_default()
    }

    fn state(&self, id: &str) -> serde_json::Value {
        let output = self.output(&["state", id]);
        assert_exit_code(self.user.label(), &output, 0);
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|error| panic!("state {id} is no JSON: {error}: {}", describe(&output)))
    }

    fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_owned()
    }

    /// Waits until the command of container `id` has exec'd `program` (a child of its
    /// init): a signal sent to a shell still on its way to `exec` can be caught and lost
    /// (sh -c catches SIGINT), as under any runtime.
    fn wait_for_command(&self, id: &str, program: &str) {
        let init = self.state(id)["pid"].as_i64().unwrap();
        wait_until(
            || {
                std::fs::read_to_string(format!("/proc/{init}/task/{init}/children"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .any(|child| {
                        std::fs::read_to_string(format!("/proc/{child}/comm"))
                            .is_ok_and(|comm| comm.trim_end() == program)
                    })
            },
            || format!("{id}'s command never became {program}"),
        );
    }

    /// Waits until container `id` has `status`.
    fn wait_for_status(&self, id: &str, status: &str) {
        wait_until(
            || self.status(id) == status,
            || format!("{id} never became {status}"),
        );
    }

    fn succeeds(&self, args: &[&str]) -> String {
        let output = self.output(args);
        assert_exit_code(&format!("{}: {args:?}", self.user.label()), &output, 0);
        stdout_text(&output)
    }

    /// The live processes of this bundle: those whose command line names it (the
    /// runtime, the containers' commands, whose scripts start with `: BUNDLE;`) and the
    /// containers' inits, which show their name alone there but their state directory,
    /// under this bundle's `--root`, in their environment.
    fn processes(&self) -> Vec<(u32, String)> {
        let bundle = self.path().as_os_str().as_encoded_bytes().to_vec();
        let mut state_dir = b"NS_RUNTIME_STATE_DIR=".to_vec();
        state_dir.extend(self.root().as_os_str().as_encoded_bytes());
        state_dir.push(b'/');
        let has =
            |haystack: &[u8], needle: &[u8]| haystack.windows(needle.len()).any(|w| w == needle);
        processes_where(|pid, stat| {
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            stat.state != 'Z'
                && (has(&cmdline, &bundle)
                    || cmdline.starts_with(b"nsInitialisation\0")
                        && std::fs::read(format!("/proc/{pid}/environ"))
                            .is_ok_and(|environ| has(&environ, &state_dir)))
        })
    }

    /// No mount of the host's is on the bundle or the rootfs (the machine is shared: the
    /// whole table may change under other programs meanwhile).
    fn assert_no_mount(&self, label: &str) {
        let rootfs = support::rootfs().unwrap().to_str().unwrap().to_owned();
        let bundle = self.path().to_str().unwrap().to_owned();
        let table = mount_table();
        let ours: Vec<&str> = table
            .lines()
            .filter(|line| line.contains(&bundle) || line.contains(&rootfs))
            .collect();
        assert!(ours.is_empty(), "{label}: mounts left: {ours:?}");
    }

    /// Nothing of any container is left: no init, no state directory but the empty root.
    fn assert_nothing_left(&self, label: &str) {
        wait_until(
            || self.processes().is_empty(),
            || format!("{label}: processes left: {:?}", self.processes()),
        );
        let left: Vec<_> = std::fs::read_dir(self.root())
            .map(|entries| entries.flatten().map(|entry| entry.file_name()).collect())
            .unwrap_or_default();
        assert!(
            left.is_empty(),
            "{label}: left in the state directory: {left:?}"
        );
    }
}

/// Polls until `done` holds; panics with `what` (made only then) after TIMEOUT.
fn wait_until(mut done: impl FnMut() -> bool, what: impl Fn() -> String) {
    let deadline = Instant::now() + TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "{}", what());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn pid_of(state: &serde_json::Value) -> i32 {
    state["pid"].as_i64().unwrap() as i32
}

#[test]
fn create_start_kill_delete_as_runc() {
    for user in TestUser::all(NS_RUNTIME) {
        let label = user.label();
        let bundle = or_skip!(
            Bundle::new(&user, "echo ran; hostname; exec sleep 1000"),
            "no root filesystem"
        );
        let pid_file = bundle.path().join("pid");
        let (code, stderr) = bundle.create("c1", &["--pid-file", pid_file.to_str().unwrap()]);
        assert_eq!(code, Some(0), "{label}: {stderr}");

        // Created: the init is up and set up, the command not run.
        let state = bundle.state("c1");
        assert_eq!(state["status"], "created", "{label}: {state}");
        assert_eq!(state["id"], "c1");
        assert_eq!(state["ociVersion"], "1.1.0");
        assert_eq!(Path::new(state["bundle"].as_str().unwrap()), bundle.path());
        let pid = pid_of(&state);
        let written = std::fs::read_to_string(&pid_file).unwrap();
        assert_eq!(
            written,
            pid.to_string(),
            "{label}: --pid-file holds the init's pid"
        );
        assert!(
            reexec_tests::procfs::is_running(pid as u32),
            "{label}: the init lives past create"
        );
        // What assert_nothing_left looks for finds it.
        let inits: Vec<u32> = bundle.processes().iter().map(|(pid, _)| *pid).collect();
        assert_eq!(inits, [pid as u32], "{label}");
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            bundle.container_output("c1"),
            "",
            "{label}: ran before start"
        );
        let list = bundle.succeeds(&["list"]);
        assert!(list.starts_with("ID "), "{list}");
        assert!(list.lines().nth(1).unwrap().starts_with("c1 "), "{list}");
        assert!(list.contains(" created "), "{list}");

        // Started: the command runs, in the container's own UTS namespace.
        bundle.succeeds(&["start", "c1"]);
        wait_until(
            || bundle.container_output("c1") == "ran\nbox\n",
            || format!("{label}: {:?}", bundle.container_output("c1")),
        );
        let state = bundle.state("c1");
        assert_eq!(state["status"], "running", "{label}: {state}");
        assert_eq!(pid_of(&state), pid);

        // Killed (SIGTERM, forwarded to the command): stopped, and then deleted.
        bundle.succeeds(&["kill", "c1"]);
        bundle.wait_for_status("c1", "stopped");
        assert_eq!(
            pid_of(&bundle.state("c1")),
            0,
            "{label}: a stopped container has no pid"
        );
        bundle.succeeds(&["delete", "c1"]);
        assert_failed_with(
            label,
            &bundle.output(&["state", "c1"]),
            EXIT_NOT_FOUND,
            &["container \"c1\" does not exist"],
        );
        let json = bundle.succeeds(&["list", "--format", "json"]);
        assert_eq!(json.trim(), "[]", "{label}");
        bundle.assert_nothing_left(label);
        bundle.assert_no_mount(label);
    }
}

#[test]
fn a_created_container_ends_on_kill_and_signals_are_named_or_numbered() {
    for user in TestUser::all(NS_RUNTIME) {
        let label = user.label();
        let bundle = or_skip!(Bundle::new(&user, "exec sleep 1000"), "no root filesystem");
        // Before start: the init ends on SIGTERM, as the command would have.
        bundle.create_ok("a");
        bundle.succeeds(&["kill", "a", "TERM"]);
        bundle.wait_for_status("a", "stopped");
        assert_failed_with(
            label,
            &bundle.output(&["start", "a"]),
            EXIT_WRONG_STATE,
            &["cannot start container \"a\": it is stopped"],
        );
        assert_failed_with(
            label,
            &bundle.output(&["kill", "a", "9"]),
            EXIT_WRONG_STATE,
            &["cannot kill container \"a\": it is stopped"],
        );
        bundle.succeeds(&["delete", "a"]);
        // Running: a number (podman's `kill ID 9`) and a name with SIG.
        for (id, signal) in [("b", "9"), ("c", "SIGKILL"), ("d", "int")] {
            bundle.create_ok(id);
            bundle.succeeds(&["start", id]);
            bundle.wait_for_status(id, "running");
            bundle.wait_for_command(id, "sleep");
            bundle.succeeds(&["kill", id, signal]);
            bundle.wait_for_status(id, "stopped");
            bundle.succeeds(&["delete", id]);
        }
        bundle.assert_nothing_left(label);
    }
}

#[test]
fn the_inits_hooks_run_under_create_with_a_read_only_root() {
    for user in TestUser::all(NS_RUNTIME) {
        let label = user.label();
        let bundle = or_skip!(
            Bundle::new(&user, "cat /dev/shm/hooked"),
            "no root filesystem"
        );
        let path = bundle.path().to_str().unwrap().to_owned();
        let config_path = bundle.path().join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
        // A read-only root, as `runc spec` writes it: the startContainer hook runs where
        // nothing is writable but /dev/shm and the like.
        config["root"]["readonly"] = serde_json::json!(true);
        let created = bundle.path().join("created.json");
        config["hooks"] = serde_json::json!({
            "createContainer": [{
                "path": "/bin/sh",
                "args": ["sh", "-c", format!("cat > {}", created.display())]
            }],
            "startContainer": [{
                "path": "/bin/sh",
                "args": ["sh", "-c", "echo started > /dev/shm/hooked"]
            }]
        });
        std::fs::write(&config_path, config.to_string()).unwrap();
        let output = bundle.output(&["run", "--bundle", &path, "h"]);
        assert_exit_code(label, &output, 0);
        assert_eq!(stdout_text(&output), "started\n", "{label}");
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&created).unwrap()).unwrap();
        assert_eq!(state["id"], "h", "{label}: {state}");
        assert_eq!(state["status"], "creating", "{label}: {state}");
        bundle.assert_nothing_left(label);
    }
}

#[test]
fn run_exits_with_the_containers_status_and_deletes_it() {
    for user in TestUser::all(NS_RUNTIME) {
        let label = user.label();
        for (script, code) in [("exit 0", 0), ("echo out; exit 7", 7)] {
            let bundle = or_skip!(Bundle::new(&user, script), "no root filesystem");
            let path = bundle.path().to_str().unwrap().to_owned();
            let output = bundle.output(&["run", "--bundle", &path, "r"]);
            assert_exit_code(&format!("{label}: {script}"), &output, code);
            if code == 7 {
                assert_eq!(stdout_text(&output), "out\n", "{label}");
            }
            bundle.assert_nothing_left(label);
        }
        // --detach: run returns with the container running.
        let bundle = or_skip!(Bundle::new(&user, "exec sleep 1000"), "no root filesystem");
        let path = bundle.path().to_str().unwrap().to_owned();
        let status = bundle
            .runtime(&["run", "--detach", "--bundle", &path, "d"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(0), "{label}");
        assert_eq!(bundle.status("d"), "running", "{label}");
        bundle.succeeds(&["delete", "--force", "d"]);
        bundle.assert_nothing_left(label);
    }
}

#[test]
fn the_containers_pid_1_shows_no_host_path_in_its_command_line() {
    // The runtime's command line names the bundle, the init's held all of config.json:
    // the container sees the init's name alone, whichever way the init started.
    for user in TestUser::all(NS_RUNTIME) {
        let label = user.label();
        let bundle = or_skip!(
            Bundle::new(&user, "cat /proc/1/cmdline"),
            "no root filesystem"
        );
        let path = bundle.path().to_str().unwrap().to_owned();
        let output = bundle.output(&["run", "--bundle", &path, "c"]);
        assert_exit_code(label, &output, 0);
        let words = reexec_tests::procfs::cmdline_words(&output.stdout);
        assert_eq!(
            words,
            ["nsInitialisation"],
            "{label}: {:?}",
            stdout_text(&output)
        );
        bundle.assert_nothing_left(label);
    }
}

#[test]
fn two_containers_at_once() {
    for user in TestUser::all(NS_RUNTIME) {
        let label = user.label();
        let bundle = or_skip!(
            Bundle::new(&user, "echo $$; exec sleep 1000"),
            "no root filesystem"
        );
        bundle.create_ok("one");
        bundle.create_ok("two");
        bundle.succeeds(&["start", "one"]);
        assert_eq!(bundle.status("one"), "running");
        assert_eq!(
            bundle.status("two"),
            "created",
            "{label}: start of one started two"
        );
        bundle.succeeds(&["start", "two"]);
        let (one, two) = (bundle.state("one"), bundle.state("two"));
        assert_ne!(pid_of(&one), pid_of(&two));
        assert_eq!(two["status"], "running");
        let ids = bundle.succeeds(&["list", "-q"]);
        assert_eq!(ids, "one\ntwo\n", "{label}");
        // Each is PID 1 of its own PID namespace: the command is its PID 2.
        wait_until(
            || {
                !bundle.container_output("one").is_empty()
                    && !bundle.container_output("two").is_empty()
            },
            || format!("{label}: no output"),
        );
        assert_eq!(bundle.container_output("one"), "2\n");
        assert_eq!(bundle.container_output("two"), "2\n");
        // One goes; the other is untouched.
        bundle.succeeds(&["delete", "--force", "one"]);
        assert_eq!(bundle.status("two"), "running", "{label}");
        bundle.succeeds(&["delete", "--force", "two"]);
        bundle.assert_nothing_left(label);
    }
}

#[test]
fn refusals_say_why_with_their_exit_status() {
    let user = &TestUser::all(NS_RUNTIME)[0];
    let bundle = or_skip!(Bundle::new(user, "exec sleep 1000"), "no root filesystem");
    let path = bundle.path().to_str().unwrap().to_owned();
    for command in [
        &["state", "nope"][..],
        &["start", "nope"],
        &["kill", "nope"],
        &["delete", "nope"],
    ] {
        assert_failed_with(
            &format!("{command:?}"),
            &bundle.output(command),
            EXIT_NOT_FOUND,
            &["container \"nope\" does not exist"],
        );
    }
    bundle.create_ok("x");
    let (code, stderr) = bundle.create("x", &[]);
    assert_eq!(code, Some(EXIT_WRONG_STATE), "{stderr}");
    assert!(
        stderr.contains("container \"x\" already exists; delete it first"),
        "{stderr}"
    );
    assert_eq!(
        bundle.status("x"),
        "created",
        "the refused create changed x"
    );
    bundle.succeeds(&["start", "x"]);
    assert_failed_with(
        "start twice",
        &bundle.output(&["start", "x"]),
        EXIT_WRONG_STATE,
        &["cannot start container \"x\": it is running already"],
    );
    assert_failed_with(
        "delete running",
        &bundle.output(&["delete", "x"]),
        EXIT_WRONG_STATE,
        &[
            "cannot delete container \"x\": it is running; stop it first",
            "--force",
        ],
    );
    assert_eq!(bundle.status("x"), "running");
    assert_failed_with(
        "unknown signal",
        &bundle.output(&["kill", "x", "SIGNOPE"]),
        EXIT_USAGE,
        &["unknown signal \"SIGNOPE\": give a name (TERM, SIGKILL, …) or a number"],
    );
    bundle.succeeds(&["delete", "--force", "x"]);

    let refused = [
        (
            vec!["create", "--bundle", &path, "../x"],
            EXIT_BAD_INPUT,
            "invalid container id \"../x\": use letters, digits",
        ),
        (
            vec!["--systemd-cgroup", "create", "--bundle", &path, "s"],
            EXIT_BAD_INPUT,
            "--systemd-cgroup: cgroups through systemd are not supported",
        ),
        (
            vec!["create", "--no-pivot", "--bundle", &path, "p"],
            EXIT_BAD_INPUT,
            "--no-pivot: ns-runtime always pivots",
        ),
        (
            vec!["create", "--bundle", "/nonexistent", "m"],
            EXIT_BAD_INPUT,
            "/nonexistent/config.json: no config.json in the bundle",
        ),
        (
            vec!["--log-format", "yaml", "list"],
            EXIT_USAGE,
            "--log-format \"yaml\": give text or json",
        ),
        (
            vec!["list", "--format", "xml"],
            EXIT_USAGE,
            "--format \"xml\": give table or json",
        ),
    ];
    for (args, code, message) in refused {
        let output = bundle.output(&args);
        assert_failed_with(&format!("{args:?}"), &output, code, &[message]);
    }
    bundle.assert_nothing_left(user.label());
}

#[test]
fn a_failed_setup_leaves_nothing_behind() {
    for user in TestUser::all(NS_RUNTIME) {
        let label = user.label();
        let bundle = or_skip!(Bundle::new(&user, "true"), "no root filesystem");
        // A rootfs whose /proc is a link out of it: the init refuses to mount there.
        let rootfs = bundle.path().join("rootfs");
        or_skip!(
            reexec_tests::busybox_rootfs_copy(env!("CARGO_TARGET_TMPDIR"), &rootfs, user.ids()),
            "no root filesystem"
        );
        std::fs::remove_dir(rootfs.join("proc")).unwrap();
        std::os::unix::fs::symlink("/etc", rootfs.join("proc")).unwrap();
        let config = bundle.path().join("config.json");
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
        json["root"]["path"] = "rootfs".into();
        std::fs::write(&config, json.to_string()).unwrap();
        let (code, stderr) = bundle.create("f", &[]);
        assert_eq!(code, Some(1), "{label}: {stderr}");
        assert!(stderr.contains("is a symbolic link"), "{label}: {stderr}");
        assert!(
            stderr.contains("ns-runtime: the container's init failed its setup (exit status 125)"),
            "{label}: {stderr}"
        );
        bundle.assert_nothing_left(label);
        bundle.assert_no_mount(label);
    }
}

#[test]
fn log_lines_are_runcs_json_or_text() {
    let user = &TestUser::all(NS_RUNTIME)[0];
    let bundle = or_skip!(Bundle::new(user, "exit 0"), "no root filesystem");
    let log = bundle.path().join("log.json");
    let log_arg = log.to_str().unwrap().to_owned();
    let path = bundle.path().to_str().unwrap().to_owned();
    let output = bundle.output(&["--log", &log_arg, "--log-format", "json", "state", "gone"]);
    assert_exit_code("state", &output, EXIT_NOT_FOUND);
    let output = bundle.output(&[
        "--log",
        &log_arg,
        "--log-format",
        "json",
        "--debug",
        "run",
        "--bundle",
        &path,
        "r",
    ]);
    assert_exit_code("run", &output, 0);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{line}: {error}")))
        .collect();
    assert_eq!(lines[0]["level"], "error", "{text}");
    assert_eq!(
        lines[0]["msg"].as_str().unwrap(),
        format!(
            "container \"gone\" does not exist (no state.json under {})",
            bundle.root().display()
        )
    );
    for line in &lines {
        let time = line["time"].as_str().unwrap();
        // RFC 3339, UTC: 2026-11-30T15:04:58.583473294Z.
        assert!(
            time.len() == 30 && time.ends_with('Z') && &time[10..11] == "T",
            "{time}"
        );
        assert_eq!(line.as_object().unwrap().len(), 3, "{line}");
    }
    // --debug: the command line the bundle became.
    assert!(
        lines.iter().any(|line| line["level"] == "debug"
            && line["msg"]
                .as_str()
                .unwrap()
                .contains("runs as: ns-process --rootfs")),
        "{text}"
    );
    // Text, as logrus writes it.
    let text_log = bundle.path().join("log.txt");
    let output = bundle.output(&["--log", text_log.to_str().unwrap(), "start", "gone"]);
    assert_exit_code("start", &output, EXIT_NOT_FOUND);
    let text = std::fs::read_to_string(&text_log).unwrap();
    assert!(text.starts_with("time=\""), "{text}");
    assert!(
        text.contains("\" level=error msg=\"container \\\"gone\\\" does not exist"),
        "{text}"
    );
}

#[test]
fn a_create_killed_half_way_leaves_nothing_behind() {
    // The runtime writes its debug lines into a FIFO the test reads: it blocks opening it
    // for the next line until the test reads again, so the test kills it at a known step.
    for user in TestUser::all(NS_RUNTIME) {
        let label = user.label();
        for stage in ["is set up; saving", "saved"] {
            let bundle = or_skip!(Bundle::new(&user, "exec sleep 1000"), "no root filesystem");
            let fifo = bundle.path().join("log");
            nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
            // Writable by uid 65534 too, whatever the umask.
            std::fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o666))
                .unwrap();
            let path = bundle.path().to_str().unwrap().to_owned();
            let mut create = bundle
                .runtime(&[
                    "--debug",
                    "--log",
                    fifo.to_str().unwrap(),
                    "create",
                    "--bundle",
                    &path,
                    "k",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            // Line by line (each line is one open, write, close of the FIFO by the
            // runtime) until the one before the stage; the runtime is then past it and
            // blocked in its next open.
            let mut read = String::new();
            let wanted = if stage == "saved" {
                "is set up; saving"
            } else {
                "runs as"
            };
            while !read.contains(wanted) {
                File::open(&fifo)
                    .unwrap()
                    .read_to_string(&mut read)
                    .unwrap();
            }
            if stage == "saved" {
                // Its next line says saved: wait until the state file is there.
                wait_until(
                    || bundle.root().join("k").join("state.json").exists(),
                    || format!("{label}: no state.json"),
                );
            } else {
                // Blocked before its line "is set up": the init is starting or set up.
                wait_until(
                    || !bundle.processes().is_empty(),
                    || format!("{label}: no init"),
                );
            }
            create.kill().unwrap();
            create.wait().unwrap();
            // The init went with it; the next call removes the directory it left.
            wait_until(
                || bundle.processes().is_empty(),
                || format!("{label} {stage}: init left"),
            );
            let listed = bundle.succeeds(&["list", "-q"]);
            assert_eq!(listed, "", "{label} {stage}");
            bundle.assert_nothing_left(&format!("{label} {stage}"));
            bundle.assert_no_mount(&format!("{label} {stage}"));
            // And the id is free again.
            std::fs::remove_file(&fifo).unwrap();
            bundle.create_ok("k");
            bundle.succeeds(&["delete", "k"]);
        }
    }
}

#[test]
fn kill_all_signals_every_process_of_the_container() {
    for user in TestUser::all(NS_RUNTIME) {
        let label = user.label();
        // The shell traps SIGUSR1; its child, a sleep, dies of it.
        let bundle = or_skip!(
            Bundle::new(
                &user,
                "trap 'echo usr1' USR1; sleep 1000 & echo up; while :; do wait; done"
            ),
            "no root filesystem"
        );
        bundle.create_ok("all");
        bundle.succeeds(&["start", "all"]);
        wait_until(
            || bundle.container_output("all") == "up\n",
            || format!("{label}: never up"),
        );
        let init = pid_of(&bundle.state("all")) as u32;
        let inside = || reexec_tests::procfs::descendants(init).len();
        assert_eq!(inside(), 2, "{label}: the shell and its sleep");
        // Without --all, the init forwards it to its command only: the shell.
        bundle.succeeds(&["kill", "all", "USR1"]);
        wait_until(
            || bundle.container_output("all") == "up\nusr1\n",
            || format!("{label}: the shell got no USR1"),
        );
        assert_eq!(inside(), 2, "{label}: the sleep got USR1 without --all");
        bundle.succeeds(&["kill", "--all", "all", "USR1"]);
        wait_until(|| inside() == 1, || format!("{label}: the sleep lives on"));
        assert_eq!(
            bundle.status("all"),
            "running",
            "{label}: the shell traps it"
        );
        bundle.succeeds(&["delete", "--force", "all"]);
        bundle.assert_nothing_left(label);
    }
}

#[test]
fn creates_of_one_id_at_once_make_one_container() {
    for user in TestUser::all(NS_RUNTIME) {
        let label = user.label();
        let bundle = or_skip!(Bundle::new(&user, "exec sleep 1000"), "no root filesystem");
        let path = bundle.path().to_str().unwrap().to_owned();
        // stderr in files: the winner's init keeps its stdio open.
        let creates: Vec<_> = (0..4)
            .map(|n| {
                let err = bundle.path().join(format!("err-same-{n}"));
                let child = bundle
                    .runtime(&["create", "--bundle", &path, "same"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(File::create(&err).unwrap())
                    .spawn()
                    .unwrap();
                (child, err)
            })
            .collect();
        let results: Vec<(Option<i32>, String)> = creates
            .into_iter()
            .map(|(mut child, err)| {
                let code = child.wait().unwrap().code();
                (code, std::fs::read_to_string(err).unwrap())
            })
            .collect();
        let made = results.iter().filter(|(code, _)| *code == Some(0)).count();
        assert_eq!(made, 1, "{label}: {results:?}");
        for (code, stderr) in results.iter().filter(|(code, _)| *code != Some(0)) {
            assert_eq!(*code, Some(EXIT_WRONG_STATE), "{label}: {stderr}");
            assert!(
                stderr.contains("container \"same\" already exists"),
                "{label}: {stderr}"
            );
        }
        assert_eq!(bundle.processes().len(), 1, "{label}: one init");
        assert_eq!(bundle.status("same"), "created");
        bundle.succeeds(&["delete", "same"]);
        bundle.assert_nothing_left(label);
    }
}

#[test]
fn preserved_descriptors_reach_the_command_and_no_other() {
    for user in TestUser::all(NS_RUNTIME) {
        let label = user.label();
        let bundle = or_skip!(
            Bundle::new(&user, "echo through-3 >&3; ls /proc/self/fd | tr '\\n' ' '"),
            "no root filesystem"
        );
        let file = bundle.path().join("fd3");
        // bash opens descriptor 3 for the runtime, as conmon does for socket activation.
        let script = r#"exec 3>"$1"; shift; exec "$@""#;
        let path = bundle.path().to_str().unwrap().to_owned();
        let root = bundle.root();
        let output = output_with_timeout(
            user.command_of("bash")
                .args(["-c", script, "bash"])
                .arg(&file)
                .arg(user.program())
                .arg("--root")
                .arg(&root)
                .args(["run", "--preserve-fds", "1", "--bundle", &path, "p"])
                .stdin(Stdio::null()),
            TIMEOUT,
        );
        assert_exit_code(label, &output, 0);
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "through-3\n",
            "{label}"
        );
        // 0 to 2, 3, and ls's own directory: not the runtime's ready socket or FIFO.
        assert_eq!(stdout_text(&output), "0 1 2 3 4 ", "{label}");
        bundle.assert_nothing_left(label);
    }
}

#[test]
fn a_bundle_of_runc_spec_runs_as_under_runc() {
    let runc = ["/usr/sbin/runc", "/usr/bin/runc"]
        .into_iter()
        .find(|path| Path::new(path).exists());
    let Some(runc) = runc else {
        println!("skipped: runc is not installed (apt-get install runc)");
        return;
    };
    if !reexec_tests::is_root() {
        println!("skipped: runc's own config (runc spec) is for root");
        return;
    }
    let user = &TestUser::all(NS_RUNTIME)[0];
    let bundle = or_skip!(Bundle::new(user, "true"), "no root filesystem");
    let rootfs = or_skip!(support::rootfs(), "no root filesystem");
    let config = bundle.path().join("config.json");
    std::fs::remove_file(&config).unwrap();
    let spec = Command::new(runc)
        .args(["spec", "--bundle"])
        .arg(bundle.path())
        .output()
        .unwrap();
    assert_exit_code("runc spec", &spec, 0);
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    json["root"]["path"] = rootfs.to_str().unwrap().into();
    json["process"]["terminal"] = false.into();
    // Relative: runc makes (and removes) it below the test's own cgroup, not at the root.
    json["linux"]["cgroupsPath"] = format!("ns-runtime-test-runc-{}", std::process::id()).into();
    json["process"]["args"] = serde_json::json!(["sh", "-c", "echo $$ $(hostname); exit 7"]);
    std::fs::write(&config, json.to_string()).unwrap();
    let path = bundle.path().to_str().unwrap().to_owned();
    let runc_root = bundle.path().join("runc-state");
    let under_runc = output_with_timeout(
        Command::new(runc)
            .arg("--root")
            .arg(&runc_root)
            .args(["run", "--bundle", &path, "same"])
            .stdin(Stdio::null()),
        TIMEOUT,
    );
    let under_ns_runtime = bundle.output(&["run", "--bundle", &path, "same"]);
    // runc's command is PID 1; ours is PID 2 under the init, as `docker --init`.
    assert_exit_code("runc", &under_runc, 7);
    assert_eq!(
        stdout_text(&under_runc),
        "1 runc\n",
        "{}",
        describe(&under_runc)
    );
    assert_exit_code("ns-runtime", &under_ns_runtime, 7);
    assert_eq!(stdout_text(&under_ns_runtime), "2 runc\n");

    // `state` of a created container: every key runc gives, with the same values where
    // they can be the same.
    let runc_at = |args: &[&str]| {
        let mut command = Command::new(runc);
        command.arg("--root").arg(&runc_root).args(args);
        command
    };
    let created = runc_at(&["create", "--bundle", &path, "c"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(created.success(), "runc create");
    let runc_state: serde_json::Value =
        serde_json::from_slice(&output_with_timeout(&mut runc_at(&["state", "c"]), TIMEOUT).stdout)
            .unwrap();
    assert!(
        runc_at(&["delete", "--force", "c"])
            .status()
            .unwrap()
            .success()
    );
    bundle.create_ok("c");
    let ours = bundle.state("c");
    bundle.succeeds(&["delete", "c"]);
    for (key, value) in runc_state.as_object().unwrap() {
        assert!(
            ours.get(key).is_some(),
            "{key} missing: {ours} against runc's {runc_state}"
        );
        if ["id", "status", "bundle", "rootfs", "owner"].contains(&key.as_str()) {
            assert_eq!(&ours[key], value, "{key}");
        }
    }
    bundle.assert_nothing_left("ns-runtime");
}
