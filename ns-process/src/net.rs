//! Network setup through netlink (see `netlink.rs`), never by running `ip`.
//!
//! `--net bridge` reproduces the series' netsetgo without a setuid helper: the parent,
//! privileged in its own network namespace, makes sure the bridge exists with the
//! gateway address; then, while the child waits, it claims an address by creating a veth
//! pair whose host side is named after it and whose peer is created directly in the
//! child's network namespace, with the address written into its MAC; the child reads it
//! back and sets the address and default route on its side.
//!
//! Creating the pair with its peer already in the child's namespace leaves no moment at
//! which both ends sit on the host: if ns-process is killed, the pair goes with the
//! child's namespace.

use std::fmt;
use std::net::Ipv4Addr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_ECHO, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::netlink::{self, Netlink};

/// The name the child's end of the pair has inside, as in the series.
pub(crate) const INSIDE_NAME: &str = "veth1";

/// Runs one netlink conversation on a socket of its own, closed when it ends.
fn with_netlink<T>(work: impl FnOnce(&mut Netlink) -> Result<T, String>) -> Result<T, String> {
    work(&mut Netlink::open()?)
}

/// The kernel's errno in a netlink error, if it is one.
fn errno_of(error: &netlink::Error) -> Option<i32> {
    error.errno()
}

fn describe(what: &str, error: netlink::Error) -> String {
    format!("{what}: {error}")
}

/// The flags of a request that adds a link, address or route, as `ip` sends them: it must
/// not exist yet. RTM_SETLINK ignores them (rtnetlink sent them there too).
const CREATE: u16 = NLM_F_CREATE | NLM_F_EXCL;

/// A link message naming its link by `name`, or by `index` if it is not 0.
fn link_message(index: u32, name: Option<&str>) -> LinkMessage {
    let mut message = LinkMessage::default();
    message.header.index = index;
    if let Some(name) = name {
        message
            .attributes
            .push(LinkAttribute::IfName(name.to_owned()));
    }
    message
}

/// The link's up flag set (`up`) or cleared, and nothing else changed.
fn with_up(mut message: LinkMessage, up: bool) -> LinkMessage {
    message.header.flags.set(LinkFlags::Up, up);
    message.header.change_mask |= LinkFlags::Up;
    message
}

fn links_in(answers: Vec<RouteNetlinkMessage>) -> impl Iterator<Item = LinkMessage> {
    answers.into_iter().filter_map(|answer| match answer {
        RouteNetlinkMessage::NewLink(link) => Some(link),
        _ => None,
    })
}

fn set_link(netlink: &mut Netlink, message: LinkMessage) -> Result<(), netlink::Error> {
    netlink
        .request(RouteNetlinkMessage::SetLink(message), CREATE)
        .map(drop)
}

fn delete_index(netlink: &mut Netlink, index: u32) -> Result<(), netlink::Error> {
    netlink
        .request(RouteNetlinkMessage::DelLink(link_message(index, None)), 0)
        .map(drop)
}

/// The link named `name`, by one GETLINK for that name.
fn get_link(netlink: &mut Netlink, name: &str) -> Result<Option<LinkMessage>, netlink::Error> {
    let answers = netlink.request(RouteNetlinkMessage::GetLink(link_message(0, Some(name))), 0)?;
    Ok(links_in(answers).next())
}

fn find_link(netlink: &mut Netlink, name: &str) -> Result<Option<LinkMessage>, String> {
    match get_link(netlink, name) {
        Ok(link) => Ok(link),
        Err(error) if errno_of(&error) == Some(nix::libc::ENODEV) => Ok(None),
        Err(error) => Err(describe(&format!("looking up {name}"), error)),
    }
}

fn link_index(netlink: &mut Netlink, name: &str) -> Result<Option<u32>, String> {
    Ok(find_link(netlink, name)?.map(|link| link.header.index))
}

/// The link's kind (IFLA_INFO_KIND: "bridge", "veth", …); a network card has none.
fn kind_of(link: &LinkMessage) -> Option<&InfoKind> {
    link.attributes
        .iter()
        .find_map(|attribute| match attribute {
            LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|info| match info {
                LinkInfo::Kind(kind) => Some(kind),
                _ => None,
            }),
            _ => None,
        })
}

/// An IPv4 address message for `address/prefix` on the link `index`, as `ip address
/// add` sends it: local and peer address the same, and the broadcast address.
fn ipv4_address_message(index: u32, address: Ipv4Addr, prefix: u8) -> AddressMessage {
    let mut message = AddressMessage::default();
    message.header.family = AddressFamily::Inet;
    message.header.index = index;
    message.header.prefix_len = prefix;
    message
        .attributes
        .push(AddressAttribute::Address(address.into()));
    message
        .attributes
        .push(AddressAttribute::Local(address.into()));
    if prefix < 31 {
        let broadcast = Ipv4Addr::from(u32::MAX >> prefix | u32::from(address));
        message
            .attributes
            .push(AddressAttribute::Broadcast(broadcast));
    }
    message
}

fn add_address(
    netlink: &mut Netlink,
    index: u32,
    address: Ipv4Addr,
    prefix: u8,
) -> Result<(), netlink::Error> {
    let message = ipv4_address_message(index, address, prefix);
    netlink
        .request(RouteNetlinkMessage::NewAddress(message), CREATE)
        .map(drop)
}

/// The IPv4 addresses on the link `index`, each with its prefix length and the message
/// that deletes it.
fn ipv4_addresses(
    netlink: &mut Netlink,
    index: u32,
    name: &str,
) -> Result<Vec<(Ipv4Addr, u8, AddressMessage)>, String> {
    let mut request = AddressMessage::default();
    request.header.index = index;
    let answers = netlink
        .dump(RouteNetlinkMessage::GetAddress(request))
        .map_err(|error| describe(&format!("listing the addresses of {name}"), error))?;
    Ok(answers
        .into_iter()
        .filter_map(|answer| match answer {
            RouteNetlinkMessage::NewAddress(message) => Some(message),
            _ => None,
        })
        // Without strict checking the kernel lists every link's addresses.
        .filter(|message| message.header.index == index)
        .filter(|message| message.header.family == AddressFamily::Inet)
        .filter_map(|message| {
            let address = message
                .attributes
                .iter()
                .find_map(|attribute| match attribute {
                    AddressAttribute::Local(std::net::IpAddr::V4(address)) => Some(*address),
                    _ => None,
                })?;
            Some((address, message.header.prefix_len, message))
        })
        .collect())
}

/// The links on the bridge `bridge_index` (whose controller it is): index and name.
fn ports_of(netlink: &mut Netlink, bridge_index: u32) -> Result<Vec<(u32, String)>, String> {
    // Asks the kernel for the bridge's ports only (it filters a dump by IFLA_MASTER
    // since Linux 4.5); the filter below keeps the answer right on older kernels.
    let mut request = LinkMessage::default();
    request
        .attributes
        .push(LinkAttribute::Controller(bridge_index));
    let answers = netlink
        .dump(RouteNetlinkMessage::GetLink(request))
        .map_err(|error| describe("listing the links", error))?;
    Ok(links_in(answers)
        .filter(|link| {
            link.attributes
                .contains(&LinkAttribute::Controller(bridge_index))
        })
        .map(|link| {
            let index = link.header.index;
            let name = link
                .attributes
                .into_iter()
                .find_map(|attribute| match attribute {
                    LinkAttribute::IfName(name) => Some(name),
                    _ => None,
                });
            (index, name.unwrap_or_else(|| format!("link {index}")))
        })
        .collect())
}

fn set_up_link(netlink: &mut Netlink, name: &str) -> Result<(), String> {
    set_link(netlink, with_up(link_message(0, Some(name)), true))
        .map_err(|error| describe(&format!("setting {name} up"), error))
}

/// Sets the link `name` up (`ip link set NAME up`).
pub(crate) fn set_up(name: &str) -> Result<(), String> {
    with_netlink(|netlink| set_up_link(netlink, name))
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

    /// The subnet `address/prefix` is in, for any prefix length an interface may carry.
    fn of(address: Ipv4Addr, prefix: u8) -> Subnet {
        let prefix = prefix.min(32);
        let subnet = Subnet {
            network: address,
            prefix,
        };
        Subnet {
            network: Ipv4Addr::from(u32::from(address) & subnet.mask()),
            prefix,
        }
    }

    fn mask(self) -> u32 {
        // A shift by 32, for /0, would overflow.
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    fn host(self, number: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + number)
    }

    /// The bridge's address, which the children route through.
    pub(crate) fn gateway(self) -> Ipv4Addr {
        self.host(1)
    }

    fn contains(self, address: Ipv4Addr) -> bool {
        u32::from(address) & self.mask() == u32::from(self.network)
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
    /// The host side's index, by which it is released: once the child's namespace is
    /// gone the kernel removes the pair, and another run may claim the same address and
    /// so the same name — which a release by name would then take from it.
    host_index: u32,
    pub(crate) address: Ipv4Addr,
}

/// The longest bridge name that leaves room for `-NNNNN` in the kernel's 15 bytes of an
/// interface name.
pub(crate) const MAX_BRIDGE_NAME: usize = 9;

/// A locally administered unicast MAC that carries an IPv4 address, as Docker's do.
fn mac_for(address: Ipv4Addr) -> Vec<u8> {
    let [a, b, c, d] = address.octets();
    vec![0x02, 0x00, a, b, c, d]
}

fn address_in(mac: &[u8]) -> Option<Ipv4Addr> {
    match mac {
        [0x02, 0x00, a, b, c, d] => Some(Ipv4Addr::new(*a, *b, *c, *d)),
        _ => None,
    }
}

/// What one run added to the host for its bridge, so that a start that fails can take
/// it back. A successful start keeps it: the bridge serves the next runs too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Added {
    bridge: String,
    /// The bridge's index, so that a bridge of the same name made later by someone else
    /// is never taken for ours.
    index: Option<u32>,
    /// The bridge itself was created by this run.
    created: bool,
    /// This run added the gateway address of this subnet (and with it its route).
    gateway: Option<Subnet>,
    /// This run set the bridge up.
    set_up: bool,
    /// The links already on the bridge when this run found it. Interface indices are
    /// not reused the way names are, so a port not among them is a newcomer.
    ports_before: Vec<u32>,
}

impl Added {
    fn nothing(bridge: &str) -> Added {
        Added {
            bridge: bridge.to_owned(),
            index: None,
            created: false,
            gateway: None,
            set_up: false,
            ports_before: Vec::new(),
        }
    }

    /// The bridge's name.
    pub(crate) fn bridge(&self) -> &str {
        &self.bridge
    }

    /// Whether this run changed the host at all.
    pub(crate) fn is_nothing(&self) -> bool {
        !self.created && self.gateway.is_none() && !self.set_up
    }
}

impl fmt::Display for Added {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.created {
            parts.push(format!("bridge {}", self.bridge));
        }
        if let Some(subnet) = self.gateway {
            parts.push(format!(
                "{}/{} on {}",
                subnet.gateway(),
                subnet.prefix,
                self.bridge
            ));
        }
        if self.set_up {
            parts.push(format!("{} up", self.bridge));
        }
        f.write_str(&parts.join(", "))
    }
}

/// Why a bridge named by `--bridge` can't serve: it is not a bridge.
fn check_is_bridge(name: &str, link: &LinkMessage) -> Result<(), String> {
    let what = match kind_of(link) {
        Some(InfoKind::Bridge) => return Ok(()),
        Some(kind) => format!("a {kind} link"),
        None => "a device with no link kind (such as a network card)".to_owned(),
    };
    Err(format!(
        "--bridge {name} is {what}, not a bridge, and ns-process would put the gateway \
         address on it; give the name of a bridge, or a name no link has yet and \
         ns-process creates the bridge"
    ))
}

/// Refuses a bridge that carries an IPv4 address other than `subnet`'s gateway: it
/// serves another subnet (or another host in this one), and a second gateway address
/// would join two networks on one bridge. Returns whether the gateway is there.
fn check_serves(
    bridge: &str,
    subnet: Subnet,
    addresses: &[(Ipv4Addr, u8, AddressMessage)],
) -> Result<bool, String> {
    let gateway = subnet.gateway();
    let mut has_gateway = false;
    for &(address, prefix, _) in addresses {
        let theirs = Subnet::of(address, prefix);
        if theirs != subnet {
            return Err(format!(
                "--bridge {bridge} already serves {theirs} (it has {address}/{prefix}), not \
                 the asked --subnet {subnet}; give --subnet {theirs} to join it, or another \
                 --bridge for {subnet}"
            ));
        }
        if address != gateway {
            return Err(format!(
                "--bridge {bridge} has {address}/{prefix}, not the gateway {gateway}/{prefix} \
                 of --subnet {subnet} that ns-process routes through; remove that address \
                 from {bridge}, or give another --bridge"
            ));
        }
        has_gateway = true;
    }
    Ok(has_gateway)
}

/// Makes sure the bridge exists, is a bridge, serves `subnet` and is up; returns what
/// this run added. A refusal comes before any change; a failure after one takes back
/// what this run added before it returns.
///
/// Another ns-process may do the same at the same time on the same bridge: the caller
/// holds the bridge's lock (see `bridge.rs`), and every step also tolerates a bridge or
/// address that appeared meanwhile.
pub(crate) fn ensure_bridge(bridge: &str, subnet: Subnet) -> Result<Added, String> {
    with_netlink(|netlink| {
        let mut added = Added::nothing(bridge);
        match ensure(netlink, bridge, subnet, &mut added) {
            Ok(()) => Ok(added),
            Err(error) => match take_back_with(netlink, &added) {
                Ok(_) => Err(error),
                Err(undo) => Err(format!("{error}; then taking back {added}: {undo}")),
            },
        }
    })
}

/// Creates the bridge `name`, up; returns the new link if the kernel echoed it (RTM_NEWLINK
/// honours NLM_F_ECHO since about Linux 6.2), or `None` if it did not or the bridge
/// existed already.
fn create_bridge(
    netlink: &mut Netlink,
    name: &str,
    added: &mut Added,
) -> Result<Option<LinkMessage>, String> {
    let mut message = with_up(link_message(0, Some(name)), true);
    message
        .attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
            InfoKind::Bridge,
        )]));
    match netlink.request(RouteNetlinkMessage::NewLink(message), CREATE | NLM_F_ECHO) {
        Ok(answers) => {
            added.created = true;
            Ok(links_in(answers).find(|link| {
                link.attributes
                    .contains(&LinkAttribute::IfName(name.to_owned()))
            }))
        }
        Err(error) if errno_of(&error) == Some(nix::libc::EEXIST) => Ok(None),
        Err(error) => Err(describe(&format!("creating bridge {name}"), error)),
    }
}

fn ensure(
    netlink: &mut Netlink,
    bridge: &str,
    subnet: Subnet,
    added: &mut Added,
) -> Result<(), String> {
    let link = match find_link(netlink, bridge)? {
        Some(link) => link,
        // The echo gives the index of the bridge this run made: a failed lookup can
        // then not leave it behind.
        None => match create_bridge(netlink, bridge, added)? {
            Some(link) => link,
            None => find_link(netlink, bridge)?
                .ok_or_else(|| format!("bridge {bridge} vanished right after it was created"))?,
        },
    };
    let index = link.header.index;
    added.index = Some(index);
    check_is_bridge(bridge, &link)?;
    added.ports_before = ports_of(netlink, index)?
        .into_iter()
        .map(|(index, _)| index)
        .collect();
    let addresses = ipv4_addresses(netlink, index, bridge)?;
    if !check_serves(bridge, subnet, &addresses)? {
        match add_address(netlink, index, subnet.gateway(), subnet.prefix) {
            Ok(()) => added.gateway = Some(subnet),
            Err(error) if errno_of(&error) == Some(nix::libc::EEXIST) => {}
            Err(error) => {
                return Err(describe(
                    &format!("adding {}/{} to {bridge}", subnet.gateway(), subnet.prefix),
                    error,
                ));
            }
        }
    }
    if !link.header.flags.contains(LinkFlags::Up) {
        set_up_link(netlink, bridge)?;
        added.set_up = true;
    }
    Ok(())
}

/// What became of a run's changes to the host when its start failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TakenBack {
    /// All of it is gone (or was gone already).
    All,
    /// A link joined the bridge after this run made it ready, `.0`: another ns-process
    /// (or someone) uses it now, so it stays as it is.
    KeptInUse(String),
}

/// Takes back what `added` records, unless the bridge is in use by then: a link that
/// joined it after this run made it ready is another ns-process's (or someone's) and
/// needs the bridge, its address and its being up. Links that were on it before are no
/// reason to keep anything: the host had them without what this run added. The caller
/// holds the bridge's lock, so no ns-process is between making the bridge ready and
/// attaching to it.
pub(crate) fn take_back(added: &Added) -> Result<TakenBack, String> {
    with_netlink(|netlink| take_back_with(netlink, added))
}

fn take_back_with(netlink: &mut Netlink, added: &Added) -> Result<TakenBack, String> {
    let bridge = &added.bridge;
    if added.is_nothing() {
        return Ok(TakenBack::All);
    }
    let Some(link) = find_link(netlink, bridge)? else {
        return Ok(TakenBack::All);
    };
    let index = link.header.index;
    if Some(index) != added.index {
        // Another link of that name now: not ours to touch.
        return Ok(TakenBack::All);
    }
    let newcomer = ports_of(netlink, index)?
        .into_iter()
        .find(|(port, _)| !added.ports_before.contains(port));
    if let Some((_, name)) = newcomer {
        return Ok(TakenBack::KeptInUse(name));
    }
    if added.created {
        // Its addresses and their routes go with it.
        return match delete_index(netlink, index) {
            Ok(()) => Ok(TakenBack::All),
            Err(error) if errno_of(&error) == Some(nix::libc::ENODEV) => Ok(TakenBack::All),
            Err(error) => Err(describe(&format!("deleting bridge {bridge}"), error)),
        };
    }
    if let Some(subnet) = added.gateway {
        let gateway = subnet.gateway();
        let ours = ipv4_addresses(netlink, index, bridge)?
            .into_iter()
            .find(|&(address, prefix, _)| address == gateway && prefix == subnet.prefix);
        if let Some((_, _, message)) = ours {
            // The prefix route the kernel added with it goes with it.
            match netlink.request(RouteNetlinkMessage::DelAddress(message), 0) {
                Ok(_) => {}
                Err(error) if errno_of(&error) == Some(nix::libc::EADDRNOTAVAIL) => {}
                Err(error) => {
                    return Err(describe(
                        &format!("removing {gateway}/{} from {bridge}", subnet.prefix),
                        error,
                    ));
                }
            }
        }
    }
    if added.set_up {
        set_link(netlink, with_up(link_message(index, None), false))
            .map_err(|error| describe(&format!("setting {bridge} down"), error))?;
    }
    Ok(TakenBack::All)
}

/// Claims the first free address for the child `pid`: creates a veth pair whose host
/// side, named after the address, joins the bridge, and whose peer is born in the
/// child's network namespace as [`INSIDE_NAME`] with the address in its MAC. Creating a
/// link is atomic, so two instances can never claim the same address.
pub(crate) fn attach(bridge: &str, subnet: Subnet, pid: u32) -> Result<Lease, String> {
    with_netlink(|netlink| {
        let bridge_index =
            link_index(netlink, bridge)?.ok_or_else(|| format!("bridge {bridge} is gone"))?;
        for number in subnet.child_hosts() {
            let host_side = format!("{bridge}-{number}");
            let address = subnet.host(number);
            let mut peer = link_message(0, Some(INSIDE_NAME));
            peer.attributes
                .push(LinkAttribute::Address(mac_for(address)));
            peer.attributes.push(LinkAttribute::NetNsPid(pid));
            let mut pair = link_message(0, Some(&host_side));
            pair.attributes.push(LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Veth),
                LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
            ]));
            match netlink.request(RouteNetlinkMessage::NewLink(pair), CREATE) {
                Ok(_) => {}
                Err(error) if errno_of(&error) == Some(nix::libc::EEXIST) => continue,
                Err(error) => {
                    return Err(describe(&format!("creating veth pair {host_side}"), error));
                }
            }
            let mut attach = with_up(link_message(0, Some(&host_side)), true);
            attach
                .attributes
                .push(LinkAttribute::Controller(bridge_index));
            if let Err(error) = set_link(netlink, attach) {
                let _ = delete_link(netlink, &host_side);
                return Err(describe(
                    &format!("attaching {host_side} to {bridge}"),
                    error,
                ));
            }
            // Still ours: the child waits, so its namespace, and the pair, are alive.
            let host_index = link_index(netlink, &host_side)?
                .ok_or_else(|| format!("{host_side} vanished right after it was created"))?;
            return Ok(Lease {
                host_side,
                host_index,
                address,
            });
        }
        Err(format!("no free address left in {subnet} on {bridge}"))
    })
}

fn delete_link(netlink: &mut Netlink, name: &str) -> Result<(), String> {
    if let Some(index) = link_index(netlink, name)? {
        match delete_index(netlink, index) {
            Ok(()) => {}
            // Gone meanwhile, with the child's namespace.
            Err(error) if errno_of(&error) == Some(nix::libc::ENODEV) => {}
            Err(error) => return Err(describe(&format!("deleting {name}"), error)),
        }
    }
    Ok(())
}

/// Removes the pair, if the kernel has not already; deleting one end deletes both.
pub(crate) fn release(lease: &Lease) -> Result<(), String> {
    with_netlink(|netlink| match delete_index(netlink, lease.host_index) {
        Ok(()) => Ok(()),
        // Gone meanwhile, with the child's namespace.
        Err(error) if errno_of(&error) == Some(nix::libc::ENODEV) => Ok(()),
        Err(error) => Err(describe(&format!("deleting {}", lease.host_side), error)),
    })
}

/// Inside: the address the parent put into [`INSIDE_NAME`]'s MAC. Known from the start
/// of the setup (the parent attached the pair while the init waited), so that
/// `/etc/hosts` can give it to the hostname before the pivot.
pub(crate) fn inside_address(subnet: Subnet) -> Result<Ipv4Addr, String> {
    with_netlink(|netlink| {
        let link = inside_link(netlink)?;
        link.attributes
            .iter()
            .find_map(|attribute| match attribute {
                LinkAttribute::Address(mac) => address_in(mac),
                _ => None,
            })
            .filter(|&address| subnet.contains(address))
            .ok_or_else(|| format!("{INSIDE_NAME} carries no address of {subnet} in its MAC"))
    })
}

fn inside_link(netlink: &mut Netlink) -> Result<LinkMessage, String> {
    match get_link(netlink, INSIDE_NAME) {
        Ok(Some(link)) => Ok(link),
        Ok(None) => Err(format!("{INSIDE_NAME} never arrived in this namespace")),
        Err(error) => Err(describe(&format!("looking up {INSIDE_NAME}"), error)),
    }
}

/// Inside: `address` (from [`inside_address`]) on [`INSIDE_NAME`], and a default route
/// through the bridge.
pub(crate) fn configure_inside(subnet: Subnet, address: Ipv4Addr) -> Result<(), String> {
    with_netlink(|netlink| {
        let index = inside_link(netlink)?.header.index;
        add_address(netlink, index, address, subnet.prefix).map_err(|error| {
            describe(
                &format!("adding {address}/{} to {INSIDE_NAME}", subnet.prefix),
                error,
            )
        })?;
        set_up_link(netlink, INSIDE_NAME)?;
        let gateway = subnet.gateway();
        netlink
            .request(
                RouteNetlinkMessage::NewRoute(default_route(gateway)),
                CREATE,
            )
            .map(drop)
            .map_err(|error| describe(&format!("adding the default route via {gateway}"), error))
    })
}

/// The main table's IPv4 default route through `gateway`, as `ip route add default via`
/// makes it.
fn default_route(gateway: Ipv4Addr) -> RouteMessage {
    let mut route = RouteMessage::default();
    route.header.address_family = AddressFamily::Inet;
    route.header.table = RouteHeader::RT_TABLE_MAIN;
    route.header.protocol = RouteProtocol::Static;
    route.header.scope = RouteScope::Universe;
    route.header.kind = RouteType::Unicast;
    route
        .attributes
        .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
    route
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
        assert!(subnet.contains(Ipv4Addr::new(10, 10, 10, 200)));
        assert!(!subnet.contains(Ipv4Addr::new(10, 10, 11, 2)));
    }

    #[test]
    fn the_subnet_an_interface_address_is_in() {
        let of = |a, b, c, d, prefix| Subnet::of(Ipv4Addr::new(a, b, c, d), prefix).to_string();
        assert_eq!(of(10, 10, 10, 1, 24), "10.10.10.0/24");
        assert_eq!(of(10, 10, 10, 1, 16), "10.10.0.0/16");
        assert_eq!(of(192, 168, 1, 9, 32), "192.168.1.9/32");
        assert_eq!(of(192, 168, 1, 9, 0), "0.0.0.0/0");
        assert_eq!(
            Subnet::of(Ipv4Addr::new(10, 10, 10, 1), 24),
            Subnet::parse("10.10.10.0/24").unwrap()
        );
    }

    #[test]
    fn addresses_travel_in_macs() {
        let address = Ipv4Addr::new(10, 10, 10, 7);
        assert_eq!(mac_for(address), [0x02, 0x00, 10, 10, 10, 7]);
        assert_eq!(address_in(&mac_for(address)), Some(address));
        assert_eq!(address_in(&[0x52, 0x54, 0, 0, 0, 1]), None);
    }
}
