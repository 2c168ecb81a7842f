//! Stopping a run on Ctrl-C. Goose installs its own SIGINT handler at its first run (when it can)
//! and resets its killswitch when each run starts; this flag remembers an interrupt across runs,
//! whichever handler caught it, so the matrix stops after the current step and its topology is
//! stopped (the infra `Running` is dropped).

use std::sync::atomic::{AtomicBool, Ordering};

static CANCELLED: AtomicBool = AtomicBool::new(false);

/// Stops the running Goose load and everything after it.
pub fn cancel(reason: &str) {
    CANCELLED.store(true, Ordering::SeqCst);
    goose::trigger_killswitch(reason);
}

/// True once interrupted, by our handler or by Goose's (its killswitch).
pub fn is_cancelled() -> bool {
    if goose::is_killswitch_triggered() {
        CANCELLED.store(true, Ordering::SeqCst);
    }
    CANCELLED.load(Ordering::SeqCst)
}

/// Ctrl-C cancels; a second Ctrl-C exits at once (leaving servers to `shopbench-infra down`).
pub fn install_ctrl_c() {
    tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel("Ctrl-C");
            eprintln!("bench: interrupted; stopping after the current step (Ctrl-C again to exit at once)");
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
}
