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

// stand-in until spec16 lands: `load` and `engine_args` with the agreed signatures,
// translating only process.args/env/cwd, root.path and hostname. spec16's replace them.

/// The bundle's `config.json`, parsed. (stand-in until spec16 lands)
pub(crate) fn load(bundle: &std::path::Path) -> Result<oci_spec::runtime::Spec, String> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).map_err(|error| {
        format!(
            "{}: {error}; give --bundle a directory with a config.json (ns-runtime spec \
             writes one)",
            path.display()
        )
    })?;
    serde_json::from_slice(&text).map_err(|error| format!("{}: {error}", path.display()))
}

/// The ns-process arguments that run `spec`. (stand-in until spec16 lands)
pub(crate) fn engine_args(
    spec: &oci_spec::runtime::Spec,
    bundle: &std::path::Path,
) -> Result<Vec<std::ffi::OsString>, String> {
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    let root = spec
        .root()
        .as_ref()
        .ok_or("config.json has no root: give root.path, the container's rootfs")?;
    args.push("--rootfs".into());
    args.push(bundle.join(root.path()).into());
    if let Some(hostname) = spec.hostname() {
        args.push(format!("--hostname={hostname}").into());
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or("config.json has no process: give process.args, the command to run")?;
    args.push("--workdir".into());
    args.push(process.cwd().into());
    for pair in process.env().iter().flatten() {
        args.push(format!("--env={pair}").into());
    }
    let command = process
        .args()
        .as_ref()
        .filter(|args| !args.is_empty())
        .ok_or("config.json's process.args is empty: give the command to run")?;
    args.push("--".into());
    args.extend(command.iter().map(Into::into));
    Ok(args)
}
