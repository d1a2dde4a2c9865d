//! `cidr` values: an IPv4 or IPv6 block, matched against event strings
//! that are addresses of the same family.
//! <https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html#eb-filtering-ip-matching>

use std::net::IpAddr;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Cidr {
    /// Network bits and mask; invariant: `net & !mask == 0`.
    V4 {
        net: u32,
        mask: u32,
    },
    V6 {
        net: u128,
        mask: u128,
    },
}

impl Cidr {
    pub(crate) fn parse(text: &str) -> Result<Cidr, String> {
        let bad = || format!("Malformed CIDR, {text} is not an IPv4 or IPv6 block");
        let (addr, bits) = text.split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let bits: u32 = bits.parse().map_err(|_| bad())?;
        match addr {
            IpAddr::V4(a) if bits <= 32 => {
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                Ok(Cidr::V4 {
                    net: u32::from(a) & mask,
                    mask,
                })
            }
            IpAddr::V6(a) if bits <= 128 => {
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                Ok(Cidr::V6 {
                    net: u128::from(a) & mask,
                    mask,
                })
            }
            _ => Err(bad()),
        }
    }

    pub(crate) fn contains(&self, text: &str) -> bool {
        match (self, text.parse::<IpAddr>()) {
            (Cidr::V4 { net, mask }, Ok(IpAddr::V4(a))) => u32::from(a) & mask == *net,
            (Cidr::V6 { net, mask }, Ok(IpAddr::V6(a))) => u128::from(a) & mask == *net,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_contain_their_addresses_only() {
        let v4 = Cidr::parse("10.0.0.0/24").expect("v4");
        assert!(v4.contains("10.0.0.255"));
        assert!(!v4.contains("10.0.1.0"));
        assert!(!v4.contains("not an ip"));
        let all = Cidr::parse("0.0.0.0/0").expect("all");
        assert!(all.contains("192.168.1.1"));
        assert!(!all.contains("::1"));
        let v6 = Cidr::parse("2001:db8::/32").expect("v6");
        assert!(v6.contains("2001:db8:1::5"));
        assert!(!v6.contains("2001:db9::1"));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("10.0.0.0").is_err());
        assert!(Cidr::parse("x/8").is_err());
    }
}
