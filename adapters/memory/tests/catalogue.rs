//! The shared catalogue contract (adapters/contract) against the in-memory store.

use domain::ports::Catalogue;
use std::sync::Arc;

async fn fresh() -> Arc<dyn Catalogue> {
    adapter_memory::MemoryStore::new().stores().catalogue
}

adapter_contract::catalogue_contract!(fresh);
