//! The shopper and merchant plans, run through the real use cases (domain::Shop) on the in-memory
//! store: every planned request must be one the shop accepts, so a run without faults has no
//! failures. (The PostgreSQL floor runs the same code; the matrix exercises it on real servers.)

use bench::floor::{self, FloorSpec};
use bench::load::ops::Op;
use bench::load::plan::{seed_catalogue, Action, JourneyConfig, Person, Shopper};
use domain::models::ApiToken;
use domain::ports::SystemClock;
use domain::Shop;
use std::sync::Arc;
use std::time::Duration;

const ADMIN: &str = "admin-test-token";

async fn shop_with_catalogue(products: usize) -> Shop {
    let store = adapter_memory::MemoryStore::new();
    let shop = Shop::new(store.stores(), Arc::new(SystemClock), &ApiToken::from_client(ADMIN));
    let cfg = JourneyConfig::default();
    for spec in seed_catalogue(products, &cfg.categories) {
        floor::execute(&shop, Some(ADMIN), &Action::CreateProduct(spec)).await.expect("seeding");
    }
    shop
}

#[tokio::test]
async fn every_planned_shopper_request_is_accepted() {
    let shop = shop_with_catalogue(60).await;
    let mut person = Person::Shopper(Shopper::new(Arc::new(JourneyConfig::default()), 5));
    let mut seen = std::collections::BTreeMap::<Op, usize>::new();
    for _ in 0..2000 {
        let action = person.next_action();
        let token = person.token().map(str::to_owned);
        let outcome =
            floor::execute(&shop, token.as_deref(), &action).await.unwrap_or_else(|e| panic!("{action:?} failed: {e}"));
        *seen.entry(action.op()).or_default() += 1;
        person.apply(action.op(), outcome);
    }
    for op in Op::ALL.iter().filter(|o| !matches!(o, Op::CreateProduct | Op::EditProduct)) {
        assert!(seen.get(op).copied().unwrap_or(0) > 0, "{op} never ran: {seen:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_floor_run_measures_every_operation_without_failures() {
    let shop = shop_with_catalogue(100).await;
    let spec = FloorSpec {
        users: 8,
        warmup: Duration::from_millis(200),
        secs: Duration::from_secs(1),
        think: (Duration::ZERO, Duration::ZERO),
        merchant_think: (Duration::from_millis(5), Duration::from_millis(10)),
        shopper_weight: 3,
        merchant_weight: 1,
        journey: Arc::new(JourneyConfig::default()),
        admin_token: ADMIN.into(),
        seed: 11,
        cpu_groups: vec![],
    };
    // Twice with the same seed on the same store, as the matrix does (HTTP runs, then the
    // floor): the same plans, but never an email already taken.
    for run in 1..=2 {
        let (ops, _) = floor::run(shop.clone(), &spec, None).await.unwrap();
        assert_eq!(ops.len(), Op::ALL.len());
        for o in &ops {
            assert_eq!(o.failures, 0, "run {run}, {}: {:?}", o.op, o.failure_reasons);
            assert!(o.ok > 0, "{} never ran in the window", o.op);
            assert!(o.mean_ms.unwrap() < 50.0, "{}: in-memory calls are fast: {:?}", o.op, o.mean_ms);
        }
    }
}
