//! The step logic of a capacity run, pure: which rates are offered, whether a step sustained its
//! rate, when to stop, and which step is the capacity.

use crate::capacity::model::{CapacityParams, StepResult};
use serde::{Deserialize, Serialize};

/// Whether a step held: its rate sustained, its corrected p99 under the threshold, no failure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub sustained: bool,
    /// Why not, in words (empty when sustained).
    pub reasons: Vec<String>,
}

pub fn judge(step: &StepResult, p: &CapacityParams) -> Verdict {
    let mut reasons = Vec::new();
    let achieved = step.achieved_rps();
    if step.ok == 0 {
        reasons.push("no successful request".to_string());
    }
    if achieved < p.min_achieved * step.offered_rps {
        reasons.push(format!(
            "achieved {achieved:.0} of {:.0} req/s offered ({:.0}%, under {:.0}%)",
            step.offered_rps,
            100.0 * achieved / step.offered_rps,
            100.0 * p.min_achieved
        ));
    }
    match step.corrected.percentile_ms(99.0) {
        Some(p99) if p99 >= p.p99_ms => {
            reasons.push(format!("corrected p99 {p99:.1} ms, not under {:.0} ms", p.p99_ms))
        }
        _ => {}
    }
    if step.failures > 0 {
        reasons.push(format!("{} failed requests", step.failures));
    }
    Verdict { sustained: reasons.is_empty(), reasons }
}

/// What the steps found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// The highest offered rate sustained, every lower step sustained too; `None` when the first
    /// step already failed.
    pub rps: Option<f64>,
    /// Every step up to the limit held: the capacity is at least the limit, not found.
    pub reached_limit: bool,
    /// The first step that did not hold (its index), where the run stopped.
    pub failed_step: Option<usize>,
}

/// Steps count in order until the first one that did not hold (the run stops there; a later
/// step that held would be luck, not capacity).
pub fn capacity(steps: &[StepResult], p: &CapacityParams) -> Capacity {
    let failed_step = steps.iter().position(|s| !judge(s, p).sustained);
    let held = &steps[..failed_step.unwrap_or(steps.len())];
    Capacity {
        rps: held.last().map(|s| s.offered_rps),
        reached_limit: failed_step.is_none() && !steps.is_empty() && steps.len() == p.rates().len(),
        failed_step,
    }
}

/// Whether to run another step after `steps`.
pub fn go_on(steps: &[StepResult], p: &CapacityParams) -> bool {
    steps.len() < p.rates().len() && steps.last().is_none_or(|s| judge(s, p).sustained)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::Hist;
    use std::time::Duration;

    fn params() -> CapacityParams {
        CapacityParams { start_rps: 50.0, factor: 1.4, max_rps: 300.0, ..CapacityParams::default() }
    }

    /// A step at `offered` req/s whose 10 s window completed `done` requests, each answered in
    /// `ms`, with `slow` of them at 200 ms, and `failures` failed.
    fn step(offered: f64, done: u64, ms: u64, slow: u64, failures: u64) -> StepResult {
        let mut corrected = Hist::default();
        for i in 0..done - failures {
            corrected.record(Duration::from_millis(if i < slow { 200 } else { ms }));
        }
        StepResult {
            offered_rps: offered,
            users: 64,
            window_secs: 10.0,
            ok: done - failures,
            failures,
            raw: corrected.clone(),
            corrected,
            ..StepResult::default()
        }
    }

    #[test]
    fn rates_rise_by_the_factor_up_to_the_limit() {
        assert_eq!(params().rates(), vec![50.0, 70.0, 98.0, 137.0, 192.0, 269.0]);
        let one = CapacityParams { start_rps: 10.0, factor: 2.0, max_rps: 10.0, ..params() };
        assert_eq!(one.rates(), vec![10.0]);
    }

    #[test]
    fn a_step_holds_only_with_its_rate_a_low_p99_and_no_failure() {
        let p = params();
        assert!(judge(&step(100.0, 1000, 5, 0, 0), &p).sustained);
        // 95% of the offered rate is enough, 94% is not.
        assert!(judge(&step(100.0, 950, 5, 0, 0), &p).sustained);
        let v = judge(&step(100.0, 940, 5, 0, 0), &p);
        assert_eq!(v.reasons, vec!["achieved 94 of 100 req/s offered (94%, under 95%)"]);
        // 1% of requests at 200 ms: that is the p99 (rank 990 of 1000 is still fast; 11 slow is not).
        assert!(judge(&step(100.0, 1000, 5, 10, 0), &p).sustained);
        let v = judge(&step(100.0, 1000, 5, 11, 0), &p);
        assert!(v.reasons[0].starts_with("corrected p99 200."), "{v:?}");
        let v = judge(&step(100.0, 1000, 5, 0, 1), &p);
        assert_eq!(v.reasons, vec!["1 failed requests"]);
        let v = judge(&step(100.0, 0, 5, 0, 0), &p);
        assert_eq!(v.reasons.len(), 2, "nothing done: no success and no rate: {v:?}");
    }

    #[test]
    fn the_capacity_is_the_last_step_before_the_first_failure() {
        let p = params();
        let steps = vec![
            step(50.0, 500, 3, 0, 0),
            step(70.0, 700, 4, 0, 0),
            step(98.0, 980, 6, 0, 0),
            step(137.0, 1100, 80, 0, 0), // saturated: 80 ms and only 80% done
        ];
        assert!(!go_on(&steps, &p), "the run stops at the first failed step");
        assert!(go_on(&steps[..3], &p));
        let c = capacity(&steps, &p);
        assert_eq!(c, Capacity { rps: Some(98.0), reached_limit: false, failed_step: Some(3) });
        // A step that holds after a failure does not count.
        let mut lucky = steps.clone();
        lucky.push(step(192.0, 1920, 4, 0, 0));
        assert_eq!(capacity(&lucky, &p).rps, Some(98.0));
    }

    #[test]
    fn a_first_step_failure_and_the_limit_are_told_apart() {
        let p = params();
        let c = capacity(&[step(50.0, 500, 3, 0, 2)], &p);
        assert_eq!(c, Capacity { rps: None, reached_limit: false, failed_step: Some(0) });
        let all: Vec<StepResult> = p.rates().into_iter().map(|r| step(r, (r * 10.0) as u64, 2, 0, 0)).collect();
        assert!(!go_on(&all, &p), "no step after the limit");
        let c = capacity(&all, &p);
        assert_eq!(c, Capacity { rps: Some(269.0), reached_limit: true, failed_step: None });
        // Interrupted before the limit: the highest step so far, not a limit reached.
        assert_eq!(capacity(&all[..2], &p), Capacity { rps: Some(70.0), reached_limit: false, failed_step: None });
        assert!(go_on(&[], &p));
    }
}
