//! Network setup through rtnetlink, never by running `ip`.
//!
//! `--net bridge` reproduces the series' netsetgo without a setuid helper: the parent,
//! privileged in its own network namespace, makes sure the bridge exists with the
//! gateway address, claims an address by creating a veth pair named after it, and hands
//! the peer to the child's network namespace while the child waits; the child then sets
//! the address and the default route on its side.

use std::fmt;
use std::net::Ipv4Addr;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::LinkAttribute;
use rtnetlink::{LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

/// The name the child's end of the pair has inside, as in the series.
pub(crate) const INSIDE_NAME: &str = "veth1";

/// Runs one netlink conversation on a runtime of its own, on this thread, and leaves no
/// thread behind: the init does this before it starts the command.
fn with_netlink<T>(
    work: impl AsyncFnOnce(rtnetlink::Handle) -> Result<T, String>,
) -> Result<T, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|error| format!("starting the netlink runtime: {error}"))?;
    runtime.block_on(async {
        let (connection, handle, _) = rtnetlink::new_connection()
            .map_err(|error| format!("opening a netlink socket: {error}"))?;
        let connection = tokio::spawn(connection);
        let result = work(handle).await;
        connection.abort();
        result
    })
}

/// The kernel's errno in a netlink error, if it is one.
fn errno_of(error: &rtnetlink::Error) -> Option<i32> {
    match error {
        rtnetlink::Error::NetlinkError(message) => Some(-message.raw_code()),
        _ => None,
    }
}

fn describe(what: &str, error: rtnetlink::Error) -> String {
    match errno_of(&error) {
        Some(errno) => format!("{what}: {}", nix::errno::Errno::from_raw(errno).desc()),
        None => format!("{what}: {error}"),
    }
}

async fn link_index(handle: &rtnetlink::Handle, name: &str) -> Result<Option<u32>, String> {
    let mut links = handle.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(link) => Ok(link.map(|link| link.header.index)),
        Err(error) if errno_of(&error) == Some(nix::libc::ENODEV) => Ok(None),
        Err(error) => Err(describe(&format!("looking up {name}"), error)),
    }
}

async fn set_up_link(handle: &rtnetlink::Handle, name: &str) -> Result<(), String> {
    handle
        .link()
        .set(LinkUnspec::new_with_name(name).up().build())
        .execute()
        .await
        .map_err(|error| describe(&format!("setting {name} up"), error))
}

/// Sets the link `name` up (`ip link set NAME up`).
pub(crate) fn set_up(name: &str) -> Result<(), String> {
    with_netlink(async |handle| set_up_link(&handle, name).await)
}

/// A subnet with the gateway on the bridge at its first host address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// Parses `A.B.C.D/N` with 16 ≤ N ≤ 30, host bits zero.
    pub(crate) fn parse(text: &str) -> Result<Subnet, String> {
        let invalid = |why: &str| format!("invalid subnet {text:?}: {why}");
        let (address, prefix) = text
            .split_once('/')
            .ok_or_else(|| invalid("write it as A.B.C.D/N, e.g. 10.10.10.0/24"))?;
        let network: Ipv4Addr = address
            .parse()
            .map_err(|_| invalid("the address is not IPv4"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| invalid("the prefix length is not a number"))?;
        if !(16..=30).contains(&prefix) {
            return Err(invalid("the prefix length must be 16 to 30"));
        }
        let subnet = Subnet { network, prefix };
        if u32::from(network) & !subnet.mask() != 0 {
            return Err(invalid("host bits are set; use the network address"));
        }
        Ok(subnet)
    }

    fn mask(self) -> u32 {
        u32::MAX << (32 - self.prefix)
    }

    fn host(self, number: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + number)
    }

    /// The bridge's address, which the children route through.
    pub(crate) fn gateway(self) -> Ipv4Addr {
        self.host(1)
    }

    /// Host numbers a child may get: all but the network, the gateway and broadcast.
    fn child_hosts(self) -> std::ops::RangeInclusive<u32> {
        2..=(!self.mask() - 1)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// One child's place on the bridge: its address, claimed by the host-side link's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lease {
    pub(crate) host_side: String,
    pub(crate) peer: String,
    pub(crate) address: Ipv4Addr,
    pub(crate) prefix: u8,
    pub(crate) gateway: Ipv4Addr,
}

impl Lease {
    /// What the parent passes to the init: `ADDRESS/PREFIX,GATEWAY`.
    pub(crate) fn inside_config(&self) -> String {
        format!("{}/{},{}", self.address, self.prefix, self.gateway)
    }
}

/// The longest bridge name that leaves room for `-NNN` and a peer's `p` in the kernel's
/// 15 bytes of an interface name.
pub(crate) const MAX_BRIDGE_NAME: usize = 10;

/// Makes sure the bridge exists, up, with the gateway address (all idempotent, and safe
/// against a second ns-process doing the same), then claims the first free address by
/// creating a veth pair whose host side is named after it: creating a link is atomic,
/// so two instances can never get the same address.
pub(crate) fn claim(bridge: &str, subnet: Subnet) -> Result<Lease, String> {
    with_netlink(async |handle| {
        let bridge_index = match link_index(&handle, bridge).await? {
            Some(index) => index,
            None => {
                match handle
                    .link()
                    .add(LinkBridge::new(bridge).build())
                    .execute()
                    .await
                {
                    Ok(()) => {}
                    Err(error) if errno_of(&error) == Some(nix::libc::EEXIST) => {}
                    Err(error) => {
                        return Err(describe(&format!("creating bridge {bridge}"), error));
                    }
                }
                link_index(&handle, bridge)
                    .await?
                    .ok_or_else(|| format!("bridge {bridge} vanished right after it was created"))?
            }
        };
        match handle
            .address()
            .add(bridge_index, subnet.gateway().into(), subnet.prefix)
            .execute()
            .await
        {
            Ok(()) => {}
            Err(error) if errno_of(&error) == Some(nix::libc::EEXIST) => {}
            Err(error) => {
                return Err(describe(
                    &format!("adding {}/{} to {bridge}", subnet.gateway(), subnet.prefix),
                    error,
                ));
            }
        }
        set_up_link(&handle, bridge).await?;

        for number in subnet.child_hosts() {
            let host_side = format!("{bridge}-{number}");
            let peer = format!("{host_side}p");
            match handle
                .link()
                .add(LinkVeth::new(&host_side, &peer).build())
                .execute()
                .await
            {
                Ok(()) => {}
                Err(error) if errno_of(&error) == Some(nix::libc::EEXIST) => continue,
                Err(error) => {
                    return Err(describe(&format!("creating veth pair {host_side}"), error));
                }
            }
            let attached = handle
                .link()
                .set(
                    LinkUnspec::new_with_name(&host_side)
                        .controller(bridge_index)
                        .up()
                        .build(),
                )
                .execute()
                .await;
            if let Err(error) = attached {
                let _ = delete_link(&handle, &host_side).await;
                return Err(describe(
                    &format!("attaching {host_side} to {bridge}"),
                    error,
                ));
            }
            return Ok(Lease {
                host_side,
                peer,
                address: subnet.host(number),
                prefix: subnet.prefix,
                gateway: subnet.gateway(),
            });
        }
        Err(format!("no free address left in {subnet} on {bridge}"))
    })
}

async fn delete_link(handle: &rtnetlink::Handle, name: &str) -> Result<(), String> {
    if let Some(index) = link_index(handle, name).await? {
        handle
            .link()
            .del(index)
            .execute()
            .await
            .map_err(|error| describe(&format!("deleting {name}"), error))?;
    }
    Ok(())
}

/// Moves the lease's peer into the network namespace of process `pid`, named
/// [`INSIDE_NAME`] there.
pub(crate) fn hand_over(lease: &Lease, pid: u32) -> Result<(), String> {
    with_netlink(async |handle| {
        let index = link_index(&handle, &lease.peer)
            .await?
            .ok_or_else(|| format!("{} is gone", lease.peer))?;
        handle
            .link()
            .set(
                LinkUnspec::new_with_index(index)
                    .setns_by_pid(pid)
                    .append_extra_attribute(LinkAttribute::IfName(INSIDE_NAME.into()))
                    .build(),
            )
            .execute()
            .await
            .map_err(|error| {
                describe(
                    &format!("moving {} into the child's namespace", lease.peer),
                    error,
                )
            })
    })
}

/// Removes the pair when the child never got it; deleting one end deletes both.
pub(crate) fn release(lease: &Lease) -> Result<(), String> {
    with_netlink(async |handle| delete_link(&handle, &lease.host_side).await)
}

/// Inside: address and default route on [`INSIDE_NAME`], from the parent's
/// `ADDRESS/PREFIX,GATEWAY`.
pub(crate) fn configure_inside(config: &str) -> Result<(), String> {
    let parse = || -> Option<(Ipv4Addr, u8, Ipv4Addr)> {
        let (cidr, gateway) = config.split_once(',')?;
        let (address, prefix) = cidr.split_once('/')?;
        Some((
            address.parse().ok()?,
            prefix.parse().ok()?,
            gateway.parse().ok()?,
        ))
    };
    let (address, prefix, gateway) =
        parse().ok_or_else(|| format!("malformed network configuration {config:?}"))?;
    with_netlink(async |handle| {
        let index = link_index(&handle, INSIDE_NAME)
            .await?
            .ok_or_else(|| format!("{INSIDE_NAME} never arrived in this namespace"))?;
        handle
            .address()
            .add(index, address.into(), prefix)
            .execute()
            .await
            .map_err(|error| {
                describe(
                    &format!("adding {address}/{prefix} to {INSIDE_NAME}"),
                    error,
                )
            })?;
        set_up_link(&handle, INSIDE_NAME).await?;
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .build();
        handle
            .route()
            .add(route)
            .execute()
            .await
            .map_err(|error| describe(&format!("adding the default route via {gateway}"), error))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        let subnet = Subnet::parse("10.10.10.0/24").unwrap();
        assert_eq!(subnet.gateway(), Ipv4Addr::new(10, 10, 10, 1));
        assert_eq!(subnet.child_hosts(), 2..=254);
        assert_eq!(subnet.host(2), Ipv4Addr::new(10, 10, 10, 2));
        assert!(
            Subnet::parse("10.10.10.1/24")
                .unwrap_err()
                .contains("host bits")
        );
        assert!(
            Subnet::parse("10.10.10.0")
                .unwrap_err()
                .contains("A.B.C.D/N")
        );
        assert!(
            Subnet::parse("10.10.10.0/31")
                .unwrap_err()
                .contains("16 to 30")
        );
        assert!(Subnet::parse("nonsense/24").unwrap_err().contains("IPv4"));
    }
}
