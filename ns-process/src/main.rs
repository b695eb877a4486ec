//! `ns-process`: a shell, or any command, in new mount, UTS, IPC, PID, network and user
//! namespaces, with root mapped to the caller.
//!
//! The parent starts the entry `nsInitialisation` through [`reexec::Command`]; the entry
//! runs inside the namespaces, before anything the user asked for, and starts the
//! command.

use std::ffi::OsString;
use std::process::ExitCode;

mod init;
mod terminal;

/// Exit status when ns-process itself fails, as `docker run` and `podman` use.
const EXIT_OWN_FAILURE: u8 = 125;

const USAGE: &str = "\
usage: ns-process [-- COMMAND [ARG...]]

Runs /bin/sh (or COMMAND) in new mount, UTS, IPC, PID, network and user namespaces,
as root mapped to your own user.

exit status: the command's; 128+N if a signal N ended it; 125 if ns-process failed;
126 if COMMAND can't be executed; 127 if COMMAND was not found.";

/// What the command line asks for.
enum Request {
    Run(Vec<OsString>),
    Help,
}

fn parse(args: Vec<OsString>) -> Result<Request, String> {
    let mut args = args.into_iter();
    match args.next() {
        None => Ok(Request::Run(Vec::new())),
        Some(first) if first == "--" => {
            let command: Vec<OsString> = args.collect();
            if command.is_empty() {
                return Err("`--` must be followed by a command".into());
            }
            Ok(Request::Run(command))
        }
        Some(first) if first == "-h" || first == "--help" => Ok(Request::Help),
        Some(other) => Err(format!(
            "unexpected argument {:?}; put the command after `--`, as in `ns-process -- {}`",
            other,
            other.to_string_lossy()
        )),
    }
}

reexec::main! {
    fn main() -> ExitCode {
        let command = match parse(std::env::args_os().skip(1).collect()) {
            Ok(Request::Run(command)) => command,
            Ok(Request::Help) => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            Err(message) => {
                eprintln!("ns-process: {message}\n\n{USAGE}");
                return ExitCode::from(EXIT_OWN_FAILURE);
            }
        };
        let foreground = terminal::foreground_group();
        let status = reexec::Command::new(init::ENTRY)
            .namespaces(reexec::Namespaces::SEED)
            .map_root_to_caller()
            .args(command)
            .status();
        if let Some(group) = foreground {
            let _ = terminal::set_foreground(group);
        }
        match status {
            Ok(status) => ExitCode::from(init::exit_status_byte(status)),
            Err(error) => {
                eprintln!("ns-process: {error}");
                ExitCode::from(EXIT_OWN_FAILURE)
            }
        }
    }
}
