//! One topology per side, all up at once on distinct loopback ports: 2 PostgreSQL backends,
//! 1 pgpool-II (infra's pgpool.conf and sizing), 1 web instance of the side's build, no nginx.
//! Seeding and signing up go through the web instance's API, as a shopper's would.

use crate::load::http::SignedUp;
use crate::load::{api, plan};
use crate::measure::cpu;
use anyhow::{bail, Context, Result};
use infra::{Kind, Running, Topology};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;
use uuid::Uuid;

/// Ports per topology: postgres base+0..1, pgpool base+5 (pcp base+6), web base+10.
pub const PORTS_PER_TOPOLOGY: u16 = 20;

/// The side's topology: its counts and ports, typed (infra validates it).
pub fn topology(name: &str, base_port: u16, web_binary: &Path) -> Result<Topology> {
    // Every section absent (count 0, infra's defaults), then set field by field.
    let mut t: Topology = toml::from_str(&format!("name = {:?}", format!("writes-{name}")))?;
    t.postgres.count = 2;
    t.postgres.base_port = base_port;
    t.pgpool.section.count = 1;
    t.pgpool.section.base_port = base_port + 5;
    t.pgpool.pcp_base_port = Some(base_port + 6);
    t.web.section.count = 1;
    t.web.section.base_port = base_port + 10;
    t.web.binary = Some(web_binary.to_path_buf());
    t.with_overrides(&infra::Overrides::default()).with_context(|| format!("the topology of {name}"))
}

/// A started side: its topology, the catalogue it was seeded with, its web URL.
pub struct Up {
    pub name: String,
    pub running: Running,
    pub url: String,
    pub admin: String,
    pub products: Vec<Uuid>,
}

/// A shop user the load acts as.
#[derive(Clone, Debug)]
pub struct User {
    pub id: Uuid,
    pub token: String,
}

impl Up {
    /// Starts the topology in `dir`, waits for the web instance (it must run on PostgreSQL only:
    /// a stage-pg build) and seeds `products` products.
    pub async fn start(name: &str, topology: Topology, dir: PathBuf, products: usize) -> Result<Up> {
        let running = tokio::task::spawn_blocking(move || topology.up(dir)).await??;
        let url = running.web_urls().pop().context("no web instance")?;
        let admin = running.admin_token();
        let client = api::client()?;
        api::wait_ready(&client, std::slice::from_ref(&url), Duration::from_secs(60)).await?;
        let stores = api::ready_stores(&client, &url).await?;
        let want = crate::matrix::stage_stores(settings::Stage::Pg);
        if stores != want {
            bail!(
                "{name}: the web instance runs on [{}], not [{}]: build it without stage features",
                stores.join(", "),
                want.join(", ")
            );
        }
        let specs = plan::seed_catalogue(products, &plan::categories(5));
        let products = api::seed_products(&client, std::slice::from_ref(&url), &admin, specs, 8).await?;
        Ok(Up { name: name.to_string(), running, url, admin, products })
    }

    /// Signs up users with the given emails through the web instance.
    pub async fn sign_up(&self, emails: &[String]) -> Result<Vec<User>> {
        let client = api::client()?;
        let url = format!("{}/users", self.url);
        let mut users = Vec::with_capacity(emails.len());
        for email in emails {
            let resp = client
                .post(&url)
                .json(&json!({ "email": email, "name": "Writes Bench" }))
                .send()
                .await
                .with_context(|| format!("POST {url}"))?;
            if resp.status().as_u16() != 201 {
                bail!("{}: signing up {email}: status {}", self.name, resp.status());
            }
            let s: SignedUp = resp.json().await.context("the sign-up answer")?;
            users.push(User { id: s.user.id, token: s.token });
        }
        Ok(users)
    }

    pub fn pgpool_endpoint(&self) -> Result<String> {
        self.running.pgpool_endpoints().pop().context("no pgpool")
    }

    /// Stops the web instance (pgbench's side: its pool would hold pgpool's children).
    pub fn stop_web(&mut self) -> Result<()> {
        tokio::task::block_in_place(|| self.running.stop(Kind::Web, 0))
    }

    /// Clients pgbench may open through this pgpool with the web instance stopped.
    pub fn pgbench_clients(&self) -> u32 {
        // infra keeps 4 children for its tools; the rest are free once the web pool is gone.
        self.running.sizing().num_init_children.saturating_sub(4)
    }

    fn pids(&self, kind: Kind) -> Vec<u32> {
        self.running.processes().iter().filter(|p| p.kind == kind && p.alive()).map(|p| p.pid).collect()
    }

    pub fn all_pids(&self) -> Vec<u32> {
        self.running.processes().iter().filter(|p| p.alive()).map(|p| p.pid).collect()
    }

    /// The two backends compared row by row (`infra::check`: row counts and checksums per table).
    pub fn check(&self) -> Result<infra::Report> {
        tokio::task::block_in_place(|| self.running.check_consistency())
    }
}

/// Group names of [`groups`].
pub const POSTGRES: &str = "postgres";
pub const PGPOOL: &str = "pgpool";
pub const WEB: &str = "web";
pub const CLIENT: &str = "client";
const OTHER_SIDES: &str = "other sides' topologies";

/// CPU groups for a turn of `active`: its PostgreSQL, pgpool and web trees, this process (the
/// HTTP clients, pgbench), and every other side's processes apart, so that their idle ticks are not
/// counted as the client's (they are all children of this process).
pub fn groups(active: &Up, others: &[&Up]) -> Vec<(String, Vec<u32>)> {
    vec![
        (POSTGRES.into(), active.pids(Kind::Postgres)),
        (PGPOOL.into(), active.pids(Kind::Pgpool)),
        (WEB.into(), active.pids(Kind::Web)),
        (CLIENT.into(), vec![std::process::id()]),
        (OTHER_SIDES.into(), others.iter().flat_map(|u| u.all_pids()).collect()),
    ]
}

/// The CPU seconds of a window from the cores `cpu::between` gave.
pub fn turn_cpu(use_: &cpu::CpuUse, secs: f64, web: bool) -> super::results::TurnCpu {
    let s = |g: &str| use_.cores.get(g).copied().unwrap_or(0.0) * secs;
    let measured: f64 =
        [POSTGRES, PGPOOL, WEB, CLIENT].iter().map(|g| use_.cores.get(*g).copied().unwrap_or(0.0)).sum();
    super::results::TurnCpu {
        postgres_s: s(POSTGRES),
        pgpool_s: s(PGPOOL),
        web_s: web.then(|| s(WEB)),
        client_s: s(CLIENT),
        machine_busy_cores: use_.machine_busy,
        other_cores: use_.machine_busy.map(|b| (b - measured).max(0.0)),
    }
}
