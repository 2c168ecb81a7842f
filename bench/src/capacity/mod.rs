//! Capacity: the highest request rate a configuration sustains with a corrected p99 under the
//! threshold (50 ms by default) and no failure, from a stepped-rate open-loop run.
//!
//! Each step is one paced Goose run of the shop mix ([`crate::load::run_paced`]): `users` users
//! send at the step's offered rate together, each request at its scheduled time, and its time
//! counts from that schedule, so a stall or a queue shows as long times. After a short warm-up
//! the window of `step_secs` is measured. The rate rises by `factor` per step; a step that did not
//! hold is retried once at its rate, and the run stops when the retry fails too ([`steps`]). The matrix file's `[capacity]` sets it up
//! (`enabled = false` turns it off); the runner calls [`run`] after the closed-loop repeats,
//! while the web tier is up.

pub mod chart;
pub mod model;
pub mod report;
pub mod steps;
pub mod summary;

pub use model::{CapacityParams, CapacityRun, StepResult};

use crate::latency::Hist;
use crate::load::plan::JourneyConfig;
use crate::load::{self, LoadSpec, Mix};
use crate::matrix::progress::Progress;
use crate::matrix::MatrixFile;
use crate::report::results::{self, ConfigResult};
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

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
    let rates = p.rates();
    for i in 0.. {
        let done = res.capacity.as_ref().map_or(&[][..], |c| &c.steps[..]);
        let Some(rate) = steps::next_rate(done, p) else { break };
        if crate::cancel::is_cancelled() {
            break;
        }
        let retry = done.last().is_some_and(|s| s.offered_rps == rate);
        let n = rates.iter().position(|r| *r == rate).map_or(0, |k| k + 1);
        let phase =
            format!("capacity step {n}/{} at {rate:.0} req/s{}", rates.len(), if retry { " (retry)" } else { "" });
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
