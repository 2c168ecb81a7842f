//! Capacity: the highest request rate a configuration sustains with a corrected p99 under the
//! threshold (50 ms by default) and no failure, from a stepped-rate open-loop run.
//!
//! Each step is one paced Goose run of the shop mix ([`crate::load::run_paced`]): `users` users
//! send at the step's offered rate together, each request at its scheduled time, and its time
//! counts from that schedule, so a stall or a queue shows as long times. After a short warm-up
//! the window of `step_secs` is measured. The rate rises by `factor` per step; the run stops at
//! the first step that did not hold ([`steps`]). The matrix file's `[capacity]` sets it up
//! (`enabled = false` turns it off); the runner calls [`run`] after the closed-loop repeats,
//! while the web tier is up.

pub mod chart;
pub mod report;
pub mod steps;

use crate::latency::Hist;
use crate::load::plan::JourneyConfig;
use crate::load::{self, LoadSpec, Mix};
use crate::matrix::progress::Progress;
use crate::matrix::MatrixFile;
use crate::measure::cpu::CpuUse;
use crate::report::results::{self, ConfigResult};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

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
        steps::rates(self).len() as u64 * self.step_total_secs()
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

/// What a capacity run needs from the configuration's running topology.
pub struct Target<'a> {
    pub nginx: &'a [String],
    pub admin: &'a str,
    pub journey: Arc<JourneyConfig>,
    pub cpu_groups: Vec<(String, Vec<u32>)>,
}

/// Runs the steps into `res.capacity`, saving the raw results after each.
pub async fn run(
    m: &MatrixFile,
    t: &Target<'_>,
    res: &mut ConfigResult,
    run_dir: &Path,
    progress: &Progress,
) -> Result<()> {
    let p = &m.capacity;
    if !p.enabled {
        return Ok(());
    }
    res.capacity = Some(CapacityRun { params: p.clone(), steps: Vec::new() });
    let rates = steps::rates(p);
    for (i, rate) in rates.iter().copied().enumerate() {
        let done = res.capacity.as_ref().map_or(&[][..], |c| &c.steps[..]);
        if !steps::go_on(done, p) || crate::cancel::is_cancelled() {
            break;
        }
        let phase = format!("capacity step {}/{} at {rate:.0} req/s", i + 1, rates.len());
        let step = one_step(m, t, rate, res.index, i, Some(progress.ticker(phase.clone(), 5))).await?;
        let verdict = steps::judge(&step, p);
        progress.step(&format!(
            "{phase}: achieved {:.0} req/s, corrected p99 {} ms, {} failed: {}",
            step.achieved_rps(),
            step.corrected.percentile_ms(99.0).map_or("–".into(), |v| format!("{v:.1}")),
            step.failures,
            if verdict.sustained { "held".to_string() } else { verdict.reasons.join("; ") }
        ));
        if let Some(c) = res.capacity.as_mut() {
            c.steps.push(step);
        }
        results::save_config(run_dir, res)?;
    }
    progress.load_finished(p.planned_secs() as f64);
    Ok(())
}

/// One paced run of the shop mix at `rate`.
async fn one_step(
    m: &MatrixFile,
    t: &Target<'_>,
    rate: f64,
    config: usize,
    step: usize,
    tick: Option<load::Tick>,
) -> Result<StepResult> {
    let p = &m.capacity;
    let spec = LoadSpec {
        hosts: t.nginx.to_vec(),
        users: p.users,
        warmup: Duration::from_secs(p.warmup_secs),
        secs: Duration::from_secs(p.step_secs),
        // Pacing replaces the think times.
        think: (Duration::ZERO, Duration::ZERO),
        merchant_think: (Duration::ZERO, Duration::ZERO),
        mix: Mix::Shop { shopper_weight: m.load.shopper_weight, merchant_weight: m.load.merchant_weight },
        journey: t.journey.clone(),
        admin_token: t.admin.to_string(),
        goose_report: None,
        seed: m.run.seed.wrapping_add(1000 * (config as u64 + 1) + step as u64),
        request_timeout_secs: m.run.request_timeout_secs,
        cpu_groups: t.cpu_groups.clone(),
    };
    let out = load::run_paced(&spec, rate, tick).await?;
    let mut failure_reasons = BTreeMap::new();
    for o in &out.ops {
        for (reason, n) in &o.failure_reasons {
            *failure_reasons.entry(reason.clone()).or_insert(0) += n;
        }
    }
    Ok(StepResult {
        offered_rps: rate,
        users: p.users,
        window_secs: out.window_secs,
        ok: out.ops.iter().map(|o| o.ok).sum(),
        failures: out.ops.iter().map(|o| o.failures).sum(),
        failure_reasons,
        raw: Hist::merged(out.latency.iter().map(|l| &l.raw)),
        corrected: Hist::merged(out.latency.iter().map(|l| &l.corrected)),
        cpu: out.cpu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked_and_can_be_switched_off() {
        assert!(CapacityParams::default().validate().is_ok());
        let bad = CapacityParams { factor: 1.0, ..CapacityParams::default() };
        assert!(format!("{:#}", bad.validate().unwrap_err()).contains("factor"));
        let bad = CapacityParams { max_rps: 10.0, ..CapacityParams::default() };
        assert!(bad.validate().is_err());
        let off = CapacityParams { enabled: false, factor: 0.5, ..CapacityParams::default() };
        assert!(off.validate().is_ok(), "an unused section is not judged");
        assert_eq!(off.planned_secs(), 0);
        // 50 .. 5000 by 1.4: 14 steps of 2 + 3 + 10 s.
        assert_eq!(CapacityParams::default().planned_secs(), 14 * 15);
    }
}
