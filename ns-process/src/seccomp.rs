//! `--seccomp`: the system calls the command may make. The filter binds the command only —
//! installed in its forked child after the capabilities are cut, just before it execs
//! (`sys`) — never the init, whose setup mounts, pivots and configures what the filter
//! then refuses.
//!
//! The default profile refuses, with `EPERM` as Docker's does, what a program in a
//! container has no business calling: calls that reach the whole machine (kernel keyrings,
//! kexec, modules, reboot, swap, accounting, the clock, I/O ports, quotas), calls that let
//! a process out of its view (`open_by_handle_at`, ptrace and the calls reading other
//! processes' memory, new user namespaces, `setns`), and large kernel surfaces that
//! ordinary programs do without (bpf, perf events, userfaultfd, io_uring, the mount API).
//! Most of them need a capability the command lacks anyway; the filter is the second
//! wall, against a kernel bug behind the capability check. Like Docker's, a family comes
//! back with the capability that makes it legitimate (`--cap-add SYS_ADMIN` allows the
//! mount calls, `--cap-add SYS_PTRACE` ptrace). Calls newer than the table look absent
//! (`ENOSYS`), so that programs fall back; calls of another architecture (i386's
//! `int 0x80`, x32) kill the process: the list can't judge them.

use std::path::{Path, PathBuf};

use nix::libc;
use reexec::{
    ArgCondition, Capability, CapabilitySet, SeccompAction, SeccompFilter, SeccompProgram,
};
use serde_json::Value;

/// The `--seccomp` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SeccompArg {
    /// The profile of this module.
    Default,
    /// No filter.
    Unconfined,
    /// A profile file (see [`from_file`]).
    Profile(PathBuf),
}

impl SeccompArg {
    pub(crate) fn parse(text: &str) -> Result<SeccompArg, String> {
        Ok(match text {
            "default" => SeccompArg::Default,
            "unconfined" => SeccompArg::Unconfined,
            "" => return Err("give default, unconfined or the path of a profile".into()),
            path => SeccompArg::Profile(path.into()),
        })
    }
}

const EPERM: SeccompAction = SeccompAction::Errno(libc::EPERM as u16);
const ENOSYS: SeccompAction = SeccompAction::Errno(libc::ENOSYS as u16);

/// The families the default profile refuses, each with the calls in it and the
/// capabilities any of which gives it back (none: refused whatever the command keeps).
/// A name this architecture does not have (`iopl` on aarch64) is left out.
const REFUSED: &[(&str, &[&str], &[Capability])] = &[
    (
        "kernel keyrings",
        &["add_key", "request_key", "keyctl"],
        &[],
    ),
    (
        "kexec",
        &["kexec_load", "kexec_file_load"],
        &[Capability::SysBoot],
    ),
    ("reboot", &["reboot"], &[Capability::SysBoot]),
    (
        "kernel modules",
        &[
            "init_module",
            "finit_module",
            "delete_module",
            "create_module",
            "query_module",
            "get_kernel_syms",
        ],
        &[Capability::SysModule],
    ),
    (
        "file handles",
        &["open_by_handle_at"],
        &[Capability::DacReadSearch],
    ),
    ("bpf", &["bpf"], &[Capability::SysAdmin, Capability::Bpf]),
    (
        "perf events",
        &["perf_event_open"],
        &[Capability::SysAdmin, Capability::Perfmon],
    ),
    ("userfaultfd", &["userfaultfd"], &[Capability::SysPtrace]),
    (
        "ptrace and other processes' memory",
        &[
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "kcmp",
            "pidfd_getfd",
        ],
        &[Capability::SysPtrace],
    ),
    (
        "mounts",
        &[
            "mount",
            "umount",
            "umount2",
            "pivot_root",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "move_mount",
            "open_tree",
            "open_tree_attr",
            "mount_setattr",
        ],
        &[Capability::SysAdmin],
    ),
    ("joining namespaces", &["setns"], &[Capability::SysAdmin]),
    ("swap", &["swapon", "swapoff"], &[Capability::SysAdmin]),
    ("process accounting", &["acct"], &[Capability::SysPacct]),
    (
        "setting the clock",
        &["settimeofday", "clock_settime", "stime"],
        &[Capability::SysTime],
    ),
    ("I/O ports", &["iopl", "ioperm"], &[Capability::SysRawio]),
    (
        "quotas",
        &["quotactl", "quotactl_fd"],
        &[Capability::SysAdmin],
    ),
    ("fanotify", &["fanotify_init"], &[Capability::SysAdmin]),
    ("the kernel log", &["syslog"], &[Capability::Syslog]),
    (
        "hanging up the terminal",
        &["vhangup"],
        &[Capability::SysTtyConfig],
    ),
    (
        "NUMA memory policy",
        &[
            "mbind",
            "set_mempolicy",
            "get_mempolicy",
            "move_pages",
            "migrate_pages",
        ],
        &[Capability::SysNice],
    ),
    (
        "io_uring",
        &["io_uring_setup", "io_uring_enter", "io_uring_register"],
        &[],
    ),
    (
        "obsolete calls",
        &[
            "lookup_dcookie",
            "nfsservctl",
            "uselib",
            "ustat",
            "sysfs",
            "_sysctl",
            "vm86",
            "vm86old",
        ],
        &[],
    ),
];

/// The `personality(2)` values the default profile lets through, as Docker's: Linux,
/// `UNAME26`, `PER_LINUX32` and both, and the query. Others — `ADDR_NO_RANDOMIZE` above
/// all — are refused.
const PERSONALITIES: [u64; 5] = [0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// The filter the command runs under, or `None` for no filter: `--seccomp` as given, or
/// the default profile unless `--privileged`.
pub(crate) fn program(
    arg: Option<&SeccompArg>,
    privileged: bool,
    kept: CapabilitySet,
) -> Result<Option<SeccompProgram>, String> {
    let filter = match arg {
        None if privileged => return Ok(None),
        None | Some(SeccompArg::Default) => default_profile(kept),
        Some(SeccompArg::Unconfined) => return Ok(None),
        Some(SeccompArg::Profile(path)) => from_file(path, kept)?,
    };
    filter
        .compile()
        .map(Some)
        .map_err(|error| format!("compiling the seccomp filter: {error}"))
}

/// The default profile for a command that keeps the capabilities `kept`.
fn default_profile(kept: CapabilitySet) -> SeccompFilter {
    let keeps = |capability: &Capability| kept.contains(*capability);
    let mut filter = SeccompFilter::new(SeccompAction::Allow);
    for (_, names, given_back_by) in REFUSED {
        if given_back_by.iter().any(keeps) {
            continue;
        }
        for number in names
            .iter()
            .filter_map(|name| SeccompFilter::syscall_number(name))
        {
            filter.rule(number, EPERM);
        }
    }
    if !keeps(&Capability::SysAdmin) {
        // A new user namespace would give the command every capability again, in there:
        // refused, whatever else unshare or clone are asked for. clone3 passes its flags
        // in memory a filter can't read: it looks absent, and libc falls back to clone.
        let new_user = libc::CLONE_NEWUSER as u64;
        let asks_new_user = ArgCondition::masked_equal(0, new_user, new_user);
        for name in ["unshare", "clone"] {
            if let Some(number) = SeccompFilter::syscall_number(name) {
                filter.rule_if(number, asks_new_user, EPERM);
            }
        }
        if let Some(clone3) = SeccompFilter::syscall_number("clone3") {
            filter.rule(clone3, ENOSYS);
        }
    }
    if let Some(personality) = SeccompFilter::syscall_number("personality") {
        for value in PERSONALITIES {
            filter.rule_if(
                personality,
                ArgCondition::equal(0, value),
                SeccompAction::Allow,
            );
        }
        filter.rule(personality, EPERM);
    }
    filter.rule_from(SeccompFilter::last_known_syscall() + 1, ENOSYS);
    filter
}

/// A profile file, in JSON: OCI's form of a seccomp profile, or Docker's and podman's own
/// (`/usr/share/containers/seccomp.json`), which the engine resolves for each container:
///
/// ```json
/// {
///   "defaultAction": "SCMP_ACT_ALLOW",
///   "syscalls": [
///     { "names": ["keyctl", "add_key"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 },
///     { "names": ["unshare"], "action": "SCMP_ACT_ERRNO",
///       "args": [{ "index": 0, "value": 268435456, "valueTwo": 268435456,
///                  "op": "SCMP_CMP_MASKED_EQ" }] },
///     { "names": ["bpf"], "action": "SCMP_ACT_ERRNO", "errno": "EPERM",
///       "excludes": { "caps": ["CAP_SYS_ADMIN"] } }
///   ]
/// }
/// ```
///
/// Actions: `SCMP_ACT_ALLOW`, `SCMP_ACT_ERRNO` (with `errnoRet` or `errno`, else
/// `defaultErrnoRet` or `defaultErrno`, else `EPERM`), `SCMP_ACT_KILL` /
/// `SCMP_ACT_KILL_THREAD`, `SCMP_ACT_KILL_PROCESS`, `SCMP_ACT_TRAP`, `SCMP_ACT_LOG`. A
/// rule's argument tests (`SCMP_CMP_EQ`, `_NE`, `_LT`, `_LE`, `_GT`, `_GE`, `_MASKED_EQ`:
/// `value` the mask, `valueTwo` what the masked argument equals) must all hold. A rule
/// with `includes` or `excludes` applies as Docker's engine decides: `includes` needs
/// every capability in `caps` kept by the command, this machine among `arches` (Go's
/// names: `amd64`, `arm64`, …) and a kernel at least `minKernel`; `excludes` drops the
/// rule on any capability of its `caps` kept, this machine among its `arches`, or a
/// kernel at least its `minKernel`. `architectures`, `archMap` and `comment` are read and
/// ignored, but for a list without this machine's architecture: the filter judges this
/// build's architecture and kills calls of any other. Any other field — `flags`,
/// `listenerPath` — is refused rather than left out, as is a name no system call has on
/// any architecture we know; a name of another architecture's (`_llseek`) is skipped, as
/// runc skips it, so that Docker's and podman's profiles load.
fn from_file(path: &Path, kept: CapabilitySet) -> Result<SeccompFilter, String> {
    let at = |what: String| format!("--seccomp {}: {what}", path.display());
    let text = std::fs::read_to_string(path).map_err(|error| {
        at(format!(
            "{error}; give default, unconfined or a readable JSON profile"
        ))
    })?;
    let mut profile: Value =
        serde_json::from_str(&text).map_err(|error| at(format!("not valid JSON: {error}")))?;
    // podman's file has `"args": null` and `"includes": {}`: as if left out.
    drop_nulls(&mut profile);
    parse_profile(&profile, Form::File { kept }).map_err(at)
}

/// The program a profile in JSON describes — config.json's `linux.seccomp`, given by
/// ns-runtime (#16) — for this build's architecture; `Err` names the field that is wrong,
/// after `what`.
pub(crate) fn program_from_json(json: &str, what: &str) -> Result<SeccompProgram, String> {
    let at = |why: String| format!("{what}: {why}");
    let mut profile: Value =
        serde_json::from_str(json).map_err(|error| at(format!("not valid JSON: {error}")))?;
    if let Some(top) = profile.as_object_mut() {
        // The OCI form's field ns-process reads beyond Docker's: flags it may leave out
        // (none changes which calls are allowed).
        match top.remove("flags") {
            None | Some(Value::Null) => {}
            Some(Value::Array(flags)) => {
                for flag in &flags {
                    if !flag.as_str().is_some_and(|flag| FLAGS.contains(&flag)) {
                        return Err(at(format!(
                            "flags: {flag} is not supported; ns-process takes {}",
                            FLAGS.join(" and ")
                        )));
                    }
                }
            }
            Some(other) => return Err(at(format!("flags must be an array, not {other}"))),
        }
    }
    drop_nulls(&mut profile);
    parse_profile(&profile, Form::Oci)
        .map_err(&at)?
        .compile()
        .map_err(|error| at(format!("compiling the seccomp filter: {error}")))
}

/// The actions a profile may name, as `ns-runtime features` lists them.
pub(crate) const ACTIONS: [&str; 7] = [
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_LOG",
];

/// The argument tests a profile may make, config.json's and `--seccomp PATH`'s alike.
pub(crate) const OPERATORS: [&str; 7] = [
    "SCMP_CMP_EQ",
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_GT",
    "SCMP_CMP_GE",
    "SCMP_CMP_MASKED_EQ",
];

/// The OCI profile's flags that are taken (none changes which calls are allowed).
pub(crate) const FLAGS: [&str; 2] = ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"];

/// Takes out every field whose value is `null`: the same as a field left out.
fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            fields.retain(|_, value| !value.is_null());
            fields.values_mut().for_each(drop_nulls);
        }
        Value::Array(values) => values.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// Each architecture Rust names (`std::env::consts::ARCH`) as seccomp profiles name it
/// (`architectures`, `archMap`) and as Docker's name it in a rule's `arches` (Go's).
const ARCHITECTURES: [(&str, &str, &str); 7] = [
    ("x86_64", "SCMP_ARCH_X86_64", "amd64"),
    ("aarch64", "SCMP_ARCH_AARCH64", "arm64"),
    ("x86", "SCMP_ARCH_X86", "x86"),
    ("arm", "SCMP_ARCH_ARM", "arm"),
    ("riscv64", "SCMP_ARCH_RISCV64", "riscv64"),
    ("s390x", "SCMP_ARCH_S390X", "s390x"),
    ("powerpc64", "SCMP_ARCH_PPC64LE", "ppc64le"),
];

/// This build's row of [`ARCHITECTURES`].
fn this_architecture() -> Option<(&'static str, &'static str, &'static str)> {
    ARCHITECTURES
        .into_iter()
        .find(|(rust, _, _)| *rust == std::env::consts::ARCH)
}

/// This build's architecture, as seccomp profiles name it.
pub(crate) fn native_architecture() -> &'static str {
    this_architecture().map_or("SCMP_ARCH_NATIVE", |(_, profiles, _)| profiles)
}

/// Which profiles are read, and how.
#[derive(Clone, Copy)]
enum Form {
    /// `--seccomp PATH` (see [`from_file`]): OCI's form, or Docker's and podman's own, whose
    /// engine fields are resolved here — as podman resolves them before it hands a runtime
    /// the OCI form — against the command's capabilities, `kept`, this machine's
    /// architecture and the running kernel. Each name one this build or another
    /// architecture has: a typo is refused.
    File { kept: CapabilitySet },
    /// config.json's (ns-runtime, #16), the client's own, already resolved: the engine's
    /// fields are refused. A name this build does not know is skipped, as runc's
    /// libseccomp skips it — podman's default lists `bdflush`: a call this build can't
    /// name is one its programs can't make by that name.
    Oci,
}

/// The filter a parsed profile describes; `Err` names the field that is wrong.
fn parse_profile(profile: &Value, form: Form) -> Result<SeccompFilter, String> {
    let top = profile
        .as_object()
        .ok_or("the profile must be a JSON object with defaultAction and syscalls")?;
    let (top_fields, rule_fields): (&[&str], &[&str]) = match form {
        Form::File { .. } => (
            &[
                "defaultAction",
                "defaultErrnoRet",
                "defaultErrno",
                "syscalls",
                "architectures",
                "archMap",
                "comment",
            ],
            &[
                "names", "action", "errnoRet", "errno", "args", "comment", "includes", "excludes",
            ],
        ),
        Form::Oci => (
            &[
                "defaultAction",
                "defaultErrnoRet",
                "syscalls",
                "architectures",
                "comment",
            ],
            &["names", "action", "errnoRet", "args", "comment"],
        ),
    };
    check_fields(top, "the profile", top_fields)?;
    // Architectures must include this one: a filter for others only would judge nothing
    // here.
    if let Some(listed) = top.get("architectures") {
        lists_this_machine(&strings(listed, "architectures")?, "architectures")?;
    }
    if let Some(map) = top.get("archMap") {
        lists_this_machine(&arch_map(map)?, "archMap")?;
    }
    let default_errno = errno_of(top, "defaultErrnoRet", "defaultErrno")?.unwrap_or(EPERM_NUMBER);
    let default = action(
        top.get("defaultAction")
            .ok_or("defaultAction is missing: give SCMP_ACT_ALLOW or SCMP_ACT_ERRNO")?,
        "defaultAction",
        default_errno,
    )?;
    let mut filter = SeccompFilter::new(default);
    let rules = match top.get("syscalls") {
        None => return Ok(filter),
        Some(Value::Array(rules)) => rules,
        Some(_) => return Err("syscalls must be an array of rules".into()),
    };
    let engine = match form {
        Form::File { kept } => Some(Engine::here(kept)?),
        Form::Oci => None,
    };
    for (index, rule) in rules.iter().enumerate() {
        let field = |name: &str| format!("syscalls[{index}].{name}");
        let rule = rule
            .as_object()
            .ok_or_else(|| format!("syscalls[{index}] must be an object"))?;
        check_fields(rule, &format!("syscalls[{index}]"), rule_fields)?;
        if let Some(engine) = &engine {
            if !engine.applies(rule, index)? {
                continue;
            }
        }
        let errno_ret = errno_of(rule, "errnoRet", "errno")
            .map_err(|why| format!("syscalls[{index}].{why}"))?
            .unwrap_or(default_errno);
        let rule_action = action(
            rule.get("action")
                .ok_or_else(|| format!("{} is missing", field("action")))?,
            &field("action"),
            errno_ret,
        )?;
        let conditions = match rule.get("args") {
            None => Vec::new(),
            Some(Value::Array(args)) => {
                let mut conditions = Vec::new();
                for (position, arg) in args.iter().enumerate() {
                    let field = field(&format!("args[{position}]"));
                    conditions.push(condition(arg, &field)?);
                }
                conditions
            }
            Some(_) => {
                return Err(format!(
                    "{} must be an array of argument tests",
                    field("args")
                ));
            }
        };
        let names = rule
            .get("names")
            .and_then(Value::as_array)
            .filter(|names| !names.is_empty())
            .ok_or_else(|| format!("{} must be a non-empty array of names", field("names")))?;
        for (position, name) in names.iter().enumerate() {
            // Only for an error: a profile such as podman's names 400 calls.
            let at = || format!("syscalls[{index}].names[{position}]");
            let name = name
                .as_str()
                .ok_or_else(|| format!("{} must be a string", at()))?;
            let Some(number) = SeccompFilter::syscall_number(name) else {
                if OTHER_ARCHITECTURES_ONLY.contains(&name) || matches!(form, Form::Oci) {
                    continue;
                }
                return Err(format!(
                    "{}: {name:?} is not a system call this build knows",
                    at()
                ));
            };
            filter.rule_if_all(number, &conditions, rule_action);
        }
    }
    Ok(filter)
}

const EPERM_NUMBER: u16 = libc::EPERM as u16;

/// What Docker's engine judges a rule's `includes` and `excludes` by: the command's
/// capabilities, this machine's architecture (as Go names it) and the running kernel.
struct Engine {
    kept: CapabilitySet,
    architecture: &'static str,
    kernel: Vec<u64>,
}

impl Engine {
    fn here(kept: CapabilitySet) -> Result<Engine, String> {
        let uname = nix::sys::utsname::uname()
            .map_err(|errno| format!("uname, for the kernel's version: {}", errno.desc()))?;
        let release = uname.release().to_string_lossy().into_owned();
        Ok(Engine {
            kept,
            architecture: go_architecture(),
            kernel: version_numbers(&release)
                .ok_or_else(|| format!("the kernel's release {release:?} has no version"))?,
        })
    }

    /// Whether the rule at `index` applies here (see [`from_file`]).
    fn applies(&self, rule: &serde_json::Map<String, Value>, index: usize) -> Result<bool, String> {
        for (key, including) in [("includes", true), ("excludes", false)] {
            let Some(value) = rule.get(key) else {
                continue;
            };
            let field = format!("syscalls[{index}].{key}");
            let judged = value
                .as_object()
                .ok_or_else(|| format!("{field} must be an object"))?;
            check_fields(judged, &field, &["caps", "arches", "minKernel"])?;
            let mut matches = Vec::new();
            if let Some(caps) = judged.get("caps") {
                let caps = strings(caps, &format!("{field}.caps"))?;
                let mut kept = Vec::with_capacity(caps.len());
                for name in caps {
                    let capability: Capability = name.parse().map_err(|_| {
                        format!("{field}.caps: {name:?} is not a capability (CAP_SYS_ADMIN, say)")
                    })?;
                    kept.push(self.kept.contains(capability));
                }
                if !kept.is_empty() {
                    // Every one for an include, any one for an exclude.
                    matches.push(if including {
                        kept.iter().all(|&kept| kept)
                    } else {
                        kept.iter().any(|&kept| kept)
                    });
                }
            }
            if let Some(arches) = judged.get("arches") {
                let arches = strings(arches, &format!("{field}.arches"))?;
                if !arches.is_empty() {
                    matches.push(arches.contains(&self.architecture));
                }
            }
            if let Some(min) = judged.get("minKernel") {
                let min = min.as_str().and_then(version_numbers).ok_or_else(|| {
                    format!("{field}.minKernel must be a version, such as \"5.8\"")
                })?;
                matches.push(self.kernel >= min);
            }
            if including && matches.contains(&false) || !including && matches.contains(&true) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The strings of a JSON array; `Err` names `field`.
fn strings<'a>(value: &'a Value, field: &str) -> Result<Vec<&'a str>, String> {
    value
        .as_array()
        .and_then(|values| values.iter().map(Value::as_str).collect())
        .ok_or_else(|| format!("{field} must be an array of strings"))
}

/// The numbers a version starts with, as `minKernel` and a kernel's release give them:
/// `6.18.44-fc` is 6, 18, 44.
fn version_numbers(text: &str) -> Option<Vec<u64>> {
    let numbers: Vec<u64> = text
        .split(|c: char| !c.is_ascii_digit())
        .take_while(|part| !part.is_empty())
        .map(|part| part.parse().ok())
        .collect::<Option<_>>()?;
    (!numbers.is_empty()).then_some(numbers)
}

/// This build's architecture as Docker's profiles name it in `arches` (Go's names).
fn go_architecture() -> &'static str {
    this_architecture().map_or(std::env::consts::ARCH, |(_, _, go)| go)
}

/// The architectures an `archMap` names, its entries' and their sub-architectures.
fn arch_map(map: &Value) -> Result<Vec<&str>, String> {
    let entries = map
        .as_array()
        .ok_or("archMap must be an array of {architecture, subArchitectures}")?;
    let mut listed = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let field = format!("archMap[{index}]");
        let entry = entry
            .as_object()
            .ok_or_else(|| format!("{field} must be an object"))?;
        check_fields(entry, &field, &["architecture", "subArchitectures"])?;
        if let Some(architecture) = entry.get("architecture") {
            listed.push(
                architecture
                    .as_str()
                    .ok_or_else(|| format!("{field}.architecture must be a string"))?,
            );
        }
        if let Some(subs) = entry.get("subArchitectures") {
            listed.extend(strings(subs, &format!("{field}.subArchitectures"))?);
        }
    }
    Ok(listed)
}

/// Refuses a non-empty list of architectures, `field`, without this machine's.
fn lists_this_machine(listed: &[&str], field: &str) -> Result<(), String> {
    let native = native_architecture();
    if listed.is_empty() || listed.contains(&native) {
        Ok(())
    } else {
        Err(format!(
            "{field} does not list {native}, this machine's: the filter would judge no call \
             here; add it"
        ))
    }
}

/// The errno `object` gives as a number in `number_field` or a name in `name_field`
/// (Docker's profiles give both, which must agree); `None` when neither is there.
fn errno_of(
    object: &serde_json::Map<String, Value>,
    number_field: &str,
    name_field: &str,
) -> Result<Option<u16>, String> {
    let number = object
        .get(number_field)
        .map(|value| errno(value, number_field))
        .transpose()?;
    let Some(name) = object.get(name_field) else {
        return Ok(number);
    };
    let named = name.as_str().and_then(errno_named).ok_or_else(|| {
        format!("{name_field} is {name}; give an errno's name, such as \"EPERM\"")
    })?;
    match number {
        Some(number) if number != named => Err(format!(
            "{name_field} {name} is {named}, but {number_field} is {number}: give one, or both \
             alike"
        )),
        _ => Ok(Some(named)),
    }
}

/// The number of the errno called `name` (`EPERM`: 1).
fn errno_named(name: &str) -> Option<u16> {
    // The other names of three errnos, which `Errno`'s own names leave out.
    let name = match name {
        "EWOULDBLOCK" => "EAGAIN",
        "EDEADLOCK" => "EDEADLK",
        "ENOTSUP" => "EOPNOTSUPP",
        name => name,
    };
    (1..4096u16).find(|&number| {
        let errno = nix::errno::Errno::from_raw(i32::from(number));
        errno != nix::errno::Errno::UnknownErrno && format!("{errno:?}") == name
    })
}

/// Names of calls other architectures have, which Docker's profiles list: skipped when
/// this one has no such call, not refused.
const OTHER_ARCHITECTURES_ONLY: &[&str] = &[
    "_llseek",
    "_newselect",
    "arch_prctl",
    "arm_fadvise64_64",
    "arm_sync_file_range",
    "breakpoint",
    "cacheflush",
    "chown32",
    "fadvise64_64",
    "fchown32",
    "fcntl64",
    "fstat64",
    "fstatat64",
    "fstatfs64",
    "ftruncate64",
    "getegid32",
    "geteuid32",
    "getgid32",
    "getgroups32",
    "getresgid32",
    "getresuid32",
    "getuid32",
    "ioperm",
    "iopl",
    "ipc",
    "lchown32",
    "lstat64",
    "mmap2",
    "modify_ldt",
    "recv",
    "send",
    "sendfile64",
    "set_tls",
    "setfsgid32",
    "setfsuid32",
    "setgid32",
    "setgroups32",
    "setregid32",
    "setresgid32",
    "setresuid32",
    "setreuid32",
    "setuid32",
    "sigaction",
    "signal",
    "sigpending",
    "sigprocmask",
    "sigreturn",
    "sigsuspend",
    "socketcall",
    "stat64",
    "statfs64",
    "stime",
    "sync_file_range2",
    "time",
    "truncate64",
    "ugetrlimit",
    "umount",
    "vm86",
    "vm86old",
    "waitpid",
    "alarm",
    "clock_gettime64",
    "clock_settime64",
    "futex_time64",
    "riscv_flush_icache",
    "s390_pci_mmio_read",
    "s390_pci_mmio_write",
    "s390_runtime_instr",
    "spu_create",
    "spu_run",
    "subpage_prot",
    "sys_debug_setcontext",
    "utimensat_time64",
    // Of other architectures too, in podman's default profile (containers-common):
    "bdflush",
    "clock_adjtime64",
    "clock_getres_time64",
    "clock_nanosleep_time64",
    "mq_timedreceive_time64",
    "mq_timedsend_time64",
    "nice",
    "oldfstat",
    "oldlstat",
    "oldolduname",
    "oldstat",
    "olduname",
    "pciconfig_iobase",
    "pciconfig_read",
    "pciconfig_write",
    "ppoll_time64",
    "pselect6_time64",
    "readdir",
    "recvmmsg_time64",
    "rt_sigtimedwait_time64",
    "sched_rr_get_interval_time64",
    "semtimedop_time64",
    "sgetmask",
    "ssetmask",
    "swapcontext",
    "syscall",
    "timer_gettime64",
    "timer_settime64",
    "timerfd",
    "timerfd_gettime64",
    "timerfd_settime64",
    // x86_64's own, for a build on aarch64:
    "access",
    "chmod",
    "chown",
    "creat",
    "dup2",
    "epoll_create",
    "epoll_ctl_old",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "fork",
    "futimesat",
    "get_thread_area",
    "getdents",
    "getpgrp",
    "getrlimit",
    "inotify_init",
    "io_pgetevents",
    "lchown",
    "link",
    "lstat",
    "mkdir",
    "mknod",
    "open",
    "pause",
    "pipe",
    "poll",
    "query_module",
    "readlink",
    "rename",
    "renameat",
    "rmdir",
    "select",
    "set_thread_area",
    "setrlimit",
    "signalfd",
    "stat",
    "symlink",
    "sync_file_range",
    "sysfs",
    "unlink",
    "uselib",
    "ustat",
    "utime",
    "utimes",
    "vfork",
];

/// Refuses any field of `object` not in `known`: a field we would leave out (`includes`,
/// say) could mean a rule applies only sometimes, and applying it always, or never, is not
/// what the profile says.
fn check_fields(
    object: &serde_json::Map<String, Value>,
    what: &str,
    known: &[&str],
) -> Result<(), String> {
    match object.keys().find(|key| !known.contains(&key.as_str())) {
        None => Ok(()),
        Some(key) => Err(format!(
            "{what} has the field {key:?}, which ns-process does not support; it reads {}",
            known.join(", ")
        )),
    }
}

fn errno(value: &Value, field: &str) -> Result<u16, String> {
    value
        .as_u64()
        .filter(|errno| (1..=4095).contains(errno))
        .map(|errno| errno as u16)
        .ok_or_else(|| format!("{field} must be an errno from 1 to 4095, not {value}"))
}

fn action(value: &Value, field: &str, errno: u16) -> Result<SeccompAction, String> {
    Ok(match value.as_str() {
        Some("SCMP_ACT_ALLOW") => SeccompAction::Allow,
        Some("SCMP_ACT_ERRNO") => SeccompAction::Errno(errno),
        Some("SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD") => SeccompAction::KillThread,
        Some("SCMP_ACT_KILL_PROCESS") => SeccompAction::KillProcess,
        Some("SCMP_ACT_TRAP") => SeccompAction::Trap,
        Some("SCMP_ACT_LOG") => SeccompAction::Log,
        _ => {
            return Err(format!(
                "{field} is {value}; give one of SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, \
                 SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_TRAP, SCMP_ACT_LOG"
            ));
        }
    })
}

fn condition(value: &Value, field: &str) -> Result<ArgCondition, String> {
    let test = value
        .as_object()
        .ok_or_else(|| format!("{field} must be an object"))?;
    check_fields(test, field, &["index", "value", "valueTwo", "op"])?;
    let number = |name: &str| {
        test.get(name)
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("{field}.{name} must be a number"))
    };
    let index = number("index")?;
    if index > 5 {
        return Err(format!("{field}.index is {index}; arguments are 0 to 5"));
    }
    let index = index as u8;
    let compare: fn(u8, u64) -> ArgCondition = match test.get("op").and_then(Value::as_str) {
        Some("SCMP_CMP_MASKED_EQ") => {
            return Ok(ArgCondition::masked_equal(
                index,
                number("value")?,
                number("valueTwo")?,
            ));
        }
        Some("SCMP_CMP_EQ") => ArgCondition::equal,
        Some("SCMP_CMP_NE") => ArgCondition::not_equal,
        Some("SCMP_CMP_LT") => ArgCondition::less,
        Some("SCMP_CMP_LE") => ArgCondition::less_or_equal,
        Some("SCMP_CMP_GT") => ArgCondition::greater,
        Some("SCMP_CMP_GE") => ArgCondition::greater_or_equal,
        _ => {
            return Err(format!(
                "{field}.op must be one of {}",
                OPERATORS.join(", ")
            ));
        }
    };
    Ok(compare(index, number("value")?))
}

/// Bytes of one instruction as handed to the init: `code`, `jt`, `jf`, `k`.
const INSTRUCTION_BYTES: usize = 8;

/// The compiled `program` in a new memfd, for the init (#14): ns-process compiles the
/// filter once, and the init gets the very instructions it checked, without reading a
/// profile file again or compiling anything. A memfd, not a pipe: a program of 4,096
/// instructions is 32 KiB, more than a pipe holds where the caller's pipe buffers are
/// capped (`pipe-user-pages-soft`), and nothing reads it before the init starts.
pub(crate) fn handed(program: &SeccompProgram) -> Result<std::os::fd::OwnedFd, String> {
    use std::io::{Seek, Write};
    let fail =
        |call: &str, why: String| format!("handing the seccomp filter to the init: {call}: {why}");
    let fd = nix::sys::memfd::memfd_create(
        c"ns-process-seccomp",
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
    )
    .map_err(|errno| fail("memfd_create", errno.desc().into()))?;
    let mut bytes = Vec::with_capacity(program.instructions().len() * INSTRUCTION_BYTES);
    for instruction in program.instructions() {
        bytes.extend_from_slice(&instruction.code.to_ne_bytes());
        bytes.extend_from_slice(&[instruction.jt, instruction.jf]);
        bytes.extend_from_slice(&instruction.k.to_ne_bytes());
    }
    let mut file = std::fs::File::from(fd);
    file.write_all(&bytes)
        .and_then(|()| file.rewind())
        .map_err(|error| fail("write", error.to_string()))?;
    Ok(file.into())
}

/// The program ns-process compiled and [`handed`] to the init in `fd`.
pub(crate) fn received(fd: std::os::fd::OwnedFd) -> Result<SeccompProgram, String> {
    use std::io::Read;
    let fail = |why: String| format!("init: reading the seccomp filter ns-process compiled: {why}");
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .read_to_end(&mut bytes)
        .map_err(|error| fail(error.to_string()))?;
    if bytes.len() % INSTRUCTION_BYTES != 0 {
        return Err(fail(format!(
            "{} bytes are no whole instructions",
            bytes.len()
        )));
    }
    let instructions = bytes
        .chunks_exact(INSTRUCTION_BYTES)
        .map(|chunk| libc::sock_filter {
            code: u16::from_ne_bytes([chunk[0], chunk[1]]),
            jt: chunk[2],
            jf: chunk[3],
            k: u32::from_ne_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]),
        })
        .collect();
    SeccompProgram::from_instructions(instructions).map_err(|error| fail(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SeccompFilter, String> {
        let kept = crate::capabilities::for_command(false, &[], &[]);
        parse_profile(&serde_json::from_str(text).unwrap(), Form::File { kept })
    }

    #[test]
    fn a_docker_style_profile_parses() {
        let filter = parse(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [
                  {"names": ["read", "write", "_llseek"], "action": "SCMP_ACT_ALLOW"},
                  {"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                   "args": [{"index": 0, "value": 268435456, "valueTwo": 268435456,
                             "op": "SCMP_CMP_MASKED_EQ"}]}
                ]}"#,
        )
        .unwrap();
        assert!(filter.compile().is_ok());
    }

    #[test]
    fn bad_profiles_name_the_field() {
        for (text, expected) in [
            (r#"[]"#, "JSON object"),
            (r#"{"syscalls": []}"#, "defaultAction is missing"),
            (
                r#"{"defaultAction": "ALLOW"}"#,
                "defaultAction is \"ALLOW\"",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "includes": {}}"#,
                "\"includes\"",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["keyctll"], "action": "SCMP_ACT_ERRNO"}]}"#,
                "syscalls[0].names[0]: \"keyctll\"",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 0}]}"#,
                "syscalls[0].errnoRet",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]}"#,
                "syscalls[0].args[0].op",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}]}"#,
                "syscalls[0].names must be",
            ),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn docker_profiles_name_what_is_wrong_in_their_engine_fields() {
        for (text, expected) in [
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "archMap": [{"architecture": "SCMP_ARCH_MIPS"}]}"#,
                "archMap does not list",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_MIPS"]}"#,
                "architectures does not list",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errno": "EWHAT"}]}"#,
                "syscalls[0].errno is \"EWHAT\"",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_FLY"]}}]}"#,
                "syscalls[0].includes.caps: \"CAP_FLY\" is not a capability",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "excludes": {"minKernel": "new"}}]}"#,
                "syscalls[0].excludes.minKernel must be a version",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "excludes": {"arches": "amd64"}}]}"#,
                "syscalls[0].excludes.arches must be an array of strings",
            ),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
        // config.json's profile is resolved by its client: what only an engine reads is
        // refused there.
        let error = program_from_json(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {}}]}"#,
            "linux.seccomp",
        )
        .unwrap_err();
        assert!(error.contains("\"includes\""), "{error}");
    }

    #[test]
    fn errno_names_and_versions_read_as_docker_writes_them() {
        assert_eq!(errno_named("EPERM"), Some(1));
        assert_eq!(errno_named("ENOSYS"), Some(38));
        assert_eq!(errno_named("EWOULDBLOCK"), errno_named("EAGAIN"));
        assert_eq!(errno_named("ENOTSUP"), Some(libc::ENOTSUP as u16));
        assert_eq!(errno_named("EPERMX"), None);
        assert_eq!(errno_named("eperm"), None);
        assert_eq!(version_numbers("6.18.44-fc-v595"), Some(vec![6, 18, 44]));
        assert_eq!(version_numbers("4.8"), Some(vec![4, 8]));
        assert_eq!(version_numbers("v4"), None);
        assert!(version_numbers("5.10").unwrap() > version_numbers("5.9.100").unwrap());
    }

    #[test]
    fn the_default_profile_gives_a_family_back_with_its_capability() {
        use crate::capabilities::{CapArg, for_command};

        let default = for_command(false, &[], &[]);
        let with_admin = for_command(false, &[CapArg::One(Capability::SysAdmin)], &[]);
        let strict = default_profile(default).compile().unwrap();
        let relaxed = default_profile(with_admin).compile().unwrap();
        // Each mount call is one rule of two instructions.
        assert!(strict.instructions().len() > relaxed.instructions().len());
        assert!(
            strict.instructions().len() < 512,
            "short enough to run on every call"
        );
    }

    #[test]
    fn the_init_receives_the_very_program_ns_process_compiled() {
        let kept = crate::capabilities::for_command(false, &[], &[]);
        let program = default_profile(kept).compile().unwrap();
        let got = received(handed(&program).unwrap()).unwrap();
        let bytes = |program: &SeccompProgram| {
            program
                .instructions()
                .iter()
                .map(|i| (i.code, i.jt, i.jf, i.k))
                .collect::<Vec<_>>()
        };
        assert_eq!(bytes(&got), bytes(&program));

        // Anything but whole instructions is refused, naming what is wrong.
        let fd =
            nix::sys::memfd::memfd_create(c"odd", nix::sys::memfd::MFdFlags::MFD_CLOEXEC).unwrap();
        nix::unistd::write(&fd, &[0; 9]).unwrap();
        nix::unistd::lseek(&fd, 0, nix::unistd::Whence::SeekSet).unwrap();
        let error = received(fd).unwrap_err();
        assert!(
            error.contains("9 bytes are no whole instructions"),
            "{error}"
        );
    }
}
