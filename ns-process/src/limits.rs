//! `--memory`, `--memory-swap`, `--pids-limit` and `--cpus`: a cgroup below ns-process's
//! own, made before the init starts, which the init is in from its first instruction
//! (`reexec::Command::cgroup`), and removed once the run is over.
//!
//! Everything inside — the init, the command, whatever they start — is in the cgroup and
//! cannot leave it: joining another cgroup takes write access to the cgroup filesystem,
//! which the command does not have (see SECURITY.md). A limit that cannot be set refuses
//! the run; it never runs unlimited.

use std::time::Duration;

use reexec::{Cgroup, Controller};

use crate::cli::Options;

/// The prefix of ns-process's cgroups: `ns-process-PIDNS-PID-N`.
const PREFIX: &str = "ns-process";

/// Every controller ns-process may use, for the cleanup of leftovers.
const CONTROLLERS: [Controller; 3] = [Controller::Memory, Controller::Pids, Controller::Cpu];

/// podman's (and the kernel's default) CPU period: `--cpus 0.5` is 50 ms of each 100 ms.
const CPU_PERIOD: Duration = Duration::from_millis(100);

/// The smallest memory limit taken, as Docker's: below it the init could not even start.
const MIN_MEMORY: u64 = 6 << 20;

/// A size given on the command line: its bytes, and the text, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Size {
    pub(crate) bytes: u64,
    pub(crate) text: String,
}

impl Size {
    pub(crate) fn parse(text: &str) -> Result<Size, String> {
        Ok(Size {
            bytes: parse_size(text)?,
            text: text.to_owned(),
        })
    }
}

/// `--memory-swap`: memory plus swap in all, or `-1` for no bound on swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Swap {
    Total(u64),
    Unlimited,
}

/// The cgroup of one run, with what was asked of it.
pub(crate) struct RunCgroup {
    cgroup: Cgroup,
    memory: Option<String>,
}

/// Removes the empty cgroups of earlier runs whose ns-process was killed before it could
/// (SIGKILL); best effort, and silent: a caller without delegation has none to remove.
pub(crate) fn remove_leftovers(verbose: bool) {
    for path in Cgroup::remove_leftovers(PREFIX, &CONTROLLERS) {
        if verbose {
            eprintln!(
                "ns-process: removed the cgroup {} of an earlier run",
                path.display()
            );
        }
    }
}

/// The cgroup the options ask for, made and limited; `None` when no limit is given.
pub(crate) fn create(options: &Options) -> Result<Option<RunCgroup>, String> {
    let memory = options.memory.as_ref().map(|size| size.bytes);
    let pids = options.pids_limit.filter(|&count| count >= 0);
    let mut controllers = Vec::new();
    if memory.is_some() {
        controllers.push(Controller::Memory);
    }
    if pids.is_some() {
        controllers.push(Controller::Pids);
    }
    if options.cpus.is_some() {
        controllers.push(Controller::Cpu);
    }
    if controllers.is_empty() {
        return Ok(None);
    }
    let asked = given_limits(options);
    let refuse = |error: reexec::Error| {
        format!(
            "{asked}: the limits need a cgroup of ns-process's own, made below the cgroup \
             it runs in, and it could not be made or limited: {error}"
        )
    };
    let cgroup = Cgroup::create_owned(PREFIX, &controllers).map_err(refuse)?;
    if let Some(bytes) = memory {
        cgroup.set_memory_max(bytes).map_err(refuse)?;
        match options.memory_swap {
            Some(Swap::Total(total)) => cgroup.set_memory_swap_max(total).map_err(refuse)?,
            Some(Swap::Unlimited) => {}
            // As podman: as much swap as memory. A kernel that does not account swap
            // bounds memory alone, which --memory asked for.
            None => {
                let _ = cgroup.set_memory_swap_max(bytes.saturating_mul(2));
            }
        }
    }
    if let Some(count) = pids {
        cgroup.set_pids_max(count as u64).map_err(refuse)?;
    }
    if let Some(cpus) = options.cpus {
        cgroup
            .set_cpu_max(CPU_PERIOD.mul_f64(cpus), CPU_PERIOD)
            .map_err(refuse)?;
    }
    if options.verbose {
        for path in cgroup.paths() {
            eprintln!("ns-process: {asked}: cgroup {}", path.display());
        }
    }
    Ok(Some(RunCgroup {
        cgroup,
        memory: options.memory.as_ref().map(|size| size.text.clone()),
    }))
}

impl RunCgroup {
    /// The cgroup the init starts in.
    pub(crate) fn cgroup(&self) -> &Cgroup {
        &self.cgroup
    }

    /// Once the init has ended: says whether the memory limit killed anything, and
    /// removes the cgroup.
    pub(crate) fn finish(self) {
        if let Some(memory) = &self.memory {
            if let Ok(kills) = self.cgroup.oom_kills() {
                if kills > 0 {
                    eprintln!(
                        "ns-process: the memory limit (--memory {memory}) was reached: the \
                         kernel's OOM killer killed {kills} process{} inside",
                        if kills == 1 { "" } else { "es" }
                    );
                }
            }
        }
        if let Err(error) = self.cgroup.remove() {
            eprintln!("ns-process: warning: {error} (the next run removes it once empty)");
        }
    }
}

/// The limit options given, as the user wrote them, for messages.
fn given_limits(options: &Options) -> String {
    let mut given = Vec::new();
    if let Some(memory) = &options.memory {
        given.push(format!("--memory {}", memory.text));
    }
    if let Some(count) = options.pids_limit.filter(|&count| count >= 0) {
        given.push(format!("--pids-limit {count}"));
    }
    if let Some(cpus) = options.cpus {
        given.push(format!("--cpus {cpus}"));
    }
    given.join(", ")
}

/// A size as podman takes it: a number of bytes, with `b`, `k`, `m` or `g` after it
/// (any case; powers of 1024).
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let invalid = || {
        format!("{text:?} is not a size; write a number of bytes, with b, k, m or g after it: 64m")
    };
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" => 10,
        "m" | "mb" => 20,
        "g" | "gb" => 30,
        _ => return Err(invalid()),
    };
    let number: u64 = digits.parse().map_err(|_| invalid())?;
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is more bytes than a 64-bit number holds"))
}

/// `--memory-swap`: a size, or `-1` for unlimited swap.
pub(crate) fn parse_swap(text: &str) -> Result<Swap, String> {
    if text == "-1" {
        return Ok(Swap::Unlimited);
    }
    parse_size(text).map(Swap::Total)
}

/// `--pids-limit`: a count of 1 or more, or `-1` for no limit.
pub(crate) fn parse_pids(text: &str) -> Result<i64, String> {
    match text.parse::<i64>() {
        Ok(-1) => Ok(-1),
        Ok(count) if count >= 1 => Ok(count),
        Ok(0) => Err("0 would let no process start; give 1 or more, or -1 for no limit".into()),
        _ => Err(format!(
            "{text:?} is not a number of processes; give 1 or more, or -1 for no limit"
        )),
    }
}

/// `--cpus`: how many CPUs' worth of time, from 0.01 (the kernel's smallest quota, 1 ms
/// per 100 ms) to the CPUs there are.
pub(crate) fn parse_cpus(text: &str) -> Result<f64, String> {
    let cpus: f64 = text
        .parse()
        .ok()
        .filter(|cpus: &f64| cpus.is_finite())
        .ok_or_else(|| format!("{text:?} is not a number of CPUs, such as 0.5 or 2"))?;
    let available = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    if !(0.01..=available).contains(&cpus) {
        return Err(format!(
            "{text} is out of range: from 0.01 to {available}, the CPUs this machine has"
        ));
    }
    Ok(cpus)
}

/// The checks that need more than one option.
pub(crate) fn validate(options: &Options) -> Result<(), String> {
    if let Some(memory) = &options.memory {
        if memory.bytes < MIN_MEMORY {
            return Err(format!(
                "--memory {}: the smallest memory limit is 6m; below it the init itself \
                 would not start",
                memory.text
            ));
        }
    }
    match (
        options.memory.as_ref().map(|size| size.bytes),
        options.memory_swap,
    ) {
        (None, Some(_)) => Err(
            "--memory-swap bounds memory plus swap together: give --memory too (with \
             --memory alone, swap is as much as memory)"
                .into(),
        ),
        (Some(memory), Some(Swap::Total(total))) if total < memory => Err(format!(
            "--memory-swap {total} is below --memory {memory}: it counts memory plus swap, \
             so it is at least the memory limit (or -1 for unlimited swap)"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_podman_writes_them() {
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("100b"), Ok(100));
        assert_eq!(parse_size("100"), Ok(100));
        for bad in ["", "m", "1.5g", "-1", "64x", "64mm", "99999999999999g"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_swap("-1"), Ok(Swap::Unlimited));
    }

    #[test]
    fn pids_and_cpus() {
        assert_eq!(parse_pids("64"), Ok(64));
        assert_eq!(parse_pids("-1"), Ok(-1));
        for bad in ["0", "-2", "x", ""] {
            assert!(parse_pids(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_cpus("0.5"), Ok(0.5));
        for bad in ["0", "0.001", "-1", "NaN", "inf", "1000000"] {
            assert!(parse_cpus(bad).is_err(), "{bad}");
        }
        assert_eq!(CPU_PERIOD.mul_f64(0.5).as_micros(), 50_000);
    }
}
