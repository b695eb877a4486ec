//! A bundle's `config.json`, turned into the `ns-process` command line that runs it.

use std::process::ExitCode;

/// `spec`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct SpecArgs {
    /// The bundle directory to write `config.json` into.
    #[arg(long, short, value_name = "DIR", default_value = ".")]
    pub(crate) bundle: std::path::PathBuf,
    /// A config for a run without privilege (user namespace, maps of the caller).
    #[arg(long)]
    pub(crate) rootless: bool,
}

/// `ns-runtime spec`.
pub(crate) fn write_example(args: &SpecArgs) -> Result<ExitCode, String> {
    let _ = args;
    Err("spec: not built yet".into())
}

/// `ns-runtime features`.
pub(crate) fn print_features() -> Result<ExitCode, String> {
    Err("features: not built yet".into())
}
