//! Collects the time of every request that completes inside the measured window (after the
//! warm-up, before the end), per operation. Shared by all simulated users of a run.

use crate::load::ops::Op;
use crate::report::stats::OpStats;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Slot {
    micros: Vec<u32>,
    failures: BTreeMap<String, u64>,
}

pub struct Recorder {
    from: Instant,
    until: Instant,
    slots: Vec<Mutex<Slot>>,
    ok: AtomicU64,
    failed: AtomicU64,
}

impl Recorder {
    /// Measures requests completing in `[from, from + window]`.
    pub fn new(from: Instant, window: Duration) -> Recorder {
        Recorder {
            from,
            until: from + window,
            slots: Op::ALL.iter().map(|_| Mutex::new(Slot::default())).collect(),
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    pub fn window_start(&self) -> Instant {
        self.from
    }

    pub fn window_end(&self) -> Instant {
        self.until
    }

    /// Records one request that took `elapsed` and ended now; `Err(reason)` for a failure.
    pub fn record(&self, op: Op, elapsed: Duration, result: Result<(), String>) {
        self.record_at(Instant::now(), op, elapsed, result)
    }

    pub fn record_at(&self, done: Instant, op: Op, elapsed: Duration, result: Result<(), String>) {
        if done < self.from || done > self.until {
            return;
        }
        let mut slot = self.slots[op as usize].lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(()) => {
                slot.micros.push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(reason) => {
                *slot.failures.entry(reason).or_default() += 1;
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Successful and failed requests measured so far (for progress lines).
    pub fn counts(&self) -> (u64, u64) {
        (self.ok.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed))
    }

    /// Per-operation numbers of the window, every operation present (zeros where none ran).
    pub fn finish(&self) -> Vec<OpStats> {
        let secs = (self.until - self.from).as_secs_f64();
        Op::ALL
            .iter()
            .map(|op| {
                let mut slot = self.slots[*op as usize].lock().unwrap_or_else(|p| p.into_inner());
                let slot = std::mem::take(&mut *slot);
                OpStats::from_samples(op.name(), slot.micros, slot.failures, secs)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_requests_ending_inside_the_window_count() {
        let t0 = Instant::now();
        let r = Recorder::new(t0 + Duration::from_secs(5), Duration::from_secs(10));
        let ms = Duration::from_millis;
        r.record_at(t0 + Duration::from_secs(4), Op::GetProduct, ms(1), Ok(())); // warm-up
        r.record_at(t0 + Duration::from_secs(6), Op::GetProduct, ms(2), Ok(()));
        r.record_at(t0 + Duration::from_secs(7), Op::GetProduct, ms(4), Ok(()));
        r.record_at(t0 + Duration::from_secs(8), Op::GetProduct, ms(900), Err("503".into()));
        r.record_at(t0 + Duration::from_secs(16), Op::GetProduct, ms(1), Ok(())); // after the end
        assert_eq!(r.counts(), (2, 1));
        let stats = r.finish();
        assert_eq!(stats.len(), Op::ALL.len());
        let get = stats.iter().find(|s| s.op == "GET /products/{product_id}").unwrap();
        assert_eq!((get.ok, get.failures, get.mean_ms), (2, 1, Some(3.0)));
        assert_eq!(get.failure_reasons.get("503"), Some(&1));
        assert!((get.rps - 0.2).abs() < 1e-9);
        let other = stats.iter().find(|s| s.op == "POST /users").unwrap();
        assert_eq!((other.ok, other.mean_ms), (0, None));
    }
}
