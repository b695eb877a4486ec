//! A root filesystem, or the directory make-rootfs builds one in, prepared by someone
//! else: its owner may swap entries for symbolic links at any moment, before or while
//! ns-process (or make-rootfs) runs. Nothing outside the rootfs may be created, written
//! or remounted through them. Host directories a test guards are stand-ins it made itself.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use nix::fcntl::{OFlag, RenameFlags, open, renameat2};
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Pid, Uid, fork, setgroups, setresgid, setresuid};
use reexec_tests::{
    MAKE_ROOTFS, TempDir, Unprivileged, describe, is_root, output_with_timeout, stderr_text,
};

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
    assert_eq!(
        output.status.code(),
        Some(1),
        "{label}: {}",
        describe(output)
    );
    assert!(
        stderr_text(output).contains(expected),
        "{label}: expected {expected:?} in: {}",
        describe(output)
    );
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
    let dir = TempDir::new("make-rootfs");
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

    if !is_root() {
        println!("skipped the cases of a directory of another user: chown needs root");
        return;
    }
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

    // uid 65534 on a directory another user prepared in a directory open to everyone.
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
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
fn make_rootfs_builds_in_the_callers_data_directory_by_default() {
    let home = TempDir::new("make-rootfs-home");
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
    let data = TempDir::new("make-rootfs-xdg");
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
fn make_rootfs_whose_new_directory_is_swapped_for_a_link_writes_nothing_through_it() {
    if !is_root() {
        println!("skipped: a directory owned by another user is made with root's chown");
        return;
    }
    const RUNS: usize = 20;
    let dir = TempDir::new("make-rootfs-race");
    // Empty, root's own and closed to others: were make-rootfs to follow the link, only
    // the check of where it landed would stop it.
    let decoy = Decoy::new(dir.path().join("host-dir"), &[], 0);
    let (mut built, mut refused) = (0, 0);
    for run in 0..RUNS {
        if refused >= 3 && run >= 6 {
            break;
        }
        // The parent is the attacker's: it can rename what root creates in it.
        let parent = dir.path().join(format!("run-{run}"));
        std::fs::create_dir(&parent).unwrap();
        std::os::unix::fs::symlink(&decoy.path, parent.join("link")).unwrap();
        chown_tree(&parent, ROOTFS_OWNER);
        let swapper = Swapper::start(&parent, "rootfs", "link", ROOTFS_OWNER);
        let output = make_rootfs(&[&parent.join("rootfs")]);
        let swapping = swapper.stop();
        decoy.assert_untouched(&format!("run {run}"));
        match output.status.code() {
            Some(0) => built += 1,
            Some(1)
                if stderr_text(&output).contains("changed while make-rootfs was creating it") =>
            {
                refused += 1
            }
            _ => panic!("run {run}: {}", describe(&output)),
        }
        swapping.unwrap();
    }
    println!("{built} built in their own directory, {refused} refused a swapped one");
    assert!(refused > 0, "no run met the link");
}
