//! Host names that are IP addresses in disguise.
//!
//! A URL parser (WHATWG, as used by the HTTP client) already reads `2130706433`,
//! `0x7f.1` and `127.1` as IPv4; the system resolver (`inet_aton`) reads even more
//! forms. [`parse_literal`] accepts the union of what either might treat as an
//! address, so the guard refuses a literal before anything resolves it: decimal,
//! octal and hex parts, one to four of them, a trailing dot, IPv6 in brackets or not,
//! with or without a zone.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The address `host` denotes if it is an IP literal in any notation.
pub fn parse_literal(host: &str) -> Option<IpAddr> {
    let host = host.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host);
    if host.contains(':') {
        // A zone (`fe80::1%eth0`) does not change which address it is.
        let address = host.split_once('%').map_or(host, |(address, _)| address);
        return address.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    parse_ipv4(host).map(IpAddr::V4)
}

/// `inet_aton` semantics: `a`, `a.b`, `a.b.c` or `a.b.c.d`, each part decimal, octal
/// (leading `0`) or hex (`0x`); the last part fills the remaining bytes.
fn parse_ipv4(host: &str) -> Option<Ipv4Addr> {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() {
        return None;
    }
    let parts: Vec<&str> = host.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut numbers = Vec::with_capacity(parts.len());
    for part in &parts {
        numbers.push(parse_part(part)?);
    }
    let (last, leading) = numbers.split_last()?;
    let mut address: u64 = 0;
    for (index, value) in leading.iter().enumerate() {
        if *value > 255 {
            return None;
        }
        address |= value << (24 - 8 * index);
    }
    let room = 32 - 8 * leading.len();
    if *last >= 1u64 << room {
        return None;
    }
    address |= last;
    u32::try_from(address).ok().map(Ipv4Addr::from)
}

/// One part's value, or `None` when it is not a number in any base (or too large).
fn parse_part(part: &str) -> Option<u64> {
    let (digits, radix) =
        if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            (hex, 16)
        } else if part.len() > 1 && part.starts_with('0') {
            (&part[1..], 8)
        } else {
            (part, 10)
        };
    if digits.is_empty() {
        // `0x` alone is 0 to inet_aton; a lone `0` was taken as decimal above.
        return (radix == 16).then_some(0);
    }
    if !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    // Leading zeros do not make a number larger: drop them before the length check.
    let significant = digits.trim_start_matches('0');
    if significant.len() > 12 {
        return None;
    }
    u64::from_str_radix(
        if significant.is_empty() {
            "0"
        } else {
            significant
        },
        radix,
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
    }

    #[test]
    fn ipv4_in_every_notation() {
        let loopback = v4(127, 0, 0, 1);
        for form in [
            "127.0.0.1",
            "127.0.0.1.",
            "2130706433",
            "0x7f000001",
            "0X7F000001",
            "017700000001",
            "0x7f.1",
            "0x7f.0.1",
            "0177.0.0.1",
            "0177.0.0.01",
            "00000177.0.0.1",
            "127.1",
            "127.0.1",
            "0x7f.0x0.0x0.0x1",
            "[127.0.0.1]",
        ] {
            assert_eq!(parse_literal(form), loopback, "{form}");
        }
        assert_eq!(parse_literal("0"), v4(0, 0, 0, 0));
        assert_eq!(parse_literal("0x"), v4(0, 0, 0, 0));
        assert_eq!(parse_literal("10.1"), v4(10, 0, 0, 1));
        assert_eq!(parse_literal("3232235777"), v4(192, 168, 1, 1));
        assert_eq!(parse_literal("0xa9fea9fe"), v4(169, 254, 169, 254));
    }

    #[test]
    fn ipv6_with_brackets_zones_and_embedded_ipv4() {
        assert_eq!(parse_literal("[::1]"), Some("::1".parse().expect("v6")));
        assert_eq!(parse_literal("::1"), Some("::1".parse().expect("v6")));
        assert_eq!(
            parse_literal("[fe80::1%25eth0]"),
            Some("fe80::1".parse().expect("v6"))
        );
        assert_eq!(
            parse_literal("[::ffff:127.0.0.1]"),
            Some("::ffff:7f00:1".parse().expect("v6"))
        );
    }

    #[test]
    fn names_and_malformed_numbers_are_not_literals() {
        for name in [
            "example.com",
            "localhost",
            "1.2.3.4.5",
            "256.1.1.1",
            "1.256.1.1",
            "1.2.65536",
            "4294967296",
            "08.1.1.1",
            "0x1g",
            "1..1",
            "",
            ".",
            "[::1",
            "::zz",
            "99999999999999999999999",
            "1e3",
        ] {
            assert_eq!(parse_literal(name), None, "{name}");
        }
    }
}
