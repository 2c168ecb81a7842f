//! One fault, in steps: the shopaholic load (and the race workload) while the schedule kills
//! and restarts its instance, then, with no write in flight, the data checks, and the table's
//! row from what the clients saw.

use super::analysis::{self, Span};
use super::audit::{self, CartAudit, CatalogueAudit, OrderAudit};
use super::schedule::{schedule, Events};
use super::table::{self, FaultRow};
use super::timeline::{self, Seen, Timeline};
use super::{git_commit, logs_since, nginx_messages, round, server_logs, stage, web_messages, with_running};
use super::{FaultKind, FaultsFile, Shared};
use crate::load::{self, LoadSpec, Mix, Observer, Tick};
use crate::observe::faults::{clients, FaultSeries};
use crate::race::{self, RaceOutcome};
use anyhow::{Context, Result};
use infra::Kind;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One fault: its load with the kill and restart, then the checks.
pub(super) async fn run_fault(
    f: &FaultsFile,
    n: usize,
    running: &Shared,
    stack: &Stack<'_>,
) -> Result<(FaultRow, Option<FaultSeries>)> {
    let label = format!("[{}/{}] {}", n + 1, f.faults.len(), f.faults[n].target);
    let mut driven = drive(f, n, running, stack, &label).await?;
    let observed = driven.observed.take();
    // Let answers the clients no longer wait for finish on the servers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    eprintln!("faults: {label}: checking the backends, {} acknowledged orders and the carts", driven.seen.orders.len());
    let checks = data_checks(f, running, &driven, stack.nginx).await?;
    Ok((fault_row(f, n, driven, checks), observed))
}

/// Where the clients go: the stack every fault of a run loads.
pub(super) struct Stack<'a> {
    pub(super) nginx: &'a [String],
    pub(super) admin: &'a str,
    /// The seeded products (the race workload's).
    pub(super) products: &'a [uuid::Uuid],
}

/// What the clients and the schedule saw during one fault's load.
struct Driven {
    /// When the load ended, on the timeline's clock.
    load_end: f64,
    events: Events,
    seen: Seen,
    raced: Option<RaceOutcome>,
    nginx_errors: Vec<(String, u64)>,
    web_errors: Vec<(String, u64)>,
    /// The load over time, when the topology has a Prometheus.
    observed: Option<FaultSeries>,
}

/// The data checks' findings.
struct Checks {
    consistency: infra::Report,
    repaired: Option<String>,
    orders: OrderAudit,
    cart_store: Option<String>,
    carts: CartAudit,
    catalogue: CatalogueAudit,
}

/// The load of fault `n`, its schedule and the race workload, side by side on one clock.
async fn drive(f: &FaultsFile, n: usize, running: &Shared, stack: &Stack<'_>, label: &str) -> Result<Driven> {
    let (spec, r, nginx) = (&f.faults[n], &f.run, stack.nginx);
    let load_spec = load_spec(f, n, nginx, stack.admin);
    let nginx_marks = server_logs(running, Kind::Nginx).await?;
    let web_marks = server_logs(running, Kind::Web).await?;
    let t0 = Instant::now();
    let t0_unix = crate::observe::Window::unix_of(t0);
    let timeline = Arc::new(Timeline::new(t0));
    let total = 1 + r.warmup_secs + load_spec.secs.as_secs();
    eprintln!(
        "faults: {label}: {total} s of load ({} users, {} racing), {:?} at {} s, back {} s later",
        r.users,
        f.race.users,
        spec.kind,
        r.kill_at().as_secs(),
        r.down(spec)
    );
    let race_spec = race::RaceSpec {
        urls: nginx.to_vec(),
        users: f.race.users,
        rounds: None,
        until: Some(t0 + Duration::from_secs(total)),
        products: stack.products.iter().take(f.race.products.max(2)).copied().collect(),
        seed: r.seed.wrapping_add(n as u64),
        request_timeout: Duration::from_secs(r.request_timeout_secs),
    };
    let observer: Arc<dyn Observer> = timeline.clone();
    let racing = async {
        if f.race.users == 0 {
            return Ok(None);
        }
        race::run_from(&race_spec, t0).await.map(Some)
    };
    // The load's own end: the schedule may look at the servers after it (a cut's views after
    // the heal), and that time without load is no pause of the clients.
    let loading = async {
        let out = load::run_observed(&load_spec, Some(ticker(&timeline, label)), Some(observer)).await;
        (out, timeline.now())
    };
    let ((out, load_end), events, raced) =
        tokio::join!(loading, schedule(spec, f, running, &timeline, t0, label), racing);
    out.with_context(|| format!("the load of fault {label}"))?;
    let events = events.with_context(|| format!("fault {label}"))?;
    let raced = raced.with_context(|| format!("the race workload of fault {label}"))?;
    let seen = timeline.finish();
    let window = crate::observe::Window { start: t0_unix, end: t0_unix + load_end };
    let api = running.lock().unwrap_or_else(|e| e.into_inner()).prometheus_api();
    let observed = match api {
        Some(api) => Some(observe(api, window, spec.kind, &events, &seen).await?),
        None => None,
    };
    // What the servers logged during the fault, fetched into the run dir (over SSH from hosts).
    let into = running.lock().unwrap_or_else(|e| e.into_inner()).log_copies(&format!("fault-{:02}", n + 1));
    let logs = logs_since(running, nginx_marks, into.clone()).await?;
    let web_logs = logs_since(running, web_marks, into).await?;
    Ok(Driven {
        load_end,
        events,
        seen,
        raced,
        nginx_errors: nginx_messages(&logs),
        web_errors: web_messages(&web_logs),
        observed,
    })
}

/// The fault's load over time: the clients' side from the timeline, the servers' from Prometheus.
async fn observe(
    api: infra::PrometheusApi,
    w: crate::observe::Window,
    kind: FaultKind,
    events: &Events,
    seen: &Seen,
) -> Result<FaultSeries> {
    let (into, back) = match kind {
        FaultKind::Hang => ("SIGSTOP", "SIGCONT"),
        FaultKind::Exhaust => ("sessions taken", "sessions closed"),
        FaultKind::Cut => ("cut", "heal"),
        _ => ("SIGKILL", "restart"),
    };
    let mut marks = vec![(events.killed_at, into.to_string()), (events.restart_at, back.to_string())];
    if let Ok((at, _)) = &events.restarted {
        marks.push((*at, "back".to_string()));
    }
    let end = w.end - w.start;
    let reqs = seen.requests.iter().map(|r| (r.end, r.error.as_deref()));
    let mut s = FaultSeries { start: w.start, end: w.end, marks, clients: clients(reqs, end), ..Default::default() };
    // The last scrape of the window lands up to a scrape interval after it.
    tokio::time::sleep(crate::observe::STEP).await;
    Ok(tokio::task::spawn_blocking(move || {
        crate::observe::faults::query(&api, w, &mut s);
        s
    })
    .await?)
}

/// The shopaholic load of fault `n`.
fn load_spec(f: &FaultsFile, n: usize, nginx: &[String], admin: &str) -> LoadSpec {
    let r = &f.run;
    LoadSpec {
        hosts: nginx.to_vec(),
        users: r.users,
        warmup: Duration::from_secs(r.warmup_secs),
        secs: r.load_secs(&f.faults[n]),
        think: f.load.think(),
        merchant_think: f.load.merchant_think(),
        mix: Mix::Shop { shopper_weight: f.load.shopper_weight, merchant_weight: f.load.merchant_weight },
        journey: Arc::new(f.load.journey(f.catalogue.categories)),
        admin_token: admin.to_string(),
        goose_report: None,
        seed: r.seed.wrapping_add(n as u64),
        request_timeout_secs: r.request_timeout_secs,
        cpu_groups: vec![],
    }
}

/// A progress line every 5 s with what the clients saw so far.
fn ticker(timeline: &Arc<Timeline>, label: &str) -> Tick {
    let timeline = timeline.clone();
    let label = label.to_string();
    Arc::new(move |elapsed, total, _| {
        let whole = elapsed.floor() as u64;
        if whole > 0 && whole.is_multiple_of(5) {
            let (ok, failed) = timeline.counts();
            eprintln!("faults: {label}: {whole}/{total:.0} s, {ok} requests ok, {failed} failed");
        }
    })
}

/// The backends' consistency (repaired when they differ, so the next fault starts clean), every
/// acknowledged order on every backend, the carts in the stage's cart store, and the products
/// written with an acknowledgement, read back through `nginx`.
async fn data_checks(f: &FaultsFile, running: &Shared, driven: &Driven, nginx: &[String]) -> Result<Checks> {
    let acked = acknowledged_orders(&driven.seen, driven.raced.as_ref());
    let (consistency, repaired, orders) = with_running(running, move |r| {
        let report = r.check_consistency()?;
        let mut repaired = None;
        if let Some(d) = &report.difference {
            let b = d.backend();
            eprintln!("faults: backends differ ({report}); rejoining postgres {b} so the next fault starts clean");
            r.rejoin_backend(b).with_context(|| format!("repairing postgres {b}"))?;
            let again = r.check_consistency()?;
            repaired = Some(format!("postgres {b} rejoined after the check; then {again}"));
        }
        let orders = audit::orders(&r.endpoints(Kind::Postgres), &acked)?;
        Ok((report, repaired, orders))
    })
    .await?;
    let (topology, settings) = {
        let r = running.lock().unwrap_or_else(|e| e.into_inner());
        (r.topology().clone(), r.settings_for_web(0))
    };
    let seen = &driven.seen;
    let (cart_store, carts) = match stage::cart_store(f.stage, &topology, &settings).await? {
        Some(store) => (
            Some(store.name.clone()),
            Some(audit::carts(store.carts.as_ref(), &seen.known_carts, &seen.unsettled).await?),
        ),
        None => (None, None),
    };
    let catalogue = audit::catalogue(nginx, &seen.products).await?;
    Ok(Checks { consistency, repaired, orders, cart_store, carts: carts.unwrap_or_default(), catalogue })
}

/// The orders the clients were told were placed: by the shopaholic load and the race workload.
fn acknowledged_orders(seen: &Seen, raced: Option<&RaceOutcome>) -> Vec<timeline::AckedOrder> {
    let mut acked = seen.orders.clone();
    for h in raced.iter().flat_map(|o| &o.histories) {
        for e in &h.events {
            if let race::check::Request::Checkout {
                key,
                outcome: race::check::CheckoutOutcome::Ordered { order, status },
            } = &e.req
            {
                acked.push(timeline::AckedOrder { user: h.user, key: key.clone(), order: *order, status: *status });
            }
        }
    }
    acked
}

/// Everything that went wrong: on the way back, in the data checks, in the race's verdict.
fn problems(driven: &Driven, checks: &Checks) -> Vec<String> {
    let (events, seen) = (&driven.events, &driven.seen);
    let mut problems = events.problems.clone();
    if let Err(e) = &events.restarted {
        problems.push(format!("the restart failed: {e}"));
    }
    if let Ok((at, _)) = &events.restarted {
        if *at > driven.load_end {
            let load_end = driven.load_end;
            problems.push(format!("the restart ended after the load ({load_end:.1} s): its recovery was not seen"));
        }
    }
    problems.extend(checks.orders.lost.iter().cloned());
    problems.extend(checks.orders.duplicated.iter().cloned());
    problems.extend(checks.carts.lost.iter().cloned());
    problems.extend(checks.catalogue.lost.iter().cloned());
    problems.extend(checks.catalogue.unread.iter().cloned());
    problems.extend(seen.cart_contradictions.iter().cloned());
    if !checks.consistency.is_identical() {
        problems.push(format!("after the load: {}", checks.consistency));
    }
    if let Some(o) = &driven.raced {
        problems.extend(o.verdict.lost.iter().map(|l| format!("race: lost: {l}")));
        problems.extend(o.verdict.doubled.iter().map(|l| format!("race: doubled: {l}")));
        problems.extend(o.verdict.duplicated_keys.iter().map(|l| format!("race: duplicated: {l}")));
    }
    problems
}

/// The race workload's line of the table.
fn race_row(f: &FaultsFile, o: &RaceOutcome) -> table::RaceRow {
    table::RaceRow {
        users: f.race.users,
        rounds: o.rounds,
        by_kind: o.by_kind,
        requests: o.requests,
        failed: o.failures.len(),
        failure_reasons: o.failure_reasons.clone(),
        orders: o.orders,
        histories: o.verdict.histories,
        lost_cart_changes: o.verdict.lost.len(),
        doubled_order_lines: o.verdict.doubled.len(),
    }
}

/// From the first to the last client-visible error, of the shopaholic load and of the race.
fn error_window(reqs: &[timeline::Req], raced: Option<&RaceOutcome>) -> Option<f64> {
    let mut error_times: Vec<f64> = reqs.iter().filter(|r| !r.ok()).map(|r| r.end).collect();
    if let Some(o) = raced {
        error_times.extend(o.failures.iter().copied());
    }
    match (error_times.iter().copied().reduce(f64::min), error_times.iter().copied().reduce(f64::max)) {
        (Some(a), Some(b)) => Some(round(b - a)),
        _ => Some(0.0),
    }
}

/// The table's row of fault `n`.
fn fault_row(f: &FaultsFile, n: usize, driven: Driven, checks: Checks) -> FaultRow {
    let spec = &f.faults[n];
    let problems = problems(&driven, &checks);
    let Driven { load_end, events, seen, raced, nginx_errors, web_errors, .. } = driven;
    let Checks { consistency, repaired, orders, cart_store, carts, catalogue } = checks;
    let (restarted_at, restart) = match &events.restarted {
        Ok((at, report)) => (Some(*at), Some(report.clone())),
        Err(_) => (None, None),
    };
    let reqs = &seen.requests;
    let steady = Span { from: 1.0 + f.run.warmup_secs as f64, to: events.killed_at };
    let down = Span { from: events.killed_at, to: events.restart_at };
    let after = Span { from: events.restart_at, to: load_end };
    let from_kill = Span { from: events.killed_at, to: f64::INFINITY };
    let mut error_reasons = analysis::reasons(reqs, steady, "before");
    error_reasons.extend(analysis::reasons(reqs, down, "kill"));
    error_reasons.extend(analysis::reasons(reqs, after, "restart"));
    let writes = |r: &&timeline::Req| !r.op.is_read();
    let reads = |r: &&timeline::Req| r.op.is_read();
    let race_row = raced.as_ref().map(|o| race_row(f, o));
    let race_lost = race_row.as_ref().map_or(0, |r| r.lost_cart_changes);
    let race_duplicated = raced.as_ref().map_or(0, |o| o.verdict.duplicated_keys.len());
    FaultRow {
        fault: events.fault.clone(),
        kind: spec.kind,
        error_window_s: error_window(reqs, raced.as_ref()),
        doubled_order_lines: race_row.as_ref().map_or(0, |r| r.doubled_order_lines),
        race: race_row,
        details: events.notes.clone(),
        stage: f.stage,
        on_hosts: f.hosts.is_some(),
        target: spec.target.clone(),
        instance: events.instance.clone(),
        note: spec.note.clone(),
        client_errors: analysis::failures(reqs, from_kill).len() as u64,
        errors_after_restart: analysis::failures(reqs, Span { from: events.restart_at, to: f64::INFINITY }).len()
            as u64,
        errors_before_fault: analysis::failures(reqs, steady).len() as u64,
        error_reasons,
        recovery_s: analysis::recovery(reqs, down, steady).map(round),
        restart_s: restart.as_ref().map(|x| round(x.took.as_secs_f64())),
        restart_recovery_s: match restarted_at {
            Some(at) if at <= load_end => analysis::recovery(reqs, after, steady).map(round),
            _ => None,
        },
        writes_paused_s: restart.as_ref().and_then(|x| x.writes_paused).map(|d| round(d.as_secs_f64())),
        longest_write_pause_s: [
            round(analysis::longest_pause(reqs, down, writes)),
            round(analysis::longest_pause(reqs, after, writes)),
        ],
        longest_read_pause_s: [
            round(analysis::longest_pause(reqs, down, reads)),
            round(analysis::longest_pause(reqs, after, reads)),
        ],
        slowest_request_s: round(analysis::slowest(reqs, from_kill).map_or(0.0, |s| s.0)),
        slowest_op: analysis::slowest(reqs, from_kill).map(|s| s.1.name().to_string()).unwrap_or_default(),
        requests_ok: reqs.iter().filter(|r| r.ok()).count() as u64,
        requests_failed: reqs.iter().filter(|r| !r.ok()).count() as u64,
        acked_orders: orders.acked,
        lost_orders: orders.lost.len(),
        duplicated_orders: orders.duplicated.len() + race_duplicated,
        cart_store,
        carts_checked: carts.checked,
        lost_cart_changes: carts.lost.len() + race_lost,
        cart_contradictions: seen.cart_contradictions.len(),
        late_applied_changes: seen.late_applied + carts.late as u64,
        products_checked: Some(catalogue.checked),
        lost_product_writes: catalogue.lost.len(),
        late_product_writes: catalogue.late,
        nginx_errors,
        web_errors,
        backends_identical: consistency.is_identical(),
        consistency: consistency.to_string(),
        repaired,
        problems,
        finished_at: crate::report::results::now_rfc3339(),
        git_commit: git_commit(),
        setup: String::new(),
        timeline: None,
    }
}
