//! Shared set-up for the use-case tests: a shop on the in-memory store and a fixed admin token.
#![allow(dead_code)]

use domain::models::*;
use domain::{Credentials, Shop};
use std::sync::Arc;

pub const ADMIN: &str = "admin-secret";

pub fn shop() -> Shop {
    let store = adapter_memory::MemoryStore::new();
    Shop::new(store.stores(), Arc::new(domain::ports::SystemClock), &ApiToken::from_client(ADMIN))
}

pub fn admin() -> Credentials {
    Credentials::Bearer(ApiToken::from_client(ADMIN))
}

pub fn none() -> Credentials {
    Credentials::None
}

pub fn bearer(t: &ApiToken) -> Credentials {
    Credentials::Bearer(t.clone())
}

pub async fn sign_up(shop: &Shop, email: &str) -> (User, ApiToken) {
    let new = NewUser { email: Email::parse(email).unwrap(), name: UserName::parse("Test User").unwrap() };
    shop.sign_up(new).await.unwrap()
}

pub async fn product(shop: &Shop, name: &str, price: i64) -> Product {
    let new = NewProduct {
        name: ProductName::parse(name).unwrap(),
        description: Description::parse("").unwrap(),
        category: Category::parse("tools").unwrap(),
        price: Cents::price(price, "price_cents").unwrap(),
    };
    shop.create_product(&admin(), new).await.unwrap()
}

pub fn qty(n: i64) -> Quantity {
    Quantity::parse(n, "quantity").unwrap()
}

pub fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::parse(k).unwrap()
}
