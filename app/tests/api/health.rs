use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn liveness_answers_ok() {
    let app = spawn_app().await;
    let r = app.get("/health").send().await;
    assert_eq!(r.assert_status(200), &json!({"status": "ok"}));
}

#[tokio::test]
async fn readiness_reports_every_store() {
    let app = spawn_app().await;
    let r = app.get("/health/ready").send().await;
    assert_eq!(r.assert_status(200), &json!({"status": "ok", "stores": stores_all("ok")}));
}

/// The database disappears under a running app: readiness says so, requests get a 503 that
/// names no internals, and liveness still answers (the process is fine).
#[tokio::test]
async fn a_lost_database_gives_503_without_internals() {
    let app = spawn_app().await;
    // Users live in PostgreSQL in every stage (the catalogue moves to Cassandra in one).
    let (user, _) = app.user().await;

    // test_settings() names the `postgres` database, from which the test's own is dropped.
    let client = test_support::pg::connect(&test_support::pg::test_settings()).await;
    client.batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", app.db.dbname)).await.unwrap();

    let r = app.get("/health/ready").send().await;
    let mut stores = stores_all("ok");
    stores["postgres"] = json!("unavailable");
    assert_eq!(r.assert_status(503), &json!({"status": "unavailable", "stores": stores}));

    let r = app.get(&format!("/users/{user}")).bearer(ADMIN_TOKEN).send().await;
    r.assert_error(503, "unavailable", None);
    assert_eq!(r.header("retry-after"), Some("1"));
    for secret in [app.db.dbname.as_str(), "postgres", "database", "127.0.0.1"] {
        assert!(!r.text.contains(secret), "503 body leaks {secret:?}: {}", r.text);
    }
    app.get("/health").send().await.assert_status(200);
}

#[tokio::test]
async fn metrics_are_histograms_labelled_by_route_pattern() {
    let app = spawn_app().await;
    let (user, token) = app.user().await;
    app.get(&format!("/users/{user}/cart")).bearer(&token).send().await.assert_status(200);
    app.get("/no/such/route").send().await.assert_status(404);

    let r = app.get("/metrics").send().await;
    r.assert_status(200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let cart_line = r
        .text
        .lines()
        .find(|l| {
            l.starts_with("http_request_duration_seconds_bucket{")
                && l.contains(r#"method="GET""#)
                && l.contains(r#"route="/users/{user_id}/cart""#)
                && l.contains(r#"status="200""#)
                && l.contains(r#"le="+Inf""#)
        })
        .unwrap_or_else(|| panic!("no bucket line for the cart route in:\n{}", r.text));
    let count: u64 = cart_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 1, "{cart_line}");
    assert!(r.text.contains(r#"route="unmatched""#), "unknown paths share one label");
    assert!(!r.text.contains(&user), "raw paths must not become labels");
    assert!(!r.text.contains("http_request_duration_seconds{"), "histograms, not summaries (no quantile series)");
    // The adapter's store timings go through the same recorder.
    assert!(r.text.contains("shop_store_seconds_bucket{"), "store metrics are exported");
}

/// `cargo run` with no configuration: the in-memory store, reported as such.
#[tokio::test]
async fn without_postgres_the_app_runs_on_the_memory_store() {
    let mut settings = app::Settings::default();
    settings.http.port = 0;
    settings.http.workers = 1;
    let application = app::Application::build(settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped());
    let client = reqwest::Client::new();
    let ready: serde_json::Value =
        client.get(format!("{base}/health/ready")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready, json!({"status": "ok", "stores": {"memory": "ok"}}));
    let body = json!({"email": "mem@example.com", "name": "Mem"});
    let created = client.post(format!("{base}/users")).json(&body).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let listed = client.get(format!("{base}/users")).bearer_auth(app::config::DEV_ADMIN_TOKEN).send().await.unwrap();
    let listed: serde_json::Value = listed.json().await.unwrap();
    assert_eq!(listed["items"][0]["email"], "mem@example.com", "the default admin token works");
}

/// A build must not quietly measure other stores than its stage's: a stage-redis build without
/// `redis`, or another build with it, refuses to start and says why.
#[tokio::test]
async fn a_build_refuses_the_stores_of_another_stage() {
    let db = test_support::pg::fresh_database(&test_support::pg::test_settings()).await;
    let mut settings = app::Settings::default();
    settings.http.port = 0;
    settings.postgres = Some(db);
    #[cfg(feature = "stage-redis")]
    let expected = "this build has feature stage-redis: configure redis too";
    #[cfg(not(feature = "stage-redis"))]
    let expected = {
        settings.redis = Some(serde::de::IgnoredAny);
        "redis is configured but this build lacks the stage-redis feature"
    };
    let err = app::Application::build(settings).await.err().expect("the build refuses to start").to_string();
    assert!(err.contains(expected), "{err}");
}

/// Likewise for the catalogue: a stage-cassandra build without `cassandra`, or another build with
/// it, refuses to start and says why.
#[tokio::test]
async fn a_build_refuses_the_catalogue_store_of_another_stage() {
    let db = test_support::pg::fresh_database(&test_support::pg::test_settings()).await;
    let mut settings = app::Settings::default();
    settings.http.port = 0;
    settings.postgres = Some(db);
    #[cfg(feature = "stage-redis")]
    {
        settings.redis = Some(test_support::redis::fresh_prefix(&test_support::redis::test_settings()));
    }
    #[cfg(feature = "stage-cassandra")]
    let expected = "this build has feature stage-cassandra: configure cassandra too";
    #[cfg(not(feature = "stage-cassandra"))]
    let expected = {
        settings.cassandra = Some(serde::de::IgnoredAny);
        "cassandra is configured but this build lacks the stage-cassandra feature"
    };
    let err = app::Application::build(settings).await.err().expect("the build refuses to start").to_string();
    assert!(err.contains(expected), "{err}");
}
