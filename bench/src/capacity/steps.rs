//! The step logic of a capacity run, pure: which rates are offered, whether a step sustained its
//! rate, when to stop, and which step is the capacity. A step that did not hold is run once more
//! at the same rate and only that retry counts: one stall of a busy 2-core machine (a checkpoint,
//! another process) otherwise ended a configuration's climb, and neighbouring configurations'
//! capacities differed 2-7x for it.

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
    let counted: Vec<(usize, &StepResult)> = steps.iter().enumerate().filter(|(i, _)| counts(steps, *i)).collect();
    let failed = counted.iter().position(|(_, s)| !judge(s, p).sustained);
    let held = &counted[..failed.unwrap_or(counted.len())];
    Capacity {
        rps: held.last().map(|(_, s)| s.offered_rps),
        reached_limit: failed.is_none() && counted.len() == p.rates().len(),
        failed_step: failed.map(|k| counted[k].0),
    }
}

/// Whether step `i` counts: not when the next step retried its rate.
pub fn counts(steps: &[StepResult], i: usize) -> bool {
    steps.get(i + 1).is_none_or(|next| next.offered_rps != steps[i].offered_rps)
}

/// The rate of the next step, or `None` when the run is over: after a step that held the next
/// rate up to the limit; after one that did not, the same rate once more, then the end.
pub fn next_rate(steps: &[StepResult], p: &CapacityParams) -> Option<f64> {
    let rates = p.rates();
    let Some(last) = steps.last() else { return rates.first().copied() };
    if !judge(last, p).sustained {
        let retried = steps.len() >= 2 && steps[steps.len() - 2].offered_rps == last.offered_rps;
        return (!retried).then_some(last.offered_rps);
    }
    rates.get((0..steps.len()).filter(|&i| counts(steps, i)).count()).copied()
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
        assert_eq!(next_rate(&steps[..3], &p), Some(137.0));
        assert_eq!(next_rate(&steps, &p), Some(137.0), "a failed step is tried once more");
        let c = capacity(&steps, &p);
        assert_eq!(c, Capacity { rps: Some(98.0), reached_limit: false, failed_step: Some(3) });
        let mut twice = steps.clone();
        twice.push(step(137.0, 1100, 80, 0, 0));
        assert_eq!(next_rate(&twice, &p), None, "the run stops when the retry fails too");
        assert_eq!(capacity(&twice, &p), Capacity { rps: Some(98.0), reached_limit: false, failed_step: Some(4) });
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
        assert_eq!(next_rate(&all, &p), None, "no step after the limit");
        let c = capacity(&all, &p);
        assert_eq!(c, Capacity { rps: Some(269.0), reached_limit: true, failed_step: None });
        // Interrupted before the limit: the highest step so far, not a limit reached.
        assert_eq!(capacity(&all[..2], &p), Capacity { rps: Some(70.0), reached_limit: false, failed_step: None });
        assert_eq!(next_rate(&[], &p), Some(50.0));
    }

    #[test]
    fn a_stall_retried_at_the_same_rate_does_not_end_the_climb() {
        let p = params();
        let mut steps = vec![step(50.0, 500, 3, 0, 0), step(70.0, 700, 4, 0, 0), step(70.0, 700, 4, 0, 0)];
        steps[1] = step(70.0, 700, 4, 20, 0); // a stall: 20 requests of 200 ms
        assert!(!judge(&steps[1], &p).sustained);
        assert!(!counts(&steps, 1) && counts(&steps, 2));
        assert_eq!(next_rate(&steps, &p), Some(98.0), "the retry held: on to the next rate");
        steps.push(step(98.0, 980, 5, 0, 0));
        assert_eq!(capacity(&steps, &p), Capacity { rps: Some(98.0), reached_limit: false, failed_step: None });
        // Every rate held, one after a retry: the limit is reached.
        let mut all: Vec<StepResult> = p.rates().into_iter().map(|r| step(r, (r * 10.0) as u64, 2, 0, 0)).collect();
        all.insert(2, step(98.0, 980, 60, 0, 0));
        assert_eq!(next_rate(&all, &p), None);
        assert_eq!(capacity(&all, &p), Capacity { rps: Some(269.0), reached_limit: true, failed_step: None });
    }
}
