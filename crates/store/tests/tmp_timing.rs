use std::time::Instant;
use vigil_base::ModelId;
use vigil_store::conformance::template;
use vigil_store::{Enrolment, FaceStore, SqliteStore, SubjectRef};
#[test]
fn timing() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("t.db")).unwrap();
    let t0 = Instant::now();
    for batch in 0..100u64 {
        let mut t: Vec<_> = (0..1000).map(|i| template("m", batch * 1000 + i, 512)).collect();
        for x in &mut t { x.thumbnail_jpeg = vec![0xab; 6000]; }
        store.enroll(Enrolment { subject: SubjectRef::ByName(format!("s{batch}")), notes: None, templates: t }).unwrap();
    }
    eprintln!("enrol 100k: {:?}", t0.elapsed());
    drop(store);
    let store = SqliteStore::open(dir.path().join("t.db")).unwrap();
    let t0 = Instant::now();
    let all = store.templates_for_model(&ModelId::new("m")).unwrap();
    eprintln!("load {}: {:?}", all.len(), t0.elapsed());
}
