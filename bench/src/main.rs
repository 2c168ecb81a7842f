//! `shopbench-bench`: run the configuration matrix, re-draw a report, or load a running stack.

use anyhow::{Context, Result};
use bench::floor;
use bench::load::api;
use bench::load::plan::{categories, seed_catalogue};
use bench::load::{self, LoadSpec, Mix};
use bench::matrix::runner;
use bench::matrix::{CatalogueParams, LoadParams};
use bench::report::results;
use bench::report::stats::OpStats;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "shopbench-bench", about = "Load, measure and chart the shopbench stack", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every configuration of a matrix file on fresh topologies, then write the report.
    Matrix {
        /// The matrix, e.g. bench/matrix/quick.toml or bench/matrix/pg.toml.
        #[arg(long)]
        file: PathBuf,
        /// Where the report, summary.json and charts go [default: docs/results/<stage>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Where raw results go [default: run/bench/<stage>/<time>].
        #[arg(long)]
        run_dir: Option<PathBuf>,
        /// Only these configurations (1-based positions in the file), e.g. --only 1,3.
        #[arg(long, value_delimiter = ',')]
        only: Vec<usize>,
    },
    /// Re-draw the report, summary.json and charts from saved raw results.
    Report {
        /// A raw results dir (run/bench/<stage>/<time>).
        #[arg(long)]
        from: PathBuf,
        /// [default: docs/results/<stage>]
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Compare the stages (carts: PostgreSQL vs Redis; catalogue: PostgreSQL vs Cassandra) from
    /// their summary.json files: charts, tables and a reading.
    Compare {
        /// A stage's results folder (with summary.json); two or three, e.g.
        /// --from docs/results/pg --from docs/results/redis --from docs/results/cassandra.
        #[arg(long, required = true)]
        from: Vec<PathBuf>,
        #[arg(long, default_value = "docs/results/compare")]
        out: PathBuf,
        /// The PostgreSQL/pgpool/web/nginx counts to compare at, e.g. "pg2 pool2 web2 nginx2"
        /// [default: the largest the stages share].
        #[arg(long)]
        base: Option<String>,
    },
    /// One Goose run against a running stack (e.g. `cargo run -p app`), printed as a table.
    Load(LoadArgs),
    /// SIGKILL and restart one instance of each kind under the shopaholic load, check every
    /// acknowledged order, the carts and the backends; write faults.json and faults.md.
    Faults {
        /// The faults file, e.g. bench/faults/pg.toml.
        #[arg(long, required_unless_present = "redraw")]
        file: Option<PathBuf>,
        /// Only rewrite faults.md from faults.json (in --out), running nothing.
        #[arg(long)]
        redraw: bool,
        /// Where faults.json and faults.md go [default: docs/results].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Where the topology runs [default: run/faults/<stage>].
        #[arg(long)]
        run_dir: Option<PathBuf>,
    },
    /// Rewrite the HTML page beside markdown reports that are already written (README.md ->
    /// report.html, faults.md -> faults.html), from the markdown and its charts, measuring nothing.
    Pages {
        /// Markdown reports [default: the committed ones under docs/results].
        markdown: Vec<PathBuf>,
    },
    /// The race workload alone against a running service (e.g. `cargo run -p app`): per round
    /// one user fires two requests at once (add vs checkout, set vs checkout, a checkout replay vs
    /// add, two checkouts with other keys), then every history is checked; exit code 1 when an
    /// acknowledged cart change was lost or an order line doubled.
    Races {
        /// Base URL(s), comma-separated; requests go to them in turn, even to a dead one.
        #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:8080")]
        url: Vec<String>,
        /// Rounds over all users.
        #[arg(long, default_value_t = 300)]
        rounds: usize,
        /// Concurrent users.
        #[arg(long, default_value_t = 4)]
        users: usize,
        /// Products to race on (seeded with the admin token when the catalogue is empty).
        #[arg(long, default_value_t = 20)]
        products: usize,
        #[arg(long, default_value = "admin-dev-token")]
        admin_token: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// The storage floor alone: the same plans straight through the PostgreSQL adapter.
    Floor(FloorArgs),
    /// One load client of many (the matrix starts them with `[run] load_clients`): its share of
    /// the run's users from --start-at, the result as JSON (admin token in SHOPBENCH_ADMIN_TOKEN).
    LoadClient(bench::clients::args::ClientArgs),
    /// A cart add's throughput and database-side CPU through one 2-backend pgpool-II, for several
    /// web builds side by side (one topology each, turns interleaved) and pgbench running the
    /// adapter's add statements; writes JSON and markdown (asserts no timing).
    Writes(bench::writes::args::WritesArgs),
}

fn command_line() -> String {
    std::env::args()
        .map(|a| if a.contains(char::is_whitespace) { format!("'{a}'") } else { a })
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_table(ops: &[OpStats], secs: f64) {
    println!(
        "{:<50} {:>8} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "operation", "ok", "failed", "mean ms", "p50", "p95", "p99", "req/s"
    );
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    for o in ops.iter().filter(|o| o.ok + o.failures > 0) {
        println!(
            "{:<50} {:>8} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8.1}",
            o.op,
            o.ok,
            o.failures,
            f(o.mean_ms),
            f(o.p50_ms),
            f(o.p95_ms),
            f(o.p99_ms),
            o.rps
        );
        for (reason, n) in &o.failure_reasons {
            println!("{:<50} {n:>8} x {reason}", "");
        }
    }
    let ok: u64 = ops.iter().map(|o| o.ok).sum();
    let failed: u64 = ops.iter().map(|o| o.failures).sum();
    println!("total: {ok} ok, {failed} failed in {secs:.0} s ({:.1} req/s)", ok as f64 / secs);
}

#[derive(clap::Args)]
struct LoadArgs {
    /// Base URL(s) of the API, comma-separated; users are spread round-robin over them.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:8080")]
    host: Vec<String>,
    #[arg(long, default_value_t = 16)]
    users: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 15)]
    secs: u64,
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    #[arg(long, default_value = "admin-dev-token")]
    admin_token: String,
    /// Seed this many products first when the catalogue is empty.
    #[arg(long, default_value_t = 500)]
    products: usize,
    /// Shopper think time in ms, min,max.
    #[arg(long, value_delimiter = ',', num_args = 2, default_values_t = [20, 80])]
    think_ms: Vec<u64>,
    #[arg(long, default_value_t = 15)]
    shopper_weight: usize,
    #[arg(long, default_value_t = 1)]
    merchant_weight: usize,
    /// Only GET /products/{id}, without think time.
    #[arg(long)]
    product_reads: bool,
    /// Also write the numbers as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(clap::Args)]
struct FloorArgs {
    /// pgpool (or PostgreSQL) endpoints, host:port, comma-separated.
    #[arg(long, value_delimiter = ',')]
    endpoints: Vec<String>,
    #[arg(long, default_value = "shop")]
    dbname: String,
    /// Connections per endpoint.
    #[arg(long, default_value_t = 8)]
    pool_size: u32,
    #[arg(long, default_value_t = 16)]
    users: usize,
    #[arg(long, default_value_t = 15)]
    secs: u64,
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// `load`: seeds the catalogue if it is empty, runs Goose, prints the table.
async fn load_command(args: LoadArgs) -> Result<()> {
    let LoadArgs {
        host,
        users,
        secs,
        warmup,
        admin_token,
        products,
        think_ms,
        shopper_weight,
        merchant_weight,
        product_reads,
        json,
        seed,
    } = args;
    bench::cancel::install_ctrl_c();
    let client = api::client()?;
    api::wait_ready(&client, &host, Duration::from_secs(10)).await?;
    let cat = CatalogueParams::default();
    let mut ids = api::product_ids(&client, &host[0]).await?;
    if ids.is_empty() && products > 0 {
        eprintln!("bench: seeding {products} products");
        let specs = seed_catalogue(products, &categories(cat.categories));
        ids = api::seed_products(&client, &host, &admin_token, specs, cat.parallel).await?;
    }
    let params = LoadParams { think_ms: [think_ms[0], think_ms[1]], ..LoadParams::default() };
    let spec = LoadSpec {
        hosts: host,
        users,
        warmup: Duration::from_secs(warmup),
        secs: Duration::from_secs(secs),
        think: params.think(),
        merchant_think: params.merchant_think(),
        mix: if product_reads {
            Mix::ProductReads { products: Arc::new(ids) }
        } else {
            Mix::Shop { shopper_weight, merchant_weight }
        },
        journey: Arc::new(params.journey(cat.categories)),
        admin_token,
        goose_report: None,
        seed,
        request_timeout_secs: 10,
        cpu_groups: vec![("load client".into(), vec![std::process::id()])],
    };
    let tick: load::Tick = Arc::new(|elapsed, total, (ok, failed)| {
        let whole = elapsed.floor() as u64;
        if whole > 0 && whole.is_multiple_of(5) {
            eprintln!("bench: {whole}/{total:.0} s, {ok} requests measured, {failed} failed");
        }
    });
    let out = load::run(&spec, Some(tick)).await?;
    print_table(&out.ops, out.window_secs);
    eprintln!(
        "goose's own count (from user launch): {} requests, {} failed; users moved nginx: {}",
        out.goose.requests, out.goose.failures, out.host_moves
    );
    if let Some(cpu) = &out.cpu {
        eprintln!("cores used in the window: {}", cpu.one_line());
    }
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(&out.ops)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// `floor`: the storage floor against PostgreSQL endpoints, printed as a table.
async fn floor_command(args: FloorArgs) -> Result<()> {
    let FloorArgs { endpoints, dbname, pool_size, users, secs, warmup, seed } = args;
    anyhow::ensure!(!endpoints.is_empty(), "--endpoints host:port[,host:port...]");
    let mut settings = adapter_postgres::PgSettings::new(endpoints);
    settings.dbname = dbname;
    settings.pool_size = pool_size;
    let store = adapter_postgres::PgStore::connect(&settings).await?;
    store.migrate().await?;
    let admin = "floor-admin";
    let shop = domain::Shop::new(
        store.stores(),
        Arc::new(domain::ports::SystemClock),
        &domain::models::ApiToken::from_client(admin),
    );
    let params = LoadParams::default();
    let spec = floor::FloorSpec {
        users,
        warmup: Duration::from_secs(warmup),
        secs: Duration::from_secs(secs),
        think: params.think(),
        merchant_think: params.merchant_think(),
        shopper_weight: params.shopper_weight,
        merchant_weight: params.merchant_weight,
        journey: Arc::new(params.journey(CatalogueParams::default().categories)),
        admin_token: admin.into(),
        seed,
        cpu_groups: vec![],
    };
    let (ops, _) = floor::run(shop, &spec, None).await?;
    print_table(&ops, secs as f64);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Matrix { file, out, run_dir, only } => {
            let out =
                runner::run_matrix(runner::MatrixOptions { file, run_dir, out, only, command: command_line() }).await?;
            eprintln!("bench: report written to {}", results::display_path(&out.join("README.md")));
        }
        Command::Report { from, out } => {
            let (meta, configs) = results::load_run(&from)?;
            let out = out.unwrap_or_else(|| infra::repo_root().join("docs/results").join(meta.stage.name()));
            let s = bench::report::write(&meta, &configs, &from.canonicalize()?, &out)?;
            for t in &s.targets {
                eprintln!("target {}: {} -> {:?}", t.id, t.measured, t.reached);
            }
            eprintln!("bench: report written to {}", results::display_path(&out.join("README.md")));
        }
        Command::Compare { from, out, base } => {
            bench::report::compare::write(&from, &out, base.as_deref(), &command_line())?;
            eprintln!("bench: comparison written to {}", results::display_path(&out.join("README.md")));
        }
        Command::Load(args) => load_command(args).await?,
        Command::LoadClient(args) => bench::clients::args::main(args).await?,
        Command::Faults { file, redraw, out, run_dir } => {
            if redraw {
                let out = out.unwrap_or_else(|| infra::repo_root().join("docs/results"));
                let n = bench::faults::table::redraw(&out)?;
                eprintln!("bench: {} redrawn from {n} rows", results::display_path(&out.join("faults.md")));
            } else {
                let file = file.context("--file")?;
                bench::faults::command(&file, out, run_dir, command_line()).await?;
            }
        }
        Command::Pages { markdown } => {
            let results = infra::repo_root().join("docs/results");
            let markdown = if markdown.is_empty() {
                bench::page::REPORTS.iter().map(|r| results.join(r)).collect()
            } else {
                markdown
            };
            for md in markdown {
                let page = bench::page::write_beside(&md)?;
                eprintln!("bench: {} written", results::display_path(&page));
            }
        }
        Command::Races { url, rounds, users, products, admin_token, seed } => {
            bench::race::command(url, rounds, users, products, &admin_token, seed).await?;
        }
        Command::Floor(args) => floor_command(args).await?,
        Command::Writes(args) => bench::writes::command(args, command_line()).await?,
    }
    Ok(())
}
