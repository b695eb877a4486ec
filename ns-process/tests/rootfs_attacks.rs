//! A root filesystem, or the directory make-rootfs builds one in, prepared by someone
//! else: its owner may swap entries for symbolic links at any moment, before or while
//! ns-process (or make-rootfs) runs. Nothing outside the rootfs may be created, written
//! or remounted through them. Host directories a test guards are stand-ins it made itself.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use nix::fcntl::{OFlag, RenameFlags, open, renameat2};
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Pid, Uid, fork, setgroups, setresgid, setresuid};
use reexec_tests::faults::SeccompFilter;
use reexec_tests::procfs::{children, is_running};
use reexec_tests::{
    MAKE_ROOTFS, TestUser, Unprivileged, assert_failed_with, busybox_rootfs, busybox_rootfs_copy,
    describe, is_root, mount_table, or_skip, output_with_timeout, skip_unless, stderr_text,
    temp_dir,
};

const NS_PROCESS: &str = env!("CARGO_BIN_EXE_ns-process");
const TIMEOUT: Duration = Duration::from_secs(60);
/// The user who owns the rootfs when the caller is root: an ordinary user.
const ROOTFS_OWNER: u32 = 65534;
/// The user who owns the rootfs when the caller is uid 65534: someone else again.
const OTHER_OWNER: u32 = 65533;

fn chown_tree(path: &Path, uid: u32) {
    let owner = format!("{uid}:{uid}");
    let status = Command::new("chown")
        .args(["-R", "-h", &owner])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "chown -R {owner} {}", path.display());
}

/// A copy of the busybox rootfs at `to`, owned by `owner` (uid and gid) where the tests
/// run as root, or why there is none.
fn copy_of_busybox_rootfs(to: &Path, owner: u32) -> Result<(), String> {
    busybox_rootfs_copy(env!("CARGO_TARGET_TMPDIR"), to, (owner, owner))
}

/// A directory standing in for one of the host's, with a file of known content: what the
/// attacks aim at. Everything in it, names, contents and modes, is what must not change.
struct Decoy {
    path: PathBuf,
    before: BTreeMap<String, (Vec<u8>, u32)>,
}

impl Decoy {
    fn new(path: PathBuf, files: &[&str], owner: u32) -> Decoy {
        std::fs::create_dir(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        for file in files {
            std::fs::write(path.join(file), format!("the host's own {file}\n")).unwrap();
        }
        chown_tree(&path, owner);
        let before = Decoy::contents(&path);
        Decoy { path, before }
    }

    fn contents(path: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
        let mut contents = BTreeMap::new();
        let mode = std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode();
        contents.insert(".".to_owned(), (Vec::new(), mode));
        for entry in std::fs::read_dir(path).unwrap() {
            let entry = entry.unwrap();
            let metadata = std::fs::symlink_metadata(entry.path()).unwrap();
            let data = if metadata.is_file() {
                std::fs::read(entry.path()).unwrap()
            } else {
                Vec::new()
            };
            contents.insert(
                entry.file_name().to_string_lossy().into_owned(),
                (data, metadata.permissions().mode()),
            );
        }
        contents
    }

    fn assert_untouched(&self, context: &str) {
        assert_eq!(
            self.before,
            Decoy::contents(&self.path),
            "{context}: {} changed",
            self.path.display()
        );
    }
}

/// A process of uid `uid` that swaps the entries `first` and `second` of `dir` with
/// renameat2(RENAME_EXCHANGE) as fast as it can, until dropped: the attacker's side of
/// the race, as an ordinary user who owns `dir`. Until both entries exist it keeps trying.
struct Swapper {
    pid: Pid,
}

impl Swapper {
    fn start(dir: &Path, first: &str, second: &str, uid: u32) -> Swapper {
        // Everything the child needs is made before the fork: it must not allocate.
        let dir = open(
            dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        let first = CString::new(first).unwrap();
        let second = CString::new(second).unwrap();
        let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(uid));
        // SAFETY: the test binary has other threads; the child only makes system calls
        // (prctl, setgroups, setres[ug]id, renameat2) and abort(3), all async-signal-safe,
        // and never returns to the caller's code.
        match unsafe { fork() }.unwrap() {
            ForkResult::Parent { child } => Swapper { pid: child },
            ForkResult::Child => {
                let dropped = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_ok()
                    && setgroups(&[]).is_ok()
                    && setresgid(gid, gid, gid).is_ok()
                    && setresuid(uid, uid, uid).is_ok();
                if !dropped {
                    std::process::abort();
                }
                loop {
                    let swapped = renameat2(
                        &dir,
                        first.as_c_str(),
                        &dir,
                        second.as_c_str(),
                        RenameFlags::RENAME_EXCHANGE,
                    );
                    // An entry not made yet is waited for; any other failure ends the
                    // swapper, and the test fails: a race that never ran proves nothing.
                    if swapped.is_err_and(|errno| errno != nix::errno::Errno::ENOENT) {
                        std::process::abort();
                    }
                }
            }
        }
    }

    /// Stops the swapper; `Err` if it had already ended, having failed.
    fn stop(self) -> Result<(), String> {
        let still_swapping = waitpid(self.pid, Some(WaitPidFlag::WNOHANG));
        // Drop kills and reaps it.
        match still_swapping {
            Ok(WaitStatus::StillAlive) => Ok(()),
            other => Err(format!("the swapper ended early: {other:?}")),
        }
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        let _ = kill(self.pid, Signal::SIGKILL);
        let _ = waitpid(self.pid, None);
    }
}

/// Who runs ns-process against whose rootfs.
struct Victim {
    user: TestUser,
    /// Owns the decoy directory: what the caller could write on the host.
    uid: u32,
    /// Owns the rootfs and swaps in it.
    attacker: u32,
}

/// Root, and uid 65534 where it can run.
fn victims() -> Vec<Victim> {
    TestUser::all(NS_PROCESS)
        .into_iter()
        .map(|user| Victim {
            uid: user.ids().0,
            attacker: if user.is_root() {
                ROOTFS_OWNER
            } else {
                OTHER_OWNER
            },
            user,
        })
        .collect()
}

#[test]
fn a_dev_swapped_for_a_symlink_while_ns_process_starts_reaches_no_host_directory() {
    skip_unless!(
        is_root(),
        "a rootfs owned by another user is made with root's chown"
    );
    const RUNS: usize = 40;
    const TIME: Duration = Duration::from_secs(90);
    let mounts = mount_table();
    for victim in victims() {
        let dir = temp_dir("rootfs-race");
        let rootfs = dir.path().join("rootfs");
        or_skip!(
            copy_of_busybox_rootfs(&rootfs, victim.attacker),
            "no root filesystem"
        );
        // `null`: a file the old setup truncated; any new entry is a node or link it made.
        let decoy = Decoy::new(dir.path().join("host-dir"), &["null"], victim.uid);
        std::os::unix::fs::symlink(&decoy.path, rootfs.join("dev-swap")).unwrap();
        chown_tree(&rootfs.join("dev-swap"), victim.attacker);

        let swapper = Swapper::start(&rootfs, "dev", "dev-swap", victim.attacker);
        let (mut started, mut refused, mut unexpected) = (0, 0, Vec::new());
        let deadline = Instant::now() + TIME;
        let rootfs_arg = rootfs.to_str().unwrap();
        for _ in 0..RUNS {
            if Instant::now() > deadline {
                break;
            }
            let output = output_with_timeout(
                victim
                    .user
                    .command()
                    .args(["--rootfs", rootfs_arg, "--", "/bin/true"]),
                TIMEOUT,
            );
            match output.status.code() {
                Some(0) => started += 1,
                Some(125) if stderr_text(&output).contains("is a symbolic link") => refused += 1,
                _ => unexpected.push(describe(&output)),
            }
        }
        let swapping = swapper.stop();
        println!(
            "{}: {started} started, {refused} refused a symlinked /dev",
            victim.user.label()
        );
        decoy.assert_untouched(victim.user.label());
        assert!(
            unexpected.is_empty(),
            "{}: runs ended otherwise: {unexpected:#?}",
            victim.user.label()
        );
        swapping.unwrap();
        // The race reached the setup: some runs found the link where /dev should be.
        assert!(
            refused > 0,
            "{}: no run met the symlink",
            victim.user.label()
        );
    }
    assert_eq!(mounts, mount_table(), "a mount was left behind");
}

/// The PID of the first child of `pid`, once it has one; `None` if it ended first.
fn first_child(pid: u32, deadline: Instant) -> Option<u32> {
    while Instant::now() < deadline && is_running(pid) {
        if let Some(&child) = children(pid).first() {
            return Some(child);
        }
    }
    None
}

/// Waits until the init `pid` has mounted a proc in `rootfs`, seen from its mount table:
/// on `rootfs/proc` before the pivot, or on `/proc` of a root that is `rootfs` after it.
/// `false` if it ended or the deadline passed first.
fn proc_mounted_in(pid: u32, rootfs: &str, deadline: Instant) -> bool {
    let before_pivot = format!(" {rootfs}/proc ");
    let pivoted = format!(" {rootfs} / ");
    while Instant::now() < deadline {
        let Ok(mountinfo) = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")) else {
            return false;
        };
        let pivoted = mountinfo.contains(&pivoted);
        if mountinfo.lines().any(|line| {
            line.contains(" - proc ")
                && (line.contains(&before_pivot) || pivoted && line.contains(" /proc "))
        }) {
            return true;
        }
    }
    false
}

#[test]
fn a_proc_swapped_for_a_symlink_once_mounted_leaves_no_writable_proc_sys_behind() {
    skip_unless!(
        is_root(),
        "only root's ns-process maps root inside to host root"
    );
    // Only then can root inside write the host's sysctls, which ns-process makes read-only
    // in the proc it mounts; a caller of uid 65534 is refused by the kernel anyway.
    println!("not run as uid 65534: there the kernel refuses every write to /proc/sys");
    const RUNS: usize = 20;
    let dir = temp_dir("rootfs-proc-swap");
    let rootfs = dir.path().join("rootfs");
    or_skip!(
        copy_of_busybox_rootfs(&rootfs, ROOTFS_OWNER),
        "no root filesystem"
    );
    // What a protection done by path would make read-only once `proc` leads here, with
    // what the init reads there to look real.
    std::fs::create_dir_all(rootfs.join("fake-proc/sys/kernel")).unwrap();
    std::fs::write(rootfs.join("fake-proc/sys/kernel/cap_last_cap"), "40\n").unwrap();
    std::os::unix::fs::symlink("fake-proc", rootfs.join("proc-swap")).unwrap();
    for made in ["fake-proc", "proc-swap"] {
        chown_tree(&rootfs.join(made), ROOTFS_OWNER);
    }
    let mounts = mount_table();
    let rootfs_arg = rootfs.to_str().unwrap();
    let (proc, swap) = (rootfs.join("proc"), rootfs.join("proc-swap"));
    let exchange = || {
        renameat2(
            nix::fcntl::AT_FDCWD,
            &proc,
            nix::fcntl::AT_FDCWD,
            &swap,
            RenameFlags::RENAME_EXCHANGE,
        )
        .unwrap()
    };

    // The command, the rootfs owner's own program, looks for the real proc under either
    // name and writes back the value it read: a write that succeeds is the escape.
    let script = r#"
        for d in /proc /proc-swap; do
          v=$(cat $d/sys/vm/swappiness 2>/dev/null) &&
            (echo "$v" > $d/sys/vm/swappiness) 2>/dev/null && echo "wrote $d/sys/vm/swappiness"
        done
        echo tried"#;
    let mut swapped = 0;
    for run in 0..RUNS {
        // The owner swaps `proc` for the link once, the moment the proc is mounted on it
        // (root plays the owner: the kernel lets the owner do the same).
        let child = Command::new(NS_PROCESS)
            .args(["--rootfs", rootfs_arg, "--", "/bin/sh", "-c", script])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let init = first_child(child.id(), deadline);
        let in_time = init.is_some_and(|init| proc_mounted_in(init, rootfs_arg, deadline));
        if in_time {
            exchange();
            swapped += 1;
        }
        let output = child.wait_with_output().unwrap();
        if in_time {
            exchange();
        }
        let out = reexec_tests::stdout_text(&output);
        assert!(
            output.status.success() && out.ends_with("tried\n") && !out.contains("wrote"),
            "run {run}, swapped: {in_time}: {}",
            describe(&output)
        );
    }
    println!("{swapped} of {RUNS} runs had proc swapped once mounted");
    assert!(swapped > 0, "no swap came in time");
    assert_eq!(mounts, mount_table(), "a mount was left behind");
}

fn assert_refused_as(label: &str, output: &Output, expected: &[&str]) {
    assert_failed_with(label, output, 125, expected);
}

/// What stands where the rootfs's `proc` or `dev` should be a directory.
#[derive(Debug, Clone, Copy)]
enum MountPoint {
    LinkToHost,
    LinkInside,
    File,
}

impl MountPoint {
    /// Makes it at `at`; returns what the refusal must say.
    fn make(self, at: &Path, host_dir: &Path) -> &'static str {
        match self {
            MountPoint::LinkToHost => std::os::unix::fs::symlink(host_dir, at).unwrap(),
            MountPoint::LinkInside => std::os::unix::fs::symlink("tmp", at).unwrap(),
            MountPoint::File => {
                std::fs::write(at, "").unwrap();
                return "is not a directory";
            }
        }
        "is a symbolic link"
    }
}

#[test]
fn a_proc_or_dev_that_is_a_symlink_or_no_directory_is_refused_and_nothing_is_mounted() {
    let dir = temp_dir("rootfs-links");
    let rootfs = dir.path().join("rootfs");
    let me = nix::unistd::geteuid().as_raw();
    or_skip!(copy_of_busybox_rootfs(&rootfs, me), "no root filesystem");
    let decoy = Decoy::new(dir.path().join("host-dir"), &["null"], me);
    let rootfs_arg = rootfs.to_str().unwrap();
    let mounts = mount_table();
    let run = |check: &dyn Fn(&str, &Output)| {
        reexec_tests::as_root_and_unprivileged(
            NS_PROCESS,
            TIMEOUT,
            &["--rootfs", rootfs_arg, "--", "/bin/true"],
            check,
        );
    };
    // The rootfs as built works: what follows fails only for what each case changes.
    run(&|label, output| assert!(output.status.success(), "{label}: {}", describe(output)));

    // sys and tmp too: mounted on like proc, made when missing, never through a link.
    for name in ["proc", "dev", "sys", "tmp"] {
        let real = rootfs.join(name);
        let aside = rootfs.join(format!("{name}.aside"));
        std::fs::rename(&real, &aside).unwrap();
        let path = format!("{rootfs_arg}/{name}");
        for case in [
            MountPoint::LinkToHost,
            MountPoint::LinkInside,
            MountPoint::File,
        ] {
            let why = case.make(&real, &decoy.path);
            run(&|label, output| {
                assert_refused_as(&format!("{label}: {name} {case:?}"), output, &[&path, why]);
            });
            std::fs::remove_file(&real).unwrap();
        }
        std::fs::rename(&aside, &real).unwrap();
    }
    decoy.assert_untouched("after the refusals");
    assert!(
        std::fs::read_dir(rootfs.join("tmp"))
            .unwrap()
            .next()
            .is_none(),
        "nothing may be mounted or made in the rootfs's tmp"
    );
    assert_eq!(mounts, mount_table(), "a mount was left behind");
}

/// Runs make-rootfs with `args` as the tests' own user.
fn make_rootfs(args: &[&Path]) -> Output {
    output_with_timeout(Command::new("bash").arg(MAKE_ROOTFS).args(args), TIMEOUT)
}

fn entries(path: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(path)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn assert_failed(label: &str, output: &Output, expected: &str) {
    assert_failed_with(label, output, 1, &[expected]);
}

/// A target directory of `owner` with `etc` and `tmp` linked to two decoys of the host's,
/// which belong to `victim`: make-rootfs run by `victim` could write them.
fn prepared_target(dir: &Path, name: &str, owner: u32, victim: u32) -> (PathBuf, Decoy, Decoy) {
    let target = dir.join(name);
    std::fs::create_dir(&target).unwrap();
    let etc = Decoy::new(dir.join(format!("{name}-host-etc")), &["passwd"], victim);
    let tmp = Decoy::new(dir.join(format!("{name}-host-dir")), &[], victim);
    std::os::unix::fs::symlink(&etc.path, target.join("etc")).unwrap();
    std::os::unix::fs::symlink(&tmp.path, target.join("tmp")).unwrap();
    chown_tree(&target, owner);
    (target, etc, tmp)
}

#[test]
fn make_rootfs_never_writes_through_a_directory_it_did_not_create() {
    let dir = temp_dir("make-rootfs");
    let me = nix::unistd::geteuid().as_raw();

    // The tests' own user's directory, filled by someone with a say in it: not empty.
    let (target, etc, tmp) = prepared_target(dir.path(), "own-filled", me, me);
    let output = make_rootfs(&[&target]);
    etc.assert_untouched("own, filled");
    tmp.assert_untouched("own, filled");
    assert_failed("own, filled", &output, "is not empty");
    assert_eq!(entries(&target), ["etc", "tmp"]);

    // The target itself a link to an empty directory elsewhere.
    let elsewhere = Decoy::new(dir.path().join("empty-host-dir"), &[], me);
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&elsewhere.path, &link).unwrap();
    assert_failed("a link", &make_rootfs(&[&link]), "is a symbolic link");
    elsewhere.assert_untouched("a link");

    // An empty directory of the user's own, that others may write in.
    let open_to_all = dir.path().join("open-to-all");
    std::fs::create_dir(&open_to_all).unwrap();
    std::fs::set_permissions(&open_to_all, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert_failed(
        "writable by others",
        &make_rootfs(&[&open_to_all]),
        "can be written by others (mode 777)",
    );
    assert!(entries(&open_to_all).is_empty());

    // A parent that does not exist is not made: only the default location's are.
    assert_failed(
        "no parent",
        &make_rootfs(&[&dir.path().join("missing/rootfs")]),
        "does not exist",
    );

    // What it built itself is not built over either.
    let built = dir.path().join("built");
    let output = make_rootfs(&[&built]);
    assert!(output.status.success(), "{}", describe(&output));
    assert_failed("rebuilt", &make_rootfs(&[&built]), "rm -rf");

    skip_unless!(
        is_root(),
        "the cases of a directory of another user: chown needs root"
    );
    // Root on a directory an ordinary user prepared, even an empty one it could still
    // fill while make-rootfs works: the row's attack.
    let (target, etc, tmp) = prepared_target(dir.path(), "users", ROOTFS_OWNER, 0);
    let output = make_rootfs(&[&target]);
    etc.assert_untouched("root");
    tmp.assert_untouched("root");
    assert_failed("root", &output, "belongs to uid 65534");
    let empty = dir.path().join("users-empty");
    std::fs::create_dir(&empty).unwrap();
    chown_tree(&empty, ROOTFS_OWNER);
    assert_failed(
        "root, empty",
        &make_rootfs(&[&empty]),
        "belongs to uid 65534",
    );
    assert!(entries(&empty).is_empty());

    // uid 65534 on a directory another user prepared in a directory open to everyone,
    // sticky as /tmp is (without the sticky bit, the parent itself is refused).
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let (target, etc, tmp) = prepared_target(&shared, "others", OTHER_OWNER, 65534);
    match Unprivileged::prepare(MAKE_ROOTFS) {
        Ok(unprivileged) => {
            let run = |target: &Path| {
                output_with_timeout(
                    &mut unprivileged.command(MAKE_ROOTFS, &[target.to_str().unwrap()]),
                    TIMEOUT,
                )
            };
            let output = run(&target);
            etc.assert_untouched("uid 65534");
            tmp.assert_untouched("uid 65534");
            assert_failed("uid 65534", &output, "belongs to uid 65533");
            // And where it may create the directory, it builds.
            let output = run(&shared.join("fresh"));
            assert!(output.status.success(), "uid 65534: {}", describe(&output));
        }
        Err(reason) => println!("skipped the run as uid 65534: {reason}"),
    }
}

#[test]
fn make_rootfs_debian_goes_through_the_same_checks_before_building() {
    let dir = temp_dir("make-rootfs-debian");
    let me = nix::unistd::geteuid().as_raw();
    let debian = Path::new("--debian");

    // Each refusal comes before mmdebstrap is started: none of these takes a second.
    let (target, etc, tmp) = prepared_target(dir.path(), "own-filled", me, me);
    let output = make_rootfs(&[debian, &target]);
    etc.assert_untouched("--debian, own, filled");
    tmp.assert_untouched("--debian, own, filled");
    assert_failed("--debian, own, filled", &output, "is not empty");
    assert_eq!(entries(&target), ["etc", "tmp"]);
    let elsewhere = Decoy::new(dir.path().join("empty-host-dir"), &[], me);
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&elsewhere.path, &link).unwrap();
    assert_failed(
        "--debian, a link",
        &make_rootfs(&[debian, &link]),
        "is a symbolic link",
    );
    elsewhere.assert_untouched("--debian, a link");
    assert_failed(
        "--debian twice",
        &make_rootfs(&[debian, debian]),
        "usage: scripts/make-rootfs [--debian] [DIR]",
    );

    skip_unless!(
        is_root(),
        "the cases of a directory of another user: chown needs root"
    );
    let (target, etc, tmp) = prepared_target(dir.path(), "users", ROOTFS_OWNER, 0);
    let output = make_rootfs(&[debian, &target]);
    etc.assert_untouched("--debian, root");
    tmp.assert_untouched("--debian, root");
    assert_failed("--debian, root", &output, "belongs to uid 65534");

    // A user without a subordinate range: mmdebstrap --mode=unshare could not map root.
    let subordinate = |file: &str| {
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .any(|line| line.starts_with("nobody:"))
    };
    skip_unless!(
        !subordinate("/etc/subuid") && !subordinate("/etc/subgid"),
        "uid 65534 (nobody) has a subordinate range here"
    );
    skip_unless!(
        Path::new("/usr/bin/mmdebstrap").exists(),
        "mmdebstrap is not installed (scripts/install-test-deps installs it)"
    );
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let fresh = shared.join("fresh");
    let unprivileged = or_skip!(Unprivileged::prepare(MAKE_ROOTFS), "no run as uid 65534");
    let output = output_with_timeout(
        &mut unprivileged.command(MAKE_ROOTFS, &["--debian", fresh.to_str().unwrap()]),
        TIMEOUT,
    );
    assert_failed(
        "--debian, uid 65534",
        &output,
        "needs a subordinate id range for mmdebstrap --mode=unshare",
    );
    assert!(
        stderr_text(&output).contains("or run make-rootfs --debian as root"),
        "{}",
        describe(&output)
    );
    assert!(!fresh.exists(), "made before the refusal");
}

#[test]
fn make_rootfs_builds_in_the_callers_data_directory_by_default() {
    let home = temp_dir("make-rootfs-home");
    let output = output_with_timeout(
        Command::new("bash")
            .arg(MAKE_ROOTFS)
            .env("HOME", home.path())
            .env_remove("XDG_DATA_HOME"),
        TIMEOUT,
    );
    assert!(output.status.success(), "{}", describe(&output));
    let rootfs = home.path().join(".local/share/ns-process/rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/ns-process-rootfs")).unwrap(),
        "ns-process-rootfs\n"
    );
    let data = temp_dir("make-rootfs-xdg");
    let output = output_with_timeout(
        Command::new("bash")
            .arg(MAKE_ROOTFS)
            .env("XDG_DATA_HOME", data.path()),
        TIMEOUT,
    );
    assert!(output.status.success(), "{}", describe(&output));
    assert!(data.path().join("ns-process/rootfs/bin/busybox").is_file());

    // With nowhere of the caller's own to default to, it asks for a directory.
    let output = output_with_timeout(
        Command::new("bash")
            .arg(MAKE_ROOTFS)
            .env_remove("HOME")
            .env_remove("XDG_DATA_HOME"),
        TIMEOUT,
    );
    assert_failed("no HOME", &output, "scripts/make-rootfs DIR");
}

#[test]
fn make_rootfs_refuses_a_parent_someone_else_could_swap_its_directory_in() {
    skip_unless!(
        is_root(),
        "a directory owned by another user is made with root's chown"
    );
    const RUNS: usize = 20;
    let dir = temp_dir("make-rootfs-race");
    // Empty, root's own and closed to others: were make-rootfs to follow the link, only
    // the check of where it landed would stop it.
    let decoy = Decoy::new(dir.path().join("host-dir"), &[], 0);
    for run in 0..RUNS {
        // The parent is the attacker's: it can rename what root creates in it.
        let parent = dir.path().join(format!("run-{run}"));
        std::fs::create_dir(&parent).unwrap();
        std::os::unix::fs::symlink(&decoy.path, parent.join("link")).unwrap();
        chown_tree(&parent, ROOTFS_OWNER);
        let swapper = Swapper::start(&parent, "rootfs", "link", ROOTFS_OWNER);
        let output = make_rootfs(&[&parent.join("rootfs")]);
        let swapping = swapper.stop();
        decoy.assert_untouched(&format!("run {run}"));
        // A check of where it landed after the fact can be fooled (bash's `pwd -P` reads
        // the path again, which may have been swapped back): a parent someone else can
        // rename in is refused before anything is made in it.
        assert_eq!(
            output.status.code(),
            Some(1),
            "run {run}: {}",
            describe(&output)
        );
        assert!(
            stderr_text(&output)
                .contains(&format!("belongs to uid {ROOTFS_OWNER}, who could swap")),
            "run {run}: {}",
            describe(&output)
        );
        assert!(
            !parent.join("rootfs").exists(),
            "run {run}: made in a refused parent"
        );
        swapping.unwrap();
    }
}

/// Makes the system calls `numbers` fail with ENOSYS for `command` and what it starts, as
/// on a kernel that lacks them: a seccomp filter installed before it execs.
fn as_if_the_kernel_lacked(command: &mut Command, numbers: &[nix::libc::c_long]) {
    SeccompFilter::failing(numbers, nix::libc::ENOSYS).install_before_exec(command);
}

#[test]
fn without_openat2_or_the_mount_api_rootfs_is_refused_with_the_linux_version_it_needs() {
    use nix::libc::{
        SYS_fsconfig, SYS_fsmount, SYS_fsopen, SYS_move_mount, SYS_open_tree, SYS_openat2,
    };
    let rootfs = or_skip!(
        busybox_rootfs(env!("CARGO_TARGET_TMPDIR")),
        "no root filesystem"
    );
    let rootfs = rootfs.to_str().unwrap();
    let mounts = mount_table();
    // Linux 5.2 to 5.5 have the mount API but no openat2; older ones have neither.
    let before_5_6: &'static [nix::libc::c_long] = &[SYS_openat2];
    let before_5_2: &'static [nix::libc::c_long] = &[
        SYS_openat2,
        SYS_open_tree,
        SYS_move_mount,
        SYS_fsopen,
        SYS_fsconfig,
        SYS_fsmount,
    ];
    let users = TestUser::all(NS_PROCESS);
    for (kernel, missing) in [("5.2", before_5_6), ("4.15", before_5_2)] {
        for user in &users {
            let label = user.label();
            let mut command = user.command();
            command.args(["--rootfs", rootfs, "--", "/bin/true"]);
            as_if_the_kernel_lacked(&mut command, missing);
            let output = output_with_timeout(&mut command, TIMEOUT);
            assert_refused_as(
                &format!("{label} on Linux {kernel}"),
                &output,
                &[
                    "Function not implemented",
                    "--rootfs needs Linux 5.6 or later",
                ],
            );
        }
    }
    // Without --rootfs nothing of the sort is needed.
    let mut command = Command::new(NS_PROCESS);
    command.args(["--", "true"]);
    as_if_the_kernel_lacked(&mut command, before_5_2);
    let output = output_with_timeout(&mut command, TIMEOUT);
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(mounts, mount_table(), "a mount was left behind");
}
