//! What a bundle's config.json asks of the engine (#16): the ns-process flags ns-runtime
//! writes, run through `ns-process` itself as root and as uid 65534, real mounts and
//! namespaces; `ns-runtime spec` and `features`; and the one-engine proof: the command
//! line `ns-runtime` makes of its own example config.json, run by `ns-process` in a
//! busybox rootfs.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reexec_tests::{
    TestUser, assert_exit_code, assert_failed_with, assert_refused, describe, or_skip,
    output_with_timeout, stdout_text, world_writable_dir,
};

mod support;

use support::rootfs;

const NS_PROCESS: &str = env!("CARGO_BIN_EXE_ns-process");
const NS_RUNTIME: &str = env!("CARGO_BIN_EXE_ns-runtime");
const TIMEOUT: Duration = Duration::from_secs(60);

/// `ns-process ARGS` as each test user; `check` gets the label and the output.
fn each_user(args: &[&str], check: impl Fn(&TestUser, &std::process::Output)) {
    for user in TestUser::all(NS_PROCESS) {
        let output = output_with_timeout(user.command().args(args), TIMEOUT);
        check(&user, &output);
    }
}

#[test]
fn mount_binds_and_tmpfs_with_oci_options() {
    let rootfs = or_skip!(rootfs(), "no busybox rootfs");
    let source = world_writable_dir("mount-source");
    std::fs::write(source.path().join("file"), "from the host\n").unwrap();
    let bind = format!(
        "type=bind,source={},destination=/tmp/data,rbind,ro,nosuid,nodev",
        source.path().display()
    );
    let script = "cat /tmp/data/file; \
                  touch /tmp/data/new 2>/dev/null && echo written || echo read-only; \
                  grep -E ' /tmp/data | /tmp/scratch ' /proc/self/mountinfo; \
                  stat -c '%a' /tmp/scratch";
    each_user(
        &[
            "--rootfs",
            &rootfs.display().to_string(),
            "--mount",
            &bind,
            "--mount",
            "type=tmpfs,destination=/tmp/scratch,size=1m,mode=700,noexec",
            "--",
            "sh",
            "-c",
            script,
        ],
        |user, output| {
            assert_exit_code(user.label(), output, 0);
            let text = stdout_text(output);
            assert!(
                text.starts_with("from the host\nread-only\n"),
                "{}: {text}",
                user.label()
            );
            let data = text
                .lines()
                .find(|line| line.contains(" /tmp/data "))
                .unwrap();
            for option in ["ro", "nosuid", "nodev"] {
                assert!(
                    data.split(' ')
                        .nth(5)
                        .unwrap()
                        .split(',')
                        .any(|o| o == option),
                    "{}: {option} missing: {data}",
                    user.label()
                );
            }
            let scratch = text
                .lines()
                .find(|line| line.contains(" /tmp/scratch "))
                .unwrap();
            assert!(
                scratch.contains("noexec") && scratch.contains("size=1024k"),
                "{}: {scratch}",
                user.label()
            );
            assert_eq!(text.lines().last(), Some("700"), "{}", user.label());
        },
    );
    assert!(
        !source.path().join("new").exists(),
        "the read-only bind was written through"
    );
}

#[test]
fn bad_mounts_are_refused_before_anything_is_made() {
    let rootfs = or_skip!(rootfs(), "no busybox rootfs");
    let rootfs = rootfs.display().to_string();
    for (mount, expected) in [
        ("type=proc,destination=/p", "type \"proc\" is not supported"),
        (
            "type=tmpfs,destination=/t,rshared",
            "propagation \"rshared\"",
        ),
        ("type=bind,destination=/b", "a bind needs source="),
        (
            "type=tmpfs,destination=/t,bogus",
            "\"bogus\" is not an option",
        ),
    ] {
        assert_refused(
            NS_PROCESS,
            &["--rootfs", &rootfs, "--mount", mount, "--", "true"],
            125,
            expected,
        );
    }
    assert_refused(
        NS_PROCESS,
        &[
            "--rootfs",
            &rootfs,
            "--mount",
            "type=bind,source=/nonexistent-spec16,destination=/b",
            "--",
            "true",
        ],
        125,
        "--mount source=/nonexistent-spec16",
    );
    assert_refused(
        NS_PROCESS,
        &["--mount", "type=tmpfs,destination=/t", "--", "true"],
        125,
        "--mount changes the filesystem of a --rootfs",
    );
}

#[test]
fn sysctls_of_the_commands_own_namespaces_are_set_and_the_hosts_kept() {
    let rootfs = or_skip!(rootfs(), "no busybox rootfs");
    let key = "/proc/sys/net/ipv4/ip_unprivileged_port_start";
    let host_before = std::fs::read_to_string(key).unwrap();
    let wanted = if host_before.trim() == "80" {
        "81"
    } else {
        "80"
    };
    let arg = format!("net.ipv4.ip_unprivileged_port_start={wanted}");
    // With a rootfs (through the proc's descriptor) and without (the new /proc).
    for with_rootfs in [true, false] {
        let mut args = Vec::new();
        if with_rootfs {
            args.extend(["--rootfs".to_owned(), rootfs.display().to_string()]);
        }
        args.extend(["--sysctl".to_owned(), arg.clone(), "--".to_owned()]);
        args.extend(["cat".to_owned(), key.to_owned()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        each_user(&args, |user, output| {
            assert_exit_code(user.label(), output, 0);
            assert_eq!(stdout_text(output).trim(), wanted, "{}", user.label());
        });
    }
    assert_eq!(std::fs::read_to_string(key).unwrap(), host_before);
}

#[test]
fn sysctls_of_the_whole_machine_or_of_a_shared_namespace_are_refused() {
    assert_refused(
        NS_PROCESS,
        &["--sysctl", "kernel.core_pattern=|/x", "--", "true"],
        125,
        "kernel.core_pattern belongs to no namespace",
    );
    assert_refused(
        NS_PROCESS,
        &[
            "--share",
            "net",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--",
            "true",
        ],
        125,
        "it belongs to the net namespace, which is not the command's own",
    );
    assert_refused(
        NS_PROCESS,
        &["--sysctl", "net.ipv4.no_such_key=1", "--", "true"],
        125,
        "this kernel has no such parameter",
    );
}

#[test]
fn umask_oom_score_and_exact_environment_reach_the_command() {
    let script = "umask; cat /proc/self/oom_score_adj; env | sort";
    each_user(
        &[
            "--umask",
            "027",
            "--oom-score-adj",
            "321",
            "--internal-exact-env",
            "--env",
            "ONLY=this",
            "--",
            "sh",
            "-c",
            script,
        ],
        |user, output| {
            assert_exit_code(user.label(), output, 0);
            let text = stdout_text(output);
            let mut lines = text.lines();
            assert_eq!(lines.next(), Some("0027"), "{}: {text}", user.label());
            assert_eq!(lines.next(), Some("321"), "{}: {text}", user.label());
            let env: Vec<&str> = lines.collect();
            // What the shell sets itself (PWD, SHLVL, a default PATH) and ONLY: no TERM,
            // HOME, USER or PS1 of ns-process's.
            assert!(env.contains(&"ONLY=this"), "{}: {env:?}", user.label());
            for added in ["HOME=", "USER=", "PS1=", "TERM="] {
                assert!(
                    !env.iter().any(|line| line.starts_with(added)),
                    "{}: {added} in {env:?}",
                    user.label()
                );
            }
        },
    );
    assert_refused(
        NS_PROCESS,
        &["--umask", "999", "--", "true"],
        125,
        "not an octal mask",
    );
    assert_refused(
        NS_PROCESS,
        &["--oom-score-adj", "1001", "--", "true"],
        125,
        "1001 is not in -1000..=1000",
    );
}

#[test]
fn group_add_puts_the_command_in_the_groups_or_says_why_not() {
    each_user(
        &["--group-add", "7", "--group-add", "8", "--", "id", "-G"],
        |user, output| {
            if user.is_root() {
                assert_exit_code(user.label(), output, 0);
                let text = stdout_text(output);
                let groups: Vec<&str> = text.split_whitespace().collect();
                assert!(
                    groups.contains(&"7") && groups.contains(&"8"),
                    "{}: {text}",
                    user.label()
                );
            } else {
                // One id mapped, by the unprivileged parent: the kernel denies setgroups.
                assert_failed_with(
                    user.label(),
                    output,
                    125,
                    &["--group-add: this user namespace denies setgroups"],
                );
            }
        },
    );
}

#[test]
fn a_seccomp_profile_in_oci_json_binds_the_command() {
    let rootfs = or_skip!(rootfs(), "no busybox rootfs");
    let profile = r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_AARCH64"],"flags":[],"syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#;
    each_user(
        &[
            "--rootfs",
            &rootfs.display().to_string(),
            "--internal-seccomp-json",
            profile,
            "--",
            "sh",
            "-c",
            "mkdir /tmp/x 2>&1; echo status=$?",
        ],
        |user, output| {
            assert_exit_code(user.label(), output, 0);
            let text = stdout_text(output);
            assert!(
                text.contains("Operation not permitted") && text.contains("status=1"),
                "{}: {text}",
                user.label()
            );
        },
    );
    assert_refused(
        NS_PROCESS,
        &[
            "--internal-seccomp-json",
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/x"}"#,
            "--",
            "true",
        ],
        125,
        "linux.seccomp: the profile has the field \"listenerPath\"",
    );
}

#[test]
fn the_kernel_paths_protected_are_the_ones_given() {
    let rootfs = or_skip!(rootfs(), "no busybox rootfs");
    each_user(
        &[
            "--rootfs",
            &rootfs.display().to_string(),
            "--internal-own-kernel-paths",
            "--internal-masked-path",
            "/proc/uptime",
            "--internal-readonly-path",
            "/proc/fs",
            "--",
            "sh",
            "-c",
            "wc -c < /proc/uptime; cut -d' ' -f5,6 /proc/self/mountinfo",
        ],
        |user, output| {
            assert_exit_code(user.label(), output, 0);
            let text = stdout_text(output);
            assert_eq!(
                text.lines().next(),
                Some("0"),
                "{}: /proc/uptime is not masked",
                user.label()
            );
            let mounted = |point: &str| {
                text.lines()
                    .find(|line| line.split(' ').next() == Some(point))
            };
            assert!(
                mounted("/proc/fs").is_some_and(|line| line.contains("ro")),
                "{}: {text}",
                user.label()
            );
            for not_listed in ["/proc/kcore", "/proc/sys", "/sys/firmware"] {
                assert!(
                    mounted(not_listed).is_none(),
                    "{}: {not_listed} is protected: {text}",
                    user.label()
                );
            }
        },
    );
    assert_refused(
        NS_PROCESS,
        &["--internal-masked-path", "/etc/shadow", "--", "true"],
        125,
        "ns-process masks and makes read-only paths under /proc and /sys only",
    );
}

#[test]
fn cgroupns_private_gives_the_command_a_cgroup_namespace_of_its_own() {
    let host = std::fs::read_link("/proc/self/ns/cgroup").unwrap();
    each_user(
        &[
            "--cgroupns",
            "private",
            "--",
            "readlink",
            "/proc/self/ns/cgroup",
        ],
        |user, output| {
            assert_exit_code(user.label(), output, 0);
            let inside = stdout_text(output);
            assert!(inside.starts_with("cgroup:["), "{}: {inside}", user.label());
            assert_ne!(inside.trim(), host.to_string_lossy(), "{}", user.label());
        },
    );
    each_user(
        &["--", "readlink", "/proc/self/ns/cgroup"],
        |user, output| {
            assert_exit_code(user.label(), output, 0);
            assert_eq!(
                stdout_text(output).trim(),
                host.to_string_lossy(),
                "{}",
                user.label()
            );
        },
    );
}

/// What `ls /sys/fs/cgroup` shows under `--internal-cgroup-mount`: a directory per
/// hierarchy the host mounts, named as its mount point, and a link per controller of a
/// co-mounted one.
fn expected_cgroup_names() -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for hierarchy in reexec::Cgroup::mounted_hierarchies().unwrap() {
        let name = hierarchy
            .mount_point
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for controller in name.split(',').filter(|_| name.contains(',')) {
            names.push(controller.to_owned());
        }
        names.push(name);
    }
    names.sort();
    names.dedup();
    names
}

/// The script's checks of `/sys/fs/cgroup`: its listing, the memory limit, and writes
/// refused through the tmpfs and through a bind.
const CGROUP_SCRIPT: &str = "ls /sys/fs/cgroup | tr '\\n' ' '; echo; \
     cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
     mkdir /sys/fs/cgroup/new 2>/dev/null && echo tmpfs-written || echo tmpfs-read-only; \
     mkdir /sys/fs/cgroup/memory/new 2>/dev/null && echo bind-written || echo bind-read-only; \
     grep -E ' /sys/fs/cgroup(/memory)? ' /proc/self/mountinfo | cut -d' ' -f5,6";

#[test]
fn the_cgroup_mount_shows_the_commands_own_cgroups_read_only() {
    let rootfs = or_skip!(rootfs(), "no busybox rootfs");
    if !Path::new("/sys/fs/cgroup/memory").is_dir() {
        println!("skipped: no cgroup v1 memory hierarchy on this host");
        return;
    }
    let rootfs = rootfs.display().to_string();
    let expected = expected_cgroup_names().join(" ");
    let check = |label: &str, output: &std::process::Output, limit: &str| {
        assert_exit_code(label, output, 0);
        let text = stdout_text(output);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0].trim_end(), expected, "{label}: the listing");
        assert_eq!(lines[1], limit, "{label}: memory.limit_in_bytes");
        assert_eq!(
            lines[2..4],
            ["tmpfs-read-only", "bind-read-only"],
            "{label}"
        );
        for line in &lines[4..] {
            let options: Vec<&str> = line.split(' ').nth(1).unwrap().split(',').collect();
            for option in ["ro", "nosuid", "nodev", "noexec"] {
                assert!(options.contains(&option), "{label}: {option}: {line}");
            }
        }
        assert_eq!(
            lines.len(),
            6,
            "{label}: the tmpfs and the memory bind: {text}"
        );
    };
    // Root, in a cgroup of the run's own limited to 64 MiB: its own limit is what shows,
    // with the cgroup namespace of the host's and one of its own.
    // The lines of the host's mount table a run could leave: others (podman cleaning up
    // after another test) may mount elsewhere meanwhile.
    let ours = || -> Vec<String> {
        reexec_tests::mount_table()
            .lines()
            .filter(|line| line.contains("/sys/fs/cgroup") || line.contains(rootfs.as_str()))
            .map(str::to_owned)
            .collect()
    };
    let before = ours();
    for cgroupns in ["host", "private"] {
        let output = output_with_timeout(
            Command::new(NS_PROCESS).args([
                "--rootfs",
                &rootfs,
                "--memory",
                "64M",
                "--cgroupns",
                cgroupns,
                "--internal-cgroup-mount",
                "/sys/fs/cgroup:ro",
                "--",
                "sh",
                "-c",
                CGROUP_SCRIPT,
            ]),
            TIMEOUT,
        );
        check(&format!("root, --cgroupns {cgroupns}"), &output, "67108864");
    }
    assert_eq!(before, ours(), "a mount was left behind");
    // Each user, without limits: the cgroup the run is in, the caller's own; ro is the
    // default.
    let own_memory = reexec::Cgroup::mounted_hierarchies()
        .unwrap()
        .into_iter()
        .find(|hierarchy| hierarchy.controllers == ["memory"])
        .unwrap()
        .own;
    let limit = std::fs::read_to_string(own_memory.join("memory.limit_in_bytes")).unwrap();
    each_user(
        &[
            "--rootfs",
            &rootfs,
            "--internal-cgroup-mount",
            "/sys/fs/cgroup",
            "--",
            "sh",
            "-c",
            CGROUP_SCRIPT,
        ],
        |user, output| check(user.label(), output, limit.trim()),
    );
    assert_eq!(before, ours(), "a mount was left behind");
}

#[test]
fn a_rw_cgroup_mount_is_read_write_and_one_without_a_rootfs_is_refused() {
    let rootfs = or_skip!(rootfs(), "no busybox rootfs");
    each_user(
        &[
            "--rootfs",
            &rootfs.display().to_string(),
            "--internal-cgroup-mount",
            "/sys/fs/cgroup:rw",
            "--",
            "sh",
            "-c",
            "grep -E ' /sys/fs/cgroup(/[^ ]*)? ' /proc/self/mountinfo | cut -d' ' -f6",
        ],
        |user, output| {
            assert_exit_code(user.label(), output, 0);
            let text = stdout_text(output);
            assert!(text.lines().count() > 1, "{}: {text}", user.label());
            for line in text.lines() {
                assert!(line.starts_with("rw,"), "{}: {text}", user.label());
            }
        },
    );
    assert_refused(
        NS_PROCESS,
        &["--internal-cgroup-mount", "/sys/fs/cgroup", "--", "true"],
        125,
        "--internal-cgroup-mount (config.json's cgroup mount) binds the command's cgroups \
         into a --rootfs",
    );
    assert_refused(
        NS_PROCESS,
        &["--internal-cgroup-mount", "/sys/fs/cgroup:rx", "--", "true"],
        125,
        "\"rx\" is neither ro nor rw",
    );
}

/// `ns-runtime spec [--rootless]` as `user`, in a new bundle of theirs; the bundle.
fn example_bundle(user: &TestUser, runtime: &Path, rootless: bool) -> reexec_tests::TempDir {
    let bundle = world_writable_dir("bundle");
    let mut command = user.command_of(runtime);
    command.args(["spec", "--bundle"]).arg(bundle.path());
    if rootless {
        command.arg("--rootless");
    }
    let output = output_with_timeout(&mut command, TIMEOUT);
    assert_exit_code(user.label(), &output, 0);
    bundle
}

fn read_config(bundle: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(bundle.join("config.json")).unwrap()).unwrap()
}

#[test]
fn spec_writes_a_config_as_runc_spec_does_and_never_overwrites_one() {
    let own = TestUser::all(NS_RUNTIME).remove(0);
    let bundle = example_bundle(&own, Path::new(NS_RUNTIME), false);
    let config = read_config(bundle.path());
    assert_eq!(config["root"]["path"], "rootfs");
    assert_eq!(config["process"]["args"], serde_json::json!(["sh"]));
    let before = std::fs::read(bundle.path().join("config.json")).unwrap();
    let output = output_with_timeout(
        Command::new(NS_RUNTIME)
            .args(["spec", "--bundle"])
            .arg(bundle.path()),
        TIMEOUT,
    );
    assert_failed_with(
        "overwrite",
        &output,
        1,
        &["the bundle has a config.json already"],
    );
    assert_eq!(
        std::fs::read(bundle.path().join("config.json")).unwrap(),
        before
    );

    if Command::new("runc")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
    {
        let runc_bundle = world_writable_dir("runc-bundle");
        let output = output_with_timeout(
            Command::new("runc")
                .args(["spec", "--bundle"])
                .arg(runc_bundle.path()),
            TIMEOUT,
        );
        assert_exit_code("runc spec", &output, 0);
        let runc = read_config(runc_bundle.path());
        let keys = |value: &serde_json::Value| {
            let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            keys
        };
        // oci-spec's example has annotations (empty) beside runc's fields.
        let mut ours = keys(&config);
        ours.retain(|key| key != "annotations");
        assert_eq!(ours, keys(&runc), "top-level fields");
        let destinations = |value: &serde_json::Value| {
            value["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|mount| mount["destination"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(destinations(&config), destinations(&runc), "mounts");
        assert_eq!(config["linux"]["maskedPaths"], runc["linux"]["maskedPaths"]);
        assert_eq!(
            config["linux"]["readonlyPaths"],
            runc["linux"]["readonlyPaths"]
        );
    } else {
        println!("skipped the comparison with runc spec: runc is not installed");
    }
}

#[test]
fn spec_rootless_maps_root_to_the_caller() {
    for user in TestUser::all(NS_RUNTIME) {
        let bundle = example_bundle(&user, user.program(), true);
        let config = read_config(bundle.path());
        let (uid, gid) = user.ids();
        assert_eq!(
            config["linux"]["uidMappings"],
            serde_json::json!([{"containerID": 0, "hostID": uid, "size": 1}]),
            "{}",
            user.label()
        );
        assert_eq!(config["linux"]["gidMappings"][0]["hostID"], gid);
        let namespaces: Vec<&str> = config["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|namespace| namespace["type"].as_str().unwrap())
            .collect();
        assert!(
            namespaces.contains(&"user") && !namespaces.contains(&"network"),
            "{namespaces:?}"
        );
    }
}

#[test]
fn features_say_what_the_engine_supports_in_runcs_form() {
    let output = output_with_timeout(Command::new(NS_RUNTIME).arg("features"), TIMEOUT);
    assert_exit_code("features", &output, 0);
    let features: serde_json::Value = serde_json::from_str(&stdout_text(&output)).unwrap();
    assert_eq!(features["ociVersionMin"], "1.0.0");
    assert!(
        features["ociVersionMax"]
            .as_str()
            .unwrap()
            .starts_with("1.")
    );
    let list = |value: &serde_json::Value| -> Vec<String> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let options = list(&features["mountOptions"]);
    assert!(options.contains(&"rbind".to_owned()) && !options.contains(&"rshared".to_owned()));
    let mut operators = list(&features["linux"]["seccomp"]["operators"]);
    operators.sort();
    assert_eq!(
        operators,
        [
            "SCMP_CMP_EQ",
            "SCMP_CMP_GE",
            "SCMP_CMP_GT",
            "SCMP_CMP_LE",
            "SCMP_CMP_LT",
            "SCMP_CMP_MASKED_EQ",
            "SCMP_CMP_NE"
        ]
    );
    assert!(list(&features["linux"]["capabilities"]).contains(&"CAP_SYS_ADMIN".to_owned()));
    assert_eq!(features["linux"]["apparmor"]["enabled"], false);
    if let Ok(runc) = Command::new("runc").arg("features").output() {
        if runc.status.success() {
            let runc: serde_json::Value = serde_json::from_slice(&runc.stdout).unwrap();
            let keys = |value: &serde_json::Value| {
                let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
                keys.sort();
                keys
            };
            assert_eq!(keys(&features), keys(&runc), "top-level fields as runc's");
            for key in keys(&runc["linux"]) {
                assert!(features["linux"].get(&key).is_some(), "linux.{key} missing");
            }
        }
    }
}

/// The ns-process arguments ns-runtime makes of `bundle`'s config.json.
fn engine_args(user: &TestUser, runtime: &Path, bundle: &Path) -> Vec<String> {
    let mut command = user.command_of(runtime);
    command
        .args(["spec", "--print-engine-args", "--bundle"])
        .arg(bundle);
    let output = output_with_timeout(&mut command, TIMEOUT);
    assert_exit_code(user.label(), &output, 0);
    stdout_text(&output)
        .split_terminator('\0')
        .map(str::to_owned)
        .collect()
}

/// The bundle's config.json run in `rootfs` with `sh -c SCRIPT`, without a terminal.
fn point_at(bundle: &Path, rootfs: &Path, script: &str) {
    let mut config = read_config(bundle);
    config["root"]["path"] = rootfs.display().to_string().into();
    config["process"]["args"] = serde_json::json!(["sh", "-c", script]);
    config["process"]["terminal"] = false.into();
    std::fs::write(bundle.join("config.json"), config.to_string()).unwrap();
}

#[test]
fn the_example_config_runs_on_the_engine() {
    let rootfs = or_skip!(rootfs(), "no busybox rootfs");
    let runtimes = TestUser::all(NS_RUNTIME);
    for user in TestUser::all(NS_PROCESS) {
        let runtime = runtimes
            .iter()
            .find(|runtime| runtime.label() == user.label())
            .unwrap();
        // Root gets the config as runc writes it, uid 65534 the rootless one.
        let bundle = example_bundle(runtime, runtime.program(), !user.is_root());
        point_at(
            bundle.path(),
            rootfs,
            "echo ok; hostname; touch /file 2>/dev/null || echo read-only",
        );
        let args = engine_args(runtime, runtime.program(), bundle.path());
        let output = output_with_timeout(user.command().args(&args), TIMEOUT);
        assert_exit_code(user.label(), &output, 0);
        assert_eq!(
            stdout_text(&output),
            "ok\nns-runtime\nread-only\n",
            "{}: {}",
            user.label(),
            describe(&output)
        );
    }
}

#[test]
fn runcs_own_example_config_runs_on_the_engine() {
    let rootfs = or_skip!(rootfs(), "no busybox rootfs");
    if !Command::new("runc")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
    {
        println!("skipped: runc is not installed");
        return;
    }
    let own = TestUser::all(NS_RUNTIME).remove(0);
    if !own.is_root() {
        println!("skipped: runc's non-rootless config needs root");
        return;
    }
    let bundle = world_writable_dir("runc-example");
    let output = output_with_timeout(
        Command::new("runc")
            .args(["spec", "--bundle"])
            .arg(bundle.path()),
        TIMEOUT,
    );
    assert_exit_code("runc spec", &output, 0);
    point_at(
        bundle.path(),
        rootfs,
        "echo ok; hostname; cat /proc/self/status | grep CapEff",
    );
    let args = engine_args(&own, Path::new(NS_RUNTIME), bundle.path());
    let output = output_with_timeout(Command::new(NS_PROCESS).args(&args), TIMEOUT);
    assert_exit_code("root", &output, 0);
    // runc's example keeps AUDIT_WRITE, KILL and NET_BIND_SERVICE: bits 29, 5 and 10.
    assert_eq!(
        stdout_text(&output),
        "ok\nrunc\nCapEff:\t0000000020000420\n",
        "{}",
        describe(&output)
    );
}

#[test]
fn a_bad_config_is_refused_naming_the_field() {
    let bundle = world_writable_dir("bad-config");
    let run = || {
        output_with_timeout(
            Command::new(NS_RUNTIME)
                .args(["spec", "--print-engine-args", "--bundle"])
                .arg(bundle.path()),
            TIMEOUT,
        )
    };
    assert_failed_with("no config", &run(), 1, &["no config.json in the bundle"]);
    for (config, expected) in [
        ("{", "not valid JSON"),
        (
            r#"{"ociVersion": "1.0.2", "process": {"cwd": "/", "user": {"uid": -1, "gid": 0}}}"#,
            "process.user.uid: ",
        ),
        (r#"{"ociVersion": "2.0.0"}"#, "ociVersion \"2.0.0\""),
        (
            r#"{"ociVersion": "1.0.2", "root": {"path": "r"}, "process": {"cwd": "/", "user": {"uid": 0, "gid": 0}, "args": ["sh"]}, "linux": {"sysctl": {"vm.swappiness": "1"}}}"#,
            "linux.sysctl: invalid --sysctl \"vm.swappiness=1\": vm.swappiness belongs to no namespace",
        ),
    ] {
        std::fs::write(bundle.path().join("config.json"), config).unwrap();
        assert_failed_with(config, &run(), 1, &[expected]);
    }
}

#[test]
fn device_binds_the_hosts_node_into_the_rootfs() {
    let rootfs = or_skip!(rootfs(), "no busybox rootfs");
    reexec_tests::skip_unless!(
        Path::new("/dev/net/tun").exists(),
        "the host has no /dev/net/tun"
    );
    each_user(
        &[
            "--rootfs",
            &rootfs.display().to_string(),
            "--device",
            "/dev/net/tun",
            "--device",
            "/dev/null:/dev/other-null",
            "--",
            "sh",
            "-c",
            "stat -c '%F %t:%T' /dev/net/tun /dev/other-null; echo x > /dev/other-null && echo written",
        ],
        |user, output| {
            assert_exit_code(user.label(), output, 0);
            assert_eq!(
                stdout_text(output),
                "character special file a:c8\ncharacter special file 1:3\nwritten\n",
                "{}",
                user.label()
            );
        },
    );
    let rootfs = rootfs.display().to_string();
    assert_refused(
        NS_PROCESS,
        &["--rootfs", &rootfs, "--device", "/etc/passwd", "--", "true"],
        125,
        "--device /etc/passwd is not a device node",
    );
    assert_refused(
        NS_PROCESS,
        &["--device", "/dev/null", "--", "true"],
        125,
        "--device adds a node",
    );
}

#[test]
fn tmpcopyup_fills_the_tmpfs_with_what_it_covers() {
    let rootfs = or_skip!(rootfs(), "no busybox rootfs");
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    each_user(
        &[
            "--rootfs",
            &rootfs.display().to_string(),
            "--read-only",
            "--mount",
            "type=tmpfs,destination=/etc,tmpcopyup,mode=755",
            "--",
            "sh",
            "-c",
            "cat /etc/passwd; echo new > /etc/new && cat /etc/new; stat -c '%a' /etc/passwd",
        ],
        |user, output| {
            assert_exit_code(user.label(), output, 0);
            assert_eq!(
                stdout_text(output),
                format!("{passwd}new\n644\n"),
                "{}",
                user.label()
            );
        },
    );
    assert!(
        !rootfs.join("etc/new").exists(),
        "written through to the rootfs"
    );
}

/// The rules of podman's default profile (as podman writes it into config.json) that
/// `--seccomp PATH` does not take: a name this build does not know, an argument test
/// with SCMP_CMP_NE, two argument tests at once.
const PODMAN_LIKE_SECCOMP: &str = r#"{
  "defaultAction": "SCMP_ACT_ALLOW",
  "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"],
  "syscalls": [
    {"names": ["bdflush", "unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
    {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
     "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"},
              {"index": 2, "value": 9, "op": "SCMP_CMP_EQ"}]},
    {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
     "args": [{"index": 2, "value": 9, "op": "SCMP_CMP_NE"}]}
  ]
}"#;

#[test]
fn an_oci_profile_as_podman_writes_it_compiles_and_binds_the_command() {
    let rootfs = or_skip!(rootfs(), "no busybox rootfs");
    each_user(
        &[
            "--rootfs",
            &rootfs.display().to_string(),
            "--internal-seccomp-json",
            PODMAN_LIKE_SECCOMP,
            "--",
            "sh",
            "-c",
            "echo ok; grep Seccomp: /proc/self/status; \
             unshare -U true 2>/dev/null && echo unshared || echo refused",
        ],
        |user, output| {
            assert_exit_code(user.label(), output, 0);
            assert_eq!(
                stdout_text(output),
                "ok\nSeccomp:\t2\nrefused\n",
                "{}",
                user.label()
            );
        },
    );
}

#[test]
fn a_mount_destination_through_a_symlink_of_the_rootfs_is_refused() {
    // The rootfs's owner links /escape to the host's /tmp: a --mount there must not land
    // on the host's directory, nor anywhere the link leads.
    let dir = reexec_tests::temp_dir("mount-through-link");
    let decoy = world_writable_dir("mount-link-target");
    for user in TestUser::all(NS_PROCESS) {
        let rootfs = dir
            .path()
            .join(format!("rootfs-{}", user.label().replace(' ', "-")));
        or_skip!(
            reexec_tests::busybox_rootfs_copy(env!("CARGO_TARGET_TMPDIR"), &rootfs, user.ids()),
            "no busybox rootfs"
        );
        std::os::unix::fs::symlink(decoy.path(), rootfs.join("escape")).unwrap();
        if reexec_tests::is_root() {
            let (uid, gid) = user.ids();
            std::os::unix::fs::lchown(rootfs.join("escape"), Some(uid), Some(gid)).unwrap();
        }
        let before = reexec_tests::mount_table();
        let output = output_with_timeout(
            user.command().args([
                "--rootfs",
                &rootfs.display().to_string(),
                "--mount",
                "type=tmpfs,destination=/escape/inside",
                "--",
                "true",
            ]),
            TIMEOUT,
        );
        assert_failed_with(user.label(), &output, 125, &["is a symbolic link"]);
        assert_eq!(before, reexec_tests::mount_table(), "{}", user.label());
        assert!(
            !decoy.path().join("inside").exists(),
            "{}: made through the link",
            user.label()
        );
    }
}
