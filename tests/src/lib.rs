//! Test support for the reexec workspace: the binaries in `src/bin` re-execute themselves
//! for real, and the tests in `tests/` (and ns-process's) run those binaries.
//!
//! - [`output`]: what probes print and tests read — `key=value` lines, exit statuses,
//!   step names — and the assertions on them.
//! - [`run`]: running a program with a timeout, as root and as uid 65534 ([`TestUser`]).
//! - [`terminal`]: a tmux server of the test's own, for what needs a terminal.
//! - [`procfs`]: what `/proc` says about processes, descriptors, namespaces and mounts.
//! - [`stress`]: many threads spawning at once, with a watchdog and a count of what failed.
//! - [`faults`]: fault injection — seccomp filters, ptrace, signal storms.
//! - [`fork_server`]: the probes' suites again, through the fork server.
//! - [`orphans`]: parents killed on purpose, and what became of their children.
//! - [`rootfs`]: the busybox and Debian root filesystems the ns-process tests run in.
//! - [`holder`]: a process holding namespaces of its own, for a test to join.
//! - [`podman`], [`containerd`]: real clients of an OCI runtime, isolated from the host's
//!   own, with the runtime under test; [`cgroup_parent`]: the cgroups they create, kept
//!   below the test's own.
//!
//! The items tests use most are re-exported here.

pub mod cgroup_parent;
pub mod containerd;
pub mod faults;
pub mod fork_server;
pub mod holder;
pub mod orphans;
pub mod output;
pub mod podman;
pub mod procfs;
pub mod rootfs;
pub mod run;
pub mod stress;
pub mod terminal;

pub use cgroup_parent::CgroupParent;
pub use containerd::Containerd;
pub use holder::NamespaceHolder;
pub use output::{
    assert_exit_code, assert_failed_with, assert_fields, describe, field, fields, or_none,
    pid_field, print_status, read_until_field, status_text, stderr_text, stdout_text, step_name,
};
pub use podman::{BUSYBOX_IMAGE, Podman};
pub use procfs::{mount_table, open_fds};
pub use rootfs::{MAKE_ROOTFS, busybox_rootfs, busybox_rootfs_copy, debian_rootfs};
pub use run::{
    DENIED_GROUP, SubordinateIdFiles, TestUser, Unprivileged, as_root_and_unprivileged,
    assert_refused, copy_executable, file_denied_to_group, in_denied_group, is_root,
    output_with_timeout, spawn_until_ready, succeeds_as_root_and_unprivileged, temp_dir,
    world_writable_dir,
};
pub use tempfile::TempDir;
pub use terminal::{TmuxServer, in_terminal_as_root_and_unprivileged, is_raw, terminal_settings};

/// Skips the rest of a test, printing `skipped: WHY`, unless `condition` holds.
///
/// ```
/// fn a_test() {
///     reexec_tests::skip_unless!(reexec_tests::is_root(), "changing a file's owner needs root");
///     // … what only root can do
/// }
/// # a_test();
/// ```
#[macro_export]
macro_rules! skip_unless {
    ($condition:expr, $why:expr) => {
        if !$condition {
            println!("skipped: {}", $why);
            return;
        }
    };
}

/// The value of an `Ok`; for an `Err(reason)`, prints `skipped: WHAT: REASON` and returns
/// from the test.
///
/// ```
/// fn a_test() {
///     let text = reexec_tests::or_skip!(std::fs::read_to_string("/proc/version"), "no /proc");
///     assert!(text.starts_with("Linux"));
/// }
/// # a_test();
/// ```
#[macro_export]
macro_rules! or_skip {
    ($result:expr, $what:expr) => {
        match $result {
            Ok(value) => value,
            Err(reason) => {
                println!("skipped: {}: {}", $what, reason);
                return;
            }
        }
    };
}

/// The namespaces the seed's `ns-process` creates: user, mount, UTS, IPC, PID and network.
/// The probes spawn their namespaced children into these. (Once `reexec::Namespaces::SEED`,
/// which left the public API since only tests and the benchmark used it.)
pub const SEED_NAMESPACES: reexec::Namespaces = reexec::Namespaces::USER
    .union(reexec::Namespaces::MOUNT)
    .union(reexec::Namespaces::UTS)
    .union(reexec::Namespaces::IPC)
    .union(reexec::Namespaces::PID)
    .union(reexec::Namespaces::NET);
