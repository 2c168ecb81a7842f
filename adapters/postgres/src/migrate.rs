//! Versioned schema migrations, embedded in the binary and applied in order at start-up.
//!
//! Safe when several instances start at once, also through pgpool-II native replication:
//! everything runs in one transaction that first takes `LOCK TABLE schema_migrations IN
//! EXCLUSIVE MODE`. pgpool sends LOCK (a write) to every backend, main node first, so the second
//! instance waits there and then finds the versions already applied. A session-level
//! `pg_advisory_lock` is avoided: it is a SELECT of a volatile function, whose routing depends
//! on pgpool's function lists, and it outlives the transaction in pgpool's pooled sessions.

use crate::cluster::{with_conn, Cluster, Conn, DbError};
use tokio_postgres::error::SqlState;

/// (version, name, SQL). Append only; never edit an applied migration.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (2, "cart_claims", include_str!("../migrations/0002_cart_claims.sql")),
];

const EXISTS: &str = "SELECT to_regclass('schema_migrations') IS NOT NULL";
/// Deliberately without IF NOT EXISTS: through pgpool, two instances racing to create it with
/// IF NOT EXISTS got an error on the main node (the loser waits for the winner's catalogue row)
/// but a NOTICE and success on the other, whose COMMIT had already arrived; pgpool sees the
/// mismatch ("kind mismatch among backends") and kills the session. Plain CREATE fails for the
/// loser on every backend alike.
const CREATE_TABLE: &str = "CREATE TABLE schema_migrations (\
    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)";

/// The statements of a migration file: whole-line `--` comments dropped, split at `;`.
/// Sent one by one: pgpool-II sends a multi-statement query to the main node only.
pub(crate) fn statements(sql: &str) -> Vec<String> {
    let code: String = sql.lines().filter(|l| !l.trim_start().starts_with("--")).map(|l| format!("{l}\n")).collect();
    code.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

pub(crate) async fn migrate(cluster: &Cluster) -> anyhow::Result<()> {
    let applied = with_conn!(cluster, "migrate", |c, _retries| migrate_once(&mut c).await)?;
    for (version, name) in applied {
        tracing::info!(version, name, "applied postgres migration");
    }
    Ok(())
}

async fn migrate_once(c: &mut Conn) -> Result<Vec<(i32, &'static str)>, DbError> {
    let (client, _) = c.parts();
    let exists: bool = client.query_one(EXISTS, &[]).await?.get(0);
    if !exists {
        if let Err(e) = client.batch_execute(CREATE_TABLE).await {
            // Another instance created it meanwhile. The loser of the race may trip over the
            // table's row type in pg_type first (42710 duplicate_object, seen in CI).
            let raced = matches!(e.code(), Some(c) if *c == SqlState::UNIQUE_VIOLATION
                || *c == SqlState::DUPLICATE_TABLE
                || *c == SqlState::DUPLICATE_OBJECT);
            if !raced {
                return Err(e.into());
            }
        }
    }
    let tx = client.transaction().await?;
    // Another instance migrating holds the lock for as long as its migrations take: wait for it
    // (bounded by the attempt's limit, then retried), not for the session's statement timeout
    // meant for a user's row lock (cluster.rs, `LOCK_WAIT_TIMEOUTS`), whose error is final.
    tx.batch_execute("SET LOCAL statement_timeout = 0").await?;
    tx.batch_execute("LOCK TABLE schema_migrations IN EXCLUSIVE MODE").await?;
    let done: Vec<i32> =
        tx.query("SELECT version FROM schema_migrations", &[]).await?.iter().map(|r| r.get(0)).collect();
    let mut applied = Vec::new();
    for &(version, name, sql) in MIGRATIONS {
        if done.contains(&version) {
            continue;
        }
        for statement in statements(sql) {
            tx.batch_execute(&statement).await?;
        }
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[&version, &name, &chrono::Utc::now()],
        )
        .await?;
        applied.push((version, name));
    }
    if let Some(newer) = done.iter().filter(|v| !MIGRATIONS.iter().any(|m| m.0 == **v)).max() {
        tracing::warn!(version = newer, "the database has a migration this build does not know");
    }
    tx.commit().await?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_split_into_single_statements() {
        let s = statements(MIGRATIONS[0].2);
        assert!(s.len() >= 8, "{s:?}");
        assert!(s.iter().all(|st| !st.contains(';') && !st.contains("--")));
        assert!(s[0].starts_with("CREATE TABLE users"));
    }

    #[test]
    fn migrations_are_numbered_in_order_and_never_evaluate_per_backend_values() {
        for (i, (v, _, sql)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*v, i as i32 + 1);
            let lower = statements(sql).join("\n").to_lowercase();
            for banned in ["now()", "random()", "gen_random_uuid", "serial", "identity", "clock_timestamp", "default "]
            {
                assert!(!lower.contains(banned), "migration {v} uses {banned}");
            }
        }
    }
}
