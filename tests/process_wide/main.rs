//! The integration tests that measure the test process as a whole: its open file
//! descriptors (load, failover), its resident memory (load) and the process-wide tracing
//! subscriber (failover). In the `server` test binary other modules' tests would open
//! sockets, allocate and log in parallel threads of the same process, so these run here,
//! in a process of their own and one at a time: each test body runs in [`serially`].

#[path = "../common/mod.rs"]
// This crate starts servers and proxies; the PKI builders, oracles and clients of the
// harness are for tests/server.
#[allow(dead_code)]
mod common;

mod failover;
mod load;

use std::sync::Mutex;

/// Runs `test` alone: after every other test of this process has finished its own, and in
/// a runtime (multi-threaded, 2 workers) created only then, so that no other test's
/// runtime, sockets or allocations are counted in its measurements.
pub fn serially(test: impl std::future::Future<Output = ()>) {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(test);
}

/// Open file descriptors of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}
