//! Integration tests: the whole application over HTTP, against a fresh PostgreSQL database per
//! test (`SHOPBENCH_TEST_PG`, set by scripts/test). One test binary, zero-to-production style.

mod carts;
mod deadline;
mod health;
mod helpers;
mod hostile;
mod http;
mod openapi;
mod orders;
mod paging;
mod products;
mod races;
mod schema;
mod users;
