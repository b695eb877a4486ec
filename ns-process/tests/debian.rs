//! ns-process on a real Debian rootfs (`scripts/make-rootfs --debian`, built once and
//! kept between runs): the user's environment from its `/etc/passwd`, `--user`,
//! `--workdir`, and ordinary programs — Python, apt. As root and as uid 65534, for whom
//! the root-built rootfs is read-only.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use reexec_tests::{
    MAKE_ROOTFS, SubordinateIdFiles, TestUser, assert_exit_code, assert_failed_with,
    in_terminal_as_root_and_unprivileged, is_root, mount_table, or_skip, output_with_timeout,
    skip_unless, stdout_text, temp_dir,
};

const NS_PROCESS: &str = env!("CARGO_BIN_EXE_ns-process");
const TIMEOUT: Duration = Duration::from_secs(120);

fn debian() -> Result<&'static Path, String> {
    reexec_tests::debian_rootfs(env!("CARGO_TARGET_TMPDIR"))
}

/// ns-process run by `user` in `rootfs` with `args` (options, then `--` and a command).
fn run_in(user: &TestUser, rootfs: &Path, args: &[&str]) -> Output {
    output_with_timeout(
        user.command().arg("--rootfs").arg(rootfs).args(args),
        TIMEOUT,
    )
}

/// What the command printed, once it exited with 0.
fn printed(user: &TestUser, rootfs: &Path, args: &[&str]) -> String {
    let output = run_in(user, rootfs, args);
    assert_exit_code(&format!("{}: {args:?}", user.label()), &output, 0);
    stdout_text(&output)
}

const PRINT_USER: &str =
    "import os; print(os.environ['HOME'], os.environ['USER'], os.environ['SHELL'])";

#[test]
fn home_user_and_shell_come_from_the_rootfs_passwd() {
    let rootfs = or_skip!(debian(), "no Debian rootfs");
    for user in TestUser::all(NS_PROCESS) {
        // Debian's root has /bin/bash: ns-process's default would be /bin/sh.
        assert_eq!(
            printed(&user, rootfs, &["--", "python3", "-c", PRINT_USER]),
            "/root root /bin/bash\n",
            "{}",
            user.label()
        );
        // What the caller sets wins.
        assert_eq!(
            printed(
                &user,
                rootfs,
                &[
                    "-e",
                    "HOME=/tmp",
                    "-e",
                    "SHELL=/bin/sh",
                    "--",
                    "python3",
                    "-c",
                    PRINT_USER
                ]
            ),
            "/tmp root /bin/sh\n",
            "{}",
            user.label()
        );
    }
}

/// Checks that ns-process, run by `user` with `args`, exits with `code` saying each of
/// `expected`, and leaves no mount behind.
fn assert_refused_as(user: &TestUser, rootfs: &Path, args: &[&str], code: i32, expected: &[&str]) {
    let before = mount_table();
    let output = run_in(user, rootfs, args);
    assert_failed_with(
        &format!("{}: {args:?}", user.label()),
        &output,
        code,
        expected,
    );
    assert_eq!(before, mount_table(), "{args:?} left a mount behind");
}

#[test]
fn user_switches_to_mapped_ids_without_capabilities_and_refuses_others() {
    let rootfs = or_skip!(debian(), "no Debian rootfs");
    for user in TestUser::all(NS_PROCESS) {
        assert_eq!(
            printed(
                &user,
                rootfs,
                &["--user", "0:0", "--", "sh", "-c", "id -u; id -g"]
            ),
            "0\n0\n",
            "{}",
            user.label()
        );
        // Run by root, ids 0-65535 are mapped; by a user, 1-65536 when it has a range,
        // else root alone, and then 1000 is refused as any id outside the map is.
        let args = [
            "--user",
            "1000:1000",
            "--",
            "sh",
            "-c",
            "id -u; id -g; id -G; grep ^CapEff /proc/self/status",
        ];
        let output = run_in(&user, rootfs, &args);
        if user.is_root() || output.status.code() != Some(125) {
            assert_exit_code(user.label(), &output, 0);
            assert_eq!(
                stdout_text(&output),
                "1000\n1000\n1000\nCapEff:\t0000000000000000\n",
                "{}: a user other than root keeps no capability",
                user.label()
            );
        } else {
            println!("{}: only root is mapped, 1000 is refused", user.label());
            assert_refused_as(
                &user,
                rootfs,
                &args,
                125,
                &[
                    "--user 1000:1000: uid 1000 is not mapped",
                    "(mapped uids: 0)",
                ],
            );
        }
        // Beyond any map ns-process makes.
        assert_refused_as(
            &user,
            rootfs,
            &["--user", "4000000000", "--", "true"],
            125,
            &[
                "--user 4000000000: uid 4000000000 is not mapped",
                "(mapped uids: 0",
            ],
        );
        assert_refused_as(
            &user,
            rootfs,
            &["--user", "0:4000000000", "--", "true"],
            125,
            &[
                "--user 0:4000000000: gid 4000000000 is not mapped",
                "(mapped gids: 0",
            ],
        );
        assert_refused_as(
            &user,
            rootfs,
            &["--user=-1", "--", "true"],
            125,
            &["is neither a number", "USER or USER:GROUP"],
        );
        // Names are Debian's own, from the rootfs's /etc/passwd and /etc/group.
        let output = run_in(
            &user,
            rootfs,
            &["--user", "root:tty", "--", "sh", "-c", "id -u; id -g"],
        );
        if user.is_root() || output.status.code() != Some(125) {
            assert_exit_code(user.label(), &output, 0);
            assert_eq!(stdout_text(&output), "0\n5\n", "{}", user.label());
        } else {
            assert_failed_with(
                user.label(),
                &output,
                125,
                &["--user root:tty (gid 5 in /etc/group): gid 5 is not mapped"],
            );
        }
        let output = run_in(
            &user,
            rootfs,
            &[
                "--user",
                "nobody:nogroup",
                "--",
                "sh",
                "-c",
                "id -un; id -gn; echo $HOME",
            ],
        );
        if user.is_root() || output.status.code() != Some(125) {
            assert_exit_code(user.label(), &output, 0);
            assert_eq!(
                stdout_text(&output),
                "nobody\nnogroup\n/nonexistent\n",
                "{}",
                user.label()
            );
        } else {
            assert_failed_with(
                user.label(),
                &output,
                125,
                &["--user nobody:nogroup (uid 65534 in /etc/passwd): uid 65534 is not mapped"],
            );
        }
    }
}

#[test]
fn workdir_is_where_the_command_starts() {
    let rootfs = or_skip!(debian(), "no Debian rootfs");
    for user in TestUser::all(NS_PROCESS) {
        assert_eq!(
            printed(&user, rootfs, &["--workdir", "/usr/share", "--", "pwd"]),
            "/usr/share\n",
            "{}",
            user.label()
        );
        assert_eq!(
            printed(&user, rootfs, &["--", "pwd"]),
            "/\n",
            "{}",
            user.label()
        );
        assert_refused_as(
            &user,
            rootfs,
            &["--workdir", "/nowhere", "--", "pwd"],
            126,
            &["--workdir /nowhere: No such file or directory"],
        );
        assert_refused_as(
            &user,
            rootfs,
            &["-w", "/etc/passwd", "--", "pwd"],
            126,
            &["--workdir /etc/passwd: not a directory"],
        );
        assert_refused_as(
            &user,
            rootfs,
            &["-w", "usr", "--", "pwd"],
            125,
            &["--workdir usr: give an absolute path"],
        );
    }
}

#[test]
fn a_python_multiprocessing_pool_runs() {
    let rootfs = or_skip!(debian(), "no Debian rootfs");
    for user in TestUser::all(NS_PROCESS) {
        // Its semaphores live in /dev/shm, which issue #12's item 1 adds.
        let shm = run_in(&user, rootfs, &["--", "test", "-d", "/dev/shm"]);
        if !shm.status.success() {
            println!(
                "skipped for {}: there is no /dev/shm inside (issue #12, item 1), where \
                 the Pool's semaphores live",
                user.label()
            );
            continue;
        }
        let pool = "import multiprocessing as m; print(m.Pool(2).map(abs, [-1, -2]))";
        assert_eq!(
            printed(&user, rootfs, &["--", "python3", "-c", pool]),
            "[1, 2]\n",
            "{}",
            user.label()
        );
    }
}

#[test]
fn apt_finds_its_packages_consistent() {
    let rootfs = or_skip!(debian(), "no Debian rootfs");
    for user in TestUser::all(NS_PROCESS) {
        if !user.is_root() {
            // Root inside is uid 65534 outside, and the rootfs is root's: apt can't take
            // its lock ("are you root?"), as the README says of a rootfs of another's.
            println!(
                "skipped for {}: the rootfs, built by root, is read-only for it",
                user.label()
            );
            continue;
        }
        let output = run_in(&user, rootfs, &["--", "apt-get", "check"]);
        assert_exit_code(user.label(), &output, 0);
    }
}

/// Set to 1 to run the unprivileged build below: it costs another minute and the
/// downloads on every run, as its tree is not kept.
const UNPRIVILEGED_BUILD: &str = "NS_PROCESS_TEST_UNPRIVILEGED_DEBIAN";

#[test]
fn an_unprivileged_build_is_its_builders_and_root_inside_may_change_it() {
    skip_unless!(
        std::env::var_os(UNPRIVILEGED_BUILD).is_some_and(|value| value == "1"),
        format!("set {UNPRIVILEGED_BUILD}=1 to build a Debian rootfs as uid 65534 (a minute)")
    );
    skip_unless!(
        is_root(),
        "uid 65534 gets its subordinate range from a copy of /etc/subuid bound by root"
    );
    let dir = temp_dir("debian-unprivileged");
    // The builder's own directory, as make-rootfs wants the parents of what it builds.
    let own = dir.path().join("own");
    std::fs::create_dir(&own).unwrap();
    nix::unistd::chown(&own, Some(65534.into()), Some(65534.into())).unwrap();
    let rootfs = own.join("rootfs");
    // 65534's range, in copies bound over the ids files in a mount namespace of the
    // test's own: newuidmap reads them there, and the host's files stay as they were.
    let files = or_skip!(
        SubordinateIdFiles::with("nobody:200000:65536\n"),
        "no subordinate ids for uid 65534"
    );
    let output = output_with_timeout(
        files
            .command(&[], "env")
            .arg(format!("HOME={}", own.display()))
            .args(["bash", MAKE_ROOTFS, "--debian"])
            .arg(&rootfs),
        Duration::from_secs(600),
    );
    assert_exit_code("make-rootfs --debian as uid 65534", &output, 0);
    use std::os::unix::fs::MetadataExt;
    for path in ["etc/shadow", "usr/bin/python3", "var/cache/apt"] {
        let owner = std::fs::symlink_metadata(rootfs.join(path)).unwrap().uid();
        assert_eq!(owner, 65534, "{path}: root's files belong to their builder");
    }
    // The others to the builder's range, as ns-process maps it (1 to 200000, and so on):
    // group shadow (42) is 200041 outside.
    let shadow_group = std::fs::symlink_metadata(rootfs.join("etc/shadow"))
        .unwrap()
        .gid();
    assert_eq!(
        shadow_group, 200_041,
        "etc/shadow's group, shadow, is in the range"
    );
    let user = or_skip!(TestUser::unprivileged(NS_PROCESS), "no run as uid 65534");
    let change = "apt-get check > /dev/null && touch /root/made && \
                  python3 -c \"import os; print(os.environ['HOME'])\"";
    assert_eq!(
        printed(&user, &rootfs, &["--", "sh", "-c", change]),
        "/root\n",
        "{}",
        user.label()
    );
    assert!(rootfs.join("root/made").exists());
}

/// The suite and apt sources make-rootfs builds from: the host's on Debian, else
/// bookworm from mmdebstrap's default mirror.
fn host_suite_and_sources() -> Vec<String> {
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let value = |key: &str| {
        release
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{key}=")))
            .map(|value| value.trim_matches('"').to_owned())
    };
    match (value("ID").as_deref(), value("VERSION_CODENAME")) {
        (Some("debian"), Some(codename)) if !codename.is_empty() => {
            let mut words = vec![codename];
            for sources in [
                "/etc/apt/sources.list.d/debian.sources",
                "/etc/apt/sources.list",
            ] {
                if std::fs::metadata(sources).is_ok_and(|meta| meta.len() > 0) {
                    words.push(sources.to_owned());
                    break;
                }
            }
            words
        }
        _ => vec!["bookworm".to_owned()],
    }
}

#[test]
fn a_tree_mmdebstrap_built_in_unshare_mode_runs_with_root_mapped_to_its_range() {
    skip_unless!(
        std::env::var_os(UNPRIVILEGED_BUILD).is_some_and(|value| value == "1"),
        format!("set {UNPRIVILEGED_BUILD}=1 to build a Debian tree as uid 65534 (a minute)")
    );
    skip_unless!(
        is_root(),
        "uid 65534 gets its subordinate range from a copy of /etc/subuid bound by root"
    );
    skip_unless!(
        Command::new("mmdebstrap")
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success()),
        "mmdebstrap is missing (scripts/install-test-deps installs it)"
    );
    let files = or_skip!(
        SubordinateIdFiles::with("nobody:200000:65536\n"),
        "no subordinate ids"
    );
    let nobody = or_skip!(TestUser::unprivileged(NS_PROCESS), "no run as uid 65534");
    let dir = temp_dir("mmdebstrap-unshare");
    let own = dir.path().join("own");
    std::fs::create_dir(&own).unwrap();
    nix::unistd::chown(&own, Some(65534.into()), Some(65534.into())).unwrap();
    let tree = own.join("tree");
    // mmdebstrap itself, as uid 65534 with its range: root's files belong to 200000, the
    // others to 200000 + their id inside; 65534 owns nothing of the tree.
    let mut build = files.command(&[], "env");
    build
        .arg(format!("HOME={}", own.display()))
        .arg(format!("TMPDIR={}", own.display()))
        .args([
            "mmdebstrap",
            "--quiet",
            "--mode=unshare",
            "--variant=minbase",
        ]);
    let suite_and_sources = host_suite_and_sources();
    build
        .arg(&suite_and_sources[0])
        .arg(&tree)
        .args(&suite_and_sources[1..]);
    let output = output_with_timeout(&mut build, Duration::from_secs(600));
    assert_exit_code("mmdebstrap --mode=unshare as uid 65534", &output, 0);
    use std::os::unix::fs::MetadataExt;
    let shadow = std::fs::symlink_metadata(tree.join("etc/shadow")).unwrap();
    assert_eq!((shadow.uid(), shadow.gid()), (200_000, 200_042));
    let paths = || {
        let output = output_with_timeout(Command::new("find").arg(&tree), TIMEOUT);
        let mut paths: Vec<String> = stdout_text(&output).lines().map(str::to_owned).collect();
        paths.sort();
        paths
    };
    let before = paths();
    let mut run = files.command(&[], nobody.program());
    run.arg("--rootfs").arg(&tree).args([
        "--map-users",
        "0:200000:65536",
        "--map-groups",
        "0:200000:65536",
        "--",
        "sh",
        "-c",
        "id -u; id -g; stat -c %U:%G /etc/shadow; touch /root/made && \
         chown 1000:1000 /root/made && echo chowned",
    ]);
    let mounts = mount_table();
    let output = output_with_timeout(&mut run, TIMEOUT);
    assert_exit_code("ns-process as uid 65534 on the range's tree", &output, 0);
    assert_eq!(stdout_text(&output), "0\n0\nroot:shadow\nchowned\n");
    let made = std::fs::symlink_metadata(tree.join("root/made")).unwrap();
    assert_eq!((made.uid(), made.gid()), (201_000, 201_000));
    let mut expected = before;
    expected.push(tree.join("root/made").display().to_string());
    expected.sort();
    assert_eq!(paths(), expected, "only what the command made is new");
    assert_eq!(mounts, mount_table(), "a mount was left behind");
}

#[test]
fn terminals_cpus_network_and_tmpfs_are_what_programs_expect() {
    let rootfs = or_skip!(debian(), "no Debian rootfs");
    for user in TestUser::all(NS_PROCESS) {
        let label = user.label();
        // A pseudo-terminal from the rootfs's own devpts: Python asks /dev/ptmx for one.
        let pty = "import os; _, s = os.openpty(); print(os.ttyname(s))";
        let name = printed(&user, rootfs, &["--", "python3", "-c", pty]);
        assert!(
            name.starts_with("/dev/pts/"),
            "{label}: openpty gave {name:?}"
        );
        // script(1) runs its command on a new pseudo-terminal, whose name tty prints.
        let name = printed(&user, rootfs, &["--", "script", "-qc", "tty", "/dev/null"]);
        assert!(
            name.trim_end().starts_with("/dev/pts/"),
            "{label}: script's terminal is {name:?}"
        );
        // lscpu reads /proc/cpuinfo and /sys/devices/system/cpu.
        let cpus = printed(&user, rootfs, &["--", "lscpu"]);
        assert!(cpus.contains("CPU(s):"), "{label}: lscpu printed {cpus:?}");
        // A network namespace of its own has nothing but its loopback.
        assert_eq!(
            printed(
                &user,
                rootfs,
                &["--net", "none", "--", "ls", "/sys/class/net"]
            ),
            "lo\n",
            "{label}"
        );
        let df = printed(
            &user,
            rootfs,
            &["--", "df", "--output=fstype,target", "/dev/shm", "/tmp"],
        );
        // df pads its columns to their widest entry.
        let rows: Vec<Vec<&str>> = df
            .lines()
            .map(|row| row.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows,
            [
                vec!["Type", "Mounted", "on"],
                vec!["tmpfs", "/dev/shm"],
                vec!["tmpfs", "/tmp"]
            ],
            "{label}: /dev/shm and /tmp are tmpfs"
        );
    }
}

/// Who changes a writable copy of the Debian rootfs: root, whose ids 0-65535 are mapped
/// as they are, or uid 65534 with the range `nobody:200000:65536` in the test's own ids
/// files, for whom root inside is 65534 outside and uid N inside is 199999 + N.
enum Changer {
    Root,
    Nobody(SubordinateIdFiles, TestUser),
}

impl Changer {
    /// Root and uid 65534; `Err` says why the test can't run: both need root, one to map
    /// 65536 ids, the other to bind its ids files.
    fn all() -> Result<Vec<Changer>, String> {
        if !is_root() {
            return Err("mapping uid 1000 needs root, or a range bound over /etc/subuid".into());
        }
        let nobody = TestUser::unprivileged(NS_PROCESS)?;
        let files = SubordinateIdFiles::with("nobody:200000:65536\n")?;
        Ok(vec![Changer::Root, Changer::Nobody(files, nobody)])
    }

    fn label(&self) -> &'static str {
        match self {
            Changer::Root => "root",
            Changer::Nobody(..) => "uid 65534 with a range",
        }
    }

    /// The host's id for `id` inside.
    fn outside(&self, id: u32) -> u32 {
        match self {
            Changer::Root => id,
            Changer::Nobody(..) if id == 0 => 65534,
            Changer::Nobody(..) => 199_999 + id,
        }
    }

    /// ns-process in `rootfs` with `args`, run by this user; fails the test unless it
    /// exits with 0 and leaves no mount behind. Returns what it printed.
    fn printed(&self, rootfs: &Path, args: &[&str]) -> String {
        let mut command = match self {
            Changer::Root => Command::new(NS_PROCESS),
            Changer::Nobody(files, nobody) => files.command(&[], nobody.program()),
        };
        command
            .current_dir("/")
            .arg("--rootfs")
            .arg(rootfs)
            .args(args);
        let before = mount_table();
        let output = output_with_timeout(&mut command, TIMEOUT);
        assert_exit_code(&format!("{}: {args:?}", self.label()), &output, 0);
        assert_eq!(before, mount_table(), "{args:?} left a mount behind");
        stdout_text(&output)
    }

    /// A copy of `rootfs` in a new temporary directory (as `rootfs` in it), each file
    /// owned by the ids outside that stand for its owners inside: commands that change the
    /// rootfs change the copy, and the cached tree stays as it was built for other tests.
    /// The whole tree, not /etc alone: useradd and dpkg write /var and /usr too.
    fn writable_copy(&self, rootfs: &Path) -> reexec_tests::TempDir {
        let dir = temp_dir("debian-copy");
        let copy = dir.path().join("rootfs");
        let output =
            output_with_timeout(Command::new("cp").arg("-a").arg(rootfs).arg(&copy), TIMEOUT);
        assert_exit_code("cp -a of the Debian rootfs", &output, 0);
        if matches!(self, Changer::Nobody(..)) {
            self.shift_owners(&copy);
        }
        dir
    }

    /// Gives `path` and what it holds the owners [`Changer::outside`] says.
    fn shift_owners(&self, path: &Path) {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::symlink_metadata(path).unwrap();
        std::os::unix::fs::lchown(
            path,
            Some(self.outside(meta.uid())),
            Some(self.outside(meta.gid())),
        )
        .unwrap();
        if meta.file_type().is_symlink() {
            return;
        }
        // chown clears set-user-ID and set-group-ID bits, which su and crontab need.
        let mode = std::fs::Permissions::from_mode(meta.mode() & 0o7777);
        std::fs::set_permissions(path, mode).unwrap();
        if meta.is_dir() {
            for entry in std::fs::read_dir(path).unwrap() {
                self.shift_owners(&entry.unwrap().path());
            }
        }
    }
}

#[test]
fn useradd_makes_a_user_su_switches_to() {
    let rootfs = or_skip!(debian(), "no Debian rootfs");
    for changer in or_skip!(Changer::all(), "no run with 65536 ids") {
        let dir = changer.writable_copy(rootfs);
        let copy = dir.path().join("rootfs");
        assert_eq!(
            changer.printed(&copy, &["--", "sh", "-c", "useradd u && su u -c id"]),
            "uid=1000(u) gid=1000(u) groups=1000(u)\n",
            "{}",
            changer.label()
        );
        let passwd = std::fs::read_to_string(copy.join("etc/passwd")).unwrap();
        assert!(passwd.contains("\nu:x:1000:1000:"), "{}", changer.label());
    }
}

/// The .debs of `packages` of the host's release, fetched by `apt-get download` into a
/// new temporary directory; `Err` says why there are none.
fn downloaded(packages: &[&str]) -> Result<reexec_tests::TempDir, String> {
    let dir = temp_dir("debs");
    let output = output_with_timeout(
        Command::new("apt-get")
            .arg("download")
            .args(packages)
            .current_dir(dir.path()),
        TIMEOUT,
    );
    if !output.status.success() {
        return Err(format!(
            "apt-get download {packages:?} failed: {}",
            reexec_tests::describe(&output)
        ));
    }
    Ok(dir)
}

#[test]
fn dpkg_installs_packages_whose_scripts_add_groups_and_chown() {
    let rootfs = or_skip!(debian(), "no Debian rootfs");
    let changers = or_skip!(Changer::all(), "no run with 65536 ids");
    // cron-daemon-common's postinst runs addgroup crontab; cron's, chgrp on crontab.
    let debs = or_skip!(
        downloaded(&["cron-daemon-common", "cron"]),
        "no packages to install"
    );
    let bind = format!("{}:/debs:ro", debs.path().display());
    let install = "dpkg -i /debs/cron-daemon-common_*.deb > /dev/null && \
                   dpkg -i /debs/cron_*.deb > /dev/null && \
                   getent group crontab | cut -d: -f1 && stat -c %U:%G:%a /usr/bin/crontab";
    for changer in changers {
        let dir = changer.writable_copy(rootfs);
        let copy = dir.path().join("rootfs");
        let printed = changer.printed(&copy, &["--bind", &bind, "--", "sh", "-c", install]);
        assert_eq!(
            printed,
            "crontab\nroot:crontab:2755\n",
            "{}",
            changer.label()
        );
        // The group has an id inside the map, and the host sees the id that stands for it.
        use std::os::unix::fs::MetadataExt;
        let group = std::fs::read_to_string(copy.join("etc/group")).unwrap();
        let gid: u32 = group
            .lines()
            .find_map(|line| line.strip_prefix("crontab:x:"))
            .and_then(|rest| rest.split(':').next())
            .unwrap()
            .parse()
            .unwrap();
        let meta = std::fs::metadata(copy.join("usr/bin/crontab")).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (changer.outside(0), changer.outside(gid)),
            "{}",
            changer.label()
        );
    }
}

#[test]
fn an_interactive_shell_in_a_terminal_has_a_tty_and_script_works() {
    let rootfs = or_skip!(debian(), "no Debian rootfs");
    let before = mount_table();
    in_terminal_as_root_and_unprivileged(NS_PROCESS, |user, server, work| {
        let label = user.label();
        // No command: the shell the rootfs's passwd gives root, bash, interactive.
        let run = server.run_recorded(
            work,
            &format!("{} --rootfs {}", user.command_line(), rootfs.display()),
        );
        // What the shell prints, not what the terminal echoes of what was typed.
        server.type_line("echo shell-is-$((20 + 1))");
        server.expect("shell-is-21");
        server.type_line(
            "case $(tty) in /dev/console|/dev/pts/[0-9]*) echo tty-is-$((1 + 1));; \
             *) echo no-tty-$(tty);; esac",
        );
        server.expect("tty-is-2");
        // script(1) opens a pseudo-terminal of its own and runs the command on it.
        // Until script has ended, what is typed goes to its terminal, not to the shell.
        server.type_line(
            "script -qc 'case $(tty) in /dev/pts/[0-9]*) echo script-is-$((2 + 3));; esac' \
             /dev/null; echo back-from-script-$((3 + 4))",
        );
        server.expect("script-is-5");
        server.expect("back-from-script-7");
        server.type_line("exit 3");
        assert_eq!(
            run.status(),
            3,
            "{label}: the shell's exit status must come through"
        );
        run.assert_settings_restored(label);
    });
    assert_eq!(before, mount_table(), "the host's mount table changed");
}
