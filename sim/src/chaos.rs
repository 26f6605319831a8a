//! Fault injection: each request fails with a fixed probability, reproducibly.
//!
//! The fate of a request depends only on the seed, the request (method, path and query) and how
//! many times that same request was made before, so concurrent clients that make the same requests
//! see the same failures run after run, whatever the interleaving.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::Duration;

/// How one request fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 TooManyRequests with `Retry-After: 1`.
    TooManyRequests,
    /// 500 InternalError.
    Internal,
    /// 503 ServiceUnavailable.
    Unavailable,
    /// 504 Timeout.
    GatewayTimeout,
    /// The connection is closed without an answer.
    DropConnection,
    /// A watch that starts normally and is cut this long after it started.
    CutWatch(Duration),
}

/// The `--chaos RATE --seed N` setting and the per-request counters it needs.
#[derive(Debug)]
pub struct Chaos {
    rate: f64,
    seed: u64,
    seen: Mutex<HashMap<String, u64>>,
}

impl Chaos {
    pub fn new(rate: f64, seed: u64) -> Chaos {
        Chaos {
            rate: rate.clamp(0.0, 1.0),
            seed,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The fault for this request, if it is to fail.
    pub fn decide(&self, method: &str, path_and_query: &str, is_watch: bool) -> Option<Fault> {
        let request = format!("{method} {path_and_query}");
        let occurrence = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            let n = seen.entry(request.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let mut hasher = DefaultHasher::new();
        (self.seed, &request, occurrence).hash(&mut hasher);
        let mut rng = fastrand::Rng::with_seed(hasher.finish());
        if rng.f64() >= self.rate {
            return None;
        }
        let faults = if is_watch { 6 } else { 5 };
        Some(match rng.usize(0..faults) {
            0 => Fault::TooManyRequests,
            1 => Fault::Internal,
            2 => Fault::Unavailable,
            3 => Fault::GatewayTimeout,
            4 => Fault::DropConnection,
            _ => Fault::CutWatch(Duration::from_millis(rng.u64(100..1500))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_faults_and_rate_roughly_holds() {
        let run = |seed| {
            let chaos = Chaos::new(0.3, seed);
            (0..1000)
                .map(|i| chaos.decide("GET", &format!("/api/v1/pods?limit={}", i % 7), false))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
        let failures = run(1).iter().filter(|f| f.is_some()).count();
        assert!((200..400).contains(&failures), "{failures}");
        assert!(
            run(1)
                .iter()
                .all(|f| !matches!(f, Some(Fault::CutWatch(_))))
        );
    }
}
