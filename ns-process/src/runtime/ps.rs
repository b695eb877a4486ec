//! `ns-runtime ps`: the container's processes, as runc prints them — `ps`'s own table
//! (`ps -ef`, or the arguments given) cut to the lines of the container's cgroup, or with
//! `--format json` the list of their pids.

use std::process::{Command, ExitCode};

use oci_spec::runtime::Spec;

use super::cgroups;

/// Prints the processes of the container `id` (those in its cgroup: none when it has no
/// cgroup, made without privilege) in `format`, `table` or `json`; `ps_args` replace
/// `-ef` for the table.
pub(crate) fn print(
    spec: &Spec,
    id: &str,
    format: &str,
    ps_args: &[String],
) -> Result<ExitCode, String> {
    let pids = cgroups::processes(spec, id)?;
    let text = match format {
        "json" => serde_json::to_string(&pids).map_err(|error| error.to_string())?,
        "table" => table(&pids, ps_args)?,
        other => {
            return Err(format!(
                "ps --format {other}: the formats are table and json"
            ));
        }
    };
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// `ps`'s output for `ps_args` (default `-ef`): its header, and the lines of `pids`.
fn table(pids: &[i32], ps_args: &[String]) -> Result<String, String> {
    let default = ["-ef".to_owned()];
    let args = if ps_args.is_empty() {
        &default[..]
    } else {
        ps_args
    };
    let shown = format!("ps {}", args.join(" "));
    let output = Command::new("ps").args(args).output().map_err(|error| {
        format!("running {shown}: {error}; ns-runtime ps needs the ps command (procps)")
    })?;
    if !output.status.success() {
        return Err(format!(
            "{shown}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let Some(column) = header.split_whitespace().position(|name| name == "PID") else {
        return Err(format!(
            "{shown} printed no PID column: give ps arguments whose output has one"
        ));
    };
    let mut table = vec![header];
    table.extend(lines.filter(|line| {
        line.split_whitespace()
            .nth(column)
            .and_then(|pid| pid.parse::<i32>().ok())
            .is_some_and(|pid| pids.contains(&pid))
    }));
    Ok(table.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_the_header_and_only_the_given_processes() {
        let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = sleeper.id() as i32;
        let text = table(&[pid], &[]).unwrap();
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains("PID"), "{text}");
        assert!(lines[1].contains("sleep 30"), "{text}");
        // Other arguments, with the PID column elsewhere.
        let text = table(
            &[std::process::id() as i32],
            &["-o".into(), "comm,pid".into()],
        )
        .unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        let error = table(&[1], &["-o".into(), "comm".into()]).unwrap_err();
        assert!(error.contains("no PID column"), "{error}");
        let spec: Spec =
            serde_json::from_value(serde_json::json!({ "ociVersion": "1.0.2" })).unwrap();
        let error = print(&spec, "none", "yaml", &[]).unwrap_err();
        assert!(error.contains("table and json"), "{error}");
    }
}
