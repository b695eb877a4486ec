//! Test support for the reexec workspace: the binaries in `src/bin` re-execute themselves
//! for real, and the tests in `tests/` run those binaries.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A directory under the system's temporary directory, removed with its content on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty directory whose name contains `label`, this process's pid and a counter.
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("reexec-{label}-{}-{unique}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    /// Where the directory is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The value of the first `key=value` line of a probe's stdout.
pub fn field<'a>(output: &'a Output, key: &str) -> Option<&'a str> {
    let stdout = std::str::from_utf8(&output.stdout).ok()?;
    stdout.lines().find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
}

/// Every value of `key=value` lines of a probe's stdout, in order.
pub fn fields<'a>(output: &'a Output, key: &str) -> Vec<&'a str> {
    let stdout = std::str::from_utf8(&output.stdout).unwrap_or("");
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

/// Stdout and stderr of a probe run, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
