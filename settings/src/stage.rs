//! The storage stages and the stores they use.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A store the shop can keep data in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Store {
    Postgres,
    Redis,
    Cassandra,
}

impl Store {
    /// The name the service's `GET /health/ready` and its metrics give the store.
    pub fn name(self) -> &'static str {
        match self {
            Store::Postgres => "postgres",
            Store::Redis => "redis",
            Store::Cassandra => "cassandra",
        }
    }

    /// The product's name, for people ("PostgreSQL").
    pub fn label(self) -> &'static str {
        match self {
            Store::Postgres => "PostgreSQL",
            Store::Redis => "Redis",
            Store::Cassandra => "Cassandra",
        }
    }
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A storage stage: which stores the shop runs on. It is the app's build feature
/// (`stage-pg`, ...), and names matrix and faults files, results folders and web binaries.
/// Spelled "pg", "redis", "cassandra" in files, on command lines and in saved results; another
/// name is refused with the allowed ones ([`UnknownStage`]), in files too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Stage {
    /// Everything in PostgreSQL (through pgpool-II); the app's default build.
    #[default]
    Pg,
    /// The carts in Redis (behind Sentinel), the rest in PostgreSQL.
    Redis,
    /// Also the catalogue in a Cassandra ring; carts in Redis, users and orders in PostgreSQL.
    Cassandra,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Pg, Stage::Redis, Stage::Cassandra];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Pg => "pg",
            Stage::Redis => "redis",
            Stage::Cassandra => "cassandra",
        }
    }

    /// The app's cargo feature that builds this stage.
    pub fn feature(self) -> &'static str {
        match self {
            Stage::Pg => "stage-pg",
            Stage::Redis => "stage-redis",
            Stage::Cassandra => "stage-cassandra",
        }
    }

    /// Every store the stage's service uses (and its topology must have), PostgreSQL first.
    pub fn stores(self) -> &'static [Store] {
        match self {
            Stage::Pg => &[Store::Postgres],
            Stage::Redis => &[Store::Postgres, Store::Redis],
            Stage::Cassandra => &[Store::Postgres, Store::Redis, Store::Cassandra],
        }
    }

    pub fn uses(self, store: Store) -> bool {
        self.stores().contains(&store)
    }

    /// Where the stage keeps the carts.
    pub fn cart_store(self) -> Store {
        match self {
            Stage::Pg => Store::Postgres,
            Stage::Redis | Stage::Cassandra => Store::Redis,
        }
    }

    /// Where the stage keeps the catalogue.
    pub fn catalogue_store(self) -> Store {
        match self {
            Stage::Pg | Stage::Redis => Store::Postgres,
            Stage::Cassandra => Store::Cassandra,
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A stage name that is none of [`Stage::ALL`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownStage(pub String);

impl fmt::Display for UnknownStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Stage::ALL.iter().map(|s| s.name()).collect();
        write!(f, "unknown stage {:?}: one of {}", self.0, names.join(", "))
    }
}

impl std::error::Error for UnknownStage {}

impl FromStr for Stage {
    type Err = UnknownStage;

    fn from_str(s: &str) -> Result<Stage, UnknownStage> {
        Stage::ALL.into_iter().find(|stage| stage.name() == s).ok_or_else(|| UnknownStage(s.to_string()))
    }
}

impl TryFrom<String> for Stage {
    type Error = UnknownStage;

    fn try_from(s: String) -> Result<Stage, UnknownStage> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_keep_their_spellings_in_text_and_json() {
        for (stage, name) in [(Stage::Pg, "pg"), (Stage::Redis, "redis"), (Stage::Cassandra, "cassandra")] {
            assert_eq!(stage.to_string(), name);
            assert_eq!(name.parse::<Stage>(), Ok(stage));
            assert_eq!(serde_json::to_string(&stage).unwrap(), format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<Stage>(&format!("\"{name}\"")).unwrap(), stage);
        }
    }

    #[test]
    fn an_unknown_stage_is_refused_with_the_allowed_names() {
        let e = "postgres".parse::<Stage>().unwrap_err();
        assert_eq!(e.to_string(), "unknown stage \"postgres\": one of pg, redis, cassandra");
        assert!("PG".parse::<Stage>().is_err() && "".parse::<Stage>().is_err());
        let e = serde_json::from_str::<Stage>("\"mongo\"").unwrap_err().to_string();
        assert!(e.contains("unknown stage \"mongo\": one of pg, redis, cassandra"), "{e}");
    }

    #[test]
    fn each_stage_moves_one_store_away_from_postgres() {
        let carts = Stage::ALL.map(Stage::cart_store);
        assert_eq!(carts, [Store::Postgres, Store::Redis, Store::Redis]);
        let catalogue = Stage::ALL.map(Stage::catalogue_store);
        assert_eq!(catalogue, [Store::Postgres, Store::Postgres, Store::Cassandra]);
        for stage in Stage::ALL {
            assert!(
                stage.uses(Store::Postgres) && stage.uses(stage.cart_store()) && stage.uses(stage.catalogue_store())
            );
        }
        assert!(!Stage::Pg.uses(Store::Redis) && !Stage::Redis.uses(Store::Cassandra));
        assert_eq!(Stage::ALL.map(Stage::feature), ["stage-pg", "stage-redis", "stage-cassandra"]);
    }
}
