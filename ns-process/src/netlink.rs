//! A blocking NETLINK_ROUTE client: one request at a time, its replies read up to the
//! kernel's acknowledgement or the end of the dump.
//!
//! ns-process makes a handful of netlink calls per run, in the parent and in its init;
//! an async runtime built for each of them cost more page faults than the calls.

use std::fmt;

use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// Why a request failed.
#[derive(Debug)]
pub(crate) enum Error {
    /// The kernel refused it with this errno (NLMSG_ERROR or a failed dump's NLMSG_DONE).
    Kernel(i32),
    /// Talking to the kernel failed: the socket, or a reply that does not parse.
    Transport(String),
}

impl Error {
    /// The kernel's errno, if the kernel refused the request.
    pub(crate) fn errno(&self) -> Option<i32> {
        match self {
            Error::Kernel(errno) => Some(*errno),
            Error::Transport(_) => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Kernel(errno) => f.write_str(nix::errno::Errno::from_raw(*errno).desc()),
            Error::Transport(why) => f.write_str(why),
        }
    }
}

/// A NETLINK_ROUTE socket connected to the kernel, in the network namespace of the
/// thread that opened it.
pub(crate) struct Netlink {
    socket: Socket,
    sequence: u32,
}

impl Netlink {
    pub(crate) fn open() -> Result<Netlink, String> {
        let fail = |error: std::io::Error| format!("opening a netlink socket: {error}");
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(fail)?;
        socket.bind_auto().map_err(fail)?;
        // Port 0 is the kernel: replies from anyone else are not taken.
        socket.connect(&SocketAddr::new(0, 0)).map_err(fail)?;
        Ok(Netlink {
            socket,
            sequence: 0,
        })
    }

    /// Sends `message` with NLM_F_REQUEST | NLM_F_ACK | `flags` and waits for its
    /// acknowledgement; returns the messages that came before it (a get's answer).
    pub(crate) fn request(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, Error> {
        self.send(message, NLM_F_REQUEST | NLM_F_ACK | flags)
    }

    /// Sends the get `message` as a dump and returns every answer up to NLMSG_DONE.
    pub(crate) fn dump(
        &mut self,
        message: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, Error> {
        // The kernel ends a dump with NLMSG_DONE and sends no acknowledgement.
        self.send(message, NLM_F_REQUEST | NLM_F_DUMP)
    }

    fn send(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, Error> {
        let transport = |what: &str, error: &dyn fmt::Display| {
            Error::Transport(format!("{what} netlink: {error}"))
        };
        self.sequence = self.sequence.wrapping_add(1);
        let mut request = NetlinkMessage::from(message);
        request.header.flags = flags;
        request.header.sequence_number = self.sequence;
        request.finalize();
        let mut bytes = vec![0; request.buffer_len()];
        request.serialize(&mut bytes);
        self.socket
            .send(&bytes, 0)
            .map_err(|error| transport("sending to", &error))?;
        let mut answers = Vec::new();
        loop {
            // Whole datagrams, however long: a dump's may exceed any fixed buffer.
            let (datagram, _) = self
                .socket
                .recv_from_full()
                .map_err(|error| transport("receiving from", &error))?;
            let mut rest = &datagram[..];
            while !rest.is_empty() {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest)
                    .map_err(|error| transport("parsing a reply of", &error))?;
                // Each message starts 4-byte aligned; the length excludes the padding.
                let length = (reply.header.length as usize).next_multiple_of(4);
                rest = rest.get(length..).unwrap_or_default();
                if reply.header.sequence_number != self.sequence {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::InnerMessage(answer) => answers.push(answer),
                    NetlinkPayload::Error(error) => {
                        return match error.code {
                            None => Ok(answers),
                            Some(code) => Err(Error::Kernel(-code.get())),
                        };
                    }
                    NetlinkPayload::Done(done) if done.code < 0 => {
                        return Err(Error::Kernel(-done.code));
                    }
                    NetlinkPayload::Done(_) => return Ok(answers),
                    _ => {}
                }
            }
        }
    }
}
