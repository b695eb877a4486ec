//! What several of ns-process's test files need.

use std::path::Path;

/// A busybox root filesystem built once per test binary by the project's own script, in
/// Cargo's temporary directory for tests; `Err` says why there is none.
pub(crate) fn rootfs() -> Result<&'static Path, String> {
    reexec_tests::busybox_rootfs(env!("CARGO_TARGET_TMPDIR"))
}
