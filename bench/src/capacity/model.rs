//! What a capacity run is set up with and what it found: the types the matrix file, the raw
//! results and the report share (kept apart from the runner, which needs those modules).

use crate::latency::Hist;
use crate::measure::cpu::CpuUse;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The matrix file's `[capacity]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CapacityParams {
    pub enabled: bool,
    /// Goose users that carry the schedule (the most requests in flight at once).
    pub users: usize,
    /// The first step's offered rate, requests per second over all users.
    pub start_rps: f64,
    /// Each step offers this many times the one before.
    pub factor: f64,
    /// The highest rate offered; a configuration that holds it has at least this capacity.
    pub max_rps: f64,
    /// Before each step's window (new users sign up, connections open).
    pub warmup_secs: u64,
    /// Each step's measured window.
    pub step_secs: u64,
    /// A step holds with its corrected p99 under this.
    pub p99_ms: f64,
    /// ... and at least this part of the offered rate achieved.
    pub min_achieved: f64,
}

impl Default for CapacityParams {
    fn default() -> Self {
        CapacityParams {
            enabled: true,
            users: 64,
            start_rps: 50.0,
            factor: 1.4,
            max_rps: 5000.0,
            warmup_secs: 3,
            step_secs: 10,
            p99_ms: 50.0,
            min_achieved: 0.95,
        }
    }
}

impl CapacityParams {
    /// The offered rates: `start`, then each `factor` times the one before (rounded to whole
    /// requests per second), up to `max_rps`.
    pub fn rates(&self) -> Vec<f64> {
        let mut out: Vec<f64> = Vec::new();
        let mut exact = self.start_rps;
        while exact <= self.max_rps * (1.0 + 1e-9) && out.len() < 1000 {
            let r = exact.round().max(1.0);
            if out.last() != Some(&r) {
                out.push(r);
            }
            exact *= self.factor;
        }
        out
    }

    pub fn validate(&self) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        if self.users == 0 || self.step_secs == 0 {
            bail!("[capacity] users and step_secs must be at least 1");
        }
        let (start, max) = (self.start_rps, self.max_rps);
        if start.is_nan() || max.is_nan() || start <= 0.0 || max < start {
            bail!("[capacity] start_rps must be above 0 and max_rps at least start_rps");
        }
        if self.factor.is_nan() || self.factor <= 1.0 {
            bail!("[capacity] factor must be above 1");
        }
        let (p99, part) = (self.p99_ms, self.min_achieved);
        if p99.is_nan() || part.is_nan() || p99 <= 0.0 || part <= 0.0 || part > 1.0 {
            bail!("[capacity] p99_ms must be above 0 and min_achieved in (0, 1]");
        }
        Ok(())
    }

    /// One step's planned seconds: user launch, warm-up, window, margin.
    pub fn step_total_secs(&self) -> u64 {
        2 + self.warmup_secs + self.step_secs
    }

    /// Planned seconds of a whole run if every step up to the limit ran (an upper bound).
    pub fn planned_secs(&self) -> u64 {
        if !self.enabled {
            return 0;
        }
        self.rates().len() as u64 * self.step_total_secs()
    }
}

/// One step as measured (raw results): the histograms are merged over the operations.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    pub offered_rps: f64,
    pub users: usize,
    pub window_secs: f64,
    /// Requests completed in the window, successful and failed.
    pub ok: u64,
    pub failures: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failure_reasons: BTreeMap<String, u64>,
    /// Sent until read, successful requests.
    pub raw: Hist,
    /// From the scheduled send time until read, successful requests.
    pub corrected: Hist,
    #[serde(default)]
    pub cpu: Option<CpuUse>,
}

impl StepResult {
    /// Requests completed per second of the window.
    pub fn achieved_rps(&self) -> f64 {
        if self.window_secs > 0.0 {
            (self.ok + self.failures) as f64 / self.window_secs
        } else {
            0.0
        }
    }
}

/// A configuration's capacity run (raw results).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapacityRun {
    pub params: CapacityParams,
    pub steps: Vec<StepResult>,
}
