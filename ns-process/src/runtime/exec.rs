//! `ns-runtime exec`: another process in a running container's namespaces and cgroup.

use std::path::PathBuf;
use std::process::ExitCode;

use super::Global;

/// `exec`'s flags, as runc's.
#[derive(Debug, clap::Args)]
pub(crate) struct ExecArgs {
    /// The process as OCI JSON (`config.json`'s `process`), instead of COMMAND.
    #[arg(long, short, value_name = "FILE")]
    pub(crate) process: Option<PathBuf>,
    /// Returns once the process started.
    #[arg(long, short)]
    pub(crate) detach: bool,
    /// Where the process's pid is written.
    #[arg(long = "pid-file", value_name = "FILE")]
    pub(crate) pid_file: Option<PathBuf>,
    /// A unix socket that receives the pty's master, with `--tty`.
    #[arg(long = "console-socket", value_name = "SOCKET")]
    pub(crate) console_socket: Option<PathBuf>,
    /// A pty for the process.
    #[arg(long, short)]
    pub(crate) tty: bool,
    /// The working directory inside.
    #[arg(long, value_name = "DIR")]
    pub(crate) cwd: Option<PathBuf>,
    /// The container's id.
    pub(crate) id: String,
    /// The command and its arguments, without `--process`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) command: Vec<String>,
}

/// `ns-runtime exec`.
pub(crate) fn run(global: &Global, args: &ExecArgs) -> Result<ExitCode, String> {
    let _ = (global, args);
    Err("exec: not built yet".into())
}
