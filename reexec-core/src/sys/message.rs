//! The fork server's messages on its socket, with their descriptors (`SCM_RIGHTS`), sent
//! and received through buffers the caller keeps: the server must allocate nothing
//! between two clones, since every block it frees or allocates then writes a heap page its
//! last child still shares (BENCHMARKS.md, item 12), and nix's `sendmsg` allocates the
//! control buffer and `ControlMessageOwned` a vector of descriptors at each call.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::size_of;
use std::os::fd::{OwnedFd, RawFd};

/// Room for a control message, in words so that its `cmsghdr` is aligned.
#[derive(Debug, Default)]
pub(crate) struct Control(Vec<u64>);

impl Control {
    /// The buffer for a control message of `fds` descriptors, zeroed: the kernel reads
    /// the padding of what is sent.
    fn room(&mut self, fds: usize) -> &mut [u64] {
        let bytes = match fds {
            0 => 0,
            // SAFETY: CMSG_SPACE only computes a size.
            count => (unsafe { libc::CMSG_SPACE((count * size_of::<RawFd>()) as u32) }) as usize,
        };
        self.0.clear();
        self.0.resize(bytes.div_ceil(size_of::<u64>()), 0);
        &mut self.0
    }
}

/// sendmsg(2) of `iov` with `fds` attached; returns the bytes sent.
pub(crate) fn send(
    socket: RawFd,
    iov: &[IoSlice<'_>],
    fds: &[RawFd],
    control: &mut Control,
) -> io::Result<usize> {
    let room = control.room(fds.len());
    // SAFETY: an all-zero msghdr is a valid empty one.
    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is ABI-compatible with iovec on Unix (its documentation says so); sendmsg
    // only reads through the pointer.
    header.msg_iov = iov.as_ptr().cast_mut().cast();
    header.msg_iovlen = iov.len();
    if !fds.is_empty() {
        header.msg_control = room.as_mut_ptr().cast();
        header.msg_controllen = size_of_val(room);
        let bytes = size_of_val(fds);
        // SAFETY: `room` holds CMSG_SPACE(bytes), so the first header and its data fit in
        // it, and it is aligned for cmsghdr (words of 8 bytes).
        unsafe {
            let first = libc::CMSG_FIRSTHDR(&header);
            (*first).cmsg_level = libc::SOL_SOCKET;
            (*first).cmsg_type = libc::SCM_RIGHTS;
            (*first).cmsg_len = libc::CMSG_LEN(bytes as u32) as usize;
            std::ptr::copy_nonoverlapping(fds.as_ptr().cast(), libc::CMSG_DATA(first), bytes);
        }
    }
    super::retry_interrupted(|| {
        // SAFETY: `header` points at `iov` and `room`, both alive for the call.
        match unsafe { libc::sendmsg(socket, &header, libc::MSG_NOSIGNAL) } {
            sent if sent >= 0 => Ok(sent as usize),
            _ => Err(io::Error::last_os_error()),
        }
    })
}

/// recvmsg(2) into `buffer`, with room for `max_fds` descriptors; the descriptors that
/// came replace those in `fds` (close-on-exec). Returns the bytes read, 0 at end-of-file;
/// an error, with nothing in `fds`, when more descriptors came than there was room for,
/// or than this process may have open (the kernel closed the rest: the message is
/// incomplete, and would be decoded with the wrong descriptors).
pub(crate) fn receive(
    socket: RawFd,
    buffer: &mut [u8],
    max_fds: usize,
    control: &mut Control,
    fds: &mut Vec<OwnedFd>,
) -> io::Result<usize> {
    fds.clear();
    // The numbers first, in `fds`'s room (std collects an emptied vector's `into_iter`,
    // mapped to items of the same layout, in place), owned once all are read.
    let mut numbers: Vec<RawFd> = std::mem::take(fds)
        .into_iter()
        .map(|_| unreachable!("emptied"))
        .collect();
    let room = control.room(max_fds);
    let mut iov = [IoSliceMut::new(buffer)];
    // SAFETY: an all-zero msghdr is a valid empty one.
    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSliceMut is ABI-compatible with iovec on Unix.
    header.msg_iov = iov.as_mut_ptr().cast();
    header.msg_iovlen = iov.len();
    header.msg_control = room.as_mut_ptr().cast();
    header.msg_controllen = size_of_val(room);
    let read = super::retry_interrupted(|| {
        // SAFETY: `header` points at `iov` (over `buffer`) and `room`, both alive and
        // writable for the call.
        match unsafe { libc::recvmsg(socket, &mut header, libc::MSG_CMSG_CLOEXEC) } {
            read if read >= 0 => Ok(read as usize),
            _ => Err(io::Error::last_os_error()),
        }
    })?;
    // SAFETY: the kernel filled `header.msg_control` with `msg_controllen` bytes of
    // complete control messages; CMSG_FIRSTHDR and CMSG_NXTHDR stay within them.
    let mut message = unsafe { libc::CMSG_FIRSTHDR(&header) };
    while !message.is_null() {
        // SAFETY: a header the kernel wrote, within the buffer (above).
        let (level, kind, length) = unsafe {
            (
                (*message).cmsg_level,
                (*message).cmsg_type,
                (*message).cmsg_len,
            )
        };
        if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
            // SAFETY: CMSG_LEN only computes a size.
            let header_length = (unsafe { libc::CMSG_LEN(0) }) as usize;
            let count = (length - header_length) / size_of::<RawFd>();
            for index in 0..count {
                // SAFETY: the message's data holds `count` descriptors, maybe unaligned.
                numbers.push(unsafe {
                    let at = libc::CMSG_DATA(message).cast::<RawFd>().add(index);
                    at.read_unaligned()
                });
            }
        }
        // SAFETY: as for CMSG_FIRSTHDR.
        message = unsafe { libc::CMSG_NXTHDR(&header, message) };
    }
    *fds = super::adopt_received(numbers);
    if header.msg_flags & libc::MSG_CTRUNC != 0 {
        // The ones that fit close here; the message can't be decoded without the rest.
        fds.clear();
        return Err(io::Error::other(format!(
            "a message came with more descriptors than the {max_fds} there was room for, \
             or than this process may open (RLIMIT_NOFILE): the kernel dropped the rest"
        )));
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    use super::*;

    /// The identity of the open file behind `fd`.
    fn inode(fd: impl std::os::fd::AsFd) -> (u64, u64) {
        let stat = nix::sys::stat::fstat(fd).unwrap();
        (stat.st_dev, stat.st_ino)
    }

    #[test]
    fn descriptors_arrive_with_the_bytes_and_close_on_exec() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let pipes = [
            super::super::cloexec_pipe().unwrap(),
            super::super::cloexec_pipe().unwrap(),
        ];
        let sent: Vec<RawFd> = pipes.iter().map(|(read, _)| read.as_raw_fd()).collect();
        let mut control = Control::default();
        let iov = [IoSlice::new(b"one"), IoSlice::new(b"two")];
        assert_eq!(
            send(ours.as_raw_fd(), &iov, &sent, &mut control).unwrap(),
            6
        );
        send(
            ours.as_raw_fd(),
            &[IoSlice::new(b"bare")],
            &[],
            &mut control,
        )
        .unwrap();
        drop(ours);

        let (mut buffer, mut fds) = ([0u8; 6], Vec::new());
        let read = receive(theirs.as_raw_fd(), &mut buffer, 253, &mut control, &mut fds);
        assert_eq!((read.unwrap(), &buffer), (6, b"onetwo"));
        assert_eq!(fds.len(), 2);
        for ((sent, _), received) in pipes.iter().zip(&fds) {
            assert_ne!(sent.as_raw_fd(), received.as_raw_fd());
            assert_eq!(inode(sent), inode(received));
            let flags = nix::fcntl::fcntl(received, nix::fcntl::FcntlArg::F_GETFD).unwrap();
            assert_ne!(flags & libc::FD_CLOEXEC, 0);
        }
        // Without descriptors, then end-of-file: those of the message before are closed.
        let mut buffer = [0u8; 4];
        let read = receive(theirs.as_raw_fd(), &mut buffer, 253, &mut control, &mut fds);
        assert_eq!((read.unwrap(), &buffer, fds.len()), (4, b"bare", 0));
        let read = receive(theirs.as_raw_fd(), &mut buffer, 253, &mut control, &mut fds);
        assert_eq!(read.unwrap(), 0);
    }

    #[test]
    fn descriptors_beyond_the_room_are_an_error_not_a_shorter_list() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let (read, _write) = super::super::cloexec_pipe().unwrap();
        let sent = [read.as_raw_fd(); 3];
        let mut control = Control::default();
        send(ours.as_raw_fd(), &[IoSlice::new(b"x")], &sent, &mut control).unwrap();
        let (mut buffer, mut fds) = ([0u8; 1], Vec::new());
        let error = receive(theirs.as_raw_fd(), &mut buffer, 1, &mut control, &mut fds)
            .expect_err("3 descriptors into room for 1");
        assert!(error.to_string().contains("room for"), "{error}");
        assert!(fds.is_empty(), "the one that fit is closed, not handed on");
    }
}
