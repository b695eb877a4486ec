//! Turning a refusal from the kernel into the setting a user should look at.

use std::io;

use crate::error::Step;
use crate::namespaces::Namespaces;

fn sysctl(path: &str) -> Option<i64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Why clone(2) with `namespaces` may have failed with `error`, read off this machine.
pub(crate) fn namespace_refusal(namespaces: Namespaces, error: &io::Error) -> String {
    let errno = error.raw_os_error().unwrap_or(0);
    let wants_user = namespaces.contains(Namespaces::USER);
    if wants_user {
        if sysctl("/proc/sys/user/max_user_namespaces") == Some(0) {
            return "user namespaces are disabled: the sysctl user.max_user_namespaces is 0 \
                    (set it above 0 to enable them)"
                .into();
        }
        if !is_root() && sysctl("/proc/sys/kernel/unprivileged_userns_clone") == Some(0) {
            return "unprivileged user namespaces are disabled: the sysctl \
                    kernel.unprivileged_userns_clone is 0 (set it to 1, or run as root)"
                .into();
        }
        if !is_root() && sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == Some(1)
        {
            return "AppArmor restricts unprivileged user namespaces: the sysctl \
                    kernel.apparmor_restrict_unprivileged_userns is 1 (give this binary an \
                    AppArmor profile with `userns,`, or set the sysctl to 0)"
                .into();
        }
    }
    match errno {
        libc::ENOSPC => format!(
            "a namespace limit is reached: see the sysctls under /proc/sys/user/ \
             (user.max_user_namespaces is {})",
            sysctl("/proc/sys/user/max_user_namespaces")
                .map_or("unknown".into(), |n| n.to_string())
        ),
        libc::EUSERS => "user namespaces are nested 32 deep already, the kernel's limit".into(),
        libc::EINVAL => "this kernel lacks one of these namespaces (see CONFIG_*_NS in its \
                         configuration and /proc/self/ns/)"
            .into(),
        libc::EPERM if !wants_user => format!(
            "creating these namespaces needs CAP_SYS_ADMIN: run as root, or add \
             Namespaces::USER with a uid/gid map (e.g. map_root_to_caller) to create them \
             unprivileged ({})",
            namespaces
        ),
        libc::EPERM => "the kernel or a security policy refuses a new user namespace here \
                        (a seccomp filter in a container, a chroot, or a namespace limit)"
            .into(),
        _ => "see clone(2) for what this error means".into(),
    }
}

/// What an id-map write refused with `error` means for this caller.
pub(crate) fn map_refusal(step: Step, error: &io::Error) -> String {
    if error.raw_os_error() != Some(libc::EPERM) {
        return "see user_namespaces(7) for the rules of id maps".into();
    }
    let euid = nix::unistd::geteuid();
    let egid = nix::unistd::getegid();
    match (step, is_root()) {
        (Step::WriteGidMap, false) => format!(
            "without privilege a gid map may map only your own gid {egid} with count 1, and \
             only with setgroups denied; map more through newgidmap(1) and /etc/subgid"
        ),
        (_, false) => format!(
            "without privilege a uid map may map only your own uid {euid} with count 1; map \
             more through newuidmap(1) and /etc/subuid"
        ),
        (_, true) => "even root may map only ids that exist in its own user namespace, and \
                      may write each map once"
            .into(),
    }
}
