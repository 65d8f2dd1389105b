use std::net::IpAddr;

use super::*;
use crate::category::Category::{self, *};

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address parses")
}

/// Every refused range, at its first address, somewhere inside and at its last
/// address; then the public neighbours just outside.
#[test]
fn every_refused_range_is_classified() {
    let table: &[(&str, Category)] = &[
        ("0.0.0.0", Unspecified),
        ("0.1.2.3", Unspecified),
        ("0.255.255.255", Unspecified),
        ("10.0.0.0", Private),
        ("10.20.30.40", Private),
        ("10.255.255.255", Private),
        ("100.64.0.0", Cgnat),
        ("100.100.1.1", Cgnat),
        ("100.127.255.255", Cgnat),
        ("127.0.0.1", Loopback),
        ("127.0.0.2", Loopback),
        ("127.255.255.255", Loopback),
        ("169.254.0.1", LinkLocal),
        ("169.254.255.255", LinkLocal),
        ("172.16.0.0", Private),
        ("172.31.255.255", Private),
        ("192.0.0.0", Reserved),
        ("192.0.0.170", Reserved),
        ("192.0.2.1", Documentation),
        ("192.88.99.1", Reserved),
        ("192.168.0.1", Private),
        ("192.168.255.255", Private),
        ("198.18.0.1", Benchmarking),
        ("198.19.255.255", Benchmarking),
        ("198.51.100.7", Documentation),
        ("203.0.113.9", Documentation),
        ("224.0.0.1", Multicast),
        ("239.255.255.250", Multicast),
        ("240.0.0.1", Reserved),
        ("254.255.255.255", Reserved),
        ("255.255.255.255", Broadcast),
        ("169.254.169.254", Metadata),
        ("169.254.169.253", Metadata),
        ("169.254.170.2", Metadata),
        ("100.100.100.200", Metadata),
        ("192.0.0.192", Metadata),
        ("168.63.129.16", Metadata),
        ("::", Unspecified),
        ("::1", Loopback),
        ("::ffff:127.0.0.1", Ipv4Mapped),
        ("::ffff:8.8.8.8", Ipv4Mapped),
        ("::127.0.0.1", Ipv4Mapped),
        ("::ffff:0:10.0.0.1", Ipv4Mapped),
        ("64:ff9b::127.0.0.1", Nat64),
        ("64:ff9b::10.0.0.1", Nat64),
        ("64:ff9b::169.254.169.254", Nat64),
        ("64:ff9b:1::1", Nat64),
        ("2002:7f00:1::", SixToFour),
        ("2002:c0a8:101::1", SixToFour),
        ("2002:a9fe:a9fe::", SixToFour),
        // Teredo, server 65.54.227.120, client 127.0.0.1 (inverted: 80ff:fffe).
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", Teredo),
        // Teredo with a private server.
        ("2001:0:a00:1::1", Teredo),
        ("2001:db8::1", Documentation),
        ("2001:db8:ffff::1", Documentation),
        ("3fff::1", Documentation),
        ("3fff:fff::1", Documentation),
        ("2001:2::1", Benchmarking),
        ("2001:10::1", Reserved),
        ("2001:20::1", Reserved),
        ("100::1", Reserved),
        ("5f00::1", Reserved),
        ("fc00::1", UniqueLocal),
        ("fd12:3456::1", UniqueLocal),
        ("fd00:ec2::254", Metadata),
        ("fe80::1", LinkLocal),
        ("febf:ffff::1", LinkLocal),
        ("fec0::1", SiteLocal),
        ("feff::1", SiteLocal),
        ("ff02::1", Multicast),
        ("ff0e::1", Multicast),
        ("4000::1", Reserved),
        ("1::1", Reserved),
    ];
    for (text, expected) in table {
        assert_eq!(classify(ip(text)), Some(*expected), "{text}");
    }
}

#[test]
fn public_addresses_are_allowed() {
    for text in [
        "1.1.1.1",
        "8.8.8.8",
        "9.255.255.255",
        "11.0.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "126.255.255.255",
        "128.0.0.0",
        "169.253.255.255",
        "169.255.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "192.0.1.0",
        "192.0.3.0",
        "192.167.255.255",
        "192.169.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "223.255.255.255",
        "2606:4700:4700::1111",
        "2a00:1450:4001::200e",
        "2001:4860:4860::8888",
        "64:ff9b::8.8.8.8",
        "2002:808:808::1",
        // Teredo with public server and client (client 8.8.8.8 inverted).
        "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
    ] {
        assert_eq!(classify(ip(text)), None, "{text}");
    }
}

proptest::proptest! {
    /// Each IPv4 address gets the same answer in its IPv4-mapped and NAT64 forms
    /// as refused or not (mapped: always refused).
    #[test]
    fn embedded_forms_follow_the_embedded_address(raw in proptest::prelude::any::<u32>()) {
        let v4 = Ipv4Addr::from(raw);
        proptest::prop_assert_eq!(classify(IpAddr::V6(v4.to_ipv6_mapped())), Some(Ipv4Mapped));
        let nat64 = Ipv6Addr::from((0x0064_ff9b_u128 << 96) | u128::from(raw));
        proptest::prop_assert_eq!(classify(IpAddr::V6(nat64)).is_some(), classify_v4(v4).is_some());
        let six_to_four = Ipv6Addr::from((0x2002_u128 << 112) | (u128::from(raw) << 80) | 1);
        proptest::prop_assert_eq!(classify(IpAddr::V6(six_to_four)).is_some(), classify_v4(v4).is_some());
    }
}
