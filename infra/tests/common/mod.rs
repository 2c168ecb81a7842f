//! Helpers shared by the integration tests: a fresh run dir and a small topology on test ports
//! (this crate's tests use 15400-15499, 15700-15749, 19500-19599, 19900-19999, 18000-18199 and
//! 18500-18599).
#![allow(dead_code)]

use std::path::PathBuf;

use infra::{Proc, Topology};

/// A fresh, empty run dir under the system temp dir, removed again when dropped.
pub struct TempRunDir(pub PathBuf);

impl TempRunDir {
    pub fn new(name: &str) -> TempRunDir {
        let dir = std::env::temp_dir().join(format!("shopbench-infra-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempRunDir(dir)
    }
}

impl Drop for TempRunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn topology(toml: &str) -> Topology {
    Topology::parse(toml).expect("test topology")
}

pub fn any_alive(procs: &[Proc]) -> Vec<String> {
    procs.iter().filter(|p| p.alive()).map(|p| format!("{} pid {}", p.label(), p.pid)).collect()
}
