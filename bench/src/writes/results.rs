//! The numbers of a run, typed: what each turn measured, the medians over the repeats and the
//! ratios the report leads with. Serialized as the JSON file; the markdown is drawn from it.

use crate::measure::machine::Machine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What one side is: a build of the web service, or pgbench doing the adapter's add.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SideKind {
    Web { binary: String },
    Pgbench { script: String, pipelined: bool },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Side {
    pub name: String,
    #[serde(flatten)]
    pub kind: SideKind,
    /// Where its topology ran.
    pub run_dir: String,
}

/// CPU seconds each part used during a turn's measured window, from /proc.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TurnCpu {
    pub postgres_s: f64,
    pub pgpool_s: f64,
    /// None on pgbench's side (its web instance is stopped).
    pub web_s: Option<f64>,
    /// This bench process and its children (the HTTP clients; pgbench).
    pub client_s: f64,
    /// All the machine's cores busy on average in the window.
    pub machine_busy_cores: Option<f64>,
    /// Busy cores outside the measured processes (other work on the machine).
    pub other_cores: Option<f64>,
}

/// One turn: one side for one window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub repeat: usize,
    pub side: String,
    pub window_secs: f64,
    /// Adds answered 2xx (pgbench: transactions processed) in the window.
    pub adds: u64,
    pub failures: u64,
    /// Failures by reason (status and error code, or the transport error), the whole turn.
    pub failure_reasons: BTreeMap<String, u64>,
    pub adds_per_sec: f64,
    pub cpu: TurnCpu,
    pub per_add: PerAdd,
}

/// CPU per add answered, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PerAdd {
    /// PostgreSQL + pgpool-II.
    pub db_ms: f64,
    pub postgres_ms: f64,
    pub pgpool_ms: f64,
    pub web_ms: Option<f64>,
}

impl PerAdd {
    pub fn of(cpu: &TurnCpu, adds: u64) -> PerAdd {
        let per = |s: f64| if adds == 0 { f64::NAN } else { s * 1000.0 / adds as f64 };
        PerAdd {
            db_ms: per(cpu.postgres_s + cpu.pgpool_s),
            postgres_ms: per(cpu.postgres_s),
            pgpool_ms: per(cpu.pgpool_s),
            web_ms: cpu.web_s.map(per),
        }
    }
}

/// A side's medians over its repeats.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Medians {
    pub side: String,
    pub turns: usize,
    pub adds_per_sec: f64,
    pub per_add: PerAdd,
    /// Summed over the turns, not a median: one failure is worth seeing.
    pub failures: u64,
    pub machine_busy_cores: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    /// "B / A adds/s", "A DB CPU per add / pgbench's".
    pub what: String,
    pub value: f64,
}

/// The backends of one side's topology compared row by row after the runs (`infra::check`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Consistency {
    pub side: String,
    pub identical: bool,
    pub summary: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub concurrency: usize,
    pub warmup_secs: u64,
    pub secs: u64,
    pub repeats: usize,
    pub products: usize,
    pub seed: u64,
}

/// The whole run: the JSON file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WritesRun {
    pub command: String,
    pub started: String,
    pub machine: Machine,
    pub settings: Settings,
    /// The builds in the order given, then pgbench.
    pub sides: Vec<Side>,
    pub turns: Vec<Turn>,
    pub medians: Vec<Medians>,
    pub ratios: Vec<Ratio>,
    pub consistency: Vec<Consistency>,
    /// What the reader must know (e.g. pgbench without pipelines).
    pub notes: Vec<String>,
}

/// The median of some numbers (mean of the middle two for an even count); NaNs are left out.
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// Each side's medians over its turns, in the order of `sides`.
pub fn medians(sides: &[Side], turns: &[Turn]) -> Vec<Medians> {
    sides
        .iter()
        .map(|s| {
            let t: Vec<&Turn> = turns.iter().filter(|t| t.side == s.name).collect();
            let m = |f: &dyn Fn(&Turn) -> f64| median(t.iter().map(|t| f(t))).unwrap_or(f64::NAN);
            let web = median(t.iter().filter_map(|t| t.per_add.web_ms));
            Medians {
                side: s.name.clone(),
                turns: t.len(),
                adds_per_sec: m(&|t| t.adds_per_sec),
                per_add: PerAdd {
                    db_ms: m(&|t| t.per_add.db_ms),
                    postgres_ms: m(&|t| t.per_add.postgres_ms),
                    pgpool_ms: m(&|t| t.per_add.pgpool_ms),
                    web_ms: web,
                },
                failures: t.iter().map(|t| t.failures).sum(),
                machine_busy_cores: median(t.iter().filter_map(|t| t.cpu.machine_busy_cores)),
            }
        })
        .collect()
}

/// The second build's adds/s over the first's, and each build's DB CPU per add over pgbench's.
pub fn ratios(medians: &[Medians], pgbench: &str) -> Vec<Ratio> {
    let builds: Vec<&Medians> = medians.iter().filter(|m| m.side != pgbench).collect();
    let mut out = vec![];
    if let [a, b, ..] = builds[..] {
        out.push(Ratio { what: format!("{} / {} adds/s", b.side, a.side), value: b.adds_per_sec / a.adds_per_sec });
    }
    if let Some(p) = medians.iter().find(|m| m.side == pgbench) {
        for m in &builds {
            out.push(Ratio {
                what: format!("{} DB CPU per add vs {pgbench}", m.side),
                value: m.per_add.db_ms / p.per_add.db_ms,
            });
        }
    }
    out
}
