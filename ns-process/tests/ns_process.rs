//! ns-process end to end: the real binary, real namespaces, as root and as uid 65534.

use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::Duration;

use reexec_tests::{TempDir, as_root_and_unprivileged, describe, stdout_text};

const NS_PROCESS: &str = env!("CARGO_BIN_EXE_ns-process");
const TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn the_command_runs_as_root_in_a_new_pid_namespace() {
    as_root_and_unprivileged(
        NS_PROCESS,
        TIMEOUT,
        &["--", "sh", "-c", "id; echo pid=$$"],
        |label, output| {
            let text = stdout_text(output);
            assert!(output.status.success(), "{label}: {}", describe(output));
            assert!(text.contains("uid=0(root) gid=0(root)"), "{label}: {text}");
            // PID 1 is ns-process's init; the command is the next process.
            assert!(text.contains("pid=2\n"), "{label}: {text}");
        },
    );
}

#[test]
fn all_six_namespaces_differ_from_the_callers() {
    let script =
        "for n in user mnt uts ipc pid net; do echo $n=$(stat -L -c %i /proc/self/ns/$n); done";
    as_root_and_unprivileged(
        NS_PROCESS,
        TIMEOUT,
        &["--", "sh", "-c", script],
        |label, output| {
            let text = stdout_text(output);
            assert!(output.status.success(), "{label}: {}", describe(output));
            for name in ["user", "mnt", "uts", "ipc", "pid", "net"] {
                let ours = std::fs::metadata(format!("/proc/self/ns/{name}"))
                    .unwrap()
                    .ino();
                let inside = text
                    .lines()
                    .find_map(|line| line.strip_prefix(&format!("{name}=")))
                    .unwrap_or_else(|| panic!("{label}: no {name} in {text}"));
                assert_ne!(
                    inside,
                    ours.to_string(),
                    "{label}: the {name} namespace is the caller's"
                );
            }
        },
    );
}

#[test]
fn exit_statuses_follow_the_command() {
    as_root_and_unprivileged(
        NS_PROCESS,
        TIMEOUT,
        &["--", "sh", "-c", "exit 3"],
        |label, output| {
            assert_eq!(
                output.status.code(),
                Some(3),
                "{label}: {}",
                describe(output)
            );
        },
    );
    as_root_and_unprivileged(
        NS_PROCESS,
        TIMEOUT,
        &["--", "sh", "-c", "kill -TERM $$"],
        |label, output| {
            assert_eq!(
                output.status.code(),
                Some(128 + 15),
                "{label}: {}",
                describe(output)
            );
        },
    );
    as_root_and_unprivileged(
        NS_PROCESS,
        TIMEOUT,
        &["--", "/definitely/not/a/command"],
        |label, output| {
            assert_eq!(
                output.status.code(),
                Some(127),
                "{label}: {}",
                describe(output)
            );
            assert!(
                String::from_utf8_lossy(&output.stderr).contains("not found"),
                "{label}"
            );
        },
    );
    let dir = TempDir::new("not-executable");
    let data = dir.path().join("data");
    std::fs::write(&data, "not a program\n").unwrap();
    as_root_and_unprivileged(
        NS_PROCESS,
        TIMEOUT,
        &["--", data.to_str().unwrap()],
        |label, output| {
            assert_eq!(
                output.status.code(),
                Some(126),
                "{label}: {}",
                describe(output)
            );
        },
    );
}

#[test]
fn bad_arguments_exit_125_with_usage() {
    for args in [&["surprise"][..], &["--bogus"][..], &["--net", "bogus"][..]] {
        reexec_tests::assert_refused(NS_PROCESS, args, 125, "try '--help'");
    }
}

#[test]
fn an_interactive_shell_in_a_terminal() {
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("skipped: tmux is not installed");
        return;
    }
    let server = TmuxServer(TempDir::new("tmux"));
    let tmux = |args: &[&str]| server.run(args);
    let done = server.0.path().join("done");
    let shell_command = format!("{NS_PROCESS}; echo $? > {}", done.display());
    tmux(&["new-session", "-d", "-x", "120", "-y", "30", &shell_command]);
    let screen_shows = |needle: &str| {
        for _ in 0..100 {
            if tmux(&["capture-pane", "-p"]).contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    };
    assert!(
        screen_shows("-[ns-process]- #"),
        "no prompt: {}",
        tmux(&["capture-pane", "-p"])
    );
    tmux(&["send-keys", "echo pid-is-$$; id -u", "Enter"]);
    assert!(
        screen_shows("pid-is-2"),
        "{}",
        tmux(&["capture-pane", "-p"])
    );
    // What the shell prints, not what the terminal echoes of what was typed.
    tmux(&["send-keys", "echo host-is-$(hostname)", "Enter"]);
    assert!(
        screen_shows("host-is-ns-process"),
        "{}",
        tmux(&["capture-pane", "-p"])
    );
    // Ctrl-C reaches the shell's foreground job, and the shell lives on.
    tmux(&["send-keys", "sleep 100", "Enter"]);
    std::thread::sleep(Duration::from_millis(300));
    tmux(&["send-keys", "C-c"]);
    tmux(&["send-keys", "echo still-$((40 + 2))", "Enter"]);
    assert!(
        screen_shows("still-42"),
        "{}",
        tmux(&["capture-pane", "-p"])
    );
    // Job control: a job stopped with Ctrl-Z is listed, resumed in the background, and
    // brought back to the foreground.
    tmux(&[
        "send-keys",
        "sh -c 'sleep 0.5; echo job-$((6 * 7))-done'",
        "Enter",
    ]);
    std::thread::sleep(Duration::from_millis(200));
    tmux(&["send-keys", "C-z"]);
    assert!(screen_shows("Stopped"), "{}", tmux(&["capture-pane", "-p"]));
    std::thread::sleep(Duration::from_millis(600));
    assert!(
        !tmux(&["capture-pane", "-p"]).contains("job-42-done"),
        "the stopped job ran on"
    );
    tmux(&["send-keys", "fg", "Enter"]);
    assert!(
        screen_shows("job-42-done"),
        "{}",
        tmux(&["capture-pane", "-p"])
    );
    tmux(&["send-keys", "exit 4", "Enter"]);
    let mut status = String::new();
    for _ in 0..100 {
        status = std::fs::read_to_string(&done).unwrap_or_default();
        if !status.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        status.trim(),
        "4",
        "the shell's exit status must come through"
    );
}

/// A tmux server on a socket of the test's own, killed when the test ends — also when
/// an assertion fails, so no server, shell or ns-process outlives the test.
struct TmuxServer(TempDir);

impl TmuxServer {
    fn run(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .arg("-S")
            .arg(self.0.path().join("socket"))
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for TmuxServer {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}
