//! Replicated PostgreSQL under faults, end to end (issue #3): 2 PostgreSQL 15 backends in pgpool-II
//! native replication, 2 pgpools, and the app itself (`Application::build`) round-robining over
//! both pgpools, driven over HTTP by concurrent shoppers who sign up, fill carts, check out with
//! idempotency keys and pay. Every acknowledged (2xx) write is recorded and then looked for on
//! every backend, read directly (not through pgpool).
//!
//! * `a_pgpool_loss_is_invisible_to_clients`: (a) steady writes reach every backend and the
//!   consistency check finds them identical; (b) pgpool 0 is SIGKILLed mid-stream and the app
//!   goes on through pgpool 1 without a client seeing an error. A pgpool killed between its
//!   COMMIT on the other nodes and on the main node leaves the backends different in a write it
//!   never acknowledged; then the non-main node is rejoined and must come back identical.
//! * `a_backend_loss_and_its_rejoin_lose_no_acknowledged_write`: (c) backend 1 is SIGKILLed
//!   mid-stream and writes go on on backend 0; (d) it is rejoined by infra's procedure (which
//!   pauses writes itself, by table locks) while the shoppers keep going, and the consistency
//!   check finds both backends identical. `a_main_backend_loss_...` does the same to backend 0,
//!   pgpool's main node.
//!
//! Correctness is asserted: no acknowledged write lost, no order twice, backends identical, no
//! error but 503. Timings are measured, never asserted: each test writes its numbers to
//! run/results/failover-<scenario>.json (git-ignored) and prints them. Each test starts its own
//! topology in a temp run dir on ports 16000-16089 (no web tier: the app runs in the test); the
//! topology's Drop stops every server also when an assertion fails. The tests take turns (a
//! lock) so one's servers do not slow the other's measurements.

use app::{Application, Settings};
use endpoints::HostPort;
use infra::{Kind, Running, Topology, SHOP_DB};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_support::RunDir;

const ADMIN: &str = "failover-admin-token";
const SHOPPERS: usize = 6;
const PRODUCTS: usize = 8;
/// Orders per signed-up user before the shopper signs up a new one.
const ORDERS_PER_USER: usize = 3;

/// One topology at a time (see the module doc).
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn topology(name: &str, base: u16) -> Topology {
    Topology::parse(&format!(
        "name = \"{name}\"\n[postgres]\ncount = 2\nbase_port = {base}\n\
         [pgpool]\ncount = 2\nbase_port = {}\npcp_base_port = {}\n",
        base + 10,
        base + 20
    ))
    .expect("test topology")
}

/// Runs blocking infra work without stalling the shoppers' tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn split(addr: &str) -> (String, u16) {
    let HostPort { host, port } = addr.parse().unwrap();
    (host, port)
}

// ---------------------------------------------------------------------------------------------
// The app and its clients

/// Starts the app on a free port over every pgpool of `running`; returns its base URL.
async fn start_app(running: &Running) -> String {
    let _ = app::telemetry::init(&std::env::var("TEST_LOG").unwrap_or_else(|_| "off".into()));
    let mut settings = Settings::default();
    settings.http.port = 0;
    settings.http.workers = 2;
    settings.admin_token = ADMIN.into();
    let mut pg = adapter_postgres::PgSettings::new(running.pgpool_endpoints());
    pg.dbname = SHOP_DB.into();
    pg.pool_size = running.app_pool_size();
    settings.postgres = Some(pg);
    let application = Application::build(settings).await.expect("the application builds");
    let url = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped());
    url
}

/// One HTTP request as a client saw it (every one is a write); times in ms since the test's
/// clock started.
#[derive(Clone, Debug)]
struct Req {
    shopper: usize,
    op: &'static str,
    start: f64,
    end: f64,
    /// 0: no HTTP answer at all.
    status: u16,
    /// The body of an error answer, or the transport error.
    error: Option<String>,
    /// A refusal that was the right answer (checkout of a cart whose every add had failed).
    benign: bool,
}

impl Req {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// An answer the client must count as an error.
    fn failed(&self) -> bool {
        !self.ok() && !self.benign
    }
}

#[derive(Clone)]
struct Http {
    client: reqwest::Client,
    base: String,
    clock: Instant,
}

impl Http {
    fn new(base: String, clock: Instant) -> Http {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        Http { client, base, clock }
    }

    fn ms(&self) -> f64 {
        self.clock.elapsed().as_secs_f64() * 1e3
    }

    /// Sends one request and records it in `log`; the body of a 2xx answer is returned.
    async fn call(
        &self,
        log: &mut Vec<Req>,
        shopper: usize,
        op: &'static str,
        req: reqwest::RequestBuilder,
    ) -> Option<(u16, Value)> {
        let start = self.ms();
        let (status, text) = match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.text().await.unwrap_or_default())
            }
            Err(e) => (0, format!("{e}")),
        };
        let end = self.ms();
        let ok = (200..300).contains(&status);
        log.push(Req { shopper, op, start, end, status, error: (!ok).then(|| text.clone()), benign: false });
        ok.then(|| (status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }
}

/// What a cart holds for one product as far as its shopper knows: at least `min` (acknowledged
/// adds), at most `max` (plus adds that failed, which may or may not have happened).
type CartModel = BTreeMap<String, (u64, u64)>;

#[derive(Clone, Debug)]
struct AckedOrder {
    user: String,
    key: String,
    id: String,
    expected: CartModel,
}

/// Everything one shopper did and was told.
#[derive(Default)]
struct Ledger {
    requests: Vec<Req>,
    /// id -> email of every acknowledged sign-up.
    users: BTreeMap<String, String>,
    orders: Vec<AckedOrder>,
    paid: BTreeSet<String>,
    /// (user, key) of every checkout tried.
    keys: BTreeSet<(String, String)>,
    /// The last cart of each user, where the shopper still knows it.
    carts: BTreeMap<String, CartModel>,
}

/// A shopper: signs up, then for each of a few orders adds one or two products and checks out
/// (repeating the same idempotency key until acknowledged, as a client must), then pays. Runs
/// until `stop`. Failed requests are recorded and retried or worked around, never fatal.
async fn shopper(n: usize, http: Http, products: Arc<Vec<String>>, stop: Arc<AtomicBool>) -> Ledger {
    let mut log = Ledger::default();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (n as u64 + 1);
    let mut next = move |m: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % m as u64) as usize
    };
    let stopped = || stop.load(Ordering::Relaxed);
    let mut signups = 0;
    'users: while !stopped() {
        signups += 1;
        let body =
            json!({"email": format!("s{n}-{signups}-{}@example.com", uuid::Uuid::new_v4().simple()), "name": "S"});
        let req = http.client.post(format!("{}/users", http.base)).json(&body);
        let Some((_, created)) = http.call(&mut log.requests, n, "sign_up", req).await else { continue };
        let user = created["user"]["id"].as_str().unwrap().to_string();
        let token = created["token"].as_str().unwrap().to_string();
        log.users.insert(user.clone(), body["email"].as_str().unwrap().to_string());
        let user_path = format!("{}/users/{user}", http.base);
        let mut cart = CartModel::new();
        log.carts.insert(user.clone(), cart.clone());
        for round in 0..ORDERS_PER_USER {
            for _ in 0..1 + next(2) {
                if stopped() {
                    break 'users;
                }
                let product = products[next(products.len())].clone();
                let qty = 1 + next(3) as u64;
                let req = http
                    .client
                    .post(format!("{user_path}/cart/items"))
                    .bearer_auth(&token)
                    .json(&json!({"product_id": product, "quantity": qty}));
                let acked = http.call(&mut log.requests, n, "add_to_cart", req).await.is_some();
                let line = cart.entry(product).or_default();
                line.1 += qty;
                if acked {
                    line.0 += qty;
                }
                log.carts.insert(user.clone(), cart.clone());
            }
            let key = format!("order-{round}");
            log.keys.insert((user.clone(), key.clone()));
            let mut placed = None;
            while placed.is_none() && !stopped() {
                let req =
                    http.client.post(format!("{user_path}/orders")).bearer_auth(&token).header("Idempotency-Key", &key);
                placed = http.call(&mut log.requests, n, "checkout", req).await;
                let last = log.requests.last_mut().unwrap();
                if last.status == 409 {
                    // Final: an empty cart is the right answer when every add failed; anything
                    // else is recorded, and this user left (its cart is audited as known).
                    let empty = last.error.as_deref().unwrap_or("").contains("\"cart_empty\"");
                    last.benign = empty && cart.values().all(|(min, _)| *min == 0);
                    if !last.benign {
                        continue 'users;
                    }
                    cart.clear();
                    log.carts.insert(user.clone(), cart.clone());
                    break;
                }
                if placed.is_none() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            if placed.is_none() && !stopped() {
                continue;
            }
            let Some((status, order)) = placed else {
                // Stopped before the checkout was acknowledged: its outcome is unknown.
                log.carts.remove(&user);
                break 'users;
            };
            let id = order["id"].as_str().unwrap().to_string();
            log.orders.push(AckedOrder { user: user.clone(), key, id: id.clone(), expected: cart.clone() });
            cart.clear();
            if status == 200 {
                // A replay: an earlier attempt stored the order but may not have emptied the cart.
                let req = http.client.delete(format!("{user_path}/cart")).bearer_auth(&token);
                if http.call(&mut log.requests, n, "clear_cart", req).await.is_none() {
                    log.carts.remove(&user);
                    continue 'users;
                }
            }
            log.carts.insert(user.clone(), cart.clone());
            loop {
                let req = http
                    .client
                    .patch(format!("{user_path}/orders/{id}"))
                    .bearer_auth(&token)
                    .json(&json!({"status": "paid"}));
                if http.call(&mut log.requests, n, "pay", req).await.is_some() {
                    log.paid.insert(id.clone());
                    break;
                }
                if stopped() {
                    break 'users;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    log
}

/// The shoppers, running until `finish`.
struct Stream {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Ledger>>,
}

impl Stream {
    async fn start(http: &Http) -> Stream {
        let mut products = Vec::new();
        for i in 0..PRODUCTS {
            let body =
                json!({"name": format!("Thing {i}"), "description": "", "category": "things", "price_cents": 100 + i});
            let r = http.client.post(format!("{}/products", http.base)).bearer_auth(ADMIN).json(&body).send().await;
            let r = r.expect("create a product");
            assert_eq!(r.status().as_u16(), 201);
            products.push(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string());
        }
        let products = Arc::new(products);
        let stop = Arc::new(AtomicBool::new(false));
        let tasks =
            (0..SHOPPERS).map(|n| tokio::spawn(shopper(n, http.clone(), products.clone(), stop.clone()))).collect();
        Stream { stop, tasks }
    }

    async fn finish(self) -> Vec<Ledger> {
        self.stop.store(true, Ordering::Relaxed);
        let mut ledgers = Vec::new();
        for t in self.tasks {
            ledgers.push(t.await.expect("a shopper panicked"));
        }
        ledgers
    }
}

// ---------------------------------------------------------------------------------------------
// Checking the backends

/// What one backend holds, read directly.
struct BackendRows {
    users: HashMap<String, String>,
    /// id -> (user, key, status)
    orders: HashMap<String, (String, String, String)>,
    /// order id -> product -> quantity
    lines: HashMap<String, BTreeMap<String, u64>>,
    /// user -> product -> quantity
    carts: HashMap<String, BTreeMap<String, u64>>,
    /// (user, key) pairs with more than one order
    duplicates: Vec<(String, String, i64)>,
}

async fn read_backend(addr: &str) -> BackendRows {
    let (host, port) = split(addr);
    let (c, conn) = tokio_postgres::Config::new()
        .host(&host)
        .port(port)
        .user("postgres")
        .dbname(SHOP_DB)
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to backend {addr}: {}", test_support::pg::describe(&e)));
    tokio::spawn(conn);
    let rows = |sql: &'static str| {
        let c = &c;
        async move {
            c.query(sql, &[]).await.unwrap_or_else(|e| panic!("{sql} on {addr}: {}", test_support::pg::describe(&e)))
        }
    };
    let mut b = BackendRows {
        users: HashMap::new(),
        orders: HashMap::new(),
        lines: HashMap::new(),
        carts: HashMap::new(),
        duplicates: Vec::new(),
    };
    for r in rows("SELECT id::text, email FROM users").await {
        b.users.insert(r.get(0), r.get(1));
    }
    for r in rows("SELECT id::text, user_id::text, idempotency_key, status FROM orders").await {
        b.orders.insert(r.get(0), (r.get(1), r.get(2), r.get(3)));
    }
    for r in rows("SELECT order_id::text, product_id::text, quantity FROM order_lines").await {
        b.lines.entry(r.get(0)).or_default().insert(r.get(1), r.get::<_, i32>(2) as u64);
    }
    for r in rows("SELECT user_id::text, product_id::text, quantity FROM cart_items").await {
        b.carts.entry(r.get(0)).or_default().insert(r.get(1), r.get::<_, i32>(2) as u64);
    }
    let dups = "SELECT user_id::text, idempotency_key, count(*) FROM orders GROUP BY 1, 2 HAVING count(*) > 1";
    for r in rows(dups).await {
        b.duplicates.push((r.get(0), r.get(1), r.get(2)));
    }
    b
}

/// Whether `found` fits what the shopper knows (`min` ..= `max` of every product, nothing else).
fn fits(expected: &CartModel, found: &BTreeMap<String, u64>) -> bool {
    let inside = expected.iter().all(|(p, (min, max))| (*min..=*max).contains(found.get(p).unwrap_or(&0)));
    inside && found.keys().all(|p| expected.contains_key(p))
}

/// What the backends hold that the shoppers' ledgers contradict.
#[derive(Default)]
struct Audit {
    /// Acknowledged writes missing or different (users, orders and their lines, payments, carts).
    lost: Vec<String>,
    /// Orders stored more than once for one user and idempotency key.
    duplicates: Vec<String>,
    /// Orders with a key the shopper never sent.
    unasked: Vec<String>,
}

impl Audit {
    fn json(&self) -> Value {
        let first: Vec<&String> = self.lost.iter().chain(&self.duplicates).chain(&self.unasked).take(10).collect();
        json!({
            "acknowledged_writes_lost": self.lost.len(),
            "duplicate_orders": self.duplicates.len(),
            "orders_never_asked_for": self.unasked.len(),
            "first_problems": first,
        })
    }

    #[track_caller]
    fn assert_clean(&self) {
        assert!(self.lost.is_empty() && self.duplicates.is_empty() && self.unasked.is_empty(), "{}", self.json());
    }
}

/// Looks for every acknowledged write on each backend in `backends`, read directly.
async fn audit(backends: &[String], ledgers: &[Ledger]) -> Audit {
    let mut a = Audit::default();
    for b in backends {
        audit_backend(&mut a, b, &read_backend(b).await, ledgers);
    }
    a
}

fn audit_backend(a: &mut Audit, backend: &str, rows: &BackendRows, ledgers: &[Ledger]) {
    let mut ours = BTreeSet::new();
    for l in ledgers {
        for (id, email) in &l.users {
            ours.insert(id.clone());
            if rows.users.get(id) != Some(email) {
                a.lost.push(format!("{backend}: acknowledged user {id} <{email}> is {:?}", rows.users.get(id)));
            }
        }
        for o in &l.orders {
            match rows.orders.get(&o.id) {
                Some((user, key, status)) if *user == o.user && *key == o.key => {
                    let lines = rows.lines.get(&o.id).cloned().unwrap_or_default();
                    if !fits(&o.expected, &lines) {
                        a.lost
                            .push(format!("{backend}: order {} has lines {lines:?}, cart was {:?}", o.id, o.expected));
                    }
                    if l.paid.contains(&o.id) && status != "paid" {
                        a.lost.push(format!("{backend}: order {} was paid, is {status}", o.id));
                    }
                }
                other => a.lost.push(format!("{backend}: acknowledged order {} ({}) is {other:?}", o.id, o.key)),
            }
        }
        for (user, expected) in &l.carts {
            let found = rows.carts.get(user).cloned().unwrap_or_default();
            if !fits(expected, &found) {
                a.lost.push(format!("{backend}: cart of {user} is {found:?}, shopper knows {expected:?}"));
            }
        }
    }
    let keys: BTreeSet<&(String, String)> = ledgers.iter().flat_map(|l| &l.keys).collect();
    for (id, (user, key, _)) in &rows.orders {
        if ours.contains(user) && !keys.contains(&(user.clone(), key.clone())) {
            a.unasked.push(format!("{backend}: order {id} with key {key} was never asked for"));
        }
    }
    for d in &rows.duplicates {
        a.duplicates.push(format!("{backend}: orders stored twice: {d:?}"));
    }
}

/// Counts of acknowledged writes, for the report.
fn acknowledged(ledgers: &[Ledger]) -> Value {
    let users: usize = ledgers.iter().map(|l| l.users.len()).sum();
    let orders: usize = ledgers.iter().map(|l| l.orders.len()).sum();
    let paid: usize = ledgers.iter().map(|l| l.paid.len()).sum();
    let writes = ledgers.iter().flat_map(|l| &l.requests).filter(|r| r.ok()).count();
    json!({"writes": writes, "users": users, "orders": orders, "payments": paid})
}

// ---------------------------------------------------------------------------------------------
// Measuring

/// What the clients saw around a fault at `fault` (ms on the test clock), until `until`.
fn measure(ledgers: &[Ledger], fault: f64, until: f64, steady_from: f64) -> Value {
    let all: Vec<&Req> = ledgers.iter().flat_map(|l| &l.requests).collect();
    let mut acks: Vec<f64> = all.iter().filter(|r| r.ok()).map(|r| r.end).collect();
    acks.sort_by(f64::total_cmp);
    let longest_gap = |from: f64, to: f64| {
        let inside: Vec<f64> = acks.iter().copied().filter(|t| (from..=to).contains(t)).collect();
        let mut best = (0.0, from, from);
        let mut prev = from;
        for t in inside.iter().copied().chain([to]) {
            if t - prev > best.0 {
                best = (t - prev, prev, t);
            }
            prev = t;
        }
        best
    };
    let rate = |from: f64, to: f64| {
        let n = acks.iter().filter(|t| (from..to).contains(*t)).count();
        if to > from {
            n as f64 / ((to - from) / 1e3)
        } else {
            0.0
        }
    };
    // Per shopper: the first acknowledged write among those sent after the fault.
    let mut flow: Vec<f64> = (0..SHOPPERS)
        .filter_map(|s| {
            all.iter().filter(|r| r.shopper == s && r.ok() && r.start >= fault).map(|r| r.end - fault).reduce(f64::min)
        })
        .collect();
    flow.sort_by(f64::total_cmp);
    let errors: Vec<&Req> = all.iter().copied().filter(|r| r.failed() && r.end >= fault && r.start <= until).collect();
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for e in &errors {
        *by_status.entry(e.status.to_string()).or_default() += 1;
    }
    let latency = |from: f64, to: f64| {
        all.iter().filter(|r| r.end >= from && r.start <= to).map(|r| r.end - r.start).fold(0.0, f64::max)
    };
    let (gap, gap_from, gap_to) = longest_gap(fault - 1000.0, until);
    let round = |x: f64| (x * 10.0).round() / 10.0;
    json!({
        "client_visible_errors": errors.len(),
        "errors_by_status": by_status,
        "errors": errors.iter().take(20).map(|e| json!({
            "t_ms": round(e.end - fault), "op": e.op, "status": e.status,
            "answer": e.error.as_deref().unwrap_or("").chars().take(200).collect::<String>(),
        })).collect::<Vec<_>>(),
        "writes_flow_again_ms": flow.last().map(|x| round(*x)),
        "writes_flow_again_median_ms": flow.get(flow.len() / 2).map(|x| round(*x)),
        "longest_ack_gap_ms": {
            "around_fault": round(gap),
            "from_ms": round(gap_from - fault),
            "to_ms": round(gap_to - fault),
            "steady": round(longest_gap(steady_from, fault - 100.0).0),
        },
        "max_write_latency_ms": {"around_fault": round(latency(fault, until)), "steady": round(latency(steady_from, fault))},
        "acknowledged_writes_per_s": {
            "before": round(rate((fault - 3000.0).max(steady_from), fault)),
            "after": round(rate(fault + 1000.0, until)),
        },
    })
}

/// Acknowledged writes per second between `from` and `to`.
fn ack_rate(ledgers: &[Ledger], from: f64, to: f64) -> f64 {
    let n = ledgers.iter().flat_map(|l| &l.requests).filter(|r| r.ok() && (from..to).contains(&r.end)).count();
    (n as f64 / ((to - from) / 1e3) * 10.0).round() / 10.0
}

/// What the clients saw without a fault, from `from` to `to`.
fn measure_steady(ledgers: &[Ledger], from: f64, to: f64) -> Value {
    let writes: Vec<&Req> = ledgers.iter().flat_map(|l| &l.requests).collect();
    let mut acks: Vec<f64> = writes.iter().filter(|r| r.ok()).map(|r| r.end).collect();
    acks.sort_by(f64::total_cmp);
    let gap = acks.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    let mut latency: Vec<f64> = writes.iter().map(|r| r.end - r.start).collect();
    latency.sort_by(f64::total_cmp);
    let round = |x: f64| (x * 10.0).round() / 10.0;
    json!({
        "client_visible_errors": ledgers.iter().flat_map(|l| &l.requests).filter(|r| r.failed()).count(),
        "acknowledged_writes_per_s": round(acks.len() as f64 / ((to - from) / 1e3)),
        "longest_ack_gap_ms": round(gap),
        "write_latency_ms": {
            "median": latency.get(latency.len() / 2).map(|x| round(*x)),
            "max": latency.last().map(|x| round(*x)),
        },
    })
}

/// The app's per-endpoint counters from its /metrics.
async fn endpoint_metrics(http: &Http, endpoints: &[String]) -> Value {
    let text = http.client.get(format!("{}/metrics", http.base)).send().await.unwrap().text().await.unwrap();
    // `name{labels...} value`, summed over the series whose labels start with `labels`.
    let value = |name: &str, labels: &str| -> f64 {
        let prefix = format!("{name}{{{labels}");
        text.lines()
            .filter(|l| l.starts_with(&prefix))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .fold(0.0, |a, b| a + b)
    };
    let per: BTreeMap<&String, Value> = endpoints
        .iter()
        .map(|ep| {
            let e = format!("endpoint=\"{ep}\"");
            let v = json!({
                "requests": value("shop_pg_endpoint_requests_total", &e),
                "failures": value("shop_pg_endpoint_failures_total", &e),
                "failovers": value("shop_pg_failovers_total", &e),
                "pool_idle": value("shop_pg_pool_connections", &format!("{e},state=\"idle\"")),
                "pool_in_use": value("shop_pg_pool_connections", &format!("{e},state=\"in_use\"")),
            });
            (ep, v)
        })
        .collect();
    json!(per)
}

fn pool_nodes(running: &Running) -> Value {
    blocking(|| pool_nodes_now(running))
}

fn pool_nodes_now(running: &Running) -> Value {
    let views: Vec<Value> = running
        .pgpool_endpoints()
        .iter()
        .map(|ep| {
            let (h, p) = split(ep);
            match infra::pool_nodes(&h, p) {
                Ok(nodes) => json!({"pgpool": ep, "nodes": nodes.iter().map(|n| json!({
                    "node_id": n.node_id, "port": n.port, "status": n.status, "role": n.role,
                })).collect::<Vec<_>>()}),
                Err(e) => json!({"pgpool": ep, "error": format!("{e:#}")}),
            }
        })
        .collect();
    json!(views)
}

fn save(scenario: &str, report: &Value) {
    let dir = infra::repo_root().join("run").join("results");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("failover-{scenario}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(report).unwrap()).unwrap();
    eprintln!("{scenario}: {}\n-> {}", serde_json::to_string_pretty(report).unwrap(), path.display());
}

/// Errors a client may see during a fault: 503 "unavailable", nothing else (no 500, no 4xx).
fn assert_only_unavailable(ledgers: &[Ledger]) {
    let odd: Vec<&Req> = ledgers
        .iter()
        .flat_map(|l| &l.requests)
        .filter(|r| {
            let unavailable = r.status == 503 && r.error.as_deref().unwrap_or("").contains("\"unavailable\"");
            r.failed() && !unavailable
        })
        .collect();
    assert!(odd.is_empty(), "answers other than 2xx and 503 unavailable: {odd:#?}");
}

// ---------------------------------------------------------------------------------------------
// The scenarios

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pgpool_loss_is_invisible_to_clients() {
    let _turn = TURN.lock().await;
    // Removed after the topology in it has stopped; kept with the servers' logs if the test fails.
    let dir = RunDir::kept_on_failure("app-pgpool-loss");
    let mut running = blocking(|| topology("app-pgpool-loss", 16000).up(&dir)).expect("up");
    let pgpools = running.pgpool_endpoints();
    let backends = running.backend_endpoints();
    let clock = Instant::now();
    let http = Http::new(start_app(&running).await, clock);

    // (a) Steady writes through both pgpools reach every backend.
    let stream = Stream::start(&http).await;
    let steady_from = http.ms();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let steady = stream.finish().await;
    let steady_until = http.ms();
    let consistency = blocking(|| running.check_consistency()).expect("check");
    let mut report = measure_steady(&steady, steady_from, steady_until);
    report["scenario"] = json!("steady");
    report["shoppers"] = json!(SHOPPERS);
    report["acknowledged"] = acknowledged(&steady);
    report["consistency"] = json!(consistency.to_string());
    report["endpoint_metrics"] = endpoint_metrics(&http, &pgpools).await;
    let found = audit(&backends, &steady).await;
    report["audit"] = found.json();
    save("steady", &report);
    found.assert_clean();
    assert!(consistency.is_identical(), "{consistency}");
    assert!(steady.iter().all(|l| l.requests.iter().all(|r| r.ok())), "no error without a fault");

    // (b) pgpool 0 dies mid-stream: the app goes on through pgpool 1.
    let stream = Stream::start(&http).await;
    let steady_from = http.ms();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = endpoint_metrics(&http, &pgpools).await;
    let fault = http.ms();
    blocking(|| running.kill(Kind::Pgpool, 0, infra::signal::SIGKILL)).expect("kill pgpool 0");
    let killed = http.ms();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let until = http.ms();
    let ledgers = stream.finish().await;
    let after = endpoint_metrics(&http, &pgpools).await;
    let served_after = ledgers.iter().flat_map(|l| &l.requests).filter(|r| r.ok() && r.start > fault).count();
    // pgpool commits on the other nodes before the main node, and a SIGKILL can fall in between:
    // a write it never acknowledged may then be on backend 1 only (the app's retry of it went to
    // the main node; a node whose answers differ is detached). So the backends may differ; every
    // acknowledged write must still be on each node pgpool 1 keeps in service, and the rejoin
    // procedure must make them identical again.
    let nodes = pool_nodes(&running);
    let in_service: Vec<String> = backends
        .iter()
        .enumerate()
        .filter(|(i, _)| nodes[1]["nodes"][i]["status"] == "up")
        .map(|(_, b)| b.clone())
        .collect();
    let consistency = blocking(|| running.check_consistency()).expect("check");
    let mut report = measure(&ledgers, fault, until, steady_from);
    report["scenario"] = json!("pgpool-loss");
    report["fault"] = json!(format!("SIGKILL pgpool 0 ({}) and all its children", pgpools[0]));
    report["fault_injected_in_ms"] = json!((killed - fault).round());
    report["phase_after_fault_ms"] = json!((until - fault).round());
    report["shoppers"] = json!(SHOPPERS);
    report["acknowledged"] = acknowledged(&ledgers);
    report["answered_after_fault"] = json!(served_after);
    report["endpoint_metrics"] = json!({"before_fault": before, "after": after});
    report["pool_nodes_after"] = nodes;
    report["consistency_after_fault"] = json!(consistency.to_string());
    report["backends_diverged"] = json!(!consistency.is_identical());
    let in_service_audit = audit(&in_service, &ledgers).await;
    report["audit"] = in_service_audit.json();
    report["audited_backends"] = json!(in_service);
    let repair = if consistency.is_identical() && in_service.len() == backends.len() {
        None
    } else {
        let rejoin = blocking(|| running.rejoin_backend(1)).expect("rejoin backend 1");
        let again = blocking(|| running.check_consistency()).expect("check");
        let after_repair = audit(&backends, &ledgers).await;
        report["repair"] = json!({
            "procedure": "Running::rejoin_backend(1), infra/README.md",
            "rejoin_total_ms": rejoin.total.as_millis() as u64,
            "consistency_after": again.to_string(),
            "audit_after": after_repair.json(),
        });
        Some((again, after_repair))
    };
    save("pgpool-loss", &report);

    assert!(in_service.contains(&backends[0]), "the main node stays in service: {}", report["pool_nodes_after"]);
    in_service_audit.assert_clean();
    if let Some((again, after_repair)) = repair {
        assert!(again.is_identical(), "{again}");
        after_repair.assert_clean();
    }
    assert_only_unavailable(&ledgers);
    assert!(served_after > 50, "the app kept serving: {served_after} answers after the kill");
    let failovers = |m: &Value, ep: &String| m[ep]["failovers"].as_f64().unwrap();
    assert!(failovers(&after, &pgpools[0]) >= 1.0, "pgpool 0 taken out: {after}");
    let requests = |m: &Value, ep: &String| m[ep]["requests"].as_f64().unwrap();
    assert!(requests(&after, &pgpools[1]) > requests(&before, &pgpools[1]) + 50.0, "served by pgpool 1: {after}");
    blocking(|| running.down()).expect("down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_loss_and_its_rejoin_lose_no_acknowledged_write() {
    backend_loss_and_rejoin(1, 16030, "").await;
}

/// The same with the main node (node 0: pgpool runs every write there first and commits there
/// last), to see how both pgpools pick the new main node and take the old one back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_main_backend_loss_and_its_rejoin_lose_no_acknowledged_write() {
    backend_loss_and_rejoin(0, 16060, "main-").await;
}

/// (c) backend `victim` dies mid-stream and writes go on on the other; (d) it is rejoined by
/// infra's procedure while shoppers keep going, and writes go on on both.
async fn backend_loss_and_rejoin(victim: usize, base_port: u16, prefix: &str) {
    let _turn = TURN.lock().await;
    let dir = RunDir::kept_on_failure(&format!("app-{prefix}backend-loss"));
    let mut running = blocking(|| topology(&format!("app-{prefix}backend-loss"), base_port).up(&dir)).expect("up");
    let pgpools = running.pgpool_endpoints();
    let backends = running.backend_endpoints();
    let survivor = 1 - victim;
    let clock = Instant::now();
    let http = Http::new(start_app(&running).await, clock);

    let stream = Stream::start(&http).await;
    let steady_from = http.ms();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let fault = http.ms();
    blocking(|| running.kill(Kind::Postgres, victim, infra::signal::SIGKILL)).expect("kill the backend");
    let killed = http.ms();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let until = http.ms();
    let during_loss = stream.finish().await;
    let mut loss = measure(&during_loss, fault, until, steady_from);
    loss["scenario"] = json!(format!("{prefix}backend-loss"));
    loss["fault"] = json!(format!("SIGKILL backend {victim} ({}) and all its processes", backends[victim]));
    loss["fault_injected_in_ms"] = json!((killed - fault).round());
    loss["phase_after_fault_ms"] = json!((until - fault).round());
    loss["shoppers"] = json!(SHOPPERS);
    loss["acknowledged"] = acknowledged(&during_loss);
    loss["pool_nodes_after_loss"] = pool_nodes(&running);
    loss["endpoint_metrics_after_loss"] = endpoint_metrics(&http, &pgpools).await;
    // With two backends the survivors are one node: the check reads it; every acknowledged write
    // must be there.
    let survivors = infra::check::check(&[backends[survivor].parse().unwrap()]);
    loss["consistency_of_survivors"] = json!(survivors.to_string());
    let on_survivor = audit(&backends[survivor..=survivor], &during_loss).await;
    loss["audit"] = on_survivor.json();
    save(&format!("{prefix}backend-loss"), &loss);
    on_survivor.assert_clean();
    assert!(survivors.is_identical(), "{survivors}");
    assert_only_unavailable(&during_loss);

    // The procedure holds the shoppers' writes itself (table locks) while it copies the survivor.
    let stream = Stream::start(&http).await;
    let steady_from = http.ms();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rejoin_at = http.ms();
    let rejoin = blocking(|| running.rejoin_backend(victim)).expect("rejoin");
    let rejoined = http.ms();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let until = http.ms();
    let during_rejoin = stream.finish().await;
    let written_after = during_rejoin.iter().flat_map(|l| &l.requests).filter(|r| r.ok() && r.start > rejoined).count();
    let consistency = blocking(|| running.check_consistency()).expect("check");
    let mut back = measure(&during_rejoin, rejoin_at, until, steady_from);
    back["scenario"] = json!(format!("{prefix}rejoin"));
    back["procedure"] = json!(format!("Running::rejoin_backend({victim}), infra/README.md"));
    back["shoppers"] = json!(SHOPPERS);
    back["rejoin_total_ms"] = json!(rejoin.total.as_millis() as u64);
    back["writes_paused_ms"] = json!(rejoin.writes_paused.as_millis() as u64);
    back["acknowledged"] = acknowledged(&during_rejoin);
    back["written_after_rejoin"] = json!(written_after);
    back["acknowledged_writes_per_s"]["after_rejoin"] = json!(ack_rate(&during_rejoin, rejoined, until));
    back["consistency"] = json!(consistency.to_string());
    back["pool_nodes_after"] = pool_nodes(&running);
    back["endpoint_metrics"] = endpoint_metrics(&http, &pgpools).await;
    let everything: Vec<Ledger> = during_loss.into_iter().chain(during_rejoin).collect();
    let on_both = audit(&backends, &everything).await;
    back["audit"] = on_both.json();
    save(&format!("{prefix}rejoin"), &back);

    on_both.assert_clean();
    assert!(consistency.is_identical(), "{consistency}");
    assert_only_unavailable(&everything);
    assert!(written_after > 20, "writes go on after the rejoin: {written_after}");
    blocking(|| running.down()).expect("down");
}
