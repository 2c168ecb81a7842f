//! The Goose load against the real HTTP service (in-memory store, in this process): every
//! planned request must be one the API accepts, and users whose nginx is down move on.

use bench::load::api;
use bench::load::ops::Op;
use bench::load::plan::{categories, seed_catalogue, JourneyConfig};
use bench::load::{self, LoadSpec, Mix};
use std::sync::Arc;
use std::time::Duration;

const ADMIN: &str = "bench-test-admin";

async fn spawn_app() -> String {
    let mut settings = app::Settings::default();
    settings.http.port = 0;
    settings.admin_token = ADMIN.into();
    let application = app::Application::build(settings).await.expect("the app builds");
    let url = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped());
    url
}

/// A loopback URL nothing listens on.
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
}

fn spec(hosts: Vec<String>, mix: Mix) -> LoadSpec {
    LoadSpec {
        hosts,
        users: 6,
        warmup: Duration::from_secs(1),
        secs: Duration::from_secs(3),
        think: (Duration::ZERO, Duration::from_millis(4)),
        merchant_think: (Duration::from_millis(5), Duration::from_millis(20)),
        mix,
        journey: Arc::new(JourneyConfig { categories: categories(4), ..JourneyConfig::default() }),
        admin_token: ADMIN.into(),
        goose_report: None,
        seed: 3,
        request_timeout_secs: 5,
        cpu_groups: vec![("load client".into(), vec![std::process::id()])],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shop_mix_runs_without_failures_and_users_leave_a_dead_nginx() {
    let live = spawn_app().await;
    let client = api::client().unwrap();
    api::wait_ready(&client, std::slice::from_ref(&live), Duration::from_secs(10)).await.unwrap();
    let ids = api::seed_products(&client, std::slice::from_ref(&live), ADMIN, seed_catalogue(40, &categories(4)), 8)
        .await
        .unwrap();
    assert_eq!(api::product_ids(&client, &live).await.unwrap().len(), 40);

    // Users 1, 3 and 5 start on the dead one: their first request fails (in the warm-up) and they
    // move to the live one; nothing fails in the measured window.
    let mix = Mix::Shop { shopper_weight: 2, merchant_weight: 1 };
    let out = load::run(&spec(vec![live.clone(), dead_url()], mix), None).await.unwrap();
    assert_eq!(out.host_moves, 3, "one move per user that started on the dead host");
    for o in &out.ops {
        assert_eq!(o.failures, 0, "{}: {:?}", o.op, o.failure_reasons);
        assert!(o.ok > 0, "{} never ran in the window", o.op);
        let op = Op::from_name(&o.op).unwrap();
        assert!(o.mean_ms.unwrap() > 0.0 && o.p99_ms >= o.p50_ms, "{op}: {o:?}");
    }
    assert!(out.goose.requests > 0, "goose's own count: {:?}", out.goose);
    assert!(out.cpu.unwrap().cores["load client"] > 0.0);

    let reads = Mix::ProductReads { products: Arc::new(ids) };
    let out = load::run(&spec(vec![live], reads), None).await.unwrap();
    let get = out.ops.iter().find(|o| o.op == Op::GetProduct.name()).unwrap();
    assert!(get.ok > 100 && get.failures == 0, "{get:?}");
    assert_eq!(out.ops.iter().map(|o| o.ok).sum::<u64>(), get.ok, "only product GETs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_run_offers_its_rate_and_times_requests_from_their_schedule() {
    let live = spawn_app().await;
    let client = api::client().unwrap();
    api::wait_ready(&client, std::slice::from_ref(&live), Duration::from_secs(10)).await.unwrap();
    api::seed_products(&client, std::slice::from_ref(&live), ADMIN, seed_catalogue(40, &categories(4)), 8)
        .await
        .unwrap();
    let paced = LoadSpec {
        users: 8,
        think: (Duration::ZERO, Duration::ZERO),
        merchant_think: (Duration::ZERO, Duration::ZERO),
        ..spec(vec![live], Mix::Shop { shopper_weight: 3, merchant_weight: 1 })
    };
    // 60 req/s for a 3 s window: 180 requests due; an in-memory app keeps up easily.
    let out = load::run_paced(&paced, 60.0, None).await.unwrap();
    let done: u64 = out.ops.iter().map(|o| o.ok + o.failures).sum();
    assert_eq!(out.ops.iter().map(|o| o.failures).sum::<u64>(), 0);
    assert!((150..=190).contains(&done), "{done} requests in 3 s at 60 req/s");
    for l in &out.latency {
        // Timed from the schedule and never backfilled: as many entries, none faster.
        assert_eq!(l.corrected.count(), l.raw.count(), "{}", l.op);
        assert!(l.corrected.percentile_ms(50.0) >= l.raw.percentile_ms(50.0), "{}", l.op);
    }
    assert!(load::run_paced(&paced, 0.0, None).await.is_err(), "a rate of 0 is refused");
}
