//! The limits on password guesses: per account and client address with a growing backoff
//! (so that a flood from one place cannot lock the account's owner out from everywhere), and
//! per client address whatever the account (so that one place cannot spray every account).
//!
//! An attempt is counted as a failure *before* the password is checked ([`LoginRateLimiter::begin`])
//! and forgiven only once it succeeded: parallel guesses cannot all slip through a check that
//! none of them has recorded yet. Both tables are bounded: entries that no longer limit anyone
//! are pruned, and beyond [`MAX_TRACKED`] entries the least recently active go.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{ApiError, ApiResult};

/// Most entries per table (about 100 bytes each).
const MAX_TRACKED: usize = 100_000;

/// The first wait once an account and client used up their failures; it doubles with every
/// further failure, up to the window.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct LoginRateLimiter {
    per_account_client: u32,
    per_ip: u32,
    window: Duration,
    tables: Mutex<Tables>,
}

#[derive(Debug, Default)]
struct Tables {
    /// Failures of an account from one client, and when the last one was.
    accounts: HashMap<(String, IpAddr), Failures>,
    /// Failure times of a client, whatever the account, within the window.
    clients: HashMap<IpAddr, VecDeque<Instant>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// One password check under way, already counted as a failure.
#[derive(Debug)]
#[must_use = "an attempt is settled with `succeeded` or `cancel`, or stays a failure"]
pub struct Attempt {
    account: (String, IpAddr),
    at: Instant,
}

/// Where limits count a client: its IPv4 address, or its IPv6 /64 network (one host can
/// choose among all of those).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

impl LoginRateLimiter {
    pub fn new(per_account_client: u32, per_ip: u32, window: Duration) -> Self {
        Self {
            per_account_client,
            per_ip,
            window,
            tables: Mutex::new(Tables::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // A panic while holding the lock leaves plain counters behind: still usable.
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How long this account's failures from this client hold it back now.
    fn account_wait(&self, failures: &Failures, now: Instant) -> Duration {
        let since = now.duration_since(failures.last);
        if failures.count < self.per_account_client || since >= self.window {
            return Duration::ZERO;
        }
        let doublings = (failures.count - self.per_account_client).min(30);
        let backoff = FIRST_BACKOFF
            .saturating_mul(1 << doublings)
            .min(self.window);
        backoff.saturating_sub(since)
    }

    /// Counts a password check of `username` by `client` as a failure until it is settled, or
    /// refuses (429, saying when to try again) while the limits hold that client back.
    pub fn begin(&self, username: &str, client: IpAddr) -> ApiResult<Attempt> {
        self.begin_at(username, client, Instant::now())
    }

    fn begin_at(&self, username: &str, client: IpAddr, now: Instant) -> ApiResult<Attempt> {
        let client = client_key(client);
        let account = (username.to_owned(), client);
        let window = self.window;
        let mut tables = self.lock();
        let mut wait = Duration::ZERO;
        if let Some(failures) = tables.accounts.get(&account) {
            wait = wait.max(self.account_wait(failures, now));
        }
        if let Some(times) = tables.clients.get_mut(&client) {
            prune(times, now, window);
            if times.len() >= self.per_ip as usize {
                if let Some(first) = times.front() {
                    wait = wait.max(window.saturating_sub(now.duration_since(*first)));
                }
            }
        }
        if wait > Duration::ZERO {
            return Err(ApiError::rate_limited(wait));
        }
        tables.make_room(now, window);
        let failures = tables.accounts.entry(account.clone()).or_insert(Failures {
            count: 0,
            last: now,
        });
        // Failures older than the window are forgotten.
        if now.duration_since(failures.last) >= window {
            failures.count = 0;
        }
        failures.count += 1;
        failures.last = now;
        tables.clients.entry(client).or_default().push_back(now);
        Ok(Attempt { account, at: now })
    }

    /// The password was right: the account's failures from this client are forgiven, and the
    /// attempt does not count against the client.
    pub fn succeeded(&self, attempt: Attempt) {
        let mut tables = self.lock();
        tables.accounts.remove(&attempt.account);
        tables.forget_client_failure(&attempt);
    }

    /// The attempt could not be judged (Hangar was too busy): it does not count at all.
    pub fn cancel(&self, attempt: Attempt) {
        let mut tables = self.lock();
        if let Some(failures) = tables.accounts.get_mut(&attempt.account) {
            failures.count = failures.count.saturating_sub(1);
            if failures.count == 0 {
                tables.accounts.remove(&attempt.account);
            }
        }
        tables.forget_client_failure(&attempt);
    }

    /// Lifts every limit on the account (its password was reset by an admin).
    pub fn forget_account(&self, username: &str) {
        self.lock()
            .accounts
            .retain(|(account, _), _| account != username);
    }

    /// How many entries the tables hold (for tests of their bound).
    pub fn tracked(&self) -> (usize, usize) {
        let tables = self.lock();
        (tables.accounts.len(), tables.clients.len())
    }
}

fn prune(times: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while times
        .front()
        .is_some_and(|at| now.duration_since(*at) >= window)
    {
        times.pop_front();
    }
}

impl Tables {
    fn forget_client_failure(&mut self, attempt: &Attempt) {
        let client = attempt.account.1;
        if let Some(times) = self.clients.get_mut(&client) {
            if let Some(index) = times.iter().rposition(|at| *at == attempt.at) {
                times.remove(index);
            }
            if times.is_empty() {
                self.clients.remove(&client);
            }
        }
    }

    /// Keeps both tables under [`MAX_TRACKED`]: first drops what no longer limits anyone, then,
    /// under a flood of distinct clients or names, the least recently active half.
    fn make_room(&mut self, now: Instant, window: Duration) {
        if self.accounts.len() >= MAX_TRACKED {
            self.accounts
                .retain(|_, failures| now.duration_since(failures.last) < window);
            if self.accounts.len() >= MAX_TRACKED {
                let mut lasts: Vec<Instant> = self.accounts.values().map(|f| f.last).collect();
                let (_, median, _) = lasts.select_nth_unstable(MAX_TRACKED / 2);
                let cutoff = *median;
                self.accounts.retain(|_, failures| failures.last > cutoff);
            }
        }
        if self.clients.len() >= MAX_TRACKED {
            self.clients.retain(|_, times| {
                prune(times, now, window);
                !times.is_empty()
            });
            if self.clients.len() >= MAX_TRACKED {
                let mut lasts: Vec<Instant> = self
                    .clients
                    .values()
                    .filter_map(|times| times.back().copied())
                    .collect();
                if lasts.len() > MAX_TRACKED / 2 {
                    let (_, median, _) = lasts.select_nth_unstable(MAX_TRACKED / 2);
                    let cutoff = *median;
                    self.clients
                        .retain(|_, times| times.back().is_some_and(|last| *last > cutoff));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    /// The Retry-After of a refusal, or None when the attempt was let through.
    fn limited(result: ApiResult<Attempt>) -> Option<u64> {
        result
            .err()
            .filter(|e| e.code == ErrorCode::RateLimited)
            .map(|e| e.retry_after_secs().unwrap_or(0))
    }

    #[test]
    fn attempts_count_before_they_are_judged() {
        let limiter = LoginRateLimiter::new(3, 100, Duration::from_secs(60));
        // Three checks under way at once, none settled yet: the fourth waits.
        let attempts: Vec<Attempt> = (0..3).map(|_| limiter.begin("ann", IP).unwrap()).collect();
        assert!(limited(limiter.begin("ann", IP)).is_some());
        // Another account from the same client is not held back.
        limiter.succeeded(limiter.begin("bob", IP).unwrap());
        drop(attempts);
    }

    #[test]
    fn backoff_doubles_and_other_clients_are_not_held_back() {
        let limiter = LoginRateLimiter::new(2, 100, Duration::from_secs(600));
        let start = Instant::now();
        let _ = limiter.begin_at("ann", IP, start).unwrap();
        let _ = limiter.begin_at("ann", IP, start).unwrap();
        assert_eq!(limited(limiter.begin_at("ann", IP, start)), Some(1));
        let later = start + Duration::from_secs(1);
        let _ = limiter.begin_at("ann", IP, later).unwrap();
        // The next wait is twice as long.
        assert_eq!(
            limited(limiter.begin_at("ann", IP, later + Duration::from_millis(1500))),
            Some(1)
        );
        assert!(limited(limiter.begin_at("ann", IP, later + Duration::from_secs(2))).is_none());
        let elsewhere: IpAddr = "203.0.113.7".parse().unwrap();
        limiter.succeeded(limiter.begin_at("ann", elsewhere, later).unwrap());
        // Long after the last failure, everything is forgotten.
        let much_later = later + Duration::from_secs(700);
        assert!(limited(limiter.begin_at("ann", IP, much_later)).is_none());
    }

    #[test]
    fn a_client_is_limited_across_accounts() {
        let limiter = LoginRateLimiter::new(100, 4, Duration::from_secs(60));
        for name in ["a", "b", "c", "d"] {
            let _ = limiter.begin(name, IP).unwrap();
        }
        assert!(limited(limiter.begin("e", IP)).is_some());
        let other: IpAddr = "10.0.0.9".parse().unwrap();
        let _ = limiter.begin("e", other).unwrap();
    }

    #[test]
    fn success_and_cancel_forgive() {
        let limiter = LoginRateLimiter::new(2, 3, Duration::from_secs(60));
        let first = limiter.begin("ann", IP).unwrap();
        limiter.cancel(first);
        let _ = limiter.begin("ann", IP).unwrap();
        let second = limiter.begin("ann", IP).unwrap();
        limiter.succeeded(second);
        // The account is free again, and the client has one failure on its books.
        let _ = limiter.begin("ann", IP).unwrap();
        let _ = limiter.begin("ann", IP).unwrap();
        assert!(limited(limiter.begin("bob", IP)).is_some());
        limiter.forget_account("ann");
        assert_eq!(limiter.tracked().0, 0);
    }

    #[test]
    fn ipv6_clients_count_by_their_64_network() {
        let limiter = LoginRateLimiter::new(1, 100, Duration::from_secs(60));
        let _ = limiter
            .begin("ann", "2001:db8::1".parse().unwrap())
            .unwrap();
        assert!(limited(limiter.begin("ann", "2001:db8::ffff:2".parse().unwrap())).is_some());
        let _ = limiter
            .begin("ann", "2001:db8:0:1::1".parse().unwrap())
            .unwrap();
    }

    #[test]
    fn the_tables_stay_bounded_under_a_spray() {
        let limiter = LoginRateLimiter::new(5, 5, Duration::from_secs(60));
        let now = Instant::now();
        for n in 0..(MAX_TRACKED as u32 + 10) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            let _ = limiter.begin_at(&format!("user{n}"), ip, now).unwrap();
        }
        let (accounts, clients) = limiter.tracked();
        assert!(accounts <= MAX_TRACKED && clients <= MAX_TRACKED);
    }
}
