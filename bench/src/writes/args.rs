//! The command line of `shopbench-bench writes`, checked before anything starts.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::str::FromStr;

/// The name the minimal client's side goes by in the results (no build may take it).
pub const PGBENCH: &str = "pgbench";

/// One build of the web service under test: `NAME=PATH` on the command line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    pub name: String,
    pub binary: PathBuf,
}

impl FromStr for Build {
    type Err = String;

    fn from_str(s: &str) -> Result<Build, String> {
        let (name, path) = s.split_once('=').ok_or_else(|| format!("{s:?}: expected NAME=PATH"))?;
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(format!("{name:?}: a build's name is letters, digits, '-' or '_' (it names a topology)"));
        }
        if path.is_empty() {
            return Err(format!("{s:?}: no path after '='"));
        }
        Ok(Build { name: name.to_string(), binary: PathBuf::from(path) })
    }
}

#[derive(Clone, Debug, clap::Args)]
pub struct WritesArgs {
    /// A release web binary to measure, NAME=PATH (two or more), e.g.
    /// --build old=/tmp/old/shopbench --build new=target/release/shopbench.
    #[arg(long = "build", required = true)]
    pub builds: Vec<Build>,
    /// Connections (HTTP clients with a user each; pgbench's -c).
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    #[arg(long, default_value_t = 3)]
    pub warmup_secs: u64,
    /// Measured seconds per turn.
    #[arg(long, default_value_t = 10)]
    pub secs: u64,
    /// Rounds of turns (every build, then pgbench); the report gives medians over them.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Products seeded per topology; each add picks one at random (at most a cart's line limit).
    #[arg(long, default_value_t = 50)]
    pub products: usize,
    /// First loopback port; topology k takes the 20 ports from base + 20k.
    #[arg(long, default_value_t = 16400)]
    pub base_port: u16,
    /// The numbers as JSON.
    #[arg(long, default_value = "run/writes/writes.json")]
    pub json: PathBuf,
    /// The numbers as markdown.
    #[arg(long, default_value = "run/writes/writes.md")]
    pub markdown: PathBuf,
    /// Where the topologies run (one sub-directory each) [default: run/writes/<time>].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl WritesArgs {
    /// Refuses what cannot make a comparison: fewer than two builds, a name twice or `pgbench`,
    /// no connection, no measured time, no repeat, more products than a cart may hold.
    pub fn check(&self) -> Result<()> {
        if self.builds.len() < 2 {
            bail!("--build NAME=PATH at least twice (got {}): the builds are compared side by side", self.builds.len());
        }
        for (i, b) in self.builds.iter().enumerate() {
            if b.name == PGBENCH {
                bail!("--build {}=...: the name {PGBENCH} is the minimal client's", b.name);
            }
            if self.builds[..i].iter().any(|o| o.name == b.name) {
                bail!("--build {}=... given twice", b.name);
            }
        }
        if self.concurrency == 0 || self.secs == 0 || self.repeats == 0 {
            bail!("--concurrency, --secs and --repeats must be at least 1");
        }
        let max = domain::models::Cart::MAX_LINES;
        if self.products == 0 || self.products > max {
            bail!("--products {}: 1..={max} (a cart holds at most {max} lines)", self.products);
        }
        let topologies = self.builds.len() + 1;
        if u32::from(self.base_port) + 20 * topologies as u32 > u32::from(u16::MAX) {
            bail!("--base-port {}: {topologies} topologies need 20 ports each", self.base_port);
        }
        Ok(())
    }

    /// Each build's binary as an absolute path that exists.
    pub fn resolved_builds(&self) -> Result<Vec<Build>> {
        self.builds
            .iter()
            .map(|b| {
                let path = std::fs::canonicalize(&b.binary)
                    .with_context(|| format!("--build {}={}: no such binary", b.name, b.binary.display()))?;
                Ok(Build { name: b.name.clone(), binary: path })
            })
            .collect()
    }
}
