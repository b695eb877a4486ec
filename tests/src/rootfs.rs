//! The busybox root filesystem the ns-process tests run commands in.

use std::path::{Path, PathBuf};

use crate::output::stderr_text;

/// The project's `scripts/make-rootfs`.
pub const MAKE_ROOTFS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/make-rootfs");

/// A busybox root filesystem built by `scripts/make-rootfs` once per test binary, in
/// `target_tmpdir` (the test's `env!("CARGO_TARGET_TMPDIR")`); `Err` says why there is
/// none. make-rootfs builds only in a directory it creates, so what a previous run of the
/// same binary left there is removed first.
pub fn busybox_rootfs(target_tmpdir: &str) -> Result<&'static Path, String> {
    static ROOTFS: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    ROOTFS
        .get_or_init(|| {
            let binary = std::env::current_exe().map_err(|error| error.to_string())?;
            let name = binary.file_name().unwrap().to_string_lossy();
            let dir = Path::new(target_tmpdir).join(format!("busybox-rootfs-{name}"));
            match std::fs::remove_dir_all(&dir) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    return Err(format!("removing {}: {error}", dir.display()));
                }
                _ => {}
            }
            let output = std::process::Command::new("bash")
                .arg(MAKE_ROOTFS)
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

/// A copy of the busybox rootfs ([`busybox_rootfs`]) at `to`, which must not exist yet,
/// every file of it owned by `owner` (uid, gid) where the tests run as root: the rootfs a
/// user built for themselves, which root inside may change. `Err` says why there is none.
pub fn busybox_rootfs_copy(
    target_tmpdir: &str,
    to: &Path,
    owner: (u32, u32),
) -> Result<(), String> {
    let rootfs = busybox_rootfs(target_tmpdir)?;
    let run = |command: &mut std::process::Command| {
        let output = command.output().map_err(|error| error.to_string())?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!("{command:?}: {}", stderr_text(&output)))
        }
    };
    run(std::process::Command::new("cp")
        .arg("-a")
        .arg(rootfs)
        .arg(to))?;
    if crate::is_root() {
        let owner = format!("{}:{}", owner.0, owner.1);
        run(std::process::Command::new("chown")
            .args(["-R", "-h", &owner])
            .arg(to))?;
    }
    Ok(())
}
