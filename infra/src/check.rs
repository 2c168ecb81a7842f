//! The consistency check: the same databases, tables, row counts and contents on every backend.
//!
//! Each backend is read directly (not through pgpool). A table's checksum is the md5 of its rows'
//! text, one per line, ordered by primary key (by the whole row when it has none), read by one
//! query per table without parallel workers. Databases and tables are matched by name. Writes
//! through pgpool are paused on the main node while the backends are read (see [`check`]), so it
//! may run while clients write.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use anyhow::Result;
use endpoints::HostPort;
use serde::{Deserialize, Serialize};

use crate::psql;
use crate::rejoin::WritePause;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSum {
    pub database: String,
    pub table: String,
    pub rows: u64,
    pub md5: String,
}

/// What was compared, and the first difference found (None = identical).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// `host:port` of each backend, by backend index.
    pub backends: Vec<String>,
    /// Backend 0's tables (the reference).
    pub tables: Vec<TableSum>,
    pub difference: Option<Difference>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Difference {
    Unreachable { backend: usize, error: String },
    Databases { backend: usize, reference: Vec<String>, found: Vec<String> },
    Tables { backend: usize, database: String, reference: Vec<String>, found: Vec<String> },
    RowCount { backend: usize, database: String, table: String, reference_rows: u64, rows: u64 },
    Checksum { backend: usize, database: String, table: String, rows: u64, reference_md5: String, md5: String },
}

impl Difference {
    /// The backend that differs from backend 0.
    pub fn backend(&self) -> usize {
        match self {
            Difference::Unreachable { backend, .. }
            | Difference::Databases { backend, .. }
            | Difference::Tables { backend, .. }
            | Difference::RowCount { backend, .. }
            | Difference::Checksum { backend, .. } => *backend,
        }
    }
}

impl Report {
    pub fn is_identical(&self) -> bool {
        self.difference.is_none()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.backends.len();
        match &self.difference {
            None => {
                let rows: u64 = self.tables.iter().map(|t| t.rows).sum();
                write!(f, "identical: {n} backends, {} tables, {rows} rows in all", self.tables.len())
            }
            Some(d) => {
                let b = |i: &usize| format!("postgres {i} ({})", self.backends[*i]);
                match d {
                    Difference::Unreachable { backend, error } => {
                        write!(f, "DIFFERENT: cannot read {}: {error}", b(backend))
                    }
                    Difference::Databases { backend, reference, found } => {
                        write!(f, "DIFFERENT: databases on {}: {found:?}; on {}: {reference:?}", b(backend), b(&0))
                    }
                    Difference::Tables { backend, database, reference, found } => write!(
                        f,
                        "DIFFERENT: tables of database {database} on {}: {found:?}; on {}: {reference:?}",
                        b(backend),
                        b(&0)
                    ),
                    Difference::RowCount { backend, database, table, reference_rows, rows } => write!(
                        f,
                        "DIFFERENT: table {database}.{table}: {} has {rows} rows, {} has {reference_rows}",
                        b(backend),
                        b(&0)
                    ),
                    Difference::Checksum { backend, database, table, rows, reference_md5, md5 } => write!(
                        f,
                        "DIFFERENT: table {database}.{table}: same {rows} rows but different content: \
                         md5 {md5} on {}, {reference_md5} on {}",
                        b(backend),
                        b(&0)
                    ),
                }
            }
        }
    }
}

const DATABASES: &str =
    "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname COLLATE \"C\"";

// Each public table with its primary key columns ('' when it has none).
const TABLES: &str = "SELECT c.relname, coalesce((
    SELECT string_agg('t.' || quote_ident(a.attname), ', ' ORDER BY array_position(i.indkey, a.attnum))
    FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
    WHERE i.indrelid = c.oid AND i.indisprimary), '')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
  ORDER BY c.relname COLLATE \"C\"";

/// One backend's databases, each with its tables by name.
type Sums = BTreeMap<String, BTreeMap<String, TableSum>>;

/// Makes every read a plain sequential scan: no Parallel Append or Gather whose workers could hand
/// rows over in another order (string_agg has its own ORDER BY as well).
const NO_PARALLEL: &str = "SET max_parallel_workers_per_gather = 0";

/// Databases and table sums of one backend: one psql session per database, one query per table.
fn read_backend(host: &str, port: u16, deadline: Instant) -> Result<Sums> {
    let left = || {
        let left = deadline.saturating_duration_since(Instant::now());
        anyhow::ensure!(!left.is_zero(), "the check's {READ_LIMIT:?} for reading (writes paused meanwhile) ran out");
        Ok(left)
    };
    let mut out = Sums::new();
    for db in psql::admin_query_timeout(host, port, "postgres", DATABASES, left()?)?.lines() {
        let tables = psql::admin_query_timeout(host, port, db, TABLES, left()?)?;
        let mut statements = vec![NO_PARALLEL.to_string()];
        for (name, pk) in tables.lines().filter_map(|l| l.split_once('|')) {
            let order = if pk.is_empty() { "t::text".to_string() } else { pk.to_string() };
            statements.push(format!(
                "SELECT {}, count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY {order}), '')) \
                 FROM public.{} t",
                psql::literal(name),
                quote_ident(name)
            ));
        }
        let mut sums = BTreeMap::new();
        if statements.len() > 1 {
            let rows = psql::admin_query_each(host, port, db, &statements, left()?)?;
            for line in rows.lines() {
                // md5 and count hold no '|'; the table name might
                let mut f = line.rsplitn(3, '|');
                if let (Some(md5), Some(count), Some(table)) = (f.next(), f.next(), f.next()) {
                    let sum = TableSum {
                        database: db.to_string(),
                        table: table.to_string(),
                        rows: count.parse()?,
                        md5: md5.to_string(),
                    };
                    sums.insert(table.to_string(), sum);
                }
            }
        }
        out.insert(db.to_string(), sums);
    }
    Ok(out)
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// How often taking the write pause is tried (a lock request that deadlocks with a client's
/// transaction is cancelled by PostgreSQL; the next try usually gets through).
const PAUSE_ATTEMPTS: usize = 3;

/// Reading every backend may take this long, writes paused meanwhile (a hung backend must not hold
/// them for good).
const READ_LIMIT: Duration = Duration::from_secs(60);

/// Compares every backend with backend 0 and reports the first difference.
///
/// Valid while clients write through pgpool: writes are paused for the whole read. Backend 0 is
/// pgpool's main node while every backend is attached, and pgpool runs each write there first and
/// commits it there last; so while one session per database holds `LOCK TABLE <every table> IN
/// EXCLUSIVE MODE` on backend 0 (the rejoin's pause, reads go on), every write that got its lock
/// before has committed on every node and every later one waits, committed nowhere. The writes
/// are held as long as reading all backends takes (0.3-0.5 s for 3k rows in tests/check.rs; at most
/// [`READ_LIMIT`], then the check fails naming the backend it was reading). If backend
/// 0 is not the main node (a pgpool has detached it), the check tells so anyway: backend 0 then
/// misses writes. Not covered: databases or tables created during the check.
pub fn check(backends: &[HostPort]) -> Report {
    let addrs: Vec<String> = backends.iter().map(HostPort::to_string).collect();
    let mut report = Report { backends: addrs, tables: vec![], difference: None };
    let Some(HostPort { host: main_host, port: main_port }) = backends.first() else { return report };
    let mut pause = Err(anyhow::anyhow!("not tried"));
    for _ in 0..PAUSE_ATTEMPTS {
        pause = WritePause::start(main_host, *main_port);
        if pause.is_ok() || !crate::process::tcp_accepts(main_host, *main_port) {
            break;
        }
    }
    let pause = match pause {
        Ok(p) => p,
        Err(e) => {
            let error = format!("cannot pause writes on it: {e:#}");
            report.difference = Some(Difference::Unreachable { backend: 0, error });
            return report;
        }
    };
    let mut reads = Vec::new();
    let deadline = Instant::now() + READ_LIMIT;
    for (i, HostPort { host, port }) in backends.iter().enumerate() {
        match read_backend(host, *port, deadline) {
            Ok(r) => reads.push(r),
            Err(e) => {
                report.difference = Some(Difference::Unreachable { backend: i, error: format!("{e:#}") });
                return report;
            }
        }
    }
    if let Err(e) = pause.release() {
        eprintln!("check: ending the write pause: {e:#}");
    }
    let Some(reference) = reads.first() else { return report };
    report.tables = reference.values().flat_map(|t| t.values().cloned()).collect();
    report.difference = reads.iter().enumerate().skip(1).find_map(|(i, r)| compare(reference, r, i));
    report
}

/// The first difference of `other` from `reference`, databases and tables matched by name.
fn compare(reference: &Sums, other: &Sums, backend: usize) -> Option<Difference> {
    let keys = |m: &Sums| m.keys().cloned().collect::<Vec<_>>();
    if keys(reference) != keys(other) {
        return Some(Difference::Databases { backend, reference: keys(reference), found: keys(other) });
    }
    for (db, ref_tables) in reference {
        let tables = &other[db];
        let tnames = |t: &BTreeMap<String, TableSum>| t.keys().cloned().collect::<Vec<_>>();
        if tnames(ref_tables) != tnames(tables) {
            return Some(Difference::Tables {
                backend,
                database: db.clone(),
                reference: tnames(ref_tables),
                found: tnames(tables),
            });
        }
        for (name, a) in ref_tables {
            let b = &tables[name];
            if a.rows != b.rows {
                return Some(Difference::RowCount {
                    backend,
                    database: db.clone(),
                    table: name.clone(),
                    reference_rows: a.rows,
                    rows: b.rows,
                });
            }
            if a.md5 != b.md5 {
                return Some(Difference::Checksum {
                    backend,
                    database: db.clone(),
                    table: name.clone(),
                    rows: b.rows,
                    reference_md5: a.md5.clone(),
                    md5: b.md5.clone(),
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(table: &str, rows: u64, md5: &str) -> TableSum {
        TableSum { database: "shop".into(), table: table.into(), rows, md5: md5.into() }
    }

    fn backend(dbs: &[(&str, Vec<TableSum>)]) -> Sums {
        dbs.iter()
            .map(|(db, tables)| (db.to_string(), tables.iter().map(|t| (t.table.clone(), t.clone())).collect()))
            .collect()
    }

    #[test]
    fn names_the_first_difference() {
        let a = backend(&[("shop", vec![sum("orders", 2, "aa"), sum("users", 3, "bb")])]);
        let same = a.clone();
        assert_eq!(compare(&a, &same, 1), None);
        let fewer = backend(&[("shop", vec![sum("orders", 2, "aa"), sum("users", 2, "cc")])]);
        assert_eq!(
            compare(&a, &fewer, 1),
            Some(Difference::RowCount {
                backend: 1,
                database: "shop".into(),
                table: "users".into(),
                reference_rows: 3,
                rows: 2
            })
        );
        let changed = backend(&[("shop", vec![sum("orders", 2, "xx"), sum("users", 3, "bb")])]);
        assert!(
            matches!(compare(&a, &changed, 2), Some(Difference::Checksum { backend: 2, ref table, .. }) if table == "orders")
        );
        let extra_db = backend(&[("shop", vec![sum("orders", 2, "aa"), sum("users", 3, "bb")]), ("test_x", vec![])]);
        assert!(matches!(compare(&a, &extra_db, 1), Some(Difference::Databases { .. })));
        let other_table = backend(&[("shop", vec![sum("orders", 2, "aa"), sum("userz", 3, "bb")])]);
        assert!(matches!(compare(&a, &other_table, 1), Some(Difference::Tables { .. })));
    }

    /// Rows come back in whatever order the server sent them (a Parallel Append of the old single
    /// query mixed them): tables are matched by name, never by position.
    #[test]
    fn tables_are_compared_by_name_whatever_their_order() {
        let a = backend(&[("shop", vec![sum("orders", 2, "aa"), sum("users", 3, "bb"), sum("carts", 0, "cc")])]);
        let b = backend(&[("shop", vec![sum("carts", 0, "cc"), sum("users", 3, "bb"), sum("orders", 2, "aa")])]);
        assert_eq!(compare(&a, &b, 1), None);
        // the same counts and sums under swapped names is a difference, named by its table
        let swapped = backend(&[("shop", vec![sum("orders", 3, "bb"), sum("users", 2, "aa"), sum("carts", 0, "cc")])]);
        assert!(
            matches!(compare(&a, &swapped, 1), Some(Difference::RowCount { ref table, reference_rows: 2, rows: 3, .. }) if table == "orders"),
            "{:?}",
            compare(&a, &swapped, 1)
        );
    }
}
