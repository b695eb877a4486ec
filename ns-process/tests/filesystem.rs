//! The filesystem the command finds: under --rootfs the OCI runtime spec's default one
//! (a private devpts, /dev/shm, /dev/mqueue, a read-only /sys, a tmpfs /tmp), and
//! without --rootfs a private devpts, /dev/shm and /dev/mqueue over the host's. Real
//! mounts in the command's own mount namespace, as root and as uid 65534; the host's
//! mount table is the same after every run.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reexec_tests::{
    TestUser, assert_exit_code, assert_failed_with, assert_refused, busybox_rootfs_copy, describe,
    mount_table, or_skip, output_with_timeout, stdout_text, succeeds_as_root_and_unprivileged,
    temp_dir, world_writable_dir,
};

mod support;

use support::rootfs;

const NS_PROCESS: &str = env!("CARGO_BIN_EXE_ns-process");
const TIMEOUT: Duration = Duration::from_secs(60);

/// One line of a mountinfo text: the mount's own options (`ro`, `nosuid`…), its type,
/// and the filesystem's options (`ptmxmode=666`…).
#[derive(Debug)]
struct Mount<'a> {
    options: &'a str,
    fstype: &'a str,
    fs_options: &'a str,
}

/// The mount visible at `point` in `mountinfo`: the last one there, which covers the
/// others.
fn mount_at<'a>(mountinfo: &'a str, point: &str) -> Option<Mount<'a>> {
    mountinfo
        .lines()
        .rev()
        .filter(|line| line.split(' ').nth(4) == Some(point))
        .find_map(|line| {
            let (own, fs) = line.split_once(" - ")?;
            let mut fs = fs.split(' ');
            Some(Mount {
                options: own.split(' ').nth(5)?,
                fstype: fs.next()?,
                fs_options: fs.nth(1)?,
            })
        })
}

fn has_option(options: &str, wanted: &str) -> bool {
    options.split(',').any(|option| option == wanted)
}

/// The mountinfo printed first by a script, then what the script printed after `--`.
fn split_report(text: &str) -> (&str, &str) {
    text.split_once("--\n").unwrap_or((text, ""))
}

/// Inside the script of a run: the mount table, then probes of what each mount allows.
const PROBES: &str = r#"cat /proc/self/mountinfo; echo --
readlink /dev/ptmx
exec 3<>/dev/ptmx && echo ptmx-opened
ls /dev/pts | tr '\n' ' '; echo
stat -c '%n %a' /dev/shm /tmp
touch /dev/shm/x && echo shm-writable
touch /sys/kernel/ns-process-probe 2>&1
ls /sys/class/net | tr '\n' ' '; echo
echo firmware-entries-$(ls -A /sys/firmware | wc -l)
echo kept > /tmp/ns-process-probe && echo tmp-writable
"#;

fn assert_devpts_shm_and_mqueue(label: &str, mountinfo: &str, probes: &str, mqueue: bool) {
    let pts = mount_at(mountinfo, "/dev/pts").expect("a mount on /dev/pts");
    assert_eq!(pts.fstype, "devpts", "{label}: {mountinfo}");
    for option in ["ptmxmode=666", "mode=620"] {
        assert!(has_option(pts.fs_options, option), "{label}: {pts:?}");
    }
    assert!(has_option(pts.options, "nosuid"), "{label}: {pts:?}");
    // A pty comes from the private instance: the one opened is its only one.
    assert!(
        probes.contains("ptmx-opened\n0 ptmx \n"),
        "{label}: {probes}"
    );

    let shm = mount_at(mountinfo, "/dev/shm").expect("a mount on /dev/shm");
    assert_eq!(shm.fstype, "tmpfs", "{label}: {mountinfo}");
    assert!(
        has_option(shm.fs_options, "size=65536k"),
        "{label}: {shm:?}"
    );
    for option in ["nosuid", "nodev", "noexec"] {
        assert!(has_option(shm.options, option), "{label}: {shm:?}");
    }
    assert!(probes.contains("shm-writable\n"), "{label}: {probes}");
    if mqueue {
        let queues = mount_at(mountinfo, "/dev/mqueue").expect("a mount on /dev/mqueue");
        assert_eq!(queues.fstype, "mqueue", "{label}: {mountinfo}");
    }
}

#[test]
fn a_rootfs_gets_the_oci_default_filesystem() {
    let rootfs = or_skip!(rootfs(), "no root filesystem");
    let before = mount_table();
    let host_firmware = Path::new("/sys/firmware").is_dir();
    succeeds_as_root_and_unprivileged(
        NS_PROCESS,
        TIMEOUT,
        &[
            "--rootfs",
            rootfs.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            PROBES,
        ],
        |label, text| {
            let (mountinfo, probes) = split_report(text);
            assert_devpts_shm_and_mqueue(label, mountinfo, probes, true);
            assert!(probes.starts_with("pts/ptmx\n"), "{label}: {probes}");
            assert!(probes.contains("/dev/shm 1777\n"), "{label}: {probes}");

            // A sysfs of the command's own network namespace, read-only.
            let sys = mount_at(mountinfo, "/sys").expect("a mount on /sys");
            assert_eq!(sys.fstype, "sysfs", "{label}: {mountinfo}");
            assert!(has_option(sys.options, "ro"), "{label}: {sys:?}");
            assert!(
                probes.contains("/sys/kernel/ns-process-probe: Read-only file system"),
                "{label}: {probes}"
            );
            assert!(probes.contains("\nlo \n"), "{label}: {probes}");
            if host_firmware {
                let firmware = mount_at(mountinfo, "/sys/firmware").expect("/sys/firmware");
                assert_eq!(firmware.fstype, "tmpfs", "{label}: masked: {mountinfo}");
                assert!(probes.contains("firmware-entries-0\n"), "{label}: {probes}");
            }

            // /tmp a tmpfs of the run's own.
            let tmp = mount_at(mountinfo, "/tmp").expect("a mount on /tmp");
            assert_eq!(tmp.fstype, "tmpfs", "{label}: {mountinfo}");
            assert!(probes.contains("/tmp 1777\n"), "{label}: {probes}");
            assert!(probes.contains("tmp-writable\n"), "{label}: {probes}");
        },
    );
    assert!(
        !rootfs.join("tmp/ns-process-probe").exists(),
        "a file of the command's /tmp reached the rootfs"
    );
    assert_eq!(before, mount_table(), "the host's mount table changed");
}

#[test]
fn with_share_net_a_rootfs_gets_the_hosts_sys_read_only() {
    let rootfs = or_skip!(rootfs(), "no root filesystem");
    let before = mount_table();
    let host_links = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect::<std::collections::BTreeSet<_>>();
    let script = "cat /proc/self/mountinfo; echo --; touch /sys/kernel/ns-process-probe 2>&1; \
                  ls /sys/class/net";
    succeeds_as_root_and_unprivileged(
        NS_PROCESS,
        TIMEOUT,
        &[
            "--share",
            "net",
            "--rootfs",
            rootfs.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            script,
        ],
        |label, text| {
            let (mountinfo, probes) = split_report(text);
            let sys = mount_at(mountinfo, "/sys").expect("a mount on /sys");
            assert_eq!(sys.fstype, "sysfs", "{label}: {mountinfo}");
            // Every mount of the host's /sys tree is read-only, not only the top one.
            let below: Vec<&str> = mountinfo
                .lines()
                .filter(|line| {
                    let point = line.split(' ').nth(4).unwrap_or("");
                    point == "/sys" || point.starts_with("/sys/")
                })
                .collect();
            assert!(!below.is_empty());
            for line in below {
                let options = line.split(' ').nth(5).unwrap();
                assert!(has_option(options, "ro"), "{label}: writable: {line}");
            }
            assert!(
                probes.contains("Read-only file system"),
                "{label}: {probes}"
            );
            let links = probes
                .lines()
                .skip(1)
                .map(str::to_owned)
                .collect::<std::collections::BTreeSet<_>>();
            assert_eq!(links, host_links, "{label}: the host's network devices");
        },
    );
    assert_eq!(before, mount_table(), "the host's mount table changed");
}

#[test]
fn tmp_on_rootfs_keeps_the_rootfs_own_tmp() {
    let rootfs = or_skip!(rootfs(), "no root filesystem");
    let before = mount_table();
    for user in TestUser::all(NS_PROCESS) {
        let label = user.label();
        let name = format!("ns-process-kept-{}", label.replace(' ', "-"));
        let kept = rootfs.join("tmp").join(&name);
        let script = format!(
            "grep -c ' /tmp ' /proc/self/mountinfo; echo kept > /tmp/{name} && echo written"
        );
        let output = output_with_timeout(
            user.command().args([
                "--tmp-on-rootfs",
                "--rootfs",
                rootfs.to_str().unwrap(),
                "--",
                "sh",
                "-c",
                &script,
            ]),
            TIMEOUT,
        );
        // grep -c prints 0 and fails when nothing matches: the script's status is echo's.
        assert_exit_code(label, &output, 0);
        assert_eq!(stdout_text(&output), "0\nwritten\n", "{label}");
        assert_eq!(
            std::fs::read_to_string(&kept).ok().as_deref(),
            Some("kept\n"),
            "{label}"
        );
        std::fs::remove_file(&kept).unwrap();
    }
    assert_eq!(before, mount_table(), "the host's mount table changed");
}

#[test]
fn a_rootfs_without_sys_or_tmp_gets_them_made_or_runs_without() {
    let dir = temp_dir("no-sys-or-tmp");
    let rootfs = dir.path().join("rootfs");
    // The tests' own: root's where they run as root, which uid 65534 can't write.
    let own = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    or_skip!(
        busybox_rootfs_copy(env!("CARGO_TARGET_TMPDIR"), &rootfs, own),
        "no root filesystem"
    );
    let before = mount_table();
    for user in TestUser::all(NS_PROCESS) {
        let label = user.label();
        for name in ["sys", "tmp"] {
            let _ = std::fs::remove_dir_all(rootfs.join(name));
        }
        let output = output_with_timeout(
            user.command().args([
                "-v",
                "--rootfs",
                rootfs.to_str().unwrap(),
                "--",
                "sh",
                "-c",
                "cut -d' ' -f5 /proc/self/mountinfo | grep -xE '/(sys|tmp)' || true",
            ]),
            TIMEOUT,
        );
        assert_exit_code(label, &output, 0);
        let mounted = stdout_text(&output);
        // The rootfs is the test's (root's): root may make the directories in it, uid
        // 65534 may not, and its run goes on without them, saying so with -v.
        if user.ids().0 == nix::unistd::geteuid().as_raw() {
            assert_eq!(mounted, "/sys\n/tmp\n", "{label}: {}", describe(&output));
            // Made to mount on, and taken out after the run.
            assert!(!rootfs.join("sys").exists() && !rootfs.join("tmp").exists());
        } else {
            assert_eq!(mounted, "", "{label}: {}", describe(&output));
            let stderr = reexec_tests::stderr_text(&output);
            for skipped in [
                "not mounting a new read-only sysfs on",
                "not mounting a tmpfs on",
            ] {
                assert!(stderr.contains(skipped), "{label}: {stderr}");
            }
            assert!(
                stderr.contains("create /sys in the rootfs"),
                "{label}: {stderr}"
            );
        }
    }
    assert_eq!(before, mount_table(), "the host's mount table changed");
}

#[test]
fn without_a_rootfs_dev_pts_shm_and_mqueue_are_private() {
    let before = mount_table();
    let mqueue = Path::new("/dev/mqueue").is_dir();
    if !mqueue {
        println!("not checked: /dev/mqueue, which the host has not (nothing is made in its /dev)");
    }
    for user in TestUser::all(NS_PROCESS) {
        let label = user.label();
        let marker = format!("ns-process-probe-{}", std::process::id());
        let script = format!(
            "cat /proc/self/mountinfo; echo --; exec 3<>/dev/ptmx && echo ptmx-opened; \
             ls /dev/pts | tr '\\n' ' '; echo; touch /dev/shm/{marker} && echo shm-writable; \
             ls /dev/shm"
        );
        let output = output_with_timeout(user.command().args(["--", "sh", "-c", &script]), TIMEOUT);
        assert_exit_code(label, &output, 0);
        let text = stdout_text(&output);
        let (mountinfo, probes) = split_report(&text);
        assert_devpts_shm_and_mqueue(label, mountinfo, probes, mqueue);
        // The command's /dev/shm held its own file only, and it is gone with the run.
        assert!(
            probes.ends_with(&format!("shm-writable\n{marker}\n")),
            "{label}: {probes}"
        );
        assert!(!Path::new("/dev/shm").join(&marker).exists(), "{label}");
    }
    assert_eq!(before, mount_table(), "the host's mount table changed");
}

#[test]
fn tmp_on_rootfs_without_a_rootfs_is_refused() {
    assert_refused(
        NS_PROCESS,
        &["--tmp-on-rootfs", "--", "true"],
        125,
        "--tmp-on-rootfs keeps the /tmp of a --rootfs",
    );
}

#[test]
fn where_group_tty_is_mapped_the_ptys_belong_to_it() {
    reexec_tests::skip_unless!(
        reexec_tests::is_root(),
        "only root can keep its user namespace (--share user), where group 5 is mapped"
    );
    let before = mount_table();
    let script = "grep ' /dev/pts ' /proc/self/mountinfo | tail -n1; exec 3<>/dev/ptmx; \
                  stat -c '%g %a' /dev/pts/0";
    let output = output_with_timeout(
        Command::new(NS_PROCESS).args(["--share", "user", "--", "sh", "-c", script]),
        TIMEOUT,
    );
    assert_exit_code("root", &output, 0);
    let text = stdout_text(&output);
    let pts = mount_at(&text, "/dev/pts").expect("a mount on /dev/pts");
    assert!(has_option(pts.fs_options, "gid=5"), "{pts:?}");
    assert!(text.ends_with("\n5 620\n"), "{text}");
    // In a user namespace of ns-process's own, run by root, ids 0 to 65535 are mapped:
    // group 5 among them.
    let output = output_with_timeout(
        Command::new(NS_PROCESS).args(["--", "sh", "-c", script]),
        TIMEOUT,
    );
    assert_exit_code("root, own user namespace", &output, 0);
    let text = stdout_text(&output);
    let pts = mount_at(&text, "/dev/pts").expect("a mount on /dev/pts");
    assert!(has_option(pts.fs_options, "gid=5"), "{pts:?}");
    // Unmapped (only root's group is), no gid is asked: the kernel would refuse the mount.
    let output = output_with_timeout(
        Command::new(NS_PROCESS).args(["--map-groups", "0:0:1", "--", "sh", "-c", script]),
        TIMEOUT,
    );
    assert_exit_code("root, only group 0 mapped", &output, 0);
    let text = stdout_text(&output);
    let pts = mount_at(&text, "/dev/pts").expect("a mount on /dev/pts");
    assert!(!has_option(pts.fs_options, "gid=5"), "{pts:?}");
    assert_eq!(before, mount_table(), "the host's mount table changed");
}

/// A rootfs of `user`'s own (a copy of the busybox one they own), in `dir`.
fn own_rootfs(dir: &Path, user: &TestUser) -> Result<std::path::PathBuf, String> {
    let rootfs = dir.join(format!("rootfs-{}", user.label().replace(' ', "-")));
    busybox_rootfs_copy(env!("CARGO_TARGET_TMPDIR"), &rootfs, user.ids())?;
    // The busybox rootfs has no /etc/hostname, /etc/hosts nor /etc/resolv.conf. The copy
    // may hold the empty ones a run of another test made, to bind on, in the shared
    // original while it was copied: those go, so that a run here makes (and removes) its
    // own, as on the original.
    for name in ["etc/hostname", "etc/hosts", "etc/resolv.conf"] {
        let path = rootfs.join(name);
        if std::fs::symlink_metadata(&path).is_ok_and(|meta| meta.is_file() && meta.len() == 0) {
            std::fs::remove_file(&path).map_err(|error| format!("{}: {error}", path.display()))?;
        }
    }
    Ok(rootfs)
}

#[test]
fn binds_read_only_and_read_write_and_tmpfs_are_mounted_where_asked() {
    let dir = temp_dir("binds");
    let source = world_writable_dir("bind-source");
    std::fs::write(source.path().join("hello"), "from the host\n").unwrap();
    let src = source.path().to_str().unwrap();
    let file = format!("{src}/hello");
    let before = mount_table();
    for user in TestUser::all(NS_PROCESS) {
        let label = user.label();
        let rootfs = or_skip!(own_rootfs(dir.path(), &user), "no root filesystem");
        let written = format!("written-by-{}", label.replace(' ', "-"));
        let script = format!(
            "cat /mnt/ro/hello /etc/hello; \
             echo no > /mnt/ro/refused 2>&1 || echo ro-refused; \
             echo no > /etc/hello 2>&1 || echo ro-file-refused; \
             echo from-inside > /mnt/rw/{written} && echo rw-written; \
             cut -d' ' -f5,6,8,10 /proc/self/mountinfo | grep -E '^/(scratch|mnt/r.|etc/hello) '; \
             touch /scratch/f && echo tmpfs-writable"
        );
        let output = output_with_timeout(
            user.command().args([
                "--rootfs",
                rootfs.to_str().unwrap(),
                "--bind",
                &format!("{src}:/mnt/rw"),
                "--bind",
                &format!("{src}:/mnt/ro:ro"),
                "--bind",
                &format!("{file}:/etc/hello:ro"),
                "--tmpfs",
                "/scratch:size=1m",
                "--",
                "sh",
                "-c",
                &script,
            ]),
            TIMEOUT,
        );
        assert_exit_code(label, &output, 0);
        let text = stdout_text(&output);
        assert!(
            text.starts_with(
                "from the host\nfrom the host\nro-refused\nro-file-refused\nrw-written\n"
            ),
            "{label}: {}",
            describe(&output)
        );
        let mounts: Vec<&str> = text.lines().filter(|line| line.starts_with('/')).collect();
        assert_eq!(mounts.len(), 4, "{label}: {text}");
        for (point, options) in [
            ("/mnt/rw ", "rw,"),
            ("/mnt/ro ", "ro,"),
            ("/etc/hello ", "ro,"),
            ("/scratch ", "rw,"),
        ] {
            let line = mounts.iter().find(|line| line.starts_with(point)).unwrap();
            assert!(line[point.len()..].starts_with(options), "{label}: {line}");
        }
        assert!(
            mounts.iter().any(|line| line.starts_with("/scratch ")
                && line.contains(" tmpfs rw,size=1024k,mode=755")),
            "{label}: {mounts:?}"
        );
        assert!(text.ends_with("tmpfs-writable\n"), "{label}: {text}");
        // Writes through the read-write bind reach the host's directory, and only those.
        assert_eq!(
            std::fs::read_to_string(source.path().join(&written)).unwrap(),
            "from-inside\n",
            "{label}"
        );
        assert!(!source.path().join("refused").exists(), "{label}");
        assert_eq!(
            std::fs::read_to_string(source.path().join("hello")).unwrap(),
            "from the host\n"
        );
        // The missing destinations were made in the rootfs (directories for directories,
        // an empty file for a file, as the mountinfo above shows) and taken out after.
        for made in ["mnt/rw", "mnt/ro", "scratch", "etc/hello"] {
            assert!(!rootfs.join(made).exists(), "{label}: {made} was left");
        }
    }
    assert_eq!(before, mount_table(), "the host's mount table changed");
}

#[test]
fn a_read_only_rootfs_refuses_writes_but_its_mounts_take_them() {
    let dir = temp_dir("read-only");
    let before = mount_table();
    for user in TestUser::all(NS_PROCESS) {
        let label = user.label();
        let rootfs = or_skip!(own_rootfs(dir.path(), &user), "no root filesystem");
        let script = "touch /etc/ns-process-probe 2>&1; mkdir /new 2>&1; \
                      touch /tmp/f && echo tmp-writable; touch /dev/shm/f && echo shm-writable";
        let output = output_with_timeout(
            user.command().args([
                "--read-only",
                "--rootfs",
                rootfs.to_str().unwrap(),
                "--",
                "sh",
                "-c",
                script,
            ]),
            TIMEOUT,
        );
        assert_exit_code(label, &output, 0);
        let text = stdout_text(&output);
        assert_eq!(
            text.matches("Read-only file system").count(),
            2,
            "{label}: {}",
            describe(&output)
        );
        assert!(
            text.ends_with("tmp-writable\nshm-writable\n"),
            "{label}: {text}"
        );
        assert!(!rootfs.join("etc/ns-process-probe").exists() && !rootfs.join("new").exists());
        // The same rootfs without --read-only is the user's to write: the refusal above
        // came from the flag.
        let output = output_with_timeout(
            user.command().args([
                "--rootfs",
                rootfs.to_str().unwrap(),
                "--",
                "touch",
                "/etc/ns-process-probe",
            ]),
            TIMEOUT,
        );
        assert_exit_code(label, &output, 0);
        assert!(rootfs.join("etc/ns-process-probe").exists(), "{label}");
    }
    assert_eq!(before, mount_table(), "the host's mount table changed");
}

#[test]
fn bad_binds_and_tmpfs_are_refused_with_125() {
    let rootfs = or_skip!(rootfs(), "no root filesystem");
    let rootfs = rootfs.to_str().unwrap();
    for args in [
        &["--bind", "/tmp:/x"][..],
        &["--tmpfs", "/x"],
        &["--read-only"],
    ] {
        let expected = format!("{} changes the filesystem of a --rootfs", args[0]);
        let mut args = args.to_vec();
        args.extend(["--", "true"]);
        assert_refused(NS_PROCESS, &args, 125, &expected);
    }
    for (option, value, expected) in [
        ("--bind", "/tmp", "it needs a source and a destination"),
        ("--bind", ":/x", "the source is empty"),
        (
            "--bind",
            "/tmp:x",
            "is not an absolute path inside the rootfs",
        ),
        ("--bind", "/tmp:/a/../b", "contains . or .."),
        ("--bind", "/tmp:/", "the rootfs's / itself"),
        ("--bind", "/tmp:/x:rx", "is neither ro nor rw"),
        (
            "--bind",
            "/no/such/dir:/x",
            "--bind /no/such/dir: No such file or directory",
        ),
        ("--tmpfs", "/x:size=lots", "is not a number of bytes"),
        ("--tmpfs", "/x:mode=1777", "is not size=N"),
        ("--tmpfs", "x", "is not an absolute path inside the rootfs"),
    ] {
        let args = ["--rootfs", rootfs, option, value, "--", "true"];
        assert_refused(NS_PROCESS, &args, 125, expected);
    }
}

#[test]
fn a_bind_or_tmpfs_through_a_symlink_of_the_rootfs_is_refused_and_nothing_is_made_outside() {
    let dir = temp_dir("bind-links");
    let source = temp_dir("bind-link-source");
    let outside = world_writable_dir("bind-link-outside");
    let src = source.path().to_str().unwrap();
    let before = mount_table();
    for user in TestUser::all(NS_PROCESS) {
        let label = user.label();
        let rootfs = or_skip!(own_rootfs(dir.path(), &user), "no root filesystem");
        // A link to a host directory, and one that stays inside: both refused, since a
        // link's owner may change where it leads at any moment.
        std::os::unix::fs::symlink(outside.path(), rootfs.join("out")).unwrap();
        std::os::unix::fs::symlink("/etc", rootfs.join("etc-link")).unwrap();
        for (option, value, link) in [
            ("--bind", format!("{src}:/out/x"), "/out"),
            ("--bind", format!("{src}:/etc-link"), "/etc-link"),
            ("--tmpfs", "/out/y".to_owned(), "/out"),
        ] {
            let output = output_with_timeout(
                user.command().args([
                    "--rootfs",
                    rootfs.to_str().unwrap(),
                    option,
                    &value,
                    "--",
                    "true",
                ]),
                TIMEOUT,
            );
            assert_failed_with(
                &format!("{label}: {option} {value}"),
                &output,
                125,
                &[&format!("{}{link} is a symbolic link", rootfs.display())],
            );
        }
        assert_eq!(
            std::fs::read_dir(outside.path()).unwrap().count(),
            0,
            "{label}: something was made through the link"
        );
    }
    assert_eq!(before, mount_table(), "the host's mount table changed");
}

/// Every path under `root`, with its type, mode, owner and size (and a link's target):
/// what a run must leave as it was.
fn tree(root: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut lines = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let shown = path.strip_prefix(root).unwrap().display().to_string();
        let target = std::fs::read_link(&path)
            .map(|target| format!(" -> {}", target.display()))
            .unwrap_or_default();
        lines.push(format!(
            "/{shown} {:o} {}:{} {}{target}",
            meta.mode(),
            meta.uid(),
            meta.gid(),
            if meta.is_dir() { 0 } else { meta.size() }
        ));
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                pending.push(entry.unwrap().path());
            }
        }
    }
    lines.sort();
    lines
}

#[test]
fn what_ns_process_makes_in_a_rootfs_to_mount_on_is_gone_after_the_run() {
    let dir = temp_dir("made-and-gone");
    let source = world_writable_dir("made-source");
    std::fs::write(source.path().join("f"), "a file\n").unwrap();
    let src = source.path().to_str().unwrap();
    let file = format!("{src}/f");
    let before_mounts = mount_table();
    for user in TestUser::all(NS_PROCESS) {
        let label = user.label();
        let rootfs = or_skip!(own_rootfs(dir.path(), &user), "no root filesystem");
        // A link of the rootfs's own, which a --tmpfs below must not go through.
        std::os::unix::fs::symlink("/etc", rootfs.join("etc-link")).unwrap();
        // The busybox rootfs has no /etc/hostname, /etc/hosts nor /etc/resolv.conf (nor
        // does `own_rootfs`'s copy): all three are made to bind on, as are the --bind and
        // --tmpfs destinations.
        for name in ["etc/hostname", "etc/hosts", "etc/resolv.conf", "new"] {
            assert!(!rootfs.join(name).exists(), "{label}: {name}");
        }
        let before = tree(&rootfs);
        let rootfs_arg = rootfs.to_str().unwrap();
        let run = |args: &[&str]| {
            let mut command = user.command();
            command.args(["--rootfs", rootfs_arg]).args(args);
            output_with_timeout(&mut command, TIMEOUT)
        };
        let binds = [
            "--bind",
            &format!("{src}:/new/dir/deeper"),
            "--bind",
            &format!("{file}:/new/file"),
            "--tmpfs",
            "/scratch/t",
        ];
        for (what, extra) in [
            ("a run", &[][..]),
            ("binds and a tmpfs", &binds[..]),
            (
                "--read-only with binds",
                &[&["--read-only"], &binds[..]].concat()[..],
            ),
            ("--net none", &["--net", "none"][..]),
        ] {
            let mut args = extra.to_vec();
            args.extend([
                "--",
                "sh",
                "-c",
                "test -d /new/dir/deeper -o ! -e /new && cat /etc/hostname",
            ]);
            let output = run(&args);
            assert_exit_code(&format!("{label}: {what}"), &output, 0);
            assert_eq!(stdout_text(&output), "ns-process\n", "{label}: {what}");
            assert_eq!(
                before,
                tree(&rootfs),
                "{label}: {what} left the rootfs changed"
            );
        }
        // A setup that fails after making destinations takes them out too.
        let output = run(&[
            "--bind",
            &format!("{src}:/made/before/failing"),
            "--tmpfs",
            "/etc-link/x",
            "--",
            "true",
        ]);
        assert_failed_with(label, &output, 125, &["etc-link is a symbolic link"]);
        assert_eq!(
            before,
            tree(&rootfs),
            "{label}: a failed setup left the rootfs changed"
        );
        // Only what ns-process made goes: a file the command leaves in a directory made
        // for a --bind stays, and so does that directory; a file it writes in its rootfs
        // stays.
        let output = run(&[
            "--bind",
            &format!("{src}:/new/dir"),
            "--",
            "sh",
            "-c",
            "echo mine > /new/mine && echo kept > /root/kept",
        ]);
        assert_exit_code(label, &output, 0);
        assert_eq!(
            std::fs::read_to_string(rootfs.join("new/mine")).unwrap(),
            "mine\n",
            "{label}"
        );
        assert!(
            !rootfs.join("new/dir").exists(),
            "{label}: new/dir was left"
        );
        assert!(rootfs.join("root/kept").exists(), "{label}");
        assert!(
            !rootfs.join("etc/hosts").exists(),
            "{label}: etc/hosts was left"
        );
    }
    assert_eq!(
        before_mounts,
        mount_table(),
        "the host's mount table changed"
    );
}

#[test]
fn etc_hostname_hosts_and_resolv_conf_follow_the_network_mode_and_the_rootfs_keeps_its_own() {
    let dir = temp_dir("etc-files");
    let host_resolv_conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let host_hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let before = mount_table();
    let script = "for f in hostname hosts resolv.conf; do cat /etc/$f; echo ==; done; \
                  (echo x >> /etc/hosts) 2>&1 || true";
    for user in TestUser::all(NS_PROCESS) {
        let label = user.label();
        let rootfs = or_skip!(own_rootfs(dir.path(), &user), "no root filesystem");
        // The rootfs's own hosts, which must stay as it is; hostname and resolv.conf are
        // missing and made (empty) to be bound on.
        std::fs::write(rootfs.join("etc/hosts"), "the rootfs's own\n").unwrap();
        let run = |args: &[&str]| {
            let mut command = user.command();
            command
                .args(["--rootfs", rootfs.to_str().unwrap()])
                .args(args)
                .args(["--", "sh", "-c", script]);
            let output = output_with_timeout(&mut command, TIMEOUT);
            assert_exit_code(&format!("{label} {args:?}"), &output, 0);
            let text = stdout_text(&output);
            let files: Vec<String> = text.split("==\n").map(str::to_owned).collect();
            assert_eq!(files.len(), 4, "{label} {args:?}: {text}");
            assert!(
                files[3].contains("Read-only file system"),
                "{label}: {text}"
            );
            files
        };
        let files = run(&["--hostname", "box"]);
        assert_eq!(files[0], "box\n", "{label}");
        assert!(
            files[1].contains("127.0.0.1\tlocalhost\n"),
            "{label}: {}",
            files[1]
        );
        assert!(
            files[1].ends_with("127.0.1.1\tbox\n"),
            "{label}: {}",
            files[1]
        );
        assert!(
            !files[2].contains("nameserver"),
            "{label}: --net none: {}",
            files[2]
        );

        let files = run(&["--net", "host"]);
        assert_eq!(files[0], "ns-process\n", "{label}");
        assert_eq!(files[1], host_hosts, "{label}: the host's /etc/hosts");
        assert_eq!(
            files[2], host_resolv_conf,
            "{label}: the host's /etc/resolv.conf"
        );

        assert_eq!(
            std::fs::read_to_string(rootfs.join("etc/hosts")).unwrap(),
            "the rootfs's own\n",
            "{label}"
        );
        for made in ["etc/hostname", "etc/resolv.conf"] {
            assert!(
                !rootfs.join(made).exists(),
                "{label}: {made}, made to mount on, was left"
            );
        }

        // A resolv.conf that is a link (as systemd-resolved's images have it) is left as
        // it is, said with -v: nothing is mounted where a link leads.
        std::fs::write(rootfs.join("etc/resolv.real"), "nameserver 192.0.2.1\n").unwrap();
        std::os::unix::fs::symlink("resolv.real", rootfs.join("etc/resolv.conf")).unwrap();
        let output = output_with_timeout(
            user.command().args([
                "-v",
                "--rootfs",
                rootfs.to_str().unwrap(),
                "--",
                "cat",
                "/etc/resolv.conf",
            ]),
            TIMEOUT,
        );
        assert_exit_code(label, &output, 0);
        assert_eq!(stdout_text(&output), "nameserver 192.0.2.1\n", "{label}");
        let stderr = reexec_tests::stderr_text(&output);
        assert!(
            stderr.contains("not binding /etc/resolv.conf: ")
                && stderr.contains("is a symbolic link"),
            "{label}: {}",
            describe(&output)
        );
    }
    assert_eq!(before, mount_table(), "the host's mount table changed");
}
