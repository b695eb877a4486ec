//! `nsInitialisation`: what runs inside the new namespaces, as their PID 1.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitCode, ExitStatus};

/// The entry's name, as in the Go series.
pub(crate) const ENTRY: &str = "nsInitialisation";

const SHELL: &str = "/bin/sh";
const PROMPT: &str = "-[ns-process]- # ";
/// What the command finds programs with: the environment starts clean.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const EXIT_CANNOT_EXECUTE: u8 = 126;
const EXIT_NOT_FOUND: u8 = 127;

#[reexec::entry("nsInitialisation")]
fn ns_initialisation() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.is_empty() {
        args.push(SHELL.into());
    }
    let program = args.remove(0);
    let mut command = std::process::Command::new(&program);
    command
        .args(&args)
        .env_clear()
        .env("PS1", PROMPT)
        .env("PATH", DEFAULT_PATH);
    if let Some(term) = std::env::var_os("TERM") {
        command.env("TERM", term);
    }
    crate::terminal::take_foreground_inside();
    match command.status() {
        Ok(status) => ExitCode::from(exit_status_byte(status)),
        Err(error) => {
            let (code, why) = match error.kind() {
                io::ErrorKind::NotFound => (EXIT_NOT_FOUND, "not found"),
                io::ErrorKind::PermissionDenied => (EXIT_CANNOT_EXECUTE, "not executable"),
                _ => (EXIT_CANNOT_EXECUTE, "could not be started"),
            };
            eprintln!("ns-process: {}: {why}: {error}", program.to_string_lossy());
            ExitCode::from(code)
        }
    }
}

/// A shell's view of how a process ended: its code, or 128 + the signal that ended it.
pub(crate) fn exit_status_byte(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) => 128u8.wrapping_add(signal as u8),
        (None, None) => 1,
    }
}
