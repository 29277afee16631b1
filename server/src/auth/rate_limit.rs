//! Counts failed sign-ins per account and per client IP within a sliding window.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{ApiError, ApiResult};

#[derive(Debug)]
pub struct LoginRateLimiter {
    per_account: u32,
    per_ip: u32,
    window: Duration,
    failures: Mutex<Failures>,
}

#[derive(Debug, Default)]
struct Failures {
    accounts: HashMap<String, VecDeque<Instant>>,
    ips: HashMap<IpAddr, VecDeque<Instant>>,
}

fn prune(times: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while times
        .front()
        .is_some_and(|at| now.duration_since(*at) >= window)
    {
        times.pop_front();
    }
}

impl LoginRateLimiter {
    pub fn new(per_account: u32, per_ip: u32, window: Duration) -> Self {
        Self {
            per_account,
            per_ip,
            window,
            failures: Mutex::new(Failures::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Failures> {
        // A panic while holding the lock leaves plain counters behind: still usable.
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Refuses (429) when the account or the IP has used up its failures in the window.
    pub fn check(&self, username: &str, ip: IpAddr) -> ApiResult<()> {
        self.check_at(username, ip, Instant::now())
    }

    fn check_at(&self, username: &str, ip: IpAddr, now: Instant) -> ApiResult<()> {
        let mut failures = self.lock();
        let window = self.window;
        let mut wait = Duration::ZERO;
        if let Some(times) = failures.accounts.get_mut(username) {
            prune(times, now, window);
            if times.len() as u32 >= self.per_account {
                if let Some(first) = times.front() {
                    wait = wait.max(window.saturating_sub(now.duration_since(*first)));
                }
            }
        }
        if let Some(times) = failures.ips.get_mut(&ip) {
            prune(times, now, window);
            if times.len() as u32 >= self.per_ip {
                if let Some(first) = times.front() {
                    wait = wait.max(window.saturating_sub(now.duration_since(*first)));
                }
            }
        }
        if wait > Duration::ZERO {
            return Err(ApiError::rate_limited(wait));
        }
        Ok(())
    }

    pub fn record_failure(&self, username: &str, ip: IpAddr) {
        let now = Instant::now();
        let mut failures = self.lock();
        failures
            .accounts
            .entry(username.to_owned())
            .or_default()
            .push_back(now);
        failures.ips.entry(ip).or_default().push_back(now);
        // Keeps memory bounded under a spray of made-up usernames.
        if failures.accounts.len() > 100_000 {
            let window = self.window;
            failures.accounts.retain(|_, times| {
                prune(times, now, window);
                !times.is_empty()
            });
        }
    }

    /// A successful sign-in clears the account's failures (not the IP's).
    pub fn record_success(&self, username: &str) {
        self.lock().accounts.remove(username);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn account_is_limited_after_its_failures_then_freed_by_time() {
        let limiter = LoginRateLimiter::new(3, 100, Duration::from_secs(60));
        for _ in 0..3 {
            limiter.check("ann", IP).unwrap();
            limiter.record_failure("ann", IP);
        }
        assert!(matches!(
            limiter.check("ann", IP),
            Err(ApiError {
                code: ErrorCode::RateLimited,
                ..
            })
        ));
        // Another account from the same IP is still fine.
        limiter.check("bob", IP).unwrap();
        let later = Instant::now() + Duration::from_secs(61);
        limiter.check_at("ann", IP, later).unwrap();
    }

    #[test]
    fn ip_is_limited_across_accounts() {
        let limiter = LoginRateLimiter::new(100, 4, Duration::from_secs(60));
        for name in ["a", "b", "c", "d"] {
            limiter.record_failure(name, IP);
        }
        let other_ip: IpAddr = "10.0.0.9".parse().unwrap();
        assert!(limiter.check("e", IP).is_err());
        limiter.check("e", other_ip).unwrap();
    }

    #[test]
    fn success_clears_the_account() {
        let limiter = LoginRateLimiter::new(2, 100, Duration::from_secs(60));
        limiter.record_failure("ann", IP);
        limiter.record_failure("ann", IP);
        assert!(limiter.check("ann", IP).is_err());
        limiter.record_success("ann");
        limiter.check("ann", IP).unwrap();
    }
}
