//! The OCI hooks the container's init runs itself (createContainer before the pivot,
//! startContainer before the command), through the init's hidden
//! `--internal-runtime-bundle`/`--internal-runtime-id`, which ns-runtime's `create` gives
//! it: real hooks in the container's namespaces, as root and as uid 65534. The hooks the
//! runtime runs in its own namespaces (createRuntime, poststart, poststop: state on stdin,
//! timeout, failures) are tested in src/runtime/hooks.rs.

use std::path::Path;
use std::time::Duration;

use reexec_tests::{
    TestUser, assert_exit_code, assert_failed_with, describe, or_skip, output_with_timeout,
    temp_dir, world_writable_dir,
};

mod support;

use support::rootfs;

const NS_PROCESS: &str = env!("CARGO_BIN_EXE_ns-process");
const TIMEOUT: Duration = Duration::from_secs(60);

/// A bundle whose config.json has `hooks` (its rootfs is given to ns-process apart).
fn bundle(hooks: serde_json::Value) -> reexec_tests::TempDir {
    let dir = temp_dir("bundle");
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "root": { "path": "rootfs" },
        "annotations": { "made.by": "runtime_hooks" },
        "hooks": hooks,
    });
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    dir
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .trim()
        .to_owned()
}

#[test]
fn the_init_runs_create_and_start_container_hooks_in_the_containers_namespaces() {
    let rootfs = or_skip!(rootfs(), "no root filesystem");
    for user in TestUser::all(NS_PROCESS) {
        let label = user.label();
        let out = world_writable_dir("hooks-out");
        let host_out = out.path().display().to_string();
        // createContainer: a path of the runtime's, before the pivot; startContainer: the
        // container's /bin/sh, after it, writing where the command can see it (its /root, a
        // directory the busybox rootfs has).
        let bundle = bundle(serde_json::json!({
            "createContainer": [{
                "path": "/bin/sh",
                "args": ["sh", "-c", format!(
                    "cat > {host_out}/create-state; hostname > {host_out}/create-host; \
                     readlink /proc/self/ns/mnt > {host_out}/create-mnt"
                )],
            }],
            "startContainer": [{
                "path": "/bin/sh",
                "args": ["sh", "-c", "cat > /root/start-state; hostname > /root/start-host"],
            }],
        }));
        let output = output_with_timeout(
            user.command().args([
                "--rootfs",
                rootfs.to_str().unwrap(),
                "--hostname",
                "hooked",
                "--bind",
                &format!("{host_out}:/root"),
                "--internal-runtime-bundle",
                bundle.path().to_str().unwrap(),
                "--internal-runtime-id",
                "c1",
                "--",
                "/bin/sh",
                "-c",
                "test -s /root/start-state && echo after-the-hook",
            ]),
            TIMEOUT,
        );
        assert_exit_code(label, &output, 0);
        let context = format!("{label}: {}", describe(&output));
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("after-the-hook"),
            "{context}"
        );
        let state: serde_json::Value =
            serde_json::from_str(&read(&out.path().join("create-state"))).unwrap();
        assert_eq!(state["id"], "c1", "{context}");
        assert_eq!(state["status"], "creating", "{context}");
        // The init reads only what its hooks need of config.json (#14): the version too.
        assert_eq!(state["ociVersion"], "1.0.2", "{context}");
        assert_eq!(
            state["bundle"],
            bundle.path().to_str().unwrap(),
            "{context}"
        );
        assert_eq!(
            state["annotations"]["made.by"], "runtime_hooks",
            "{context}"
        );
        // The init's pid as the host sees it, not 1.
        let pid = state["pid"].as_i64().unwrap();
        assert!(pid > 1, "{context}");
        assert_eq!(read(&out.path().join("create-host")), "hooked", "{context}");
        let own_mnt = reexec_tests::procfs::namespace_id("mnt").unwrap();
        assert_ne!(
            read(&out.path().join("create-mnt")),
            format!("mnt:[{own_mnt}]"),
            "the createContainer hook ran in the test's mount namespace: {context}"
        );
        let state: serde_json::Value =
            serde_json::from_str(&read(&out.path().join("start-state"))).unwrap();
        assert_eq!(state["status"], "created", "{context}");
        assert_eq!(state["pid"].as_i64(), Some(pid), "{context}");
        assert_eq!(read(&out.path().join("start-host")), "hooked", "{context}");
    }
}

#[test]
fn a_failing_container_hook_fails_the_start_naming_the_hook_and_the_command_never_runs() {
    let rootfs = or_skip!(rootfs(), "no root filesystem");
    for user in TestUser::all(NS_PROCESS) {
        let label = user.label();
        let out = world_writable_dir("hooks-fail");
        for (kind, hook) in [
            (
                "createContainer",
                serde_json::json!({ "path": "/bin/sh", "args": ["sh", "-c", "echo no GPU here >&2; exit 3"] }),
            ),
            (
                "startContainer",
                serde_json::json!({ "path": "/bin/sh", "args": ["sh", "-c", "echo no GPU here >&2; exit 3"] }),
            ),
        ] {
            let bundle = bundle(serde_json::json!({ kind: [hook] }));
            let output = output_with_timeout(
                user.command().args([
                    "--rootfs",
                    rootfs.to_str().unwrap(),
                    "--bind",
                    &format!("{}:/root", out.path().display()),
                    "--internal-runtime-bundle",
                    bundle.path().to_str().unwrap(),
                    "--internal-runtime-id",
                    "c2",
                    "--",
                    "/bin/sh",
                    "-c",
                    "touch /root/ran",
                ]),
                TIMEOUT,
            );
            assert_failed_with(
                &format!("{label} {kind}"),
                &output,
                125,
                &[
                    &format!("hooks.{kind}[0] (/bin/sh)"),
                    "exited with status 3",
                    "no GPU here",
                ],
            );
            assert!(
                !out.path().join("ran").exists(),
                "{label} {kind}: the command ran"
            );
        }
    }
}
