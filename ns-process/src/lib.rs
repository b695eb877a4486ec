//! The engine behind two programs: `ns-process`, a shell or any command in new mount,
//! UTS, IPC, PID, network and user namespaces with root mapped to the caller, and
//! `ns-runtime`, an OCI runtime with runc's command line.
//!
//! Both front ends end in the same place: an `ns-process` command line, parsed into the
//! same options, started as the entry `nsInitialisation` through [`reexec::Command`],
//! which runs inside the namespaces as their PID 1, sets them up, starts the command and
//! stays its init. `ns-runtime` writes that command line from a bundle's `config.json`.
//!
//! This library exists so that the two binaries share one engine; its only public items
//! are their `main` functions.

#![deny(unsafe_code)]

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

mod bridge;
mod capabilities;
mod cli;
mod etc_files;
mod ids;
mod init;
mod kernel_paths;
mod limits;
mod mounts;
mod namespaces;
mod net;
mod netlink;
mod pty;
pub mod runtime;
mod seccomp;
mod setup;
mod signals;
mod started;
#[allow(unsafe_code)]
mod sys;
mod sysctl;
mod terminal;
mod ulimit;
mod user;

/// Exit status when ns-process itself fails, as `docker run` and `podman` use.
const EXIT_OWN_FAILURE: u8 = 125;

/// The variable and value that make ns-process re-execute its init instead of copying
/// itself into it: to compare the two, or to rule the copy out when something differs.
const INIT_BY_EXEC: (&str, &str) = ("NS_PROCESS_INIT", "exec");

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("ns-process: {message}");
    ExitCode::from(EXIT_OWN_FAILURE)
}

/// `ns-process`'s `main`: parses the command line, starts the init in new namespaces and
/// supervises it; returns the command's exit status, or 125 for ns-process's own failures.
///
/// The binary calls it inside [`reexec::main!`], which runs the init's entry first when
/// this is a re-executed child:
///
/// ```no_run
/// reexec::main! {
///     fn main() -> std::process::ExitCode {
///         ns_process::ns_process_main()
///     }
/// }
/// ```
pub fn ns_process_main() -> ExitCode {
    let options = match cli::Options::try_parse() {
        Ok(options) => options,
        Err(error) if !error.use_stderr() => {
            // --help and --version.
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(EXIT_OWN_FAILURE);
        }
    };
    if let Err(message) = options.validate() {
        return fail(message);
    }
    let init = match start_init(&options, std::env::args_os().skip(1).collect(), None) {
        Ok(init) => init,
        Err(message) => return fail(message),
    };
    let Init {
        mut child,
        pty,
        blocked,
        network,
        cgroup,
    } = init;
    // Matched in one statement: a pty still held is dropped, and the caller's terminal
    // is as it was, before any message is printed.
    let status = match pty {
        Some(pty) => pty.relay(&mut child, &blocked),
        None => signals::supervise_child(&mut child, &blocked),
    };
    // The init has ended: its pair goes, and if the command never started, whatever
    // this run added to the host for it.
    drop(network);
    if let Some(cgroup) = cgroup {
        cgroup.finish();
    }
    match status {
        Ok(code) => ExitCode::from(code),
        Err(message) => fail(message),
    }
}

/// What `ns-runtime create` adds to the start of an init it does not supervise.
pub(crate) struct Detached<'a> {
    /// The runtime's internal options for the init.
    pub(crate) init_settings: Vec<cli::InitSetting>,
    /// Descriptors the init gets, at these numbers.
    pub(crate) fds: Vec<(std::os::fd::RawFd, std::os::fd::OwnedFd)>,
    /// The container's cgroup, made by the runtime and kept past `create`.
    pub(crate) cgroup: Option<&'a reexec::Cgroup>,
    /// The container's state directory, named in the init's environment.
    pub(crate) state_dir: &'a std::path::Path,
}

/// An init just started, and what its start holds until it ends.
pub(crate) struct Init {
    pub(crate) child: reexec::Child,
    /// The pty relayed to the caller's terminal (ns-process, interactive).
    pty: Option<pty::Pty>,
    /// The signals forwarded to the init, blocked since before it started.
    pub(crate) blocked: signals::Blocked,
    /// The bridge's pair, taken back if the command never started (ns-process).
    network: Option<bridge::Network>,
    /// `--memory` and the other limits' cgroup, removed once the init ended (ns-process).
    cgroup: Option<limits::RunCgroup>,
}

/// Whether the init may be a copy of ns-process (`reexec::Command::without_exec`)
/// rather than a re-execution of it: unless asked not to, where root inside is root of
/// ns-process's own user namespace. The init is non-dumpable, and the kernel gives a
/// non-dumpable process's /proc files to root of the user namespace its memory belongs
/// to: ns-process's for a copy, the new one for a re-executed init. Were root inside
/// someone else outside, the copy could not write its own `/proc/self/oom_score_adj`,
/// nor could its unprivileged owner open its `/proc/PID/ns` (`ns-runtime exec`); no
/// execve inside changes that owner but the re-exec itself.
fn init_may_be_a_copy(id_maps: Option<&ids::IdMaps>, joins_user: bool) -> bool {
    if std::env::var_os(INIT_BY_EXEC.0).is_some_and(|value| value == INIT_BY_EXEC.1) {
        return false;
    }
    match id_maps {
        Some(maps) => maps.map_root_to_root() && !joins_user,
        None => !joins_user && nix::unistd::geteuid().is_root(),
    }
}

/// The start both front ends share: the id maps, the joined namespaces, the cgroup, the
/// pty and the spawn of `nsInitialisation` in its namespaces with `user_args` (the
/// command line `options` was parsed from, without the program's name), checked by
/// `validate()` already.
///
/// ns-process supervises the init it gets back (`detached` is `None`). `ns-runtime
/// create` gives `detached`: no pty, no bridge and no limits of ns-process's own (the
/// runtime has its own cgroup), and the init is not supervised — it tells its parent
/// when it is set up, and lives on past it once the runtime has saved its state (see
/// `runtime/state.rs`). The death signal is SIGKILL in both cases; a detached init
/// takes it off itself at that point.
pub(crate) fn start_init(
    options: &cli::Options,
    user_args: Vec<OsString>,
    detached: Option<Detached<'_>>,
) -> Result<Init, String> {
    let namespaces = options.namespaces();
    let id_maps = if namespaces.contains(reexec::Namespaces::USER) {
        Some(ids::IdMaps::choose(options)?)
    } else {
        None
    };
    let joins = options.open_joins()?;
    let joins_user = joins
        .iter()
        .any(|(kind, _)| kind.contains(reexec::Namespaces::USER));
    // The command's seccomp filter (#14): compiled once, here, before anything is
    // created (a profile file by validate() already, and kept), and handed to the init,
    // which neither reads a profile again nor compiles one: a copy has it in its copy of
    // the options, a re-executed init gets it in a memfd.
    let seccomp = options.seccomp_program()?;
    if options.verbose {
        eprintln!(
            "ns-process: starting {} in new namespaces: {namespaces}",
            init::ENTRY
        );
        if !joins.is_empty() {
            eprintln!("ns-process: joining the namespaces: {}", options.joined());
        }
    }
    let own_limits = options.memory.is_some()
        || options.memory_swap.is_some()
        || options.pids_limit.is_some()
        || options.cpus.is_some();
    if detached.is_some() && (options.net == cli::NetMode::Bridge || own_limits) {
        return Err(
            "--net bridge and the limits of ns-process's own cgroup are not for a container \
             the runtime starts: its network and cgroup come from config.json"
                .into(),
        );
    }
    // Limits (#13): the cgroup is made before the host is changed otherwise, and
    // removed once the init has ended — by the caller, or on any early return, as it
    // drops. The runs that make cgroups remove what killed ones left; a run without
    // limits leaves the hierarchies alone (reading them is a tenth of its start).
    let cgroup = if detached.is_none() && own_limits {
        limits::remove_leftovers(options.verbose);
        limits::create(options)?
    } else {
        None
    };

    // Blocked before the host is changed and the child starts: none ends ns-process
    // between changing the host and starting its init; once it exists, they go to it.
    let blocked =
        signals::Blocked::now().map_err(|errno| format!("blocking signals: {}", errno.desc()))?;
    // Dropped before the command started, it takes back what it added to the host.
    let mut network = None;
    if options.net == cli::NetMode::Bridge {
        network = Some(bridge::prepare(options)?);
    }

    // An interactive run gets a pty of its own; any other, no terminal at all. A
    // container's terminal comes through its console socket instead: the init makes the
    // command's pty inside and sends its master there.
    let pty = match (detached.is_some(), options.internal_console_fd) {
        (false, None) => pty::Pty::for_caller()?,
        _ => None,
    };
    // What ns-process adds to the options for its init: flags before the user's command
    // line for a re-executed init, values set on the options parsed already for a copy.
    let mut settings = Vec::new();
    if pty.is_some() {
        settings.push(cli::InitSetting::TakeTerminal);
    }
    if let Some(network) = &network {
        settings.push(network.init_setting());
    }
    let (given_fds, external_cgroup, state_dir) = match detached {
        Some(detached) => {
            settings.extend(detached.init_settings);
            (detached.fds, detached.cgroup, Some(detached.state_dir))
        }
        None => (Vec::new(), None, None),
    };

    let spawned = {
        let mut command = reexec::Command::new(init::ENTRY);
        // If ns-process dies, its init dies at once, and the kernel ends everything in
        // the PID namespace with it.
        command
            // --cgroupns private (#16): the init unshares it itself, once the cgroup has
            // it (setup.rs), so that the namespace is rooted at the container's cgroup.
            .namespaces(namespaces.difference(reexec::Namespaces::CGROUP))
            .death_signal(Some(nix::libc::SIGKILL));
        // The init shows its environment to whoever may read its /proc/1/environ; it
        // needs none of the caller's, only the terminal's type to hand on.
        command.env_clear();
        if let Some(term) = std::env::var_os("TERM") {
            command.env("TERM", term);
        }
        // Which container a runtime's init is, for whoever may read its environment
        // (root, and the owner of its user namespace), as runc's init has
        // _LIBCONTAINER_STATEDIR: its command line shows nothing but its name.
        if let Some(state_dir) = state_dir {
            command.env(runtime::STATE_DIR_VARIABLE, state_dir);
        }
        // A copy of ns-process, not a second start of the binary, whenever ns-process
        // has one thread (#14): no execve, loader or std start, no second parse.
        if init_may_be_a_copy(id_maps.as_ref(), joins_user) {
            let mut init_options = options.clone();
            for setting in settings.iter().cloned() {
                setting.apply(&mut init_options);
            }
            command.without_exec(move |_| init::in_copy(init_options.clone()));
        }
        // What only a re-executed init needs: a copy is where ns-process cloned it, and
        // holds the filter already.
        if !command.copies_the_caller() {
            settings.push(cli::InitSetting::OuterNamespaces(namespaces::outer()?));
            if let Some(program) = &seccomp {
                // Above every descriptor the init gets otherwise: the preserved ones, the
                // bridge's report (at the end of their range), the runtime's and the
                // console socket.
                let number = given_fds
                    .iter()
                    .map(|(number, _)| *number)
                    .chain(options.internal_console_fd)
                    .chain([cli::preserved_fds(options.preserve_fds).end])
                    .max()
                    .unwrap_or(2)
                    + 1;
                settings.push(cli::InitSetting::SeccompFd(number));
                command.fd(number, seccomp::handed(program)?);
            }
        }
        // Internal options go first: the user's command after `--` must stay last.
        command.args(settings.iter().map(cli::InitSetting::flag));
        command.args(user_args);
        if let Some(id_maps) = &id_maps {
            id_maps.apply(&mut command);
        }
        // Entered by the init before anything of its own, user namespace first.
        for (kind, file) in joins {
            command.join(kind, file);
        }
        // On the init, and so on everything inside: see ulimit.rs.
        ulimit::Ulimit::apply_to(&options.ulimit, &mut command);
        // In the cgroup before the init runs anything of its own.
        if let Some(cgroup) = &cgroup {
            command.cgroup(cgroup.cgroup());
        }
        if let Some(cgroup) = external_cgroup {
            command.cgroup(cgroup);
        }
        // Checked open by validate(); the init hands them on to the command.
        for fd in cli::preserved_fds(options.preserve_fds) {
            if let Some(inherited) = sys::claim_handed_fd(fd) {
                command.fd(fd, inherited);
            }
        }
        for (number, fd) in given_fds {
            command.fd(number, fd);
        }
        // The console socket (#16): checked open by validate(), handed on at its number.
        if let Some(fd) = options.internal_console_fd {
            if let Some(socket) = sys::claim_handed_fd(fd) {
                command.fd(fd, socket);
            }
        }
        let attach_pair = network.as_mut().map(|network| {
            network.give_to(&mut command);
            network.attach(options)
        });
        let spawn = |command: &mut reexec::Command| match attach_pair {
            Some(attach_pair) => command.spawn_with_parent_setup(attach_pair),
            None => command.spawn(),
        };
        match &pty {
            Some(pty) => pty.attach(&mut command).map(|()| spawn(&mut command)),
            None => Ok(spawn(&mut command)),
        }
        // The command, and its copies of the pty's slave, end here.
    };
    // On an error, the pty, the pair and the cgroup drop on the way out, before the
    // caller prints the message.
    let child = spawned?.map_err(|error| ulimit::with_flag_named(&error))?;
    Ok(Init {
        child,
        pty,
        blocked,
        network,
        cgroup,
    })
}
