//! What several of ns-process's test files need.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use reexec_tests::stderr_text;

/// A busybox root filesystem built once per test run by the project's own script, in
/// Cargo's temporary directory for tests; `Err` says why there is none.
pub(crate) fn rootfs() -> Result<&'static Path, String> {
    static ROOTFS: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    ROOTFS
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("busybox-rootfs");
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-rootfs");
            let output = Command::new("bash")
                .arg(script)
                .arg(&dir)
                .output()
                .map_err(|error| error.to_string())?;
            if output.status.success() {
                Ok(dir)
            } else {
                Err(format!(
                    "scripts/make-rootfs failed: {}",
                    stderr_text(&output)
                ))
            }
        })
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(Clone::clone)
}
