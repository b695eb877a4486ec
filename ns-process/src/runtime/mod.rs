//! `ns-runtime`: an OCI runtime with runc's command line, on ns-process's engine.
//!
//! A bundle's `config.json` becomes an `ns-process` command line (`spec.rs`), which is
//! parsed and run by the same engine as `ns-process` itself; what only a runtime has — the
//! state directory, the wait between `create` and `start`, the cgroup at `cgroupsPath`,
//! hooks, `exec` into a running container and the console socket — lives here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cgroups;
pub(crate) mod console;
pub(crate) mod created;
mod exec;
pub(crate) mod hooks;
mod lifecycle;
mod log;
mod ps;
mod spec;
mod state;

/// `ns-runtime`'s `main`: runc's command line (`create`, `start`, `state`, `kill`,
/// `delete`, `run`, `exec`, `list`, `ps`, `features`, `spec`).
///
/// The binary calls it inside [`reexec::main!`], which runs the container's init first
/// when this is a re-executed child:
///
/// ```no_run
/// reexec::main! {
///     fn main() -> std::process::ExitCode {
///         ns_process::runtime::main()
///     }
/// }
/// ```
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let global = &cli.global;
    let result = check_global(global).and_then(|()| match &cli.command {
        Sub::Spec(args) => spec::write_example(args).map_err(Failure::failed),
        Sub::Features => spec::print_features().map_err(Failure::failed),
        Sub::Exec(args) => exec::run(global, args).map_err(Failure::failed),
        Sub::Create(args) => lifecycle::create(global, args),
        Sub::Start { id } => lifecycle::start(global, id),
        Sub::State { id } => lifecycle::state(global, id),
        Sub::Kill { all, id, signal } => lifecycle::kill(global, id, signal.as_deref(), *all),
        Sub::Delete { force, id } => lifecycle::delete(global, id, *force),
        Sub::Run { create, detach } => lifecycle::run(global, create, *detach),
        Sub::List { format, quiet } => lifecycle::list(global, format, *quiet),
        Sub::Ps {
            format,
            id,
            ps_args,
        } => lifecycle::ps(global, id, format, ps_args),
    });
    match result {
        Ok(code) => code,
        Err(failure) => {
            log::error(global, &failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// The global flags' own checks, before any command runs.
fn check_global(global: &Global) -> Result<(), Failure> {
    if !log::FORMATS.contains(&global.log_format.as_str()) {
        return Err(Failure::usage(format!(
            "--log-format {:?}: give text or json",
            global.log_format
        )));
    }
    Ok(())
}

/// The variable in a container's init's environment that names its state directory
/// (`--root`, then the id): how a process on the host tells which container an init
/// belongs to, now that its command line shows its name alone.
pub(crate) const STATE_DIR_VARIABLE: &str = "NS_RUNTIME_STATE_DIR";

/// Exit status: the operation failed (a system call, the container's setup).
pub(crate) const EXIT_FAILED: u8 = 1;
/// Exit status: the command line is wrong (as clap's own errors).
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit status: no container has that id.
pub(crate) const EXIT_NOT_FOUND: u8 = 3;
/// Exit status: the container's state forbids it (it exists, is not created, is running).
pub(crate) const EXIT_WRONG_STATE: u8 = 4;
/// Exit status: the bundle, its `config.json` or a flag asks for what is refused.
pub(crate) const EXIT_BAD_INPUT: u8 = 5;

/// Why a command failed: its message (stderr and `--log`) and exit status.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn failed(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_FAILED,
            message: message.into(),
        }
    }

    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_NOT_FOUND,
            message: message.into(),
        }
    }

    pub(crate) fn wrong_state(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_WRONG_STATE,
            message: message.into(),
        }
    }

    pub(crate) fn bad_input(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_BAD_INPUT,
            message: message.into(),
        }
    }
}

/// The flags runc takes before the command; conmon and containerd's shim pass them.
#[derive(Debug, clap::Args)]
pub(crate) struct Global {
    /// The state directory (default `/run/ns-runtime`, or `$XDG_RUNTIME_DIR/ns-runtime`
    /// without privilege).
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) root: Option<PathBuf>,
    /// Where errors and debug lines are written, besides stderr.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) log: Option<PathBuf>,
    /// `text` or `json` (one object per line, as runc writes them).
    #[arg(
        long = "log-format",
        global = true,
        value_name = "FORMAT",
        default_value = "text"
    )]
    pub(crate) log_format: String,
    /// Debug lines in the log.
    #[arg(long, global = true)]
    pub(crate) debug: bool,
    /// Refused: cgroups through systemd are not supported.
    #[arg(long = "systemd-cgroup", global = true)]
    pub(crate) systemd_cgroup: bool,
}

#[derive(Debug, Parser)]
#[command(
    name = "ns-runtime",
    version,
    about = "An OCI runtime with runc's command line, on ns-process's engine"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Creates a container from a bundle; its process waits for `start`.
    Create(CreateArgs),
    /// Runs the created container's process.
    Start { id: String },
    /// Prints the container's state as JSON.
    State { id: String },
    /// Sends a signal (name or number, default SIGTERM) to the container.
    Kill {
        #[arg(long, short)]
        all: bool,
        id: String,
        signal: Option<String>,
    },
    /// Deletes a stopped container (`--force`: any).
    Delete {
        #[arg(long, short)]
        force: bool,
        id: String,
    },
    /// Creates and starts a container, and waits for it.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        #[arg(long, short)]
        detach: bool,
    },
    /// Runs another process in a running container.
    Exec(exec::ExecArgs),
    /// Lists the containers.
    List {
        #[arg(long, short, default_value = "table")]
        format: String,
        #[arg(long, short)]
        quiet: bool,
    },
    /// Lists the container's processes.
    Ps {
        #[arg(long, short, default_value = "table")]
        format: String,
        id: String,
        ps_args: Vec<String>,
    },
    /// Prints what this runtime supports, as JSON.
    Features,
    /// Writes an example `config.json` for a rootfs.
    Spec(spec::SpecArgs),
}

/// `create`'s flags, which `run` takes too.
#[derive(Debug, clap::Args)]
pub(crate) struct CreateArgs {
    /// The bundle: `config.json` and the rootfs it names (default: the current directory).
    #[arg(long, short, value_name = "DIR", default_value = ".")]
    pub(crate) bundle: PathBuf,
    /// Where the container's pid is written once it is created.
    #[arg(long = "pid-file", value_name = "FILE")]
    pub(crate) pid_file: Option<PathBuf>,
    /// A unix socket that receives the pty's master, with `process.terminal`.
    #[arg(long = "console-socket", value_name = "SOCKET")]
    pub(crate) console_socket: Option<PathBuf>,
    /// Mount namespace and rootfs without pivot_root (refused: not supported).
    #[arg(long = "no-pivot")]
    pub(crate) no_pivot: bool,
    /// Descriptors 3 .. 3+N passed on to the container's process.
    #[arg(long = "preserve-fds", value_name = "N", default_value_t = 0)]
    pub(crate) preserve_fds: u16,
    /// The container's id.
    pub(crate) id: String,
}
