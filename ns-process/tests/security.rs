//! What the command inside ns-process can't do, and what a killed ns-process leaves
//! behind: nothing. Host resources a test tries to touch are always stand-ins it made
//! itself (a network or mount namespace of its own), never the machine's.

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use reexec_tests::procfs::{descendants, is_running};
use reexec_tests::{
    DENIED_GROUP, SubordinateIdFiles, TestUser, as_root_and_unprivileged, describe,
    file_denied_to_group, in_terminal_as_root_and_unprivileged, is_root, mount_table, or_skip,
    output_with_timeout, skip_unless, stdout_text, temp_dir,
};

const NS_PROCESS: &str = env!("CARGO_BIN_EXE_ns-process");
const TIMEOUT: Duration = Duration::from_secs(60);

fn run_sh_in(unshare_flags: &[&str], script: &str) -> Output {
    let script = format!("NS_PROCESS={NS_PROCESS}; {script}");
    output_with_timeout(
        Command::new("unshare")
            .args(unshare_flags)
            .args(["sh", "-c", &script]),
        TIMEOUT,
    )
}

#[test]
fn the_command_has_no_capability_over_the_callers_namespaces() {
    skip_unless!(
        is_root(),
        "the stand-in host namespaces are made with root's unshare"
    );
    // A network namespace owned by the caller's user namespace stands in for the host's:
    // the caller may add a link there, the command inside ns-process (sharing it) may not.
    let output = run_sh_in(
        &["--net"],
        r#"ip link add caller0 type veth peer name caller1 && echo caller-may
           $NS_PROCESS --net host -- ip link add inside0 type veth peer name inside1 2>&1 || echo inside-refused
           ip -o link | cut -d: -f2 | tr -d '\n'; echo"#,
    );
    let out = stdout_text(&output);
    assert!(
        out.contains("caller-may"),
        "the stand-in must allow the caller: {}",
        describe(&output)
    );
    assert!(
        out.contains("Operation not permitted") && out.contains("inside-refused"),
        "{}",
        describe(&output)
    );
    assert!(!out.contains("inside0"), "{out}");

    // Likewise a mount namespace of the test's own, shared with the command.
    let output = run_sh_in(
        &["--mount", "--propagation", "private"],
        r#"mount -t tmpfs caller /mnt && umount /mnt && echo caller-may
           $NS_PROCESS --share mount -- mount -t tmpfs inside /mnt 2>&1 || echo inside-refused"#,
    );
    let out = stdout_text(&output);
    assert!(out.contains("caller-may"), "{}", describe(&output));
    assert!(out.contains("inside-refused"), "{}", describe(&output));
}

#[test]
fn the_command_runs_with_no_new_privs() {
    let check = |label: &str, output: &Output| {
        assert!(
            stdout_text(output).contains("NoNewPrivs:\t1"),
            "{label}: {}",
            describe(output)
        );
    };
    let args = ["--", "grep", "NoNewPrivs", "/proc/self/status"];
    as_root_and_unprivileged(NS_PROCESS, TIMEOUT, &args, check);
}

#[test]
fn supplementary_groups_cannot_be_dropped_to_get_around_a_denial() {
    skip_unless!(
        is_root(),
        "giving a process a supplementary group, and binding over /etc/subuid, need root"
    );
    // Owned by someone else, readable by others but not by its group: a member of the
    // group is denied, and "others" would let it in if it could shed the group. Neither
    // the owner nor the group is mapped inside, so no capability there overrides the
    // denial.
    //
    // The caller is uid 65534 without a range in /etc/subuid (an empty copy bound over
    // the file): only its own ids are mapped, and the kernel keeps setgroups denied.
    // Run by root, ids 0-65535 are mapped and setgroups allowed: root inside reads such a
    // file outright (CAP_DAC_OVERRIDE over mapped ids), as root outside does; and with a
    // range, newgidmap allows setgroups, as /etc/subgid grants (SECURITY.md, "Ids").
    let (_dir, secret) = file_denied_to_group("setgroups", "secret\n");
    let secret = secret.to_str().unwrap();
    let files = or_skip!(SubordinateIdFiles::with(""), "no subordinate id files");
    let nobody = or_skip!(TestUser::unprivileged(NS_PROCESS), "no run as uid 65534");

    // That the stand-in works — a user namespace with setgroups allowed does shed the
    // group and read the file — is shown by the reexec tests'
    // `setgroups_allowed_sheds_a_group_and_denied_does_not`.
    let script = format!(
        "cat /proc/self/setgroups; cat {secret} 2>&1; setpriv --clear-groups cat {secret} 2>&1; echo done"
    );
    let inside = output_with_timeout(
        files
            .command(&[DENIED_GROUP], nobody.program())
            .args(["--", "sh", "-c", &script]),
        TIMEOUT,
    );
    let out = stdout_text(&inside);
    assert!(out.starts_with("deny\n"), "{}", describe(&inside));
    assert!(
        !out.contains("secret\n"),
        "the group's denial was bypassed: {}",
        describe(&inside)
    );
    assert!(
        out.contains("Permission denied"),
        "reading must be denied: {}",
        describe(&inside)
    );
    assert!(
        out.contains("setgroups failed"),
        "shedding the group must fail: {}",
        describe(&inside)
    );
    assert!(out.contains("done"), "{}", describe(&inside));
}

fn sha_of(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn nothing_inside_can_open_the_ns_process_binary_for_writing() {
    // The CVE-2019-5736 pattern: through the init's /proc/PID/exe (PID 1 inside), whose
    // /proc/self/exe it is, directly or by reopening an fd, as root-run ns-process too.
    let dir = temp_dir("cve-2019-5736");
    let binary = dir.path().join("ns-process");
    reexec_tests::copy_executable(std::path::Path::new(NS_PROCESS), &binary);
    let binary = binary.to_str().unwrap();
    let before = sha_of(binary);
    let script = r#"
        for target in /proc/1/exe; do
          (exec 3>>"$target") 2>/dev/null && echo "opened $target for appending"
          (exec 3<>"$target") 2>/dev/null && echo "opened $target for reading and writing"
          (exec 3<"$target" && exec 4>>/proc/self/fd/3) 2>/dev/null && echo "reopened $target for writing"
          echo overwritten 2>/dev/null > "$target" && echo "truncated $target"
        done
        echo tried"#;
    let output = output_with_timeout(
        Command::new(binary).args(["--", "sh", "-c", script]),
        TIMEOUT,
    );
    let out = stdout_text(&output);
    assert!(out.contains("tried"), "{}", describe(&output));
    assert!(
        !out.contains("opened") && !out.contains("truncated"),
        "{}",
        describe(&output)
    );
    assert_eq!(before, sha_of(binary), "the binary changed");
}

#[test]
fn a_sigkilled_ns_process_leaves_no_process_and_no_mount_behind() {
    let mounts_before = mount_table();
    let mut child = reexec_tests::spawn_until_ready(Command::new(NS_PROCESS).args([
        "--",
        "sh",
        "-c",
        "sleep 100 & (sleep 100 &) ; echo ready; wait",
    ]));
    let inside = descendants(child.id());
    assert!(
        inside.len() >= 4,
        "init, sh and two sleeps expected, found {inside:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while inside.iter().any(|&pid| is_running(pid)) {
        if Instant::now() > deadline {
            let alive: Vec<u32> = inside
                .iter()
                .copied()
                .filter(|&pid| is_running(pid))
                .collect();
            for &pid in &alive {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            panic!("processes outlived ns-process: {alive:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(mounts_before, mount_table());
}

/// Pushes `touch DIR/pwned-RUN-TARGET` and a newline, a character at a time with
/// TIOCSTI, into the input of every terminal it can reach — its controlling terminal
/// (`/dev/tty`), its stdin, stdout and stderr, and the caller's terminal by its path — and
/// records in DIR/result-RUN what each attempt gave, and the device behind its `/dev/tty`
/// (TIOCGDEV: a stat of `/dev/tty` would only give 5,0).
const TIOCSTI_PROBE: &str = r#"
use strict;
use warnings;
my ($dir, $tiocsti, $tiocgdev, $run, $outer) = @ARGV;
open(my $log, '>', "$dir/result-$run") or die "$dir/result-$run: $!";
$log->autoflush(1);
sub inject {
    my ($target, $fh) = @_;
    for my $char (split //, "touch $dir/pwned-$run-$target\n") {
        if (!ioctl($fh, $tiocsti, $char)) {
            print $log "$target=$!\n";
            return;
        }
    }
    print $log "$target=injected\n";
}
if (open(my $tty, '+<', '/dev/tty')) {
    my $device = pack('I', 0);
    if (ioctl($tty, $tiocgdev, $device)) {
        print $log "dev-tty-device=" . unpack('I', $device) . "\n";
    } else {
        print $log "dev-tty-device=$!\n";
    }
    inject('dev-tty', $tty);
} else {
    print $log "dev-tty=open: $!\n";
}
inject('stdin', \*STDIN);
inject('stdout', \*STDOUT);
inject('stderr', \*STDERR);
if (open(my $fh, '+<', $outer)) {
    inject('outer', $fh);
} else {
    print $log "outer=open: $!\n";
}
print $log "end\n";
"#;

#[test]
fn tiocsti_from_inside_never_reaches_the_callers_shell() {
    // Bubblewrap's CVE-2017-5226, for real: a command that pushes a line into its caller's
    // terminal, which the caller's shell runs once ns-process has exited.
    if Command::new("perl").arg("-e1").output().is_err() {
        println!("skipped: the probe is a perl script, and perl is missing");
        return;
    }
    let legacy_tiocsti = std::fs::read_to_string("/proc/sys/dev/tty/legacy_tiocsti")
        .map(|value| value.trim() == "1")
        .unwrap_or(true);
    in_terminal_as_root_and_unprivileged(NS_PROCESS, |user, server, work| {
        let label = user.label();
        let dir = work.display().to_string();
        std::fs::write(work.join("probe.pl"), TIOCSTI_PROBE).unwrap();
        // The caller: an interactive shell in a terminal, reading what is typed into it.
        server.start(work, "env PS1='outer$ ' sh -i");
        server.expect("outer$");
        let outer = server.pane_tty();
        let outer_device = std::fs::metadata(&outer).unwrap().rdev();
        let probe = |run: &str| {
            format!(
                "perl {dir}/probe.pl {dir} {} {} {run} {outer}",
                nix::libc::TIOCSTI,
                nix::libc::TIOCGDEV
            )
        };
        let ns_process = user.command_line();
        let runs = [
            // Without ns-process: the attack works, and the caller's shell runs the line.
            ("control", format!("{}{}", user.prefix(), probe("control"))),
            // Interactive: the command's terminal is a pty of its own.
            (
                "interactive",
                format!("{ns_process} -- {}", probe("interactive")),
            ),
            // Not interactive: no terminal, and stdout the caller's terminal still.
            (
                "detached",
                format!("{ns_process} -- {} < /dev/null", probe("detached")),
            ),
        ];
        for (run, line) in &runs {
            server.type_line(&format!("{line}; echo finished-{run}-$((6 * 7))"));
            server.expect(&format!("finished-{run}-42"));
            // Whatever was pushed into the caller's terminal comes before this line, and
            // the shell has run it once this line's output shows.
            server.type_line(&format!("echo back-from-{run}-$((6 * 7))"));
            server.expect(&format!("back-from-{run}-42"));
        }
        let result = |run: &str| {
            let text =
                std::fs::read_to_string(work.join(format!("result-{run}"))).unwrap_or_default();
            assert!(text.ends_with("end\n"), "{label}: {run}: {text}");
            text
        };
        let pwned = |run: &str| {
            std::fs::read_dir(work)
                .unwrap()
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with(&format!("pwned-{run}-")))
                .collect::<Vec<_>>()
        };

        let device = |run: &str, text: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix("dev-tty-device="))
                .unwrap_or_else(|| panic!("{label}: {run}: no /dev/tty: {text}"))
                .to_owned()
        };
        let control = result("control");
        assert_eq!(
            device("control", &control),
            outer_device.to_string(),
            "{label}: the probe must see the caller's terminal as its /dev/tty without ns-process"
        );
        if control.contains("dev-tty=injected") {
            assert!(
                pwned("control").contains(&"pwned-control-dev-tty".to_owned()),
                "{label}: the stand-in attack must work without ns-process: {control}\n{}",
                server.screen()
            );
        } else {
            assert!(!legacy_tiocsti, "{label}: {control}");
            println!(
                "{label}: TIOCSTI is off on this kernel (dev.tty.legacy_tiocsti = 0): the \
                 injection is refused by the kernel whatever ns-process does; checking that \
                 the command's terminals are out of the caller's reach only"
            );
        }

        for run in ["interactive", "detached"] {
            assert_eq!(
                pwned(run),
                Vec::<String>::new(),
                "{label}: the caller's shell ran what the command typed\n{}",
                server.screen()
            );
        }

        let interactive = result("interactive");
        assert_ne!(
            device("interactive", &interactive),
            outer_device.to_string(),
            "{label}: /dev/tty inside is the caller's terminal: {interactive}"
        );
        assert!(
            !interactive.contains("outer=injected"),
            "{label}: {interactive}"
        );

        let detached = result("detached");
        assert!(
            detached.contains("dev-tty=open: No such device or address"),
            "{label}: /dev/tty must not open without a terminal: {detached}"
        );
        assert!(!detached.contains("=injected"), "{label}: {detached}");
    });
}
