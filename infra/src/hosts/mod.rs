//! Machines other than the control one: how to reach one over SSH ([`SshHost`]) and, for tests
//! and CI, how to make several on this machine ([`EmulatedHosts`]: a network namespace per host on
//! a private bridge, each with its own address and sshd). Emulation only changes how the hosts
//! are made; everything after that goes over SSH, as it would to real machines.

mod emulated;
mod partition;
mod ssh;
mod subnet;

pub use emulated::EmulatedHosts;
pub use partition::{Cut, CutPort, InstanceCut, Ports, TABLE as PARTITION_TABLE};
pub use ssh::{quoted, SshHost};
pub use subnet::free_subnet;

use std::process::Command;
use std::time::Duration;

/// Runs iproute2's `ip` with `args` (bounded), returning its stdout.
fn ip(args: &[&str]) -> anyhow::Result<String> {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    crate::process::run_ok(cmd, Duration::from_secs(20))
}
