//! Where the servers' executables are; a missing one points at scripts/install.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// Finds `name` in PostgreSQL 15's bin dir (Debian does not put it on PATH), /usr/sbin, then PATH.
pub fn tool(name: &str) -> Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = vec![PG_BIN.into(), "/usr/sbin".into(), "/usr/bin".into()];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    for d in dirs {
        let p = d.join(name);
        if is_executable(&p) {
            return Ok(p);
        }
    }
    bail!("{name} not found (package {}): run scripts/install", package_of(name))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn package_of(tool: &str) -> &'static str {
    match tool {
        "initdb" | "postgres" | "pg_ctl" => "postgresql-15",
        "psql" | "pg_isready" | "pg_basebackup" => "postgresql-client-15",
        "nginx" => "nginx",
        "prometheus" | "promtool" => "prometheus",
        "prometheus-postgres-exporter" => "prometheus-postgres-exporter",
        "prometheus-redis-exporter" => "prometheus-redis-exporter",
        "prometheus-nginx-exporter" => "prometheus-nginx-exporter",
        "redis-server" => "redis-server",
        "redis-sentinel" => "redis-sentinel",
        t if t.starts_with("pcp_") || t.starts_with("pg") => "pgpool2",
        _ => "see scripts/install",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_points_at_scripts_install() {
        let err = tool("pcp_no_such_tool").unwrap_err().to_string();
        assert!(err.contains("pcp_no_such_tool not found (package pgpool2): run scripts/install"), "{err}");
        assert!(tool("psql").is_ok(), "psql is installed by scripts/install");
    }
}
