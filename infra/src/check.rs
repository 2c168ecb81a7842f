//! The consistency check: the same databases, tables, row counts and contents on every backend.
//!
//! Each backend is read directly (not through pgpool). A table's checksum is the md5 of its rows'
//! text, one per line, ordered by primary key (by the whole row when it has none). Run it while
//! writes are paused: a write in flight shows up as a difference.

use std::fmt;

use anyhow::Result;

use crate::psql;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSum {
    pub database: String,
    pub table: String,
    pub rows: u64,
    pub md5: String,
}

/// What was compared, and the first difference found (None = identical).
#[derive(Clone, Debug)]
pub struct Report {
    /// `host:port` of each backend, by backend index.
    pub backends: Vec<String>,
    /// Backend 0's tables (the reference).
    pub tables: Vec<TableSum>,
    pub difference: Option<Difference>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
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

/// Databases and table sums of one backend.
fn read_backend(host: &str, port: u16) -> Result<Vec<(String, Vec<TableSum>)>> {
    let mut out = Vec::new();
    for db in psql::query(host, port, "postgres", DATABASES)?.lines() {
        let tables = psql::query(host, port, db, TABLES)?;
        let parts: Vec<String> = tables
            .lines()
            .filter_map(|l| l.split_once('|'))
            .map(|(name, pk)| {
                let order = if pk.is_empty() { "t::text".to_string() } else { pk.to_string() };
                format!(
                    "SELECT {}, count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY {order}), '')) \
                     FROM public.{} t",
                    psql::literal(name),
                    quote_ident(name)
                )
            })
            .collect();
        let mut sums = Vec::new();
        if !parts.is_empty() {
            let rows =
                psql::query_timeout(host, port, db, &parts.join(" UNION ALL "), std::time::Duration::from_secs(600))?;
            for line in rows.lines() {
                let f: Vec<&str> = line.split('|').collect();
                if let [table, count, md5] = f[..] {
                    sums.push(TableSum {
                        database: db.to_string(),
                        table: table.to_string(),
                        rows: count.parse()?,
                        md5: md5.to_string(),
                    });
                }
            }
        }
        out.push((db.to_string(), sums));
    }
    Ok(out)
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Compares every backend with backend 0 and reports the first difference.
pub fn check(backends: &[(String, u16)]) -> Report {
    let addrs: Vec<String> = backends.iter().map(|(h, p)| format!("{h}:{p}")).collect();
    let mut report = Report { backends: addrs, tables: vec![], difference: None };
    let mut reads = Vec::new();
    for (i, (host, port)) in backends.iter().enumerate() {
        match read_backend(host, *port) {
            Ok(r) => reads.push(r),
            Err(e) => {
                report.difference = Some(Difference::Unreachable { backend: i, error: format!("{e:#}") });
                return report;
            }
        }
    }
    let Some(reference) = reads.first() else { return report };
    report.tables = reference.iter().flat_map(|(_, t)| t.clone()).collect();
    report.difference = reads.iter().enumerate().skip(1).find_map(|(i, r)| compare(reference, r, i));
    report
}

fn compare(
    reference: &[(String, Vec<TableSum>)],
    other: &[(String, Vec<TableSum>)],
    backend: usize,
) -> Option<Difference> {
    let names = |r: &[(String, Vec<TableSum>)]| r.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>();
    if names(reference) != names(other) {
        return Some(Difference::Databases { backend, reference: names(reference), found: names(other) });
    }
    for ((db, ref_tables), (_, tables)) in reference.iter().zip(other) {
        let tnames = |t: &[TableSum]| t.iter().map(|s| s.table.clone()).collect::<Vec<_>>();
        if tnames(ref_tables) != tnames(tables) {
            return Some(Difference::Tables {
                backend,
                database: db.clone(),
                reference: tnames(ref_tables),
                found: tnames(tables),
            });
        }
        for (a, b) in ref_tables.iter().zip(tables) {
            if a.rows != b.rows {
                return Some(Difference::RowCount {
                    backend,
                    database: db.clone(),
                    table: a.table.clone(),
                    reference_rows: a.rows,
                    rows: b.rows,
                });
            }
            if a.md5 != b.md5 {
                return Some(Difference::Checksum {
                    backend,
                    database: db.clone(),
                    table: a.table.clone(),
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

    #[test]
    fn names_the_first_difference() {
        let a = vec![("shop".to_string(), vec![sum("orders", 2, "aa"), sum("users", 3, "bb")])];
        let same = a.clone();
        assert_eq!(compare(&a, &same, 1), None);
        let fewer = vec![("shop".to_string(), vec![sum("orders", 2, "aa"), sum("users", 2, "cc")])];
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
        let changed = vec![("shop".to_string(), vec![sum("orders", 2, "xx"), sum("users", 3, "bb")])];
        assert!(
            matches!(compare(&a, &changed, 2), Some(Difference::Checksum { backend: 2, ref table, .. }) if table == "orders")
        );
        let extra_db = vec![a[0].clone(), ("test_x".to_string(), vec![])];
        assert!(matches!(compare(&a, &extra_db, 1), Some(Difference::Databases { .. })));
    }
}
