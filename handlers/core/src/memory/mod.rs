//! In-process implementations of the ports, used when no MongoDB/Redis is configured and in unit
//! tests. Same semantics as the real ones (the testkit suites check both).

mod presence;
mod store;

pub use presence::MemoryPresence;
pub use store::MemoryStore;

#[cfg(all(test, feature = "testkit"))]
mod conformance {
    #[tokio::test]
    async fn memory_store_passes_the_store_suite() {
        let store = super::MemoryStore::new();
        assert!(crate::ports::Store::is_empty(&store).await.expect("empty"));
        crate::testkit::run_all(&store, "mem").await;
    }
}
