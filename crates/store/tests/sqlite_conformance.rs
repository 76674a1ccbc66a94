//! The shared `FaceStore` conformance suite, against in-memory and on-disk SQLite.

use std::sync::atomic::{AtomicUsize, Ordering};
use vigil_store::{conformance, FaceStore, SqliteStore};

#[test]
fn in_memory_sqlite_store_conforms() {
    conformance::run_all(&|| {
        Box::new(SqliteStore::open_in_memory().unwrap()) as Box<dyn FaceStore>
    });
}

#[test]
fn on_disk_sqlite_store_conforms() {
    let directory = tempfile::tempdir().unwrap();
    let next_file = AtomicUsize::new(0);
    conformance::run_all(&|| {
        let file = next_file.fetch_add(1, Ordering::Relaxed);
        let path = directory.path().join(format!("store-{file}.db"));
        Box::new(SqliteStore::open(path).unwrap()) as Box<dyn FaceStore>
    });
}
