//! The Goose load: shoppers and merchants (or product readers) over HTTP, spread round-robin over
//! the nginx instances, run in-process (no command-line parsing by Goose).
//!
//! Goose 0.19 takes one `--host` per run, so each user picks its nginx in an on-start transaction
//! (`set_base_url`, by user index) and moves to the next one when a request cannot reach its
//! nginx (connect error or timeout). Every request is named by its route pattern.
//!
//! Times come from our own recorder (request sent until the whole body is read, successful
//! requests only, inside the measured window); Goose's own counts are kept as a cross-check.
//! Goose is a closed-loop client: a slow response delays that user's next request, so a stall
//! shows up as fewer requests rather than as long times (coordinated omission); Goose's
//! mitigation is left off, and throughput is reported beside every mean. The recorder also keeps
//! histograms corrected for it ([`crate::latency`]), and [`run_paced`] runs the same users open
//! loop, each request at its scheduled time ([`pace`]), for the capacity steps.

pub mod api;
pub mod http;
pub mod ops;
pub mod pace;
pub mod plan;
pub mod recorder;

use crate::latency::OpLatency;
use crate::load::http::{HttpRequest, Method};
use crate::load::ops::Op;
use crate::load::pace::Pace;
use crate::load::plan::{Action, JourneyConfig, Merchant, Outcome, Person, Reader, Shopper};
use crate::load::recorder::{OpSamples, Recorder, Timing};
use crate::measure::cpu::{self, CpuUse};
use crate::report::stats::OpStats;
use anyhow::{Context, Result};
use goose::config::GooseConfiguration;
use goose::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Who the users are.
#[derive(Clone)]
pub enum Mix {
    /// Shoppers and merchants in these proportions (Goose scenario weights).
    Shop { shopper_weight: usize, merchant_weight: usize },
    /// Every user only opens product pages of these products, without think time.
    ProductReads { products: Arc<Vec<Uuid>> },
}

#[derive(Clone)]
pub struct LoadSpec {
    /// Base URLs of the nginx instances (or any HTTP endpoints of the API).
    pub hosts: Vec<String>,
    pub users: usize,
    pub warmup: Duration,
    pub secs: Duration,
    /// Think time of shoppers between two requests (uniform in the range).
    pub think: (Duration, Duration),
    pub merchant_think: (Duration, Duration),
    pub mix: Mix,
    pub journey: Arc<JourneyConfig>,
    pub admin_token: String,
    /// Where Goose writes its own JSON report, if anywhere.
    pub goose_report: Option<PathBuf>,
    pub seed: u64,
    pub request_timeout_secs: u64,
    /// Components whose CPU use is measured over the window: name and root pids.
    pub cpu_groups: Vec<(String, Vec<u32>)>,
}

/// Goose's own totals for the run (after its user launch), to cross-check ours.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GooseTotals {
    pub requests: u64,
    pub failures: u64,
    pub duration_secs: u64,
    pub users: u64,
}

#[derive(Clone, Debug)]
pub struct LoadResult {
    pub ops: Vec<OpStats>,
    pub window_secs: f64,
    pub goose: GooseTotals,
    /// How often a user moved to another nginx after a failed connection.
    pub host_moves: u64,
    pub cpu: Option<CpuUse>,
    /// The measured window in unix time (what Prometheus is asked about).
    pub window: crate::observe::Window,
    /// Per operation with successes: raw and coordinated-omission-corrected histograms.
    pub latency: Vec<OpLatency>,
    /// Per operation: the exact times behind `ops`, so runs of several load clients merge into
    /// the same numbers one process would give (see crate::clients).
    pub samples: Vec<OpSamples>,
}

/// Called about once a second while the load runs: seconds since start, total seconds,
/// measured (ok, failed) requests.
pub type Tick = Arc<dyn Fn(f64, f64, (u64, u64)) + Send + Sync>;

/// One finished request, as an [`Observer`] sees it (warm-up included).
pub struct Finished<'a> {
    /// The Goose user that sent it (each user sends one request at a time).
    pub user: usize,
    pub action: &'a Action,
    /// The base URL it went to.
    pub host: &'a str,
    pub started: Instant,
    pub ended: Instant,
    /// The HTTP status; `None` when no answer came.
    pub status: Option<u16>,
    /// The answer's body (of an error answer too); empty without an answer.
    pub body: &'a [u8],
    /// Without an answer: what the HTTP client said.
    pub transport_error: Option<&'a str>,
    /// What the answer meant to the plan, or why the request failed.
    pub outcome: &'a Result<Outcome, String>,
}

/// Sees every request of a run, e.g. the faults command's timeline of what clients saw.
pub trait Observer: Send + Sync {
    /// `action` is about to be sent by `user`.
    fn sent(&self, user: usize, action: &Action, at: Instant);
    fn finished(&self, request: &Finished<'_>);
}

struct Ctx {
    recorder: Recorder,
    hosts: Vec<String>,
    journey: Arc<JourneyConfig>,
    admin_token: String,
    seed: u64,
    products: Arc<Vec<Uuid>>,
    host_moves: AtomicU64,
    observer: Option<Arc<dyn Observer>>,
    /// Open loop: when each user's requests are due (`None`: closed loop with think times).
    pace: Option<Pace>,
    /// Closed loop: the mean think time of shoppers and merchants, each one's expected interval
    /// between sends for the coordinated-omission backfill.
    think_means: (Duration, Duration),
    /// The run-wide index of this process's first user (0 alone; a load client's share starts
    /// further on, so its users are other people than the other clients').
    first_user: usize,
}

/// A user's state between transactions (Goose session data must be `Clone`).
#[derive(Clone)]
struct Session(Option<UserState>);

#[derive(Clone)]
struct UserState {
    person: Person,
    host: usize,
    /// Requests sent so far (the next one's place in the pace).
    sent: u64,
    /// The backfill interval of the corrected histograms (zero: none).
    interval: Duration,
}

#[derive(Clone, Copy)]
enum Role {
    Shopper,
    Merchant,
    Reader,
}

fn on_start(ctx: Arc<Ctx>, role: Role) -> Transaction {
    let f: TransactionFunction = Arc::new(move |user| {
        let ctx = ctx.clone();
        Box::pin(async move {
            let index = ctx.first_user + user.weighted_users_index;
            let seed = ctx.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let person = match role {
                Role::Shopper => Person::Shopper(Shopper::new(ctx.journey.clone(), seed)),
                Role::Merchant => Person::Merchant(Merchant::new(ctx.journey.clone(), ctx.admin_token.clone(), seed)),
                Role::Reader => Person::Reader(Reader::new(ctx.products.clone(), seed)),
            };
            let host = index % ctx.hosts.len();
            user.set_base_url(&ctx.hosts[host])?;
            // Paced requests are timed from their schedule: nothing to backfill.
            let interval = match (role, ctx.pace) {
                (_, Some(_)) | (Role::Reader, None) => Duration::ZERO,
                (Role::Shopper, None) => ctx.think_means.0,
                (Role::Merchant, None) => ctx.think_means.1,
            };
            user.set_session_data(Session(Some(UserState { person, host, sent: 0, interval })));
            Ok(())
        })
    });
    Transaction::new(f).set_name("pick nginx").set_on_start()
}

fn step(ctx: Arc<Ctx>) -> Transaction {
    let f: TransactionFunction = Arc::new(move |user| {
        let ctx = ctx.clone();
        Box::pin(async move { one_request(user, &ctx).await })
    });
    Transaction::new(f).set_name("request")
}

struct SendError {
    reason: String,
    /// The nginx could not be reached: move to the next one.
    move_host: bool,
    /// The HTTP client's own words, for observers.
    detail: String,
}

async fn one_request(user: &mut GooseUser, ctx: &Ctx) -> TransactionResult {
    let Some(mut st) = user.get_session_data_mut::<Session>().and_then(|s| s.0.take()) else {
        return Ok(());
    };
    let action = st.person.next_action();
    let op = action.op();
    let req = http::request_of(&action);
    let token = st.person.token().map(str::to_owned);
    let scheduled = ctx.pace.map(|p| p.scheduled(user.weighted_users_index, st.sent));
    st.sent += 1;
    if let Some(at) = scheduled {
        tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
    }
    let started = Instant::now();
    if let Some(o) = &ctx.observer {
        o.sent(user.weighted_users_index, &action, started);
    }
    let sent = send(user, &req, op, token.as_deref()).await;
    let elapsed = started.elapsed();
    let outcome = match &sent {
        Ok((status, body)) => http::outcome_of(&action, req.expect, *status, body),
        Err(e) => Err(e.reason.clone()),
    };
    if let Some(o) = &ctx.observer {
        let (status, body, transport_error) = match &sent {
            Ok((status, body)) => (Some(*status), body.as_slice(), None),
            Err(e) => (None, &[][..], Some(e.detail.as_str())),
        };
        o.finished(&Finished {
            user: user.weighted_users_index,
            action: &action,
            host: &ctx.hosts[st.host],
            started,
            ended: started + elapsed,
            status,
            body,
            transport_error,
            outcome: &outcome,
        });
    }
    if let Err(e) = &sent {
        if e.move_host && ctx.hosts.len() > 1 {
            st.host = (st.host + 1) % ctx.hosts.len();
            user.set_base_url(&ctx.hosts[st.host])?;
            ctx.host_moves.fetch_add(1, Ordering::Relaxed);
        }
    }
    // Reasons are kept short and fixed ("status 503", "bad body", "timeout"), so they group.
    let recorded = outcome.as_ref().map(|_| ()).map_err(|r| r.split(':').next().unwrap_or(r).to_string());
    let from_schedule = scheduled.map_or(elapsed, |at| (started + elapsed).saturating_duration_since(at));
    let timing = Timing { elapsed, from_schedule, interval: st.interval };
    ctx.recorder.record_timed(Instant::now(), op, timing, recorded);
    st.person.apply(op, outcome.unwrap_or(Outcome::Failed));
    user.set_session_data(Session(Some(st)));
    Ok(())
}

async fn send(
    user: &mut GooseUser,
    req: &HttpRequest,
    op: Op,
    token: Option<&str>,
) -> Result<(u16, Vec<u8>), SendError> {
    let method = match req.method {
        Method::Get => GooseMethod::Get,
        Method::Post => GooseMethod::Post,
        Method::Put => GooseMethod::Put,
        Method::Patch => GooseMethod::Patch,
        Method::Delete => GooseMethod::Delete,
    };
    let fail = |reason: &str, move_host, detail: String| SendError { reason: reason.to_string(), move_host, detail };
    let mut rb =
        user.get_request_builder(&method, &req.path).map_err(|e| fail("bad request", false, format!("{e:?}")))?;
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(key) = &req.idempotency_key {
        rb = rb.header("Idempotency-Key", key.as_str());
    }
    if let Some(body) = &req.body {
        rb = rb.header("Content-Type", "application/json").body(body.to_string());
    }
    let request =
        GooseRequest::builder().method(method).path(req.path.as_str()).name(op.name()).set_request_builder(rb).build();
    let goose = user.request(request).await.map_err(|e| fail("canceled", false, format!("{e:?}")))?;
    match goose.response {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body = resp
                .bytes()
                .await
                .map_err(|e| fail(if e.is_timeout() { "timeout" } else { "body" }, true, error_chain(&e)))?;
            Ok((status, body.to_vec()))
        }
        Err(e) if e.is_timeout() => Err(fail("timeout", true, error_chain(&e))),
        Err(e) if e.is_connect() => Err(fail("connect", true, error_chain(&e))),
        Err(e) => Err(fail("request", true, error_chain(&e))),
    }
}

/// An error with its sources ("error sending request: ...: connection refused").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn scenario(
    name: &str,
    weight: usize,
    think: (Duration, Duration),
    start: Transaction,
    step: Transaction,
) -> Result<Scenario> {
    let mut s = Scenario::new(name).set_weight(weight)?;
    if think.1 > Duration::ZERO {
        s = s.set_wait_time(think.0, think.1)?;
    }
    Ok(s.register_transaction(start).register_transaction(step))
}

/// Runs one Goose attack of `warmup + secs` and returns the numbers of the last `secs`.
pub async fn run(spec: &LoadSpec, tick: Option<Tick>) -> Result<LoadResult> {
    run_observed(spec, tick, None).await
}

/// [`run`], with every request also shown to `observer`.
pub async fn run_observed(
    spec: &LoadSpec,
    tick: Option<Tick>,
    observer: Option<Arc<dyn Observer>>,
) -> Result<LoadResult> {
    run_with(spec, tick, observer, None, 0).await
}

/// [`run_observed`] of one load client's share: `spec.users` users whose run-wide indices start
/// at `first_user` (their seeds, nginx and emails follow from it, so shares never overlap).
pub async fn run_share(spec: &LoadSpec, first_user: usize, observer: Option<Arc<dyn Observer>>) -> Result<LoadResult> {
    run_with(spec, None, observer, None, first_user).await
}

/// [`run`] open loop: `rate` requests per second over all users, each at its scheduled time
/// (the spec's think times should be zero: pacing replaces them).
pub async fn run_paced(spec: &LoadSpec, rate: f64, tick: Option<Tick>) -> Result<LoadResult> {
    anyhow::ensure!(rate > 0.0, "a paced run needs a rate above 0");
    run_with(spec, tick, None, Some(rate), 0).await
}

fn mean_of(range: (Duration, Duration)) -> Duration {
    (range.0 + range.1) / 2
}

async fn run_with(
    spec: &LoadSpec,
    tick: Option<Tick>,
    observer: Option<Arc<dyn Observer>>,
    rate: Option<f64>,
    first_user: usize,
) -> Result<LoadResult> {
    anyhow::ensure!(!spec.hosts.is_empty(), "no host to load");
    anyhow::ensure!(spec.users > 0, "at least one user");
    let products = match &spec.mix {
        Mix::ProductReads { products } => {
            anyhow::ensure!(!products.is_empty(), "no products to read");
            products.clone()
        }
        Mix::Shop { .. } => Arc::new(Vec::new()),
    };
    // Goose starts all users within its first second; the window starts after the warm-up.
    let t0 = Instant::now();
    let launch = Duration::from_secs(1);
    let ctx = Arc::new(Ctx {
        recorder: Recorder::new(t0 + launch + spec.warmup, spec.secs),
        hosts: spec.hosts.iter().map(|h| h.trim_end_matches('/').to_string() + "/").collect(),
        journey: Arc::new(journey_of_share(&spec.journey, first_user)),
        admin_token: spec.admin_token.clone(),
        seed: spec.seed,
        products,
        host_moves: AtomicU64::new(0),
        observer,
        pace: rate.map(|r| Pace::new(t0 + launch, r, spec.users)),
        think_means: (mean_of(spec.think), mean_of(spec.merchant_think)),
        first_user,
    });
    let attack = scenarios(spec, &ctx)?;
    // One second more than the window needs, so the window never outlasts Goose's run.
    let run_time = (spec.warmup + spec.secs).as_secs().max(1) as usize + 1;
    let total = launch + Duration::from_secs(run_time as u64);
    let attack = configure(attack, spec, &ctx, run_time)?;

    let ticker = tick.map(|tick| spawn_ticker(tick, ctx.clone(), t0, total));
    let cpu_probe = window_cpu(&ctx.recorder, spec.cpu_groups.clone());
    let metrics = attack.execute().await.context("goose load test");
    if let Some(t) = ticker {
        t.abort();
    }
    let metrics = metrics?;
    if crate::cancel::is_cancelled() {
        anyhow::bail!("the load test was interrupted");
    }
    anyhow::ensure!(
        Instant::now() >= ctx.recorder.window_end(),
        "the load test ended {:.1} s before the end of the measured window",
        (ctx.recorder.window_end() - Instant::now()).as_secs_f64()
    );
    let goose = GooseTotals {
        requests: metrics.requests.values().map(|r| (r.success_count + r.fail_count) as u64).sum(),
        failures: metrics.requests.values().map(|r| r.fail_count as u64).sum(),
        duration_secs: metrics.duration as u64,
        users: metrics.maximum_users as u64,
    };
    let (samples, latency) = ctx.recorder.finish_samples();
    Ok(LoadResult {
        ops: samples.iter().map(|s| s.stats(spec.secs.as_secs_f64())).collect(),
        samples,
        latency,
        window_secs: spec.secs.as_secs_f64(),
        goose,
        host_moves: ctx.host_moves.load(Ordering::Relaxed),
        cpu: cpu_probe.await.ok().flatten(),
        window: crate::observe::Window {
            start: crate::observe::Window::unix_of(ctx.recorder.window_start()),
            end: crate::observe::Window::unix_of(ctx.recorder.window_end()),
        },
    })
}

/// The journey with a fresh email tag; a share's tag also names its first user, so no two load
/// clients of a run can make the same email even if their random tags met.
fn journey_of_share(journey: &JourneyConfig, first_user: usize) -> JourneyConfig {
    let mut j = journey.for_new_run();
    if first_user > 0 {
        j.email_tag = format!("{}u{first_user}", j.email_tag);
    }
    j
}

/// Goose's scenarios for the mix: shoppers and merchants by weight, or product readers.
fn scenarios(spec: &LoadSpec, ctx: &Arc<Ctx>) -> Result<GooseAttack> {
    let mut attack = GooseAttack::initialize_with_config(GooseConfiguration::default())?;
    match &spec.mix {
        Mix::Shop { shopper_weight, merchant_weight } => {
            if *shopper_weight > 0 {
                attack = attack.register_scenario(scenario(
                    "shopper",
                    *shopper_weight,
                    spec.think,
                    on_start(ctx.clone(), Role::Shopper),
                    step(ctx.clone()),
                )?);
            }
            if *merchant_weight > 0 {
                attack = attack.register_scenario(scenario(
                    "merchant",
                    *merchant_weight,
                    spec.merchant_think,
                    on_start(ctx.clone(), Role::Merchant),
                    step(ctx.clone()),
                )?);
            }
        }
        Mix::ProductReads { .. } => {
            attack = attack.register_scenario(scenario(
                "reader",
                1,
                (Duration::ZERO, Duration::ZERO),
                on_start(ctx.clone(), Role::Reader),
                step(ctx.clone()),
            )?);
        }
    }
    Ok(attack)
}

/// Goose's run: every user at once, for `run_time` seconds, without its own reports.
fn configure(attack: GooseAttack, spec: &LoadSpec, ctx: &Ctx, run_time: usize) -> Result<Box<GooseAttack>> {
    let mut attack = attack
        .set_default(GooseDefault::Host, ctx.hosts[0].as_str())?
        .set_default(GooseDefault::Users, spec.users)?
        .set_default(GooseDefault::IncreaseRate, spec.users.to_string().as_str())?
        .set_default(GooseDefault::RunTime, run_time)?
        .set_default(GooseDefault::Timeout, spec.request_timeout_secs.to_string().as_str())?
        .set_default(GooseDefault::NoTelnet, true)?
        .set_default(GooseDefault::NoPrintMetrics, true)?
        .set_default(GooseDefault::NoErrorSummary, true)?
        .set_default(GooseDefault::NoTransactionMetrics, true)?
        .set_default(GooseDefault::NoScenarioMetrics, true)?
        .set_default(GooseDefault::Quiet, 1usize)?;
    if let Some(path) = &spec.goose_report {
        attack = attack.set_default(GooseDefault::ReportFile, path.to_string_lossy().as_ref())?;
    }

    Ok(attack)
}

/// Calls `tick` every second with the time so far, the run's total and the counts.
fn spawn_ticker(tick: Tick, ctx: Arc<Ctx>, t0: Instant, total: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            every.tick().await;
            tick(t0.elapsed().as_secs_f64(), total.as_secs_f64(), ctx.recorder.counts());
        }
    })
}

/// Measures the groups' CPU use over the recorder's window, in the background.
pub fn window_cpu(recorder: &Recorder, groups: Vec<(String, Vec<u32>)>) -> tokio::task::JoinHandle<Option<CpuUse>> {
    let (from, until) = (recorder.window_start(), recorder.window_end());
    tokio::spawn(async move {
        if groups.is_empty() {
            return None;
        }
        tokio::time::sleep_until(tokio::time::Instant::from_std(from)).await;
        let a = cpu::snapshot(&groups);
        tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
        Some(cpu::between(&a, &cpu::snapshot(&groups)))
    })
}
