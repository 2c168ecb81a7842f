//! shopbench's bench: the shopaholic Goose load, the configuration matrix runner over infra
//! topologies, the storage floor, raw results, summary.json, charts and the results report.
//! The binary `shopbench-bench` (src/main.rs) is the command-line face of this library.

pub mod api;
pub mod cancel;
pub mod chart;
pub mod compare;
pub mod cpu;
pub mod faults;
pub mod floor;
pub mod http;
pub mod load;
pub mod machine;
pub mod matrix;
pub mod ops;
pub mod page;
pub mod pgbench;
pub mod plan;
pub mod progress;
pub mod race;
pub mod recorder;
pub mod redisbench;
pub mod report;
pub mod results;
pub mod runner;
pub mod stats;
pub mod summary;
