//! One tier of a topology started from this run dir: on loopback every instance, on a host of
//! `[[hosts]]` the instances placed there (the control machine runs the tiers host by host).

use anyhow::Result;

use crate::running::Running;
use crate::topology::{Kind, Tier};
use crate::{cassandra, exporter, pgpool, postgres, prometheus, redis, web};

impl Running {
    /// Starts this run dir's instances of `tier` and waits until each is ready.
    pub(crate) fn start_tier(&mut self, tier: Tier) -> Result<()> {
        let mine: Vec<usize> = tier.kinds().iter().flat_map(|k| self.local(*k)).collect();
        match tier {
            Tier::Postgres if !mine.is_empty() => {
                postgres::init_all(self)?;
                for i in mine {
                    postgres::start(self, i)?;
                }
                postgres::create_client_role(self)?;
            }
            Tier::Pgpool if !mine.is_empty() => {
                pgpool::write_pcp_credentials(self)?;
                for i in mine {
                    pgpool::start(self, i)?;
                }
            }
            Tier::Database if self.topology().has_part(Tier::Database, self.state.machine.as_deref()) => {
                postgres::create_shop_database(self)?
            }
            Tier::Redis if !mine.is_empty() => redis::start_host_redis(self)?,
            Tier::Sentinel if !mine.is_empty() => redis::start_host_sentinels(self)?,
            Tier::Cassandra if !mine.is_empty() => cassandra::start_host_nodes(self)?,
            Tier::Web => {
                for i in mine {
                    web::start_web(self, i)?;
                }
            }
            Tier::Nginx => {
                for i in mine {
                    web::start_nginx(self, i)?;
                }
            }
            Tier::Exporters => {
                for kind in Kind::EXPORTERS {
                    for i in self.local(kind) {
                        exporter::start(self, kind, i)?;
                    }
                }
            }
            Tier::Prometheus if !mine.is_empty() => prometheus::start(self)?,
            _ => {}
        }
        Ok(())
    }
}
