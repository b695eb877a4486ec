//! The one error type of the crate.

use std::ffi::OsString;
use std::fmt;
use std::io;

use crate::namespaces::Namespaces;

/// A step of starting or handling a child, named in every [`Error::Os`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// Creating the pipes that carry stdio and the handshake between parent and child.
    CreatePipe,
    /// Opening `/dev/null` for [`Stdio::null`](crate::Stdio::null).
    OpenDevNull,
    /// Duplicating a descriptor handed to the child as stdio.
    DuplicateStdio,
    /// Moving a descriptor given with [`Command::fd`](crate::Command::fd) above the
    /// numbers the child takes (`F_DUPFD_CLOEXEC`).
    DuplicateFd,
    /// `clone(2)`: creating the child.
    Clone,
    /// Writing `deny` to the child's `/proc/PID/setgroups`.
    WriteSetgroups,
    /// Writing the child's `/proc/PID/uid_map`.
    WriteUidMap,
    /// Writing the child's `/proc/PID/gid_map`.
    WriteGidMap,
    /// Telling the waiting child to go on.
    ReleaseChild,
    /// The hook given to [`Command::parent_setup`](crate::Command::parent_setup) or
    /// [`Command::spawn_with_parent_setup`](crate::Command::spawn_with_parent_setup).
    ParentSetup,
    /// Entering a new time namespace in the child (`unshare(CLONE_NEWTIME)`).
    EnterTimeNamespace,
    /// Arming the parent-death signal in the child (`prctl(PR_SET_PDEATHSIG)`).
    SetDeathSignal,
    /// Resetting the child's signal dispositions and mask.
    ResetSignals,
    /// Installing stdin, stdout and stderr in the child (`dup2`).
    InstallStdio,
    /// Installing the descriptors given with [`Command::fd`](crate::Command::fd) at their
    /// numbers in the child (`dup3`).
    InstallFds,
    /// Making every other descriptor from 3 up close at `execve` in the child
    /// (`close_range(CLOSE_RANGE_CLOEXEC)`, else `FD_CLOEXEC` on each one /proc/self/fd lists).
    CloseOtherFds,
    /// Changing to the working directory given with [`Command::current_dir`](crate::Command::current_dir).
    ChangeDirectory,
    /// `execve(2)` of `/proc/self/exe`.
    Exec,
    /// Reading the child's setup report.
    ReadSetupReport,
    /// `waitpid(2)` on the child.
    Wait,
    /// Sending a signal to the child.
    Kill,
    /// Reading the child's piped output.
    ReadOutput,
    /// Reading the caller's range in `/etc/subuid` and `/etc/subgid`.
    ReadSubordinateIds,
    /// Running `newuidmap(1)` to write the child's uid map.
    RunNewuidmap,
    /// Running `newgidmap(1)` to write the child's gid map (and its setgroups).
    RunNewgidmap,
    /// Installing the filter given with [`Command::seccomp`](crate::Command::seccomp) in
    /// the child (`prctl(PR_SET_NO_NEW_PRIVS)`, then `seccomp(SECCOMP_SET_MODE_FILTER)`),
    /// its last step before `execve`.
    InstallSeccomp,

    // Joining existing namespaces (`Command::join`), in the child.
    /// Joining the user namespace given with [`Command::join`](crate::Command::join)
    /// (`setns(CLONE_NEWUSER)`).
    JoinUserNamespace,
    /// Joining the mount namespace given with [`Command::join`](crate::Command::join).
    JoinMountNamespace,
    /// Joining the UTS namespace given with [`Command::join`](crate::Command::join).
    JoinUtsNamespace,
    /// Joining the IPC namespace given with [`Command::join`](crate::Command::join).
    JoinIpcNamespace,
    /// Joining the network namespace given with [`Command::join`](crate::Command::join).
    JoinNetNamespace,
    /// Joining the cgroup namespace given with [`Command::join`](crate::Command::join).
    JoinCgroupNamespace,
    /// Joining several namespaces of a process through its pidfd
    /// ([`Command::join`](crate::Command::join); `setns(pidfd, flags)`, Linux 5.8).
    JoinNamespacesOfPidfd,
    /// Creating, with `unshare(2)` after joining a user namespace, the namespaces asked
    /// for with [`Command::namespaces`](crate::Command::namespaces), so that the joined
    /// user namespace owns them.
    CreateNamespacesAfterJoin,

    /// Taking uid and gid 0 of the new user namespace in the child (`setresgid`,
    /// `setresuid`), where the maps give 0 but not the caller's own ids.
    TakeRootInside,

    // Typed calls (the `typed` feature).
    /// Sending a typed call's input to the child.
    SendInput,
    /// Reading a typed call's answer from the child.
    ReadAnswer,
    /// Creating the memory file (memfd) a typed call's answer is written into.
    CreateAnswerFile,

    // Limits and privileges (issue #13).
    /// Setting a limit given with [`Command::rlimit`](crate::Command::rlimit) in the child
    /// (`prlimit64(2)`).
    SetResourceLimit,
    /// Dropping capabilities from the child's bounding set
    /// ([`Command::capabilities`](crate::Command::capabilities), `prctl(PR_CAPBSET_DROP)`).
    DropBoundingCapabilities,
    /// Setting the child's effective, permitted and inheritable capabilities
    /// (`capset(2)`).
    SetCapabilities,
    /// Setting the child's ambient capabilities (`prctl(PR_CAP_AMBIENT)`).
    SetAmbientCapabilities,
    /// Setting `no_new_privs` in the child
    /// ([`Command::no_new_privs`](crate::Command::no_new_privs),
    /// `prctl(PR_SET_NO_NEW_PRIVS)`).
    SetNoNewPrivs,

    // Cgroups (#13).
    /// Creating, configuring, reading or removing a [`Cgroup`](crate::Cgroup).
    ManageCgroup,
    /// Writing the child's pid into the `cgroup.procs` of the cgroup given with
    /// [`Command::cgroup`](crate::Command::cgroup), while it waits.
    JoinCgroup,

    // The fork server (`ForkServer`).
    /// Starting the program's fork server, or handing it a spawn and hearing back.
    ForkServer,
}

impl Step {
    pub(crate) const ALL: [Step; 46] = [
        Step::CreatePipe,
        Step::OpenDevNull,
        Step::DuplicateStdio,
        Step::DuplicateFd,
        Step::Clone,
        Step::WriteSetgroups,
        Step::WriteUidMap,
        Step::WriteGidMap,
        Step::ReleaseChild,
        Step::ParentSetup,
        Step::EnterTimeNamespace,
        Step::SetDeathSignal,
        Step::ResetSignals,
        Step::InstallStdio,
        Step::InstallFds,
        Step::CloseOtherFds,
        Step::ChangeDirectory,
        Step::Exec,
        Step::ReadSetupReport,
        Step::Wait,
        Step::Kill,
        Step::ReadOutput,
        Step::ReadSubordinateIds,
        Step::RunNewuidmap,
        Step::RunNewgidmap,
        Step::InstallSeccomp,
        Step::JoinUserNamespace,
        Step::JoinMountNamespace,
        Step::JoinUtsNamespace,
        Step::JoinIpcNamespace,
        Step::JoinNetNamespace,
        Step::JoinCgroupNamespace,
        Step::JoinNamespacesOfPidfd,
        Step::CreateNamespacesAfterJoin,
        Step::TakeRootInside,
        // Typed calls.
        Step::SendInput,
        Step::ReadAnswer,
        // Limits and privileges (issue #13).
        Step::SetResourceLimit,
        Step::DropBoundingCapabilities,
        Step::SetCapabilities,
        Step::SetAmbientCapabilities,
        Step::SetNoNewPrivs,
        // Cgroups (#13).
        Step::ManageCgroup,
        Step::JoinCgroup,
        Step::ForkServer,
        // Typed calls, later (a step's number is its place here: new ones go last).
        Step::CreateAnswerFile,
    ];

    /// The number that travels from child to parent when a child-side step fails.
    pub(crate) fn code(self) -> u32 {
        Step::ALL
            .iter()
            .position(|&step| step == self)
            .map_or(u32::MAX, |index| index as u32)
    }

    pub(crate) fn from_code(code: u32) -> Option<Step> {
        Step::ALL.get(code as usize).copied()
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::CreatePipe => "creating a pipe",
            Step::OpenDevNull => "opening /dev/null",
            Step::DuplicateStdio => "duplicating a stdio descriptor",
            Step::DuplicateFd => "duplicating a descriptor given with Command::fd",
            Step::Clone => "clone(2) of the child",
            Step::WriteSetgroups => "writing \"deny\" to the child's /proc/PID/setgroups",
            Step::WriteUidMap => "writing the child's /proc/PID/uid_map",
            Step::WriteGidMap => "writing the child's /proc/PID/gid_map",
            Step::ReleaseChild => "telling the child to go on",
            Step::ParentSetup => {
                "the parent's setup for the child (Command::parent_setup, spawn_with_parent_setup)"
            }
            Step::EnterTimeNamespace => "entering a new time namespace in the child",
            Step::SetDeathSignal => "arming the parent-death signal in the child",
            Step::ResetSignals => "resetting signal handling in the child",
            Step::InstallStdio => "installing stdin/stdout/stderr in the child",
            Step::InstallFds => "installing the descriptors given with Command::fd in the child",
            Step::CloseOtherFds => {
                "making the child's other descriptors close at exec (close_range, /proc/self/fd)"
            }
            Step::ChangeDirectory => "changing to the working directory in the child",
            Step::Exec => "execve(/proc/self/exe) in the child",
            Step::ReadSetupReport => "reading the child's setup report",
            Step::Wait => "waiting for the child",
            Step::Kill => "signalling the child",
            Step::ReadOutput => "reading the child's output",
            Step::ReadSubordinateIds => "reading the caller's range in /etc/subuid and /etc/subgid",
            Step::RunNewuidmap => "running newuidmap for the child's uid map",
            Step::RunNewgidmap => "running newgidmap for the child's gid map",
            Step::InstallSeccomp => "installing the seccomp filter in the child",
            Step::JoinUserNamespace => "joining the given user namespace in the child (setns)",
            Step::JoinMountNamespace => "joining the given mount namespace in the child (setns)",
            Step::JoinUtsNamespace => "joining the given UTS namespace in the child (setns)",
            Step::JoinIpcNamespace => "joining the given IPC namespace in the child (setns)",
            Step::JoinNetNamespace => "joining the given network namespace in the child (setns)",
            Step::JoinCgroupNamespace => "joining the given cgroup namespace in the child (setns)",
            Step::JoinNamespacesOfPidfd => {
                "joining the namespaces of the given pidfd in the child (setns)"
            }
            Step::CreateNamespacesAfterJoin => {
                "creating namespaces in the joined user namespace (unshare)"
            }
            Step::TakeRootInside => {
                "taking uid and gid 0 of the child's user namespace (setresgid, setresuid), \
                 the caller's own ids being unmapped there"
            }
            // Typed calls.
            Step::SendInput => "sending the typed call's input to the child",
            Step::ReadAnswer => "reading the typed call's answer from the child",
            Step::CreateAnswerFile => "creating the memfd for the typed call's answer",
            // Limits and privileges (issue #13).
            Step::SetResourceLimit => "setting a resource limit in the child (prlimit64)",
            Step::DropBoundingCapabilities => {
                "dropping a capability from the child's bounding set (prctl(PR_CAPBSET_DROP))"
            }
            Step::SetCapabilities => {
                "setting the child's effective, permitted and inheritable capabilities (capset)"
            }
            Step::SetAmbientCapabilities => {
                "setting the child's ambient capabilities (prctl(PR_CAP_AMBIENT))"
            }
            Step::SetNoNewPrivs => "setting no_new_privs in the child (prctl(PR_SET_NO_NEW_PRIVS))",
            // Cgroups (#13).
            Step::ManageCgroup => "managing a cgroup",
            Step::JoinCgroup => "moving the child into its cgroup (cgroup.procs)",
            Step::ForkServer => "handing the spawn to the fork server",
        })
    }
}

/// Everything that can go wrong when starting or handling a re-executed child.
///
/// ```
/// let error = reexec::Command::new("no/slashes").spawn().unwrap_err();
/// assert!(matches!(error, reexec::Error::InvalidInput { .. }));
/// println!("{error}");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed; `step` says which part of the work it was.
    #[error("{step} failed: {source}")]
    Os {
        /// What was being done.
        step: Step,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// The kernel refused to create the namespaces; `hint` says what to look at.
    #[error("creating namespaces ({namespaces}) failed: {source}; {hint}")]
    Namespaces {
        /// The namespaces asked for.
        namespaces: Namespaces,
        /// What clone(2) said.
        #[source]
        source: io::Error,
        /// The likely cause on this machine and the setting to look at.
        hint: String,
    },
    /// Writing an id map was refused; `hint` says what the caller may map.
    #[error("{step} with {map:?} failed: {source}; {hint}")]
    IdMap {
        /// [`Step::WriteUidMap`], [`Step::WriteGidMap`] or [`Step::WriteSetgroups`].
        step: Step,
        /// The text that was written.
        map: String,
        /// What the kernel said.
        #[source]
        source: io::Error,
        /// What the caller may map, and how to get more.
        hint: String,
    },
    /// `newuidmap` or `newgidmap`, which map ranges of `/etc/subuid` and `/etc/subgid` for
    /// a caller without privilege, is not in `PATH`.
    #[error(
        "{program} was not found in PATH ({path}); it maps the ranges of /etc/subuid and \
         /etc/subgid for a user without privilege: install it ({package}), or map only your \
         own uid and gid"
    )]
    IdMapHelperMissing {
        /// [`Step::RunNewuidmap`] or [`Step::RunNewgidmap`].
        step: Step,
        /// `newuidmap` or `newgidmap`.
        program: &'static str,
        /// The `PATH` searched.
        path: String,
        /// The package that has it.
        package: &'static str,
    },
    /// The caller has no range in `/etc/subuid` or `/etc/subgid`, which it needs to map
    /// more than its own ids without privilege.
    #[error(
        "{user} (uid {uid}) has no range in {file}{detail}; newuidmap and newgidmap map \
         only the ranges /etc/subuid and /etc/subgid give: ask an administrator for one, e.g. \
         `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}`, or map \
         only your own uid and gid"
    )]
    NoSubordinateIds {
        /// The caller's user name, or its uid when it has none.
        user: String,
        /// The caller's real uid.
        uid: u32,
        /// `/etc/subuid` or `/etc/subgid`.
        file: &'static str,
        /// Why the file could not be read, if it could not; else empty.
        detail: String,
    },
    /// `newuidmap` or `newgidmap` refused to write the map; `stderr` is what it said.
    #[error("{step} ({program} {args}) failed, {status}: {stderr}")]
    IdMapHelper {
        /// [`Step::RunNewuidmap`] or [`Step::RunNewgidmap`].
        step: Step,
        /// The helper's path.
        program: std::path::PathBuf,
        /// Its arguments: the child's pid, then each range as `inside outside count`.
        args: String,
        /// How it ended.
        status: std::process::ExitStatus,
        /// What it wrote on its standard error, trimmed.
        stderr: String,
    },
    /// A step failed for a cause this crate can name: `hint` says what the errno usually
    /// means there and what to do (a seccomp filter the kernel refused, or one that
    /// refused `execve`; a namespace given with [`Command::join`](crate::Command::join)
    /// that the kernel would not let the child enter; a resource limit the child could
    /// not set, or a capability it could not give up, which `hint` names first).
    #[error("{step} failed: {source}; {hint}")]
    Refused {
        /// What was being done.
        step: Step,
        /// What the kernel said.
        #[source]
        source: io::Error,
        /// The likely cause, and what to do.
        hint: String,
    },
    /// A cgroup operation failed: `action` on `target` (a file or directory of the
    /// cgroup filesystem, or what was looked for); `hint` names the likely cause — no
    /// delegation for a caller without privilege, a controller not enabled, a read-only
    /// cgroup filesystem — and what is needed.
    #[error("{step}: {action} {target} failed: {source}; {hint}")]
    Cgroup {
        /// [`Step::ManageCgroup`], or [`Step::JoinCgroup`] during a spawn.
        step: Step,
        /// What was being done, e.g. `creating the cgroup`, `writing "64" to`.
        action: String,
        /// The path, or what was looked for.
        target: String,
        /// What the kernel said.
        #[source]
        source: io::Error,
        /// The likely cause, and what to do.
        hint: String,
    },
    /// An argument given to the [`Command`](crate::Command) can't be passed to a process.
    #[error("invalid {what} {value:?}: {why}")]
    InvalidInput {
        /// Which argument: "entry name", "argument", "environment variable name", …
        what: &'static str,
        /// The value as given.
        value: OsString,
        /// What is wrong with it and what to do.
        why: String,
    },
    // ---- Typed calls (the `typed` feature): why a call has no value ----
    /// The typed entry panicked; the child sent the panic's message and place.
    #[error("the entry {entry:?} panicked at {file}:{line}:{column}: {message}")]
    Panicked {
        /// The entry's name.
        entry: String,
        /// The panic's message (`Box<dyn Any>` for a payload that is not a string).
        message: String,
        /// The source file of the `panic!`, as `Location::file` says it.
        file: String,
        /// Its line.
        line: u32,
        /// Its column.
        column: u32,
    },
    /// The typed call's child died of a signal before it answered.
    #[error(
        "the child running the entry {entry:?} was killed by signal {signal} ({}) before it \
         answered",
        signal_name(*signal)
    )]
    Killed {
        /// The entry's name.
        entry: String,
        /// The signal's number.
        signal: i32,
    },
    /// The typed call's child exited without answering.
    #[error(
        "the child running the entry {entry:?} exited {} without answering{}",
        code.map_or("with no status".to_owned(), |code| format!("with status {code}")),
        no_answer_hint(*code)
    )]
    NoAnswer {
        /// The entry's name.
        entry: String,
        /// Its exit status, when it could be waited for.
        code: Option<i32>,
    },
    /// The entry's types are not the call's: the entry did not run.
    #[error(
        "the entry {entry:?} has the types {entry_types}, but the call gave {call_types}: \
         call it with its handle (TypedCommand::new::<handle>()), or give by_name the \
         entry's own types"
    )]
    TypeMismatch {
        /// The entry's name.
        entry: String,
        /// The entry's types, `Input -> Output`.
        entry_types: String,
        /// The call's types, `Input -> Output`.
        call_types: String,
    },
    /// The typed call did not end within its timeout; a child running it was killed and
    /// reaped. A `Pool` call may also have found no idle worker in time.
    #[error(
        "the entry {entry:?} did not answer within {timeout:?}: a child running the call is \
         killed and reaped"
    )]
    Timeout {
        /// The entry's name.
        entry: String,
        /// The timeout given to `join_timeout` or `Pool::call_timeout`.
        timeout: std::time::Duration,
    },
    /// A typed call's value could not be written or read as postcard.
    #[error("{what} for the entry {entry:?} failed: {message}")]
    Encoding {
        /// The entry's name.
        entry: String,
        /// Which value, on which side.
        what: &'static str,
        /// What serde or postcard said.
        message: String,
    },
}

/// `SIGKILL` for 9: the name of a signal, for messages.
fn signal_name(signal: i32) -> &'static str {
    nix::sys::signal::Signal::try_from(signal).map_or("unknown signal", |signal| signal.as_str())
}

/// What an exit status without an answer usually means.
fn no_answer_hint(code: Option<i32>) -> &'static str {
    match code {
        Some(121) => " (121: this binary has no entry by that name)",
        Some(122) => " (122: two entries share a name in this binary)",
        Some(0) => " (a plain entry, one without an argument, answers nothing)",
        _ => " (did the entry call std::process::exit?)",
    }
}

impl Error {
    pub(crate) fn os(step: Step, source: io::Error) -> Error {
        Error::Os { step, source }
    }

    /// The step that failed, when a system call failed.
    pub fn step(&self) -> Option<Step> {
        match self {
            Error::Os { step, .. }
            | Error::IdMap { step, .. }
            | Error::IdMapHelperMissing { step, .. }
            | Error::IdMapHelper { step, .. }
            | Error::Refused { step, .. }
            | Error::Cgroup { step, .. } => Some(*step),
            Error::NoSubordinateIds { .. } => Some(Step::ReadSubordinateIds),
            Error::Namespaces { .. } => Some(Step::Clone),
            Error::InvalidInput { .. }
            | Error::Panicked { .. }
            | Error::Killed { .. }
            | Error::NoAnswer { .. }
            | Error::TypeMismatch { .. }
            | Error::Timeout { .. }
            | Error::Encoding { .. } => None,
        }
    }

    /// The operating-system error number, when a system call failed.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Os { source, .. }
            | Error::Namespaces { source, .. }
            | Error::IdMap { source, .. }
            | Error::Refused { source, .. }
            | Error::Cgroup { source, .. } => source.raw_os_error(),
            Error::IdMapHelperMissing { .. }
            | Error::NoSubordinateIds { .. }
            | Error::IdMapHelper { .. }
            | Error::InvalidInput { .. }
            | Error::Panicked { .. }
            | Error::Killed { .. }
            | Error::NoAnswer { .. }
            | Error::TypeMismatch { .. }
            | Error::Timeout { .. }
            | Error::Encoding { .. } => None,
        }
    }
}

impl From<Error> for io::Error {
    fn from(error: Error) -> io::Error {
        let kind = match &error {
            Error::Os { source, .. }
            | Error::Namespaces { source, .. }
            | Error::IdMap { source, .. }
            | Error::Refused { source, .. }
            | Error::Cgroup { source, .. } => source.kind(),
            Error::IdMapHelperMissing { .. } => io::ErrorKind::NotFound,
            Error::NoSubordinateIds { .. } | Error::IdMapHelper { .. } => {
                io::ErrorKind::PermissionDenied
            }
            Error::InvalidInput { .. } => io::ErrorKind::InvalidInput,
            Error::Panicked { .. } | Error::Killed { .. } | Error::NoAnswer { .. } => {
                io::ErrorKind::Other
            }
            Error::TypeMismatch { .. } | Error::Encoding { .. } => io::ErrorKind::InvalidData,
            Error::Timeout { .. } => io::ErrorKind::TimedOut,
        };
        io::Error::new(kind, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_codes_round_trip() {
        for step in Step::ALL {
            assert_eq!(Step::from_code(step.code()), Some(step));
        }
        assert_eq!(Step::from_code(u32::MAX), None);
    }
}
