//! The race workload (issue 11): a client unlike the shopaholic load. Each worker is one user
//! that, round after round, fires two requests of its own at the same moment:
//!
//! * add-to-cart vs checkout (`add`),
//! * set-quantity (1 -> 5) vs checkout (`set`),
//! * a checkout replay (the key of an order just placed) vs add-to-cart (`replay`),
//! * checkout vs checkout with another key (`checkouts`),
//!
//! each round after an acknowledged add of the line the checkout is to order. It retries a failed
//! checkout with the same Idempotency-Key (no answer, a 5xx, or 409 checkout_in_progress; a few
//! times, bounded), reads the cart back after a failed change, and sends every request to the
//! next base URL in turn (round-robin over both nginx) WITHOUT moving off a dead one, as a client
//! with a fixed list of addresses would. Every request and answer goes into the user's history;
//! at the end a key whose outcome is still unknown is sent once more, the cart and every order of
//! the user are read, and [`check::check`] says whether an acknowledged change was lost or a line
//! ordered twice.
//!
//! `shopbench-bench races --url URL --rounds N` runs it alone against any service (the in-memory
//! `cargo run -p app` included); the faults command runs it beside the shopaholic load.

pub mod check;

use anyhow::{bail, Context, Result};
use check::{Change, ChangeOutcome, CheckoutOutcome, Event, Lines, Request, UserHistory};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Deserialize;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The kinds of round, in the order the workers take them.
pub const KINDS: [&str; 4] = ["add", "set", "replay", "checkouts"];

/// Attempts of one checkout key inside its round.
const CHECKOUT_ATTEMPTS: u32 = 5;

#[derive(Clone, Debug)]
pub struct RaceSpec {
    /// Base URLs, used in turn.
    pub urls: Vec<String>,
    /// Concurrent users (one worker each).
    pub users: usize,
    /// Rounds over all users; `None`: until `until`.
    pub rounds: Option<usize>,
    /// No round starts after this.
    pub until: Option<Instant>,
    /// Products the rounds put in carts.
    pub products: Vec<Uuid>,
    pub seed: u64,
    pub request_timeout: Duration,
}

/// What the race workload saw and what the check found.
#[derive(Clone, Debug, Default)]
pub struct RaceOutcome {
    pub rounds: usize,
    /// Rounds per kind (as [`KINDS`]).
    pub by_kind: [usize; 4],
    pub requests: usize,
    /// Requests answered with a 5xx or not at all, with when (seconds since `t0`) they ended.
    pub failures: Vec<f64>,
    /// (reason, count), most frequent first.
    pub failure_reasons: Vec<(String, usize)>,
    pub histories: Vec<UserHistory>,
    pub verdict: check::Verdict,
    /// Orders read at the end.
    pub orders: usize,
}

impl RaceOutcome {
    pub fn one_line(&self) -> String {
        format!(
            "{} rounds (add {}, set {}, replay {}, checkouts {}), {} requests ({} failed), {} orders; \
             {} product histories: {} lost cart changes, {} doubled order lines, {} keys with two orders",
            self.rounds,
            self.by_kind[0],
            self.by_kind[1],
            self.by_kind[2],
            self.by_kind[3],
            self.requests,
            self.failures.len(),
            self.orders,
            self.verdict.histories,
            self.verdict.lost.len(),
            self.verdict.doubled.len(),
            self.verdict.duplicated_keys.len()
        )
    }
}

/// One answer: status and body, or the transport error.
struct Answer {
    status: Option<u16>,
    body: Vec<u8>,
    error: Option<String>,
}

impl Answer {
    /// The reason a failed request is counted under, as the shopaholic load's timeline words it
    /// ("503 unavailable", "502 Bad Gateway", "connect: Connection refused (os error 111)").
    fn reason(&self) -> String {
        let outcome = self.error.clone().unwrap_or_else(|| format!("status {}", self.status.unwrap_or(0)));
        crate::faults::timeline::reason(self.status, &self.body, self.error.as_deref(), &outcome)
    }
    /// No answer, or a 5xx: the request may or may not have been applied.
    fn unknown(&self) -> bool {
        self.status.is_none_or(|s| s >= 500)
    }
    fn code(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        v.get("code").and_then(|c| c.as_str()).map(str::to_string)
    }
}

#[derive(Deserialize)]
struct CartBody {
    items: Vec<LineBody>,
}
#[derive(Deserialize)]
struct LineBody {
    product_id: Uuid,
    quantity: u32,
}
#[derive(Deserialize)]
struct WithId {
    id: Uuid,
}
#[derive(Deserialize)]
struct OrderBody {
    id: Uuid,
    lines: Vec<LineBody>,
}
#[derive(Deserialize)]
struct OrderPage {
    items: Vec<OrderBody>,
    next: Option<Uuid>,
}
#[derive(Deserialize)]
struct SignedUp {
    user: WithId,
    token: String,
}

fn cart_of(body: &[u8]) -> Option<Lines> {
    let c: CartBody = serde_json::from_slice(body).ok()?;
    Some(c.items.into_iter().map(|l| (l.product_id, l.quantity)).collect())
}

/// The user's side: its client, its token, the URL counter and its history.
struct Worker {
    client: reqwest::Client,
    urls: Arc<Vec<String>>,
    next: AtomicUsize,
    t0: Instant,
    user: Uuid,
    token: String,
    events: Vec<Event>,
    group: u32,
    failures: Vec<(f64, String)>,
    requests: usize,
}

impl Worker {
    fn url(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.urls[n % self.urls.len()].trim_end_matches('/').to_string()
    }

    async fn call(
        &self,
        url: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        key: Option<&str>,
    ) -> Answer {
        let mut req = self.client.request(method, format!("{url}{path}")).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.bytes().await {
                    Ok(b) => Answer { status: Some(status), body: b.to_vec(), error: None },
                    Err(e) => Answer { status: None, body: vec![], error: Some(format!("body: {}", short(&e))) },
                }
            }
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect"
                } else {
                    "request"
                };
                Answer { status: None, body: vec![], error: Some(format!("{kind}: {}", short(&e))) }
            }
        }
    }

    fn at(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    /// A cart change; its event (not yet in a group).
    async fn change(&self, product: Uuid, change: Change) -> (f64, String, Request, Option<String>) {
        let url = self.url();
        let user = self.user;
        let answer = match &change {
            Change::Add(q) => {
                let body = json!({ "product_id": product, "quantity": q });
                self.call(&url, reqwest::Method::POST, &format!("/users/{user}/cart/items"), Some(body), None).await
            }
            Change::Set(q) => {
                let body = json!({ "quantity": q });
                let path = format!("/users/{user}/cart/items/{product}");
                self.call(&url, reqwest::Method::PUT, &path, Some(body), None).await
            }
            Change::Remove => {
                let path = format!("/users/{user}/cart/items/{product}");
                self.call(&url, reqwest::Method::DELETE, &path, None, None).await
            }
        };
        let outcome = match (answer.status, cart_of(&answer.body)) {
            (Some(200), Some(cart)) => ChangeOutcome::Acked(cart),
            (Some(s), _) if (400..500).contains(&s) => ChangeOutcome::Refused(s),
            _ => ChangeOutcome::Unknown(answer.reason()),
        };
        let failed = matches!(outcome, ChangeOutcome::Unknown(_)).then(|| answer.reason());
        (self.at(), url, Request::Change { product, change, outcome }, failed)
    }

    /// A checkout with `key`, retried with the same key while its outcome is unknown or another
    /// key holds the cart; every attempt is an event.
    async fn checkout(&self, key: &str) -> Vec<(f64, String, Request, Option<String>)> {
        let mut out = Vec::new();
        for attempt in 0..CHECKOUT_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
            let url = self.url();
            let path = format!("/users/{}/orders", self.user);
            let answer = self.call(&url, reqwest::Method::POST, &path, Some(json!({})), Some(key)).await;
            let outcome = match answer.status {
                Some(s @ (200 | 201)) => match serde_json::from_slice::<WithId>(&answer.body) {
                    Ok(o) => CheckoutOutcome::Ordered { order: o.id, status: s },
                    Err(_) => CheckoutOutcome::Unknown(format!("{s} with an unreadable body")),
                },
                Some(409) if answer.code().as_deref() == Some("cart_empty") => CheckoutOutcome::Empty,
                Some(409) if answer.code().as_deref() == Some("checkout_in_progress") => CheckoutOutcome::Busy,
                Some(s) if (400..500).contains(&s) => CheckoutOutcome::Refused(s),
                _ => CheckoutOutcome::Unknown(answer.reason()),
            };
            let again = matches!(outcome, CheckoutOutcome::Unknown(_) | CheckoutOutcome::Busy);
            let failed = answer.unknown().then(|| answer.reason());
            out.push((self.at(), url, Request::Checkout { key: key.to_string(), outcome }, failed));
            if !again {
                break;
            }
        }
        out
    }

    async fn read_cart(&self) -> (f64, String, Request, Option<String>) {
        let url = self.url();
        let answer = self.call(&url, reqwest::Method::GET, &format!("/users/{}/cart", self.user), None, None).await;
        let cart = if answer.status == Some(200) { cart_of(&answer.body) } else { None };
        let failed = cart.is_none().then(|| answer.reason());
        (self.at(), url, Request::Read { cart }, failed)
    }

    /// Records the events of one group (requests that ran at the same time).
    fn record(&mut self, events: Vec<(f64, String, Request, Option<String>)>) {
        for (at, url, req, failed) in events {
            self.requests += 1;
            if let Some(why) = failed {
                self.failures.push((at, why));
            }
            self.events.push(Event { group: self.group, at, url, req });
        }
        self.group += 1;
    }

    /// Whether the group's cart changes all got a definite answer; if not, the cart is read back.
    async fn read_back_if_needed(&mut self) {
        let from = self.events.iter().rposition(|e| e.group + 1 < self.group).map_or(0, |i| i + 1);
        let failed_change = self.events[from..]
            .iter()
            .any(|e| matches!(&e.req, Request::Change { outcome: ChangeOutcome::Unknown(_), .. }));
        if failed_change {
            let read = self.read_cart().await;
            self.record(vec![read]);
        }
    }

    async fn round(&mut self, kind: usize, a: Uuid, b: Uuid, n: usize) {
        let user = self.user.simple().to_string();
        let key = |s: &str| format!("race-{user}-{n}-{s}");
        let prep = self.change(a, Change::Add(1)).await;
        self.record(vec![prep]);
        self.read_back_if_needed().await;
        let mut group = Vec::new();
        match kind {
            0 => {
                let k = key("a");
                let (add, co) = tokio::join!(self.change(b, Change::Add(1)), self.checkout(&k));
                group.push(add);
                group.extend(co);
            }
            1 => {
                let k = key("s");
                let (set, co) = tokio::join!(self.change(a, Change::Set(5)), self.checkout(&k));
                group.push(set);
                group.extend(co);
            }
            2 => {
                let k = key("r");
                let first = self.checkout(&k).await;
                self.record(first);
                let (co, add) = tokio::join!(self.checkout(&k), self.change(b, Change::Add(1)));
                group.extend(co);
                group.push(add);
            }
            _ => {
                let (k1, k2) = (key("c1"), key("c2"));
                let (c1, c2) = tokio::join!(self.checkout(&k1), self.checkout(&k2));
                group.extend(c1);
                group.extend(c2);
            }
        }
        self.record(group);
        self.read_back_if_needed().await;
    }

    /// After the rounds: keys of unknown outcome sent once more (each its own group), then the
    /// cart and every order read.
    async fn finish(&mut self) -> Result<UserHistory> {
        let mut known = std::collections::BTreeSet::new();
        let mut unknown = Vec::new();
        for e in &self.events {
            if let Request::Checkout { key, outcome } = &e.req {
                match outcome {
                    CheckoutOutcome::Unknown(_) => unknown.push(key.clone()),
                    _ => {
                        known.insert(key.clone());
                    }
                }
            }
        }
        unknown.retain(|k| !known.contains(k));
        unknown.dedup();
        for k in unknown {
            let again = self.checkout(&k).await;
            self.record(again);
        }
        let mut cart = None;
        for attempt in 0..20 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let url = self.url();
            let answer = self.call(&url, reqwest::Method::GET, &format!("/users/{}/cart", self.user), None, None).await;
            if answer.status == Some(200) {
                cart = cart_of(&answer.body);
                if cart.is_some() {
                    break;
                }
            }
        }
        let cart = cart.with_context(|| format!("reading the final cart of {}", self.user))?;
        let orders = self.orders().await?;
        Ok(UserHistory { user: self.user, events: std::mem::take(&mut self.events), orders, cart })
    }

    async fn orders(&self) -> Result<std::collections::BTreeMap<Uuid, Lines>> {
        let mut orders = std::collections::BTreeMap::new();
        let mut after: Option<Uuid> = None;
        let mut tries = 0;
        loop {
            let mut path = format!("/users/{}/orders?limit=100", self.user);
            if let Some(a) = after {
                path.push_str(&format!("&after={a}"));
            }
            let url = self.url();
            let answer = self.call(&url, reqwest::Method::GET, &path, None, None).await;
            let page = match answer.status {
                Some(200) => serde_json::from_slice::<OrderPage>(&answer.body).ok(),
                _ => None,
            };
            let Some(page) = page else {
                tries += 1;
                if tries > 20 {
                    bail!("reading the orders of {}: {}", self.user, answer.reason());
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            };
            let empty = page.items.is_empty();
            for o in page.items {
                orders.insert(o.id, o.lines.into_iter().map(|l| (l.product_id, l.quantity)).collect());
            }
            match page.next {
                Some(n) if !empty => after = Some(n),
                _ => return Ok(orders),
            }
        }
    }
}

fn short(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s = inner.to_string();
        src = inner.source();
    }
    s
}

/// Signs a user up, trying the URLs in turn.
async fn sign_up(client: &reqwest::Client, urls: &[String], label: &str) -> Result<(Uuid, String)> {
    let mut last = String::new();
    for attempt in 0..30 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let url = format!("{}/users", urls[attempt % urls.len()].trim_end_matches('/'));
        let body = json!({ "email": format!("{label}-{}@race.example", Uuid::now_v7().simple()), "name": label });
        match client.post(&url).json(&body).send().await {
            Ok(r) if r.status().as_u16() == 201 => {
                let s: SignedUp = r.json().await.context("the sign-up answer")?;
                return Ok((s.user.id, s.token));
            }
            Ok(r) => last = format!("status {}", r.status()),
            Err(e) => last = short(&e),
        }
    }
    bail!("could not sign a race user up: {last}")
}

/// Runs the workload (see the module doc) and checks the histories.
pub async fn run(spec: &RaceSpec) -> Result<RaceOutcome> {
    run_from(spec, Instant::now()).await
}

/// As [`run`], with times counted from `t0` (a fault's timeline).
pub async fn run_from(spec: &RaceSpec, t0: Instant) -> Result<RaceOutcome> {
    anyhow::ensure!(!spec.urls.is_empty(), "no URL to race against");
    anyhow::ensure!(spec.products.len() >= 2, "the race needs at least 2 products in the catalogue");
    anyhow::ensure!(spec.rounds.is_some() || spec.until.is_some(), "bound the race: rounds or a deadline");
    let client = reqwest::Client::builder().timeout(spec.request_timeout).pool_max_idle_per_host(8).build()?;
    let urls = Arc::new(spec.urls.clone());
    let users = spec.users.max(1);
    let per_user = spec.rounds.map(|r| r.div_ceil(users));
    let mut tasks = Vec::new();
    for w in 0..users {
        let (client, urls, spec) = (client.clone(), urls.clone(), spec.clone());
        tasks.push(tokio::spawn(async move {
            let (user, token) = sign_up(&client, &urls, &format!("race{w}")).await?;
            let mut worker = Worker {
                client,
                urls,
                next: AtomicUsize::new(w),
                t0,
                user,
                token,
                events: vec![],
                group: 0,
                failures: vec![],
                requests: 0,
            };
            let mut rng = StdRng::seed_from_u64(spec.seed.wrapping_mul(1000).wrapping_add(w as u64));
            let mut by_kind = [0usize; 4];
            let mut n = 0;
            loop {
                if per_user.is_some_and(|r| n >= r) || spec.until.is_some_and(|u| Instant::now() >= u) {
                    break;
                }
                if crate::cancel::is_cancelled() {
                    break;
                }
                let kind = (n + w) % KINDS.len();
                let pick: Vec<Uuid> = spec.products.choose_multiple(&mut rng, 2).copied().collect();
                worker.round(kind, pick[0], pick[1], n).await;
                by_kind[kind] += 1;
                n += 1;
            }
            let history = worker.finish().await?;
            anyhow::Ok((history, by_kind, n, worker.requests, worker.failures))
        }));
    }
    let mut out = RaceOutcome::default();
    let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
    for t in tasks {
        let (history, by_kind, n, requests, failures) = t.await??;
        out.rounds += n;
        for (k, c) in by_kind.iter().enumerate() {
            out.by_kind[k] += c;
        }
        out.requests += requests;
        for (at, why) in failures {
            out.failures.push(at);
            *reasons.entry(why).or_default() += 1;
        }
        out.orders += history.orders.len();
        out.histories.push(history);
    }
    out.failures.sort_by(f64::total_cmp);
    out.failure_reasons = reasons.into_iter().collect();
    out.failure_reasons.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    out.verdict = check::check(&out.histories);
    Ok(out)
}

/// The products to race on: the catalogue's first `n`, seeding it when it has fewer than 2.
pub async fn products(client: &reqwest::Client, urls: &[String], admin: &str, n: usize) -> Result<Vec<Uuid>> {
    let mut ids = crate::load::api::product_ids(client, &urls[0]).await?;
    if ids.len() < 2 {
        let specs = crate::load::plan::seed_catalogue(n.max(2), &crate::load::plan::categories(2));
        ids = crate::load::api::seed_products(client, urls, admin, specs, 4)
            .await
            .context("seeding products to race on")?;
    }
    ids.truncate(n.max(2));
    Ok(ids)
}

/// `shopbench-bench races`: the workload alone against `urls`, printed; an error (exit code 1)
/// when anything acknowledged was lost or doubled.
pub async fn command(
    urls: Vec<String>,
    rounds: usize,
    users: usize,
    products: usize,
    admin: &str,
    seed: u64,
) -> Result<()> {
    crate::cancel::install_ctrl_c();
    let client = crate::load::api::client()?;
    // The first URL only: the others may be down on purpose (the workload does not avoid them).
    crate::load::api::wait_ready(&client, &urls[..1], Duration::from_secs(30)).await?;
    let ids = self::products(&client, &urls[..1], admin, products).await?;
    let spec = RaceSpec {
        urls,
        users,
        rounds: Some(rounds),
        until: None,
        products: ids,
        seed,
        request_timeout: Duration::from_secs(10),
    };
    let t = Instant::now();
    let out = run(&spec).await?;
    println!("races: {} in {:.1} s", out.one_line(), t.elapsed().as_secs_f64());
    for (why, n) in &out.failure_reasons {
        println!("  failed: {n} x {why}");
    }
    for l in out.verdict.lost.iter().take(10) {
        println!("LOST: {l}");
    }
    for d in out.verdict.doubled.iter().take(10) {
        println!("DOUBLED: {d}");
    }
    for d in &out.verdict.duplicated_keys {
        println!("DUPLICATED: {d}");
    }
    println!("lost_cart_changes {}", out.verdict.lost.len());
    println!("doubled_order_lines {}", out.verdict.doubled.len());
    let bad = out.verdict.lost.len() + out.verdict.doubled.len() + out.verdict.duplicated_keys.len();
    if bad > 0 {
        bail!("{bad} lost, doubled or duplicated (see above)");
    }
    Ok(())
}
