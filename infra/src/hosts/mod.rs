//! Machines other than the control one: how to reach one over SSH ([`SshHost`]) and, for tests
//! and CI, how to make several on this machine ([`EmulatedHosts`]: a network namespace per host on
//! a private bridge, each with its own address and sshd). Emulation only changes how the hosts
//! are made; everything after that goes over SSH, as it would to real machines.

mod emulated;
mod ssh;
mod subnet;

pub use emulated::EmulatedHosts;
pub use ssh::SshHost;
pub use subnet::free_subnet;
