//! The runner's side: start N load clients where they are placed, wait for all, merge.

use super::args::{unix_now, ClientArgs, ADMIN_TOKEN_ENV};
use super::{merge, split, ClientResult, Merged};
use crate::load::{LoadResult, LoadSpec, Mix};
use crate::measure::cpu::{self, CpuUse};
use crate::observe::Window;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Where a load client runs. Only this machine for now; a client on another machine (over SSH,
/// with the binary copied there and the result copied back) is one more variant here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientPlace {
    /// A child process of the runner, on this machine.
    Local,
}

impl ClientPlace {
    /// For reports: where the client ran.
    pub fn describe(&self) -> String {
        match self {
            ClientPlace::Local => "loopback".into(),
        }
    }

    /// The command that runs `args` there, its result written to `out` there.
    fn command(&self, exe: &Path, args: &ClientArgs, out: &Path) -> tokio::process::Command {
        match self {
            ClientPlace::Local => {
                let mut c = tokio::process::Command::new(exe);
                c.arg("load-client").args(ClientArgs { out: out.to_path_buf(), ..args.clone() }.to_args());
                c
            }
        }
    }

    /// The result the client wrote to `out` there.
    fn fetch(&self, out: &Path) -> Result<ClientResult> {
        match self {
            ClientPlace::Local => {
                let text = std::fs::read_to_string(out).with_context(|| format!("reading {}", out.display()))?;
                serde_json::from_str(&text).with_context(|| format!("parsing {}", out.display()))
            }
        }
    }
}

/// What N load clients measured: merged as one run, and each one's own result.
pub struct ClientsRun {
    pub merged: LoadResult,
    pub parts: Vec<ClientResult>,
    /// Where each client ran, in client order.
    pub places: Vec<String>,
    /// How far apart the clients' windows started, seconds.
    pub skew_secs: f64,
}

/// Time for the clients to start before the common start: process start and argument parsing.
fn lead(clients: usize) -> Duration {
    Duration::from_secs(2) + Duration::from_millis(500) * clients as u32
}

/// Runs `spec` as `places.len()` load clients (`exe` is a shopbench-bench binary; `dir` gets
/// their results and logs) and merges them. The CPU of `spec.cpu_groups` other than the load
/// client is measured here over the common window; the load client tier is the clients' own.
pub async fn run_clients(spec: &LoadSpec, places: &[ClientPlace], exe: &Path, dir: &Path) -> Result<ClientsRun> {
    let n = places.len();
    split(spec.users, n)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let products = products_file(spec, dir)?;
    let lead = lead(n);
    let start_at = unix_now() + lead.as_secs_f64();
    let mut children = Vec::new();
    for (k, place) in places.iter().enumerate() {
        let args = ClientArgs::from_spec(spec, k, n, start_at, products.clone());
        let (out, log) = (dir.join(format!("client-{k}.json")), dir.join(format!("client-{k}.log")));
        let _ = std::fs::remove_file(&out);
        let log_file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = place
            .command(exe, &args, &out)
            .env(ADMIN_TOKEN_ENV, &spec.admin_token)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting load client {k} ({})", exe.display()))?;
        children.push((k, place, child, out, log));
    }
    // The clients' window: after the common start, Goose's 1 s user launch and the warm-up.
    let from = Instant::now() + lead + Duration::from_secs(1) + spec.warmup;
    let servers = server_cpu(spec, from, from + spec.secs);
    // Goose ends a second after the window; a minute more for slow exits on a busy machine.
    let deadline = tokio::time::Instant::from_std(from + spec.secs + Duration::from_secs(60));
    let mut parts = Vec::new();
    for (k, place, mut child, out, log) in children {
        let status = tokio::time::timeout_at(deadline, child.wait()).await;
        let failed =
            |what: String| anyhow::anyhow!("load client {k}: {what}; its log {}:\n{}", log.display(), tail(&log));
        match status {
            Err(_) => return Err(failed("still running after the run's time".into())),
            Ok(Err(e)) => return Err(failed(format!("waiting for it: {e}"))),
            Ok(Ok(s)) if !s.success() => return Err(failed(format!("exited with {s}"))),
            Ok(Ok(_)) => parts.push(place.fetch(&out).map_err(|e| failed(format!("{e:#}")))?),
        }
    }
    let merged = merge(&parts)?;
    let cpu = servers.await.ok().flatten().map(|c| with_clients(c, &merged));
    Ok(ClientsRun {
        places: places.iter().map(ClientPlace::describe).collect(),
        skew_secs: merged.skew_secs,
        merged: load_result(merged, cpu),
        parts,
    })
}

/// The product-read mix's products, as a file for the clients.
fn products_file(spec: &LoadSpec, dir: &Path) -> Result<Option<PathBuf>> {
    let Mix::ProductReads { products } = &spec.mix else { return Ok(None) };
    let path = dir.join("products.json");
    std::fs::write(&path, serde_json::to_string(products.as_slice())?)?;
    Ok(Some(path))
}

/// The servers' CPU (every group but the load client) between two instants, in the background.
fn server_cpu(spec: &LoadSpec, from: Instant, until: Instant) -> tokio::task::JoinHandle<Option<CpuUse>> {
    let groups: Vec<(String, Vec<u32>)> =
        spec.cpu_groups.iter().filter(|(name, _)| name != "load client").cloned().collect();
    tokio::spawn(async move {
        tokio::time::sleep_until(tokio::time::Instant::from_std(from)).await;
        let a = cpu::snapshot(&groups);
        tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
        Some(cpu::between(&a, &cpu::snapshot(&groups)))
    })
}

/// The servers' cores plus the load client tier: the clients' own cores added up.
fn with_clients(mut cpu: CpuUse, merged: &Merged) -> CpuUse {
    cpu.cores.insert("load client".into(), merged.cpu_cores);
    cpu
}

fn load_result(m: Merged, cpu: Option<CpuUse>) -> LoadResult {
    LoadResult {
        ops: m.ops,
        window_secs: m.window_secs,
        goose: m.goose,
        host_moves: m.host_moves,
        cpu,
        window: Window { start: m.window_start, end: m.window_end },
        latency: m.latency,
        samples: m.samples,
    }
}

/// The last lines of a client's log, for an error.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// `n` clients on this machine.
pub fn local(n: usize) -> Vec<ClientPlace> {
    vec![ClientPlace::Local; n]
}
