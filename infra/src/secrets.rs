//! Passwords made per run for servers that listen off loopback (a topology with `[[hosts]]`):
//! PostgreSQL's superuser and clients' role, which pgpool-II checks and passes on, Redis's and
//! Sentinel's, Cassandra's role `shopbench`, and the web instances' admin token. Kept in the run dir (mode 0600), never printed: `Debug` redacts them.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::psql;

pub const SECRETS_FILE: &str = "secrets.json";
/// libpq's password file of the same passwords (`PGPASSFILE`), for infra's own psql sessions.
pub const PGPASS_FILE: &str = "pgpass";

/// A password; `Debug` shows `<redacted>`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// 24 random bytes from the kernel, hex: no character any config file would need to quote.
    pub fn generate() -> Result<Secret> {
        Ok(Secret(random_hex(24)?))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `n` random bytes from /dev/urandom, as hex.
pub fn random_hex(n: usize) -> Result<String> {
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The run's passwords.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    /// Of the superuser `shopbench_admin` (pgpool's health check, infra's tools).
    pub admin: Secret,
    /// Of the clients' role `postgres` (the app, the tests).
    pub client: Secret,
    /// Every Redis instance's `requirepass` and `masterauth` (the sentinels' `auth-pass`).
    pub redis: Secret,
    /// Every Sentinel's own `requirepass` (and `sentinel-pass`, with which they ask each other).
    pub sentinel: Secret,
    /// Of the Cassandra ring's role `shopbench` (the app, infra's CQL probes).
    pub cassandra: Secret,
    /// The web instances' admin token (the development one is refused off loopback). Absent in
    /// the secrets of a run started before it was made per run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_admin: Option<Secret>,
}

impl Secrets {
    pub fn generate() -> Result<Secrets> {
        Ok(Secrets {
            admin: Secret::generate()?,
            client: Secret::generate()?,
            redis: Secret::generate()?,
            sentinel: Secret::generate()?,
            cassandra: Secret::generate()?,
            web_admin: Some(Secret::generate()?),
        })
    }

    /// Writes [`SECRETS_FILE`] and [`PGPASS_FILE`] into `dir`, both 0600; returns the first's path.
    pub fn save(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join(SECRETS_FILE);
        write_private(&path, &serde_json::to_vec_pretty(self)?)?;
        let pgpass = format!(
            "*:*:*:{}:{}\n*:*:*:{}:{}\n",
            psql::SUPERUSER,
            self.admin.expose(),
            psql::CLIENT_USER,
            self.client.expose()
        );
        write_private(&dir.join(PGPASS_FILE), pgpass.as_bytes())?;
        Ok(path)
    }

    pub fn load(path: &Path) -> Result<Secrets> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
    }
}

/// Creates `path` with mode 0600 before anything is written into it.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_private_random_and_never_debug_printed() {
        let dir = std::env::temp_dir().join(format!("shopbench-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let s = Secrets::generate().unwrap();
        assert_ne!(s.admin, s.client);
        assert_ne!(s.redis, s.sentinel);
        assert_eq!(s.admin.expose().len(), 48);
        let path = s.save(&dir).unwrap();
        assert_eq!(Secrets::load(&path).unwrap(), s);
        for f in [SECRETS_FILE, PGPASS_FILE] {
            assert_eq!(std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777, 0o600, "{f}");
        }
        let debug = format!("{s:?}");
        let web_admin = s.web_admin.as_ref().unwrap();
        assert_ne!(web_admin, &s.admin);
        for secret in [&s.admin, &s.client, &s.redis, &s.sentinel, &s.cassandra, web_admin] {
            assert!(!debug.contains(secret.expose()), "{debug}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
