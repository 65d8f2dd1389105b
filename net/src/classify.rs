//! The address classifier: which IP addresses scripts may not reach, and why.
//!
//! The ranges come from the IANA special-purpose address registries (RFC 6890 and
//! successors) plus the cloud metadata endpoints. IPv6 forms that embed an IPv4
//! address are judged by the address they embed: IPv4-mapped and -compatible forms
//! always (a script has no reason to use them, and sockets route them to IPv4),
//! NAT64, 6to4 and Teredo when the embedded address is itself refused. Anything
//! outside global unicast (`2000::/3`) is reserved.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::category::Category;

/// Instance metadata services (AWS, GCP, Azure, Alibaba, Oracle, ECS task metadata,
/// AWS's DNS and IPv6 IMDS). Checked first: some sit in ranges refused for another
/// reason, one (Azure's wire server) in public space.
const METADATA_V4: [Ipv4Addr; 6] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 169, 253),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(192, 0, 0, 192),
    Ipv4Addr::new(168, 63, 129, 16),
];
const METADATA_V6: [Ipv6Addr; 1] = [Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)];

/// Why `ip` may not be reached, or `None` for a public address.
pub fn classify(ip: IpAddr) -> Option<Category> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// [`classify`] for an IPv4 address.
pub fn classify_v4(ip: Ipv4Addr) -> Option<Category> {
    if METADATA_V4.contains(&ip) {
        return Some(Category::Metadata);
    }
    let a = u32::from(ip);
    let within = |net: [u8; 4], len: u32| in_v4(a, net, len);
    let category = if within([0, 0, 0, 0], 8) {
        // "This network": Linux connects 0.0.0.0 to the local host.
        Category::Unspecified
    } else if within([127, 0, 0, 0], 8) {
        Category::Loopback
    } else if within([10, 0, 0, 0], 8)
        || within([172, 16, 0, 0], 12)
        || within([192, 168, 0, 0], 16)
    {
        Category::Private
    } else if within([100, 64, 0, 0], 10) {
        Category::Cgnat
    } else if within([169, 254, 0, 0], 16) {
        Category::LinkLocal
    } else if within([192, 0, 2, 0], 24)
        || within([198, 51, 100, 0], 24)
        || within([203, 0, 113, 0], 24)
    {
        Category::Documentation
    } else if within([198, 18, 0, 0], 15) {
        Category::Benchmarking
    } else if within([224, 0, 0, 0], 4) {
        Category::Multicast
    } else if a == u32::MAX {
        Category::Broadcast
    } else if within([192, 0, 0, 0], 24)
        || within([192, 88, 99, 0], 24)
        || within([240, 0, 0, 0], 4)
    {
        // IETF protocol assignments, the old 6to4 relay anycast, class E.
        Category::Reserved
    } else {
        return None;
    };
    Some(category)
}

/// [`classify`] for an IPv6 address.
pub fn classify_v6(ip: Ipv6Addr) -> Option<Category> {
    if METADATA_V6.contains(&ip) {
        return Some(Category::Metadata);
    }
    let a = u128::from(ip);
    let within = |net: u128, len: u32| in_v6(a, net, len);
    // The IPv4 address in the low 32 bits.
    let low_v4 = Ipv4Addr::from((a & 0xffff_ffff) as u32);
    let category = if a == 0 {
        Category::Unspecified
    } else if a == 1 {
        Category::Loopback
    } else if within(0xffff << 32, 96) || within(0, 96) || within(0xffff << 48, 96) {
        // IPv4-mapped, IPv4-compatible (deprecated) and IPv4-translated (SIIT).
        Category::Ipv4Mapped
    } else if within(0x0064_ff9b << 96, 96) {
        classify_v4(low_v4)?;
        Category::Nat64
    } else if within(0x0064_ff9b_0001 << 80, 48) {
        // Local-use NAT64: translated inside someone's network.
        Category::Nat64
    } else if within(0x2002 << 112, 16) {
        classify_v4(Ipv4Addr::from(((a >> 80) & 0xffff_ffff) as u32))?;
        Category::SixToFour
    } else if within(0x2001_0000 << 96, 32) {
        // Teredo: the server's address in bits 32..64, the client's inverted at the end.
        let server = Ipv4Addr::from(((a >> 64) & 0xffff_ffff) as u32);
        let client = Ipv4Addr::from(!((a & 0xffff_ffff) as u32));
        if classify_v4(server).is_none() && classify_v4(client).is_none() {
            return None;
        }
        Category::Teredo
    } else if within(0x2001_0db8 << 96, 32) || within(0x3fff << 112, 20) {
        Category::Documentation
    } else if within(0x2001_0002_0000 << 80, 48) {
        Category::Benchmarking
    } else if within(0xfc00 << 112, 7) {
        Category::UniqueLocal
    } else if within(0xfe80 << 112, 10) {
        Category::LinkLocal
    } else if within(0xfec0 << 112, 10) {
        Category::SiteLocal
    } else if within(0xff00 << 112, 8) {
        Category::Multicast
    } else if within(0x2001 << 112, 23)
        || within(0x0100 << 112, 64)
        || within(0x5f00 << 112, 16)
        || !within(0x2000 << 112, 3)
    {
        // IETF protocol assignments (ORCHID, AMT, AS112 …), discard-only, SRv6
        // SIDs, and everything outside global unicast.
        Category::Reserved
    } else {
        return None;
    };
    Some(category)
}

fn in_v4(a: u32, net: [u8; 4], len: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    a & mask == u32::from_be_bytes(net) & mask
}

fn in_v6(a: u128, net: u128, len: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    a & mask == net & mask
}

#[cfg(test)]
mod tests;
