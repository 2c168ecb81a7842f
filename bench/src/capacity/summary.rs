//! The capacity parts of summary.json: per configuration its steps and capacity, and the
//! corrected percentiles of each operation (read by the report, drawn by `report` and `chart`).

use crate::capacity::model::{CapacityParams, CapacityRun};
use crate::capacity::steps::{self, Capacity};
use crate::latency::CorrectedOp;
use crate::load::ops::Op;
use crate::report::results::ConfigResult;
use serde::{Deserialize, Serialize};

/// One step in summary.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepSummary {
    pub offered_rps: f64,
    pub achieved_rps: f64,
    pub requests: u64,
    pub failures: u64,
    pub raw_p50_ms: Option<f64>,
    pub raw_p99_ms: Option<f64>,
    pub corrected_p99_ms: Option<f64>,
    pub sustained: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// A step that did not hold and was run again at its rate: the retry counts instead.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retried: bool,
}

/// A configuration's capacity in summary.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapacitySummary {
    /// The highest offered rate that held (`None`: not even the first step).
    pub capacity_rps: Option<f64>,
    /// Every step up to `max_rps` held: the capacity is at least that.
    pub reached_limit: bool,
    pub params: CapacityParams,
    pub steps: Vec<StepSummary>,
}

impl CapacitySummary {
    pub fn of(run: &CapacityRun) -> CapacitySummary {
        let p = &run.params;
        let Capacity { rps, reached_limit, .. } = steps::capacity(&run.steps, p);
        let steps = run
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let v = steps::judge(s, p);
                StepSummary {
                    offered_rps: s.offered_rps,
                    achieved_rps: s.achieved_rps(),
                    requests: s.ok + s.failures,
                    failures: s.failures,
                    raw_p50_ms: s.raw.percentile_ms(50.0),
                    raw_p99_ms: s.raw.percentile_ms(99.0),
                    corrected_p99_ms: s.corrected.percentile_ms(99.0),
                    sustained: v.sustained,
                    reasons: v.reasons,
                    retried: !steps::counts(&run.steps, i),
                }
            })
            .collect();
        CapacitySummary { capacity_rps: rps, reached_limit, params: p.clone(), steps }
    }

    /// The capacity in words: "1372 req/s", "≥ 5000 req/s (the limit)", "< 50 req/s".
    pub fn text(&self) -> String {
        match self.capacity_rps {
            Some(r) if self.reached_limit => format!("≥ {r:.0} req/s (the limit)"),
            Some(r) => format!("{r:.0} req/s"),
            None if self.steps.is_empty() => "not measured".into(),
            None => format!("< {:.0} req/s", self.params.start_rps),
        }
    }
}

/// Raw and corrected percentiles per operation, from the repeats' merged histograms.
pub fn corrected_ops(c: &ConfigResult) -> Vec<CorrectedOp> {
    Op::ALL
        .iter()
        .map(|op| CorrectedOp::of(op.name(), c.repeats.iter().flat_map(|r| &r.latency)))
        .filter(|o| o.requests > 0)
        .collect()
}
