use super::args::ClientArgs;
use super::*;
use crate::load::plan::{categories, JourneyConfig};
use crate::load::{LoadSpec, Mix};
use clap::Parser;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn shares_are_disjoint_and_cover_every_user() {
    for (users, clients) in [(1, 1), (16, 2), (17, 3), (5, 5), (100, 7)] {
        let shares = split(users, clients).unwrap();
        assert_eq!(shares.len(), clients);
        let mut seen = HashSet::new();
        for s in &shares {
            assert!(s.count >= 1, "{users}/{clients}: {s:?}");
            for u in s.first..s.first + s.count {
                assert!(seen.insert(u), "user {u} in two shares of {users}/{clients}");
            }
        }
        assert_eq!(seen.len(), users, "{users}/{clients}: every user once");
        let (lo, hi) = (shares.iter().map(|s| s.count).min(), shares.iter().map(|s| s.count).max());
        assert!(hi.unwrap() - lo.unwrap() <= 1, "as even as possible: {shares:?}");
    }
    assert_eq!(split(17, 3).unwrap().iter().map(|s| s.count).collect::<Vec<_>>(), [6, 6, 5]);
}

#[test]
fn more_clients_than_users_or_none_are_refused() {
    assert!(split(3, 4).unwrap_err().to_string().contains("at least one user"));
    assert!(split(3, 0).is_err());
    assert!(slice_of(&[1, 2], 0, 3).is_err());
    let items: Vec<u32> = (0..10).collect();
    let slices: Vec<Vec<u32>> = (0..3).map(|k| slice_of(&items, k, 3).unwrap()).collect();
    assert_eq!(slices, [vec![0, 1, 2, 3], vec![4, 5, 6], vec![7, 8, 9]]);
}

/// One synthetic request: operation, time in µs, failure reason.
type Req = (Op, u32, Option<&'static str>);

/// A synthetic run.
fn requests() -> Vec<Req> {
    let ops = [Op::GetProduct, Op::AddItem, Op::Checkout];
    (0..3000u32)
        .map(|i| {
            let op = ops[(i % 3) as usize];
            let micros = 200 + (i * 7919) % 40_000 + if i % 101 == 0 { 900_000 } else { 0 };
            let failure = (i % 97 == 0).then_some(if i % 2 == 0 { "status 503" } else { "timeout" });
            (op, micros, failure)
        })
        .collect()
}

/// What one client recording `reqs` would report.
fn client_of(k: usize, share: Share, reqs: &[Req]) -> ClientResult {
    let mut samples: BTreeMap<&str, OpSamples> = BTreeMap::new();
    let mut latency: BTreeMap<&str, OpLatency> = BTreeMap::new();
    for &(op, micros, failure) in reqs {
        let s = samples.entry(op.name()).or_insert_with(|| OpSamples { op: op.name().into(), ..Default::default() });
        match failure {
            Some(reason) => *s.failure_reasons.entry(reason.into()).or_default() += 1,
            None => {
                s.micros.push(micros);
                let l = latency
                    .entry(op.name())
                    .or_insert_with(|| OpLatency { op: op.name().into(), ..Default::default() });
                let t = Duration::from_micros(u64::from(micros));
                l.raw.record(t);
                l.corrected.record_correct(t, Duration::from_millis(50));
            }
        }
    }
    ClientResult {
        client: k,
        clients: 2,
        share,
        host: "test".into(),
        window_start: 100.0 + k as f64 * 0.01,
        window_end: 110.0 + k as f64 * 0.01,
        window_secs: 10.0,
        samples: samples.into_values().collect(),
        latency: latency.into_values().collect(),
        goose: GooseTotals { requests: reqs.len() as u64, failures: 0, duration_secs: 12, users: share.count as u64 },
        host_moves: k as u64,
        cpu_cores: Some(0.25),
        signed_up: vec![Uuid::from_u128(k as u128 + 1)],
    }
}

#[test]
fn two_halves_merge_into_the_whole_run() {
    let reqs = requests();
    let whole = merge(&[client_of(0, Share { first: 0, count: 16 }, &reqs)]).unwrap();
    // Every other request to each half, so both halves see every operation and reason.
    let (a, b): (Vec<_>, Vec<_>) = reqs.iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let half = |v: Vec<(usize, &Req)>| v.into_iter().map(|(_, r)| *r).collect::<Vec<_>>();
    let parts =
        [client_of(0, Share { first: 0, count: 8 }, &half(a)), client_of(1, Share { first: 8, count: 8 }, &half(b))];
    let merged = merge(&parts).unwrap();
    assert_eq!(merged.ops, whole.ops, "means, percentiles, min, max, failures and req/s of the whole");
    assert_eq!(merged.latency, whole.latency, "histograms of the whole, bucket for bucket");
    for o in merged.ops.iter().filter(|o| o.ok > 0) {
        let all: Vec<u64> =
            reqs.iter().filter(|r| r.0.name() == o.op && r.2.is_none()).map(|r| u64::from(r.1)).collect();
        let mean_ms = all.iter().sum::<u64>() as f64 / all.len() as f64 / 1000.0;
        assert!((o.mean_ms.unwrap() - mean_ms).abs() < 1e-9, "{}: total time / total count", o.op);
        // Not the mean of the halves' means: the halves differ, and a mean of means would show it.
        let half_means: Vec<f64> = parts
            .iter()
            .map(|p| merge(std::slice::from_ref(p)).unwrap())
            .map(|m| m.ops.iter().find(|x| x.op == o.op).unwrap().mean_ms.unwrap())
            .collect();
        assert_ne!(half_means[0], half_means[1]);
    }
    assert_eq!(merged.goose.requests, reqs.len() as u64);
    assert_eq!(merged.goose.users, 16);
    assert_eq!((merged.host_moves, merged.cpu_cores), (1, 0.5));
    assert!((merged.skew_secs - 0.01).abs() < 1e-9);
    assert_eq!((merged.window_start, merged.window_end), (100.0, 110.0 + 0.01));
}

#[test]
fn results_of_overlapping_clients_are_refused() {
    let reqs = requests();
    let a = client_of(0, Share { first: 0, count: 8 }, &reqs);
    let b = client_of(1, Share { first: 7, count: 8 }, &reqs);
    assert!(merge(&[a.clone(), b.clone()]).unwrap_err().to_string().contains("share users"));
    let b = ClientResult { share: Share { first: 8, count: 8 }, signed_up: a.signed_up.clone(), ..b };
    assert!(merge(&[a.clone(), b.clone()]).unwrap_err().to_string().contains("signed up by load clients"));
    let b = ClientResult { signed_up: vec![], window_secs: 9.0, ..b };
    assert!(merge(&[a, b]).is_err(), "other window lengths");
    assert!(merge(&[]).is_err());
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: ClientArgs,
}

#[test]
fn a_client_command_line_carries_the_spec_and_gives_it_its_share() {
    let spec = LoadSpec {
        hosts: vec!["http://127.0.0.1:1/".into(), "http://127.0.0.1:2/".into()],
        users: 17,
        warmup: Duration::from_secs(3),
        secs: Duration::from_secs(20),
        think: (Duration::from_millis(20), Duration::from_millis(80)),
        merchant_think: (Duration::from_millis(50), Duration::from_millis(200)),
        mix: Mix::Shop { shopper_weight: 15, merchant_weight: 1 },
        journey: Arc::new(JourneyConfig {
            categories: categories(4),
            page_limit: 7,
            pay_percent: 30,
            ..Default::default()
        }),
        admin_token: "secret".into(),
        goose_report: None,
        seed: 9,
        request_timeout_secs: 4,
        cpu_groups: vec![],
    };
    let args = ClientArgs::from_spec(&spec, 2, 3, 1234.5, None);
    let argv = std::iter::once("x".to_string()).chain(args.to_args());
    let parsed = Cli::try_parse_from(argv).unwrap().args;
    assert_eq!(parsed, args);
    assert!(!args.to_args().iter().any(|a| a.contains("secret")), "the token is not on the command line");
    let (share, own) = parsed.share_spec("secret".into()).unwrap();
    assert_eq!(share, Share { first: 12, count: 5 });
    assert_eq!(own.users, 5);
    assert_eq!((own.hosts, own.secs, own.warmup, own.think), (spec.hosts, spec.secs, spec.warmup, spec.think));
    assert_eq!((own.seed, own.request_timeout_secs, own.merchant_think), (9, 4, spec.merchant_think));
    assert_eq!(
        (own.journey.categories.clone(), own.journey.page_limit, own.journey.pay_percent),
        (categories(4), 7, 30)
    );
    // 17 users at 15:1 have 1 merchant, as one process would: client 0's, not one per client.
    assert!(matches!(own.mix, Mix::Shop { shopper_weight: 5, merchant_weight: 0 }), "client 2");
    let first = ClientArgs { client: 0, ..parsed.clone() }.share_spec(String::new()).unwrap().1;
    assert!(matches!(first.mix, Mix::Shop { shopper_weight: 5, merchant_weight: 1 }), "client 0");
    let bad = ClientArgs { client: 3, ..parsed };
    assert!(bad.share_spec(String::new()).is_err(), "client 3 of 3");
}

#[tokio::test]
async fn a_client_stops_by_itself_at_its_stop_time() {
    // A client hung on a server that never answers (or whose runner died) ends at its stop time.
    let stuck = super::args::until(super::args::unix_now() + 0.2, std::future::pending::<anyhow::Result<()>>());
    let err = tokio::time::timeout(Duration::from_secs(30), stuck).await.expect("cut off").unwrap_err();
    assert!(err.to_string().contains("stopped itself"), "{err}");
    let done = super::args::until(super::args::unix_now() + 30.0, async { Ok(7) }).await.unwrap();
    assert_eq!(done, 7);
    // Its stop time is the runner's deadline for it: start, 1 s launch, warm-up, window, grace.
    let spec_args = ClientArgs { start_at: 1000.0, warmup_secs: 5, secs: 20, ..minimal_args() };
    assert_eq!(spec_args.stop_at(), 1000.0 + 1.0 + 25.0 + super::args::EXIT_GRACE.as_secs_f64());
}

fn minimal_args() -> ClientArgs {
    let argv = ["x", "--hosts", "http://127.0.0.1:1/", "--users", "1", "--client", "0", "--clients", "1"];
    let rest = ["--start-at", "0", "--secs", "1", "--categories", "c"];
    Cli::try_parse_from(argv.into_iter().chain(rest)).unwrap().args
}
