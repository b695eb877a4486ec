//! Linux's mount API of descriptors (5.2: fsopen(2), fsconfig(2), fsmount(2),
//! open_tree(2), move_mount(2); 5.12: mount_setattr(2)) as small safe functions. A mount
//! is made detached, held by a descriptor, and attached onto a descriptor of its mount
//! point: no path is looked up again between the check of a mount point and the mount, so
//! a rootfs's owner can't swap one for a symlink in between. nix 0.30 wraps none of these
//! calls; this module holds ns-process's only `unsafe` for them.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::libc;

/// Takes ownership of a descriptor a call returned, or its error.
///
/// # Safety
/// `result` must be what a system call returned that, on success, gives a new descriptor
/// owned by no one else.
unsafe fn owned_fd(result: libc::c_long) -> nix::Result<OwnedFd> {
    let fd = Errno::result(result)?;
    // SAFETY: the call succeeded, so `fd` is a new open descriptor (a c_int widened to a
    // c_long by syscall(2)) that nothing else owns, as the caller promises.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// A new filesystem context for `fstype` ("proc", "tmpfs"), close-on-exec.
pub(crate) fn fsopen(fstype: &CStr) -> nix::Result<OwnedFd> {
    // SAFETY: fsopen(2) reads a NUL-terminated string that outlives the call, and returns
    // a new descriptor or -1.
    unsafe {
        owned_fd(libc::syscall(
            libc::SYS_fsopen,
            fstype.as_ptr(),
            libc::FSOPEN_CLOEXEC,
        ))
    }
}

/// Sets the string parameter `key` of a filesystem context: "source", "mode"...
pub(crate) fn fsconfig_set_string(fs: BorrowedFd<'_>, key: &CStr, value: &CStr) -> nix::Result<()> {
    // SAFETY: fsconfig(2) reads two NUL-terminated strings that outlive the call; `fs` is
    // open for as long as it is borrowed.
    let result = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            libc::FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    };
    Errno::result(result).map(drop)
}

/// Sets the flag parameter `key` of a filesystem context, one without a value:
/// devpts's "newinstance".
pub(crate) fn fsconfig_set_flag(fs: BorrowedFd<'_>, key: &CStr) -> nix::Result<()> {
    // SAFETY: fsconfig(2) reads one NUL-terminated string that outlives the call, and no
    // value for a flag; `fs` is open for as long as it is borrowed.
    let result = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            libc::FSCONFIG_SET_FLAG,
            key.as_ptr(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    Errno::result(result).map(drop)
}

/// Creates the filesystem a context describes.
pub(crate) fn fsconfig_create(fs: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: FSCONFIG_CMD_CREATE reads no pointer; `fs` is open while borrowed.
    let result = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            libc::FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    Errno::result(result).map(drop)
}

/// A detached mount of the filesystem a context created, with `attributes`
/// (`libc::MOUNT_ATTR_*`), close-on-exec.
pub(crate) fn fsmount(fs: BorrowedFd<'_>, attributes: u64) -> nix::Result<OwnedFd> {
    // SAFETY: fsmount(2) reads no pointer and returns a new descriptor or -1; `fs` is open
    // while borrowed.
    unsafe {
        owned_fd(libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            libc::FSMOUNT_CLOEXEC,
            attributes,
        ))
    }
}

/// A detached copy of the mount at `path` (relative to `dir`; `c""` for `dir` itself), as
/// bind mount(2) would make; with `recursive`, of the mounts under it too (MS_REC).
pub(crate) fn clone_tree(
    dir: BorrowedFd<'_>,
    path: &CStr,
    recursive: bool,
) -> nix::Result<OwnedFd> {
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    if path.is_empty() {
        flags |= libc::AT_EMPTY_PATH as libc::c_uint;
    }
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: open_tree(2) reads a NUL-terminated string that outlives the call and
    // returns a new descriptor or -1; `dir` is open while borrowed.
    unsafe {
        owned_fd(libc::syscall(
            libc::SYS_open_tree,
            dir.as_raw_fd(),
            path.as_ptr(),
            flags,
        ))
    }
}

/// Attaches the detached mount `mount` onto what `target` is open on (a directory, or a
/// file for a file's mount). `mount` then stands for the attached mount.
pub(crate) fn attach(mount: BorrowedFd<'_>, target: BorrowedFd<'_>) -> nix::Result<()> {
    let empty = c"";
    // SAFETY: move_mount(2) reads two NUL-terminated (empty) strings that outlive the
    // call; both descriptors are open while borrowed.
    let result = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount.as_raw_fd(),
            empty.as_ptr(),
            target.as_raw_fd(),
            empty.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(result).map(drop)
}

/// Sets the mount attributes `set` (`libc::MOUNT_ATTR_*`) on the mount `mount` is open on
/// and, with `recursive`, on every mount below it: how a cloned tree is made read-only as
/// a whole, which a remount of mount(2) can't do in one call.
pub(crate) fn set_attributes(mount: BorrowedFd<'_>, set: u64, recursive: bool) -> nix::Result<()> {
    change_attributes(mount, set, 0, recursive)
}

/// Clears the mount attributes `clear` (`libc::MOUNT_ATTR_*`) on the mount `mount` is open
/// on, and on no other.
pub(crate) fn clear_attributes(mount: BorrowedFd<'_>, clear: u64) -> nix::Result<()> {
    change_attributes(mount, 0, clear, false)
}

/// Sets the mount attributes `set` (`libc::MOUNT_ATTR_*`) on the mount at `path` and,
/// with `recursive`, on every mount below it: one call where mount(2) needs a remount per
/// mount, each repeating the flags it keeps.
pub(crate) fn set_attributes_at(path: &CStr, set: u64, recursive: bool) -> nix::Result<()> {
    mount_setattr(libc::AT_FDCWD, path, 0, set, 0, recursive)
}

fn change_attributes(
    mount: BorrowedFd<'_>,
    set: u64,
    clear: u64,
    recursive: bool,
) -> nix::Result<()> {
    mount_setattr(
        mount.as_raw_fd(),
        c"",
        libc::AT_EMPTY_PATH,
        set,
        clear,
        recursive,
    )
}

/// mount_setattr(2) on `path` relative to `dir` (`AT_FDCWD`, or a descriptor the caller
/// keeps open across the call).
fn mount_setattr(
    dir: libc::c_int,
    path: &CStr,
    flags: libc::c_int,
    set: u64,
    clear: u64,
    recursive: bool,
) -> nix::Result<()> {
    let attributes = libc::mount_attr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr(2) reads a NUL-terminated string and one `struct mount_attr`
    // of the size given, both alive across the call; `dir` is AT_FDCWD or open, as the
    // callers hold it.
    let result = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dir,
            path.as_ptr(),
            flags | if recursive { libc::AT_RECURSIVE } else { 0 },
            &attributes as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    Errno::result(result).map(drop)
}
