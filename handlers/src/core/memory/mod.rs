//! In-process implementations of the ports, used when no MongoDB/Redis is configured and in unit
//! tests. Same semantics as the real ones (the testkit suites check both).

mod store;

pub use store::MemoryStore;
