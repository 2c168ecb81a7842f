//! The shared cart contract (adapters/contract) against the in-memory store, the store of
//! `cargo run` and of the domain tests.

use adapter_contract::carts::CartFixture;
use domain::models::UserId;
use domain::ports::CartRepository;
use std::sync::Arc;

async fn fresh() -> (Arc<dyn CartRepository>, CartFixture) {
    let users = [UserId::from_uuid(uuid::Uuid::now_v7()), UserId::from_uuid(uuid::Uuid::now_v7())];
    (adapter_memory::MemoryStore::new().stores().carts, CartFixture { users })
}

adapter_contract::cart_contract!(fresh);
