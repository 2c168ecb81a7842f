//! The storage floor: the same plans as the Goose users, run by as many tasks, but each action
//! goes straight to the use case over the PostgreSQL adapter (same pgpool endpoints), without
//! HTTP, JSON, nginx or actix. Each operation then makes exactly the port calls it makes behind
//! the API (`Op::port_calls`), so full-stack mean minus floor mean is what the HTTP stack costs.

pub mod pgbench;
pub mod redisbench;

use crate::load::ops::Op;
use crate::load::plan::{merchants_among, Action, JourneyConfig, Merchant, Outcome, Person, Shopper};
use crate::load::recorder::Recorder;
use crate::load::Tick;
use crate::measure::cpu::CpuUse;
use crate::report::stats::OpStats;
use domain::models::*;
use domain::{Credentials, DomainError, Shop};
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct FloorSpec {
    pub users: usize,
    pub warmup: Duration,
    pub secs: Duration,
    pub think: (Duration, Duration),
    pub merchant_think: (Duration, Duration),
    pub shopper_weight: usize,
    pub merchant_weight: usize,
    pub journey: Arc<JourneyConfig>,
    pub admin_token: String,
    pub seed: u64,
    /// Components whose CPU use is measured over the window: name and root pids.
    pub cpu_groups: Vec<(String, Vec<u32>)>,
}

/// A short, fixed reason per error kind, like the HTTP status the API would answer.
fn reason(e: &DomainError) -> String {
    match e {
        DomainError::Invalid(_) => "status 422",
        DomainError::NotFound { .. } => "status 404",
        DomainError::Conflict { .. } => "status 409",
        DomainError::Unauthenticated => "status 401",
        DomainError::Forbidden => "status 403",
        DomainError::Unavailable(_) => "status 503",
    }
    .to_string()
}

fn invalid(e: ValidationError) -> String {
    format!("invalid {}", e.field)
}

use domain::ValidationError;

/// Runs one action through the use case, as the HTTP handler would after parsing.
pub async fn execute(shop: &Shop, token: Option<&str>, action: &Action) -> Result<Outcome, String> {
    let creds = match token {
        Some(t) => Credentials::Bearer(ApiToken::from_client(t)),
        None => Credentials::None,
    };
    let cart = |c: Cart| Outcome::Cart {
        items: c.items().iter().map(|i| (i.product_id.as_uuid(), i.quantity.get())).collect(),
    };
    let qty = |q: u32| Quantity::parse(i64::from(q), "quantity").map_err(invalid);
    let e = |e: DomainError| reason(&e);
    Ok(match action {
        Action::SignUp { email, name } => {
            let new =
                NewUser { email: Email::parse(email).map_err(invalid)?, name: UserName::parse(name).map_err(invalid)? };
            let (user, token) = shop.sign_up(new).await.map_err(e)?;
            Outcome::SignedUp { user: user.id.as_uuid(), token: token.as_str().to_string() }
        }
        Action::ListProducts { category, after, limit } => {
            let category = category.as_deref().map(Category::parse).transpose().map_err(invalid)?;
            let page =
                shop.products(category.as_ref(), PageRequest { limit: *limit, after: *after }).await.map_err(e)?;
            Outcome::Page { ids: page.items.iter().map(|p| p.id.as_uuid()).collect(), next: page.next }
        }
        Action::GetProduct { product } => {
            shop.product(ProductId::from_uuid(*product)).await.map_err(e)?;
            Outcome::Done
        }
        Action::GetCart { user } => cart(shop.cart(&creds, UserId::from_uuid(*user)).await.map_err(e)?),
        Action::AddItem { user, product, quantity } => cart(
            shop.add_to_cart(&creds, UserId::from_uuid(*user), ProductId::from_uuid(*product), qty(*quantity)?)
                .await
                .map_err(e)?,
        ),
        Action::SetQuantity { user, product, quantity } => cart(
            shop.set_cart_quantity(&creds, UserId::from_uuid(*user), ProductId::from_uuid(*product), qty(*quantity)?)
                .await
                .map_err(e)?,
        ),
        Action::RemoveItem { user, product } => cart(
            shop.remove_from_cart(&creds, UserId::from_uuid(*user), ProductId::from_uuid(*product)).await.map_err(e)?,
        ),
        Action::Checkout { user, key } => {
            let key = IdempotencyKey::parse(key).map_err(invalid)?;
            let done = shop.checkout(&creds, UserId::from_uuid(*user), key).await.map_err(e)?;
            Outcome::Ordered { order: done.order().id.as_uuid() }
        }
        Action::ListOrders { user } => {
            let page = shop.orders(&creds, UserId::from_uuid(*user), PageRequest::first(20)).await.map_err(e)?;
            Outcome::Orders { ids: page.items.iter().map(|o| o.id.as_uuid()).collect() }
        }
        Action::GetOrder { user, order } => {
            shop.order(&creds, UserId::from_uuid(*user), OrderId::from_uuid(*order)).await.map_err(e)?;
            Outcome::Done
        }
        Action::PayOrder { user, order } => {
            shop.change_order_status(&creds, UserId::from_uuid(*user), OrderId::from_uuid(*order), OrderStatus::Paid)
                .await
                .map_err(e)?;
            Outcome::Done
        }
        Action::CreateProduct(spec) => {
            let new = NewProduct {
                name: ProductName::parse(&spec.name).map_err(invalid)?,
                description: Description::parse(&spec.description).map_err(invalid)?,
                category: Category::parse(&spec.category).map_err(invalid)?,
                price: Cents::price(spec.price_cents, "price_cents").map_err(invalid)?,
            };
            let p = shop.create_product(&creds, new).await.map_err(e)?;
            Outcome::ProductSaved { product: p.id.as_uuid() }
        }
        Action::EditProduct { product, price_cents, description } => {
            let patch = ProductPatch {
                price: Some(Cents::price(*price_cents, "price_cents").map_err(invalid)?),
                description: Some(Description::parse(description).map_err(invalid)?),
                ..Default::default()
            };
            let p = shop.update_product(&creds, ProductId::from_uuid(*product), patch).await.map_err(e)?;
            Outcome::ProductSaved { product: p.id.as_uuid() }
        }
    })
}

/// Runs the floor for `warmup + secs` and returns the numbers of the last `secs`.
pub async fn run(shop: Shop, spec: &FloorSpec, tick: Option<Tick>) -> anyhow::Result<(Vec<OpStats>, Option<CpuUse>)> {
    let t0 = Instant::now();
    let recorder = Arc::new(Recorder::new(t0 + spec.warmup, spec.secs));
    let cpu_probe = crate::load::window_cpu(&recorder, spec.cpu_groups.clone());
    let end = recorder.window_end();
    let merchants = merchants_among(spec.users, spec.shopper_weight, spec.merchant_weight);
    let shop = Arc::new(shop);
    let journey = Arc::new(spec.journey.for_new_run());
    let mut tasks = Vec::with_capacity(spec.users);
    for i in 0..spec.users {
        let seed = spec.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let (mut person, think) = if i < merchants {
            (Person::Merchant(Merchant::new(journey.clone(), spec.admin_token.clone(), seed)), spec.merchant_think)
        } else {
            (Person::Shopper(Shopper::new(journey.clone(), seed)), spec.think)
        };
        let (shop, recorder) = (shop.clone(), recorder.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            while Instant::now() < end && !crate::cancel::is_cancelled() {
                let action = person.next_action();
                let op: Op = action.op();
                let token = person.token().map(str::to_owned);
                let started = Instant::now();
                let outcome = execute(&shop, token.as_deref(), &action).await;
                recorder.record(op, started.elapsed(), outcome.as_ref().map(|_| ()).map_err(Clone::clone));
                person.apply(op, outcome.unwrap_or(Outcome::Failed));
                if think.1 > Duration::ZERO {
                    let ms = rng.gen_range(think.0.as_millis()..=think.1.as_millis()) as u64;
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                } else {
                    // A store that never waits (in-memory) would otherwise keep this worker.
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    let ticker = tick.map(|tick| {
        let recorder = recorder.clone();
        let total = (spec.warmup + spec.secs).as_secs_f64();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                tick(t0.elapsed().as_secs_f64(), total, recorder.counts());
            }
        })
    });
    for t in tasks {
        t.await?;
    }
    if let Some(t) = ticker {
        t.abort();
    }
    Ok((recorder.finish(), cpu_probe.await.ok().flatten()))
}
