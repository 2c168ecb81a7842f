//! Many load clients: one run's users shared out over N `shopbench-bench load-client` processes
//! (on loopback now; on other machines once a launcher places them there), started together
//! and merged exactly.
//!
//! * [`split`]: client k of N gets a contiguous, disjoint slice of the run-wide user indices
//!   (and, for the product-read mix, of the products). A user's seed, nginx and email follow
//!   from its run-wide index ([`crate::load::run_share`]), so two clients never act as the same
//!   shopper.
//! * [`args`]: the typed command line of one client and its run ([`args::run_client`]): it
//!   waits for the runner's `--start-at` unix time, so every client's measured window is the same
//!   span of wall-clock time, and writes a [`ClientResult`] as JSON.
//! * [`launch`]: where a client runs ([`launch::ClientPlace`]) and the runner's side: spawn,
//!   wait for all, merge.
//!
//! Merging never averages means: each client ships its exact samples (the mean is then total
//! time over total count, the percentiles the nearest rank of all samples, as one process would
//! give) and its hdrhistograms, which add bucket by bucket.

pub mod args;
pub mod launch;

use crate::latency::{Hist, OpLatency};
use crate::load::ops::Op;
use crate::load::recorder::OpSamples;
use crate::load::GooseTotals;
use crate::report::stats::OpStats;
use anyhow::{bail, ensure, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use uuid::Uuid;

/// One client's users: run-wide indices `first .. first + count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    pub first: usize,
    pub count: usize,
}

/// Shares `users` out over `clients` as evenly as possible (the first `users % clients` clients
/// get one more). Every client needs at least one user: more clients than users is refused.
pub fn split(users: usize, clients: usize) -> Result<Vec<Share>> {
    ensure!(clients >= 1, "at least one load client");
    ensure!(clients <= users, "{clients} load clients for {users} users: each client needs at least one user");
    let (base, extra) = (users / clients, users % clients);
    let mut first = 0;
    Ok((0..clients)
        .map(|k| {
            let count = base + usize::from(k < extra);
            let share = Share { first, count };
            first += count;
            share
        })
        .collect())
}

/// Client `k`'s contiguous slice of `items` (split like the users); refused when some client
/// would get none.
pub fn slice_of<T: Clone>(items: &[T], k: usize, clients: usize) -> Result<Vec<T>> {
    let shares = split(items.len(), clients)?;
    let s = shares.get(k).ok_or_else(|| anyhow::anyhow!("client {k} of {clients}"))?;
    Ok(items[s.first..s.first + s.count].to_vec())
}

/// Everything one load client measured, as it writes it (JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientResult {
    /// This client's position (0-based) among `clients`.
    pub client: usize,
    pub clients: usize,
    pub share: Share,
    /// The machine it ran on (its hostname).
    pub host: String,
    /// The measured window, unix seconds.
    pub window_start: f64,
    pub window_end: f64,
    pub window_secs: f64,
    /// Per operation: every successful request's time and the failures by reason.
    pub samples: Vec<OpSamples>,
    /// Per operation with successes: raw and corrected histograms.
    pub latency: Vec<OpLatency>,
    pub goose: GooseTotals,
    pub host_moves: u64,
    /// Cores this process (with its children) used over the window.
    pub cpu_cores: Option<f64>,
    /// The shop users its shoppers signed up (warm-up included): other clients' never appear.
    pub signed_up: Vec<Uuid>,
}

/// The clients' results as one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Merged {
    pub samples: Vec<OpSamples>,
    pub ops: Vec<OpStats>,
    pub latency: Vec<OpLatency>,
    pub goose: GooseTotals,
    pub host_moves: u64,
    /// The clients' cores added up.
    pub cpu_cores: f64,
    /// From the earliest window start to the latest window end.
    pub window_start: f64,
    pub window_end: f64,
    pub window_secs: f64,
    /// How far apart the clients' windows started, seconds.
    pub skew_secs: f64,
}

/// Merges the clients' results exactly: samples concatenated, histograms added, counts summed.
/// Refuses results that are not one run's: other window lengths, overlapping shares, a shop user
/// signed up by two clients.
pub fn merge(parts: &[ClientResult]) -> Result<Merged> {
    let Some(first) = parts.first() else { bail!("no load client result to merge") };
    ensure!(parts.iter().all(|p| p.window_secs == first.window_secs), "the clients measured windows of other lengths");
    check_disjoint(parts)?;
    let samples: Vec<OpSamples> = Op::ALL
        .iter()
        .map(|op| {
            let mut all = OpSamples { op: op.name().to_string(), ..OpSamples::default() };
            parts.iter().flat_map(|p| &p.samples).filter(|s| s.op == op.name()).for_each(|s| all.absorb(s));
            all
        })
        .collect();
    let latency = Op::ALL
        .iter()
        .filter_map(|op| {
            let of_op = || parts.iter().flat_map(|p| &p.latency).filter(|l| l.op == op.name());
            let raw = Hist::merged(of_op().map(|l| &l.raw));
            let corrected = Hist::merged(of_op().map(|l| &l.corrected));
            (raw.count() > 0).then(|| OpLatency { op: op.name().to_string(), raw, corrected })
        })
        .collect();
    let starts = parts.iter().map(|p| p.window_start);
    let (earliest, latest) = (starts.clone().fold(f64::INFINITY, f64::min), starts.fold(f64::NEG_INFINITY, f64::max));
    Ok(Merged {
        ops: samples.iter().map(|s| s.stats(first.window_secs)).collect(),
        samples,
        latency,
        goose: GooseTotals {
            requests: parts.iter().map(|p| p.goose.requests).sum(),
            failures: parts.iter().map(|p| p.goose.failures).sum(),
            duration_secs: parts.iter().map(|p| p.goose.duration_secs).max().unwrap_or(0),
            users: parts.iter().map(|p| p.goose.users).sum(),
        },
        host_moves: parts.iter().map(|p| p.host_moves).sum(),
        cpu_cores: parts.iter().filter_map(|p| p.cpu_cores).sum(),
        window_start: earliest,
        window_end: parts.iter().map(|p| p.window_end).fold(f64::NEG_INFINITY, f64::max),
        window_secs: first.window_secs,
        skew_secs: latest - earliest,
    })
}

/// No two clients share a user index or a signed-up shop user.
fn check_disjoint(parts: &[ClientResult]) -> Result<()> {
    let mut shares: Vec<Share> = parts.iter().map(|p| p.share).collect();
    shares.sort_by_key(|s| s.first);
    if let Some(w) = shares.windows(2).find(|w| w[0].first + w[0].count > w[1].first) {
        bail!("load clients share users: {:?} and {:?}", w[0], w[1]);
    }
    let mut owner: HashMap<Uuid, usize> = HashMap::new();
    for p in parts {
        for u in &p.signed_up {
            if let Some(other) = owner.insert(*u, p.client).filter(|o| *o != p.client) {
                bail!("shop user {u} was signed up by load clients {other} and {}", p.client);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
