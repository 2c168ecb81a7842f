//! Latency histograms that merge exactly: per operation the raw times (request sent until the
//! body is read) and the times corrected for coordinated omission, in microseconds.
//!
//! Why `hdrhistogram` and not Goose's own co-mitigation: Goose's corrected data covers its whole
//! metrics period (from user launch, warm-up included), sits in Goose-internal buckets whose merge
//! is crate-private, and backfills against a user's scenario-loop cadence, which our random think
//! time makes vary 4x. Our recorder sees the same requests in the same measured window as the raw
//! numbers, and a histogram per load client adds to the others' count for count (never a mean of
//! means). 3 significant digits: a value is reported within 0.1% (the bucket's highest value).
//!
//! Correction, two ways: in the closed-loop runs `record_correct` backfills the requests a user
//! would have sent during a long answer, one per expected interval (the user's mean think time:
//! the pace it keeps when answers are instant); in the open-loop (paced) runs the corrected time
//! is measured from the request's scheduled send time, so no backfill is needed (interval 0).

use anyhow::{Context, Result};
use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A histogram of microseconds that serializes as base64 of HdrHistogram's V2 deflate encoding
/// (readable by every HdrHistogram implementation).
#[derive(Clone, Debug)]
pub struct Hist(Histogram<u64>);

impl Default for Hist {
    fn default() -> Self {
        // Auto-resizing: any time fits; 3 significant digits.
        Hist(Histogram::new(3).expect("3 significant digits are valid"))
    }
}

impl PartialEq for Hist {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

impl Hist {
    /// One time as it was measured.
    pub fn record(&mut self, d: Duration) {
        // `record`, not `saturating_record`: the latter clamps to the current range instead of
        // growing it. Auto-resize is on, so recording cannot fail for range reasons.
        let _ = self.0.record(micros(d));
    }

    /// One time, plus the times of the requests a closed-loop user did not send while waiting for
    /// it: `t - interval`, `t - 2 interval`, ... down to `interval` (none for interval 0).
    pub fn record_correct(&mut self, d: Duration, interval: Duration) {
        let interval = if interval.is_zero() { 0 } else { micros(interval) };
        // Auto-resize is on, so recording cannot fail for range reasons.
        let _ = self.0.record_correct(micros(d), interval);
    }

    /// Adds `other`'s counts to this one (exact: counts are summed bucket by bucket).
    pub fn merge(&mut self, other: &Hist) {
        self.0.add(&other.0).expect("auto-resizing histograms of the same precision add");
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The `p`th percentile in milliseconds (`None` when empty).
    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        (self.count() > 0).then(|| self.0.value_at_percentile(p) as f64 / 1000.0)
    }

    pub fn to_base64(&self) -> Result<String> {
        let mut bytes = Vec::new();
        V2DeflateSerializer::new().serialize(&self.0, &mut bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn from_base64(text: &str) -> Result<Hist> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(text).context("histogram: not base64")?;
        let h: Histogram<u64> =
            Deserializer::new().deserialize(&mut bytes.as_slice()).map_err(|e| anyhow::anyhow!("histogram: {e:?}"))?;
        let mut hist = Hist::default();
        hist.0.add(&h).map_err(|e| anyhow::anyhow!("histogram: {e:?}"))?;
        Ok(hist)
    }

    /// The merge of `hists` (an empty histogram for none).
    pub fn merged<'a>(hists: impl IntoIterator<Item = &'a Hist>) -> Hist {
        let mut out = Hist::default();
        for h in hists {
            out.merge(h);
        }
        out
    }
}

impl Serialize for Hist {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64().map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> Deserialize<'de> for Hist {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Hist, D::Error> {
        let text = String::deserialize(d)?;
        Hist::from_base64(&text).map_err(serde::de::Error::custom)
    }
}

/// One operation's histograms in one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OpLatency {
    pub op: String,
    /// Successful requests as measured (sent until read).
    pub raw: Hist,
    /// The same requests corrected for coordinated omission (more entries with backfill).
    pub corrected: Hist,
}

/// One operation over the repeats (or load clients) of a configuration: from the merged
/// histograms, raw and corrected side by side.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CorrectedOp {
    pub op: String,
    /// Successful requests measured.
    pub requests: u64,
    pub raw_p50_ms: Option<f64>,
    pub raw_p99_ms: Option<f64>,
    pub corrected_p50_ms: Option<f64>,
    pub corrected_p99_ms: Option<f64>,
    /// Entries of the corrected histogram: the measured requests plus the backfilled ones.
    pub corrected_count: u64,
}

impl CorrectedOp {
    /// Merges the runs' histograms of `op` (runs without it count nothing).
    pub fn of<'a>(op: &str, runs: impl IntoIterator<Item = &'a OpLatency>) -> CorrectedOp {
        let (mut raw, mut corrected) = (Hist::default(), Hist::default());
        for r in runs.into_iter().filter(|r| r.op == op) {
            raw.merge(&r.raw);
            corrected.merge(&r.corrected);
        }
        CorrectedOp {
            op: op.to_string(),
            requests: raw.count(),
            raw_p50_ms: raw.percentile_ms(50.0),
            raw_p99_ms: raw.percentile_ms(99.0),
            corrected_p50_ms: corrected.percentile_ms(50.0),
            corrected_p99_ms: corrected.percentile_ms(99.0),
            corrected_count: corrected.count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_stall_is_backfilled_and_moves_the_corrected_p99_only() {
        // A closed-loop user with 10 ms between sends: 990 answers of 1 ms and one of 1 s.
        let (mut raw, mut corrected) = (Hist::default(), Hist::default());
        for _ in 0..990 {
            raw.record(ms(1));
            corrected.record_correct(ms(1), ms(10));
        }
        raw.record(ms(1000));
        corrected.record_correct(ms(1000), ms(10));
        assert_eq!(raw.count(), 991);
        // The stall stood for the 99 requests the user would have sent at 990, 980, ... 10 ms.
        assert_eq!(corrected.count(), 991 + 99);
        assert_eq!(raw.percentile_ms(99.0), Some(1.0), "1 of 991 is beyond the 99th percentile");
        assert_eq!(raw.percentile_ms(50.0), corrected.percentile_ms(50.0));
        // 100 of 1090 entries lie in 10..1000 ms: the corrected p99 is among the backfilled ones.
        let p99 = corrected.percentile_ms(99.0).unwrap();
        assert!((100.0..=1000.0).contains(&p99), "{p99}");
        // Rank 1080 of 1090: the 11th highest, 1000 - 10 * 10 = 900 ms (within 0.1%).
        assert!((p99 - 900.0).abs() <= 1.0, "{p99}");
    }

    #[test]
    fn answers_within_the_interval_are_not_corrected() {
        let mut h = Hist::default();
        h.record_correct(ms(5), ms(10));
        h.record_correct(ms(10), ms(10));
        h.record_correct(ms(25), Duration::ZERO);
        assert_eq!(h.count(), 3);
    }

    #[test]
    fn merging_adds_counts_exactly_and_survives_serialization() {
        let (mut a, mut b) = (Hist::default(), Hist::default());
        for i in 1..=100 {
            a.record(Duration::from_micros(i * 100));
        }
        for _ in 0..300 {
            b.record(ms(50));
        }
        let both = Hist::merged([&a, &b]);
        assert_eq!(both.count(), 400);
        // 100 fast + 300 at 50 ms: the median is 50 ms, not a mean of the two medians.
        assert!((both.percentile_ms(50.0).unwrap() - 50.0).abs() < 0.05);
        let text = serde_json::to_string(&both).unwrap();
        let back: Hist = serde_json::from_str(&text).unwrap();
        assert_eq!(back, both);
        assert_eq!(back.percentile_ms(25.0), both.percentile_ms(25.0));
        assert!(serde_json::from_str::<Hist>("\"not a histogram\"").is_err());
    }

    #[test]
    fn corrected_ops_merge_the_runs_of_one_operation() {
        let run = |op: &str, t: u64, stall: Option<u64>| {
            let mut l = OpLatency { op: op.into(), ..OpLatency::default() };
            for _ in 0..99 {
                l.raw.record(ms(t));
                l.corrected.record_correct(ms(t), ms(20));
            }
            if let Some(s) = stall {
                l.raw.record(ms(s));
                l.corrected.record_correct(ms(s), ms(20));
            }
            l
        };
        let runs = [run("GET /x", 2, None), run("GET /x", 4, Some(400)), run("POST /y", 9, None)];
        let c = CorrectedOp::of("GET /x", &runs);
        assert_eq!(c.requests, 199);
        assert_eq!(c.corrected_count, 199 + 19, "400 ms at 20 ms intervals: 19 backfilled");
        // Rank 100 of 199 is the first of the second run's 4 ms answers.
        assert!((c.raw_p50_ms.unwrap() - 4.0).abs() < 0.01, "{c:?}");
        assert!(c.corrected_p99_ms.unwrap() > 100.0 && c.raw_p99_ms.unwrap() < 5.0, "{c:?}");
        assert_eq!(CorrectedOp::of("GET /none", &runs).raw_p99_ms, None);
    }
}
