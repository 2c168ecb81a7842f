//! The shared user and order contracts (adapters/contract) against the in-memory store.

use domain::ports::{OrderRepository, UserRepository};
use std::sync::Arc;

mod users {
    use super::*;
    async fn fresh() -> Arc<dyn UserRepository> {
        adapter_memory::MemoryStore::new().stores().users
    }
    adapter_contract::user_contract!(fresh);
}

mod orders {
    use super::*;
    async fn fresh() -> Arc<dyn OrderRepository> {
        adapter_memory::MemoryStore::new().stores().orders
    }
    adapter_contract::order_contract!(fresh);
}
