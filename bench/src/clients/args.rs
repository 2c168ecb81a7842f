//! One load client's command line (`shopbench-bench load-client`) and its run.

use super::{split, ClientResult, Share};
use crate::load::plan::{merchants_among, JourneyConfig, Outcome};
use crate::load::{self, Finished, LoadSpec, Mix, Observer};
use anyhow::{ensure, Context, Result};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// The admin token reaches a client in this variable, not on its command line (which `ps` shows).
pub const ADMIN_TOKEN_ENV: &str = "SHOPBENCH_ADMIN_TOKEN";

/// How late a client may start and still be in step with the others.
const LATE_LIMIT_SECS: f64 = 1.0;

/// How long after its window a client may still run (Goose ends a second after it; the rest is
/// for slow exits on a busy machine). The runner waits as long, then gives up on the client.
pub const EXIT_GRACE: Duration = Duration::from_secs(60);

/// A load client: its share of a run's users, for the run's window, the result as JSON.
#[derive(clap::Args, Clone, Debug, PartialEq)]
pub struct ClientArgs {
    /// Base URLs of the nginx instances, comma-separated (users round-robin by run-wide index).
    #[arg(long, value_delimiter = ',', required = true)]
    pub hosts: Vec<String>,
    /// Users of the whole run, all clients together.
    #[arg(long)]
    pub users: usize,
    /// This client's position, 0-based.
    #[arg(long)]
    pub client: usize,
    /// How many clients share the run.
    #[arg(long)]
    pub clients: usize,
    /// When every client starts its users, unix seconds (a client more than 1 s late refuses).
    #[arg(long)]
    pub start_at: f64,
    #[arg(long, default_value_t = 10)]
    pub warmup_secs: u64,
    /// The measured window.
    #[arg(long)]
    pub secs: u64,
    /// Shopper think time, min,max milliseconds.
    #[arg(long, value_delimiter = ',', default_values_t = [20, 80])]
    pub think_ms: Vec<u64>,
    #[arg(long, value_delimiter = ',', default_values_t = [50, 200])]
    pub merchant_think_ms: Vec<u64>,
    #[arg(long, default_value_t = 15)]
    pub shopper_weight: usize,
    #[arg(long, default_value_t = 1)]
    pub merchant_weight: usize,
    /// The catalogue's category names, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub categories: Vec<String>,
    #[arg(long, default_value_t = 20)]
    pub page_limit: u32,
    #[arg(long, value_delimiter = ',', default_values_t = [1, 3])]
    pub list_pages: Vec<u32>,
    #[arg(long, value_delimiter = ',', default_values_t = [1, 3])]
    pub views_per_page: Vec<u32>,
    #[arg(long, value_delimiter = ',', default_values_t = [4, 10])]
    pub cart_changes: Vec<u32>,
    #[arg(long, default_value_t = 50)]
    pub pay_percent: u32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value_t = 10)]
    pub request_timeout_secs: u64,
    /// A JSON list of product ids: read this client's slice of them without think time (the
    /// product-read mix) instead of the shop mix.
    #[arg(long)]
    pub products: Option<PathBuf>,
    /// Where the result JSON goes ("-": stdout).
    #[arg(long, default_value = "-")]
    pub out: PathBuf,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn pair<T: Copy>(v: &[T]) -> Result<(T, T)> {
    match v {
        [a, b] => Ok((*a, *b)),
        _ => anyhow::bail!("expected two values, min and max"),
    }
}

impl ClientArgs {
    /// Client `k` of `clients` running `spec` (think times to the millisecond). The product-read
    /// mix needs its products in `products`, a file the client can read.
    pub fn from_spec(spec: &LoadSpec, k: usize, clients: usize, start_at: f64, products: Option<PathBuf>) -> Self {
        let j = &spec.journey;
        let (shopper_weight, merchant_weight) = match spec.mix {
            Mix::Shop { shopper_weight, merchant_weight } => (shopper_weight, merchant_weight),
            Mix::ProductReads { .. } => (1, 0),
        };
        ClientArgs {
            hosts: spec.hosts.clone(),
            users: spec.users,
            client: k,
            clients,
            start_at,
            warmup_secs: spec.warmup.as_secs(),
            secs: spec.secs.as_secs(),
            think_ms: vec![ms(spec.think.0), ms(spec.think.1)],
            merchant_think_ms: vec![ms(spec.merchant_think.0), ms(spec.merchant_think.1)],
            shopper_weight,
            merchant_weight,
            categories: j.categories.clone(),
            page_limit: j.page_limit,
            list_pages: vec![j.list_pages.0, j.list_pages.1],
            views_per_page: vec![j.views_per_page.0, j.views_per_page.1],
            cart_changes: vec![j.cart_changes.0, j.cart_changes.1],
            pay_percent: j.pay_percent,
            seed: spec.seed,
            request_timeout_secs: spec.request_timeout_secs,
            products,
            out: PathBuf::from("-"),
        }
    }

    /// The command line after `load-client` that parses back into these arguments.
    pub fn to_args(&self) -> Vec<String> {
        let join = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        let join32 = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        let mut a: Vec<(&str, String)> = vec![
            ("--hosts", self.hosts.join(",")),
            ("--users", self.users.to_string()),
            ("--client", self.client.to_string()),
            ("--clients", self.clients.to_string()),
            ("--start-at", format!("{:.3}", self.start_at)),
            ("--warmup-secs", self.warmup_secs.to_string()),
            ("--secs", self.secs.to_string()),
            ("--think-ms", join(&self.think_ms)),
            ("--merchant-think-ms", join(&self.merchant_think_ms)),
            ("--shopper-weight", self.shopper_weight.to_string()),
            ("--merchant-weight", self.merchant_weight.to_string()),
            ("--categories", self.categories.join(",")),
            ("--page-limit", self.page_limit.to_string()),
            ("--list-pages", join32(&self.list_pages)),
            ("--views-per-page", join32(&self.views_per_page)),
            ("--cart-changes", join32(&self.cart_changes)),
            ("--pay-percent", self.pay_percent.to_string()),
            ("--seed", self.seed.to_string()),
            ("--request-timeout-secs", self.request_timeout_secs.to_string()),
            ("--out", self.out.to_string_lossy().into_owned()),
        ];
        if let Some(p) = &self.products {
            a.push(("--products", p.to_string_lossy().into_owned()));
        }
        a.into_iter().flat_map(|(k, v)| [k.to_string(), v]).collect()
    }

    /// This client's share and the spec of its users (`users` is the share's count).
    pub fn share_spec(&self, admin_token: String) -> Result<(Share, LoadSpec)> {
        let share = *split(self.users, self.clients)?
            .get(self.client)
            .with_context(|| format!("client {} of {}: positions start at 0", self.client, self.clients))?;
        let mix = match &self.products {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                let all: Vec<Uuid> = serde_json::from_str(&text).context("--products: a JSON list of ids")?;
                Mix::ProductReads { products: Arc::new(super::slice_of(&all, self.client, self.clients)?) }
            }
            None => self.shop_share(share),
        };
        let reads = self.products.is_some();
        let think = |v: &[u64]| -> Result<(Duration, Duration)> {
            let (lo, hi) = pair(v)?;
            Ok(if reads {
                (Duration::ZERO, Duration::ZERO)
            } else {
                (Duration::from_millis(lo), Duration::from_millis(hi))
            })
        };
        let journey = JourneyConfig {
            categories: self.categories.clone(),
            page_limit: self.page_limit,
            list_pages: pair(&self.list_pages)?,
            views_per_page: pair(&self.views_per_page)?,
            cart_changes: pair(&self.cart_changes)?,
            pay_percent: self.pay_percent,
            ..JourneyConfig::default()
        };
        let spec = LoadSpec {
            hosts: self.hosts.clone(),
            users: share.count,
            warmup: Duration::from_secs(self.warmup_secs),
            secs: Duration::from_secs(self.secs),
            think: think(&self.think_ms)?,
            merchant_think: think(&self.merchant_think_ms)?,
            mix,
            journey: Arc::new(journey),
            admin_token,
            goose_report: None,
            seed: self.seed,
            request_timeout_secs: self.request_timeout_secs,
            cpu_groups: vec![("load client".into(), vec![std::process::id()])],
        };
        Ok((share, spec))
    }
}

impl ClientArgs {
    /// The shop mix of this client's share. With the run's weights each Goose process runs a
    /// merchant of its own (seen: 16 users at 15:1 over 2 clients ran 2 merchants, twice the
    /// product writes of one process); instead the run's
    /// merchants (as one process has them) are dealt out over the clients and each client's
    /// weights are its own counts, which Goose then assigns exactly.
    fn shop_share(&self, share: Share) -> Mix {
        let merchants = merchants_among(self.users, self.shopper_weight, self.merchant_weight);
        let (base, extra) = (merchants / self.clients, merchants % self.clients);
        let mine = (base + usize::from(self.client < extra)).min(share.count);
        Mix::Shop { shopper_weight: share.count - mine, merchant_weight: mine }
    }
}

/// Collects the shop users this client's shoppers signed up.
#[derive(Default)]
struct SignUps(Mutex<Vec<Uuid>>);

impl Observer for SignUps {
    fn sent(&self, _user: usize, _action: &crate::load::plan::Action, _at: std::time::Instant) {}

    fn finished(&self, request: &Finished<'_>) {
        if let Ok(Outcome::SignedUp { user, .. }) = request.outcome {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).push(*user);
        }
    }
}

pub fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

/// Runs one client: waits for `--start-at`, loads its share, returns what it measured.
pub async fn run_client(args: &ClientArgs) -> Result<ClientResult> {
    let admin = std::env::var(ADMIN_TOKEN_ENV).unwrap_or_default();
    let (share, spec) = args.share_spec(admin)?;
    let wait = args.start_at - unix_now();
    ensure!(
        wait > -LATE_LIMIT_SECS,
        "client {} started {:.1} s after --start-at: its window would not be the others'",
        args.client,
        -wait
    );
    tokio::time::sleep(Duration::from_secs_f64(wait.max(0.0))).await;
    let signups = Arc::new(SignUps::default());
    let observer: Arc<dyn Observer> = signups.clone();
    let out = load::run_share(&spec, share.first, Some(observer)).await?;
    let signed_up = std::mem::take(&mut *signups.0.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(ClientResult {
        client: args.client,
        clients: args.clients,
        share,
        host: hostname(),
        window_start: out.window.start,
        window_end: out.window.end,
        window_secs: out.window_secs,
        samples: out.samples,
        latency: out.latency,
        goose: out.goose,
        host_moves: out.host_moves,
        cpu_cores: out.cpu.and_then(|c| c.cores.get("load client").copied()),
        signed_up,
    })
}

impl ClientArgs {
    /// When this client stops by itself, finished or not, unix seconds: the common start, Goose's
    /// 1 s user launch, the warm-up, the window and [`EXIT_GRACE`]. A client on a host outlives a
    /// runner that was killed (its ssh session ends, the process gets no hangup); this bounds it.
    pub fn stop_at(&self) -> f64 {
        self.start_at + 1.0 + (self.warmup_secs + self.secs) as f64 + EXIT_GRACE.as_secs_f64()
    }
}

/// `work`, cut off at `stop_at` (unix seconds).
pub async fn until<T>(stop_at: f64, work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let left = Duration::from_secs_f64((stop_at - unix_now()).max(0.0));
    match tokio::time::timeout(left, work).await {
        Ok(r) => r,
        Err(_) => anyhow::bail!("still running at its stop time ({stop_at:.0}, unix seconds): stopped itself"),
    }
}

/// `load-client`: runs and writes the result to `--out` (or stdout).
pub async fn main(args: ClientArgs) -> Result<()> {
    let result = until(args.stop_at(), run_client(&args)).await?;
    let text = serde_json::to_string(&result)?;
    if args.out.as_os_str() == "-" {
        println!("{text}");
        return Ok(());
    }
    // Written whole then renamed: a runner never reads half a result.
    let tmp = args.out.with_extension("partial");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &args.out).with_context(|| format!("writing {}", args.out.display()))
}
