//! The runner's side: start N load clients where they are placed (this machine, or hosts over
//! SSH), wait for all, merge.

use super::args::{unix_now, ClientArgs, ADMIN_TOKEN_ENV, EXIT_GRACE};
use super::{merge, split, ClientResult, Merged};
use crate::load::{LoadResult, LoadSpec, Mix};
use crate::measure::cpu::{self, CpuUse};
use crate::observe::Window;
use anyhow::{Context, Result};
use infra::hosts::SshHost;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// Where a load client runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientPlace {
    /// A child process of the runner, on this machine.
    Local,
    /// A process on a host, started over SSH: this bench binary shipped into the host's bin/
    /// (infra's ship), the result copied back (scp).
    Remote(SshHost),
}

/// Copies to and from a host (a binary of ~100 MB on a busy link takes a while).
const COPY: Duration = Duration::from_secs(600);

/// Where a client's program and files are, as its machine sees them.
#[derive(Clone, Debug)]
struct Launch {
    exe: PathBuf,
    dir: PathBuf,
    products: Option<PathBuf>,
}

impl ClientPlace {
    /// For reports: where the client ran (loopback, or the host's name).
    pub fn describe(&self) -> String {
        match self {
            ClientPlace::Local => "loopback".into(),
            ClientPlace::Remote(h) => h.name.clone(),
        }
    }

    /// Gets the place ready for clients of the run whose files are in `dir` here: on a host, the
    /// binary shipped (unless there already), a fresh dir and the products file copied.
    fn prepare(&self, exe: &Path, dir: &Path, products: Option<&Path>) -> Result<Launch> {
        let ClientPlace::Remote(h) = self else {
            return Ok(Launch {
                exe: exe.to_path_buf(),
                dir: dir.to_path_buf(),
                products: products.map(Path::to_path_buf),
            });
        };
        let exe = infra::remote::ship_binary(h, exe).context("shipping the bench")?;
        let there = h.dir.join("clients").join(dir.file_name().context("clients dir has no name")?);
        let quoted = shlex::try_quote(there.to_str().context("non-UTF-8 dir")?)?.into_owned();
        h.run(&format!("rm -rf {quoted} && mkdir -p {quoted}"), Duration::from_secs(60))?;
        let products = match products {
            Some(p) => {
                h.copy_to(&[p], &there.display().to_string(), COPY)?;
                Some(there.join(p.file_name().context("products file has no name")?))
            }
            None => None,
        };
        Ok(Launch { exe, dir: there, products })
    }

    /// The command that runs `args` there, its result written to `out` (a file name) in the
    /// launch's dir. A remote client reads the admin token from its stdin (the command line is
    /// visible to every user of the host, and ssh passes no environment).
    fn command(&self, launch: &Launch, args: &ClientArgs, out: &str) -> Result<tokio::process::Command> {
        let args = ClientArgs { out: launch.dir.join(out), products: launch.products.clone(), ..args.clone() };
        Ok(match self {
            ClientPlace::Local => {
                let mut c = tokio::process::Command::new(&launch.exe);
                c.arg("load-client").args(args.to_args());
                c
            }
            ClientPlace::Remote(h) => {
                let exe = launch.exe.to_str().context("non-UTF-8 binary path")?;
                let words: Vec<String> =
                    [exe.to_string(), "load-client".into()].into_iter().chain(args.to_args()).collect();
                let line = shlex::try_join(words.iter().map(String::as_str))?;
                let script = format!("IFS= read -r {ADMIN_TOKEN_ENV} && export {ADMIN_TOKEN_ENV} && exec {line}");
                tokio::process::Command::from(h.command(&script))
            }
        })
    }

    /// The result the client wrote to `out` (a file name) in the launch's dir; `local_dir` gets
    /// a copy of a remote one.
    fn fetch(&self, launch: &Launch, out: &str, local_dir: &Path) -> Result<ClientResult> {
        let path = match self {
            ClientPlace::Local => launch.dir.join(out),
            ClientPlace::Remote(h) => {
                h.copy_from(&[launch.dir.join(out).as_path()], local_dir, COPY)?;
                local_dir.join(out)
            }
        };
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
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

/// Time for the clients to start before the common start: process start and argument parsing,
/// and for one on a host the SSH login too (started one after the other).
fn lead(places: &[ClientPlace]) -> Duration {
    let remote = places.iter().filter(|p| matches!(p, ClientPlace::Remote(_))).count() as u32;
    Duration::from_secs(2) + Duration::from_millis(500) * places.len() as u32 + Duration::from_secs(2) * remote
}

/// Runs `spec` as `places.len()` load clients (`exe` is a shopbench-bench binary; `dir` gets
/// their results and logs) and merges them. The CPU of `spec.cpu_groups` other than the load
/// client is measured here over the common window; the load client tier is the clients' own.
pub async fn run_clients(spec: &LoadSpec, places: &[ClientPlace], exe: &Path, dir: &Path) -> Result<ClientsRun> {
    let n = places.len();
    split(spec.users, n)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let products = products_file(spec, dir)?;
    // Hosts get the binary and their dir before the start is set: a first copy takes seconds.
    let mut launches: Vec<(&ClientPlace, Launch)> = Vec::new();
    for place in places {
        if !launches.iter().any(|(p, _)| *p == place) {
            let launch = match place {
                ClientPlace::Local => place.prepare(exe, dir, products.as_deref())?,
                ClientPlace::Remote(_) => tokio::task::block_in_place(|| place.prepare(exe, dir, products.as_deref()))
                    .with_context(|| format!("getting {} ready for load clients", place.describe()))?,
            };
            launches.push((place, launch));
        }
    }
    let lead = lead(places);
    let (start_at, start) = (unix_now() + lead.as_secs_f64(), Instant::now() + lead);
    let mut children = Vec::new();
    for (k, place) in places.iter().enumerate() {
        let launch = launches.iter().find(|(p, _)| *p == place).map(|(_, l)| l.clone()).context("prepared")?;
        let args = ClientArgs::from_spec(spec, k, n, start_at, None);
        let (out, log) = (format!("client-{k}.json"), dir.join(format!("client-{k}.log")));
        let _ = std::fs::remove_file(dir.join(&out));
        let log_file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = place.command(&launch, &args, &out)?;
        let remote = matches!(place, ClientPlace::Remote(_));
        command.env(ADMIN_TOKEN_ENV, &spec.admin_token);
        let mut child = command
            .stdin(if remote { Stdio::piped() } else { Stdio::null() })
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting load client {k} on {}", place.describe()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(format!("{}\n", spec.admin_token).as_bytes()).await?;
        } // dropped: the remote side's stdin ends
        children.push((k, place, launch, child, out, log));
    }
    // The clients' window: after the common start, Goose's 1 s user launch and the warm-up.
    let from = start + Duration::from_secs(1) + spec.warmup;
    let servers = server_cpu(spec, from, from + spec.secs);
    // As long as a client gives itself (ClientArgs::stop_at).
    let deadline = tokio::time::Instant::from_std(from + spec.secs + EXIT_GRACE);
    let mut parts = Vec::new();
    for (k, place, launch, mut child, out, log) in children {
        let status = tokio::time::timeout_at(deadline, child.wait()).await;
        let failed =
            |what: String| anyhow::anyhow!("load client {k}: {what}; its log {}:\n{}", log.display(), tail(&log));
        match status {
            Err(_) => return Err(failed("still running after the run's time".into())),
            Ok(Err(e)) => return Err(failed(format!("waiting for it: {e}"))),
            Ok(Ok(s)) if !s.success() => return Err(failed(format!("exited with {s}"))),
            Ok(Ok(_)) => {
                let fetched = match place {
                    ClientPlace::Local => place.fetch(&launch, &out, dir),
                    ClientPlace::Remote(_) => tokio::task::block_in_place(|| place.fetch(&launch, &out, dir)),
                };
                parts.push(fetched.map_err(|e| failed(format!("{e:#}")))?)
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ClientArgs,
    }

    #[test]
    fn a_remote_client_gets_its_command_line_quoted_and_its_token_on_stdin() {
        let h = SshHost {
            name: "load1".into(),
            address: "192.0.2.7".parse().unwrap(),
            user: "root".into(),
            port: 22,
            key: "/k".into(),
            known_hosts: None,
            dir: "/var/tmp/shopbench".into(),
        };
        let argv = ["x", "--hosts", "http://192.0.2.5:8000", "--users", "4", "--client", "1", "--clients", "2"];
        let more = ["--start-at", "10.5", "--secs", "5", "--categories", "it's here,b"];
        let args = Cli::try_parse_from(argv.into_iter().chain(more)).unwrap().args;
        let launch = Launch {
            exe: "/var/tmp/shop bench/bin/shopbench-bench".into(),
            dir: "/var/tmp/shop bench/clients/c".into(),
            products: None,
        };
        let place = ClientPlace::Remote(h);
        assert_eq!(place.describe(), "load1");
        let cmd = place.command(&launch, &args, "client-1.json").unwrap();
        assert_eq!(cmd.as_std().get_program(), "ssh");
        let script = cmd.as_std().get_args().last().unwrap().to_string_lossy().into_owned();
        let (prefix, line) = script.split_once(" && exec ").unwrap();
        assert_eq!(prefix, "IFS= read -r SHOPBENCH_ADMIN_TOKEN && export SHOPBENCH_ADMIN_TOKEN");
        // The shell on the host gets back exactly the words: the binary, the verb, the arguments.
        let words = shlex::split(line).unwrap();
        assert_eq!(words[..2], ["/var/tmp/shop bench/bin/shopbench-bench", "load-client"]);
        let back = Cli::try_parse_from(std::iter::once("x".to_string()).chain(words[2..].iter().cloned())).unwrap();
        assert_eq!(back.args, ClientArgs { out: launch.dir.join("client-1.json"), ..args });
    }
}
