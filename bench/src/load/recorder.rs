//! Collects the time of every request that completes inside the measured window (after the
//! warm-up, before the end), per operation. Shared by all simulated users of a run.
//! Beside the exact samples it keeps the raw and the coordinated-omission-corrected histograms
//! ([`crate::latency`]).

use crate::latency::{Hist, OpLatency};
use crate::load::ops::Op;
use crate::report::stats::OpStats;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Slot {
    micros: Vec<u32>,
    failures: BTreeMap<String, u64>,
    raw: Hist,
    corrected: Hist,
}

/// The times of one successful request, for the histograms.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Sent until the whole body was read.
    pub elapsed: Duration,
    /// From the time it should have been sent (its schedule in a paced run; else when it was sent).
    pub from_schedule: Duration,
    /// The closed-loop user's expected interval between sends, for the backfill (zero: none).
    pub interval: Duration,
}

impl Timing {
    /// A request of a closed loop without correction (the storage floor, the throughput runs).
    pub fn plain(elapsed: Duration) -> Timing {
        Timing { elapsed, from_schedule: elapsed, interval: Duration::ZERO }
    }
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
        self.record_timed(done, op, Timing::plain(elapsed), result)
    }

    /// Records one request that ended at `done` with its times; `Err(reason)` for a failure.
    pub fn record_timed(&self, done: Instant, op: Op, t: Timing, result: Result<(), String>) {
        if done < self.from || done > self.until {
            return;
        }
        let mut slot = self.slots[op as usize].lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(()) => {
                slot.micros.push(u32::try_from(t.elapsed.as_micros()).unwrap_or(u32::MAX));
                slot.raw.record(t.elapsed);
                slot.corrected.record_correct(t.from_schedule, t.interval);
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
        self.finish_with_latency().0
    }

    /// [`Recorder::finish`] and the histograms of the operations that had successes.
    pub fn finish_with_latency(&self) -> (Vec<OpStats>, Vec<OpLatency>) {
        let secs = (self.until - self.from).as_secs_f64();
        let (samples, latency) = self.finish_samples();
        (samples.into_iter().map(|s| s.stats(secs)).collect(), latency)
    }

    /// The window's samples of every operation (empty where none ran) and the histograms of the
    /// operations that had successes.
    pub fn finish_samples(&self) -> (Vec<OpSamples>, Vec<OpLatency>) {
        let mut latency = Vec::new();
        let samples = Op::ALL
            .iter()
            .map(|op| {
                let mut slot = self.slots[*op as usize].lock().unwrap_or_else(|p| p.into_inner());
                let slot = std::mem::take(&mut *slot);
                if slot.raw.count() > 0 {
                    latency.push(OpLatency { op: op.name().to_string(), raw: slot.raw, corrected: slot.corrected });
                }
                OpSamples { op: op.name().to_string(), micros: slot.micros, failure_reasons: slot.failures }
            })
            .collect();
        (samples, latency)
    }
}

/// One operation's measured window as it was recorded: every successful request's time and the
/// failures by reason. Samples of several load clients concatenate into the numbers one process
/// would have given (the mean is their total time over their total count).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OpSamples {
    pub op: String,
    /// Successful requests' times, microseconds, in the order they ended.
    pub micros: Vec<u32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failure_reasons: BTreeMap<String, u64>,
}

impl OpSamples {
    pub fn stats(&self, window_secs: f64) -> OpStats {
        OpStats::from_samples(&self.op, self.micros.clone(), self.failure_reasons.clone(), window_secs)
    }

    /// Adds `other`'s samples and failures (of the same operation) to these.
    pub fn absorb(&mut self, other: &OpSamples) {
        self.micros.extend_from_slice(&other.micros);
        for (reason, n) in &other.failure_reasons {
            *self.failure_reasons.entry(reason.clone()).or_default() += n;
        }
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

    #[test]
    fn histograms_keep_raw_and_corrected_times_of_the_window() {
        let t0 = Instant::now();
        let r = Recorder::new(t0, Duration::from_secs(10));
        let ms = Duration::from_millis;
        let at = t0 + Duration::from_secs(1);
        // Closed loop, 50 ms think: a 210 ms answer stood for 3 unsent requests (160, 110, 60 ms).
        let stalled = Timing { elapsed: ms(210), from_schedule: ms(210), interval: ms(50) };
        r.record_timed(at, Op::GetCart, stalled, Ok(()));
        // Paced: sent 30 ms late, answered in 2 ms: 32 ms from its schedule, no backfill.
        let late = Timing { elapsed: ms(2), from_schedule: ms(32), interval: Duration::ZERO };
        r.record_timed(at, Op::GetCart, late, Ok(()));
        r.record_timed(at, Op::GetCart, Timing::plain(ms(1)), Err("status 503".into()));
        r.record_timed(t0 + Duration::from_secs(11), Op::GetCart, late, Ok(())); // after the end
        let (stats, latency) = r.finish_with_latency();
        assert_eq!(stats.iter().find(|s| s.op == Op::GetCart.name()).unwrap().ok, 2);
        assert_eq!(latency.len(), 1, "only operations with successes");
        let cart = &latency[0];
        assert_eq!(cart.op, Op::GetCart.name());
        assert_eq!(cart.raw.count(), 2);
        // 210 and 32, plus 160, 110, 60 backfilled.
        assert_eq!(cart.corrected.count(), 5);
        assert!((cart.raw.percentile_ms(100.0).unwrap() - 210.0).abs() < 0.2);
        assert!((cart.corrected.percentile_ms(0.0).unwrap() - 32.0).abs() < 0.05, "the late one from its schedule");
    }
}
