//! The API operations the load measures, one row each, named by route pattern so that every id
//! lands in the same row. Each also names the store port calls the use case behind it makes
//! (read from `domain::service`), which is what the storage floor issues without HTTP.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Op {
    ListProducts,
    GetProduct,
    GetCart,
    ListOrders,
    GetOrder,
    SignUp,
    AddItem,
    SetQuantity,
    RemoveItem,
    Checkout,
    PayOrder,
    CreateProduct,
    EditProduct,
}

impl Op {
    /// Every operation, reads first, in the order of tables and charts.
    pub const ALL: [Op; 13] = [
        Op::ListProducts,
        Op::GetProduct,
        Op::GetCart,
        Op::ListOrders,
        Op::GetOrder,
        Op::SignUp,
        Op::AddItem,
        Op::SetQuantity,
        Op::RemoveItem,
        Op::Checkout,
        Op::PayOrder,
        Op::CreateProduct,
        Op::EditProduct,
    ];

    /// The row name: method and route pattern, as Goose reports it.
    pub fn name(self) -> &'static str {
        match self {
            Op::ListProducts => "GET /products",
            Op::GetProduct => "GET /products/{product_id}",
            Op::GetCart => "GET /users/{user_id}/cart",
            Op::ListOrders => "GET /users/{user_id}/orders",
            Op::GetOrder => "GET /users/{user_id}/orders/{order_id}",
            Op::SignUp => "POST /users",
            Op::AddItem => "POST /users/{user_id}/cart/items",
            Op::SetQuantity => "PUT /users/{user_id}/cart/items/{product_id}",
            Op::RemoveItem => "DELETE /users/{user_id}/cart/items/{product_id}",
            Op::Checkout => "POST /users/{user_id}/orders",
            Op::PayOrder => "PATCH /users/{user_id}/orders/{order_id}",
            Op::CreateProduct => "POST /products",
            Op::EditProduct => "PATCH /products/{product_id}",
        }
    }

    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Reads change nothing; they are charted apart from writes.
    pub fn is_read(self) -> bool {
        self.name().starts_with("GET ")
    }

    /// The store port calls the use case makes, in order (the storage floor's mapping).
    /// `users.token_hash` is the access check of a user's route.
    pub fn port_calls(self) -> &'static str {
        match self {
            Op::ListProducts => "catalogue.list",
            Op::GetProduct => "catalogue.get",
            Op::GetCart => "users.token_hash, carts.get",
            Op::ListOrders => "users.token_hash, orders.list_for_user",
            Op::GetOrder => "users.token_hash, orders.get",
            Op::SignUp => "users.insert",
            Op::AddItem => "users.token_hash, catalogue.get, carts.add",
            Op::SetQuantity => "users.token_hash, catalogue.get, carts.set",
            Op::RemoveItem => "users.token_hash, carts.remove",
            Op::Checkout => {
                "users.token_hash, orders.find_by_key, carts.get, catalogue.get_many, orders.insert, carts.clear"
            }
            Op::PayOrder => "users.token_hash, orders.get, orders.set_status",
            Op::CreateProduct => "catalogue.insert",
            Op::EditProduct => "catalogue.get, catalogue.update",
        }
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_route_patterns_and_round_trip() {
        for op in Op::ALL {
            assert_eq!(Op::from_name(op.name()), Some(op));
            assert!(!op.name().contains(char::is_numeric), "{op}: ids belong in patterns");
        }
        let mut names: Vec<_> = Op::ALL.iter().map(|o| o.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Op::ALL.len());
    }

    #[test]
    fn the_readme_documents_every_mapping() {
        let readme = include_str!("../../README.md");
        for op in Op::ALL {
            let row = format!("| `{}` | {} |", op.name(), op.port_calls());
            assert!(readme.contains(&row), "bench/README.md lacks or differs on: {row}");
        }
    }

    #[test]
    fn enum_order_matches_all() {
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(*op as usize, i, "the recorder indexes by discriminant");
        }
    }

    #[test]
    fn reads_come_first_and_are_gets() {
        let reads: Vec<_> = Op::ALL.iter().filter(|o| o.is_read()).collect();
        assert_eq!(reads.len(), 5);
        assert!(Op::ALL[..5].iter().all(|o| o.is_read()));
        assert!(!Op::Checkout.is_read());
    }
}
