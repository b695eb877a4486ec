//! `Command`: a `std::process::Command`-shaped builder whose program is always the running
//! binary and whose `argv[0]` is an entry's name.
//!
//! Runs in the parent. This file is the builder and `spawn`, which checks what was asked,
//! lowers it into the plan `sys::spawn` hands the child, and turns what went wrong into an
//! [`Error`]; `stdio.rs` is [`Stdio`], `child.rs` the [`Child`] a spawn returns, and
//! `userns.rs` the id maps written while the child waits.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus, Output};

use nix::unistd::Pid;

use crate::capabilities::Capabilities;
use crate::dispatch::ENTRY_ENV;
use crate::error::{Error, Step};
use crate::namespaces::{IdMap, Namespaces};
use crate::rlimit::Resource;
use crate::seccomp::SeccompProgram;
use crate::sys::{self, CStringArray, ChildPlan, GivenFd, SpawnError};
use crate::without_exec::WithoutExec;

mod child;
mod join;
mod restrictions;
mod stdio;
mod subordinate;
mod userns;

pub use child::Child;
pub use stdio::Stdio;
use stdio::{Direction, StdioDefault, prepare_stdio};
pub use subordinate::{IdMapHelpers, SubordinateIds, SubordinateRange};
use userns::Maps;

/// The program every child runs: this binary, as the kernel still knows it even after the
/// file on disk was replaced or deleted.
const SELF_EXE: &CStr = c"/proc/self/exe";

/// Starts this same binary as a child that runs the entry `name`.
///
/// Shaped like [`std::process::Command`]: the program is fixed (the running executable)
/// and `argv[0]` is the entry's name; the rest — arguments, environment, working
/// directory, stdio — is yours to set. The child gets a parent-death signal, `SIGTERM`
/// unless you choose otherwise with [`death_signal`](Self::death_signal).
///
/// The entry starts with descriptors 0, 1 and 2 and those given with [`fd`](Self::fd),
/// nothing else: unlike [`std::process::Command`], a descriptor the parent left open
/// without close-on-exec — its own, a library's, one inherited from its caller — does not
/// reach the child.
///
/// ```no_run
/// use std::io::Read;
///
/// #[reexec::entry("shout")]
/// fn shout() {
///     let words: Vec<String> = std::env::args().skip(1).collect();
///     println!("{}", words.join(" ").to_uppercase());
/// }
///
/// reexec::main! {
///     fn main() -> Result<(), reexec::Error> {
///         let output = reexec::Command::new("shout").args(["hello", "world"]).output()?;
///         assert_eq!(output.stdout, b"HELLO WORLD\n");
///
///         let mut child = reexec::Command::new("shout")
///             .arg("piped")
///             .stdout(reexec::Stdio::piped())
///             .spawn()?;
///         let mut text = String::new();
///         child.stdout.take().unwrap().read_to_string(&mut text).unwrap();
///         assert!(child.wait()?.success());
///         Ok(())
///     }
/// }
/// ```
#[derive(Debug)]
pub struct Command {
    name: OsString,
    args: Vec<OsString>,
    env: BTreeMap<OsString, Option<OsString>>,
    env_clear: bool,
    cwd: Option<PathBuf>,
    stdin: Option<Stdio>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
    /// What [`fd`](Self::fd) gave, as (number in the child, descriptor), in call order.
    given_fds: Vec<(RawFd, OwnedFd)>,
    death_signal: Option<i32>,
    namespaces: Namespaces,
    uid_maps: Vec<IdMap>,
    gid_maps: Vec<IdMap>,
    allow_setgroups: bool,
    /// Whether `newuidmap` and `newgidmap` write the maps.
    map_with_helpers: bool,
    /// Whether spawn maps root to the caller and the caller's subordinate ranges after.
    subordinate_range: bool,
    parent_setup: Option<ParentSetup>,
    // Limits and privileges (issue #13): see restrictions.rs.
    /// What [`rlimit`](Self::rlimit) gave, one per resource, in the order first given.
    rlimits: Vec<(Resource, u64, u64)>,
    capabilities: Option<Capabilities>,
    no_new_privs: bool,
    /// Installed in the child as its last step before execve.
    seccomp: Option<SeccompProgram>,
    /// What [`join`](Self::join) gave, in call order.
    joins: Vec<(Namespaces, OwnedFd)>,
    // Cgroups (#13).
    /// The `cgroup.procs` files of the cgroup given with [`cgroup`](Self::cgroup).
    cgroup_procs: Vec<PathBuf>,
    /// Its directory, when it is its only one and on cgroup v2: clone3 starts the child
    /// there.
    cgroup_v2_dir: Option<PathBuf>,
    /// Whether the program's fork server starts this child; `None`: the program's choice
    /// (`ForkServer::start_for_every_command`).
    fork_server: Option<bool>,
    /// What a copy of the caller runs instead of re-executing into the entry.
    without_exec: Option<WithoutExec>,
    /// A variable of reexec's own for the next spawn's child (a typed call's descriptor
    /// numbers), added as the entry's marker is: without turning the inherited
    /// environment into a map to merge, as [`env`](Self::env) must.
    own_variable: Option<(&'static str, OsString)>,
}

/// No hook for this spawn: what [`Command::spawn`], `status` and `output` pass on.
const NO_SETUP: Option<fn(u32) -> io::Result<()>> = None;

/// The hook of [`Command::parent_setup`].
type ParentSetupHook = dyn FnMut(u32) -> io::Result<()> + Send;

struct ParentSetup(Box<ParentSetupHook>);

impl std::fmt::Debug for ParentSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ParentSetup(..)")
    }
}

impl Command {
    /// A command that will start the entry `name` of this binary.
    pub fn new(name: impl AsRef<OsStr>) -> Command {
        Command {
            name: name.as_ref().to_owned(),
            args: Vec::new(),
            env: BTreeMap::new(),
            env_clear: false,
            cwd: None,
            stdin: None,
            stdout: None,
            stderr: None,
            given_fds: Vec::new(),
            death_signal: Some(libc::SIGTERM),
            namespaces: Namespaces::NONE,
            uid_maps: Vec::new(),
            gid_maps: Vec::new(),
            allow_setgroups: false,
            map_with_helpers: false,
            subordinate_range: false,
            parent_setup: None,
            rlimits: Vec::new(),
            capabilities: None,
            no_new_privs: false,
            seccomp: None,
            joins: Vec::new(),
            // Cgroups (#13).
            cgroup_procs: Vec::new(),
            cgroup_v2_dir: None,
            fork_server: None,
            without_exec: None,
            own_variable: None,
        }
    }

    /// Adds one argument; the entry reads it as `std::env::args().nth(1)` and so on.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds several arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|arg| arg.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Command {
        self.env
            .insert(key.as_ref().to_owned(), Some(value.as_ref().to_owned()));
        self
    }

    /// Sets several environment variables.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (key, value) in vars {
            self.env(key, value);
        }
        self
    }

    /// Removes an environment variable from what the child inherits.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.env.insert(key.as_ref().to_owned(), None);
        self
    }

    /// The child inherits no environment; only variables set after this call reach it.
    pub fn env_clear(&mut self) -> &mut Command {
        self.env.clear();
        self.env_clear = true;
        self
    }

    /// The child starts in `dir`; a missing directory makes `spawn` fail with
    /// [`Step::ChangeDirectory`].
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// The child's standard input.
    pub fn stdin(&mut self, stdio: impl Into<Stdio>) -> &mut Command {
        self.stdin = Some(stdio.into());
        self
    }

    /// The child's standard output.
    pub fn stdout(&mut self, stdio: impl Into<Stdio>) -> &mut Command {
        self.stdout = Some(stdio.into());
        self
    }

    /// The child's standard error.
    pub fn stderr(&mut self, stdio: impl Into<Stdio>) -> &mut Command {
        self.stderr = Some(stdio.into());
        self
    }

    /// Gives the child `fd` as its descriptor number `child_fd`, which must be 3 or above
    /// (0 to 2 are [`stdin`](Self::stdin), [`stdout`](Self::stdout) and
    /// [`stderr`](Self::stderr)) and given once. The child gets the same open file —
    /// offset, status flags and all — without close-on-exec, so a program it executes in
    /// turn inherits it too.
    ///
    /// Whatever the numbers, each descriptor arrives where it was asked for, also when one
    /// descriptor's number in the parent is another's number in the child (`3 → 4` and
    /// `4 → 3`). A number already taken in the parent is free to use: the child gets the
    /// given descriptor there, never the parent's.
    ///
    /// The next spawn takes `fd`, whether it succeeds or fails: it hands it to the child
    /// and closes the parent's copy, so that — as with a [`Stdio::piped`] end — the parent
    /// sees end-of-file once the child closes its end. Spawning the command again passes
    /// it no more. To keep a descriptor of your own open, give a copy
    /// ([`try_clone_to_owned`](std::os::fd::BorrowedFd::try_clone_to_owned)).
    ///
    /// A number below 3, negative, given twice, or not below the limit of open files
    /// (`RLIMIT_NOFILE`) makes `spawn` fail with [`Error::InvalidInput`].
    ///
    /// ```no_run
    /// use std::io::{Read, Write};
    /// use std::os::fd::{AsFd, FromRawFd};
    /// use std::os::unix::net::UnixStream;
    ///
    /// #[reexec::entry("shout-back")]
    /// fn shout_back() -> std::io::Result<()> {
    ///     // SAFETY: the parent gave us descriptor 3, and nothing else here uses it.
    ///     let mut parent = unsafe { UnixStream::from_raw_fd(3) };
    ///     let mut words = String::new();
    ///     parent.read_to_string(&mut words)?;
    ///     parent.write_all(words.to_uppercase().as_bytes())
    /// }
    ///
    /// reexec::main! {
    ///     fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///         let (mut ours, theirs) = UnixStream::pair()?;
    ///         let mut child = reexec::Command::new("shout-back")
    ///             .fd(3, theirs)
    ///             // A copy of our stdin as the child's 7: ours stays open.
    ///             .fd(7, std::io::stdin().as_fd().try_clone_to_owned()?)
    ///             .spawn()?;
    ///         ours.write_all(b"hello")?;
    ///         ours.shutdown(std::net::Shutdown::Write)?;
    ///         // End-of-file once the child is done: spawn closed our copy of its end.
    ///         let mut answer = String::new();
    ///         ours.read_to_string(&mut answer)?;
    ///         assert_eq!(answer, "HELLO");
    ///         assert!(child.wait()?.success());
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn fd(&mut self, child_fd: RawFd, fd: impl Into<OwnedFd>) -> &mut Command {
        self.given_fds.push((child_fd, fd.into()));
        self
    }

    /// The signal the child receives when the thread that spawned it ends (the kernel's
    /// `PR_SET_PDEATHSIG`); `None` turns it off. The default is `SIGTERM`.
    ///
    /// The kernel ties this signal to the spawning *thread*, not the process: spawn from
    /// a thread that lives as long as the child should.
    pub fn death_signal(&mut self, signal: Option<i32>) -> &mut Command {
        self.death_signal = signal;
        self
    }

    /// Creates the child in new `namespaces`; the child is itself PID 1 of a new PID
    /// namespace. Replaces any set given before.
    ///
    /// ```no_run
    /// use reexec::{Command, Namespaces};
    ///
    /// #[reexec::entry("inside")]
    /// fn inside() {}
    ///
    /// reexec::main! {
    ///     fn main() -> Result<(), reexec::Error> {
    ///         // Unprivileged: a user namespace with root mapped to the caller owns the rest.
    ///         let status = Command::new("inside")
    ///             .namespaces(Namespaces::USER | Namespaces::MOUNT | Namespaces::PID | Namespaces::UTS)
    ///             .map_root_to_caller()
    ///             .status()?;
    ///         assert!(status.success());
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn namespaces(&mut self, namespaces: Namespaces) -> &mut Command {
        self.namespaces = namespaces;
        self
    }

    /// Adds a range to the uid map of the new user namespace. The parent writes the map
    /// while the child waits, before the child runs anything of its own.
    ///
    /// An unprivileged caller may map only its own uid, with a count of 1; root may map
    /// any ranges (and through [`map_with_helpers`](Self::map_with_helpers), a user its
    /// subordinate ranges).
    ///
    /// Where the maps give 0 inside but not the caller's own uid (gid) — a range of
    /// `/etc/subuid` as root, `0:100000:65536`, as a tree `mmdebstrap --mode=unshare`
    /// built is owned — the child takes uid (gid) 0 inside before `execve`: the caller's
    /// id would be the overflow id there, and execve would drop every capability.
    pub fn uid_map(&mut self, map: IdMap) -> &mut Command {
        self.uid_maps.push(map);
        self
    }

    /// Adds several ranges to the uid map.
    pub fn uid_maps(&mut self, maps: impl IntoIterator<Item = IdMap>) -> &mut Command {
        self.uid_maps.extend(maps);
        self
    }

    /// Adds a range to the gid map of the new user namespace. See [`uid_map`](Self::uid_map).
    pub fn gid_map(&mut self, map: IdMap) -> &mut Command {
        self.gid_maps.push(map);
        self
    }

    /// Adds several ranges to the gid map.
    pub fn gid_maps(&mut self, maps: impl IntoIterator<Item = IdMap>) -> &mut Command {
        self.gid_maps.extend(maps);
        self
    }

    /// Adds a user namespace in which root is the caller: uid 0 maps to the caller's
    /// effective uid and gid 0 to its effective gid, one id each. This is what the Go
    /// series' `ns-process` does, and it works without privilege.
    pub fn map_root_to_caller(&mut self) -> &mut Command {
        self.namespaces |= Namespaces::USER;
        self.subordinate_range = false;
        self.uid_maps = vec![IdMap::new(0, nix::unistd::geteuid().as_raw(), 1)];
        self.gid_maps = vec![IdMap::new(0, nix::unistd::getegid().as_raw(), 1)];
        self
    }

    /// Has the setuid helpers `newuidmap(1)` and `newgidmap(1)` write the uid and gid maps
    /// (Debian package `uidmap`), which the parent runs while the child waits. Without
    /// privilege, they are how a caller maps more than its own uid and gid: each range
    /// must be the caller's own id (count 1) or lie within the caller's range in
    /// `/etc/subuid` or `/etc/subgid`, which the helpers check.
    ///
    /// With the helpers, `newgidmap` decides `setgroups`, not
    /// [`allow_setgroups`](Self::allow_setgroups): it keeps `setgroups(2)` allowed when
    /// the gid map uses the caller's range from `/etc/subgid` — the administrator who gave
    /// the range lets the user's processes choose their groups among those ids, so
    /// `su` and `sg` work inside — and denies it otherwise.
    ///
    /// `spawn` fails with [`Error::IdMapHelperMissing`] when a helper is not in `PATH`,
    /// and with [`Error::IdMapHelper`], carrying what the helper said, when it refuses a
    /// map. Root needs no helper: it may write any map of ids it has itself.
    pub fn map_with_helpers(&mut self, helpers: bool) -> &mut Command {
        self.map_with_helpers = helpers;
        self
    }

    /// Adds a user namespace in which root is the caller and ids 1 to 65536 are the
    /// caller's subordinate ids, as `unshare --map-auto` and rootless podman map them:
    /// uid 0 maps to the caller's effective uid, uids 1 to 65536 to the first 65536 of its
    /// range in `/etc/subuid` (fewer if the range is smaller), and the same for gids with
    /// `/etc/subgid`. Replaces the maps given before. The files are read, and the maps
    /// written, at each spawn; without privilege through
    /// [the helpers](Self::map_with_helpers), which root needs not.
    ///
    /// `spawn` fails with [`Error::NoSubordinateIds`] when the caller has no range, and as
    /// [`map_with_helpers`](Self::map_with_helpers) says when the helpers are missing or
    /// refuse. [`SubordinateIds::of_caller`] and [`IdMapHelpers::find`] tell beforehand.
    ///
    /// ```no_run
    /// use reexec::{Command, Namespaces};
    ///
    /// #[reexec::entry("many-ids")]
    /// fn many_ids() {
    ///     // Root inside may now chown to uid 1000, and become it.
    ///     print!("{}", std::fs::read_to_string("/proc/self/uid_map").unwrap());
    /// }
    ///
    /// reexec::main! {
    ///     fn main() -> Result<(), reexec::Error> {
    ///         Command::new("many-ids")
    ///             .namespaces(Namespaces::MOUNT)
    ///             .map_root_to_caller_and_subordinate_range()
    ///             .status()?;
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn map_root_to_caller_and_subordinate_range(&mut self) -> &mut Command {
        self.namespaces |= Namespaces::USER;
        self.subordinate_range = true;
        self
    }

    /// Keeps `setgroups(2)` allowed in the new user namespace. By default the parent
    /// writes `deny` to `/proc/PID/setgroups` before the gid map, which the kernel
    /// requires of an unprivileged caller, and which stops a process inside from
    /// dropping supplementary groups to get around a group's denial. Allowing it works
    /// only for a caller privileged in its own user namespace.
    pub fn allow_setgroups(&mut self, allow: bool) -> &mut Command {
        self.allow_setgroups = allow;
        self
    }

    /// Runs `setup` in the parent once the child exists — in its new namespaces, with its
    /// id maps written — and before the child runs anything of its own; the child waits
    /// for it, with no polling. `setup` gets the child's pid, as seen from the parent.
    ///
    /// This is where the parent does what only it can do for the child, such as moving
    /// a network device into the child's network namespace. An error ends the child
    /// before it ran and comes back from `spawn` as [`Step::ParentSetup`].
    ///
    /// The hook stays with the command and runs again at each spawn, so it must own what
    /// it uses. For a hook that borrows — that fills in a local of the caller, say — use
    /// [`spawn_with_parent_setup`](Self::spawn_with_parent_setup).
    ///
    /// ```no_run
    /// use reexec::{Command, Namespaces};
    ///
    /// #[reexec::entry("configured")]
    /// fn configured() {}
    ///
    /// reexec::main! {
    ///     fn main() -> Result<(), reexec::Error> {
    ///         Command::new("configured")
    ///             .namespaces(Namespaces::USER | Namespaces::NET)
    ///             .map_root_to_caller()
    ///             .parent_setup(|pid| {
    ///                 println!("child {pid} waits until this returns");
    ///                 Ok(())
    ///             })
    ///             .status()?;
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn parent_setup<F>(&mut self, setup: F) -> &mut Command
    where
        F: FnMut(u32) -> io::Result<()> + Send + 'static,
    {
        self.parent_setup = Some(ParentSetup(Box::new(setup)));
        self
    }

    /// Binds the child to a seccomp filter ([`SeccompFilter`](crate::SeccompFilter)
    /// compiled into a [`SeccompProgram`]), installed as its very last step before
    /// `execve`: the child's own setup — namespaces, stdio, descriptors, working
    /// directory — runs unfiltered, and `execve` itself and everything after it, in the
    /// entry and in whatever it executes, runs under the filter. Replaces any filter given
    /// before.
    ///
    /// The child sets `no_new_privs` first (`PR_SET_NO_NEW_PRIVS`), which the kernel asks
    /// of a caller without `CAP_SYS_ADMIN`, and which keeps a setuid program the entry
    /// runs from gaining privilege — and from leaving the filter behind.
    ///
    /// `spawn` fails with [`Error::Refused`] and [`Step::InstallSeccomp`] when the kernel
    /// refuses the filter (`EINVAL`: a kernel built without `CONFIG_SECCOMP_FILTER`, or an
    /// invalid program), and with [`Error::Refused`] and [`Step::Exec`] when `execve` fails
    /// under it — a filter must allow `execve` for the child to start.
    ///
    /// ```no_run
    /// use reexec::{SeccompAction, SeccompFilter};
    ///
    /// #[reexec::entry("cannot-get-its-pid")]
    /// fn cannot_get_its_pid() {
    ///     // SAFETY: getpid(2) takes nothing.
    ///     assert_eq!(unsafe { libc::syscall(libc::SYS_getpid) }, -1);
    /// }
    ///
    /// reexec::main! {
    ///     fn main() -> Result<(), reexec::Error> {
    ///         let filter = SeccompFilter::new(SeccompAction::Allow)
    ///             .rule(libc::SYS_getpid, SeccompAction::Errno(libc::ENOSYS as u16))
    ///             .compile()?;
    ///         let status = reexec::Command::new("cannot-get-its-pid").seccomp(filter).status()?;
    ///         assert!(status.success());
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn seccomp(&mut self, program: SeccompProgram) -> &mut Command {
        self.seccomp = Some(program);
        self
    }

    /// Has the child enter the existing `namespaces` that `fd` refers to, instead of
    /// creating them: `fd` is an open namespace file (`/proc/PID/ns/net`, a bind mount of
    /// one), which holds one namespace, or a pidfd (Linux 5.8), whose process's namespaces
    /// of each kind in `namespaces` are all joined at once. Repeatable, one call per
    /// descriptor; as `nsenter` and an OCI runtime's `namespaces[].path` do.
    ///
    /// The child joins right after its parent let it go (after the id maps and
    /// [`parent_setup`](Self::parent_setup)), before anything of its own: stdio, the
    /// working directory (which, after joining a mount namespace, is looked up in that
    /// namespace) and execve. It joins the user namespace first, whose capabilities the
    /// other joins need: without one, the child needs `CAP_SYS_ADMIN` over the user
    /// namespace owning each namespace joined (and in its own). A user namespace created
    /// for it ([`Namespaces::USER`]) owns no existing namespace, so creating one and
    /// joining any other kind is refused. With a joined user namespace, the namespaces
    /// asked for with [`namespaces`](Self::namespaces) are created after the joins
    /// (unshare(2)), so that the joined one owns them, as runc does; but a PID namespace
    /// is still created by clone(2), owned by the caller's user namespace. Joining the
    /// user namespace the caller is in already changes nothing and is left out.
    ///
    /// The command keeps `fd` and every spawn joins it; the child's copy closes at execve.
    ///
    /// `spawn` fails, before any child exists, with [`Error::InvalidInput`] for: a
    /// namespace both created and joined, or joined twice; a new user namespace with a
    /// joined namespace of another kind; a PID namespace (joining one moves only the
    /// joiner's later children into it, so the entry would run outside it);
    /// a time namespace (the kernel lets only a process that shares no memory enter one,
    /// and the child shares its parent's until execve); a namespace file of another kind
    /// than `namespaces`, or several kinds for a namespace file; a descriptor that is
    /// neither a namespace file nor a pidfd. When the kernel refuses the join it fails with
    /// [`Error::Refused`] with the join's step, naming the namespace and what the refusal usually means
    /// (`EPERM`: no `CAP_SYS_ADMIN` over the namespace's owner).
    ///
    /// ```no_run
    /// use reexec::{Command, Namespaces};
    ///
    /// #[reexec::entry("in-their-network")]
    /// fn in_their_network() {
    ///     println!("{:?}", std::fs::read_link("/proc/self/ns/net"));
    /// }
    ///
    /// reexec::main! {
    ///     fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///         // The network of process 1234 (say, `unshare --net sleep infinity` run by root).
    ///         let net = std::fs::File::open("/proc/1234/ns/net")?;
    ///         let status = Command::new("in-their-network")
    ///             .join(Namespaces::NET, net)
    ///             .namespaces(Namespaces::UTS)
    ///             .status()?;
    ///         assert!(status.success());
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn join(&mut self, namespaces: Namespaces, fd: impl Into<OwnedFd>) -> &mut Command {
        self.joins.push((namespaces, fd.into()));
        self
    }

    // Cgroups (#13).
    /// Starts the child in `cgroup`: it is there before it runs anything of its own, so
    /// the cgroup's limits bind it — and everything it starts — from its first
    /// instruction. Replaces a cgroup given before.
    ///
    /// When the cgroup is one directory on a cgroup v2 hierarchy, the child is created
    /// in it: `clone3(CLONE_INTO_CGROUP)` (Linux 5.7, x86_64), with no write and no wait,
    /// so that a spawn with nothing else for the parent to do keeps `CLONE_VFORK`. A
    /// cgroup that refuses the child — its `pids.max` reached, say — fails the spawn
    /// with [`Error::Cgroup`] and [`Step::JoinCgroup`], and no child was made.
    ///
    /// Otherwise — a v1 or hybrid host's directories, one per controller, or clone3
    /// refused by the kernel (before 5.7) or by a seccomp filter (as in a container
    /// whose profile answers it with `ENOSYS`) — the parent writes the child's pid into
    /// the `cgroup.procs` of each of the cgroup's directories while the child waits (as
    /// for id maps), before a [`parent_setup`](Self::parent_setup) hook runs. A failure
    /// there ends the child before it ran and comes back as [`Error::Cgroup`] with
    /// [`Step::JoinCgroup`].
    ///
    /// ```no_run
    /// use reexec::{Cgroup, Command, Controller};
    ///
    /// #[reexec::entry("at-most-16-processes")]
    /// fn at_most_16_processes() {}
    ///
    /// reexec::main! {
    ///     fn main() -> Result<(), reexec::Error> {
    ///         let cgroup = Cgroup::create_owned("my-tool", &[Controller::Pids])?;
    ///         cgroup.set_pids_max(16)?;
    ///         Command::new("at-most-16-processes").cgroup(&cgroup).status()?;
    ///         cgroup.remove()
    ///     }
    /// }
    /// ```
    pub fn cgroup(&mut self, cgroup: &crate::Cgroup) -> &mut Command {
        self.cgroup_procs = cgroup.procs_files();
        self.cgroup_v2_dir = cgroup.v2_only_dir().map(ToOwned::to_owned);
        self
    }

    /// Whether the program's [`ForkServer`](crate::ForkServer) starts this child, by a
    /// clone of itself, instead of a re-exec of the binary. Unless told, a command uses
    /// the server when the program started it with
    /// [`ForkServer::start_for_every_command`](crate::ForkServer::start_for_every_command).
    ///
    /// The child is the same either way; the server's docs say what differs (only speed,
    /// and which state of the caller it reflects) and what still re-executes. Asked for
    /// with `true` while no server runs, a spawn fails with [`Error::InvalidInput`].
    ///
    /// ```
    /// #[reexec::entry("forked-exit-three")]
    /// fn forked_exit_three() -> std::process::ExitCode {
    ///     std::process::ExitCode::from(3)
    /// }
    ///
    /// reexec::main! {
    ///     fn main() -> Result<(), reexec::Error> {
    ///         reexec::ForkServer::start()?;
    ///         let status = reexec::Command::new("forked-exit-three").fork_server(true).status()?;
    ///         assert_eq!(status.code(), Some(3));
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn fork_server(&mut self, use_it: bool) -> &mut Command {
        self.fork_server = Some(use_it);
        self
    }

    /// Runs `body` in a copy of the calling process, made by a fork-style clone, instead
    /// of re-executing the binary into the entry — whenever the caller has one thread at
    /// the spawn. The copy is set up exactly as a re-executed child would be (stdio,
    /// descriptors, environment, working directory, namespaces, id maps, death signal,
    /// cgroup, limits, seccomp filter), then calls `body` with the command's arguments
    /// and exits with the status it returns, or [`EXIT_PANIC`](crate::EXIT_PANIC) if it
    /// panics. Otherwise the spawn re-executes as usual, and the entry runs: `body` must
    /// do what the entry does. So must the entry stay registered under the command's
    /// name.
    ///
    /// What it saves is the whole start of a second process — the execve, the loader,
    /// std's start, and whatever the entry would read or compute again that the caller
    /// already has: the body owns what it captured. It is the cheapest way to start one
    /// child from a small, single-threaded program (a launcher, a container's init), and
    /// what `ns-process` starts its init with.
    ///
    /// What differs from a re-executed child:
    ///
    /// - **It is a copy of the caller**, made when the spawn runs: its memory, its
    ///   handlers' code (not their dispositions: every handled signal is back to its
    ///   default, and `SIGPIPE` ignored as std's start leaves it), its resource limits and
    ///   credentials at that moment. Secrets in the caller's memory are in the copy's,
    ///   and the copy is as dumpable as the caller: a body that runs code of another
    ///   trust, in namespaces of its own, makes itself non-dumpable first
    ///   (`prctl(PR_SET_DUMPABLE, 0)`), as `ns-process`'s init does.
    /// - **Its memory belongs to the caller's user namespace**, even inside a new one:
    ///   only an execve changes that. Non-dumpable, its `/proc` files then belong to root
    ///   of the caller's user namespace, not of the new one, and only a process with
    ///   `CAP_SYS_PTRACE` there may read them or open its `/proc/PID/ns`.
    /// - **Its arguments come as `body`'s**: `std::env::args()` and `/proc/PID/cmdline`
    ///   show the entry's name alone (cut short if the caller's command line was
    ///   shorter), not the caller's arguments, which any process in the copy's PID
    ///   namespace could read there — unless the caller's argv array is no longer the
    ///   one the kernel laid out (a C library rewrote it), when both stay the caller's.
    ///   C code that kept pointers into the caller's argv (as `getopt`'s `optarg` does)
    ///   finds their strings wiped in the copy. The environment is the command's, without the
    ///   marker a re-exec sets, and `/proc/PID/environ` shows it (as much as fits where
    ///   the caller's was). `/proc/PID/comm` is the entry's name.
    /// - **It ends without the rest of libc's exit path**: std's stdout and C's stdio
    ///   are flushed, and the caller's `atexit` handlers do not run (they are the
    ///   caller's), as for a child of the [`ForkServer`](crate::ForkServer).
    /// - **Its cost grows with the caller's memory**: the clone copies the caller's page
    ///   tables, where a re-exec shares the caller's memory until the execve
    ///   (BENCHMARKS.md, item 3). For a caller of a few MiB that is tens of
    ///   microseconds; for one of GiBs, re-exec or the fork server is cheaper.
    ///
    /// The spawn re-executes when the caller has more than one thread (a tokio runtime,
    /// a thread pool, a fork server started from another thread), and when only an
    /// execve gives the result: [`capabilities`](Self::capabilities), or a new time
    /// namespace. It takes precedence over [`fork_server`](Self::fork_server).
    ///
    /// ```
    /// use std::process::ExitCode;
    ///
    /// #[reexec::entry("greet-without-exec")]
    /// fn greet() -> ExitCode {
    ///     // The re-executed path, when the caller had threads.
    ///     let args: Vec<_> = std::env::args_os().skip(1).collect();
    ///     greeting(&args)
    /// }
    ///
    /// fn greeting(args: &[std::ffi::OsString]) -> ExitCode {
    ///     println!("hello {}", args[0].to_string_lossy());
    ///     ExitCode::SUCCESS
    /// }
    ///
    /// reexec::main! {
    ///     fn main() -> Result<(), reexec::Error> {
    ///         let output = reexec::Command::new("greet-without-exec")
    ///             .arg("from a copy")
    ///             .without_exec(greeting)
    ///             .output()?;
    ///         assert_eq!(output.stdout, b"hello from a copy\n");
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn without_exec<F>(&mut self, body: F) -> &mut Command
    where
        F: FnMut(&[OsString]) -> ExitCode + Send + 'static,
    {
        self.without_exec = Some(WithoutExec(Box::new(body)));
        self
    }

    /// Whether a spawn of this command, made now on this thread, would copy the caller
    /// ([`without_exec`](Self::without_exec)) rather than re-execute the binary: a body
    /// is given, the caller has one thread, and neither
    /// [`capabilities`](Self::capabilities) nor a new time namespace is asked.
    ///
    /// What only a re-executed entry needs — arguments or descriptors that carry what the
    /// body holds in memory already — can then be left out. The answer holds until the
    /// caller starts a thread; if one starts before the spawn, the spawn re-executes
    /// without them, so an entry should refuse to run when they are missing.
    ///
    /// ```
    /// use std::process::ExitCode;
    ///
    /// #[reexec::entry("count-without-exec")]
    /// fn count() -> ExitCode {
    ///     // Re-executed: the items come as arguments.
    ///     let items = std::env::args().skip(1).count();
    ///     println!("{items} items");
    ///     ExitCode::SUCCESS
    /// }
    ///
    /// reexec::main! {
    ///     fn main() -> Result<(), reexec::Error> {
    ///         let items = vec!["a".to_owned(), "b".to_owned()];
    ///         let mut command = reexec::Command::new("count-without-exec");
    ///         let in_memory = items.len();
    ///         command.without_exec(move |_| {
    ///             println!("{in_memory} items");
    ///             ExitCode::SUCCESS
    ///         });
    ///         // Only a re-executed entry needs the items spelled out.
    ///         if !command.copies_the_caller() {
    ///             command.args(&items);
    ///         }
    ///         assert_eq!(command.output()?.stdout, b"2 items\n");
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn copies_the_caller(&self) -> bool {
        self.without_exec.is_some()
            && crate::without_exec::possible(
                self.capabilities.is_some(),
                self.namespaces.contains(Namespaces::TIME),
            )
            .is_some()
    }

    /// The entry name this command starts.
    pub fn get_name(&self) -> &OsStr {
        &self.name
    }

    /// The child's numbers of the descriptors given with [`fd`](Self::fd) so far: a typed
    /// call takes two others.
    #[cfg(feature = "typed")]
    pub(crate) fn given_fd_numbers(&self) -> impl Iterator<Item = RawFd> + Clone + '_ {
        self.given_fds.iter().map(|(number, _)| *number)
    }

    /// Starts the child; stdio not set explicitly is inherited.
    pub fn spawn(&mut self) -> Result<Child, Error> {
        self.spawn_with(StdioDefault::Inherit, NO_SETUP)
    }

    /// Starts the child as [`spawn`](Self::spawn) does, and runs `setup` in the parent
    /// once the child exists — in its new namespaces, with its id maps written — and
    /// before the child runs anything of its own, as a [`parent_setup`](Self::parent_setup)
    /// hook does, but for this spawn only.
    ///
    /// `setup` runs on the calling thread before this returns, so it may borrow from the
    /// caller and need be neither `Send` nor `'static`. It gets the child's pid, as seen
    /// from the parent. A `parent_setup` hook, if the command has one, runs first. An error
    /// ends the child before it ran and comes back as [`Step::ParentSetup`].
    ///
    /// ```
    /// #[reexec::entry("set-up-by-its-parent")]
    /// fn set_up_by_its_parent() {}
    ///
    /// reexec::main! {
    ///     fn main() -> Result<(), reexec::Error> {
    ///         // The hook fills in a local: no Arc, no Mutex.
    ///         let mut seen = None;
    ///         let mut child = reexec::Command::new("set-up-by-its-parent")
    ///             .spawn_with_parent_setup(|pid| {
    ///                 seen = Some(pid);
    ///                 Ok(())
    ///             })?;
    ///         assert_eq!(seen, Some(child.id()));
    ///         assert!(child.wait()?.success());
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn spawn_with_parent_setup<F>(&mut self, setup: F) -> Result<Child, Error>
    where
        F: FnOnce(u32) -> io::Result<()>,
    {
        self.spawn_with(StdioDefault::Inherit, Some(setup))
    }

    /// Starts the child and waits for it; stdio not set explicitly is inherited.
    pub fn status(&mut self) -> Result<ExitStatus, Error> {
        self.spawn_with(StdioDefault::Inherit, NO_SETUP)?.wait()
    }

    /// Starts the child, collects all it writes and waits for it. Unless set explicitly,
    /// stdin is `/dev/null` and stdout and stderr are captured.
    pub fn output(&mut self) -> Result<Output, Error> {
        self.spawn_with(StdioDefault::Capture, NO_SETUP)?
            .wait_with_output()
    }

    /// Spawns with `default` for stdio left unset, and `setup` to run in the parent after
    /// the command's own hook.
    fn spawn_with<F>(&mut self, default: StdioDefault, setup: Option<F>) -> Result<Child, Error>
    where
        F: FnOnce(u32) -> io::Result<()>,
    {
        // The given descriptors are the child's now: they close with this spawn, whatever
        // becomes of it.
        let mut given = std::mem::take(&mut self.given_fds);
        given.sort_by_key(|(target, _)| *target);
        let name = self.validated_name()?;
        let argv = self.argv(&name)?;
        let caller_start = self.without_exec.as_ref().and_then(|_| {
            crate::without_exec::possible(
                self.capabilities.is_some(),
                self.namespaces.contains(Namespaces::TIME),
            )
        });
        let copies_caller = caller_start.is_some();
        // A copy of the caller runs no dispatch, which would take the marker out.
        let envp = self.envp((!copies_caller).then_some(&name))?;
        let cwd = self
            .cwd
            .as_deref()
            .map(|dir| c_string("working directory", dir.as_os_str()))
            .transpose()?;
        let death_signal = match self.death_signal {
            None => 0,
            Some(signal) if (1..=64).contains(&signal) => signal,
            Some(signal) => {
                return Err(Error::InvalidInput {
                    what: "death signal",
                    value: signal.to_string().into(),
                    why: "signals are numbered 1 to 64; pass None to turn the death signal off"
                        .into(),
                });
            }
        };

        let maps = self.maps()?;
        validate_given_fds(&given)?;
        let join_plan = join::plan(self.namespaces, &self.joins)?;
        let rlimits = self.rlimit_plan()?;
        self.check_capabilities()?;

        let given = given_without_collisions(given)?;
        let given_plan: Vec<GivenFd> = given
            .iter()
            .map(|(target, source)| GivenFd {
                source: source.as_raw_fd(),
                target: *target,
            })
            .collect();
        let stdin = prepare_stdio(self.stdin.as_ref(), default, Direction::Input)?;
        let stdout = prepare_stdio(self.stdout.as_ref(), default, Direction::Output)?;
        let stderr = prepare_stdio(self.stderr.as_ref(), default, Direction::Output)?;
        // The parent writes id maps, and runs the caller's hook, while the child waits.
        // Joining a cgroup may be one more part: `sys::spawn` decides.
        let has_parent_part = self.parent_setup.is_some() || setup.is_some() || !maps.is_empty();
        // Opened now, for clone3 (when it may still run): one that can't be opened is left
        // to the write, whose error names the file.
        let cgroup_v2_dir = self
            .cgroup_v2_dir
            .as_deref()
            .filter(|_| sys::clone3_may_run());
        let cgroup_v2_dir = cgroup_v2_dir.and_then(|dir| {
            use nix::fcntl::OFlag;
            let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
            nix::fcntl::open(dir, flags, nix::sys::stat::Mode::empty()).ok()
        });

        let plan = ChildPlan {
            exe: SELF_EXE,
            argv: &argv,
            envp: &envp,
            cwd: cwd.as_deref(),
            stdio: [stdin.child_fd(), stdout.child_fd(), stderr.child_fd()],
            fds: &given_plan,
            death_signal,
            parent_pid: std::process::id() as libc::pid_t,
            clone_flags: self
                .namespaces
                .without(join_plan.unshare_after_join)
                .clone_flags(),
            unshare_time: self.namespaces.contains(Namespaces::TIME),
            // As PID 1 the child would drop the death signal until the entry's dispatch
            // installs a handler; blocked, it waits for that (see dispatch/death_signal.rs).
            keep_blocked: if self.namespaces.contains(Namespaces::PID) {
                death_signal
            } else {
                0
            },
            rlimits: &rlimits,
            capabilities: self.capabilities,
            no_new_privs: self.no_new_privs,
            seccomp: self.seccomp.as_ref().map(SeccompProgram::instructions),
            joins: &join_plan.joins,
            unshare_after_join: join_plan.unshare_after_join.clone_flags(),
            take_root_gid: maps.takes_root_gid(),
            take_root_uid: maps.takes_root_uid(),
        };
        let via_fork_server = if copies_caller {
            None
        } else {
            self.via_fork_server(&plan)?
        };
        // `spawn` returns once the child has exec'd (or failed, and was reaped).
        // Borrowed, not taken: a hook that panics must still be there for the next spawn.
        let allow_setgroups = self.allow_setgroups;
        let parent_setup = self.parent_setup.as_mut();
        let cgroup_procs = &self.cgroup_procs;
        let cgroup = (!cgroup_procs.is_empty()).then(|| sys::IntoCgroup {
            v2_dir: cgroup_v2_dir.as_ref().map(AsFd::as_fd),
            join: |pid: libc::pid_t| crate::cgroup::join(cgroup_procs, pid as u32),
        });
        let parent_part = has_parent_part.then_some(|pid| {
            parent_part(
                Pid::from_raw(pid),
                &maps,
                allow_setgroups,
                parent_setup,
                setup,
            )
        });
        let spawned = if let (Some(WithoutExec(body)), Some(start)) =
            (self.without_exec.as_mut(), caller_start)
        {
            let cgroup_join = cgroup.map(|cgroup| cgroup.join);
            let body = (body.as_mut(), self.args.as_slice(), start);
            crate::without_exec::spawn(&plan, body, cgroup_join, parent_part)
        } else if let Some(server) = via_fork_server {
            let cgroup_join = cgroup.map(|cgroup| cgroup.join);
            crate::fork_server::spawn(server, &plan, cgroup_join, parent_part)
        } else {
            sys::spawn(&plan, cgroup, parent_part)
        };
        drop(cgroup_v2_dir);
        let spawned = match spawned {
            Ok(spawned) => spawned,
            Err(SpawnError::Clone(error)) => return Err(self.clone_error(error)),
            Err(SpawnError::IntoCgroup(error)) => {
                let dir = self.cgroup_v2_dir.as_deref().unwrap_or(Path::new(""));
                return Err(crate::cgroup::clone_refusal(dir, error));
            }
            Err(SpawnError::Parent(error)) => return Err(error),
            Err(SpawnError::Child(step, errno)) if join::is_join_step(step) => {
                return Err(join::refusal(step, errno));
            }
            Err(SpawnError::Child(step, word)) if restrictions::is_restriction(step) => {
                return Err(self.restriction_error(step, word));
            }
            Err(SpawnError::Child(step, errno)) => {
                return Err(self.child_error(step, errno));
            }
            Err(SpawnError::Os(step, error)) => return Err(Error::os(step, error)),
        };
        // The parent's copies of the child's ends must close, or the child's output pipes
        // never report end-of-file.
        drop((stdin.child, stdout.child, stderr.child, given));

        Ok(Child::new(
            Pid::from_raw(spawned.pid),
            spawned.pidfd,
            stdin.parent,
            stdout.parent,
            stderr.parent,
        ))
    }

    /// The server this spawn goes through, held until it answers: asked for, or the
    /// program's default, and one the server gives the same result for. Asked for
    /// explicitly while no server runs is an error; as the default, it re-executes.
    fn via_fork_server(
        &self,
        plan: &ChildPlan<'_>,
    ) -> Result<Option<crate::fork_server::Lease>, Error> {
        let asked = match self.fork_server {
            Some(asked) => asked,
            None => crate::fork_server::used_by_default(),
        };
        if !asked {
            return Ok(None);
        }
        let Some(server) = crate::fork_server::lease() else {
            if self.fork_server == Some(true) {
                return Err(Error::InvalidInput {
                    what: "fork server",
                    value: self.name.clone(),
                    why: "Command::fork_server(true) was given, but the program's fork server \
                          is not running: call reexec::ForkServer::start() first thing in main"
                        .into(),
                });
            }
            return Ok(None);
        };
        let argv: Vec<&[u8]> = plan.argv.strings().map(CStr::to_bytes).collect();
        let fd_count = 5 + plan.fds.len() + plan.joins.len();
        let servable = plan.capabilities.is_none()
            && !plan.unshare_time
            && crate::fork_server::can_serve(&argv, fd_count);
        Ok(servable.then_some(server))
    }

    /// The maps of this spawn, checked: with the caller's subordinate ranges read now, and
    /// the helpers found, if asked for.
    fn maps(&self) -> Result<Maps, Error> {
        let is_root = nix::unistd::geteuid().is_root();
        let helpers = (self.map_with_helpers || (self.subordinate_range && !is_root))
            .then(IdMapHelpers::find)
            .transpose()?;
        if !self.subordinate_range {
            return Maps::new(self.namespaces, &self.uid_maps, &self.gid_maps, helpers);
        }
        let ids = SubordinateIds::of_caller()?;
        let root_and_range = |caller: u32, range: SubordinateRange| {
            [
                IdMap::new(0, caller, 1),
                IdMap::new(1, range.start, range.count.min(65536)),
            ]
        };
        let uid_maps = root_and_range(nix::unistd::geteuid().as_raw(), ids.uids);
        let gid_maps = root_and_range(nix::unistd::getegid().as_raw(), ids.gids);
        Maps::new(self.namespaces, &uid_maps, &gid_maps, helpers)
    }

    /// The error of a step the child reported failed: the seccomp filter's, and an
    /// execve under it, explained.
    fn child_error(&self, step: Step, errno: i32) -> Error {
        let source = io::Error::from_raw_os_error(errno);
        let hint = match step {
            Step::InstallSeccomp => seccomp_refusal(errno),
            Step::Exec if self.seccomp.is_some() => {
                "execve ran under the seccomp filter given with Command::seccomp, installed \
                 just before it: a filter that answers execve with this error refuses it \
                 (allow execve in the filter; it binds the entry, not the setup)"
            }
            _ => return Error::os(step, source),
        };
        Error::Refused {
            step,
            source,
            hint: hint.into(),
        }
    }

    fn clone_error(&self, error: io::Error) -> Error {
        if self.namespaces.is_empty() {
            return Error::os(Step::Clone, error);
        }
        Error::Namespaces {
            namespaces: self.namespaces,
            hint: crate::diagnose::namespace_refusal(self.namespaces, &error),
            source: error,
        }
    }

    fn validated_name(&self) -> Result<CString, Error> {
        let invalid = |why: &str| Error::InvalidInput {
            what: "entry name",
            value: self.name.clone(),
            why: why.into(),
        };
        let bytes = self.name.as_bytes();
        if bytes.is_empty() {
            return Err(invalid("an entry name can't be empty"));
        }
        if bytes == b"." || bytes == b".." {
            return Err(invalid("an entry name can't be '.' or '..'"));
        }
        if bytes.contains(&b'/') {
            return Err(invalid(
                "an entry name can't contain '/': the child finds its entry by the last component of argv[0]",
            ));
        }
        c_string("entry name", &self.name)
    }

    fn argv(&self, name: &CString) -> Result<CStringArray, Error> {
        let mut argv = CStringArray::with_capacity(1 + self.args.len());
        argv.push(name.clone());
        for arg in &self.args {
            argv.push(c_string("argument", arg)?);
        }
        Ok(argv)
    }

    /// Sets (or, with `None`, takes back) the variable of reexec's own that the next
    /// spawn's child gets: see `own_variable`.
    #[cfg_attr(not(feature = "typed"), allow(dead_code))]
    pub(crate) fn set_own_variable(&mut self, variable: Option<(&'static str, OsString)>) {
        self.own_variable = variable;
    }

    /// The child's environment, with the marker naming `entry` when it is re-executed
    /// (`Some`), and the variable of reexec's own if one is set.
    fn envp(&self, entry: Option<&CString>) -> Result<CStringArray, Error> {
        let entry = entry.map(|name| OsStr::from_bytes(name.as_bytes()));
        let own = self
            .own_variable
            .as_ref()
            .map(|(key, value)| (OsStr::new(*key), value.as_os_str()));
        if !self.env_clear && self.env.is_empty() {
            // The common case, with no changes to merge: our environment as it is, less
            // the variables of ours an ancestor left, plus ours — no map to build.
            let vars = std::env::vars_os();
            let mut envp = CStringArray::with_capacity(vars.size_hint().0 + 2);
            for (key, value) in vars {
                if key != ENTRY_ENV && own.is_none_or(|(own_key, _)| key != own_key) {
                    envp.push(env_pair(&key, &value)?);
                }
            }
            if let Some(entry) = entry {
                envp.push(env_pair(OsStr::new(ENTRY_ENV), entry)?);
            }
            if let Some((key, value)) = own {
                envp.push(env_pair(key, value)?);
            }
            return Ok(envp);
        }
        let mut vars: BTreeMap<OsString, OsString> = if self.env_clear {
            BTreeMap::new()
        } else {
            std::env::vars_os().collect()
        };
        for (key, value) in &self.env {
            let key_bytes = key.as_bytes();
            if key_bytes.is_empty() || key_bytes.contains(&b'=') {
                return Err(Error::InvalidInput {
                    what: "environment variable name",
                    value: key.clone(),
                    why: "a variable name must be non-empty and can't contain '='".into(),
                });
            }
            match value {
                Some(value) => vars.insert(key.clone(), value.clone()),
                None => vars.remove(key),
            };
        }
        match entry {
            Some(entry) => vars.insert(ENTRY_ENV.into(), entry.to_owned()),
            None => vars.remove(OsStr::new(ENTRY_ENV)),
        };
        if let Some((key, value)) = own {
            vars.insert(key.to_owned(), value.to_owned());
        }
        vars.iter()
            .map(|(key, value)| env_pair(key, value))
            .collect()
    }
}

/// `KEY=VALUE`, as `envp` holds it.
fn env_pair(key: &OsStr, value: &OsStr) -> Result<CString, Error> {
    let mut pair = Vec::with_capacity(key.len() + 1 + value.len());
    pair.extend_from_slice(key.as_bytes());
    pair.push(b'=');
    pair.extend_from_slice(value.as_bytes());
    CString::new(pair).map_err(|error| Error::InvalidInput {
        what: "environment variable",
        value: OsString::from_vec(error.into_vec()),
        why: "it contains a NUL byte, which no process argument can carry".into(),
    })
}

fn c_string(what: &'static str, value: &OsStr) -> Result<CString, Error> {
    CString::new(value.as_bytes()).map_err(|_| Error::InvalidInput {
        what,
        value: value.to_owned(),
        why: "it contains a NUL byte, which no process argument can carry".into(),
    })
}

/// What an errno of `seccomp(SECCOMP_SET_MODE_FILTER)`, or of the prctl that sets
/// `no_new_privs` before it, usually means.
fn seccomp_refusal(errno: i32) -> &'static str {
    match errno {
        libc::EINVAL => {
            "the kernel refused the filter: it was built without seccomp filters \
             (CONFIG_SECCOMP_FILTER), or the program is not valid classic BPF (one given \
             with SeccompProgram::from_instructions)"
        }
        libc::ENOSYS => "this kernel has no seccomp(2) (Linux 3.17 and later have)",
        libc::EACCES => {
            "the kernel wants no_new_privs set or CAP_SYS_ADMIN for a filter, and the \
             child had neither"
        }
        libc::ENOMEM => {
            "the filters the child inherited and this one together exceed the kernel's \
             limit of 32768 instructions: give a shorter filter"
        }
        libc::EFAULT => "the kernel could not read the filter",
        _ => "see seccomp(2) for this error",
    }
}

/// The parent's part while the child waits, after `sys::spawn` put it in its cgroup:
/// setgroups, uid_map, gid_map, the command's hook, this spawn's hook. `sys::spawn` then
/// lets the child go on.
fn parent_part(
    pid: Pid,
    maps: &Maps,
    allow_setgroups: bool,
    parent_setup: Option<&mut ParentSetup>,
    setup: Option<impl FnOnce(u32) -> io::Result<()>>,
) -> Result<(), Error> {
    maps.write(pid, allow_setgroups)?;
    let pid = pid.as_raw() as u32;
    let failed = |error| Error::os(Step::ParentSetup, error);
    if let Some(ParentSetup(hook)) = parent_setup {
        hook(pid).map_err(failed)?;
    }
    if let Some(setup) = setup {
        setup(pid).map_err(failed)?;
    }
    Ok(())
}

/// Checks the numbers given with [`Command::fd`] (sorted by them), before anything is
/// created.
fn validate_given_fds(given: &[(RawFd, OwnedFd)]) -> Result<(), Error> {
    let invalid = |target: RawFd, why: String| Error::InvalidInput {
        what: "descriptor number for the child (Command::fd)",
        value: target.to_string().into(),
        why,
    };
    if given.is_empty() {
        // The common case: no system call on every spawn for nothing to check.
        return Ok(());
    }
    let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(u64::MAX, |(soft, _)| soft);
    for &(target, _) in given {
        if target < 0 {
            return Err(invalid(target, "descriptor numbers are 0 or more".into()));
        }
        if target <= 2 {
            return Err(invalid(
                target,
                "0, 1 and 2 are stdin, stdout and stderr: set them with \
                 Command::stdin, Command::stdout and Command::stderr"
                    .into(),
            ));
        }
        if u64::try_from(target).is_ok_and(|target| target >= limit) {
            return Err(invalid(
                target,
                format!(
                    "the limit of open files (RLIMIT_NOFILE) is {limit}, which the \
                     child inherits: give a lower number or raise the limit"
                ),
            ));
        }
    }
    if let Some(pair) = given.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(invalid(
            pair[0].0,
            "it was given twice: a number in the child takes one descriptor".into(),
        ));
    }
    Ok(())
}

/// The given descriptors sorted by their number in the child, as `ChildPlan::fds` needs
/// them: a source that is another's number in the child (a swap, 3 → 4 and 4 → 3), or
/// 0 to 2 (which installing stdio overwrites), moves above every such number first, as a
/// close-on-exec copy; its original closes here. The others stay where they are.
fn given_without_collisions(
    mut given: Vec<(RawFd, OwnedFd)>,
) -> Result<Vec<(RawFd, OwnedFd)>, Error> {
    given.sort_by_key(|(target, _)| *target);
    let highest = given.last().map_or(2, |(target, _)| *target);
    let is_target = |fd: RawFd| {
        given
            .binary_search_by_key(&fd, |(target, _)| *target)
            .is_ok()
    };
    let collides: Vec<bool> = given
        .iter()
        .map(|(target, fd)| {
            let at = fd.as_raw_fd();
            at <= 2 || (at != *target && is_target(at))
        })
        .collect();
    given
        .into_iter()
        .zip(collides)
        .map(|((target, fd), collides)| {
            if !collides {
                return Ok((target, fd));
            }
            let moved = sys::dup_above(fd.as_fd(), highest + 1)
                .map_err(|error| Error::os(Step::DuplicateFd, error))?;
            Ok((target, moved))
        })
        .collect()
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn entry_names_are_checked_like_the_attribute_checks_them(
            name in proptest::collection::vec(prop_oneof![Just(b'/'), Just(b'.'), Just(0u8), any::<u8>()], 0..6)
        ) {
            let valid = !name.is_empty() && !name.contains(&b'/') && !name.contains(&0)
                && name != b"." && name != b"..";
            let command = Command::new(OsStr::from_bytes(&name));
            prop_assert_eq!(command.validated_name().is_ok(), valid, "{:?}", name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The identity of the open file behind `fd`.
    fn inode(fd: &OwnedFd) -> (u64, u64) {
        let stat = nix::sys::stat::fstat(fd).unwrap();
        (stat.st_dev, stat.st_ino)
    }

    #[test]
    fn given_descriptors_that_collide_move_and_keep_their_files() {
        let (a, _a_write) = sys::cloexec_pipe().unwrap();
        let (b, _b_write) = sys::cloexec_pipe().unwrap();
        let (same, _same_write) = sys::cloexec_pipe().unwrap();
        let (a_at, b_at, same_at) = (a.as_raw_fd(), b.as_raw_fd(), same.as_raw_fd());
        // Each number in the child, and the file it must hold there.
        let mut expected = vec![
            (a_at, inode(&b)),
            (b_at, inode(&a)),
            (same_at, inode(&same)),
        ];
        expected.sort();
        // A swap, and one at its own number; given out of order.
        let given = vec![(b_at, a), (a_at, b), (same_at, same)];

        let arranged = given_without_collisions(given).unwrap();
        let plan: Vec<GivenFd> = arranged
            .iter()
            .map(|(target, fd)| GivenFd {
                source: fd.as_raw_fd(),
                target: *target,
            })
            .collect();
        assert!(sys::follows_the_rules(&plan), "{plan:?}");
        let seen: Vec<(RawFd, (u64, u64))> = arranged
            .iter()
            .map(|(target, fd)| (*target, inode(fd)))
            .collect();
        assert_eq!(seen, expected);
        let same = plan.iter().find(|fd| fd.target == same_at).unwrap();
        assert_eq!(same.source, same_at, "a source at its own number stays");
    }

    /// The `KEY=` entries of `envp` for `key`.
    fn entries(envp: &CStringArray, key: &str) -> Vec<String> {
        let prefix = format!("{key}=");
        envp.strings()
            .map(|pair| pair.to_string_lossy().into_owned())
            .filter(|pair| pair.starts_with(&prefix))
            .collect()
    }

    #[test]
    fn a_variable_of_our_own_reaches_one_spawn_with_or_without_changes_to_merge() {
        let name = CString::new("entry").unwrap();
        let mut inherited = Command::new("entry");
        let mut merged = Command::new("entry");
        merged.env("REEXEC_TEST_MERGED", "1");
        for command in [&mut inherited, &mut merged] {
            command.set_own_variable(Some(("REEXEC_TYPED_FDS", "3,4".into())));
            let envp = command.envp(Some(&name)).unwrap();
            assert_eq!(entries(&envp, "REEXEC_TYPED_FDS"), ["REEXEC_TYPED_FDS=3,4"]);
            assert_eq!(entries(&envp, ENTRY_ENV), [format!("{ENTRY_ENV}=entry")]);
            // The caller's own variables are all there.
            let pairs: Vec<String> = envp
                .strings()
                .map(|pair| pair.to_string_lossy().into_owned())
                .collect();
            for (key, value) in std::env::vars() {
                if !key.starts_with("REEXEC_") {
                    assert!(pairs.contains(&format!("{key}={value}")), "{key}");
                }
            }
            command.set_own_variable(None);
            let envp = command.envp(Some(&name)).unwrap();
            assert!(entries(&envp, "REEXEC_TYPED_FDS").is_empty());
        }
    }
}
