//! What a fault cost the clients, read from the timeline: the failed requests and their
//! reasons, and how long until the affected operations succeeded again.
//!
//! Recovery is measured per class of operations (reads, writes), from the event (the kill, or
//! the start of the restart): a class is affected when a request of it failed, or when its
//! successes stopped for longer than `max(1 s, 3 x its longest pause before the fault)`; it
//! has recovered at the end of its first success that started after its last failure, and not
//! before the end of its last such pause. The recovery of the event is the latest over the
//! affected classes (0 when none was affected; `None` when one never recovered in the window).

use super::timeline::Req;
use crate::load::ops::Op;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The shortest pause of a class's successes that counts as an outage: a stall of the shared
/// 2-core machine pauses everything for a few hundred ms now and then.
pub const PAUSE: f64 = 1.0;

/// A span of the timeline, in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Span {
    pub from: f64,
    pub to: f64,
}

impl Span {
    fn holds(&self, t: f64) -> bool {
        (self.from..self.to).contains(&t)
    }
}

/// Failed requests of one operation for one reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReason {
    /// "kill" (from the kill to the restart), "restart" (from the restart on) or "before".
    pub phase: String,
    pub op: String,
    pub reason: String,
    pub count: u64,
}

/// Failed requests that ended inside `span`.
pub fn failures(reqs: &[Req], span: Span) -> Vec<&Req> {
    reqs.iter().filter(|r| !r.ok() && span.holds(r.end)).collect()
}

/// Failures grouped by operation and reason, most frequent first.
pub fn reasons(reqs: &[Req], span: Span, phase: &str) -> Vec<ErrorReason> {
    let mut by: BTreeMap<(String, String), u64> = BTreeMap::new();
    for r in failures(reqs, span) {
        *by.entry((r.op.name().to_string(), r.error.clone().unwrap_or_default())).or_default() += 1;
    }
    let mut out: Vec<ErrorReason> =
        by.into_iter().map(|((op, reason), count)| ErrorReason { phase: phase.into(), op, reason, count }).collect();
    out.sort_by_key(|e| std::cmp::Reverse(e.count));
    out
}

fn class(reads: bool) -> impl Fn(&&Req) -> bool {
    move |r: &&Req| r.op.is_read() == reads
}

/// The longest time inside `span` without a successful completion of the requests that pass
/// `keep` (counting from the last success before the span).
pub fn longest_pause(reqs: &[Req], span: Span, keep: impl Fn(&&Req) -> bool) -> f64 {
    let mut ends: Vec<f64> = reqs.iter().filter(|r| r.ok()).filter(&keep).map(|r| r.end).collect();
    ends.sort_by(f64::total_cmp);
    let mut prev = ends.iter().rev().copied().find(|t| *t < span.from).unwrap_or(span.from);
    let mut longest: f64 = 0.0;
    for t in ends.iter().copied().filter(|t| span.holds(*t)).chain([span.to]) {
        longest = longest.max(t - prev);
        prev = t;
    }
    longest
}

/// Seconds from `span.from` until one class (reads or writes) succeeds again (see the module
/// doc); `Some(0.0)` when the class was not affected.
fn class_recovery(reqs: &[Req], span: Span, reads: bool, baseline_pause: f64) -> Option<f64> {
    let keep = class(reads);
    let threshold = (3.0 * baseline_pause).max(PAUSE);
    let last_failure = failures(reqs, span).into_iter().filter(&keep).map(|r| r.end).reduce(f64::max);
    let mut successes: Vec<&Req> = reqs.iter().filter(|r| r.ok()).filter(&keep).collect();
    successes.sort_by(|a, b| a.end.total_cmp(&b.end));
    let mut affected = last_failure.is_some();
    let mut recovered = span.from;
    if let Some(failed) = last_failure {
        let first = successes.iter().find(|r| r.start >= failed && span.holds(r.end))?;
        recovered = first.end;
    }
    let mut prev = successes.iter().rev().map(|r| r.end).find(|t| *t < span.from).unwrap_or(span.from);
    for t in successes.iter().map(|r| r.end).filter(|t| span.holds(*t)) {
        if t - prev > threshold {
            affected = true;
            recovered = recovered.max(t);
        }
        prev = t;
    }
    if span.to - prev > threshold {
        return None; // stopped succeeding and never came back inside the span
    }
    Some(if affected { recovered - span.from } else { 0.0 })
}

/// The recovery of an event at `span.from` (see the module doc), given the steady span before
/// the fault for each class's usual pauses.
pub fn recovery(reqs: &[Req], span: Span, steady: Span) -> Option<f64> {
    let mut worst: f64 = 0.0;
    for reads in [true, false] {
        if !reqs.iter().any(|r| r.op.is_read() == reads) {
            continue;
        }
        let baseline = longest_pause(reqs, steady, class(reads));
        worst = worst.max(class_recovery(reqs, span, reads, baseline)?);
    }
    Some(worst)
}

/// The slowest request that overlapped `span`, in seconds, with its operation.
pub fn slowest(reqs: &[Req], span: Span) -> Option<(f64, Op)> {
    reqs.iter()
        .filter(|r| r.end >= span.from && r.start < span.to)
        .map(|r| (r.end - r.start, r.op))
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(op: Op, start: f64, end: f64, error: Option<&str>) -> Req {
        Req { user: 0, op, start, end, error: error.map(str::to_string) }
    }

    /// Reads and writes every 20 ms from 0 to 10 s, except where `skip` says.
    fn steady(skip: impl Fn(bool, f64) -> bool) -> Vec<Req> {
        let mut v = Vec::new();
        for i in 0..500 {
            let t = i as f64 * 0.02;
            for (reads, op) in [(true, Op::GetProduct), (false, Op::AddItem)] {
                if !skip(reads, t) {
                    v.push(req(op, t, t + 0.005, None));
                }
            }
        }
        v
    }

    const BEFORE: Span = Span { from: 1.0, to: 5.0 };
    const AFTER_KILL: Span = Span { from: 5.0, to: 10.0 };

    #[test]
    fn an_unaffected_fault_recovers_in_zero() {
        let reqs = steady(|_, _| false);
        assert_eq!(recovery(&reqs, AFTER_KILL, BEFORE), Some(0.0));
        assert!(longest_pause(&reqs, AFTER_KILL, |_| true) < 0.03);
        assert!(failures(&reqs, AFTER_KILL).is_empty());
    }

    #[test]
    fn failures_count_until_the_first_success_sent_after_the_last_one() {
        let mut reqs = steady(|reads, t| !reads && (5.0..5.5).contains(&t));
        reqs.push(req(Op::AddItem, 5.0, 5.1, Some("502 Bad Gateway")));
        reqs.push(req(Op::Checkout, 5.2, 5.45, Some("502 Bad Gateway")));
        reqs.push(req(Op::AddItem, 5.3, 5.31, Some("503 unavailable")));
        // The writes sent from 5.5 s succeed (5.505); the pause of 0.5 s also ends there.
        let r = recovery(&reqs, AFTER_KILL, BEFORE).unwrap();
        assert!((r - 0.505).abs() < 1e-9, "{r}");
        let why = reasons(&reqs, AFTER_KILL, "kill");
        assert_eq!(why.len(), 3);
        assert_eq!(why.iter().map(|w| w.count).sum::<u64>(), 3);
        assert!(why.iter().any(|w| w.op == "POST /users/{user_id}/orders" && w.reason == "502 Bad Gateway"));
    }

    #[test]
    fn a_stall_without_errors_is_a_recovery_too() {
        // Writes stop for 3 s (a rejoin holding them), reads go on.
        let reqs = steady(|reads, t| !reads && (6.0..9.0).contains(&t));
        let r = recovery(&reqs, AFTER_KILL, BEFORE).unwrap();
        assert!((r - 4.005).abs() < 1e-9, "{r}");
        assert!((longest_pause(&reqs, AFTER_KILL, |r: &&Req| !r.op.is_read()) - 3.02).abs() < 1e-9);
    }

    #[test]
    fn a_class_that_never_comes_back_has_no_recovery() {
        let mut reqs = steady(|reads, t| !reads && t >= 5.0);
        reqs.push(req(Op::AddItem, 5.1, 5.2, Some("503 unavailable")));
        assert_eq!(recovery(&reqs, AFTER_KILL, BEFORE), None);
        assert_eq!(slowest(&reqs, AFTER_KILL).map(|s| s.1), Some(Op::AddItem));
    }
}
