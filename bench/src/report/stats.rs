//! Numbers from samples: per run (one repeat) and across repeats.
//!
//! Only successful requests have times; failures are counted apart and never enter a mean or a
//! percentile (a fast error would flatter the mean, a timeout would drown it).
//!
//! Own arithmetic on purpose (a nearest-rank percentile, a mean, a sample standard deviation: a
//! few lines, tested below) rather than a crate. `hdrhistogram` would make the percentiles
//! approximate: with 3 significant digits a time of 2.048 ms or more shares a bucket up to 1/1024
//! wide and is reported as the bucket's highest value (up to 8 µs more at 12 ms), which moves the
//! reports' 2-decimal ms columns in the last digit; its merging is not needed, as every repeat
//! keeps its own samples (a 30 s window at the load's ~300 req/s is ~10k `u32`, 40 KB; the
//! GET-product run at ~6k req/s for 10 s, 240 KB). `statrs` has the same mean and standard
//! deviation, but its quantiles are interpolated estimates, not the nearest rank the reports give.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One operation in one timed run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpStats {
    /// The route pattern, e.g. "GET /products/{product_id}".
    pub op: String,
    /// Successful requests (the ones with times).
    pub ok: u64,
    pub failures: u64,
    /// Why requests failed: status code or error kind, with counts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failure_reasons: BTreeMap<String, u64>,
    pub mean_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub min_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Successful requests per second of the measured window.
    pub rps: f64,
}

/// Nearest-rank percentile of sorted samples: the smallest value with at least `p` percent of
/// the samples at or below it.
pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn ms(us: u32) -> f64 {
    f64::from(us) / 1000.0
}

impl OpStats {
    /// `micros`: the times of the successful requests in microseconds (sorted here).
    pub fn from_samples(
        op: &str,
        mut micros: Vec<u32>,
        failure_reasons: BTreeMap<String, u64>,
        window_secs: f64,
    ) -> OpStats {
        micros.sort_unstable();
        let n = micros.len();
        let mean_ms = (n > 0).then(|| micros.iter().map(|&u| u64::from(u)).sum::<u64>() as f64 / n as f64 / 1000.0);
        let pct = |p| percentile(&micros, p).map(ms);
        OpStats {
            op: op.to_string(),
            ok: n as u64,
            failures: failure_reasons.values().sum(),
            failure_reasons,
            mean_ms,
            p50_ms: pct(50.0),
            p95_ms: pct(95.0),
            p99_ms: pct(99.0),
            min_ms: micros.first().copied().map(ms),
            max_ms: micros.last().copied().map(ms),
            rps: if window_secs > 0.0 { n as f64 / window_secs } else { 0.0 },
        }
    }
}

/// How a value varied over the repeats.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub min: f64,
    pub max: f64,
    /// Sample standard deviation (n - 1); 0 for a single repeat.
    pub stddev: f64,
    /// How many repeats had a value.
    pub n: usize,
}

impl Spread {
    pub fn of(values: &[f64]) -> Option<Spread> {
        if values.is_empty() {
            return None;
        }
        let n = values.len();
        let mean = mean(values)?;
        let var = if n > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64 } else { 0.0 };
        Some(Spread {
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            stddev: var.sqrt(),
            n,
        })
    }
}

pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// One operation of one configuration over all its repeats: the mean of the per-repeat values
/// (percentiles are not averaged into one distribution: each repeat's own percentile counts once).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpSummary {
    pub op: String,
    pub mean_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Successful requests per second.
    pub rps: f64,
    /// All requests sent in the measured windows, failed ones included.
    pub requests: u64,
    pub failures: u64,
    /// The per-repeat means' spread (the error bars).
    pub mean_ms_spread: Option<Spread>,
    /// The same port calls straight through the driver; absent where no floor was run.
    pub floor_mean_ms: Option<f64>,
    pub floor_mean_ms_spread: Option<Spread>,
}

fn mean_of(runs: &[&OpStats], f: impl Fn(&OpStats) -> Option<f64>) -> Option<f64> {
    mean(&runs.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
}

impl OpSummary {
    /// `http`: this operation's stats in each repeat; `floor`: its floor stats in each repeat.
    pub fn of(op: &str, http: &[&OpStats], floor: &[&OpStats]) -> OpSummary {
        let means: Vec<f64> = http.iter().filter_map(|r| r.mean_ms).collect();
        let floor_means: Vec<f64> = floor.iter().filter_map(|r| r.mean_ms).collect();
        OpSummary {
            op: op.to_string(),
            mean_ms: mean(&means),
            p50_ms: mean_of(http, |r| r.p50_ms),
            p95_ms: mean_of(http, |r| r.p95_ms),
            p99_ms: mean_of(http, |r| r.p99_ms),
            rps: mean(&http.iter().map(|r| r.rps).collect::<Vec<_>>()).unwrap_or(0.0),
            requests: http.iter().map(|r| r.ok + r.failures).sum(),
            failures: http.iter().map(|r| r.failures).sum(),
            mean_ms_spread: Spread::of(&means),
            floor_mean_ms: mean(&floor_means),
            floor_mean_ms_spread: Spread::of(&floor_means),
        }
    }

    /// Full-stack mean minus floor mean: what HTTP, nginx and the app add per request.
    pub fn overhead_ms(&self) -> Option<f64> {
        Some(self.mean_ms? - self.floor_mean_ms?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(micros: &[u32], failures: u64, secs: f64) -> OpStats {
        let reasons = if failures > 0 { BTreeMap::from([("503".to_string(), failures)]) } else { BTreeMap::new() };
        OpStats::from_samples("GET /x", micros.to_vec(), reasons, secs)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 95.0), Some(95));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[1, 2, 3, 4], 50.0), Some(2));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn run_stats_use_successes_only() {
        let s = stats(&[3000, 1000, 2000], 5, 2.0);
        assert_eq!(s.ok, 3);
        assert_eq!(s.failures, 5);
        assert_eq!(s.mean_ms, Some(2.0));
        assert_eq!(s.p50_ms, Some(2.0));
        assert_eq!(s.min_ms, Some(1.0));
        assert_eq!(s.max_ms, Some(3.0));
        assert_eq!(s.rps, 1.5, "successful requests per second");
    }

    #[test]
    fn an_operation_without_successes_has_no_times() {
        let s = stats(&[], 2, 10.0);
        assert_eq!((s.mean_ms, s.p99_ms, s.rps, s.failures), (None, None, 0.0, 2));
    }

    #[test]
    fn spread_is_min_max_and_sample_stddev() {
        let s = Spread::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!((s.min, s.max, s.n), (2.0, 9.0, 8));
        assert!((s.stddev - 2.138).abs() < 1e-3, "{}", s.stddev);
        assert_eq!(Spread::of(&[3.0]).unwrap().stddev, 0.0);
        assert!(Spread::of(&[]).is_none());
    }

    #[test]
    fn summaries_average_per_repeat_values_and_add_counts() {
        let a = stats(&[1000, 1000, 1000, 1000], 0, 1.0);
        let b = stats(&[3000, 3000], 1, 1.0);
        let floor = stats(&[400, 600], 0, 1.0);
        let s = OpSummary::of("GET /x", &[&a, &b], &[&floor]);
        assert_eq!(s.mean_ms, Some(2.0), "mean of the repeat means, not of all samples");
        assert_eq!(s.p50_ms, Some(2.0));
        assert_eq!(s.rps, 3.0);
        assert_eq!((s.requests, s.failures), (7, 1));
        let spread = s.mean_ms_spread.unwrap();
        assert_eq!((spread.min, spread.max), (1.0, 3.0));
        assert_eq!(s.floor_mean_ms, Some(0.5));
        assert_eq!(s.overhead_ms(), Some(1.5));
    }

    #[test]
    fn repeats_without_successes_do_not_pull_means_to_zero() {
        let a = stats(&[2000], 0, 1.0);
        let b = stats(&[], 3, 1.0);
        let s = OpSummary::of("GET /x", &[&a, &b], &[]);
        assert_eq!(s.mean_ms, Some(2.0));
        assert_eq!(s.mean_ms_spread.unwrap().n, 1);
        assert_eq!(s.floor_mean_ms, None);
        assert_eq!(s.overhead_ms(), None);
    }
}
