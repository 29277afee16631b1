//! Who may wait to sign in. A connection that has not signed in yet holds a place: at most
//! [`PER_ADDRESS`] per client address (an IPv6 client by its /64, which one host can fill) and
//! [`IN_ALL`] in all. A new connection is never turned away for want of a place: it takes
//! the place of one already waiting, from its own address when that address holds its most,
//! else from the address holding the most places — a silent one first (it has not finished
//! its key exchange), the one waiting longest first. So one host that opens connections and
//! says nothing keeps no one out, not even someone signing in from the same address: every
//! connection it opens pushes out one of its own older ones, while a real client finishes its
//! key exchange within moments and then yields only to those that have too.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::auth::rate_limit::client_key;

/// Connections waiting to sign in from one client address, at most.
pub const PER_ADDRESS: usize = 16;
/// Connections waiting to sign in, at most (each costs a task and a key exchange).
pub const IN_ALL: usize = 256;

/// One connection waiting.
struct Waiting {
    source: IpAddr,
    /// Its key exchange is done and it asked to sign in.
    signing_in: Arc<AtomicBool>,
    /// Tells it that its place was taken.
    evict: oneshot::Sender<()>,
}

#[derive(Default)]
struct State {
    /// Numbered in the order they came: the lowest has waited longest.
    next: u64,
    waiting: HashMap<u64, Waiting>,
    per_source: HashMap<IpAddr, usize>,
}

impl State {
    fn remove(&mut self, id: u64) -> Option<Waiting> {
        let waiting = self.waiting.remove(&id)?;
        if let Some(count) = self.per_source.get_mut(&waiting.source) {
            *count -= 1;
            if *count == 0 {
                self.per_source.remove(&waiting.source);
            }
        }
        Some(waiting)
    }

    /// The connection to push out of `source`'s places: a silent one first, the oldest first.
    fn victim(&self, source: IpAddr) -> Option<u64> {
        self.waiting
            .iter()
            .filter(|(_, w)| w.source == source)
            .min_by_key(|(id, w)| (w.signing_in.load(Ordering::Relaxed), **id))
            .map(|(id, _)| *id)
    }

    /// The address holding the most places.
    fn busiest(&self) -> Option<IpAddr> {
        self.per_source
            .iter()
            .max_by_key(|(_, count)| **count)
            .map(|(source, _)| *source)
    }
}

/// The places of connections waiting to sign in, shared by the gateway's accept loop.
#[derive(Default)]
pub struct Admission {
    state: Mutex<State>,
}

/// A connection's place while it signs in; dropping it gives the place back.
pub struct Place {
    admission: Arc<Admission>,
    id: u64,
    signing_in: Arc<AtomicBool>,
    evicted: Option<oneshot::Receiver<()>>,
}

impl Admission {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for a new connection from `peer`, pushing out another if the caps are reached.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Place {
        let source = client_key(peer);
        let mut state = self.state();
        let from_here = state.per_source.get(&source).copied().unwrap_or(0);
        let crowded = if from_here >= PER_ADDRESS {
            Some(source)
        } else if state.waiting.len() >= IN_ALL {
            state.busiest()
        } else {
            None
        };
        if let Some(victim) = crowded.and_then(|crowded| state.victim(crowded)) {
            if let Some(pushed) = state.remove(victim) {
                tracing::info!(
                    source = %pushed.source,
                    "too many SSH connections waiting to sign in: closed the one waiting longest"
                );
                let _ = pushed.evict.send(());
            }
        }
        let id = state.next;
        state.next += 1;
        let signing_in = Arc::new(AtomicBool::new(false));
        let (evict, evicted) = oneshot::channel();
        state.waiting.insert(
            id,
            Waiting {
                source,
                signing_in: signing_in.clone(),
                evict,
            },
        );
        *state.per_source.entry(source).or_default() += 1;
        Place {
            admission: self.clone(),
            id,
            signing_in,
            evicted: Some(evicted),
        }
    }

    /// Connections waiting to sign in now.
    pub fn waiting(&self) -> usize {
        self.state().waiting.len()
    }
}

impl Place {
    /// The flag the connection sets once its key exchange is done (silent ones go first).
    pub fn signing_in(&self) -> Arc<AtomicBool> {
        self.signing_in.clone()
    }

    pub fn is_signing_in(&self) -> bool {
        self.signing_in.load(Ordering::Relaxed)
    }

    /// Resolves when another connection took this place (never, once it was taken once).
    pub async fn evicted(&mut self) {
        match self.evicted.as_mut() {
            Some(evicted) => {
                if evicted.await.is_ok() {
                    self.evicted = None;
                    return;
                }
                // The sender went without a word: the place was given back, not taken.
                self.evicted = None;
                std::future::pending::<()>().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.admission.state().remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use super::*;

    fn evicted(place: &mut Place) -> bool {
        futures_util::FutureExt::now_or_never(place.evicted()).is_some()
    }

    #[test]
    fn one_address_holds_at_most_its_share_and_pushes_out_its_own_silent_ones_first() {
        let admission = Arc::new(Admission::default());
        let here: IpAddr = "127.0.0.1".parse().unwrap();
        let mut places: Vec<Place> = (0..PER_ADDRESS).map(|_| admission.admit(here)).collect();
        // The oldest has finished its key exchange: the next oldest, silent, goes.
        places[0].signing_in().store(true, Ordering::Relaxed);
        let mut newcomer = admission.admit(here);
        assert_eq!(admission.waiting(), PER_ADDRESS);
        assert!(!evicted(&mut places[0]));
        assert!(evicted(&mut places[1]));
        assert!(places[2..].iter_mut().all(|p| !evicted(p)));
        assert!(!evicted(&mut newcomer));
        // Once all are signing in, the oldest of them goes.
        for place in &places {
            place.signing_in().store(true, Ordering::Relaxed);
        }
        newcomer.signing_in().store(true, Ordering::Relaxed);
        let _another = admission.admit(here);
        assert!(evicted(&mut places[0]));
        drop(places);
        assert_eq!(admission.waiting(), 2);
    }

    #[tokio::test]
    async fn a_full_gateway_takes_places_from_the_busiest_address() {
        let admission = Arc::new(Admission::default());
        let mut crowd = Vec::new();
        for i in 0..IN_ALL {
            // 16 addresses of 2001:db8:<i>::/64, each with its share.
            let address: IpAddr = format!("2001:db8:{}::{}", i / PER_ADDRESS, i)
                .parse()
                .unwrap();
            crowd.push(admission.admit(address));
        }
        let mut loner = admission.admit("192.0.2.1".parse().unwrap());
        assert_eq!(admission.waiting(), IN_ALL);
        let pushed = crowd.iter_mut().map(evicted).filter(|e| *e).count();
        assert_eq!(pushed, 1);
        assert!(!evicted(&mut loner));
        // One /64 is one address: its 17th pushes out its own.
        let mut seventeenth = admission.admit("2001:db8:3::ffff".parse().unwrap());
        assert!(!evicted(&mut seventeenth));
        assert_eq!(crowd.iter_mut().map(evicted).filter(|e| *e).count(), 1);
        // A place given back is not an eviction.
        let mut given_back = admission.admit("192.0.2.2".parse().unwrap());
        assert!(
            tokio::time::timeout(Duration::from_millis(10), given_back.evicted())
                .await
                .is_err()
        );
    }
}
