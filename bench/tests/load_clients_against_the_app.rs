//! Two `shopbench-bench load-client` processes share a run against the real HTTP service
//! (in-memory store, in this process): their merge is the sum of their parts, and no shopper is
//! acted by both.

use bench::clients::launch::{local, run_clients};
use bench::load::api;
use bench::load::plan::{categories, seed_catalogue, JourneyConfig};
use bench::load::{LoadSpec, Mix};
use std::collections::HashSet;
use std::path::PathBuf;
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

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shopbench-clients-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_load_clients_merge_into_the_sum_of_their_parts_with_their_own_shoppers() {
    let live = spawn_app().await;
    let client = api::client().unwrap();
    api::wait_ready(&client, std::slice::from_ref(&live), Duration::from_secs(10)).await.unwrap();
    api::seed_products(&client, std::slice::from_ref(&live), ADMIN, seed_catalogue(40, &categories(4)), 8)
        .await
        .unwrap();
    let spec = LoadSpec {
        hosts: vec![live],
        users: 7,
        warmup: Duration::from_secs(1),
        secs: Duration::from_secs(3),
        think: (Duration::ZERO, Duration::from_millis(4)),
        merchant_think: (Duration::from_millis(5), Duration::from_millis(20)),
        mix: Mix::Shop { shopper_weight: 3, merchant_weight: 1 },
        journey: Arc::new(JourneyConfig { categories: categories(4), ..JourneyConfig::default() }),
        admin_token: ADMIN.into(),
        goose_report: None,
        seed: 3,
        request_timeout_secs: 5,
        cpu_groups: vec![("load client".into(), vec![std::process::id()])],
    };
    let dir = scratch_dir();
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_shopbench-bench"));
    let run = run_clients(&spec, &local(2), &exe, &dir).await.unwrap();
    let (merged, parts) = (&run.merged, &run.parts);

    assert_eq!(run.places, ["loopback", "loopback"]);
    assert!(run.skew_secs < 1.0, "windows started {} s apart", run.skew_secs);
    assert_eq!(parts.iter().map(|p| (p.share.first, p.share.count)).collect::<Vec<_>>(), [(0, 4), (4, 3)]);
    // Every operation of the merge is the sum of the parts', and its mean the whole's.
    for o in &merged.ops {
        let of =
            |p: &bench::clients::ClientResult| p.samples.iter().find(|s| s.op == o.op).cloned().unwrap_or_default();
        let micros: Vec<u64> = parts.iter().flat_map(|p| of(p).micros).map(u64::from).collect();
        let failed: u64 = parts.iter().map(|p| of(p).failure_reasons.values().sum::<u64>()).sum();
        assert_eq!((o.ok, o.failures), (micros.len() as u64, failed), "{}", o.op);
        assert_eq!(o.failures, 0, "{}: {:?}", o.op, o.failure_reasons);
        if o.ok > 0 {
            let mean = micros.iter().sum::<u64>() as f64 / micros.len() as f64 / 1000.0;
            assert!((o.mean_ms.unwrap() - mean).abs() < 1e-9, "{}", o.op);
            let hist = merged.latency.iter().find(|l| l.op == o.op).unwrap();
            assert_eq!(hist.raw.count(), o.ok, "{}: the merged histogram holds every sample", o.op);
        }
    }
    let ok: u64 = merged.ops.iter().map(|o| o.ok).sum();
    assert!(ok > 100, "the clients measured {ok} requests");
    for p in parts {
        assert!(p.samples.iter().map(|s| s.micros.len()).sum::<usize>() > 0, "client {} measured nothing", p.client);
    }
    assert_eq!(merged.goose.requests, parts.iter().map(|p| p.goose.requests).sum::<u64>());
    assert_eq!(merged.goose.users, 7);
    // Each client signed up shoppers of its own: none appears in both.
    let (a, b): (HashSet<_>, HashSet<_>) = (parts[0].signed_up.iter().collect(), parts[1].signed_up.iter().collect());
    assert!(!a.is_empty() && !b.is_empty(), "both clients signed shoppers up");
    assert!(a.is_disjoint(&b), "a shop user acted by both clients");
    // The load client tier is the clients' own CPU, added up.
    let cpu = merged.cpu.as_ref().expect("CPU measured");
    let clients: f64 = parts.iter().filter_map(|p| p.cpu_cores).sum();
    assert!(clients > 0.0 && cpu.cores["load client"] == clients, "{cpu:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
