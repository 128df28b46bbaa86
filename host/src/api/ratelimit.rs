//! Per-client token buckets for `service.http.rate` (IPv6 clients share a bucket per /64).

use crate::config::RateLimiterConfig;
use crate::config::validate::parse_cidr;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets beyond this many trigger a sweep of full (idle) ones, bounding memory.
const MAX_TRACKED_CLIENTS: usize = 10_000;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The limiter. Rates come from the current config at each call, so changes apply at once.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                seg[4..].fill(0);
                IpAddr::V6(seg.into())
            }
        },
        v4 => v4,
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

impl RateLimiter {
    /// Takes a token for `ip`; false means "answer 429".
    pub fn allow(&self, ip: IpAddr, rate: &RateLimiterConfig) -> bool {
        let ip = client_key(ip);
        if rate
            .white_list
            .iter()
            .filter_map(|w| parse_cidr(w))
            .any(|(net, len)| in_cidr(ip, net, len))
        {
            return true;
        }
        let (tps, size) = (rate.tps() as f64, rate.size().max(1) as f64);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED_CLIENTS {
            buckets.retain(|_, b| b.tokens + now.duration_since(b.last).as_secs_f64() * tps < size);
        }
        let b = buckets.entry(ip).or_insert(Bucket {
            tokens: size,
            last: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * tps).min(size);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(tps: u32, size: u32, white: &[&str]) -> RateLimiterConfig {
        RateLimiterConfig {
            tps: Some(tps),
            size: Some(size),
            white_list: white.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn burst_then_refuse_per_client() {
        let l = RateLimiter::default();
        let r = rate(1, 3, &[]);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!((0..3).all(|_| l.allow(a, &r)));
        assert!(!l.allow(a, &r));
        assert!(l.allow(b, &r), "another client has its own bucket");
    }

    #[test]
    fn white_list_and_ipv6_prefix() {
        let l = RateLimiter::default();
        let r = rate(1, 1, &["192.168.0.0/16"]);
        let w: IpAddr = "192.168.4.4".parse().unwrap();
        assert!((0..10).all(|_| l.allow(w, &r)));
        let v6a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:1:2::ffff".parse().unwrap();
        assert!(l.allow(v6a, &r));
        assert!(!l.allow(v6b, &r), "same /64 shares the bucket");
        let all = rate(1, 1, &["0.0.0.0/0"]);
        let x: IpAddr = "8.8.8.8".parse().unwrap();
        assert!((0..5).all(|_| l.allow(x, &all)));
    }
}
