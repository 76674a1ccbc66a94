//! The persistent segmented index: persistence, deletes, retention, filters, compaction,
//! the on-disk format fixture, and recovery after SIGKILL of a real writer process.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use vigil_base::{Embedding, ModelId, SubjectId};
use vigil_index::{
    CameraId, EntryKind, EntryMeta, IvfPqParams, SearchFilter, SearchMethod, SegmentedIndex,
    SegmentedOptions,
};

const DIMENSION: usize = 16;

fn model() -> ModelId {
    ModelId::new("test-model")
}

/// A deterministic unit vector per id, in 12 loose clusters so that searches have structure.
fn vector_for(id: u64) -> Vec<f32> {
    let mut state = (id % 12).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut noise = id.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1;
    let next = |state: &mut u64| {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        (*state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let values: Vec<f32> = (0..DIMENSION)
        .map(|_| next(&mut state) + 0.35 * next(&mut noise))
        .collect();
    let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
    values.iter().map(|v| v / norm).collect()
}

fn meta_for(id: u64) -> EntryMeta {
    EntryMeta {
        id,
        kind: if id.is_multiple_of(3) {
            EntryKind::ENROLLED_TEMPLATE
        } else {
            EntryKind::SIGHTING
        },
        subject: (!id.is_multiple_of(5)).then_some(SubjectId((id % 17) as i64)),
        camera: (!id.is_multiple_of(7)).then_some(CameraId(id % 4)),
        timestamp_ms: 1_000 * id as i64,
    }
}

fn embedding(values: Vec<f32>) -> Embedding {
    Embedding::normalised(model(), values).unwrap()
}

fn small_options() -> SegmentedOptions {
    SegmentedOptions {
        seal_rows: 64,
        segment_span_ms: i64::MAX,
        ann_min_rows: 64,
        ann_params: Some(IvfPqParams {
            lists: 4,
            sub_quantizers: 4,
            kmeans_iterations: 4,
            seed: 9,
        }),
        compact_dead_fraction: 0.1,
        threads: 2,
    }
}

fn insert_range(index: &SegmentedIndex, ids: std::ops::Range<u64>) {
    let entries: Vec<(EntryMeta, Vec<f32>)> =
        ids.map(|id| (meta_for(id), vector_for(id))).collect();
    for chunk in entries.chunks(10) {
        index.insert_batch(chunk).unwrap();
    }
}

/// The exact answer by brute force over the index's own live entries.
fn naive(
    index: &SegmentedIndex,
    query: &[f32],
    k: usize,
    filter: &SearchFilter,
) -> Vec<(u64, f32)> {
    let mut scored: Vec<(u64, f32)> = index
        .entries()
        .into_iter()
        .filter(|meta| {
            filter.kinds.as_ref().is_none_or(|k| k.contains(&meta.kind))
                && filter
                    .cameras
                    .as_ref()
                    .is_none_or(|c| meta.camera.is_some_and(|camera| c.contains(&camera)))
                && filter
                    .subjects
                    .as_ref()
                    .is_none_or(|s| meta.subject.is_some_and(|subject| s.contains(&subject)))
                && filter
                    .time_range_ms
                    .as_ref()
                    .is_none_or(|r| r.contains(&meta.timestamp_ms))
        })
        .map(|meta| {
            let score: f32 = vector_for(meta.id)
                .iter()
                .zip(query)
                .map(|(a, b)| a * b)
                .sum();
            (meta.id, score)
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(k);
    scored
}

fn assert_same_ranking(found: &[(u64, f32)], expected: &[(u64, f32)]) {
    assert_eq!(found.len(), expected.len(), "{found:?} vs {expected:?}");
    for (f, e) in found.iter().zip(expected) {
        // equal scores may come in either order
        assert!(
            f.0 == e.0 || (f.1 - e.1).abs() < 1e-5,
            "{found:?} vs {expected:?}"
        );
        assert!((f.1 - e.1).abs() < 1e-4);
    }
}

fn search(
    index: &SegmentedIndex,
    query: &[f32],
    k: usize,
    filter: &SearchFilter,
    method: SearchMethod,
) -> Vec<(u64, f32)> {
    index
        .search(&embedding(query.to_vec()), k, filter, method)
        .unwrap()
        .iter()
        .map(|hit| (hit.entry.id, hit.score))
        .collect()
}

const METHODS: [SearchMethod; 3] = [
    SearchMethod::Exact,
    SearchMethod::Int8 { rerank_factor: 40 },
    // every list probed and every candidate re-ranked: must equal exact
    SearchMethod::Ann {
        nprobe: 4,
        rerank: 1000,
    },
];

#[test]
fn filters_apply_inside_the_search_for_every_method() {
    let dir = tempfile::tempdir().unwrap();
    let index = SegmentedIndex::open(dir.path(), model(), DIMENSION, small_options()).unwrap();
    insert_range(&index, 0..300);
    let stats = index.stats();
    assert!(
        stats.sealed_segments >= 4 && stats.ann_segments >= 4,
        "{stats:?}"
    );
    assert!(stats.growing_rows > 0);
    let filters = [
        SearchFilter::all(),
        SearchFilter::all().cameras([CameraId(1), CameraId(3)]),
        SearchFilter::all().kinds([EntryKind::ENROLLED_TEMPLATE]),
        SearchFilter::all().subjects([SubjectId(4), SubjectId(9)]),
        SearchFilter::all().time_range_ms(50_000..140_000),
        SearchFilter::all()
            .time_range_ms(0..250_000)
            .cameras([CameraId(2)])
            .kinds([EntryKind::SIGHTING]),
    ];
    for query_id in [5u64, 77, 1000, 2001] {
        let query = vector_for(query_id);
        for filter in &filters {
            let expected = naive(&index, &query, 10, filter);
            assert!(!expected.is_empty());
            for method in METHODS {
                let found = search(&index, &query, 10, filter, method);
                assert_same_ranking(&found, &expected);
            }
        }
    }
    // a selective filter still yields a full top-k through the ANN path
    let watchlist = SearchFilter::all().subjects([SubjectId(4)]);
    let narrow = search(
        &index,
        &vector_for(3),
        5,
        &watchlist,
        SearchMethod::Ann {
            nprobe: 1,
            rerank: 5,
        },
    );
    assert_eq!(narrow.len(), 5);
}

#[test]
fn the_index_survives_reopening_with_deletes_and_replacements() {
    let dir = tempfile::tempdir().unwrap();
    {
        let index = SegmentedIndex::open(dir.path(), model(), DIMENSION, small_options()).unwrap();
        insert_range(&index, 0..150);
        assert!(index.delete(3).unwrap(), "sealed row");
        assert!(index.delete(149).unwrap(), "growing row");
        assert!(!index.delete(10_000).unwrap());
        // replacing a sealed entry tombstones its old row
        let mut moved = meta_for(10);
        moved.camera = Some(CameraId(99));
        index.insert(moved, &embedding(vector_for(10))).unwrap();
    }
    let index = SegmentedIndex::open(dir.path(), model(), DIMENSION, small_options()).unwrap();
    let entries = index.entries();
    let ids: HashSet<u64> = entries.iter().map(|meta| meta.id).collect();
    assert_eq!(entries.len(), 148, "no duplicates after a replacement");
    assert!(!ids.contains(&3) && !ids.contains(&149) && ids.contains(&10));
    let only_camera_99 = SearchFilter::all().cameras([CameraId(99)]);
    for method in METHODS {
        let found = search(&index, &vector_for(10), 3, &only_camera_99, method);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, 10);
        let top = search(&index, &vector_for(3), 1, &SearchFilter::all(), method);
        assert_ne!(top[0].0, 3, "deleted rows never match");
    }
    index.verify().unwrap();
}

#[test]
fn compaction_rewrites_segments_and_keeps_results() {
    let dir = tempfile::tempdir().unwrap();
    let index = SegmentedIndex::open(dir.path(), model(), DIMENSION, small_options()).unwrap();
    insert_range(&index, 0..200);
    for id in (0..120).step_by(3) {
        index.delete(id).unwrap();
    }
    let query = vector_for(42);
    let before = naive(&index, &query, 10, &SearchFilter::all());
    let report = index.compact().unwrap();
    assert!(
        report.segments_rewritten >= 1 && report.rows_removed == 40,
        "{report:?}"
    );
    assert_eq!(index.stats().deleted_rows, 0);
    for method in METHODS {
        assert_same_ranking(
            &search(&index, &query, 10, &SearchFilter::all(), method),
            &before,
        );
    }
    drop(index);
    let index = SegmentedIndex::open(dir.path(), model(), DIMENSION, small_options()).unwrap();
    assert_eq!(index.entries().len(), 160);
    assert_same_ranking(
        &search(
            &index,
            &query,
            10,
            &SearchFilter::all(),
            SearchMethod::Exact,
        ),
        &before,
    );
}

fn segment_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".vseg")
        })
        .count()
}

#[test]
fn retention_drops_whole_time_partitioned_segments() {
    let dir = tempfile::tempdir().unwrap();
    let options = SegmentedOptions {
        seal_rows: 1_000,
        // one segment per 50 s of capture time (ids are seconds)
        segment_span_ms: 50_000,
        ..small_options()
    };
    let index = SegmentedIndex::open(dir.path(), model(), DIMENSION, options.clone()).unwrap();
    insert_range(&index, 0..200);
    let segments_before = segment_files(dir.path());
    assert!(segments_before >= 3, "{segments_before}");
    let dropped = index.drop_before(120_000).unwrap();
    assert!(dropped >= 2, "{dropped}");
    assert_eq!(segment_files(dir.path()), segments_before - dropped);
    let visible: Vec<EntryMeta> = index.entries();
    assert!(visible.iter().all(|meta| meta.timestamp_ms >= 120_000));
    assert_eq!(visible.len(), 80);
    for method in METHODS {
        let found = search(&index, &vector_for(5), 50, &SearchFilter::all(), method);
        assert!(found.iter().all(|(id, _)| *id >= 120));
    }
    drop(index);
    let index = SegmentedIndex::open(dir.path(), model(), DIMENSION, options).unwrap();
    assert_eq!(index.entries().len(), 80);
    assert_eq!(index.compact().unwrap().rows_removed, 0);
}

#[test]
fn recovery_deletes_orphans_and_keeps_the_listed_state() {
    let dir = tempfile::tempdir().unwrap();
    {
        let index = SegmentedIndex::open(dir.path(), model(), DIMENSION, small_options()).unwrap();
        insert_range(&index, 0..100);
    }
    // what a crash mid-seal leaves: a temporary file and a renamed but unlisted segment
    std::fs::write(dir.path().join("seg-0000009999.vseg.tmp"), b"partial").unwrap();
    std::fs::write(dir.path().join("seg-0000009998.vseg"), b"unlisted").unwrap();
    std::fs::write(dir.path().join("wal-0000009999.log"), b"stale").unwrap();
    let index = SegmentedIndex::open(dir.path(), model(), DIMENSION, small_options()).unwrap();
    assert_eq!(index.entries().len(), 100);
    for orphan in [
        "seg-0000009999.vseg.tmp",
        "seg-0000009998.vseg",
        "wal-0000009999.log",
    ] {
        assert!(!dir.path().join(orphan).exists(), "{orphan}");
    }
    // the wrong model or dimension is refused rather than misread
    drop(index);
    assert!(SegmentedIndex::open(
        dir.path(),
        ModelId::new("other"),
        DIMENSION,
        small_options()
    )
    .is_err());
    assert!(SegmentedIndex::open(dir.path(), model(), DIMENSION + 1, small_options()).is_err());
}

#[test]
fn rebuild_from_the_store_reports_progress_and_replaces_the_contents() {
    let dir = tempfile::tempdir().unwrap();
    {
        let index = SegmentedIndex::open(dir.path(), model(), DIMENSION, small_options()).unwrap();
        insert_range(&index, 1000..1100);
    }
    let mut reports = Vec::new();
    let index = SegmentedIndex::rebuild(
        dir.path(),
        model(),
        DIMENSION,
        small_options(),
        (0..200).map(|id| (meta_for(id), vector_for(id))),
        &mut |progress| reports.push(progress),
    )
    .unwrap();
    assert_eq!(index.entries().len(), 200);
    assert!(index.stats().ann_segments >= 3);
    let last_segments = reports
        .iter()
        .rev()
        .find(|report| report.phase == "segments")
        .unwrap();
    assert_eq!(last_segments.done, 200);
    assert!(reports.iter().any(|report| report.phase == "ivfpq"));
    drop(index);
    let index = SegmentedIndex::open(dir.path(), model(), DIMENSION, small_options()).unwrap();
    let ids: HashSet<u64> = index.entries().iter().map(|meta| meta.id).collect();
    assert_eq!(ids, (0..200).collect());
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/index-v1")
}

/// Writes the fixture: run with `VIGIL_WRITE_INDEX_FIXTURE=1 cargo test -p vigil-index
/// --test segmented write_format_fixture` only when the format version changes (and keep the
/// old fixture for the upgrade test).
#[test]
fn write_format_fixture() {
    if std::env::var_os("VIGIL_WRITE_INDEX_FIXTURE").is_none() {
        return;
    }
    let dir = fixture_dir();
    let _ = std::fs::remove_dir_all(&dir);
    let index = SegmentedIndex::open(&dir, model(), DIMENSION, small_options()).unwrap();
    insert_range(&index, 0..70); // one sealed segment with IVF-PQ, 6 rows in the log
    index.delete(2).unwrap(); // a tombstone in the manifest after the next line
    index.seal().unwrap();
    insert_range(&index, 70..75);
    index.delete(71).unwrap();
    index.delete(4).unwrap(); // a tombstone only in the log
}

#[test]
fn the_version_1_fixture_still_reads() {
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture_dir()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
    }
    let index = SegmentedIndex::open(copy.path(), model(), DIMENSION, small_options()).unwrap();
    index.verify().unwrap();
    let ids: HashSet<u64> = index.entries().iter().map(|meta| meta.id).collect();
    let expected: HashSet<u64> = (0..75).filter(|id| ![2, 4, 71].contains(id)).collect();
    assert_eq!(ids, expected);
    assert_eq!(index.stats().ann_segments, 1);
    for method in METHODS {
        let found = search(&index, &vector_for(30), 5, &SearchFilter::all(), method);
        assert_same_ranking(
            &found,
            &naive(&index, &vector_for(30), 5, &SearchFilter::all()),
        );
    }
}

const CRASH_DIR_VARIABLE: &str = "VIGIL_INDEX_CRASH_CHILD_DIR";
const CRASH_ROUND_VARIABLE: &str = "VIGIL_INDEX_CRASH_CHILD_ROUND";
const IDS_PER_ROUND: u64 = 1_000_000;
const CRASH_BATCH: u64 = 5;

/// The writer the crash test kills: inserts batches, deletes each batch's first id, retires
/// old data, seals and compacts, and records each acknowledged step in `acks` (fsynced).
/// Does nothing unless started by `sigkill_at_any_point_leaves_an_index_that_agrees_with_the_acknowledged_writes`.
#[test]
fn crash_child_writer() {
    let (Some(dir), Some(round)) = (
        std::env::var_os(CRASH_DIR_VARIABLE),
        std::env::var_os(CRASH_ROUND_VARIABLE),
    ) else {
        return;
    };
    use std::io::Write;
    let dir = PathBuf::from(dir);
    let round: u64 = round.to_string_lossy().parse().unwrap();
    let index =
        SegmentedIndex::open(&dir.join("index"), model(), DIMENSION, small_options()).unwrap();
    let mut acks = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("acks"))
        .unwrap();
    let mut ack = |line: String| {
        acks.write_all(line.as_bytes()).unwrap();
        acks.sync_data().unwrap();
    };
    let mut next = round * IDS_PER_ROUND;
    loop {
        let batch: Vec<(EntryMeta, Vec<f32>)> = (next..next + CRASH_BATCH)
            .map(|id| (meta_for(id), vector_for(id)))
            .collect();
        index.insert_batch(&batch).unwrap();
        ack(format!("I {next} {}\n", next + CRASH_BATCH));
        index.delete(next).unwrap();
        ack(format!("D {next}\n"));
        next += CRASH_BATCH;
        if next.is_multiple_of(200) {
            index.compact().unwrap();
        }
    }
}

#[test]
fn sigkill_at_any_point_leaves_an_index_that_agrees_with_the_acknowledged_writes() {
    let dir = tempfile::tempdir().unwrap();
    let executable = std::env::current_exe().unwrap();
    let mut seed = 0x5EEDu64;
    for round in 0..10u64 {
        let mut child = std::process::Command::new(&executable)
            .args(["--exact", "crash_child_writer", "--test-threads", "1"])
            .env(CRASH_DIR_VARIABLE, dir.path())
            .env(CRASH_ROUND_VARIABLE, round.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // let the writer get going (so every round has acknowledged work), then kill it at a
        // random point of whatever it is doing
        let acks_path = dir.path().join("acks");
        let acks_before = std::fs::metadata(&acks_path).map_or(0, |m| m.len());
        let started = std::time::Instant::now();
        while std::fs::metadata(&acks_path).map_or(0, |m| m.len()) == acks_before
            && started.elapsed() < std::time::Duration::from_secs(20)
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(std::time::Duration::from_millis(seed % 400));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let acks = std::fs::read_to_string(&acks_path).unwrap_or_default();
        let mut must_exist: HashMap<u64, bool> = HashMap::new();
        let mut lines: Vec<&str> = acks.split('\n').collect();
        lines.pop(); // empty, or a torn last line
        for line in lines {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                ["I", first, end] => {
                    let (first, end) = (first.parse::<u64>().unwrap(), end.parse::<u64>().unwrap());
                    for id in first..end {
                        must_exist.insert(id, true);
                    }
                }
                ["D", id] => {
                    must_exist.insert(id.parse::<u64>().unwrap(), false);
                }
                other => panic!("unreadable acknowledgement {other:?}"),
            }
        }
        let index = SegmentedIndex::open(
            &dir.path().join("index"),
            model(),
            DIMENSION,
            small_options(),
        )
        .unwrap();
        index.verify().unwrap();
        let present: HashSet<u64> = index.entries().iter().map(|meta| meta.id).collect();
        assert!(
            !must_exist.is_empty(),
            "round {round}: the writer acknowledged nothing"
        );
        for (&id, &exists) in &must_exist {
            let in_flight_delete = id % CRASH_BATCH == 0 && exists;
            if exists && !in_flight_delete {
                assert!(
                    present.contains(&id),
                    "round {round}: acknowledged {id} lost"
                );
            }
            if !exists {
                assert!(
                    !present.contains(&id),
                    "round {round}: deleted {id} came back"
                );
            }
        }
        // beyond the acknowledged ids, only the one batch in flight may appear
        let mut last_acknowledged: HashMap<u64, u64> = HashMap::new();
        for id in must_exist.keys() {
            let newest = last_acknowledged.entry(id / IDS_PER_ROUND).or_insert(0);
            *newest = (*newest).max(*id);
        }
        for id in &present {
            let newest = last_acknowledged.get(&(id / IDS_PER_ROUND)).copied();
            assert!(
                must_exist.contains_key(id) || newest.is_some_and(|n| *id <= n + CRASH_BATCH),
                "round {round}: {id} was never written"
            );
        }
        // the recovered rows hold the vectors that were written
        let probe = *must_exist
            .iter()
            .find(|(id, exists)| **exists && *id % CRASH_BATCH != 0)
            .unwrap()
            .0;
        let hits = search(
            &index,
            &vector_for(probe),
            1,
            &SearchFilter::all()
                .time_range_ms(meta_for(probe).timestamp_ms..meta_for(probe).timestamp_ms + 1),
            SearchMethod::Exact,
        );
        assert_eq!(hits[0].0, probe);
        assert!(hits[0].1 > 0.999);
    }
    // the kills landed across seals, not only in the log
    let index = SegmentedIndex::open(
        &dir.path().join("index"),
        model(),
        DIMENSION,
        small_options(),
    )
    .unwrap();
    assert!(index.stats().sealed_segments >= 2);
}

/// Encryption at rest (design 011) keeps the sightings index in memory: past the sealing
/// threshold, after `seal`, `compact`, `build_ann` and `drop_before`, it must still answer like
/// the exact answer, and write no file (it has no folder: a stray write would land in the
/// working directory, whose listing must not change).
#[test]
fn an_in_memory_index_searches_like_a_persistent_one_and_writes_nothing() {
    let listing = || -> Vec<PathBuf> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(".")
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        names.sort();
        names
    };
    let before = listing();
    let index = SegmentedIndex::in_memory(model(), DIMENSION, small_options()).unwrap();
    assert!(index.is_in_memory());
    // three times seal_rows: a persistent index would have sealed segment files by now
    insert_range(&index, 0..200);
    index.seal().unwrap();
    index.compact().unwrap();
    index.build_ann(&mut |_| {}).unwrap();
    assert!(index.delete(10).unwrap());
    index.drop_before(20_000).unwrap();
    assert_eq!(index.entries().len(), 180);
    let filter = SearchFilter::default();
    for query_id in [3u64, 50, 150] {
        let query = vector_for(query_id);
        for method in METHODS {
            assert_same_ranking(
                &search(&index, &query, 10, &filter, method),
                &naive(&index, &query, 10, &filter),
            );
        }
    }
    assert_eq!(listing(), before);
}
