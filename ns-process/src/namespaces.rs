//! Where the init may run: only in the namespaces ns-process made for it.
//!
//! The init is found by its `argv[0]`, so anyone can start it by hand
//! (`exec -a nsInitialisation ns-process --hostname x`). It would then set the hostname,
//! mount and pivot in the caller's own namespaces. So ns-process tells its init which
//! namespaces it is itself in (their inode numbers, an internal option its own command
//! line refuses), and before the init changes anything it checks that it is in none of
//! them. It can't ask /proc instead: from inside a new user namespace, its parent's
//! /proc/PID/ns is closed to it (ptrace access rules).

use reexec::Namespaces;

use crate::cli::Options;

/// What a refusal tells the person who started the init by hand.
const HOW_TO: &str = "nsInitialisation is ns-process's own init, started by ns-process in the \
                      namespaces it creates; run ns-process instead";

/// The namespaces the init sets up, by their names under /proc/PID/ns.
const KINDS: [(Namespaces, &str); 6] = [
    (Namespaces::USER, "user"),
    (Namespaces::MOUNT, "mnt"),
    (Namespaces::UTS, "uts"),
    (Namespaces::IPC, "ipc"),
    (Namespaces::PID, "pid"),
    (Namespaces::NET, "net"),
];

/// The namespaces this process is in, as ns-process passes them to its init.
pub(crate) fn outer() -> Result<String, String> {
    let mut outer = Vec::new();
    for (_, name) in KINDS {
        outer.push(format!("{name}:{}", namespace_inode(name)?));
    }
    Ok(outer.join(","))
}

/// Refuses unless this process is PID 1 of a new PID namespace (where it should be one)
/// and in none of the `outer` namespaces of a kind it was asked to create.
pub(crate) fn check_made_for(options: &Options) -> Result<(), String> {
    let Some(outer) = &options.internal_outer_namespaces else {
        return Err(format!(
            "init: refusing to run without ns-process: {HOW_TO}"
        ));
    };
    let expected = options.namespaces();
    if expected.contains(Namespaces::PID) && std::process::id() != 1 {
        return Err(format!(
            "init: refusing to run as PID {} instead of PID 1 of a new PID namespace: {HOW_TO}",
            std::process::id()
        ));
    }
    for (kind, name) in KINDS {
        if !expected.contains(kind) {
            continue;
        }
        let ours = namespace_inode(name)?;
        let outside = outer
            .split(',')
            .find_map(|pair| {
                pair.strip_prefix(name)?
                    .strip_prefix(':')?
                    .parse::<u64>()
                    .ok()
            })
            .ok_or_else(|| format!("init: ns-process did not say its {name} namespace"))?;
        if ours == outside {
            return Err(format!(
                "init: refusing to set up the {name} namespace ns-process itself is in: {HOW_TO}"
            ));
        }
    }
    Ok(())
}

/// The inode number of this process's namespace `name`, as its /proc link names it
/// (`mnt:[4026531841]`): reading the link costs half a stat of it, which makes the
/// namespace's file to look it up (#14: both ns-process and its init ask six times).
fn namespace_inode(name: &str) -> Result<u64, String> {
    let path = format!("/proc/self/ns/{name}");
    let link = std::fs::read_link(&path).map_err(|error| format!("reading {path}: {error}"))?;
    link.to_str()
        .and_then(|link| {
            link.strip_prefix(name)?
                .strip_prefix(":[")?
                .strip_suffix(']')
        })
        .and_then(|number| number.parse().ok())
        .ok_or_else(|| format!("reading {path}: {link:?} is not NAME:[INODE]"))
}
