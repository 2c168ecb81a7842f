//! A checkout's claim racing a remove or clear of the same user's cart, while pgpool-II has
//! committed that change on backend 1 and not yet on the main node (2 PostgreSQL backends in
//! native replication, 1 pgpool, the adapter on it).
//!
//! pgpool-II commits the other nodes first and the main node last (docs/replication.md). A claim
//! reads the cart's lines under the user's row lock; a change that did not take that lock could
//! be on backend 1 and not yet on the main node when the claim ran there: the claim then held
//! other lines on each backend (a silent divergence of a live claim), or, when the change took the
//! cart's last line, answered a row on one node and none on the other, and pgpool ended the
//! session ("kind mismatch among backends"). The claim must wait for the change and hold the
//! same lines on both backends.
//!
//! The window is held open with the adapter's own change: the main node's COMMITs wait for a
//! synchronous standby that does not exist (`synchronous_standby_names` on backend 0 only; a
//! waiting COMMIT is not yet visible to other sessions and keeps its locks), so the change is
//! committed on backend 1 and stays uncommitted on the main node until the test releases it, once
//! the claim waits on the main node too (for the lock, or for its own COMMIT).
//!
//! An add racing the same remove or clear: the add reads the cart under the user's lock, so a
//! remove without that lock, committed on backend 1 and held on the main node, let the add read
//! the line there and write its old quantity plus the add after the remove on every backend (the
//! backends identical, the acknowledged remove lost). Under the lock the add waits and recreates
//! the line with its own quantity.
//!
//! Each case starts its own topology in a temp run dir on 10 ports from 18400 (18400-18499; needs
//! the servers installed; as root the servers run as user postgres).

mod common;

use adapter_contract::carts::product_ids;
use adapter_postgres::{PgSettings, PgStore};
use common::*;
use domain::models::*;
use domain::ports::Claim;
use std::time::Duration;
use test_support::servers::{Running, Topology, SHOP_DB};
use test_support::RunDir;

/// Sessions of the shop database on `admin`'s backend that wait for a synchronous standby (a
/// held COMMIT) or for a lock.
async fn waiting(admin: &tokio_postgres::Client) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() \
             AND (wait_event = 'SyncRep' OR wait_event_type = 'Lock')",
            &[&SHOP_DB],
        )
        .await
        .unwrap()
        .get(0)
}

/// Makes every COMMIT that writes on `backend` wait for the standby that does not exist, and
/// returns once that is in effect. `pg_reload_conf()` only signals the postmaster: the sessions
/// (pgpool's among them) take the setting when the postmaster passes the signal on, and commits
/// wait only once the checkpointer has published it too; a change sent before then is not held.
/// A probe's own commit (a transactional WAL message: it changes no table, so the backends stay
/// identical) that waits proves both, after which the probe is cancelled out of its wait.
async fn hold_commits(backend: &str, admin: &tokio_postgres::Client) {
    admin.batch_execute("ALTER SYSTEM SET synchronous_standby_names = 'held_by_test'").await.unwrap();
    admin.batch_execute("SELECT pg_reload_conf()").await.unwrap();
    let probe = std::sync::Arc::new(direct(backend, "postgres").await);
    let pid: i32 = probe.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let committing = tokio::spawn({
            let probe = probe.clone();
            async move {
                probe
                    .batch_execute("BEGIN; SELECT pg_logical_emit_message(true, 'shopbench-test', 'probe'); COMMIT")
                    .await
            }
        });
        let held = loop {
            let waits: bool = admin
                .query_one(
                    "SELECT count(*) = 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'SyncRep'",
                    &[&pid],
                )
                .await
                .unwrap()
                .get(0);
            if waits || committing.is_finished() {
                break waits;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        if held {
            admin.execute("SELECT pg_cancel_backend($1)", &[&pid]).await.unwrap();
        }
        // A cancelled wait commits locally with a warning: the probe answers Ok either way.
        committing.await.unwrap().expect("the probe's commit");
        if held {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "backend {backend} never held a commit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Lets every held COMMIT on `admin`'s backend go (and later ones commit at once).
async fn release_commits(admin: &tokio_postgres::Client) {
    admin.batch_execute("ALTER SYSTEM RESET synchronous_standby_names").await.unwrap();
    admin.batch_execute("SELECT pg_reload_conf()").await.unwrap();
}

/// The claim of `user` on one backend, as text (products, quantities, stamps), if any.
async fn claim_on(c: &tokio_postgres::Client, user: UserId) -> Option<String> {
    c.query_opt(
        "SELECT products::text || ' ' || quantities::text || ' ' || stamps::text FROM cart_claims WHERE user_id = $1",
        &[&user.as_uuid()],
    )
    .await
    .unwrap()
    .map(|r| r.get(0))
}

/// The quantity of `user`'s line of `product` on one backend, if there is a line.
async fn quantity_on(c: &tokio_postgres::Client, user: UserId, product: ProductId) -> Option<i32> {
    c.query_opt(
        "SELECT quantity FROM cart_items WHERE user_id = $1 AND product_id = $2",
        &[&user.as_uuid(), &product.as_uuid()],
    )
    .await
    .unwrap()
    .map(|r| r.get(0))
}

/// Waits until `change`, sent through pgpool, waits on the main node (its COMMIT held there): it
/// must not answer first.
async fn until_held<T: std::fmt::Debug>(admin: &tokio_postgres::Client, change: &mut tokio::task::JoinHandle<T>) {
    while waiting(admin).await < 1 {
        assert!(!change.is_finished(), "the main node's COMMIT was not held: {:?}", change.await);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `racing` waits on the main node too (for a lock, or its own COMMIT) or has answered.
async fn until_racing_waits<T>(admin: &tokio_postgres::Client, racing: &tokio::task::JoinHandle<T>) {
    while waiting(admin).await < 2 && !racing.is_finished() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[derive(Clone, Copy, Debug)]
enum Change {
    /// Removes the second of two lines: the claim's arrays would differ between the backends.
    RemoveOneOfTwo,
    /// Removes the only line: the claim would answer a row on one backend and none on the other.
    RemoveTheLast,
    /// Clears a cart of two lines.
    Clear,
}

/// 2 backends and 1 pgpool on ports `base_port`..+9 in a run dir kept on failure, and a migrated
/// store on the pgpool.
async fn topology(base_port: u16) -> (RunDir, Running, PgStore) {
    metrics();
    let name = format!("pg-cart-commit-order-{}", base_port);
    // Removed after the topology in it has stopped; kept with the servers' logs on failure.
    let dir = RunDir::kept_on_failure(&name);
    let topology = Topology::parse(&format!(
        "name = \"{name}\"\n[postgres]\ncount = 2\nbase_port = {}\n\
         [pgpool]\ncount = 1\nbase_port = {}\npcp_base_port = {}\n",
        base_port,
        base_port + 5,
        base_port + 8
    ))
    .unwrap();
    let running = blocking(|| topology.up(dir.path())).expect("up");
    let mut settings = PgSettings::new(running.pgpool_endpoints());
    settings.dbname = SHOP_DB.into();
    settings.pool_size = running.app_pool_size();
    // The sessions' statement timeout is 2 connect timeouts: long enough for a change to wait for
    // the lock while the test holds another change's COMMIT on the main node.
    settings.connect_timeout_ms = 20_000;
    let store = PgStore::connect(&settings).await.expect("connect");
    store.migrate().await.unwrap();
    (dir, running, store)
}

/// The pgpool stayed in rotation, ended no session for a kind mismatch, and the backends are
/// identical; then the topology stops.
async fn healthy_and_identical(dir: &RunDir, running: Running, store: &PgStore) {
    assert_eq!(store.healthy_endpoints(), running.pgpool_endpoints(), "the pgpool stays in rotation");
    let log = std::fs::read_to_string(dir.path().join("pgpool0/pgpool.log")).expect("pgpool 0's log");
    assert!(!log.contains("kind mismatch"), "pgpool ended no session for a kind mismatch");
    let report = blocking(|| running.check_consistency()).expect("check");
    assert!(report.is_identical(), "{report}");
    blocking(|| running.down()).expect("down");
}

async fn claim_racing(change: Change, base_port: u16) {
    let (dir, running, store) = topology(base_port).await;
    let backends = running.backend_endpoints();
    let s = store.stores();
    let u = user(&format!("buyer-{}@example.com", uuid::Uuid::now_v7().simple()));
    s.users.insert(&u, &token()).await.unwrap();
    let p = product_ids(2);
    s.carts.add(u.id, p[0], qty(2)).await.unwrap();
    if !matches!(change, Change::RemoveTheLast) {
        s.carts.add(u.id, p[1], qty(1)).await.unwrap();
    }
    let gone = if matches!(change, Change::RemoveOneOfTwo) { p[1] } else { p[0] };
    let left = match change {
        Change::RemoveOneOfTwo => Cart::new(u.id, vec![CartItem { product_id: p[0], quantity: qty(2) }]),
        _ => Cart::empty(u.id),
    };

    let (main, other) = (direct(&backends[0], "postgres").await, direct(&backends[1], "postgres").await);
    let admin = direct(&backends[0], "shopbench_admin").await;
    hold_commits(&backends[0], &admin).await;

    // The change through pgpool: committed on backend 1, its COMMIT held on the main node.
    let mut changing = tokio::spawn({
        let (carts, user) = (s.carts.clone(), u.id);
        async move {
            match change {
                Change::Clear => carts.clear(user).await.map(|()| None),
                _ => carts.remove(user, gone).await,
            }
        }
    });
    until_held(&admin, &mut changing).await;
    assert_eq!(quantity_on(&other, u.id, gone).await, None, "committed on backend 1");
    assert!(quantity_on(&main, u.id, gone).await.is_some(), "not yet on the main node");

    // The checkout's claim meanwhile, until it waits on the main node too (or has answered).
    let key = IdempotencyKey::parse("the-checkout").unwrap();
    let claiming = tokio::spawn({
        let (carts, user, key) = (s.carts.clone(), u.id, key.clone());
        async move { carts.claim(user, &key, Timestamp::from_datetime(chrono::Utc::now())).await }
    });
    until_racing_waits(&admin, &claiming).await;
    release_commits(&admin).await;
    let changed = changing.await.unwrap();
    let claimed = claiming.await.unwrap();

    // The same claim on both backends, and it holds what the cart had after the change.
    let (on_main, on_other) = (claim_on(&main, u.id).await, claim_on(&other, u.id).await);
    assert_eq!(on_main, on_other, "{change:?}: the claim on the main node and on backend 1");
    let held = Claim::Held { cart: left.clone(), fresh: true };
    assert_eq!(claimed.as_ref().ok(), Some(&held), "{change:?}: the claim's answer: {claimed:?}");
    let after = match change {
        Change::Clear => None,
        _ => Some(left),
    };
    assert_eq!(changed.as_ref().ok(), Some(&after), "{change:?}: the change's answer: {changed:?}");
    healthy_and_identical(&dir, running, &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_racing_a_remove_holds_the_same_lines_on_every_backend() {
    claim_racing(Change::RemoveOneOfTwo, 18400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_racing_the_removal_of_the_last_line_keeps_its_session() {
    claim_racing(Change::RemoveTheLast, 18420).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_racing_a_clear_holds_the_same_lines_on_every_backend() {
    claim_racing(Change::Clear, 18440).await;
}

/// The change whose COMMIT the test holds on the main node, and the change of the same line that
/// races it.
#[derive(Clone, Copy, Debug)]
enum Race {
    /// Adds 1 to a line of 2 being removed: the cart must hold 1 after, not 3.
    AddAfterRemove,
    /// Sets a line being removed to 5 (a set does not depend on what it read: 5 either way).
    SetAfterRemove,
    /// Adds 1 to a line of 2 of a cart being cleared: the cart must hold that line at 1 and
    /// nothing else, and the add must answer so.
    AddAfterClear,
}

async fn change_racing(race: Race, base_port: u16) {
    let (dir, running, store) = topology(base_port).await;
    let backends = running.backend_endpoints();
    let s = store.stores();
    let u = user(&format!("buyer-{}@example.com", uuid::Uuid::now_v7().simple()));
    s.users.insert(&u, &token()).await.unwrap();
    let p = product_ids(2);
    s.carts.add(u.id, p[0], qty(2)).await.unwrap();
    s.carts.add(u.id, p[1], qty(1)).await.unwrap();
    let (line, other_line) =
        (CartItem { product_id: p[0], quantity: qty(2) }, CartItem { product_id: p[1], quantity: qty(1) });
    // The cart after the held change, and after the racing one (which waits for the held one).
    let (removed, raced, quantity) = match race {
        Race::AddAfterRemove => (Some(Cart::new(u.id, vec![other_line])), vec![other_line], 1),
        Race::SetAfterRemove => (Some(Cart::new(u.id, vec![other_line])), vec![other_line], 5),
        Race::AddAfterClear => (None, vec![], 1),
    };
    let raced = Cart::new(u.id, [raced, vec![CartItem { product_id: p[0], quantity: qty(quantity) }]].concat());

    let (main, other) = (direct(&backends[0], "postgres").await, direct(&backends[1], "postgres").await);
    let admin = direct(&backends[0], "shopbench_admin").await;
    hold_commits(&backends[0], &admin).await;

    // The remove or clear through pgpool: committed on backend 1, its COMMIT held on the main node.
    let mut held = tokio::spawn({
        let (carts, user) = (s.carts.clone(), u.id);
        async move {
            match race {
                Race::AddAfterClear => carts.clear(user).await.map(|()| None),
                _ => carts.remove(user, line.product_id).await,
            }
        }
    });
    until_held(&admin, &mut held).await;
    assert_eq!(quantity_on(&other, u.id, p[0]).await, None, "committed on backend 1");
    assert_eq!(quantity_on(&main, u.id, p[0]).await, Some(2), "not yet on the main node");

    // The add or set of the same line meanwhile, until it waits on the main node too (for the
    // user's lock, or for the line's) or has answered.
    let racing = tokio::spawn({
        let (carts, user) = (s.carts.clone(), u.id);
        async move {
            match race {
                Race::SetAfterRemove => carts.set(user, line.product_id, qty(quantity)).await,
                _ => carts.add(user, line.product_id, qty(quantity)).await,
            }
        }
    });
    until_racing_waits(&admin, &racing).await;
    release_commits(&admin).await;
    let held = held.await.unwrap();
    let racing = racing.await.unwrap();

    for (name, backend) in [("the main node", &main), ("backend 1", &other)] {
        assert_eq!(
            quantity_on(backend, u.id, p[0]).await,
            Some(quantity as i32),
            "{race:?}: the line on {name} (the removed line came back with its old quantity plus the add?)"
        );
    }
    assert_eq!(held.as_ref().ok(), Some(&removed), "{race:?}: the held change's answer: {held:?}");
    assert_eq!(racing.as_ref().ok(), Some(&raced), "{race:?}: the racing change's answer: {racing:?}");
    assert_eq!(s.carts.get(u.id).await.unwrap(), raced, "{race:?}: the cart read after");
    healthy_and_identical(&dir, running, &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_add_racing_a_remove_of_its_line_does_not_bring_the_old_quantity_back() {
    change_racing(Race::AddAfterRemove, 18460).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_racing_a_remove_of_its_line_writes_its_quantity() {
    change_racing(Race::SetAfterRemove, 18470).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_add_racing_a_clear_leaves_only_its_line() {
    change_racing(Race::AddAfterClear, 18480).await;
}
