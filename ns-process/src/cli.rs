//! The command line, and the checks made on it before anything is created.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Parser, ValueEnum};

use crate::capabilities::CapArg;
use crate::net::{MAX_BRIDGE_NAME, Subnet};
use crate::seccomp::SeccompArg;
use crate::ulimit::Ulimit;
use crate::user::UserArg;

/// The hostname the namespace gets unless `--hostname` says otherwise.
pub(crate) const DEFAULT_HOSTNAME: &str = "ns-process";

/// Run a shell, or any command, in new Linux namespaces as root mapped to your own user.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ns-process",
    version,
    about,
    after_help = "\
Examples:
  ns-process                                   a shell in new namespaces: -[ns-process]- #
  ns-process -- id                             uid=0(root) gid=0(root) …
  ns-process --hostname box -- hostname        box
  scripts/make-rootfs ~/rootfs                 build a busybox root filesystem, then:
  ns-process --rootfs ~/rootfs                 a shell pivoted into it
  scripts/make-rootfs --debian ~/debian        a Debian one (mmdebstrap), then:
  ns-process --rootfs ~/debian -w /root -- python3
  ns-process --share net -- ip link            keep the caller's network namespace
  ns-process --join user=/proc/PID/ns/user --join net=/proc/PID/ns/net -- ip link
                                               join those of process PID

Exit status: the command's; 128+N when signal N ended it; 125 when ns-process itself
fails (bad input, setup); 126 when COMMAND can't be executed; 127 when it is not found."
)]
pub(crate) struct Options {
    /// Hostname inside the new UTS namespace.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_HOSTNAME)]
    pub(crate) hostname: String,

    /// Pivot into this root filesystem (build one with scripts/make-rootfs).
    #[arg(long, value_name = "DIR")]
    pub(crate) rootfs: Option<PathBuf>,

    /// With --rootfs: keep the rootfs's own /tmp instead of a fresh tmpfs (files written
    /// there then stay in the rootfs, and concurrent runs share them).
    #[arg(long)]
    pub(crate) tmp_on_rootfs: bool,

    /// With --rootfs: bind SRC (a file or directory of the caller's) on DST inside the
    /// rootfs, made there when missing; `:ro` read-only (repeatable). DST is resolved
    /// inside the rootfs and may not go through a symbolic link.
    #[arg(long, value_name = "SRC:DST[:ro]", value_parser = Bind::parse)]
    pub(crate) bind: Vec<Bind>,

    /// With --rootfs: a fresh tmpfs on DST inside the rootfs, made there when missing;
    /// `:size=N` (bytes, or with k, m, g or %) limits it (repeatable).
    #[arg(long, value_name = "DST[:size=N]", value_parser = Tmpfs::parse)]
    pub(crate) tmpfs: Vec<Tmpfs>,

    /// With --rootfs: the rootfs itself read-only, once every mount on it is made (its
    /// /dev, /proc, /sys, /tmp, binds and tmpfs keep their own).
    #[arg(long)]
    pub(crate) read_only: bool,

    /// Keep the caller's namespace of this kind instead of creating one (repeatable).
    #[arg(long, value_name = "NAMESPACE", value_enum)]
    pub(crate) share: Vec<Shareable>,

    /// Join the existing namespace NS at PATH instead of creating one (repeatable): NS is
    /// user, mnt, uts, ipc, net or cgroup, PATH a namespace file such as /proc/PID/ns/net.
    /// Any but user needs its owner joined too (--join user=PATH) or --share user.
    #[arg(long, value_name = "NS=PATH", value_parser = JoinArg::parse)]
    pub(crate) join: Vec<JoinArg>,

    /// Network: `none` is a new namespace with only `lo` up; `host` keeps the caller's;
    /// `bridge` adds a veth pair to a bridge on the host (needs root or CAP_NET_ADMIN).
    #[arg(long, value_name = "MODE", value_enum, default_value_t = NetMode::None)]
    pub(crate) net: NetMode,

    /// With --net bridge: the bridge's name; created if missing, refused if the link is
    /// not a bridge.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_BRIDGE)]
    pub(crate) bridge: String,

    /// With --net bridge: the bridge's subnet; the bridge takes the first address, each
    /// ns-process the first free one after it. A bridge that already has an address of
    /// another subnet is refused.
    #[arg(long, value_name = "CIDR", default_value = DEFAULT_SUBNET, value_parser = Subnet::parse)]
    pub(crate) subnet: Subnet,

    /// Set by ns-process for its init: stdin is a pty of the command's own, to be bound
    /// on /dev/console and made the command's controlling terminal.
    #[arg(long, hide = true)]
    pub(crate) internal_take_terminal: bool,

    /// Set by ns-process for its init: the namespaces ns-process itself is in.
    #[arg(long, hide = true, value_name = "KIND:INODE,...")]
    pub(crate) internal_outer_namespaces: Option<String>,

    /// Set by ns-process for its init: where to report that the command started.
    #[arg(long, hide = true, value_name = "FD")]
    pub(crate) internal_started_fd: Option<i32>,

    // A lean ns-process (#14).
    /// Set by ns-process for its init: the command's seccomp filter, compiled by
    /// ns-process, in the file open at FD.
    #[arg(long, hide = true, value_name = "FD")]
    pub(crate) internal_seccomp_fd: Option<i32>,

    /// The command's seccomp filter once compiled, kept for the next asker: validate()
    /// compiles a profile to check it, and the init's start hands that very program on.
    #[arg(skip)]
    compiled_seccomp: std::cell::OnceCell<Result<Option<reexec::SeccompProgram>, String>>,

    // ns-runtime's internal options (#16): set by `ns-runtime create` for its init.
    /// Set by ns-runtime for its init: a socket to say "set up" on, and to hear "saved".
    #[arg(long, hide = true, value_name = "FD")]
    pub(crate) internal_ready_fd: Option<i32>,

    /// Set by ns-runtime for its init: the read end of the container's start FIFO,
    /// waited on before the command runs.
    #[arg(long, hide = true, value_name = "FD")]
    pub(crate) internal_start_fifo_fd: Option<i32>,
    /// Set by ns-runtime for a container's init: the bundle whose `config.json` has the
    /// OCI `createContainer` and `startContainer` hooks the init runs itself.
    #[arg(long, hide = true, value_name = "DIR")]
    pub(crate) internal_runtime_bundle: Option<std::path::PathBuf>,

    /// Set by ns-runtime for a container's init: the container's id, for its hooks' state.
    #[arg(long, hide = true, value_name = "ID")]
    pub(crate) internal_runtime_id: Option<String>,

    // The console socket (#16).
    /// Set by ns-runtime for the init: a connected console socket (`--console-socket`);
    /// the init gives the command a pty from the container's devpts and sends its master
    /// over it.
    #[arg(long, hide = true, value_name = "FD")]
    pub(crate) internal_console_fd: Option<i32>,

    /// With --internal-console-fd: the pty's size, ROWSxCOLUMNS (`process.consoleSize`).
    #[arg(long, hide = true, value_name = "ROWSxCOLUMNS",
          value_parser = crate::runtime::console::parse_size)]
    pub(crate) internal_console_size: Option<(u16, u16)>,

    /// Add KEY=VALUE to the command's environment (repeatable). The environment starts
    /// with PATH, TERM, PS1, and HOME, USER and SHELL from /etc/passwd inside for the
    /// command's user; KEY=VALUE replaces any of them.
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE", value_parser = parse_env)]
    pub(crate) env: Vec<(String, String)>,

    /// Let the command keep this capability too, beyond Docker's default 14 (repeatable;
    /// ALL for every one). `CAP_` and case are optional: SYS_PTRACE, cap_net_admin.
    #[arg(long = "cap-add", value_name = "CAP", value_parser = CapArg::parse)]
    pub(crate) cap_add: Vec<CapArg>,

    /// Take this capability from the command (repeatable; ALL for every one).
    #[arg(long = "cap-drop", value_name = "CAP", value_parser = CapArg::parse)]
    pub(crate) cap_drop: Vec<CapArg>,

    /// Give up the boundary: the command keeps every capability, and /proc and /sys are
    /// neither masked nor read-only. Root inside may then change the host when
    /// ns-process runs as root (see SECURITY.md).
    #[arg(long)]
    pub(crate) privileged: bool,

    /// Limit a resource of everything inside, the command and the init (repeatable), as
    /// podman: NAME is core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile,
    /// nproc, rss, rtprio, rttime, sigpending, stack or as; a limit is a number,
    /// `unlimited` or -1; HARD is SOFT when not given. Raising a hard limit needs
    /// CAP_SYS_RESOURCE on the host.
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]", value_parser = Ulimit::parse)]
    pub(crate) ulimit: Vec<Ulimit>,
    /// The system calls the command may make: `default` refuses what a container has no
    /// business calling (keyrings, kexec, modules, bpf, perf events, ptrace, mounts, new
    /// user namespaces, … with EPERM; see SECURITY.md), `unconfined` nothing, or PATH, a
    /// JSON profile: OCI's form, or Docker's and podman's own (podman's default is
    /// /usr/share/containers/seccomp.json), whose rules for some capabilities, architectures
    /// or kernels are judged against the command's. Default: `default`, or `unconfined`
    /// with --privileged.
    #[arg(long, value_name = "default|unconfined|PATH", value_parser = SeccompArg::parse)]
    pub(crate) seccomp: Option<SeccompArg>,

    /// Pass the caller's descriptors 3 to 3+N-1 on to the command, as runc does; every
    /// other descriptor above 2 is closed before the command runs.
    #[arg(long = "preserve-fds", value_name = "N", default_value_t = 0)]
    pub(crate) preserve_fds: u16,

    /// Map COUNT uids from INNER inside to OUTER outside (repeatable, as unshare(1)). By
    /// default root is you and uids 1-65536 the first of your range in /etc/subuid
    /// (through newuidmap), or only root when you have none; run by root, uids 0-65535
    /// are the same inside and out.
    #[arg(long = "map-users", value_name = "INNER:OUTER:COUNT", value_parser = crate::ids::parse_id_map)]
    pub(crate) map_users: Vec<reexec::IdMap>,

    /// Map COUNT gids from INNER inside to OUTER outside (repeatable); the default as for
    /// --map-users, with /etc/subgid and newgidmap.
    #[arg(long = "map-groups", value_name = "INNER:OUTER:COUNT", value_parser = crate::ids::parse_id_map)]
    pub(crate) map_groups: Vec<reexec::IdMap>,
    /// Run the command as this user and group inside, each a numeric id or a name
    /// looked up in /etc/passwd and /etc/group inside (the rootfs's own); GROUP defaults
    /// to the user's group in /etc/passwd, else 0. Only ids the user namespace maps can
    /// be used; a user other than 0 keeps no capability.
    #[arg(long, value_name = "USER[:GROUP]", value_parser = UserArg::parse)]
    pub(crate) user: Option<UserArg>,

    /// Start the command in this directory inside, an absolute path (default: / under
    /// --rootfs, else the caller's own).
    #[arg(long, short = 'w', value_name = "DIR")]
    pub(crate) workdir: Option<PathBuf>,

    // Limits through a cgroup (#13).
    /// Limit the memory of everything inside to SIZE (a number of bytes with b, k, m or g
    /// after it, as podman); past it the kernel kills a process inside (status 137).
    /// The limits need a cgroup ns-process may create: root's, or one delegated to you.
    #[arg(long, short = 'm', value_name = "SIZE", value_parser = crate::limits::Size::parse)]
    pub(crate) memory: Option<crate::limits::Size>,

    /// With --memory: memory plus swap in all, or -1 for unlimited swap (default: twice
    /// --memory, where the kernel accounts swap).
    #[arg(long = "memory-swap", value_name = "SIZE", allow_hyphen_values = true,
          value_parser = crate::limits::parse_swap)]
    pub(crate) memory_swap: Option<crate::limits::Swap>,

    /// At most N processes and threads inside, all together (a fork bomb stops there);
    /// -1 for no limit.
    #[arg(long = "pids-limit", value_name = "N", allow_hyphen_values = true,
          value_parser = crate::limits::parse_pids)]
    pub(crate) pids_limit: Option<i64>,

    /// At most N CPUs' worth of time for everything inside: 0.5 is 50 ms of each 100 ms.
    #[arg(long, value_name = "N", value_parser = crate::limits::parse_cpus)]
    pub(crate) cpus: Option<f64>,

    // What a bundle's config.json asks of the engine (#16): ns-runtime writes these.
    /// With --rootfs: mount on DST inside the rootfs, made there when missing, with the
    /// OCI runtime spec's mount options (repeatable): `type=bind,source=SRC,destination=DST`
    /// or `type=tmpfs,destination=DST`, then any of ro, rw, nosuid, nodev, noexec, bind,
    /// rbind, private, rprivate, relatime, noatime, strictatime and, for tmpfs, size=,
    /// mode=, uid=, gid=, nr_inodes=, comma-separated. DST is resolved inside the rootfs
    /// and may not go through a symbolic link.
    #[arg(long = "mount", value_name = "type=TYPE,…", value_parser = crate::mounts::MountArg::parse)]
    pub(crate) mount: Vec<crate::mounts::MountArg>,

    /// Set a kernel parameter of the command's own namespaces (repeatable), as podman:
    /// kernel.shm*, kernel.msg*, kernel.sem and fs.mqueue.* (IPC namespace), net.*
    /// (network namespace), kernel.hostname and kernel.domainname (UTS namespace). Any
    /// other would change the whole machine, and is refused.
    #[arg(long = "sysctl", value_name = "KEY=VALUE", value_parser = crate::sysctl::Sysctl::parse)]
    pub(crate) sysctl: Vec<crate::sysctl::Sysctl>,

    /// With --rootfs: the host's device node HOST (a character or block device) bound on
    /// DEST inside the rootfs (default: the same path), made there when missing
    /// (repeatable). A bind, not a new node: it works in a user namespace, and the node
    /// keeps the host's owner and mode.
    #[arg(long = "device", value_name = "HOST[:DEST]", value_parser = crate::mounts::DeviceArg::parse)]
    pub(crate) device: Vec<crate::mounts::DeviceArg>,

    /// Put the command in this supplementary group too (repeatable), a numeric gid the
    /// user namespace maps.
    #[arg(long = "group-add", value_name = "GID")]
    pub(crate) group_add: Vec<u32>,

    /// The command's file mode creation mask, in octal (as podman: default 0022).
    #[arg(long, value_name = "MASK", value_parser = parse_umask)]
    pub(crate) umask: Option<u32>,

    /// The command's OOM score adjustment, -1000 to 1000 (as podman); lowering it below
    /// ns-process's own needs CAP_SYS_RESOURCE on the host.
    #[arg(long = "oom-score-adj", value_name = "N", allow_hyphen_values = true,
          value_parser = clap::value_parser!(i32).range(-1000..=1000))]
    pub(crate) oom_score_adj: Option<i32>,

    /// `private`: a cgroup namespace of the command's own, rooted at its cgroup;
    /// `host` (the default): the caller's.
    #[arg(long, value_name = "MODE", value_enum, default_value_t = CgroupNs::Host)]
    pub(crate) cgroupns: CgroupNs,

    /// Set by ns-runtime: the command's environment is exactly the --env given (the OCI
    /// spec's process.env), nothing of ns-process's own added.
    #[arg(long, hide = true)]
    pub(crate) internal_exact_env: bool,

    /// Set by ns-runtime: the kernel paths masked and made read-only are exactly those of
    /// --internal-masked-path and --internal-readonly-path (config.json's maskedPaths and
    /// readonlyPaths), not ns-process's lists.
    #[arg(long, hide = true)]
    pub(crate) internal_own_kernel_paths: bool,

    /// Set by ns-runtime: a path under /proc or /sys to mask (repeatable).
    #[arg(long, hide = true, value_name = "PATH", value_parser = crate::mounts::kernel_path)]
    pub(crate) internal_masked_path: Vec<String>,

    /// Set by ns-runtime: a path under /proc or /sys to make read-only (repeatable).
    #[arg(long, hide = true, value_name = "PATH", value_parser = crate::mounts::kernel_path)]
    pub(crate) internal_readonly_path: Vec<String>,

    /// Set by ns-runtime: the command's seccomp profile as OCI JSON (config.json's
    /// linux.seccomp), instead of --seccomp.
    #[arg(long, hide = true, value_name = "JSON")]
    pub(crate) internal_seccomp_json: Option<String>,

    /// Set by ns-runtime: process.terminal, a pty made for the command inside, its master
    /// handed to the runtime's console socket.
    #[arg(long, hide = true)]
    pub(crate) internal_terminal: bool,

    /// Set by ns-runtime (config.json's mount of type `cgroup`): at DEST inside the
    /// rootfs, a tmpfs holding the command's own cgroup of each hierarchy the host
    /// mounts, read-only unless `:rw`.
    #[arg(long, hide = true, value_name = "DEST[:ro|rw]",
          value_parser = crate::mounts::CgroupMountArg::parse)]
    pub(crate) internal_cgroup_mount: Option<crate::mounts::CgroupMountArg>,

    /// Print each setup step as it happens.
    #[arg(short, long)]
    pub(crate) verbose: bool,

    /// The command and its arguments (default: /bin/sh).
    #[arg(last = true, value_name = "COMMAND")]
    pub(crate) command: Vec<OsString>,
}

/// A namespace that `--share` can leave out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Shareable {
    /// The mount namespace (then no private /proc and no --rootfs).
    Mount,
    /// The UTS namespace (then no --hostname).
    Uts,
    /// The IPC namespace.
    Ipc,
    /// The PID namespace (then no private /proc).
    Pid,
    /// The network namespace (the same as --net host).
    Net,
    /// The user namespace: needs root, and nothing is mapped.
    User,
}

impl Shareable {
    /// The namespace of this kind.
    fn namespace(self) -> reexec::Namespaces {
        use reexec::Namespaces;
        match self {
            Shareable::Mount => Namespaces::MOUNT,
            Shareable::Uts => Namespaces::UTS,
            Shareable::Ipc => Namespaces::IPC,
            Shareable::Pid => Namespaces::PID,
            Shareable::Net => Namespaces::NET,
            Shareable::User => Namespaces::USER,
        }
    }
}

/// `--join NS=PATH`: an existing namespace the init enters instead of a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JoinArg {
    /// One namespace.
    pub(crate) kind: reexec::Namespaces,
    /// Its name as given: user, mnt, …
    pub(crate) name: &'static str,
    pub(crate) path: PathBuf,
}

/// The namespaces `--join` takes, by their names under /proc/PID/ns. Not pid: joining one
/// moves only the joiner's later children, never the init; not time: the kernel refuses
/// to let reexec's child, which shares its parent's memory until execve, enter one.
const JOINABLE: [(&str, reexec::Namespaces); 6] = [
    ("user", reexec::Namespaces::USER),
    ("mnt", reexec::Namespaces::MOUNT),
    ("uts", reexec::Namespaces::UTS),
    ("ipc", reexec::Namespaces::IPC),
    ("net", reexec::Namespaces::NET),
    ("cgroup", reexec::Namespaces::CGROUP),
];

impl JoinArg {
    fn parse(text: &str) -> Result<JoinArg, String> {
        let (name, path) = text.split_once('=').ok_or_else(|| {
            format!("{text:?} has no '='; write NS=PATH, e.g. net=/proc/PID/ns/net")
        })?;
        let known = || {
            JOINABLE
                .iter()
                .map(|(name, _)| *name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let Some(&(name, kind)) = JOINABLE.iter().find(|(known, _)| *known == name) else {
            let why = match name {
                "pid" => "joining a PID namespace would move only the init's children into it, \
                          not the init; use --share pid to keep yours"
                    .to_owned(),
                "time" => "the kernel lets no process that shares memory enter a time namespace, \
                           as reexec's child does until it executes the init"
                    .to_owned(),
                _ => format!("unknown namespace {name:?}"),
            };
            return Err(format!("{why}; --join takes {}", known()));
        };
        if path.is_empty() {
            return Err(format!(
                "--join {name}= names no file; give one such as /proc/PID/ns/{name}"
            ));
        }
        Ok(JoinArg {
            kind,
            name,
            path: path.into(),
        })
    }

    /// The namespace file, open, checked to be a namespace of this kind.
    fn open(&self) -> Result<(reexec::Namespaces, std::fs::File), String> {
        let given = format!("--join {}={}", self.name, self.path.display());
        let file = std::fs::File::open(&self.path).map_err(|error| {
            format!(
                "{given}: {error}; give a namespace file such as /proc/PID/ns/{}",
                self.name
            )
        })?;
        match reexec::Namespaces::of_file(&file) {
            Ok(kind) if kind == self.kind => Ok((self.kind, file)),
            Ok(kind) => Err(format!(
                "{given}: that file is a namespace of another kind ({kind}); give the {} one",
                self.name
            )),
            Err(_) => Err(format!(
                "{given}: not a namespace file; give /proc/PID/ns/{} or a bind mount of one",
                self.name
            )),
        }
    }
}

/// `--join`'s conflicts with the other options, checked first: a joined namespace is no
/// more ns-process's own than a kept one, and the messages name --join.
fn check_joins(options: &Options) -> Result<(), String> {
    let mut seen = reexec::Namespaces::NONE;
    for join in &options.join {
        if seen.contains(join.kind) {
            return Err(format!(
                "--join {} is given twice: give each namespace once",
                join.name
            ));
        }
        seen |= join.kind;
        let kept = Shareable::value_variants()
            .iter()
            .any(|&kind| kind.namespace() == join.kind && options.share.contains(&kind));
        if kept {
            return Err(format!(
                "--join {0} and --share {0}: the command is in one namespace of each kind; \
                 drop one",
                join.name
            ));
        }
    }
    let joins = |kind| seen.contains(kind);
    use reexec::Namespaces;
    let conflict = [
        (
            joins(Namespaces::NET) && options.net == NetMode::Host,
            "net",
            "--net host keeps the caller's network namespace",
        ),
        (
            joins(Namespaces::NET) && options.net == NetMode::Bridge,
            "net",
            "--net bridge needs a network namespace of its own",
        ),
        (
            joins(Namespaces::UTS) && options.hostname_given(),
            "uts",
            "--hostname needs a UTS namespace of its own",
        ),
        (
            joins(Namespaces::USER)
                && !(options.map_users.is_empty() && options.map_groups.is_empty()),
            "user",
            "--map-users and --map-groups map ids into a new user namespace",
        ),
        (
            joins(Namespaces::MOUNT) && options.rootfs.is_some(),
            "mnt",
            "--rootfs needs a mount namespace of its own",
        ),
    ];
    if let Some((_, name, why)) = conflict.iter().find(|(conflicts, _, _)| *conflicts) {
        return Err(format!("{why}; drop --join {name}"));
    }
    if joins(Namespaces::USER) && !options.share.contains(&Shareable::Pid) {
        return Err(
            "--join user: a PID namespace ns-process creates belongs to the caller's user \
             namespace, not the joined one, so nobody inside may mount its /proc (and without \
             privilege it can't be created at all); add --share pid"
                .into(),
        );
    }
    let others = seen.without(Namespaces::USER);
    let new_user_namespace = !joins(Namespaces::USER) && !options.share.contains(&Shareable::User);
    if !others.is_empty() && new_user_namespace {
        return Err(format!(
            "--join of the {others} namespace: the user namespace ns-process creates owns no \
             existing namespace, so the kernel would refuse to enter it from there; join the \
             user namespace that owns it too (--join user=/proc/PID/ns/user), or keep yours \
             (--share user, as root)"
        ));
    }
    Ok(())
}

/// How the command is networked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum NetMode {
    /// A new network namespace with only the loopback device, up.
    None,
    /// The caller's network namespace.
    Host,
    /// A new network namespace joined to a bridge on the host by a veth pair.
    Bridge,
}

/// `--cgroupns`: whether the command gets a cgroup namespace of its own (#16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CgroupNs {
    /// The caller's cgroup namespace.
    Host,
    /// A new cgroup namespace.
    Private,
}

/// `--umask`: an octal mask of the permission bits, as umask(1) takes it (#16).
fn parse_umask(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|mask| *mask <= 0o777)
        .ok_or_else(|| format!("{text:?} is not an octal mask from 0 to 0777, e.g. 0022"))
}

/// The series' bridge and subnet (tag 5.0, netsetgo).
pub(crate) const DEFAULT_BRIDGE: &str = "brg0";
pub(crate) const DEFAULT_SUBNET: &str = "10.10.10.0/24";

fn parse_env(pair: &str) -> Result<(String, String), String> {
    let (key, value) = pair
        .split_once('=')
        .ok_or_else(|| format!("{pair:?} has no '='; write KEY=VALUE"))?;
    if key.is_empty() {
        return Err(format!("{pair:?} has an empty name; write KEY=VALUE"));
    }
    if pair.contains('\0') {
        return Err(format!("{pair:?} contains a NUL byte"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// One of the internal options ns-process (or ns-runtime) sets for its init. A
/// re-executed init gets it as its flag, among its arguments; a copy of ns-process
/// (`reexec::Command::without_exec`) gets the value itself, set on the options
/// ns-process parsed already, and parses nothing again (#14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InitSetting {
    OuterNamespaces(String),
    TakeTerminal,
    StartedFd(i32),
    SeccompFd(i32),
    ReadyFd(i32),
    StartFifoFd(i32),
    RuntimeBundle(PathBuf),
    RuntimeId(String),
    ConsoleFd(i32),
    ConsoleSize(u16, u16),
}

impl InitSetting {
    /// The setting as the init's command line gives it.
    pub(crate) fn flag(&self) -> OsString {
        let (name, value): (&str, OsString) = match self {
            InitSetting::OuterNamespaces(outer) => ("outer-namespaces", outer.into()),
            InitSetting::TakeTerminal => return "--internal-take-terminal".into(),
            InitSetting::StartedFd(fd) => ("started-fd", fd.to_string().into()),
            InitSetting::SeccompFd(fd) => ("seccomp-fd", fd.to_string().into()),
            InitSetting::ReadyFd(fd) => ("ready-fd", fd.to_string().into()),
            InitSetting::StartFifoFd(fd) => ("start-fifo-fd", fd.to_string().into()),
            InitSetting::RuntimeBundle(dir) => ("runtime-bundle", dir.into()),
            InitSetting::RuntimeId(id) => ("runtime-id", id.into()),
            InitSetting::ConsoleFd(fd) => ("console-fd", fd.to_string().into()),
            InitSetting::ConsoleSize(rows, columns) => {
                ("console-size", format!("{rows}x{columns}").into())
            }
        };
        let mut flag = OsString::from(format!("--internal-{name}="));
        flag.push(value);
        flag
    }

    /// Sets it on `options`, as parsing [`flag`](Self::flag) with them would.
    pub(crate) fn apply(self, options: &mut Options) {
        match self {
            InitSetting::OuterNamespaces(outer) => options.internal_outer_namespaces = Some(outer),
            InitSetting::TakeTerminal => options.internal_take_terminal = true,
            InitSetting::StartedFd(fd) => options.internal_started_fd = Some(fd),
            InitSetting::SeccompFd(fd) => options.internal_seccomp_fd = Some(fd),
            InitSetting::ReadyFd(fd) => options.internal_ready_fd = Some(fd),
            InitSetting::StartFifoFd(fd) => options.internal_start_fifo_fd = Some(fd),
            InitSetting::RuntimeBundle(dir) => options.internal_runtime_bundle = Some(dir),
            InitSetting::RuntimeId(id) => options.internal_runtime_id = Some(id),
            InitSetting::ConsoleFd(fd) => options.internal_console_fd = Some(fd),
            InitSetting::ConsoleSize(rows, columns) => {
                options.internal_console_size = Some((rows, columns))
            }
        }
    }
}

impl Options {
    /// Whether the namespace of this kind is not ns-process's own: the caller's kept, or
    /// another joined (`--join`). The init sets up neither.
    pub(crate) fn shares(&self, kind: Shareable) -> bool {
        self.share.contains(&kind)
            || (kind == Shareable::Net && self.net == NetMode::Host)
            || self.joined().contains(kind.namespace())
    }

    /// The namespaces `--join` names.
    pub(crate) fn joined(&self) -> reexec::Namespaces {
        self.join
            .iter()
            .fold(reexec::Namespaces::NONE, |set, join| set | join.kind)
    }

    /// Opens each `--join` PATH and checks that it is a namespace file of its kind: the
    /// namespaces for `reexec::Command::join`.
    pub(crate) fn open_joins(&self) -> Result<Vec<(reexec::Namespaces, std::fs::File)>, String> {
        self.join.iter().map(JoinArg::open).collect()
    }

    /// The namespaces to create.
    pub(crate) fn namespaces(&self) -> reexec::Namespaces {
        let set = Shareable::value_variants()
            .iter()
            .copied()
            .filter(|&kind| !self.shares(kind))
            .fold(reexec::Namespaces::NONE, |set, kind| set | kind.namespace());
        // --cgroupns (#16).
        if self.cgroupns == CgroupNs::Private {
            set | reexec::Namespaces::CGROUP
        } else {
            set
        }
    }

    /// The capabilities the command keeps.
    pub(crate) fn capabilities(&self) -> reexec::CapabilitySet {
        crate::capabilities::for_command(self.privileged, &self.cap_add, &self.cap_drop)
    }

    /// The seccomp filter the command runs under, compiled; `None` for none. Compiled
    /// once, however often asked (#14).
    pub(crate) fn seccomp_program(&self) -> Result<Option<reexec::SeccompProgram>, String> {
        self.compiled_seccomp
            .get_or_init(|| {
                // config.json's linux.seccomp (#16).
                if let Some(json) = &self.internal_seccomp_json {
                    return crate::seccomp::program_from_json(json, "linux.seccomp").map(Some);
                }
                crate::seccomp::program(self.seccomp.as_ref(), self.privileged, self.capabilities())
            })
            .clone()
    }

    /// The command's seccomp filter if it was compiled already, and compiles nothing: in
    /// an init that is a copy of ns-process (#14), what ns-process compiled before the
    /// clone; in a re-executed one, nothing, which must then be handed over.
    pub(crate) fn compiled_seccomp_program(&self) -> Option<reexec::SeccompProgram> {
        self.compiled_seccomp.get()?.clone().ok()?
    }

    /// Whether the command runs under a seccomp filter, known without compiling it: the
    /// init refuses to start a command that should have one when it was handed none.
    pub(crate) fn wants_seccomp(&self) -> bool {
        self.internal_seccomp_json.is_some()
            || match &self.seccomp {
                None => !self.privileged,
                Some(arg) => !matches!(arg, crate::seccomp::SeccompArg::Unconfined),
            }
    }

    /// Whether the init masks the kernel's paths: not when asked not to, and not in the
    /// caller's own mount namespace, where a mount would change the caller's view.
    pub(crate) fn protects_kernel_paths(&self) -> bool {
        !self.privileged && !self.shares(Shareable::Mount)
    }

    /// Whether the user asked for a hostname (and did not just get the default).
    fn hostname_given(&self) -> bool {
        self.hostname != DEFAULT_HOSTNAME
    }

    /// Every check that can be made before anything is created; the message says what is
    /// wrong and what to do.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.internal_take_terminal
            || self.internal_outer_namespaces.is_some()
            || self.internal_started_fd.is_some()
            || self.internal_seccomp_fd.is_some()
        {
            return Err("--internal-* options are for ns-process's own init".into());
        }
        if self.internal_ready_fd.is_some() || self.internal_start_fifo_fd.is_some() {
            return Err("--internal-* options are for ns-process's own init".into());
        }
        check_joins(self)?;
        check_hostname(&self.hostname)?;
        // Limits through a cgroup (#13).
        crate::limits::validate(self)?;
        check_preserved_fds(self.preserve_fds)?;
        // The console socket (#16).
        crate::runtime::console::check_handed(self.internal_console_fd, self.preserve_fds)?;
        check_bridge_name(&self.bridge)?;
        // What a bundle's config.json asks of the engine (#16).
        crate::mounts::validate(self)?;
        crate::sysctl::validate(self)?;
        if self.cgroupns == CgroupNs::Private && self.joined().contains(reexec::Namespaces::CGROUP)
        {
            return Err(
                "--cgroupns private and --join cgroup: the command is in one cgroup namespace; \
                 drop one"
                    .into(),
            );
        }
        if self.internal_seccomp_json.is_some() {
            self.seccomp_program()?;
        }
        // A bad profile file is refused here, before anything is created; the program
        // compiled is kept, and the init gets that one (#14): the file is read once. The
        // built-in profile can't be bad: it is compiled when the init is started.
        if let Some(SeccompArg::Profile(_)) = &self.seccomp {
            self.seccomp_program()?;
        }
        if let Some(workdir) = &self.workdir {
            if !workdir.is_absolute() {
                return Err(format!(
                    "--workdir {}: give an absolute path inside, such as /root",
                    workdir.display()
                ));
            }
        }
        if self.net == NetMode::Bridge && self.share.contains(&Shareable::Net) {
            return Err(
                "--net bridge needs a network namespace of its own; drop --share net".into(),
            );
        }
        if self.shares(Shareable::User)
            && !(self.map_users.is_empty() && self.map_groups.is_empty())
        {
            return Err(
                "--map-users and --map-groups map ids into a new user namespace; drop --share user"
                    .into(),
            );
        }
        if self.shares(Shareable::Uts) && self.hostname_given() {
            return Err("--hostname needs a UTS namespace of its own; drop --share uts".into());
        }
        if self.tmp_on_rootfs && self.rootfs.is_none() {
            return Err(
                "--tmp-on-rootfs keeps the /tmp of a --rootfs; without --rootfs /tmp is \
                 always the caller's: add --rootfs DIR or drop --tmp-on-rootfs"
                    .into(),
            );
        }
        if self.rootfs.is_none() {
            let given = [
                (!self.bind.is_empty(), "--bind"),
                (!self.tmpfs.is_empty(), "--tmpfs"),
                (self.read_only, "--read-only"),
            ];
            if let Some((_, option)) = given.iter().find(|(given, _)| *given) {
                return Err(format!(
                    "{option} changes the filesystem of a --rootfs; add --rootfs DIR \
                     (without one the command sees the caller's own)"
                ));
            }
        }
        for bind in &self.bind {
            bind.check_source()?;
        }
        if let Some(rootfs) = &self.rootfs {
            if self.shares(Shareable::Mount) {
                return Err(
                    "--rootfs needs a mount namespace of its own; drop --share mount".into(),
                );
            }
            check_rootfs(rootfs, self.command.is_empty())?;
        }
        Ok(())
    }
}

/// A hostname the kernel takes and resolvers accept: 1 to 64 bytes of letters, digits,
/// '-' and '.', in labels that neither start nor end with '-'.
fn check_hostname(name: &str) -> Result<(), String> {
    let invalid = |why: &str| Err(format!("invalid --hostname {name:?}: {why}"));
    if name.is_empty() {
        return invalid("it is empty");
    }
    if name.len() > 64 {
        return invalid("it is longer than 64 bytes, the kernel's limit");
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return invalid(&format!(
            "{bad:?} is not allowed; use letters, digits, '-' and '.'"
        ));
    }
    if name
        .split('.')
        .any(|label| label.is_empty() || label.starts_with('-') || label.ends_with('-'))
    {
        return invalid("each dot-separated part must be non-empty and not start or end with '-'");
    }
    Ok(())
}

/// Every descriptor `--preserve-fds` names must be open: a gap is a mistake in the
/// caller's redirections, better said now than found by the command.
fn check_preserved_fds(count: u16) -> Result<(), String> {
    for fd in preserved_fds(count) {
        if !crate::sys::is_open(fd) {
            return Err(format!(
                "--preserve-fds {count}: descriptor {fd} is not open; open descriptors 3 to {} \
                 for ns-process (e.g. `3<file`), or pass a smaller number",
                2 + i32::from(count)
            ));
        }
    }
    Ok(())
}

/// The descriptors `--preserve-fds count` passes on: 3 to 3+count-1.
pub(crate) fn preserved_fds(count: u16) -> std::ops::Range<i32> {
    3..3 + i32::from(count)
}

fn check_bridge_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= MAX_BRIDGE_NAME
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid --bridge {name:?}: use 1 to {MAX_BRIDGE_NAME} letters, digits or '_' \
             (the veth pairs are named after it, within the kernel's 15 bytes)"
        ))
    }
}

/// A `--bind SRC:DST[:ro]`.
#[derive(Debug, Clone)]
pub(crate) struct Bind {
    pub(crate) source: PathBuf,
    /// Absolute, without `.` or `..`.
    pub(crate) target: PathBuf,
    pub(crate) read_only: bool,
}

impl Bind {
    fn parse(text: &str) -> Result<Bind, String> {
        let invalid = |why: &str| {
            format!(
                "invalid --bind {text:?}: {why}; write SRC:DST or SRC:DST:ro (paths with ':' \
                 can't be bound)"
            )
        };
        let parts: Vec<&str> = text.split(':').collect();
        let (source, target, read_only) = match parts[..] {
            [source, target] => (source, target, false),
            [source, target, "ro"] => (source, target, true),
            [source, target, "rw"] => (source, target, false),
            [_, _, mode] => return Err(invalid(&format!("{mode:?} is neither ro nor rw"))),
            _ => return Err(invalid("it needs a source and a destination")),
        };
        if source.is_empty() {
            return Err(invalid("the source is empty"));
        }
        let target = inside_path(target).map_err(|why| invalid(&why))?;
        Ok(Bind {
            source: source.into(),
            target,
            read_only,
        })
    }

    /// The source must exist: said now, before anything is created.
    fn check_source(&self) -> Result<(), String> {
        std::fs::metadata(&self.source).map(drop).map_err(|error| {
            format!(
                "--bind {}: {error}; the source is a file or directory of yours, bound \
                 into the rootfs",
                self.source.display()
            )
        })
    }
}

/// A `--tmpfs DST[:size=N]`.
#[derive(Debug, Clone)]
pub(crate) struct Tmpfs {
    /// Absolute, without `.` or `..`.
    pub(crate) target: PathBuf,
    /// tmpfs's `size=` option, checked.
    pub(crate) size: Option<String>,
}

impl Tmpfs {
    fn parse(text: &str) -> Result<Tmpfs, String> {
        let invalid =
            |why: &str| format!("invalid --tmpfs {text:?}: {why}; write DST or DST:size=N");
        let (target, size) = match text.split_once(':') {
            None => (text, None),
            Some((target, option)) => {
                let size = option
                    .strip_prefix("size=")
                    .ok_or_else(|| invalid(&format!("{option:?} is not size=N")))?;
                let digits = size.trim_end_matches(['k', 'm', 'g', 'K', 'M', 'G', '%']);
                let valid = !digits.is_empty()
                    && digits.bytes().all(|byte| byte.is_ascii_digit())
                    && size.len() - digits.len() <= 1;
                if !valid {
                    return Err(invalid(&format!(
                        "size {size:?} is not a number of bytes, with k, m, g or % after it"
                    )));
                }
                (target, Some(size.to_owned()))
            }
        };
        let target = inside_path(target).map_err(|why| invalid(&why))?;
        Ok(Tmpfs { target, size })
    }
}

/// A destination inside the rootfs: absolute, below `/`, with no `.` or `..` (it is
/// resolved inside the rootfs whatever it says, but a `..` is a mistake to say now).
pub(crate) fn inside_path(text: &str) -> Result<PathBuf, String> {
    let path = Path::new(text);
    if !path.is_absolute() {
        return Err(format!(
            "the destination {text:?} is not an absolute path inside the rootfs"
        ));
    }
    if text.contains('\0') {
        return Err("the destination contains a NUL byte".into());
    }
    if text.split('/').any(|part| part == "." || part == "..") {
        return Err(format!("the destination {text:?} contains . or .."));
    }
    if path.components().count() < 2 {
        return Err("the destination is the rootfs's / itself".into());
    }
    Ok(path.to_owned())
}

fn how_to_build_rootfs(dir: &Path) -> String {
    format!("build one with: scripts/make-rootfs {}", dir.display())
}

fn check_rootfs(rootfs: &Path, needs_shell: bool) -> Result<(), String> {
    let metadata = std::fs::metadata(rootfs).map_err(|error| {
        format!(
            "--rootfs {}: {error}; {}",
            rootfs.display(),
            how_to_build_rootfs(rootfs)
        )
    })?;
    if !metadata.is_dir() {
        return Err(format!(
            "--rootfs {} is not a directory; {}",
            rootfs.display(),
            how_to_build_rootfs(rootfs)
        ));
    }
    // A symlink such as bin/sh -> /bin/busybox points into the rootfs once pivoted, so
    // only its presence counts here.
    if needs_shell && std::fs::symlink_metadata(rootfs.join("bin/sh")).is_err() {
        return Err(format!(
            "--rootfs {} has no /bin/sh to run; give a command after `--`, or {}",
            rootfs.display(),
            how_to_build_rootfs(rootfs)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_init_setting_set_on_the_options_is_its_flag_parsed() {
        let every_setting = [
            InitSetting::OuterNamespaces("user:1,mnt:2".into()),
            InitSetting::TakeTerminal,
            InitSetting::StartedFd(7),
            InitSetting::SeccompFd(9),
            InitSetting::ReadyFd(10),
            InitSetting::StartFifoFd(11),
            InitSetting::RuntimeBundle("/run/bundle dir".into()),
            InitSetting::RuntimeId("c1".into()),
            InitSetting::ConsoleFd(12),
            InitSetting::ConsoleSize(24, 80),
        ];
        let command_lines: [&[&str]; 3] = [
            &["--", "true"],
            &[
                "--hostname",
                "box",
                "--net",
                "none",
                "-e",
                "A=1",
                "--",
                "sh",
                "-c",
                "x",
            ],
            &[
                "--internal-exact-env",
                "--rootfs",
                "/r",
                "--cap-drop",
                "ALL",
                "--",
                "id",
            ],
        ];
        for user_args in command_lines {
            let parsed = |flags: &[OsString]| {
                let args = std::iter::once(OsString::from("nsInitialisation"))
                    .chain(flags.iter().cloned())
                    .chain(user_args.iter().map(OsString::from));
                Options::try_parse_from(args).unwrap()
            };
            let flags: Vec<OsString> = every_setting.iter().map(InitSetting::flag).collect();
            let mut applied = parsed(&[]);
            for setting in every_setting.clone() {
                setting.apply(&mut applied);
            }
            assert_eq!(
                format!("{applied:?}"),
                format!("{:?}", parsed(&flags)),
                "{user_args:?}"
            );
        }
    }

    #[test]
    fn hostnames() {
        for good in ["ns-process", "a", "box-1.example", &"x".repeat(64)] {
            assert!(check_hostname(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-lead",
            "trail-",
            "a..b",
            "under_score",
            "sp ace",
            &"x".repeat(65),
        ] {
            assert!(check_hostname(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn binds_and_tmpfs() {
        let bind = Bind::parse("/src:/dst/x:ro").unwrap();
        assert_eq!(
            (bind.source, bind.target, bind.read_only),
            ("/src".into(), "/dst/x".into(), true)
        );
        assert!(!Bind::parse("src:/dst").unwrap().read_only);
        for bad in [
            "/src",
            "/src:",
            ":/dst",
            "/src:dst",
            "/src:/a/../b",
            "/src:/",
            "/a:/b:rx",
            "/a:/b:ro:x",
        ] {
            assert!(Bind::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Tmpfs::parse("/t:size=10m").unwrap().size.as_deref(),
            Some("10m")
        );
        assert_eq!(Tmpfs::parse("/t").unwrap().size, None);
        for bad in [
            "t",
            "/t:size=",
            "/t:size=m",
            "/t:size=1mm",
            "/t:mode=1777",
            "/",
        ] {
            assert!(Tmpfs::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_pairs() {
        assert_eq!(parse_env("A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert!(parse_env("novalue").is_err());
        assert!(parse_env("=x").is_err());
    }

    #[test]
    fn whether_a_filter_is_wanted_is_known_without_compiling_it() {
        // The init refuses a command whose options want a filter it was not handed: the
        // two answers must agree for every way of asking (#14).
        for args in [
            &[][..],
            &["--privileged"],
            &["--seccomp", "default"],
            &["--privileged", "--seccomp", "default"],
            &["--seccomp", "unconfined"],
            &["--cap-add", "SYS_ADMIN"],
            &[
                "--internal-seccomp-json",
                r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#,
            ],
        ] {
            let options = Options::parse_from(["ns-process"].iter().chain(args));
            let compiled = options.seccomp_program().unwrap();
            assert_eq!(options.wants_seccomp(), compiled.is_some(), "{args:?}");
            // Asked again, the same program: compiled once.
            let again = options.seccomp_program().unwrap();
            assert_eq!(
                compiled.map(|p| p.instructions().len()),
                again.map(|p| p.instructions().len())
            );
        }
    }

    #[test]
    fn shared_namespaces_are_left_out() {
        let options = Options::parse_from(["ns-process", "--share", "ipc", "--net", "host"]);
        let set = options.namespaces();
        assert!(!set.contains(reexec::Namespaces::IPC) && !set.contains(reexec::Namespaces::NET));
        assert!(set.contains(reexec::Namespaces::PID));
    }

    #[test]
    fn joined_namespaces_are_neither_created_nor_set_up() {
        let options = Options::parse_from([
            "ns-process",
            "--join",
            "user=/proc/1/ns/user",
            "--join",
            "net=/proc/1/ns/net",
            "--share",
            "pid",
        ]);
        let set = options.namespaces();
        assert!(!set.contains(reexec::Namespaces::USER) && !set.contains(reexec::Namespaces::NET));
        assert!(set.contains(reexec::Namespaces::MOUNT));
        assert!(options.shares(Shareable::Net) && options.shares(Shareable::User));
        assert_eq!(
            options.joined(),
            reexec::Namespaces::USER | reexec::Namespaces::NET
        );
        assert!(options.validate().is_ok());
    }

    fn is_valid_hostname(name: &str) -> bool {
        (1..=64).contains(&name.len())
            && name.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
            })
    }

    fn token() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            Just("--".to_owned()),
            Just("--hostname".to_owned()),
            Just("--rootfs".to_owned()),
            Just("--share".to_owned()),
            Just("--net".to_owned()),
            Just("--bridge".to_owned()),
            Just("--subnet".to_owned()),
            Just("--env".to_owned()),
            Just("-v".to_owned()),
            Just("--cap-add".to_owned()),
            Just("--cap-drop".to_owned()),
            Just("--privileged".to_owned()),
            Just("--preserve-fds".to_owned()),
            Just("--ulimit".to_owned()),
            Just("nofile=1:2".to_owned()),
            Just("--map-users".to_owned()),
            Just("--map-groups".to_owned()),
            Just("0:1000:1".to_owned()),
            Just("--tmp-on-rootfs".to_owned()),
            Just("--bind".to_owned()),
            Just("--tmpfs".to_owned()),
            Just("--read-only".to_owned()),
            Just("/tmp:/mnt:ro".to_owned()),
            Just("/x:size=1m".to_owned()),
            Just("--user".to_owned()),
            Just("--join".to_owned()),
            Just("net=/proc/self/ns/net".to_owned()),
            Just("user=/proc/self/ns/user".to_owned()),
            Just("--workdir".to_owned()),
            Just("SYS_ADMIN".to_owned()),
            Just("bridge".to_owned()),
            Just("net".to_owned()),
            // Limits through a cgroup (#13).
            Just("--memory".to_owned()),
            Just("--memory-swap".to_owned()),
            Just("--pids-limit".to_owned()),
            Just("--cpus".to_owned()),
            Just("64m".to_owned()),
            Just("-1".to_owned()),
            // What a bundle's config.json asks of the engine (#16).
            Just("--mount".to_owned()),
            Just("type=tmpfs,destination=/t,size=1m".to_owned()),
            Just("type=bind,source=/tmp,destination=/m,rbind,ro".to_owned()),
            Just("--sysctl".to_owned()),
            Just("net.ipv4.ip_forward=1".to_owned()),
            Just("--device".to_owned()),
            Just("/dev/null".to_owned()),
            Just("--group-add".to_owned()),
            Just("--umask".to_owned()),
            Just("--oom-score-adj".to_owned()),
            Just("--cgroupns".to_owned()),
            Just("private".to_owned()),
            Just("--internal-cgroup-mount".to_owned()),
            Just("/sys/fs/cgroup:ro".to_owned()),
            "[a-z0-9./=_-]{0,12}",
            "\\PC{0,16}",
        ]
    }

    proptest::proptest! {
        #[test]
        fn hostnames_are_accepted_exactly_when_valid(name in "[a-z.-]{0,6}|\\PC{0,70}") {
            proptest::prop_assert_eq!(check_hostname(&name).is_ok(), is_valid_hostname(&name), "{:?}", name);
        }

        #[test]
        fn any_command_line_is_parsed_and_checked_without_panicking(
            args in proptest::collection::vec(token(), 0..8)
        ) {
            if let Ok(options) = Options::try_parse_from(std::iter::once("ns-process".to_owned()).chain(args)) {
                let _ = options.validate();
                let _ = options.namespaces();
            }
        }
    }
}
