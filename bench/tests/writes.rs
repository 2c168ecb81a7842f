//! `shopbench-bench writes` end to end on real servers, with tiny turns: this build's
//! `shopbench` twice (as "a" and "b") and pgbench, each on its own topology (2 PostgreSQL
//! backends, 1 pgpool-II, 1 web) on 127.0.0.1:16700-16759, 1 s warm-up + 1 s measured, 1 repeat.
//! Asserts no timing: every side answered adds without failures, the CPU was seen, the backends
//! are identical afterwards and the files carry the numbers. About 30-60 s on a busy machine;
//! every server is stopped by the command (and by each topology's Drop on a panic).

use bench::writes::{self, args::WritesArgs, results::WritesRun};
use std::path::PathBuf;
use test_support::RunDir;

/// The app binary of this build (target/<profile>/shopbench): `cargo test --workspace`
/// (scripts/test) builds it; `cargo build -p app` does too.
fn app_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(|deps| deps.parent()).unwrap().join("shopbench");
    assert!(bin.is_file(), "{} missing: build the app first (cargo build -p app; scripts/test does)", bin.display());
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_builds_and_pgbench_side_by_side() {
    let dir = RunDir::new("writes-test");
    let bin = app_binary().display().to_string();
    let (json, md) = (dir.path().join("writes.json"), dir.path().join("writes.md"));
    let args = WritesArgs {
        builds: vec![format!("a={bin}").parse().unwrap(), format!("b={bin}").parse().unwrap()],
        concurrency: 4,
        warmup_secs: 1,
        secs: 1,
        repeats: 1,
        products: 10,
        base_port: 16700,
        json: json.clone(),
        markdown: md.clone(),
        dir: Some(dir.path().join("topologies")),
        seed: 1,
    };
    writes::command(args, "writes test".into()).await.expect("the writes command");

    let run: WritesRun = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(run.turns.iter().map(|t| t.side.as_str()).collect::<Vec<_>>(), ["a", "b", "pgbench"]);
    for t in &run.turns {
        assert!(t.adds > 0, "{t:?}");
        assert_eq!(t.failures, 0, "{t:?}");
        assert!(t.failure_reasons.is_empty(), "{t:?}");
        assert!(t.cpu.postgres_s > 0.0 && t.cpu.pgpool_s > 0.0, "the database side's CPU was seen: {t:?}");
        assert_eq!(t.cpu.web_s.is_some(), t.side != "pgbench", "{t:?}");
        if let Some(web) = t.cpu.web_s {
            assert!(web > 0.0, "{t:?}");
        }
    }
    assert_eq!(run.consistency.len(), 3);
    assert!(run.consistency.iter().all(|c| c.identical), "{:?}", run.consistency);
    assert_eq!(run.ratios.len(), 3, "{:?}", run.ratios);
    assert_eq!(run.ratios[0].what, "b / a adds/s");
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.contains("**b / a adds/s: "), "{text}");
    assert!(text.contains("**a DB CPU per add vs pgbench: "), "{text}");
    // pgbench ran its statements pipelined through pgpool-II 4.3 (no fallback was needed).
    assert!(text.contains("in two `\\startpipeline` round trips"), "{text}");
}
