//! `nsInitialisation`: what runs inside the new namespaces, as their PID 1.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::process::ExitCode;

use clap::Parser;
use nix::unistd::Pid;

use crate::cli::{self, Options};
use crate::sys::spawn::CommandStart;
use crate::user::{self, Id, IdMap};
use crate::{EXIT_OWN_FAILURE, namespaces, setup, signals, started, terminal};

/// The entry's name, as in the Go series.
pub(crate) const ENTRY: &str = "nsInitialisation";

const SHELL: &str = "/bin/sh";
const PROMPT: &str = "-[ns-process]- # ";
/// What the command finds programs with: the environment starts clean.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const EXIT_CANNOT_EXECUTE: u8 = 126;
const EXIT_NOT_FOUND: u8 = 127;

/// The init re-executed: when ns-process had more than one thread at its start, or was
/// asked to re-execute it (`NS_PROCESS_INIT=exec`).
#[reexec::entry("nsInitialisation")]
fn ns_initialisation() -> ExitCode {
    // The parent parsed and checked these very arguments, and added its internal ones.
    let options = match Options::try_parse() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("ns-process: init: {error}");
            return ExitCode::from(EXIT_OWN_FAILURE);
        }
    };
    // They hold the caller's whole command line (host paths, `--env` values), which
    // every process of the container could read as /proc/1/cmdline: parsed, they go.
    // It refuses only with a second thread or an argv a C library rewrote, neither of
    // which the init has; a copy of ns-process shows its entry's name from its start.
    let _ = reexec::hide_arguments();
    // Before anything else: an init started by hand, outside namespaces ns-process made,
    // would set up the caller's own.
    if let Err(error) = namespaces::check_made_for(&options) {
        eprintln!("ns-process: {error}");
        return ExitCode::from(EXIT_OWN_FAILURE);
    }
    main(options)
}

/// The init as a copy of ns-process (`reexec::Command::without_exec`): on the options
/// ns-process parsed, with its internal settings set (`cli::InitSetting`), which a
/// re-executed init parses from its arguments. No one can start a copy by hand: ns-process
/// cloned it into the namespaces it made, so it has no need to check where it runs.
pub(crate) fn in_copy(options: Options) -> ExitCode {
    main(options)
}

/// The init, either way it started.
fn main(options: Options) -> ExitCode {
    // Non-dumpable: the command, even as root inside, can't read the init's memory or
    // environment through /proc/1 nor trace it, having no CAP_SYS_PTRACE.
    if let Err(errno) = nix::sys::prctl::set_dumpable(false) {
        eprintln!(
            "ns-process: init: prctl(PR_SET_DUMPABLE, 0): {}",
            errno.desc()
        );
        return ExitCode::from(EXIT_OWN_FAILURE);
    }
    // Out of the caller's session before the setup, and long before the command: see
    // terminal.rs.
    if let Err(error) = terminal::leave_callers_session() {
        eprintln!("ns-process: init: {error}");
        return ExitCode::from(EXIT_OWN_FAILURE);
    }
    // Blocked before the setup, which can take a while: a PID 1 drops every signal it
    // neither handles nor blocks, so one forwarded meanwhile would be lost; blocked, it
    // waits for the command.
    let blocked = match signals::Blocked::now() {
        Ok(blocked) => blocked,
        Err(errno) => {
            eprintln!("ns-process: blocking signals in the init: {}", errno.desc());
            return ExitCode::from(EXIT_OWN_FAILURE);
        }
    };
    // Before setup, so that nothing the init starts inherits the parent's pipe.
    let started = started::Report::take(options.internal_started_fd);
    // The command's seccomp filter as ns-process compiled it (#14), taken as the report is.
    let seccomp_fd = options
        .internal_seccomp_fd
        .and_then(crate::sys::claim_handed_fd);
    // ns-runtime (#16): its ready socket and start FIFO, taken before the setup as the
    // report is; an init of ns-process has neither.
    let waiting = match crate::runtime::created::Waiting::take(&options) {
        Ok(waiting) => waiting,
        Err(error) => {
            eprintln!("ns-runtime: {error}");
            return ExitCode::from(EXIT_OWN_FAILURE);
        }
    };
    // ns-runtime's containers (OCI hooks, cg16): the config is read now, while the
    // bundle is still in reach, for the createContainer and startContainer hooks.
    if let Err(error) = crate::runtime::hooks::prepare_in_init(
        options.internal_runtime_bundle.as_deref(),
        options.internal_runtime_id.as_deref(),
    ) {
        eprintln!("ns-runtime: {error}");
        return ExitCode::from(EXIT_OWN_FAILURE);
    }
    // Before the pivot: the rootfs may have no /proc (--share pid), and refused now,
    // nothing is mounted for nothing.
    let maps = match check_user_is_mapped(&options) {
        Ok(maps) => maps,
        Err(error) => {
            eprintln!("ns-process: {error}");
            return ExitCode::from(EXIT_OWN_FAILURE);
        }
    };
    // Before the setup, which the filter must not bind.
    let seccomp = match command_seccomp(&options, seccomp_fd) {
        Ok(seccomp) => seccomp,
        Err(error) => {
            eprintln!("ns-process: {error}");
            return ExitCode::from(EXIT_OWN_FAILURE);
        }
    };
    // What a bundle's config.json asks of the init (#16), before the setup: the proc
    // reached here is the one the init started with.
    if let Err(error) = oci_process_settings(&options) {
        eprintln!("ns-process: {error}");
        return ExitCode::from(EXIT_OWN_FAILURE);
    }
    let made = setup::MadeInRootfs::default();
    let code = match setup::prepare(&options, &made) {
        Err(error) => {
            eprintln!("ns-process: {error}");
            EXIT_OWN_FAILURE
        }
        Ok(()) => match User::inside(&options, maps.as_ref()) {
            Err(error) => {
                eprintln!("ns-process: {error}");
                EXIT_OWN_FAILURE
            }
            // A container's pty is sent over its console socket before it says it is
            // set up (conmon expects the master before `create` returns), then it waits
            // for `start` here, before its command runs.
            Ok(user) => match console_for_command(&options).and_then(|console| {
                waiting
                    .until_started(&blocked)
                    .and_then(|()| run(&options, &user, console, seccomp, &blocked, started))
            }) {
                Ok(code) | Err(code) => code,
            },
        },
    };
    // The rootfs as it was found: what was made in it to mount on goes.
    made.remove(options.verbose);
    ExitCode::from(code)
}

/// The filter the command runs under, if any — the program ns-process compiled and
/// handed over in `fd` — refused when this kernel can't install it. A command that should
/// have a filter and was handed none is refused: it never runs unconfined by mistake.
fn command_seccomp(
    options: &Options,
    fd: Option<std::os::fd::OwnedFd>,
) -> Result<Option<reexec::SeccompProgram>, String> {
    let program = match (fd, options.wants_seccomp()) {
        (Some(fd), true) => crate::seccomp::received(fd)?,
        (None, true) if let Some(program) = options.compiled_seccomp_program() => program,
        (None, false) => return Ok(None),
        (Some(_), false) | (None, true) => {
            return Err(
                "init: ns-process handed over a seccomp filter where the options ask for none, \
                 or none where they ask for one"
                    .into(),
            );
        }
    };
    crate::sys::seccomp_filters_available().map_err(|error| {
        format!(
            "--seccomp: this kernel can't install the filter ({error}): it needs seccomp \
             filters (CONFIG_SECCOMP_FILTER) of Linux 4.14 or later; run with --seccomp \
             unconfined to go without"
        )
    })?;
    if options.verbose {
        eprintln!(
            "ns-process: the command runs under a seccomp filter of {} instructions",
            program.instructions().len()
        );
    }
    Ok(Some(program))
}

/// The id maps of this user namespace, read before the setup (after the pivot the
/// rootfs may have no `/proc`), to check `--user`'s ids against.
struct Maps {
    uids: IdMap,
    gids: IdMap,
}

/// With `--user`, reads the maps and refuses a numeric uid or gid the user namespace
/// does not map; names are looked up (and their ids checked) after the pivot.
fn check_user_is_mapped(options: &Options) -> Result<Option<Maps>, String> {
    let Some(arg) = &options.user else {
        return Ok(None);
    };
    let maps = Maps {
        uids: IdMap::of_this_namespace("uid")?,
        gids: IdMap::of_this_namespace("gid")?,
    };
    let given_as = format!("--user {}", arg.text);
    if let Id::Number(uid) = arg.user {
        maps.uids.check(uid, &given_as)?;
    }
    if let Some(Id::Number(gid)) = arg.group {
        maps.gids.check(gid, &given_as)?;
    }
    Ok(Some(maps))
}

/// Who the command runs as, and what its environment says of it.
struct User {
    /// `--user`'s uid and gid (the gid resolved); `None` runs it as the init's root.
    ids: Option<(u32, u32)>,
    environment: Vec<(&'static str, std::ffi::OsString)>,
}

impl User {
    /// Looks the command's user up in `/etc/passwd` (and a group name in `/etc/group`)
    /// as seen from here: after the pivot, the rootfs's own. A file that can't be read is
    /// warned about, and the defaults used, unless a name had to be found in it.
    fn inside(options: &Options, maps: Option<&Maps>) -> Result<User, String> {
        let (Some(arg), Some(maps)) = (&options.user, maps) else {
            return Ok(User {
                ids: None,
                environment: user::environment(0, passwd_entry_or_warn(0).as_ref()),
            });
        };
        let given_as = format!("--user {}", arg.text);
        let (uid, entry) = match &arg.user {
            Id::Number(uid) => (*uid, passwd_entry_or_warn(*uid)),
            Id::Name(name) => {
                let entry = found(
                    user::passwd_entry_named(name),
                    &given_as,
                    "user",
                    name,
                    user::PASSWD,
                    options,
                )?;
                maps.uids.check(
                    entry.uid,
                    &format!("{given_as} (uid {} in {})", entry.uid, user::PASSWD),
                )?;
                (entry.uid, Some(entry))
            }
        };
        let gid = match (&arg.group, &entry) {
            (Some(Id::Number(gid)), _) => *gid,
            (Some(Id::Name(name)), _) => {
                let gid = found(
                    user::group_named(name),
                    &given_as,
                    "group",
                    name,
                    user::GROUP,
                    options,
                )?;
                maps.gids
                    .check(gid, &format!("{given_as} (gid {gid} in {})", user::GROUP))?;
                gid
            }
            (None, Some(entry)) => {
                maps.gids.check(
                    entry.gid,
                    &format!("{given_as} (its group in {})", user::PASSWD),
                )?;
                entry.gid
            }
            (None, None) => 0,
        };
        Ok(User {
            ids: Some((uid, gid)),
            environment: user::environment(uid, entry.as_ref()),
        })
    }
}

/// The passwd entry of `uid`, or none with a warning where the file can't be read: the
/// command then runs with the defaults.
fn passwd_entry_or_warn(uid: u32) -> Option<user::Entry> {
    user::passwd_entry(uid).unwrap_or_else(|why| {
        eprintln!("ns-process: warning: {why}; HOME, USER and SHELL take their defaults");
        None
    })
}

/// What a lookup of `--user`'s `name` (a `kind`, user or group) in `file` found; a name
/// that is missing, or a file that can't be read, is refused, naming the file the
/// command sees (the rootfs's own under `--rootfs`).
fn found<T>(
    lookup: Result<Option<T>, String>,
    given_as: &str,
    kind: &str,
    name: &str,
    file: &str,
    options: &Options,
) -> Result<T, String> {
    let file = match &options.rootfs {
        Some(rootfs) => format!("{file} of the rootfs {}", rootfs.display()),
        None => file.to_owned(),
    };
    match lookup {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(format!(
            "{given_as}: no {kind} {name:?} in {file}; give a {kind} that file has, or a \
             numeric id"
        )),
        Err(why) => Err(format!(
            "{given_as}: the {kind} {name:?} could not be looked up in {file}: {why}"
        )),
    }
}

/// The message and status for a `--workdir` the command can't start in: 126, as a
/// command that can't be executed.
fn cannot_enter(workdir: &std::path::Path, why: &str) -> u8 {
    eprintln!(
        "ns-process: --workdir {}: {why}; give a directory that exists inside",
        workdir.display()
    );
    EXIT_CANNOT_EXECUTE
}

/// The console socket (#16): the command's pty, made from the container's devpts, its
/// master sent; the slave is returned, for the command.
fn console_for_command(options: &Options) -> Result<Option<std::os::fd::OwnedFd>, u8> {
    let Some(fd) = options.internal_console_fd else {
        return Ok(None);
    };
    crate::runtime::console::for_command(fd, options.internal_console_size)
        .map(Some)
        .map_err(|error| {
            eprintln!("ns-process: {error}");
            EXIT_OWN_FAILURE
        })
}

/// Starts the command and stays its PID 1 until it ends.
fn run(
    options: &Options,
    user: &User,
    console: Option<std::os::fd::OwnedFd>,
    seccomp: Option<reexec::SeccompProgram>,
    blocked: &signals::Blocked,
    started: started::Report,
) -> Result<u8, u8> {
    let (program, args) = match options.command.split_first() {
        Some((program, args)) => (program.clone(), args),
        None => (SHELL.into(), &[][..]),
    };
    // As std's Command would have it: set in this order, a later value of a key replacing
    // an earlier one, and passed sorted.
    let mut env: BTreeMap<OsString, OsString> = BTreeMap::new();
    env.insert("PATH".into(), DEFAULT_PATH.into());
    env.extend(
        user.environment
            .iter()
            .map(|(key, value)| (OsString::from(key), value.clone())),
    );
    env.insert("PS1".into(), PROMPT.into());
    if let Some(term) = std::env::var_os("TERM") {
        env.insert("TERM".into(), term);
    }
    // Last: what the caller sets replaces what passwd said.
    let given = options
        .env
        .iter()
        .map(|(key, value)| (OsString::from(key), OsString::from(value)));
    // ns-runtime (#16): the OCI spec's process.env and nothing else.
    if options.internal_exact_env {
        env.clear();
    }
    env.extend(given);
    let not_started = |error: io::Error| {
        let (code, why) = match error.kind() {
            io::ErrorKind::NotFound => (EXIT_NOT_FOUND, "not found"),
            io::ErrorKind::PermissionDenied => (EXIT_CANNOT_EXECUTE, "not executable"),
            _ => (EXIT_CANNOT_EXECUTE, "could not be started"),
        };
        eprintln!("ns-process: {}: {why}: {error}", program.to_string_lossy());
        code
    };
    let mut command = CommandStart::new(&program, args, &env).map_err(not_started)?;
    if let Some(mask) = options.umask {
        // Inherited by the command through clone and exec.
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    if let Some(workdir) = &options.workdir {
        // Checked here: a chdir failing in the child would read as "not found".
        match std::fs::metadata(workdir) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => return Err(cannot_enter(workdir, "not a directory")),
            Err(error) => return Err(cannot_enter(workdir, &error.to_string())),
        }
        command.current_dir(workdir).map_err(not_started)?;
    }
    // The console socket's pty (#16) is the command's stdio and controlling terminal.
    command.take_terminal(options.internal_take_terminal || console.is_some());
    if let Some(slave) = console {
        command.stdio(slave);
    }
    let capabilities = options.capabilities();
    if options.verbose {
        eprintln!(
            "ns-process: the command keeps the capabilities {}",
            crate::capabilities::names(capabilities)
        );
    }
    // --group-add (#16) needs the switch of ids, even to root's.
    let ids = match user.ids {
        None if !options.group_add.is_empty() => Some((0, 0)),
        ids => ids,
    };
    command.identity(
        crate::capabilities::at_exec(capabilities),
        ids,
        options.group_add.clone(),
    );
    // After the capabilities and the user: the filter may refuse their calls.
    if let Some(program) = seccomp {
        command.seccomp(program);
    }
    if options.verbose {
        match user.ids {
            Some((uid, gid)) => eprintln!(
                "ns-process: running {} as uid {uid} gid {gid}",
                program.to_string_lossy()
            ),
            None => eprintln!("ns-process: running {}", program.to_string_lossy()),
        }
    }
    // Only the descriptors --preserve-fds names reach the command, whatever the init
    // itself opened.
    let first_closed = cli::preserved_fds(options.preserve_fds).end;
    crate::sys::close_on_exec_from(first_closed).map_err(|error| {
        eprintln!("ns-process: init: close_range({first_closed}, CLOSE_RANGE_CLOEXEC): {error}");
        EXIT_OWN_FAILURE
    })?;
    // ns-runtime's containers (OCI startContainer hooks, cg16): in the container, once
    // start is asked, just before the command; a failure fails the start.
    crate::runtime::hooks::run_in_init(crate::runtime::hooks::Kind::StartContainer).map_err(
        |error| {
            eprintln!("ns-runtime: {error}");
            EXIT_OWN_FAILURE
        },
    )?;
    // The command holds the pty now, the init none (#16): spawn drops its copy.
    let pid = command.spawn().map_err(not_started)?;
    started.command_started();
    // Reaped by the supervisor's waitpid(-1), never through std's Child.
    let main = Pid::from_raw(pid);
    signals::supervise_as_init(main, blocked).map_err(|errno| {
        eprintln!(
            "ns-process: init: waiting for the command: {}",
            errno.desc()
        );
        EXIT_OWN_FAILURE
    })
}

/// `--oom-score-adj`, set on the init and so inherited by the command; and the checks of
/// `--group-add` that the kernel would otherwise only fail in the command's child (#16).
fn oci_process_settings(options: &Options) -> Result<(), String> {
    if let Some(adjustment) = options.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", adjustment.to_string()).map_err(|error| {
            format!(
                "--oom-score-adj {adjustment}: writing /proc/self/oom_score_adj: {error}; \
                 lowering the score below ns-process's own needs CAP_SYS_RESOURCE on the host"
            )
        })?;
    }
    if !options.group_add.is_empty() {
        let setgroups = std::fs::read_to_string("/proc/self/setgroups").unwrap_or_default();
        if setgroups.trim() == "deny" {
            return Err(
                "--group-add: this user namespace denies setgroups(2), as the kernel does when \
                 its gid map was written without privilege for one id; have a range in \
                 /etc/subgid (used through newgidmap), or run as root"
                    .into(),
            );
        }
        let gids = IdMap::of_this_namespace("gid")?;
        for gid in &options.group_add {
            gids.check(*gid, &format!("--group-add {gid}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_that_wants_a_filter_is_refused_without_one() {
        let wants = Options::parse_from(["ns-process"]);
        let error = command_seccomp(&wants, None).unwrap_err();
        assert!(error.contains("none where they ask for one"), "{error}");
        let unconfined = Options::parse_from(["ns-process", "--seccomp", "unconfined"]);
        assert!(command_seccomp(&unconfined, None).unwrap().is_none());
    }
}
