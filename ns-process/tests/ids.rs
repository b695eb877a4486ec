//! Many ids inside: root-run, ids 0-65535 are the host's own; a user with a range in
//! /etc/subuid and /etc/subgid gets root and 65536 ids through newuidmap and newgidmap;
//! anyone else only root, told so. As root and as uid 65534, whose range lives in copies
//! bound over the files in a mount namespace of the test's own, never in the host's.

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Output};
use std::time::Duration;

use reexec_tests::{
    SubordinateIdFiles, TestUser, as_root_and_unprivileged, assert_exit_code, assert_failed_with,
    describe, is_root, or_skip, output_with_timeout, skip_unless, stderr_text, stdout_text,
    world_writable_dir,
};

const NS_PROCESS: &str = env!("CARGO_BIN_EXE_ns-process");
const TIMEOUT: Duration = Duration::from_secs(60);

/// uid 65534's range in the test's own files.
const RANGE: &str = "nobody:200000:65536\n";

/// What the command prints of its ids, then what root inside can do with them.
const SCRIPT: &str = r#"
    echo "uid_map: $(tr -s ' ' < /proc/self/uid_map | sed 's/^ //' | paste -sd,)"
    echo "gid_map: $(tr -s ' ' < /proc/self/gid_map | sed 's/^ //' | paste -sd,)"
    echo "setgroups: $(cat /proc/self/setgroups)"
    touch "$1/f" && chown 1000:1000 "$1/f" && echo "chown: $(stat -c %u:%g "$1/f")"
    echo "setuid: $(setpriv --reuid=1000 id -u)"
    echo "groups: $(setpriv --reuid=1000 --regid=1000 --groups=1000,1001 id -G 2>&1)"
"#;

/// A line `KEY: VALUE` of `output`, its value.
fn line<'a>(output: &'a Output, key: &str) -> Option<&'a str> {
    let prefix = format!("{key}: ");
    std::str::from_utf8(&output.stdout)
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
}

/// ns-process run by uid 65534 (its world-readable copy `program`) with `files` as its
/// /etc/subuid and /etc/subgid; `env` goes before it (`PATH=...`).
fn as_nobody(files: &SubordinateIdFiles, program: &str, env: &[&str], args: &[&str]) -> Output {
    let mut command = files.command(&[], "env");
    command.args(env).arg(program).args(args);
    output_with_timeout(&mut command, TIMEOUT)
}

/// The copy of ns-process uid 65534 can run; `Err` says why there is none.
fn nobodys_copy() -> Result<TestUser, String> {
    let user = TestUser::unprivileged(NS_PROCESS)?;
    if user.label() != "uid 65534" {
        return Err("the tests run without root: nothing to bind over /etc/subuid".into());
    }
    Ok(user)
}

#[test]
fn root_and_a_user_with_a_range_get_65536_ids_that_chown_and_setuid_work_with() {
    skip_unless!(is_root(), "binding a copy over /etc/subuid needs root");
    let files = or_skip!(SubordinateIdFiles::with(RANGE), "no subordinate ids");
    let nobody = or_skip!(nobodys_copy(), "no run as uid 65534");
    let dir = world_writable_dir("many-ids");
    let dir_arg = dir.path().to_str().unwrap();
    let args = ["--", "sh", "-c", SCRIPT, "sh", dir_arg];
    // The file the run made, as the host sees it; removed for the next run.
    let owner = || {
        let meta = std::fs::metadata(dir.path().join("f")).unwrap();
        std::fs::remove_file(dir.path().join("f")).unwrap();
        (meta.uid(), meta.gid())
    };

    let root = output_with_timeout(Command::new(NS_PROCESS).args(args), TIMEOUT);
    let context = format!("root: {}", describe(&root));
    assert_exit_code("root", &root, 0);
    // Root writes the map itself: the host's ids 0-65535, as they are.
    assert_eq!(line(&root, "uid_map"), Some("0 0 65536"), "{context}");
    assert_eq!(line(&root, "gid_map"), Some("0 0 65536"), "{context}");
    assert_eq!(line(&root, "setgroups"), Some("allow"), "{context}");
    assert_eq!(line(&root, "chown"), Some("1000:1000"), "{context}");
    assert_eq!(line(&root, "setuid"), Some("1000"), "{context}");
    assert_eq!(line(&root, "groups"), Some("1000 1001"), "{context}");
    assert_eq!(owner(), (1000, 1000), "uid 1000 inside is 1000 outside");
    assert!(stderr_text(&root).is_empty(), "{context}");

    let user = as_nobody(&files, nobody.program().to_str().unwrap(), &[], &args);
    let context = format!("uid 65534: {}", describe(&user));
    assert_exit_code("uid 65534", &user, 0);
    // Root is the caller, 1-65536 its range, written by newuidmap and newgidmap.
    assert_eq!(
        line(&user, "uid_map"),
        Some("0 65534 1,1 200000 65536"),
        "{context}"
    );
    assert_eq!(
        line(&user, "gid_map"),
        Some("0 65534 1,1 200000 65536"),
        "{context}"
    );
    // newgidmap allows setgroups for a map of the /etc/subgid range: groups can be set.
    assert_eq!(line(&user, "setgroups"), Some("allow"), "{context}");
    assert_eq!(line(&user, "chown"), Some("1000:1000"), "{context}");
    assert_eq!(line(&user, "setuid"), Some("1000"), "{context}");
    assert_eq!(line(&user, "groups"), Some("1000 1001"), "{context}");
    // 1000 inside is the range's 1000th id outside.
    assert_eq!(owner(), (200_999, 200_999), "{context}");
    assert!(stderr_text(&user).is_empty(), "{context}");
}

#[test]
fn map_users_and_map_groups_choose_the_maps() {
    skip_unless!(is_root(), "binding a copy over /etc/subuid needs root");
    let files = or_skip!(SubordinateIdFiles::with(RANGE), "no subordinate ids");
    let nobody = or_skip!(nobodys_copy(), "no run as uid 65534");
    let maps = "tr -s ' ' < /proc/self/uid_map | sed 's/^ //' | paste -sd,; \
                tr -s ' ' < /proc/self/gid_map | sed 's/^ //' | paste -sd,";

    let root = output_with_timeout(
        Command::new(NS_PROCESS).args([
            "--map-users=0:0:1",
            "--map-users=1:100000:10",
            "--map-groups=0:5:1",
            "--",
            "sh",
            "-c",
            maps,
        ]),
        TIMEOUT,
    );
    assert_exit_code("root", &root, 0);
    assert_eq!(
        stdout_text(&root),
        "0 0 1,1 100000 10\n0 5 1\n",
        "{}",
        describe(&root)
    );

    // A user's own maps, within its range; the gids keep the default.
    let user = as_nobody(
        &files,
        nobody.program().to_str().unwrap(),
        &[],
        &[
            "--map-users",
            "0:65534:1",
            "--map-users",
            "1000:200100:5",
            "--",
            "sh",
            "-c",
            maps,
        ],
    );
    assert_exit_code("uid 65534", &user, 0);
    assert_eq!(
        stdout_text(&user),
        "0 65534 1,1000 200100 5\n0 65534 1,1 200000 65536\n",
        "{}",
        describe(&user)
    );
}

/// Every path under `root`, sorted.
fn paths(root: &std::path::Path) -> Vec<String> {
    let output = output_with_timeout(Command::new("find").arg(root), TIMEOUT);
    assert_exit_code("find", &output, 0);
    let mut paths: Vec<String> = stdout_text(&output).lines().map(str::to_owned).collect();
    paths.sort();
    paths
}

#[test]
fn a_tree_owned_by_a_range_runs_with_root_mapped_to_the_ranges_first_id() {
    skip_unless!(is_root(), "binding a copy over /etc/subuid needs root");
    let files = or_skip!(SubordinateIdFiles::with(RANGE), "no subordinate ids");
    let nobody = or_skip!(nobodys_copy(), "no run as uid 65534");
    // What `mmdebstrap --mode=unshare` leaves: root's files belong to the range's first
    // id, uid N's to 200000 + N; the caller itself (65534) owns nothing in it.
    let dir = reexec_tests::temp_dir("range-owned");
    let rootfs = dir.path().join("rootfs");
    or_skip!(
        reexec_tests::busybox_rootfs_copy(env!("CARGO_TARGET_TMPDIR"), &rootfs, (200_000, 200_000)),
        "no root filesystem"
    );
    let owned = rootfs.join("etc/owned");
    std::fs::write(&owned, "").unwrap();
    std::os::unix::fs::lchown(&owned, Some(201_000), Some(201_000)).unwrap();
    let before = paths(&rootfs);
    let script = "id -u; id -g; stat -c %u:%g /etc/owned; touch /root/made && \
                  chown 2000:2000 /etc/owned && echo changed";
    let output = as_nobody(
        &files,
        nobody.program().to_str().unwrap(),
        &[],
        &[
            "--rootfs",
            rootfs.to_str().unwrap(),
            "--map-users",
            "0:200000:65536",
            "--map-groups",
            "0:200000:65536",
            "--",
            "sh",
            "-c",
            script,
        ],
    );
    assert_exit_code("uid 65534, root mapped to 200000", &output, 0);
    // Root inside, with root's capabilities over the tree: it writes root's /root and
    // chowns; what it makes is the range's first id's outside.
    assert_eq!(
        stdout_text(&output),
        "0\n0\n1000:1000\nchanged\n",
        "{}",
        describe(&output)
    );
    let made = std::fs::metadata(rootfs.join("root/made")).unwrap();
    assert_eq!((made.uid(), made.gid()), (200_000, 200_000));
    let owned = std::fs::metadata(&owned).unwrap();
    assert_eq!((owned.uid(), owned.gid()), (202_000, 202_000));
    // Nothing else changed: what ns-process made there to mount on is gone.
    let mut expected = before;
    expected.push(rootfs.join("root/made").display().to_string());
    expected.sort();
    assert_eq!(paths(&rootfs), expected);
}

#[test]
fn without_a_range_only_root_is_mapped_and_stderr_says_how_to_get_more() {
    skip_unless!(is_root(), "binding a copy over /etc/subuid needs root");
    let files = or_skip!(SubordinateIdFiles::with(""), "no subordinate ids");
    let nobody = or_skip!(nobodys_copy(), "no run as uid 65534");
    let program = nobody.program().to_str().unwrap();
    let script = "cat /proc/self/setgroups; tr -s ' ' < /proc/self/uid_map | sed 's/^ //'";

    let output = as_nobody(&files, program, &[], &["--", "sh", "-c", script]);
    assert_exit_code("no range", &output, 0);
    assert_eq!(
        stdout_text(&output),
        "deny\n0 65534 1\n",
        "{}",
        describe(&output)
    );
    let stderr = stderr_text(&output);
    assert_eq!(
        stderr.lines().count(),
        1,
        "said once: {}",
        describe(&output)
    );
    for part in [
        "nobody (uid 65534) has no range in /etc/subuid",
        "usermod --add-subuids",
    ] {
        assert!(stderr.contains(part), "{part:?}: {}", describe(&output));
    }

    // Asked for ids it can't have: refused, naming the files.
    let output = as_nobody(
        &files,
        program,
        &[],
        &["--map-users=0:200000:5", "--", "true"],
    );
    assert_failed_with(
        "--map-users without a range",
        &output,
        125,
        &["has no range in /etc/subuid", "usermod --add-subuids"],
    );
    // Its own ids alone need no range: the kernel lets anyone map those.
    let output = as_nobody(
        &files,
        program,
        &[],
        &[
            "--map-users=0:65534:1",
            "--map-groups=0:65534:1",
            "--",
            "sh",
            "-c",
            "id -u",
        ],
    );
    assert_exit_code("its own ids", &output, 0);
    assert_eq!(stdout_text(&output), "0\n", "{}", describe(&output));
    assert!(stderr_text(&output).is_empty(), "{}", describe(&output));
}

#[test]
fn a_missing_helper_is_named_with_its_package() {
    skip_unless!(is_root(), "binding a copy over /etc/subuid needs root");
    let files = or_skip!(SubordinateIdFiles::with(RANGE), "no subordinate ids");
    let nobody = or_skip!(nobodys_copy(), "no run as uid 65534");
    let program = nobody.program().to_str().unwrap();
    // A range, but no newuidmap in PATH: only root, and why.
    let no_helpers = ["PATH=/nonexistent"];
    let output = as_nobody(
        &files,
        program,
        &no_helpers,
        &[
            "--",
            "sh",
            "-c",
            "tr -s ' ' < /proc/self/uid_map | sed 's/^ //'",
        ],
    );
    assert_exit_code("no helper", &output, 0);
    assert_eq!(stdout_text(&output), "0 65534 1\n", "{}", describe(&output));
    let stderr = stderr_text(&output);
    assert_eq!(
        stderr.lines().count(),
        1,
        "said once: {}",
        describe(&output)
    );
    assert!(
        stderr.contains("newuidmap was not found in PATH (/nonexistent)")
            && stderr.contains("apt-get install uidmap"),
        "{}",
        describe(&output)
    );

    let output = as_nobody(
        &files,
        program,
        &no_helpers,
        &["--map-users=0:200000:5", "--", "true"],
    );
    assert_failed_with(
        "--map-users without a helper",
        &output,
        125,
        &["newuidmap was not found", "uidmap"],
    );
}

#[test]
fn a_map_the_helper_refuses_comes_back_with_what_it_said() {
    skip_unless!(is_root(), "binding a copy over /etc/subuid needs root");
    let files = or_skip!(SubordinateIdFiles::with(RANGE), "no subordinate ids");
    let nobody = or_skip!(nobodys_copy(), "no run as uid 65534");
    // Outside the range: newuidmap refuses, and the command never runs.
    let output = as_nobody(
        &files,
        nobody.program().to_str().unwrap(),
        &[],
        &["--map-users=0:300000:5", "--", "sh", "-c", "echo ran"],
    );
    assert_failed_with(
        "outside the range",
        &output,
        125,
        &[
            "running newuidmap for the child's uid map",
            "0 300000 5",
            "newuidmap: uid range [0-5) -> [300000-300005) not allowed",
        ],
    );
    assert!(
        !stdout_text(&output).contains("ran"),
        "{}",
        describe(&output)
    );
}

#[test]
fn bad_id_maps_are_refused_before_anything_is_created() {
    let cases: [(&[&str], &str); 4] = [
        (&["--map-users", "0:1000"], "is not INNER:OUTER:COUNT"),
        (&["--map-groups", "0:x:1"], "OUTER \"x\""),
        (&["--map-users", "0:1000:0"], "COUNT must be 1 or more"),
        (
            &["--share", "user", "--map-users", "0:0:1"],
            "drop --share user",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().copied().chain(["--", "true"]).collect();
        as_root_and_unprivileged(NS_PROCESS, TIMEOUT, &args, |label, output| {
            assert_failed_with(&format!("{label}: {args:?}"), output, 125, &[expected]);
        });
    }
    // Ranges the library refuses, root-run (without privilege they need a range first).
    if is_root() {
        let output = output_with_timeout(
            Command::new(NS_PROCESS).args([
                "--map-users=0:0:10",
                "--map-users=5:100:1",
                "--",
                "true",
            ]),
            TIMEOUT,
        );
        assert_failed_with("overlapping ranges", &output, 125, &["overlap inside"]);
    }
}
