//! Shared by the integration tests: service URLs, spawning the real binary, a small Socket.IO
//! client with bounded waits. Each test file uses a subset, hence the dead-code allowance.
#![allow(dead_code)]

pub mod env;
pub mod server;
pub mod services;
pub mod sio;

/// A name unique to this test run, for databases and Redis prefixes (isolation by namespace,
/// not by teardown).
pub fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "t_{tag}_{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh directory for one test's embedded store (under cargo's per-target tmp dir).
pub fn data_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("data")
        .join(unique(tag));
    std::fs::create_dir_all(&dir).expect("data dir");
    dir
}
