//! ns-process as a tool: the series' own checks (tags 4.0 – 6.0), the init's duties, and
//! every bad input. Real namespaces, real mounts, as root and as uid 65534.

use std::process::Command;
use std::time::{Duration, Instant};

use reexec_tests::procfs::namespace_id;
use reexec_tests::{
    TestUser, as_root_and_unprivileged, assert_exit_code, assert_failed_with, describe,
    in_terminal_as_root_and_unprivileged, mount_table, or_skip, output_with_timeout, stderr_text,
    stdout_text, succeeds_as_root_and_unprivileged, temp_dir,
};

mod support;

use support::rootfs;

const NS_PROCESS: &str = env!("CARGO_BIN_EXE_ns-process");
const TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn hostname_proc_and_loopback_are_set_up() {
    let host = nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let before = mount_table();
    succeeds_as_root_and_unprivileged(
        NS_PROCESS,
        TIMEOUT,
        &["--", "sh", "-c", "hostname; mount; ip -o link show lo"],
        |label, text| {
            let mut lines = text.lines();
            assert_eq!(lines.next(), Some("ns-process"), "{label}: {text}");
            assert_ne!(host, "ns-process");
            assert!(text.contains("proc on /proc type proc"), "{label}: {text}");
            assert!(
                text.contains("state UNKNOWN") || text.contains(",UP"),
                "lo must be up: {label}: {text}"
            );
        },
    );
    succeeds_as_root_and_unprivileged(
        NS_PROCESS,
        TIMEOUT,
        &["--hostname", "box-1.test", "--", "hostname"],
        |label, text| assert_eq!(text, "box-1.test\n", "{label}"),
    );
    assert_eq!(before, mount_table(), "the host's mount table changed");
}

#[test]
fn a_rootfs_is_pivoted_into_and_nothing_leaks() {
    let rootfs = or_skip!(rootfs(), "no root filesystem");
    let before = mount_table();
    let rootfs_arg = rootfs.to_str().unwrap();
    let script = "cat /etc/ns-process-rootfs; ls -d /.pivot_root 2>&1; mount; hostname; echo > /dev/null && echo dev-null-works";
    succeeds_as_root_and_unprivileged(
        NS_PROCESS,
        TIMEOUT,
        &["--rootfs", rootfs_arg, "--", "/bin/sh", "-c", script],
        |label, text| {
            assert!(
                text.starts_with("ns-process-rootfs\n"),
                "a file of the rootfs is visible: {label}: {text}"
            );
            assert!(
                text.contains("/.pivot_root: No such file or directory"),
                "{label}: {text}"
            );
            assert!(text.contains("proc on /proc type proc"), "{label}: {text}");
            assert!(text.contains("\nns-process\n"), "{label}: {text}");
            assert!(text.contains("dev-null-works"), "{label}: {text}");
            assert!(
                !text.contains("/work"),
                "the host's mounts must be gone: {label}: {text}"
            );
        },
    );
    assert!(!rootfs.join(".pivot_root").exists());
    assert_eq!(before, mount_table(), "the host's mount table changed");
}

#[test]
fn an_interactive_run_in_a_rootfs_has_its_pty_on_dev_console() {
    let rootfs = or_skip!(rootfs(), "no root filesystem");
    let before = mount_table();
    let script = "[ /dev/console -ef /proc/self/fd/0 ] && echo console-is-the-pty; \
                  [ -e /dev/console ] && [ -t 0 ] && echo stdin-is-a-terminal";
    in_terminal_as_root_and_unprivileged(NS_PROCESS, |user, server, work| {
        let label = user.label();
        let run = server.run_recorded(
            work,
            &format!(
                "{} --rootfs {} -- /bin/sh -c '{script}' > out",
                user.command_line(),
                rootfs.display()
            ),
        );
        assert_eq!(run.status(), 0, "{label}");
        let out = std::fs::read_to_string(work.join("out")).unwrap();
        assert_eq!(out, "console-is-the-pty\nstdin-is-a-terminal\n", "{label}");
    });
    assert_eq!(before, mount_table(), "the host's mount table changed");
}

#[test]
fn the_init_reaps_orphans() {
    // An orphan re-parented to the init ends while the command still runs: it must not
    // stay a zombie.
    let script = "(sleep 0.2 &); sleep 0.8; cat /proc/[0-9]*/stat | cut -d' ' -f1-3";
    succeeds_as_root_and_unprivileged(
        NS_PROCESS,
        TIMEOUT,
        &["--", "sh", "-c", script],
        |label, text| {
            assert!(
                !text.lines().any(|line| line.ends_with(" Z")),
                "a zombie remains: {label}: {text}"
            );
        },
    );
    // A command that leaves a background child behind: ns-process ends with it.
    let started = Instant::now();
    as_root_and_unprivileged(
        NS_PROCESS,
        TIMEOUT,
        &["--", "sh", "-c", "sleep 30 & exit 5"],
        |label, output| assert_exit_code(label, output, 5),
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "ns-process waited for the orphan"
    );
}

/// Starts ns-process running `script` in `sh`, waits for its first line, sends `signal`
/// to ns-process itself, and returns the exit code.
fn code_after_signal(script: &str, signal: nix::sys::signal::Signal) -> Option<i32> {
    let mut child =
        reexec_tests::spawn_until_ready(Command::new(NS_PROCESS).args(["--", "sh", "-c", script]));
    // Once sleep runs: sh -c catches SIGINT until it execs, and one caught on the way
    // there is lost (under load, now and then).
    let deadline = Instant::now() + TIMEOUT;
    while !reexec_tests::procfs::descendants(child.id())
        .iter()
        .any(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm == "sleep\n")
        })
    {
        assert!(Instant::now() < deadline, "sleep never ran: {script}");
        std::thread::sleep(Duration::from_millis(5));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("ns-process did not end after {signal}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn signals_sent_to_ns_process_reach_the_command() {
    use nix::sys::signal::Signal;
    assert_eq!(
        code_after_signal("echo ready; exec sleep 30", Signal::SIGTERM),
        Some(128 + 15)
    );
    assert_eq!(
        code_after_signal("echo ready; exec sleep 30", Signal::SIGINT),
        Some(128 + 2)
    );
    assert_eq!(
        code_after_signal("echo ready; exec sleep 30", Signal::SIGHUP),
        Some(128 + 1)
    );
    let trapping = "trap 'exit 7' USR1; echo ready; sleep 30 & wait";
    assert_eq!(code_after_signal(trapping, Signal::SIGUSR1), Some(7));
    let trapping = "trap 'exit 8' USR2; echo ready; sleep 30 & wait";
    assert_eq!(code_after_signal(trapping, Signal::SIGUSR2), Some(8));
}

fn assert_refused(args: &[&str], expected: &str) {
    reexec_tests::assert_refused(NS_PROCESS, args, 125, expected);
}

#[test]
fn bad_input_is_refused_with_125_and_a_reason() {
    let dir = temp_dir("bad-input");
    let empty = dir.path().join("empty-rootfs");
    std::fs::create_dir(&empty).unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let missing = dir.path().join("missing");

    assert_refused(
        &["--rootfs", missing.to_str().unwrap()],
        "scripts/make-rootfs",
    );
    assert_refused(&["--rootfs", file.to_str().unwrap()], "is not a directory");
    assert_refused(&["--rootfs", empty.to_str().unwrap()], "has no /bin/sh");
    // Refused before anything is made in it: no `proc` is left behind.
    assert_refused(
        &["--rootfs", empty.to_str().unwrap(), "--", "/x"],
        "dev is missing: create it, or rebuild the rootfs with scripts/make-rootfs",
    );
    assert_eq!(
        std::fs::read_dir(&empty).unwrap().count(),
        0,
        "left in the rootfs"
    );
    assert_refused(&["--hostname", &"x".repeat(65)], "longer than 64 bytes");
    assert_refused(&["--hostname", "under_score"], "'_' is not allowed");
    assert_refused(
        &["--hostname=-lead"],
        "must be non-empty and not start or end with '-'",
    );
    assert_refused(&["--share", "uts", "--hostname", "x"], "drop --share uts");
    assert_refused(&["--share", "mount", "--rootfs", "/"], "drop --share mount");
    assert_refused(&["--env", "NOEQUALS"], "write KEY=VALUE");
    assert_refused(
        &["--no-such-option"],
        "unexpected argument '--no-such-option'",
    );
    assert_refused(&["--net", "nowhere"], "invalid value 'nowhere'");
    for internal in [
        "--internal-take-terminal",
        "--internal-outer-namespaces=uts:1",
        "--internal-started-fd=3",
        "--internal-seccomp-fd=3",
    ] {
        assert_refused(
            &[internal],
            "--internal-* options are for ns-process's own init",
        );
    }
}

#[test]
fn unavailable_user_namespaces_are_refused_with_the_setting_to_look_at() {
    // The limit is per user namespace: set it to 0 in one of our own, never the host's.
    let script =
        format!("echo 0 > /proc/sys/user/max_user_namespaces && exec {NS_PROCESS} -- true");
    let output = output_with_timeout(
        Command::new("unshare").args(["-Ur", "sh", "-c", &script]),
        TIMEOUT,
    );
    assert_failed_with(
        "max_user_namespaces 0",
        &output,
        125,
        &["user.max_user_namespaces"],
    );
}

#[test]
fn the_environment_starts_clean() {
    let output = output_with_timeout(
        Command::new(NS_PROCESS)
            .args(["--env", "GREETING=hello world", "--", "env"])
            .env("SECRET_OF_THE_CALLER", "must not leak")
            .env("TERM", "xterm-test"),
        TIMEOUT,
    );
    let mut vars: Vec<&str> = std::str::from_utf8(&output.stdout)
        .unwrap()
        .lines()
        .collect();
    vars.sort();
    // Without --rootfs, /etc/passwd inside is the host's: root's entry gives the rest.
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let root: Vec<&str> = passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.len() == 7 && fields[2] == "0")
        .expect("the host's /etc/passwd has an entry for uid 0");
    let (home, user, shell) = (
        format!("HOME={}", root[5]),
        format!("USER={}", root[0]),
        format!("SHELL={}", root[6]),
    );
    let mut expected = vec![
        "GREETING=hello world",
        &home,
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "PS1=-[ns-process]- # ",
        &shell,
        "TERM=xterm-test",
        &user,
    ];
    expected.sort();
    assert_eq!(vars, expected, "{}", describe(&output));
}

/// HOME, USER and SHELL as the command inside prints them.
const PRINT_USER: &str = "echo \"$HOME $USER $SHELL\"";

#[test]
fn a_rootfs_passwd_of_any_kind_gives_an_entry_or_the_defaults_and_never_blocks() {
    // A rootfs of the test's own, whose /etc/passwd it replaces; its owner could.
    let dir = temp_dir("passwd");
    let rootfs = dir.path().join("rootfs");
    let output = output_with_timeout(
        Command::new("bash")
            .arg(reexec_tests::MAKE_ROOTFS)
            .arg(&rootfs),
        TIMEOUT,
    );
    assert!(
        output.status.success(),
        "make-rootfs: {}",
        describe(&output)
    );
    let passwd = rootfs.join("etc/passwd");
    let rootfs_arg = rootfs.to_str().unwrap();
    let args = ["--rootfs", rootfs_arg, "--", "sh", "-c", PRINT_USER];
    let expect = |what: &str, printed: &str, warning: Option<&str>| {
        as_root_and_unprivileged(NS_PROCESS, TIMEOUT, &args, |label, output| {
            assert_exit_code(&format!("{label}, {what}"), output, 0);
            assert_eq!(stdout_text(output), printed, "{label}, {what}");
            if let Some(warning) = warning {
                assert!(
                    stderr_text(output).contains(warning),
                    "{label}, {what}: {}",
                    describe(output)
                );
            }
        });
    };
    let replace = |make: &dyn Fn(&std::path::Path)| {
        std::fs::remove_file(&passwd).unwrap();
        make(&passwd);
    };

    // Lines that are no entry are passed over; the first entry of uid 0 counts.
    replace(&|path| {
        std::fs::write(
            path,
            "garbage\n\
             root:x:0\n\
             relative:x:0:0::home:/bin/sh\n\
             admin:x:0:0:Admin:/home/admin:/bin/ash\n\
             root:x:0:0:root:/root:/bin/sh\n",
        )
        .unwrap()
    });
    expect(
        "an entry after garbage",
        "/home/admin admin /bin/ash\n",
        None,
    );
    // A FIFO would block a reader until someone writes it: only regular files are read.
    replace(&|path| {
        nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap()
    });
    expect(
        "a FIFO",
        "/root root /bin/sh\n",
        Some("/etc/passwd is not a regular file"),
    );
    // More than the init will hold.
    replace(&|path| {
        let line = "user:x:1000:1000::/home/user:/bin/sh\n";
        std::fs::write(path, line.repeat((2 << 20) / line.len())).unwrap()
    });
    expect(
        "2 MiB",
        "/root root /bin/sh\n",
        Some("/etc/passwd is longer than 1048576 bytes"),
    );
    // A magic link of /proc leads anywhere, even to the init's own descriptors.
    replace(&|path| std::os::unix::fs::symlink("/proc/self/fd/0", path).unwrap());
    expect(
        "a link into /proc",
        "/root root /bin/sh\n",
        Some("open /etc/passwd"),
    );
    // --user 0 takes its group from the entry: one the namespace does not map is refused.
    replace(&|path| std::fs::write(path, "root:x:0:4000000000:root:/root:/bin/sh\n").unwrap());
    expect("root in group 4000000000", "/root root /bin/sh\n", None);
    let args = ["--rootfs", rootfs_arg, "--user", "0", "--", "true"];
    as_root_and_unprivileged(NS_PROCESS, TIMEOUT, &args, |label, output| {
        assert_failed_with(
            label,
            output,
            125,
            &["--user 0 (its group in /etc/passwd): gid 4000000000 is not mapped"],
        );
    });
    // None at all: the defaults, without a word.
    std::fs::remove_file(&passwd).unwrap();
    expect("no passwd", "/root root /bin/sh\n", None);
}

#[test]
fn user_names_are_looked_up_in_the_rootfs_own_passwd_and_group() {
    let dir = temp_dir("user-names");
    let rootfs = dir.path().join("rootfs");
    or_skip!(
        reexec_tests::busybox_rootfs_copy(env!("CARGO_TARGET_TMPDIR"), &rootfs, (0, 0)),
        "no root filesystem"
    );
    // Names the host has no user or group of, and none of the host's own (nobody,
    // daemon): the rootfs's files are the only ones read. toor is a second name of uid 0,
    // with its own home, as BSD's: found by its name, not as the first entry of its uid.
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n\
         toor:x:0:0:toor:/toor:/bin/sh\n\
         nszed:x:4242:4343:zed:/home/nszed:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        rootfs.join("etc/group"),
        "root:x:0:\nnszgroup:x:4444:\nnszed:x:4343:\n",
    )
    .unwrap();
    assert!(
        !std::fs::read_to_string("/etc/passwd")
            .unwrap_or_default()
            .contains("nszed:"),
        "the host must not have the rootfs's user"
    );
    let rootfs_arg = rootfs.to_str().unwrap();
    let run = |user: &str, script: &str| {
        let args = [
            "--rootfs", rootfs_arg, "--user", user, "--", "sh", "-c", script,
        ];
        args.map(str::to_owned)
    };
    let ids_and_env = "echo \"$(id -u):$(id -g) $HOME $USER\"";
    let before = mount_table();
    for (user, printed) in [
        ("root", "0:0 /root root\n"),
        ("toor", "0:0 /toor toor\n"),
        ("toor:root", "0:0 /toor toor\n"),
        ("0:root", "0:0 /root root\n"),
    ] {
        let args = run(user, ids_and_env);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        as_root_and_unprivileged(NS_PROCESS, TIMEOUT, &args, |label, output| {
            assert_exit_code(&format!("{label}: --user {user}"), output, 0);
            assert_eq!(stdout_text(output), printed, "{label}: --user {user}");
        });
    }
    // A name the rootfs lacks is refused, naming the file it was looked up in; so is a
    // name the host has (nobody), since the host's files are never read.
    let passwd = format!("/etc/passwd of the rootfs {rootfs_arg}");
    let group = format!("/etc/group of the rootfs {rootfs_arg}");
    for (user, expected) in [
        (
            "nobody",
            format!("--user nobody: no user \"nobody\" in {passwd}"),
        ),
        (
            "nosuchuser:root",
            format!("--user nosuchuser:root: no user \"nosuchuser\" in {passwd}"),
        ),
        (
            "root:nogroup",
            format!("--user root:nogroup: no group \"nogroup\" in {group}"),
        ),
    ] {
        let args = run(user, "true");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        as_root_and_unprivileged(NS_PROCESS, TIMEOUT, &args, |label, output| {
            assert_failed_with(
                &format!("{label}: --user {user}"),
                output,
                125,
                &[&expected],
            );
        });
    }
    // Run by root, 4242 and 4444 are mapped; by uid 65534 without a range only root is,
    // and the ids the names stand for are refused as numeric ones are.
    for user in TestUser::all(NS_PROCESS) {
        let label = user.label();
        let output = output_with_timeout(user.command().args(run("nszed", ids_and_env)), TIMEOUT);
        let grouped = output_with_timeout(
            user.command().args(run("nszed:nszgroup", "id -u; id -g")),
            TIMEOUT,
        );
        if user.is_root() || output.status.code() != Some(125) {
            assert_exit_code(label, &output, 0);
            assert_eq!(
                stdout_text(&output),
                "4242:4343 /home/nszed nszed\n",
                "{label}"
            );
            assert_exit_code(label, &grouped, 0);
            assert_eq!(stdout_text(&grouped), "4242\n4444\n", "{label}");
        } else {
            assert_failed_with(
                label,
                &output,
                125,
                &["--user nszed (uid 4242 in /etc/passwd): uid 4242 is not mapped"],
            );
            let root_in_group =
                output_with_timeout(user.command().args(run("root:nszgroup", "true")), TIMEOUT);
            assert_failed_with(
                label,
                &root_in_group,
                125,
                &["--user root:nszgroup (gid 4444 in /etc/group): gid 4444 is not mapped"],
            );
        }
    }
    assert_eq!(before, mount_table(), "a mount was left behind");
}

#[test]
fn shared_namespaces_stay_the_callers() {
    let ours = |name: &str| namespace_id(name).unwrap().to_string();
    let script = "for n in ipc net uts; do echo $(stat -L -c %i /proc/self/ns/$n); done";
    succeeds_as_root_and_unprivileged(
        NS_PROCESS,
        TIMEOUT,
        &["--share", "ipc", "--net", "host", "--", "sh", "-c", script],
        |label, text| {
            let inodes: Vec<&str> = text.lines().collect();
            assert_eq!(inodes.len(), 3, "{label}: {text}");
            assert_eq!(inodes[0], ours("ipc"), "{label}");
            assert_eq!(inodes[1], ours("net"), "{label}");
            assert_ne!(inodes[2], ours("uts"), "{label}");
        },
    );
}

#[test]
fn verbose_prints_each_step() {
    let output = output_with_timeout(Command::new(NS_PROCESS).args(["-v", "--", "true"]), TIMEOUT);
    let text = stderr_text(&output);
    let steps = [
        "making every mount private",
        "setting the hostname",
        "mounting a new proc",
        "bringing lo up",
        "running true",
    ];
    let mut at = 0;
    for step in steps {
        let found = text[at..]
            .find(step)
            .unwrap_or_else(|| panic!("{step:?} missing or out of order in:\n{text}"));
        at += found;
    }
}
