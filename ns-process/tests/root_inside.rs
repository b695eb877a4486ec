//! Root inside is not host root: the attacks of issue #11 rows A, E and M, each made
//! harmless, each of which must fail — as root (root inside mapped to host root, the
//! dangerous case) and as uid 65534. A sysctl is only ever written with the value just
//! read from it; nothing of the host's is left changed.

use std::process::{Command, Output};
use std::time::Duration;

use reexec_tests::procfs::children;
use reexec_tests::{
    TestUser, as_root_and_unprivileged, describe, is_root, or_skip, output_with_timeout,
    skip_unless, spawn_until_ready, stderr_text, stdout_text,
};

mod support;

use support::rootfs;

const NS_PROCESS: &str = env!("CARGO_BIN_EXE_ns-process");
const TIMEOUT: Duration = Duration::from_secs(60);

/// Docker's default 14, as /proc/PID/status writes a capability set.
const DOCKER_DEFAULT: &str = "00000000a80425fb";

fn sysctl(name: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/{}", name.replace('.', "/"))).unwrap()
}

/// Row A, in the shell inside: every way to change a host sysctl or undo the read-only
/// /proc/sys, each printing a line that says it worked; a sysctl is written only with the
/// value just read from it.
const ATTACK_A: &str = r#"
    for knob in kernel/core_pattern vm/swappiness; do
      value=$(cat /proc/sys/$knob)
      printf '%s\n' "$value" > /proc/sys/$knob && echo "WROTE $knob"
    done
    echo x > /proc/sysrq-trigger && echo "WROTE sysrq-trigger"
    umount /proc/sys 2>/dev/null && echo "UNMOUNTED /proc/sys"
    umount -l /proc/kcore /proc/keys 2>/dev/null && echo "UNMOUNTED a mask"
    mount -o remount,rw /proc/sys 2>/dev/null && echo "REMOUNTED /proc/sys"
    mount -o remount,bind,rw /proc/sys 2>/dev/null && echo "REMOUNTED /proc/sys"
    mount -t proc proc /tmp 2>/dev/null && echo "MOUNTED a fresh proc"
    mount -t sysfs sysfs /tmp 2>/dev/null && echo "MOUNTED a fresh sysfs"
    unshare -Urm sh -c 'umount /proc/sys || umount -l /proc/sys' 2>/dev/null && echo "UNMOUNTED /proc/sys from a new user namespace"
    unshare -Urmpf sh -c 'mount -t proc proc /tmp' 2>/dev/null && echo "MOUNTED a fresh proc from a new user namespace"
    wc -c < /proc/keys | grep -qx 0 || echo "READ /proc/keys"
    ls /sys/firmware 2>/dev/null | grep -q . && echo "LISTED /sys/firmware"
    value=$(cat /proc/sys/kernel/core_pattern)
    printf '%s\n' "$value" > /proc/sys/kernel/core_pattern 2>&1 || true
    echo tried"#;

fn assert_attack_a_fails(label: &str, output: &Output) {
    let out = stdout_text(output);
    assert!(out.contains("tried"), "{label}: {}", describe(output));
    let succeeded: Vec<&str> = out
        .lines()
        .filter(|line| line.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
        .collect();
    assert!(
        succeeded.is_empty(),
        "{label}: {succeeded:?}\n{}",
        describe(output)
    );
    assert!(
        stderr_text(output).contains("Read-only file system"),
        "{label}: the sysctls must be refused as read-only: {}",
        describe(output)
    );
}

#[test]
fn a_host_sysctl_cannot_be_written_nor_its_protection_undone() {
    let before = (sysctl("kernel.core_pattern"), sysctl("vm.swappiness"));
    as_root_and_unprivileged(
        NS_PROCESS,
        TIMEOUT,
        &["--", "sh", "-c", ATTACK_A],
        assert_attack_a_fails,
    );
    match rootfs() {
        Ok(rootfs) => as_root_and_unprivileged(
            NS_PROCESS,
            TIMEOUT,
            &[
                "--rootfs",
                rootfs.to_str().unwrap(),
                "--",
                "sh",
                "-c",
                ATTACK_A,
            ],
            |label, output| assert_attack_a_fails(&format!("{label}, --rootfs"), output),
        ),
        Err(reason) => println!("skipped the --rootfs half: {reason}"),
    }
    assert_eq!(
        before,
        (sysctl("kernel.core_pattern"), sysctl("vm.swappiness"))
    );
}

/// The mount points at or below `/sys` in a mountinfo text, each with its own options.
fn sys_mounts(mountinfo: &str) -> Vec<(String, String)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ').skip(4);
            Some((fields.next()?.to_owned(), fields.next()?.to_owned()))
        })
        .filter(|(point, _)| point == "/sys" || point.starts_with("/sys/"))
        .collect()
}

#[test]
fn every_mount_of_the_hosts_sys_is_read_only_inside() {
    // A remount is not recursive: each mount below /sys (cgroup controllers, tracing…)
    // must be made read-only too, or root inside writes the host's through it.
    let host = sys_mounts(&std::fs::read_to_string("/proc/self/mountinfo").unwrap());
    skip_unless!(
        host.len() > 1,
        "this machine has no mount below /sys to check: {host:?}"
    );
    as_root_and_unprivileged(
        NS_PROCESS,
        TIMEOUT,
        &["--", "cat", "/proc/self/mountinfo"],
        |label, output| {
            let inside = sys_mounts(&stdout_text(output));
            assert!(
                inside.len() >= host.len(),
                "{label}: every mount of the host's /sys is there: {inside:?}\n{}",
                describe(output)
            );
            let writable: Vec<_> = inside
                .iter()
                .filter(|(_, options)| !options.split(',').any(|option| option == "ro"))
                .collect();
            assert!(writable.is_empty(), "{label}: writable: {writable:?}");
        },
    );
}

#[test]
fn privileged_gives_the_boundary_up_as_documented() {
    skip_unless!(is_root(), "only root-mapped root can write a host sysctl");
    // The control for the test above: the same write-back, which it shows refused, goes
    // through when the boundary is given up — so the refusal is the masks' doing.
    let before = sysctl("vm.swappiness");
    let script = r#"value=$(cat /proc/sys/vm/swappiness)
        printf '%s\n' "$value" > /proc/sys/vm/swappiness && echo "WROTE vm/swappiness"
        grep CapEff /proc/self/status"#;
    let output = output_with_timeout(
        Command::new(NS_PROCESS).args(["--privileged", "--", "sh", "-c", script]),
        TIMEOUT,
    );
    let out = stdout_text(&output);
    assert!(out.contains("WROTE vm/swappiness"), "{}", describe(&output));
    let last_cap: u32 = sysctl("kernel.cap_last_cap").trim().parse().unwrap();
    let all = format!("{:016x}", (1u64 << (last_cap + 1)) - 1);
    assert!(
        out.contains(&all),
        "expected CapEff {all}: {}",
        describe(&output)
    );
    assert_eq!(before, sysctl("vm.swappiness"));
}

fn capability_sets(output: &Output) -> Vec<String> {
    stdout_text(output)
        .lines()
        .filter(|line| line.starts_with("Cap"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_command_keeps_dockers_capabilities_and_what_the_flags_say() {
    let script = "grep ^Cap /proc/self/status";
    let expect = |args: &[&str], effective: &str, bounding: &str| {
        let mut all = args.to_vec();
        all.extend(["--", "sh", "-c", script]);
        as_root_and_unprivileged(NS_PROCESS, TIMEOUT, &all, |label, output| {
            let sets = capability_sets(output);
            for (set, want) in [
                ("CapEff", effective),
                ("CapPrm", effective),
                ("CapInh", "0000000000000000"),
                ("CapBnd", bounding),
                ("CapAmb", "0000000000000000"),
            ] {
                assert!(
                    sets.contains(&format!("{set}:\t{want}")),
                    "{label} {args:?}: {set} should be {want}: {sets:?} {}",
                    describe(output)
                );
            }
        });
    };
    expect(&[], DOCKER_DEFAULT, DOCKER_DEFAULT);
    // SYS_ADMIN is bit 21; CHOWN bit 0.
    expect(
        &["--cap-add", "sys_admin"],
        "00000000a82425fb",
        "00000000a82425fb",
    );
    expect(
        &["--cap-drop", "CAP_CHOWN"],
        "00000000a80425fa",
        "00000000a80425fa",
    );
    expect(
        &["--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE"],
        "0000000000000400",
        "0000000000000400",
    );
}

#[test]
fn a_user_other_than_root_inside_keeps_no_capability_and_no_group_of_roots() {
    // --user 0 is root as before: the 14, as root and as uid 65534.
    as_root_and_unprivileged(
        NS_PROCESS,
        TIMEOUT,
        &["--user", "0", "--", "grep", "^CapEff", "/proc/self/status"],
        |label, output| {
            assert_eq!(
                stdout_text(output),
                format!("CapEff:\t{DOCKER_DEFAULT}\n"),
                "{label}: {}",
                describe(output)
            );
        },
    );
    // Run by root, uid 65534 is mapped (0-65535 are), in a user namespace of its own or
    // in root's own (--share user); a user without a range has root alone.
    skip_unless!(
        is_root(),
        "uid 65534 inside is mapped for sure only when root runs ns-process"
    );
    let script = "id -u; id -g; id -G; grep ^Cap /proc/self/status";
    for extra in [
        &[][..],
        &["--cap-add", "ALL"][..],
        &["--share", "user"][..],
        &["--share", "user", "--cap-add", "ALL"][..],
    ] {
        let mut args = vec!["--user", "65534:65534"];
        args.extend(extra);
        args.extend(["--", "sh", "-c", script]);
        let output = output_with_timeout(Command::new(NS_PROCESS).args(&args), TIMEOUT);
        let text = stdout_text(&output);
        assert!(output.status.success(), "{args:?}: {}", describe(&output));
        // No supplementary group of root's (setgroups is allowed here, and used).
        assert!(
            text.starts_with("65534\n65534\n65534\n"),
            "{args:?}: {}",
            describe(&output)
        );
        let sets = capability_sets(&output);
        for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
            assert!(
                sets.contains(&format!("{set}:\t0000000000000000")),
                "{args:?}: {set} should be empty: {sets:?}"
            );
        }
    }
}

#[test]
fn a_user_is_taken_on_even_when_the_command_keeps_no_capability_to_take_it_on() {
    // Taking on --user needs CAP_SETGID (setgroups, setresgid) and CAP_SETUID, which
    // `--cap-drop ALL` does not keep: the cut must leave effective and permitted to after
    // the switch, and still end with every set empty.
    let script = "id -u; id -g; grep ^Cap /proc/self/status";
    let empty_sets = |label: &str, output: &Output| {
        let sets = capability_sets(output);
        for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert!(
                sets.contains(&format!("{set}:\t0000000000000000")),
                "{label}: {set} should be empty: {sets:?} {}",
                describe(output)
            );
        }
    };
    as_root_and_unprivileged(
        NS_PROCESS,
        TIMEOUT,
        &["--user", "0", "--cap-drop", "ALL", "--", "sh", "-c", script],
        |label, output| {
            assert!(output.status.success(), "{label}: {}", describe(output));
            assert!(
                stdout_text(output).starts_with("0\n0\n"),
                "{label}: {}",
                describe(output)
            );
            empty_sets(label, output);
        },
    );
    skip_unless!(
        is_root(),
        "uid 65534 inside is mapped for sure only when root runs ns-process"
    );
    let output = output_with_timeout(
        Command::new(NS_PROCESS).args([
            "--user",
            "65534:65534",
            "--cap-drop",
            "ALL",
            "--",
            "sh",
            "-c",
            script,
        ]),
        TIMEOUT,
    );
    assert!(output.status.success(), "{}", describe(&output));
    assert!(
        stdout_text(&output).starts_with("65534\n65534\n"),
        "{}",
        describe(&output)
    );
    empty_sets("root, --user 65534:65534", &output);
}

#[test]
fn an_unknown_capability_is_refused_with_the_names_to_use() {
    reexec_tests::assert_refused(
        NS_PROCESS,
        &["--cap-add", "SYS_ADMN", "--", "true"],
        125,
        "unknown capability \"SYS_ADMN\"; use ALL or one of: CHOWN",
    );
}

#[test]
fn the_init_keeps_no_secret_of_the_callers_and_cannot_be_read() {
    // Row E: from inside, through /proc/1; and from outside, that the init's environment
    // holds nothing of the caller's.
    let script = r#"
        cat /proc/1/environ 2>/dev/null && echo "READ /proc/1/environ"
        head -c1 /proc/1/mem 2>/dev/null && echo "READ /proc/1/mem"
        cat /proc/1/maps 2>/dev/null | grep -q . && echo "READ /proc/1/maps"
        readlink /proc/1/exe 2>/dev/null && echo "READ /proc/1/exe"
        readlink /proc/1/cwd 2>/dev/null && echo "READ /proc/1/cwd"
        ls -l /proc/1/fd/ 2>/dev/null | grep -q -- '->' && echo "READ /proc/1/fd"
        # ptrace(PTRACE_ATTACH, 1): the system call by number, from perl (always on Debian).
        perl -e 'syscall($ARGV[0], 16, 1, 0, 0) == 0 and print "TRACED the init\n";
                 print "attach: $!\n"' "$PTRACE"
        echo tried"#;
    let ptrace = if cfg!(target_arch = "x86_64") {
        "101"
    } else {
        "117"
    };
    let inside = output_with_timeout(
        Command::new(NS_PROCESS)
            .env("NS_PROCESS_TEST_SECRET", "hunter2")
            .args(["-e", &format!("PTRACE={ptrace}"), "--", "sh", "-c", script]),
        TIMEOUT,
    );
    let out = stdout_text(&inside);
    assert!(out.contains("tried"), "{}", describe(&inside));
    assert!(
        out.contains("attach: Operation not permitted"),
        "ptrace(PTRACE_ATTACH, 1) must be refused: {}",
        describe(&inside)
    );
    assert!(!out.contains("READ"), "{}", describe(&inside));
    assert!(!out.contains("hunter2"), "{}", describe(&inside));

    let mut child = spawn_until_ready(
        Command::new(NS_PROCESS)
            .env("NS_PROCESS_TEST_SECRET", "hunter2")
            .args(["--", "sh", "-c", "echo ready; exec sleep 100"]),
    );
    let init = children(child.id())[0];
    let environ = std::fs::read(format!("/proc/{init}/environ"));
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap_or_default();
    child.kill().unwrap();
    child.wait().unwrap();
    if is_root() {
        let environ = String::from_utf8_lossy(&environ.unwrap()).into_owned();
        assert!(!environ.contains("hunter2"), "{environ:?}");
        let names: Vec<&str> = environ
            .split('\0')
            .filter_map(|pair| pair.split_once('=').map(|(name, _)| name))
            .collect();
        assert!(
            names
                .iter()
                .all(|name| ["TERM", "REEXEC_ENTRY"].contains(name)),
            "the init's environment: {names:?}"
        );
    }
    assert!(status.contains("NoNewPrivs"), "{status}");
}

#[test]
fn the_init_refuses_to_run_outside_the_namespaces_made_for_it() {
    // Row M: started by hand under its entry's name, in a UTS namespace the test made as a
    // stand-in for the caller's, it would set that namespace's hostname.
    let script = r#"hostname stand-in
        outer=""
        for kind in user mnt uts ipc pid net; do
          outer="$outer${outer:+,}$kind:$(stat -L -c %i /proc/self/ns/$kind)"
        done
        (exec -a nsInitialisation "$0" --hostname changed -- true); echo "plain: $?"
        (exec -a nsInitialisation "$0" --internal-outer-namespaces=$outer --hostname changed -- true); echo "new pid: $?"
        (exec -a nsInitialisation "$0" --internal-outer-namespaces=$outer --share pid --hostname changed -- true); echo "shared pid: $?"
        echo "hostname: $(hostname)""#;
    let check = |label: &str, output: &Output| {
        let out = stdout_text(output);
        let err = stderr_text(output);
        for case in ["plain", "new pid", "shared pid"] {
            assert!(
                out.contains(&format!("{case}: 125")),
                "{label}, {case}: {}",
                describe(output)
            );
        }
        for refusal in [
            "refusing to run without ns-process",
            "refusing to run as PID",
            "refusing to set up the user namespace ns-process itself is in",
        ] {
            assert!(
                err.contains(refusal),
                "{label}, {refusal}: {}",
                describe(output)
            );
        }
        assert!(
            out.contains("hostname: stand-in"),
            "{label}: {}",
            describe(output)
        );
    };
    in_bash_as_root_and_unprivileged(
        &["unshare", "--uts", "--mount"],
        &["unshare", "-Ur", "--uts", "--mount"],
        script,
        &[],
        check,
    );
}

/// Runs `script` in bash with `$0` = ns-process, after `root_prefix` as root and after
/// `unprivileged_prefix` as anyone else — uid 65534, or the tests' own user where that is
/// not root. `args` become `$1`, `$2`, ….
fn in_bash_as_root_and_unprivileged(
    root_prefix: &[&str],
    unprivileged_prefix: &[&str],
    script: &str,
    args: &[&str],
    check: impl Fn(&str, &Output),
) {
    for user in TestUser::all(NS_PROCESS) {
        let prefix = if user.is_root() {
            root_prefix
        } else {
            unprivileged_prefix
        };
        let mut command = user.command_of(prefix[0]);
        command
            .args(&prefix[1..])
            .args(["bash", "-c", script])
            .arg(user.program())
            .args(args)
            .current_dir("/");
        check(user.label(), &output_with_timeout(&mut command, TIMEOUT));
    }
}

#[test]
fn no_descriptor_of_the_callers_reaches_the_command_but_those_it_preserves() {
    // Row D: an open directory of the host's, inherited, walks out of the rootfs.
    let rootfs = or_skip!(rootfs(), "no root filesystem");
    let rootfs = rootfs.to_str().unwrap();
    let script = r#"exec 7</ 3</etc/hostname 4>&1 5</
        "$0" --rootfs "$1" --preserve-fds 2 -- sh -c '
          printf "open:"; for fd in 3 4 5 6 7 8 9 10 11 12; do [ -e /proc/$$/fd/$fd ] && printf " $fd"; done; echo
          echo "fd 4 reaches the caller" >&4
          read line <&3 && echo "fd 3 holds the host hostname file: $line"
          cat /proc/self/fd/7/etc/hostname 2>/dev/null && echo "WALKED OUT through fd 7"
          ls /proc/self/fd/5/ 2>/dev/null | grep -q . && echo "WALKED OUT through fd 5"
          echo tried'
        echo "status: $?""#;
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    in_bash_as_root_and_unprivileged(&["env"], &["env"], script, &[rootfs], |label, output| {
        let out = stdout_text(output);
        assert!(out.contains("status: 0"), "{label}: {}", describe(output));
        assert!(
            out.contains("open: 3 4\n"),
            "{label}: only 3 and 4 preserved: {}",
            describe(output)
        );
        assert!(
            out.contains("fd 4 reaches the caller"),
            "{label}: {}",
            describe(output)
        );
        assert!(
            out.contains(&format!(
                "fd 3 holds the host hostname file: {}",
                host.trim()
            )),
            "{label}: {}",
            describe(output)
        );
        assert!(!out.contains("WALKED OUT"), "{label}: {}", describe(output));
    });
}

#[test]
fn preserving_a_descriptor_that_is_not_open_is_refused() {
    reexec_tests::assert_refused(
        NS_PROCESS,
        &["--preserve-fds", "40", "--", "true"],
        125,
        "is not open; open descriptors 3 to 42",
    );
}
