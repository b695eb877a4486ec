//! `ns-runtime exec`'s process: its user, supplementary groups and capabilities, taken on
//! in its forked child just before it execs.

use std::os::unix::process::CommandExt;

use nix::libc;

use super::check;

/// Makes the process `uid`:`gid` with exactly the supplementary `groups`
/// (`process.user.additionalGids`), then leaves it the capability sets `keep`. As
/// [`cut_capabilities_at_exec`](super::cut_capabilities_at_exec), in the same order:
/// bounding, inheritable and ambient first (with effective and permitted whole, which the
/// id switch needs), then the groups and ids, then effective and permitted.
///
/// Empty `groups` where the user namespace denies setgroups (a single-id map written
/// without privilege) leave the groups as they are; a list that can't be set is an error.
pub(crate) fn take_identity_at_exec(
    command: &mut std::process::Command,
    keep: reexec::Capabilities,
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
) {
    let mut before_switch = keep;
    before_switch.permitted = reexec::CapabilitySet::ALL;
    before_switch.effective = reexec::CapabilitySet::ALL;
    let take = move || {
        before_switch.apply_to_current_thread()?;
        // SAFETY: setgroups(2) reads `groups.len()` ids from the vector's buffer, which
        // the closure owns and which lives until exec; a count of 0 reads nothing.
        match check(unsafe { libc::setgroups(groups.len(), groups.as_ptr()) }) {
            Err(error) if error.raw_os_error() == Some(libc::EPERM) && groups.is_empty() => {}
            other => other?,
        }
        // SAFETY: setresgid(2) and setresuid(2) take numbers and touch no memory of ours.
        check(unsafe { libc::setresgid(gid, gid, gid) })?;
        // SAFETY: as above.
        check(unsafe { libc::setresuid(uid, uid, uid) })?;
        keep.apply_to_current_thread()
    };
    // SAFETY: the hook runs in the forked child of a single-threaded entry, before exec;
    // it makes raw system calls on numbers and on memory allocated before the fork, and
    // allocates nothing, as pre_exec requires.
    unsafe {
        command.pre_exec(take);
    }
}
