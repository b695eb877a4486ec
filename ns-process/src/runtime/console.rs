//! `--console-socket`: the pty's master sent to the caller's socket with `SCM_RIGHTS`.
//!
//! With `process.terminal`, the container's process gets a pty made from the container's
//! own devpts (its `/dev/ptmx`, once the rootfs is set up), so that its slave's name is a
//! path inside and every pty of the container dies with it. The master goes to whoever
//! listens on the console socket (conmon, containerd's shim), which relays it; the
//! process never sees the caller's terminal.
//!
//! The socket's path is the caller's, which the process inside can't reach once it is in
//! the container's root: the runtime connects to it outside, and hands the connected
//! descriptor to the init (`--internal-console-fd`) or to `exec`'s entry, which send the
//! master over it once the pty exists. One message: the slave's name as payload (what
//! runc sends; conmon reads any payload, and needs at least one byte on a stream socket
//! for the descriptor to travel) and one descriptor.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::errno::Errno;
use nix::pty::Winsize;
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};

/// Connects to the console socket at `socket`, outside the container, for a pty's master
/// to be sent over later; the message names the path and what to do.
pub(crate) fn connect(socket: &Path) -> Result<OwnedFd, String> {
    let at = |why: String| format!("--console-socket {}: {why}", socket.display());
    UnixStream::connect(socket)
        .map(OwnedFd::from)
        .map_err(|error| match error.raw_os_error().map(Errno::from_raw) {
            Some(Errno::ENOENT) => at(
                "no such socket; give the path of a unix socket that listens for the \
                 pty's master (conmon's, containerd's shim's)"
                    .into(),
            ),
            Some(Errno::ECONNREFUSED) => at(
                "nothing listens on it (connection refused); start the program that \
                 receives the pty's master first"
                    .into(),
            ),
            Some(Errno::ENOTSOCK) => at("not a unix socket".into()),
            Some(Errno::EPROTOTYPE) => {
                at("not a stream socket (SOCK_STREAM), which runc's clients listen on".into())
            }
            _ => at(format!("connect: {error}")),
        })
}

/// Sends `master` over `connection`, a connected console socket, with the slave's `name`
/// (or one NUL byte) as payload.
pub(crate) fn send_master_on(
    connection: BorrowedFd<'_>,
    master: BorrowedFd<'_>,
    name: &str,
) -> Result<(), String> {
    // A descriptor alone is no message on a stream socket: it rides on at least a byte.
    let payload: &[u8] = if name.is_empty() {
        b"\0"
    } else {
        name.as_bytes()
    };
    let fds = [master.as_raw_fd()];
    let rights = [ControlMessage::ScmRights(&fds)];
    loop {
        match sendmsg::<()>(
            connection.as_raw_fd(),
            &[IoSlice::new(payload)],
            &rights,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => {}
            Err(Errno::EPIPE | Errno::ECONNRESET) => {
                return Err("sending the pty's master: the listener closed the \
                            connection before it was sent"
                    .into());
            }
            Err(errno) => {
                return Err(format!(
                    "sending the pty's master: sendmsg(SCM_RIGHTS): {}",
                    errno.desc()
                ));
            }
        }
    }
}

/// A pty made from `/dev/ptmx` as this process sees it — inside the container's root,
/// its own devpts — with the slave open as the process's terminal.
pub(crate) struct Pty {
    pub(crate) master: OwnedFd,
    pub(crate) slave: OwnedFd,
    /// The slave's path, as the container sees it (`/dev/pts/0`).
    pub(crate) name: String,
}

/// Opens a pty of `size` (rows, columns; `process.consoleSize`, the kernel's 0x0 when
/// not given).
pub(crate) fn open_pty(size: Option<(u16, u16)>) -> Result<Pty, String> {
    let opening = |call: &str, errno: Errno| {
        format!(
            "making the process's terminal: {call}: {}; the container needs a devpts \
             mounted on /dev/pts and /dev/ptmx",
            errno.desc()
        )
    };
    // The process takes the slave as its controlling terminal in its own session.
    let (master, slave, name) = crate::pty::open_pair(opening)?;
    if let Some((rows, columns)) = size {
        let size = Winsize {
            ws_row: rows,
            ws_col: columns,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        crate::terminal::set_window_size(master.as_fd(), &size)
            .map_err(|errno| opening("ioctl(TIOCSWINSZ)", errno))?;
    }
    Ok(Pty {
        master,
        slave,
        name,
    })
}

/// `process.consoleSize` as (rows, columns); sizes beyond a terminal's u16 are refused.
pub(crate) fn size_of(
    console_size: Option<oci_spec::runtime::Box>,
) -> Result<Option<(u16, u16)>, String> {
    let Some(size) = console_size else {
        return Ok(None);
    };
    let fits = |value: u64, what: &str| {
        u16::try_from(value).map_err(|_| {
            format!("process.consoleSize.{what} {value} is too large: a terminal has at most 65535")
        })
    };
    Ok(Some((
        fits(size.height(), "height")?,
        fits(size.width(), "width")?,
    )))
}

/// Refuses a terminal without a console socket, or a socket without a terminal, with
/// runc's reasons: ns-runtime relays no terminal of its own, and a socket would wait for
/// a master that never comes.
pub(crate) fn check_request(terminal: bool, socket: Option<&Path>) -> Result<(), String> {
    match (terminal, socket) {
        (true, None) => Err(
            "cannot allocate a tty without --console-socket: ns-runtime \
                             relays no terminal itself; give --console-socket SOCKET, or set \
                             process.terminal false (exec: leave out --tty)"
                .into(),
        ),
        (false, Some(_)) => Err("--console-socket is for a process with a terminal: set \
                                 process.terminal true (exec: add --tty), or leave the socket \
                                 out"
        .into()),
        _ => Ok(()),
    }
}

/// `--internal-console-size ROWSxCOLUMNS`.
pub(crate) fn parse_size(text: &str) -> Result<(u16, u16), String> {
    text.split_once('x')
        .and_then(|(rows, columns)| Some((rows.parse().ok()?, columns.parse().ok()?)))
        .ok_or_else(|| format!("{text:?}: give ROWSxCOLUMNS, such as 24x80"))
}

/// Checks `--internal-console-fd`: an open socket, above stdio and apart from the
/// descriptors `--preserve-fds` hands on.
pub(crate) fn check_handed(fd: Option<RawFd>, preserve_fds: u16) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let Some(fd) = fd else {
        return Ok(());
    };
    let preserved = crate::cli::preserved_fds(preserve_fds);
    if fd < 3 || preserved.contains(&fd) {
        return Err(format!(
            "--internal-console-fd {fd}: stdio or a descriptor --preserve-fds hands on; give \
             another descriptor"
        ));
    }
    match std::fs::metadata(format!("/proc/self/fd/{fd}")) {
        Ok(metadata) if metadata.file_type().is_socket() => Ok(()),
        Ok(_) => Err(format!(
            "--internal-console-fd {fd}: not a socket; give a connected console socket"
        )),
        Err(_) => Err(format!(
            "--internal-console-fd {fd}: not open; give a connected console socket"
        )),
    }
}

/// In the init, after the setup: the command's pty, from the container's devpts, its
/// master sent over the console socket handed as `fd`, its slave bound on
/// `/dev/console` where there is one; returns the slave. The socket and the master close
/// here: the init keeps neither.
pub(crate) fn for_command(fd: RawFd, size: Option<(u16, u16)>) -> Result<OwnedFd, String> {
    let connection = crate::sys::claim_handed_fd(fd)
        .ok_or_else(|| format!("--internal-console-fd {fd}: not open in the init"))?;
    let pty = open_pty(size)?;
    if Path::new("/dev/console").exists() {
        crate::terminal::bind_console(Path::new("/dev/console"), Path::new(&pty.name))?;
    }
    send_master_on(connection.as_fd(), pty.master.as_fd(), &pty.name)
        .map_err(|why| format!("console socket: {why}"))?;
    Ok(pty.slave)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    use nix::sys::socket::{ControlMessageOwned, recvmsg};

    #[test]
    fn the_master_and_the_slave_name_reach_the_listener() {
        let dir = std::env::temp_dir().join(format!("console-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("socket");
        let listener = UnixListener::bind(&path).unwrap();
        let pty = nix::pty::openpty(None, None).unwrap();
        let name = nix::unistd::ttyname(&pty.slave).unwrap();
        let connection = connect(&path).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        send_master_on(
            connection.as_fd(),
            pty.master.as_fd(),
            &name.to_string_lossy(),
        )
        .unwrap();

        let mut buffer = [0u8; 64];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let mut iov = [std::io::IoSliceMut::new(&mut buffer)];
        let message = recvmsg::<()>(
            accepted.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .unwrap();
        let received: Vec<_> = message.cmsgs().unwrap().collect();
        let bytes = message.bytes;
        assert_eq!(&buffer[..bytes], name.to_string_lossy().as_bytes());
        let [ControlMessageOwned::ScmRights(fds)] = &received[..] else {
            panic!("{received:?}");
        };
        // The very pty: the kernel's tty index of the received master is the sent one's.
        let index = |fd: std::os::fd::RawFd| {
            std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
                .unwrap()
                .lines()
                .find_map(|line| line.strip_prefix("tty-index:").map(|i| i.trim().to_owned()))
        };
        assert!(index(fds[0]).is_some());
        assert_eq!(index(fds[0]), index(pty.master.as_raw_fd()));
        nix::unistd::close(fds[0]).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_or_unheard_socket_is_named() {
        let dir = std::env::temp_dir().join(format!("console-refused-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = connect(&dir.join("missing")).unwrap_err();
        assert!(missing.contains("no such socket"), "{missing}");
        // A socket file whose listener is gone.
        let path = dir.join("closed");
        drop(UnixListener::bind(&path).unwrap());
        let refused = connect(&path).unwrap_err();
        assert!(refused.contains("nothing listens on it"), "{refused}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
