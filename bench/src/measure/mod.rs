//! What every workload reads off the machine while it runs: the CPU each component used
//! ([`cpu`], and over time [`cpu_series`]) and the machine itself with the web instances' memory
//! ([`machine`]). Used by the load, the floor, the matrix runner, the faults and the reports
//! alike, so it sits beside them.

pub mod cpu;
pub mod cpu_series;
pub mod machine;
