//! shopbench's bench, one folder per role (the binary `shopbench-bench`, src/main.rs, is the
//! command-line face of this library):
//!
//! * [`load`]: what the simulated people do ([`load::plan`], [`load::ops`]) and the Goose load
//!   that sends it over HTTP ([`load::http`], [`load::recorder`], [`load::api`] for seeding).
//! * [`matrix`]: the matrix file and its runner over infra topologies, with its progress.
//! * [`measure`]: the CPU per component and the machine's readings, taken by every workload.
//! * [`observe`]: what Prometheus saw of a run, read back as small series for the reports.
//! * [`floor`]: the storage floor (the same plans straight into the stores) and the server
//!   tools' own numbers (`pgbench`, `redis-benchmark`).
//! * [`latency`]: histograms of raw and coordinated-omission-corrected times, mergeable.
//! * [`capacity`]: the stepped-rate open-loop run that finds a configuration's capacity.
//! * [`clients`]: many load-client processes sharing a run's users, merged exactly.
//! * [`report`]: raw results, statistics, summary.json, charts, the results README and the
//!   comparison of stages.
//! * [`faults`] and [`race`]: the fault-injection and race workloads with their checks.
//! * [`page`]: a report's markdown as one self-contained HTML page.
//! * [`writes`]: cart adds through pgpool-II for several web builds side by side, and pgbench
//!   doing the adapter's add (issue 15).
//! * [`cancel`]: stopping a run on Ctrl-C, for all of them; [`commit`]: the commit a report names.

pub mod cancel;
pub mod capacity;
pub mod clients;
pub mod commit;
pub mod faults;
pub mod floor;
pub mod latency;
pub mod load;
pub mod matrix;
pub mod measure;
pub mod observe;
pub mod page;
pub mod race;
pub mod report;
pub mod writes;
