//! ns-process end to end: the real binary, real namespaces, as root and as uid 65534.

use std::time::Duration;

use nix::sys::signal::Signal;
use reexec_tests::procfs::namespace_id;
use reexec_tests::{
    TestUser, as_root_and_unprivileged, assert_exit_code, in_terminal_as_root_and_unprivileged,
    is_raw, output_with_timeout, stderr_text, stdout_text, succeeds_as_root_and_unprivileged,
    temp_dir, terminal_settings, world_writable_dir,
};

const NS_PROCESS: &str = env!("CARGO_BIN_EXE_ns-process");
const TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn the_command_runs_as_root_in_a_new_pid_namespace() {
    succeeds_as_root_and_unprivileged(
        NS_PROCESS,
        TIMEOUT,
        &["--", "sh", "-c", "id; echo pid=$$"],
        |label, text| {
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
    succeeds_as_root_and_unprivileged(
        NS_PROCESS,
        TIMEOUT,
        &["--", "sh", "-c", script],
        |label, text| {
            for name in ["user", "mnt", "uts", "ipc", "pid", "net"] {
                let ours = namespace_id(name).unwrap();
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
    let dir = temp_dir("not-executable");
    let data = dir.path().join("data");
    std::fs::write(&data, "not a program\n").unwrap();
    let data = data.to_str().unwrap();
    for (args, code) in [
        (&["--", "sh", "-c", "exit 3"][..], 3),
        (&["--", "sh", "-c", "kill -TERM $$"][..], 128 + 15),
        (&["--", "/definitely/not/a/command"][..], 127),
        (&["--", data][..], 126),
    ] {
        as_root_and_unprivileged(NS_PROCESS, TIMEOUT, args, |label, output| {
            assert_exit_code(&format!("{label} {args:?}"), output, code);
            if code == 127 {
                assert!(stderr_text(output).contains("not found"), "{label}");
            }
        });
    }
}

#[test]
fn the_command_is_looked_for_as_execvp_looks_for_it() {
    // The init starts the command itself (#14: a child sharing its memory, not std's
    // fork), so it does execvp(3)'s search: in the command's own PATH, past a file that
    // may not be executed, a file of no executable format run by /bin/sh.
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("path-search");
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    for (sub, content, mode) in [
        (&first, "echo refused\n", 0o644),
        (&second, "echo \"found:$0:$1\"\n", 0o755),
    ] {
        std::fs::create_dir(sub).unwrap();
        std::fs::set_permissions(sub, std::fs::Permissions::from_mode(0o755)).unwrap();
        let greet = sub.join("greet");
        std::fs::write(&greet, content).unwrap();
        std::fs::set_permissions(&greet, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let (first, second) = (first.to_str().unwrap(), second.to_str().unwrap());
    let both = format!("PATH={first}:{second}");
    succeeds_as_root_and_unprivileged(
        NS_PROCESS,
        TIMEOUT,
        &["-e", &both, "--", "greet", "hello"],
        |label, text| assert_eq!(text, format!("found:{second}/greet:hello\n"), "{label}"),
    );
    let only_refused = format!("PATH={first}");
    for (args, code) in [
        (&["-e", &only_refused, "--", "greet"][..], 126),
        (&["-e", &both, "--", "no-such-greet"][..], 127),
    ] {
        as_root_and_unprivileged(NS_PROCESS, TIMEOUT, args, |label, output| {
            assert_exit_code(&format!("{label} {args:?}"), output, code);
        });
    }
}

#[test]
fn the_command_starts_with_no_signal_blocked_and_the_callers_ignored_ones() {
    // The init blocks the signals it waits for, and ignores SIGPIPE as std's start does;
    // the command gets neither, but keeps what ns-process's caller ignored, as across
    // execve (here SIGHUP, as nohup leaves it).
    for user in TestUser::all(NS_PROCESS) {
        let mut command = user.command_of("env");
        command
            .arg("--ignore-signal=HUP")
            .arg(user.program())
            .args(["--", "grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"])
            .current_dir("/");
        let output = output_with_timeout(&mut command, TIMEOUT);
        assert_exit_code(user.label(), &output, 0);
        let text = stdout_text(&output);
        let mask = |name: &str| {
            let line = text.lines().find_map(|line| line.strip_prefix(name));
            u64::from_str_radix(line.expect(name).trim(), 16).unwrap()
        };
        assert_eq!(mask("SigBlk:"), 0, "{}: {text}", user.label());
        let ignored = mask("SigIgn:");
        let bit = |signal: Signal| 1u64 << (signal as i32 - 1);
        assert_ne!(ignored & bit(Signal::SIGHUP), 0, "{}: {text}", user.label());
        assert_eq!(
            ignored & bit(Signal::SIGPIPE),
            0,
            "{}: {text}",
            user.label()
        );
    }
}

#[test]
fn bad_arguments_exit_125_with_usage() {
    for args in [&["surprise"][..], &["--bogus"][..], &["--net", "bogus"][..]] {
        reexec_tests::assert_refused(NS_PROCESS, args, 125, "try '--help'");
    }
}

#[test]
fn an_interactive_shell_in_a_terminal() {
    in_terminal_as_root_and_unprivileged(NS_PROCESS, |user, server, work| {
        let label = user.label();
        let run = server.run_recorded(work, &user.command_line());
        server.expect("-[ns-process]- #");
        server.type_line("echo pid-is-$$; id -u");
        server.expect("pid-is-2");
        // What the shell prints, not what the terminal echoes of what was typed.
        server.type_line("echo host-is-$(hostname)");
        server.expect("host-is-ns-process");

        // A terminal of its own: a new pty, also on /dev/console, and the caller's
        // terminal in raw mode meanwhile, every key going through to the pty. The host's
        // devpts, where the pty was made, is covered by the command's private one: the pty
        // is found by its name inside, /dev/console.
        let outer = server.pane_tty();
        server.type_line("echo tty-is-$(tty)");
        server.expect("tty-is-/dev/console");
        assert!(
            !server
                .screen()
                .lines()
                .any(|line| line.trim_end() == format!("tty-is-{outer}")),
            "{label}: the command has the caller's terminal {outer}:\n{}",
            server.screen()
        );
        server.type_line("[ /dev/console -ef /proc/self/fd/0 ] && echo console-is-$((1 + 1))");
        server.expect("console-is-2");
        let during = terminal_settings(&outer);
        assert!(is_raw(&during), "{label}: not raw meanwhile: {during}");

        // The window size follows the caller's terminal, and the foreground job is told.
        let initial = server.pane_size();
        server.type_line("echo size-is-$(stty size)");
        server.expect(&format!("size-is-{initial}"));
        server.type_line(
            r#"sh -c 'trap "echo resized-to-\$(stty size); exit" WINCH; echo waiting-$((2 * 2)); while :; do sleep 0.1; done'"#,
        );
        server.expect("waiting-4");
        server.resize(100, 25);
        let resized = server.pane_size();
        assert_ne!(resized, initial, "{label}: tmux did not resize");
        server.expect(&format!("resized-to-{resized}"));

        // Ctrl-C reaches the shell's foreground job, and the shell lives on.
        server.type_line("sleep 100");
        std::thread::sleep(Duration::from_millis(300));
        server.keys("C-c");
        server.type_line("echo still-$((40 + 2))");
        server.expect("still-42");
        // Job control: a job stopped with Ctrl-Z is listed, resumed in the background,
        // and brought back to the foreground.
        server.type_line("sh -c 'sleep 0.5; echo job-$((6 * 7))-done'");
        std::thread::sleep(Duration::from_millis(200));
        server.keys("C-z");
        server.expect("Stopped");
        std::thread::sleep(Duration::from_millis(600));
        assert!(
            !server.screen().contains("job-42-done"),
            "{label}: the stopped job ran on"
        );
        server.type_line("fg");
        server.expect("job-42-done");

        server.type_line("exit 4");
        assert_eq!(
            run.status(),
            4,
            "{label}: the shell's exit status must come through"
        );
        run.assert_settings_restored(label);
    });
}

#[test]
fn the_callers_terminal_is_restored_however_ns_process_ends() {
    in_terminal_as_root_and_unprivileged(NS_PROCESS, |user, server, _| {
        let label = user.label();
        let ns_process = user.command_line();
        // How ns-process runs, what it shows once the command runs, the signal the test
        // then sends to ns-process, and the status it must end with.
        let sleeper = format!("{ns_process} -- sh -c 'echo running-$((1 + 1)); exec sleep 100'");
        let cases = [
            (
                format!("{ns_process} -- sh -c 'kill -KILL $$'"),
                None,
                128 + 9,
            ),
            (
                sleeper.clone(),
                Some(("running-2", Signal::SIGTERM)),
                128 + 15,
            ),
            (sleeper, Some(("running-2", Signal::SIGINT)), 128 + 2),
            // An interactive shell ignores SIGTERM and SIGINT, but not SIGHUP.
            (
                ns_process,
                Some(("-[ns-process]- #", Signal::SIGHUP)),
                128 + 1,
            ),
        ];
        for (command, then, expected) in cases {
            let work = world_writable_dir("restored");
            let run = server.run_recorded(work.path(), &command);
            let signal = then.map(|(running, signal)| {
                server.expect(running);
                let outer = terminal_settings(&server.pane_tty());
                assert!(is_raw(&outer), "{label}: {command}: not raw: {outer}");
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(run.pid()), signal).unwrap();
                signal
            });
            assert_eq!(run.status(), expected, "{label}: {command} {signal:?}");
            run.assert_settings_restored(&format!("{label}: {command} {signal:?}"));
        }
    });
}

#[test]
fn redirected_output_stays_redirected_in_an_interactive_run() {
    in_terminal_as_root_and_unprivileged(NS_PROCESS, |user, server, work| {
        let label = user.label();
        let script = "[ -t 0 ] && echo stdin-is-a-terminal; [ -t 1 ] || echo stdout-is-not; tty";
        let run = server.run_recorded(
            work,
            &format!("{} -- sh -c '{script}' > out", user.command_line()),
        );
        assert_eq!(run.status(), 0, "{label}");
        let out = std::fs::read_to_string(work.join("out")).unwrap();
        assert!(
            out == "stdin-is-a-terminal\nstdout-is-not\n/dev/console\n",
            "{label}: {out}"
        );
        run.assert_settings_restored(label);
    });
}

#[test]
fn everything_the_command_wrote_reaches_the_terminal() {
    in_terminal_as_root_and_unprivileged(NS_PROCESS, |user, server, work| {
        let label = user.label();
        // Output that is still in the pty when the command, and its init, have ended.
        let run = server.run_recorded(
            work,
            &format!(
                "{} -- sh -c 'seq 1 30000; printf the-end-%s $((1 + 1))'",
                user.command_line()
            ),
        );
        assert_eq!(run.status(), 0, "{label}");
        server.expect("29999\n30000\nthe-end-2");
    });
}

#[test]
fn the_init_is_a_copy_of_ns_process_unless_asked_to_re_execute() {
    // What /proc/1/comm shows inside tells the two apart: a copy names itself after its
    // entry, a re-executed init is "exe" (/proc/self/exe). Both set up alike, and both
    // show the entry's name alone as /proc/1/cmdline, none of the caller's command line.
    // Unprivileged, root inside is someone else outside, and the init is re-executed
    // either way (`init_may_be_a_copy` says why).
    let script = "tr '\\0' ' ' < /proc/1/cmdline; echo; cat /proc/1/comm; hostname; \
                  cat /proc/1/environ >/dev/null 2>&1 && echo environ-readable; \
                  grep -q '^proc /proc ' /proc/mounts && echo proc-mounted";
    for user in reexec_tests::TestUser::all(NS_PROCESS) {
        let label = user.label();
        let copied = if user.is_root() {
            "nsInitialisatio"
        } else {
            "exe"
        };
        for (init, comm) in [("", copied), ("exec", "exe")] {
            let mut command = user.command();
            command
                .args(["--hostname", "inside", "-e", "HOST_ONLY_WORD=1", "--"])
                .args(["sh", "-c", script])
                .env("NS_PROCESS_INIT", init);
            let output = reexec_tests::output_with_timeout(&mut command, TIMEOUT);
            assert_exit_code(label, &output, 0);
            let text = String::from_utf8_lossy(&output.stdout);
            let lines: Vec<&str> = text.lines().collect();
            let context = format!("{label}, NS_PROCESS_INIT={init:?}: {text}");
            assert_eq!(
                lines.first().map(|line| line.trim_end()),
                Some("nsInitialisation"),
                "{context}"
            );
            assert!(!text.contains("HOST_ONLY_WORD"), "{context}");
            assert_eq!(lines.get(1), Some(&comm), "{context}");
            assert_eq!(lines.get(2), Some(&"inside"), "{context}");
            assert!(!lines.contains(&"environ-readable"), "{context}");
            assert!(lines.contains(&"proc-mounted"), "{context}");
        }
    }
}
