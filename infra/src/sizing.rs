//! Connection sizing derived from the instance counts, so that no layer queues silently and the
//! backends never refuse pgpool's connections.
//!
//! With P pgpools and W web instances (each web instance keeps a pool to EVERY pgpool):
//! - app pool per endpoint   S = max(2, ceil(8 / P))   ~8 connections per web instance in all:
//!   a 2-worker actix instance on 2 cores gains nothing from more, and fewer would queue requests.
//! - num_init_children       N = max(W*S, 8) + 4       every web pool on this pgpool fits in its
//!   children (pgpool queues extra clients silently), and so do the 8 clients the bench's
//!   `pgbench -S` and storage floor send through one pgpool once the web tier is stopped (with
//!   P=2, W=1 the web pools alone are 4: pgbench's 8th client, behind the exporter's session,
//!   waited for a child until its connect timeout); + 4 for psql, migrations, status, tests and
//!   the pgpool exporter's one session (docs/observability.md).
//! - max_pool                  = 2                     each child caches `shop` and one other
//!   database (tests' fresh databases) without reconnect churn.
//! - superuser_reserved_connections R = P + 6   slots only the superuser (`shopbench_admin`) may
//!   take: 1 health check per pgpool and 6 for infra's tools (check, the rejoin's locks,
//!   pg_basebackup's 2). Clients (the app, tests, psql through pgpool, outside sessions) log in
//!   as `postgres`, which is no superuser in a topology with pgpool, so however many of them
//!   connect, a full backend still answers pgpool's health check and is not failed over.
//! - backend max_connections C = P * N * max_pool + 10 + R
//!   every pgpool child may hold max_pool connections to every backend, + 10 direct client
//!   sessions, + the superuser's reserve.
//! - without pgpool (P = 0: direct clients such as the test suite, which size their own pools)
//!   C = 200.

use serde::{Deserialize, Serialize};

use crate::topology::{Kind, Topology};

pub const MAX_POOL: u32 = 2;
const TOOL_SLOTS: u32 = 4;
const DIRECT_SESSIONS: u32 = 10;
/// PostgreSQL's default reserve, kept without pgpool (the `postgres` role is a superuser there).
const SUPERUSER_RESERVED_DEFAULT: u32 = 3;
const SUPERUSER_TOOL_SLOTS: u32 = 6;
const CONNECTIONS_PER_WEB: u32 = 8;
/// Clients a tool sends through one pgpool with the web tier stopped (the bench's `pgbench -S`
/// at its c=8, the storage floor).
const DIRECT_CLIENTS: u32 = 8;
const DIRECT_MAX_CONNECTIONS: u32 = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sizing {
    /// The app's `postgres.pool_size` (per pgpool endpoint).
    pub app_pool_size: u32,
    pub num_init_children: u32,
    pub max_pool: u32,
    /// Each backend's `max_connections`.
    pub max_connections: u32,
    /// Each backend's `superuser_reserved_connections`.
    #[serde(default = "default_reserved")]
    pub superuser_reserved: u32,
}

fn default_reserved() -> u32 {
    SUPERUSER_RESERVED_DEFAULT
}

impl Sizing {
    pub fn derive(t: &Topology) -> Sizing {
        let p = t.count(Kind::Pgpool).max(1) as u32;
        let w = t.count(Kind::Web).max(1) as u32;
        let app_pool_size = CONNECTIONS_PER_WEB.div_ceil(p).max(2);
        let num_init_children = (w * app_pool_size).max(DIRECT_CLIENTS) + TOOL_SLOTS;
        let (max_connections, superuser_reserved) = if t.count(Kind::Pgpool) == 0 {
            (DIRECT_MAX_CONNECTIONS, SUPERUSER_RESERVED_DEFAULT)
        } else {
            let reserved = p + SUPERUSER_TOOL_SLOTS;
            (p * num_init_children * MAX_POOL + DIRECT_SESSIONS + reserved, reserved)
        };
        Sizing { app_pool_size, num_init_children, max_pool: MAX_POOL, max_connections, superuser_reserved }
    }

    /// One line per derived number, with its formula, for `up` to print.
    pub fn explain(&self, t: &Topology) -> String {
        let p = t.count(Kind::Pgpool);
        let w = t.count(Kind::Web);
        format!(
            "sizing (P={p} pgpools, W={w} web):\n  \
             app pool_size per pgpool   S = max(2, ceil(8/P))          = {}\n  \
             pgpool num_init_children   N = max(W*S, 8) + 4            = {}\n  \
             pgpool max_pool                                           = {}\n  \
             superuser reserved slots   R = P + 6                      = {}\n  \
             backend max_connections    C = P*N*max_pool + 10 + R      = {} (200 without pgpool)",
            self.app_pool_size, self.num_init_children, self.max_pool, self.superuser_reserved, self.max_connections
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Overrides;

    fn topo(pgpool: usize, web: usize) -> Topology {
        let t = Topology::parse(include_str!("../topologies/default.toml")).unwrap();
        t.with_overrides(&Overrides { pgpool: Some(pgpool), web: Some(web), nginx: Some(0), ..Default::default() })
            .unwrap()
    }

    #[test]
    fn pgpool_connections_fit_under_max_connections() {
        for p in 1..=4 {
            for w in 0..=4 {
                let t = topo(p, w);
                let s = Sizing::derive(&t);
                let clients_per_pgpool = w.max(1) as u32 * s.app_pool_size;
                assert!(clients_per_pgpool < s.num_init_children, "P={p} W={w}: {s:?}");
                // pgbench's or the floor's clients fit beside the tool slots
                assert!(DIRECT_CLIENTS + TOOL_SLOTS <= s.num_init_children, "P={p} W={w}: {s:?}");
                // the clients' share (everything but the reserve) holds every pgpool child's connections
                let pgpool_side = p as u32 * s.num_init_children * s.max_pool;
                assert!(pgpool_side < s.max_connections - s.superuser_reserved, "P={p} W={w}: {s:?}");
                // the reserve holds every pgpool's health check and the tools
                assert!(s.superuser_reserved >= p as u32 + SUPERUSER_TOOL_SLOTS, "P={p} W={w}: {s:?}");
            }
        }
    }

    #[test]
    fn default_topology_numbers() {
        let s = Sizing::derive(&topo(2, 2));
        assert_eq!(
            s,
            Sizing { app_pool_size: 4, num_init_children: 12, max_pool: 2, max_connections: 66, superuser_reserved: 8 }
        );
        // one web instance's pools (4) are fewer than pgbench's clients: the children fit those
        assert_eq!(Sizing::derive(&topo(2, 1)).num_init_children, 12);
    }
}
