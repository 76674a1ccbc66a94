//! `SegmentedIndex`: the persistent index of one recognizer model, a directory of
//! memory-mapped sealed segments, one growing segment in memory backed by a write-ahead log,
//! per-segment tombstones, and a manifest naming what is live. See
//! `docs/design/005-index-at-scale.md` for the write order and the recovery rules.

use crate::entry::{EntryHit, EntryMeta, SearchFilter, SearchMethod};
use crate::ivfpq::{IvfPq, IvfPqParams};
use crate::kernel::KernelSet;
use crate::quantize::QuantizedQuery;
use crate::scan::task_ranges;
use crate::segment::{io_error, sync_parent, temporary_path, write_segment, Columns, SegmentFile};
use crate::topk::{Candidate, TopK};
use crate::wal::{Wal, WalRecord};
use crate::IndexError;
use parking_lot::{Mutex, RwLock};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vigil_base::{Embedding, ModelId, TemplateId};

const MANIFEST_NAME: &str = "MANIFEST.json";
pub const MANIFEST_FORMAT_VERSION: u32 = 1;
/// Rows scored per kernel call; small enough for the scores to stay in L1.
const SCORE_BLOCK_ROWS: usize = 256;
/// Rows per search task within a segment.
const MIN_ROWS_PER_TASK: usize = 8192;
/// Segment number in the high bits of a candidate's row, row number in the low 40.
const ROW_BITS: u32 = 40;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentedOptions {
    /// The growing segment is sealed when it holds this many rows...
    pub seal_rows: usize,
    /// ...or when its capture times span this long, so that each sealed segment covers a
    /// bounded time slice and retention can drop whole files.
    pub segment_span_ms: i64,
    /// Sealed segments of at least this many rows get an IVF-PQ index.
    pub ann_min_rows: usize,
    /// IVF-PQ parameters; `None` chooses them from the segment's size.
    pub ann_params: Option<IvfPqParams>,
    /// `compact` rewrites a segment once this fraction of its rows is deleted or expired.
    pub compact_dead_fraction: f32,
    /// Search threads; 0 means one per core.
    pub threads: usize,
}

impl Default for SegmentedOptions {
    fn default() -> Self {
        Self {
            seal_rows: 1 << 20,
            segment_span_ms: 24 * 3600 * 1000,
            ann_min_rows: 200_000,
            ann_params: None,
            compact_dead_fraction: 0.2,
            threads: 0,
        }
    }
}

/// Progress of a long operation: `done` of `total` units of the named phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BuildProgress {
    pub phase: &'static str,
    pub done: usize,
    pub total: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexStats {
    pub sealed_segments: usize,
    pub sealed_rows: usize,
    pub growing_rows: usize,
    pub deleted_rows: usize,
    pub ann_segments: usize,
    pub retention_floor_ms: i64,
}

/// Sizes of the index's parts. Sealed segments are memory-mapped: the OS keeps in RAM what
/// searches touch (all of `int8_codes_bytes` for an int8 scan, `ann_bytes` plus the re-ranked
/// rows for IVF-PQ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryReport {
    pub rows: usize,
    pub vectors_f32_bytes: usize,
    pub int8_codes_bytes: usize,
    /// id, kind, subject, camera and capture time: 36 bytes a row.
    pub metadata_bytes: usize,
    /// IVF-PQ codes, row numbers, centroids and codebooks.
    pub ann_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CompactionReport {
    pub segments_rewritten: usize,
    pub segments_removed: usize,
    pub rows_removed: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ManifestSegment {
    file: String,
    rows: usize,
    min_time_ms: i64,
    max_time_ms: i64,
    /// Tombstoned ids of this segment.
    deleted: Vec<u64>,
    ann: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    format_version: u32,
    model: String,
    dimension: usize,
    generation: u64,
    next_file_number: u64,
    retention_floor_ms: i64,
    wal: String,
    segments: Vec<ManifestSegment>,
}

struct Sealed {
    name: String,
    file: SegmentFile,
    ann: Option<(String, IvfPq)>,
}

/// Deleted rows of one sealed segment.
#[derive(Clone, Default)]
struct Tombstones {
    ids: BTreeSet<u64>,
    bits: Vec<u64>,
}

impl Tombstones {
    fn new(rows: usize) -> Self {
        Self {
            ids: BTreeSet::new(),
            bits: vec![0; rows.div_ceil(64)],
        }
    }

    fn mark(&mut self, id: u64, row: usize) {
        self.ids.insert(id);
        self.bits[row / 64] |= 1 << (row % 64);
    }

    fn is_deleted(&self, row: usize) -> bool {
        self.bits[row / 64] & (1 << (row % 64)) != 0
    }
}

struct State {
    sealed: Vec<Arc<Sealed>>,
    /// Parallel to `sealed`.
    tombstones: Vec<Tombstones>,
    growing: Columns,
    growing_row_of: HashMap<u64, usize>,
    growing_time_ms: Option<(i64, i64)>,
    retention_floor_ms: i64,
}

struct Writer {
    /// `None` for an index kept in memory only (`in_memory`): nothing is logged or written.
    wal: Option<Wal>,
    generation: u64,
    next_file_number: u64,
}

/// The persistent index of one model. Searches share a read lock and run on the index's own
/// thread pool; mutations are serialised by the writer lock and hold the read-write lock only
/// to publish their effect, so a seal or compaction does not stall searches.
pub struct SegmentedIndex {
    dir: PathBuf,
    model: ModelId,
    dimension: usize,
    options: SegmentedOptions,
    state: RwLock<State>,
    writer: Mutex<Writer>,
    pool: rayon::ThreadPool,
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), IndexError> {
    let temporary = temporary_path(path);
    let mut file = std::fs::File::create(&temporary).map_err(io_error(&temporary))?;
    file.write_all(bytes).map_err(io_error(&temporary))?;
    file.sync_all().map_err(io_error(&temporary))?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(io_error(path))?;
    sync_parent(path)
}

fn segment_name(number: u64) -> String {
    format!("seg-{number:010}.vseg")
}

fn ann_name(number: u64) -> String {
    format!("seg-{number:010}.ivfpq")
}

impl State {
    fn empty() -> Self {
        Self {
            sealed: Vec::new(),
            tombstones: Vec::new(),
            growing: Columns::default(),
            growing_row_of: HashMap::new(),
            growing_time_ms: None,
            retention_floor_ms: i64::MIN,
        }
    }

    /// Tombstones the live copy of `id` in sealed segments; true when there was one.
    fn tombstone_sealed(&mut self, id: u64) -> bool {
        for (segment, tombstones) in self.sealed.iter().zip(&mut self.tombstones) {
            if let Some(row) = segment.file.row_of(id) {
                if !tombstones.is_deleted(row) {
                    tombstones.mark(id, row);
                    return true;
                }
            }
        }
        false
    }

    fn remove_growing(&mut self, id: u64, dimension: usize) -> bool {
        let Some(row) = self.growing_row_of.remove(&id) else {
            return false;
        };
        let last = self.growing.len() - 1;
        self.growing.swap_remove(row, dimension);
        if row != last {
            self.growing_row_of.insert(self.growing.ids[row], row);
        }
        true
    }

    fn apply(&mut self, record: WalRecord, dimension: usize) {
        match record {
            WalRecord::Insert { meta, vector } => {
                if let Some(&row) = self.growing_row_of.get(&meta.id) {
                    self.growing.swap_remove(row, dimension);
                    if row < self.growing.len() {
                        self.growing_row_of.insert(self.growing.ids[row], row);
                    }
                } else {
                    self.tombstone_sealed(meta.id);
                }
                self.growing_row_of.insert(meta.id, self.growing.len());
                self.growing.push(&meta, &vector);
                let time = meta.timestamp_ms;
                self.growing_time_ms = Some(match self.growing_time_ms {
                    Some((low, high)) => (low.min(time), high.max(time)),
                    None => (time, time),
                });
            }
            WalRecord::Delete { id } => {
                if !self.remove_growing(id, dimension) {
                    self.tombstone_sealed(id);
                }
            }
            WalRecord::DropBefore { time_ms } => {
                self.retention_floor_ms = self.retention_floor_ms.max(time_ms);
                let expired: Vec<u64> = self
                    .growing
                    .ids
                    .iter()
                    .zip(&self.growing.times)
                    .filter(|(_, time)| **time < time_ms)
                    .map(|(id, _)| *id)
                    .collect();
                for id in expired {
                    self.remove_growing(id, dimension);
                }
            }
        }
    }

    fn manifest(&self, model: &ModelId, dimension: usize, writer: &Writer, wal: &str) -> Manifest {
        Manifest {
            format_version: MANIFEST_FORMAT_VERSION,
            model: model.as_str().to_string(),
            dimension,
            generation: writer.generation,
            next_file_number: writer.next_file_number,
            retention_floor_ms: self.retention_floor_ms,
            wal: wal.to_string(),
            segments: self
                .sealed
                .iter()
                .zip(&self.tombstones)
                .map(|(segment, tombstones)| {
                    let (min_time_ms, max_time_ms) = segment.file.time_range_ms();
                    ManifestSegment {
                        file: segment.name.clone(),
                        rows: segment.file.rows(),
                        min_time_ms,
                        max_time_ms,
                        deleted: tombstones.ids.iter().copied().collect(),
                        ann: segment.ann.as_ref().map(|(name, _)| name.clone()),
                    }
                })
                .collect(),
        }
    }
}

/// What a scan of one segment reads: its columns, tombstones and the row predicate.
#[derive(Clone, Copy)]
struct SegmentView<'a> {
    ids: &'a [u64],
    kinds: &'a [u32],
    subjects: &'a [i64],
    cameras: &'a [u64],
    times: &'a [i64],
    vectors: &'a [f32],
    /// Int8 codes and scales; sealed segments only.
    codes: Option<(&'a [i8], &'a [f32])>,
    tombstones: Option<&'a Tombstones>,
    filter: &'a SearchFilter,
    floor_ms: i64,
    /// No tombstones, no floor, no filter: every row is admitted.
    admits_all: bool,
    slot: usize,
}

impl SegmentView<'_> {
    fn rows(&self) -> usize {
        self.ids.len()
    }

    fn admits(&self, row: usize) -> bool {
        if self.admits_all {
            return true;
        }
        if self.tombstones.is_some_and(|t| t.is_deleted(row)) || self.times[row] < self.floor_ms {
            return false;
        }
        self.filter.admits(
            self.kinds[row],
            self.subjects[row],
            self.cameras[row],
            self.times[row],
        )
    }

    fn candidate(&self, row: usize, score: f32) -> Candidate {
        Candidate {
            score,
            template: TemplateId(self.ids[row] as i64),
            row: (self.slot << ROW_BITS) | row,
        }
    }

    fn vector(&self, row: usize, dimension: usize) -> &[f32] {
        &self.vectors[row * dimension..(row + 1) * dimension]
    }

    /// Scores the admitted rows of `range` with `score_block(first_row, rows, scores)` in
    /// blocks, offering each to `top`. Inadmissible rows are never scored.
    fn scan(
        &self,
        range: std::ops::Range<usize>,
        top: &mut TopK,
        score_block: &dyn Fn(usize, usize, &mut [f32]),
    ) {
        let mut scores = [0f32; SCORE_BLOCK_ROWS];
        let mut start = range.start;
        while start < range.end {
            let end = (start + SCORE_BLOCK_ROWS).min(range.end);
            if self.admits_all || (start..end).all(|row| self.admits(row)) {
                score_block(start, end - start, &mut scores[..end - start]);
                let mut threshold = top.threshold();
                for (offset, score) in scores[..end - start].iter().enumerate() {
                    if *score >= threshold {
                        top.offer(self.candidate(start + offset, *score));
                        threshold = top.threshold();
                    }
                }
            } else {
                for row in (start..end).filter(|row| self.admits(*row)) {
                    let mut score = [0f32];
                    score_block(row, 1, &mut score);
                    if score[0] >= top.threshold() {
                        top.offer(self.candidate(row, score[0]));
                    }
                }
            }
            start = end;
        }
    }
}

impl SegmentedIndex {
    /// Opens the index in `dir` (creating an empty one if there is none) and recovers: the
    /// manifest names the live segments and the log; the log is replayed up to its last whole
    /// record; files the manifest does not name (left by a crash) are deleted.
    pub fn open(
        dir: &Path,
        model: ModelId,
        dimension: usize,
        options: SegmentedOptions,
    ) -> Result<Self, IndexError> {
        if dimension == 0 {
            return Err(IndexError::AnnConfig("dimension must be positive".into()));
        }
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let manifest_path = dir.join(MANIFEST_NAME);
        let manifest = if manifest_path.exists() {
            let bytes = std::fs::read(&manifest_path).map_err(io_error(&manifest_path))?;
            let manifest: Manifest =
                serde_json::from_slice(&bytes).map_err(|error| IndexError::Corrupt {
                    path: manifest_path.clone(),
                    reason: error.to_string(),
                })?;
            if manifest.format_version != MANIFEST_FORMAT_VERSION {
                return Err(IndexError::UnsupportedVersion {
                    path: manifest_path,
                    found: manifest.format_version,
                    supported: MANIFEST_FORMAT_VERSION,
                });
            }
            if manifest.model != model.as_str() || manifest.dimension != dimension {
                return Err(IndexError::Corrupt {
                    path: manifest_path,
                    reason: format!(
                        "index of model {} ({}-d), opened as {model} ({dimension}-d)",
                        manifest.model, manifest.dimension
                    ),
                });
            }
            manifest
        } else {
            let wal_name = "wal-0000000001.log".to_string();
            Wal::create(&dir.join(&wal_name), dimension)?;
            let manifest = Manifest {
                format_version: MANIFEST_FORMAT_VERSION,
                model: model.as_str().to_string(),
                dimension,
                generation: 1,
                next_file_number: 1,
                retention_floor_ms: i64::MIN,
                wal: wal_name,
                segments: Vec::new(),
            };
            write_manifest(dir, &manifest)?;
            manifest
        };

        let mut state = State::empty();
        state.retention_floor_ms = manifest.retention_floor_ms;
        for entry in &manifest.segments {
            let path = dir.join(&entry.file);
            let file = SegmentFile::open(&path, model.as_str(), dimension)?;
            let mut tombstones = Tombstones::new(file.rows());
            for id in &entry.deleted {
                if let Some(row) = file.row_of(*id) {
                    tombstones.mark(*id, row);
                }
            }
            let ann = match &entry.ann {
                Some(name) => {
                    let ann_path = dir.join(name);
                    let bytes = std::fs::read(&ann_path).map_err(io_error(&ann_path))?;
                    let ann = IvfPq::from_bytes(&bytes, file.rows()).map_err(|reason| {
                        IndexError::Corrupt {
                            path: ann_path,
                            reason,
                        }
                    })?;
                    Some((name.clone(), ann))
                }
                None => None,
            };
            state.sealed.push(Arc::new(Sealed {
                name: entry.file.clone(),
                file,
                ann,
            }));
            state.tombstones.push(tombstones);
        }
        let (wal, records) = Wal::open(&dir.join(&manifest.wal), dimension)?;
        for record in records {
            state.apply(record, dimension);
        }
        remove_unlisted_files(dir, &manifest)?;

        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(options.threads)
            .thread_name(|index| format!("vigil-segmented-{index}"))
            .build()
            .map_err(|error| IndexError::ThreadPool(error.to_string()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            model,
            dimension,
            options,
            state: RwLock::new(state),
            writer: Mutex::new(Writer {
                wal: Some(wal),
                generation: manifest.generation,
                next_file_number: manifest.next_file_number,
            }),
            pool,
        })
    }

    /// An index that never touches the disk: no log, no segment files, everything in the
    /// growing segment (scanned exactly, without int8 codes or IVF-PQ). For encryption at rest
    /// (design 011), where plaintext embeddings must not be written; the owner rebuilds it at
    /// start from the sealed copies in the database. `seal`, `compact` and `build_ann` do
    /// nothing on it.
    pub fn in_memory(
        model: ModelId,
        dimension: usize,
        options: SegmentedOptions,
    ) -> Result<Self, IndexError> {
        if dimension == 0 {
            return Err(IndexError::AnnConfig("dimension must be positive".into()));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(options.threads)
            .thread_name(|index| format!("vigil-segmented-{index}"))
            .build()
            .map_err(|error| IndexError::ThreadPool(error.to_string()))?;
        Ok(Self {
            dir: PathBuf::new(),
            model,
            dimension,
            options,
            state: RwLock::new(State::empty()),
            writer: Mutex::new(Writer {
                wal: None,
                generation: 0,
                next_file_number: 1,
            }),
            pool,
        })
    }

    /// True for an index made by `in_memory`.
    pub fn is_in_memory(&self) -> bool {
        self.writer.lock().wal.is_none()
    }

    /// Replaces whatever `dir` holds with an index of `entries` (start-up rebuild from the
    /// store), written straight into sealed segments without the log. Feed entries in capture
    /// time order so that segments are time slices. The manifest is written last: a crash
    /// part-way leaves an empty index, to be rebuilt again.
    pub fn rebuild<I>(
        dir: &Path,
        model: ModelId,
        dimension: usize,
        options: SegmentedOptions,
        entries: I,
        progress: &mut (dyn FnMut(BuildProgress) + Send),
    ) -> Result<Self, IndexError>
    where
        I: IntoIterator<Item = (EntryMeta, Vec<f32>)>,
    {
        let manifest_path = dir.join(MANIFEST_NAME);
        if manifest_path.exists() {
            std::fs::remove_file(&manifest_path).map_err(io_error(&manifest_path))?;
            sync_parent(&manifest_path)?;
        }
        let index = Self::open(dir, model, dimension, options)?;
        let mut writer = index.writer.lock();
        let mut written = 0usize;
        let mut sealed = Vec::new();
        let mut entries = entries.into_iter().peekable();
        while entries.peek().is_some() {
            let mut chunk = Columns::default();
            let mut span: Option<(i64, i64)> = None;
            while let Some((meta, vector)) = entries.next_if(|(meta, _)| {
                chunk.len() < index.options.seal_rows
                    && span.is_none_or(|(low, high)| {
                        high.max(meta.timestamp_ms) - low.min(meta.timestamp_ms)
                            < index.options.segment_span_ms
                    })
            }) {
                index.check_vector(&vector)?;
                span = Some(
                    span.map_or((meta.timestamp_ms, meta.timestamp_ms), |(l, h)| {
                        (l.min(meta.timestamp_ms), h.max(meta.timestamp_ms))
                    }),
                );
                chunk.push(&meta, &vector);
            }
            if chunk.len() == 0 {
                // seal_rows of 0: take one entry anyway so that the loop advances
                if let Some((meta, vector)) = entries.next() {
                    index.check_vector(&vector)?;
                    chunk.push(&meta, &vector);
                }
            }
            written += chunk.len();
            sealed.push(index.write_sealed(&mut writer, &chunk, progress)?);
            progress(BuildProgress {
                phase: "segments",
                done: written,
                total: written + entries.size_hint().0,
            });
        }
        {
            let mut state = index.state.write();
            for segment in sealed {
                state.tombstones.push(Tombstones::new(segment.file.rows()));
                state.sealed.push(segment);
            }
        }
        index.checkpoint(&mut writer, true)?;
        drop(writer);
        Ok(index)
    }

    pub fn model(&self) -> &ModelId {
        &self.model
    }

    pub fn dimension(&self) -> usize {
        self.dimension
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    fn check_vector(&self, vector: &[f32]) -> Result<(), IndexError> {
        if vector.len() != self.dimension {
            return Err(IndexError::DimensionMismatch {
                model: self.model.clone(),
                expected: self.dimension,
                found: vector.len(),
            });
        }
        if vector.iter().any(|value| !value.is_finite()) {
            return Err(IndexError::NotFinite);
        }
        Ok(())
    }

    fn check_embedding(&self, embedding: &Embedding) -> Result<(), IndexError> {
        if embedding.model() != &self.model {
            return Err(IndexError::ModelMismatch {
                expected: self.model.clone(),
                found: embedding.model().clone(),
            });
        }
        self.check_vector(embedding.values())
    }

    /// Adds (or replaces) one entry; durable when this returns.
    pub fn insert(&self, meta: EntryMeta, embedding: &Embedding) -> Result<(), IndexError> {
        self.check_embedding(embedding)?;
        self.insert_batch(&[(meta, embedding.values().to_vec())])
    }

    /// Adds (or replaces) entries with one fsync for all; durable when this returns.
    /// Vectors must be unit length and of this index's model (the caller's `Embedding`s).
    pub fn insert_batch(&self, entries: &[(EntryMeta, Vec<f32>)]) -> Result<(), IndexError> {
        for (_, vector) in entries {
            self.check_vector(vector)?;
        }
        let records: Vec<WalRecord> = entries
            .iter()
            .map(|(meta, vector)| WalRecord::Insert {
                meta: *meta,
                vector: vector.clone(),
            })
            .collect();
        self.log_and_apply(records)
    }

    /// Deletes an entry (from the growing segment, or by tombstone from a sealed one);
    /// durable when this returns. False when the index did not hold it.
    pub fn delete(&self, id: u64) -> Result<bool, IndexError> {
        let held = self.contains(id);
        self.log_and_apply(vec![WalRecord::Delete { id }])?;
        Ok(held)
    }

    /// Retention: entries captured before `time_ms` stop matching at once; sealed segments
    /// wholly before it are deleted now, partly expired ones at the next `compact`.
    pub fn drop_before(&self, time_ms: i64) -> Result<usize, IndexError> {
        let mut writer = self.writer.lock();
        if let Some(wal) = writer.wal.as_mut() {
            wal.append(&WalRecord::DropBefore { time_ms })?;
            wal.sync()?;
        }
        let doomed = {
            let mut state = self.state.write();
            state.apply(WalRecord::DropBefore { time_ms }, self.dimension);
            let mut doomed = Vec::new();
            let mut keep_sealed = Vec::new();
            let mut keep_tombstones = Vec::new();
            let sealed = std::mem::take(&mut state.sealed);
            let tombstones = std::mem::take(&mut state.tombstones);
            for (segment, tombstones) in sealed.into_iter().zip(tombstones) {
                if segment.file.time_range_ms().1 < time_ms {
                    doomed.push(segment);
                } else {
                    keep_sealed.push(segment);
                    keep_tombstones.push(tombstones);
                }
            }
            state.sealed = keep_sealed;
            state.tombstones = keep_tombstones;
            doomed
        };
        let dropped = doomed.len();
        if dropped > 0 {
            self.checkpoint(&mut writer, false)?;
            self.delete_segment_files(&doomed);
        }
        Ok(dropped)
    }

    fn log_and_apply(&self, records: Vec<WalRecord>) -> Result<(), IndexError> {
        let mut writer = self.writer.lock();
        if let Some(wal) = writer.wal.as_mut() {
            for record in &records {
                wal.append(record)?;
            }
            wal.sync()?;
        }
        let should_seal = {
            let mut state = self.state.write();
            for record in records {
                state.apply(record, self.dimension);
            }
            state.growing.len() >= self.options.seal_rows
                || state
                    .growing_time_ms
                    .is_some_and(|(low, high)| high - low >= self.options.segment_span_ms)
        };
        // In memory, everything stays in the growing segment: sealing would write a file.
        if should_seal && writer.wal.is_some() {
            self.seal_locked(&mut writer, &mut |_| {})?;
        }
        Ok(())
    }

    /// Seals the growing segment into a segment file now (normally automatic at `seal_rows`
    /// or `segment_span_ms`).
    pub fn seal(&self) -> Result<(), IndexError> {
        let mut writer = self.writer.lock();
        if writer.wal.is_none() {
            return Ok(());
        }
        self.seal_locked(&mut writer, &mut |_| {})
    }

    fn seal_locked(
        &self,
        writer: &mut Writer,
        progress: &mut (dyn FnMut(BuildProgress) + Send),
    ) -> Result<(), IndexError> {
        // only the writer changes `growing`, and we hold it: this copy stays current
        let growing = self.state.read().growing.clone();
        if growing.len() == 0 {
            return Ok(());
        }
        let segment = self.write_sealed(writer, &growing, progress)?;
        {
            let mut state = self.state.write();
            state.tombstones.push(Tombstones::new(segment.file.rows()));
            state.sealed.push(segment);
            state.growing = Columns::default();
            state.growing_row_of.clear();
            state.growing_time_ms = None;
        }
        self.checkpoint(writer, true)
    }

    /// Writes a segment file (and its IVF-PQ sidecar when large enough) and maps it.
    fn write_sealed(
        &self,
        writer: &mut Writer,
        columns: &Columns,
        progress: &mut (dyn FnMut(BuildProgress) + Send),
    ) -> Result<Arc<Sealed>, IndexError> {
        let number = writer.next_file_number;
        writer.next_file_number += 1;
        let name = segment_name(number);
        let path = self.dir.join(&name);
        write_segment(&path, self.model.as_str(), self.dimension, columns)?;
        let file = SegmentFile::open(&path, self.model.as_str(), self.dimension)?;
        let ann = if file.rows() >= self.options.ann_min_rows {
            Some((ann_name(number), self.train_ann(&file, progress)?))
        } else {
            None
        };
        if let Some((ann_file, ann)) = &ann {
            write_atomically(&self.dir.join(ann_file), &ann.to_bytes())?;
        }
        Ok(Arc::new(Sealed { name, file, ann }))
    }

    fn train_ann(
        &self,
        file: &SegmentFile,
        progress: &mut (dyn FnMut(BuildProgress) + Send),
    ) -> Result<IvfPq, IndexError> {
        let params = self
            .options
            .ann_params
            .unwrap_or_else(|| IvfPqParams::for_rows(file.rows(), self.dimension));
        self.pool.install(|| {
            IvfPq::train(file.vectors(), self.dimension, &params, &mut |fraction| {
                progress(BuildProgress {
                    phase: "ivfpq",
                    done: (fraction * 1000.0) as usize,
                    total: 1000,
                })
            })
        })
    }

    /// Writes a new manifest naming the current segments; with `new_log`, also starts a new
    /// empty log (the old one's records are all in segments now) and deletes the old one.
    fn checkpoint(&self, writer: &mut Writer, new_log: bool) -> Result<(), IndexError> {
        let Some(old_log) = writer.wal.as_ref().map(|wal| wal.path().to_path_buf()) else {
            // in memory: there is no manifest or log to write
            return Ok(());
        };
        let generation = writer.generation + 1;
        let log_name = if new_log {
            let name = format!("wal-{generation:010}.log");
            writer.wal = Some(Wal::create(&self.dir.join(&name), self.dimension)?);
            name
        } else {
            old_log
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        writer.generation = generation;
        let manifest = self
            .state
            .read()
            .manifest(&self.model, self.dimension, writer, &log_name);
        write_manifest(&self.dir, &manifest)?;
        if new_log {
            // safe to fail: recovery deletes logs the manifest does not name
            let _ = std::fs::remove_file(&old_log);
        }
        Ok(())
    }

    fn delete_segment_files(&self, segments: &[Arc<Sealed>]) {
        for segment in segments {
            // the manifest no longer names them; a failed delete is retried by recovery
            let _ = std::fs::remove_file(segment.file.path());
            if let Some((name, _)) = &segment.ann {
                let _ = std::fs::remove_file(self.dir.join(name));
            }
        }
    }

    /// Rewrites sealed segments whose dead rows (tombstoned or expired) exceed
    /// `compact_dead_fraction`, dropping those rows and their tombstones. Runs beside
    /// searches (which keep reading the old files until the swap); blocks other writers.
    pub fn compact(&self) -> Result<CompactionReport, IndexError> {
        let mut writer = self.writer.lock();
        let (segments, tombstones, floor) = {
            let state = self.state.read();
            (
                state.sealed.clone(),
                state.tombstones.clone(),
                state.retention_floor_ms,
            )
        };
        let mut report = CompactionReport::default();
        let mut replacements: Vec<(usize, Option<Arc<Sealed>>)> = Vec::new();
        for (slot, (segment, tombstones)) in segments.iter().zip(&tombstones).enumerate() {
            let file = &segment.file;
            let live: Vec<usize> = (0..file.rows())
                .filter(|row| !tombstones.is_deleted(*row) && file.times()[*row] >= floor)
                .collect();
            let dead = file.rows() - live.len();
            if dead == 0 || (dead as f32) < self.options.compact_dead_fraction * file.rows() as f32
            {
                continue;
            }
            report.rows_removed += dead;
            if live.is_empty() {
                report.segments_removed += 1;
                replacements.push((slot, None));
                continue;
            }
            let mut columns = Columns::default();
            for row in live {
                columns.push(
                    &file.meta(row),
                    &file.vectors()[row * self.dimension..(row + 1) * self.dimension],
                );
            }
            report.segments_rewritten += 1;
            replacements.push((
                slot,
                Some(self.write_sealed(&mut writer, &columns, &mut |_| {})?),
            ));
        }
        if replacements.is_empty() {
            return Ok(report);
        }
        let mut retired = Vec::new();
        {
            let mut state = self.state.write();
            for (slot, replacement) in replacements.iter().rev() {
                retired.push(state.sealed[*slot].clone());
                match replacement {
                    Some(segment) => {
                        state.tombstones[*slot] = Tombstones::new(segment.file.rows());
                        state.sealed[*slot] = segment.clone();
                    }
                    None => {
                        state.sealed.remove(*slot);
                        state.tombstones.remove(*slot);
                    }
                }
            }
        }
        self.checkpoint(&mut writer, false)?;
        self.delete_segment_files(&retired);
        Ok(report)
    }

    /// Trains IVF-PQ for sealed segments of at least `ann_min_rows` rows that lack it.
    pub fn build_ann(
        &self,
        progress: &mut (dyn FnMut(BuildProgress) + Send),
    ) -> Result<usize, IndexError> {
        let mut writer = self.writer.lock();
        let segments = self.state.read().sealed.clone();
        let mut built = Vec::new();
        for (slot, segment) in segments.iter().enumerate() {
            if segment.ann.is_some() || segment.file.rows() < self.options.ann_min_rows {
                continue;
            }
            let number = writer.next_file_number;
            writer.next_file_number += 1;
            let ann = self.train_ann(&segment.file, progress)?;
            let name = ann_name(number);
            write_atomically(&self.dir.join(&name), &ann.to_bytes())?;
            let path = self.dir.join(&segment.name);
            built.push((
                slot,
                Arc::new(Sealed {
                    name: segment.name.clone(),
                    file: SegmentFile::open(&path, self.model.as_str(), self.dimension)?,
                    ann: Some((name, ann)),
                }),
            ));
        }
        let count = built.len();
        if count > 0 {
            let mut state = self.state.write();
            for (slot, segment) in built {
                state.sealed[slot] = segment;
            }
        }
        if count > 0 {
            self.checkpoint(&mut writer, false)?;
        }
        Ok(count)
    }

    pub fn contains(&self, id: u64) -> bool {
        let state = self.state.read();
        state.growing_row_of.contains_key(&id)
            || state
                .sealed
                .iter()
                .zip(&state.tombstones)
                .any(|(segment, tombstones)| {
                    segment
                        .file
                        .row_of(id)
                        .is_some_and(|row| !tombstones.is_deleted(row))
                })
    }

    pub fn stats(&self) -> IndexStats {
        let state = self.state.read();
        IndexStats {
            sealed_segments: state.sealed.len(),
            sealed_rows: state.sealed.iter().map(|s| s.file.rows()).sum(),
            growing_rows: state.growing.len(),
            deleted_rows: state.tombstones.iter().map(|t| t.ids.len()).sum(),
            ann_segments: state.sealed.iter().filter(|s| s.ann.is_some()).count(),
            retention_floor_ms: state.retention_floor_ms,
        }
    }

    /// Bytes each form of the index holds (sealed segments and the growing segment).
    pub fn memory(&self) -> MemoryReport {
        let state = self.state.read();
        let rows: usize =
            state.sealed.iter().map(|s| s.file.rows()).sum::<usize>() + state.growing.len();
        MemoryReport {
            rows,
            vectors_f32_bytes: rows * self.dimension * 4,
            int8_codes_bytes: rows * (self.dimension + 4),
            metadata_bytes: rows * 36,
            ann_bytes: state
                .sealed
                .iter()
                .filter_map(|s| s.ann.as_ref().map(|(_, ann)| ann.memory_bytes()))
                .sum(),
        }
    }

    /// Reads every byte of every sealed segment and checks its checksum.
    pub fn verify(&self) -> Result<(), IndexError> {
        let state = self.state.read();
        state
            .sealed
            .iter()
            .try_for_each(|segment| segment.file.verify_checksum())
    }

    /// Every live entry (for checks against the store).
    pub fn entries(&self) -> Vec<EntryMeta> {
        let state = self.state.read();
        let mut entries = Vec::new();
        for (segment, tombstones) in state.sealed.iter().zip(&state.tombstones) {
            for row in 0..segment.file.rows() {
                if !tombstones.is_deleted(row)
                    && segment.file.times()[row] >= state.retention_floor_ms
                {
                    entries.push(segment.file.meta(row));
                }
            }
        }
        entries.extend((0..state.growing.len()).map(|row| state.growing.meta(row)));
        entries
    }

    /// The `k` admitted entries nearest to `query`, best first, each with its exact cosine.
    pub fn search(
        &self,
        query: &Embedding,
        k: usize,
        filter: &SearchFilter,
        method: SearchMethod,
    ) -> Result<Vec<EntryHit>, IndexError> {
        self.check_embedding(query)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let state = self.state.read();
        Ok(self
            .pool
            .install(|| self.search_state(&state, query.values(), k, filter, method)))
    }

    fn views<'a>(&self, state: &'a State, filter: &'a SearchFilter) -> Vec<SegmentView<'a>> {
        let floor_ms = state.retention_floor_ms;
        let mut views: Vec<SegmentView<'a>> = state
            .sealed
            .iter()
            .zip(&state.tombstones)
            .enumerate()
            .filter(|(_, (segment, _))| {
                let (low, high) = segment.file.time_range_ms();
                high >= floor_ms && filter.may_overlap_time(low, high)
            })
            .map(|(slot, (segment, tombstones))| {
                let file = &segment.file;
                SegmentView {
                    ids: file.ids(),
                    kinds: file.kinds(),
                    subjects: file.subjects(),
                    cameras: file.cameras(),
                    times: file.times(),
                    vectors: file.vectors(),
                    codes: Some((file.codes(), file.scales())),
                    tombstones: Some(tombstones),
                    filter,
                    floor_ms,
                    admits_all: filter.admits_all()
                        && tombstones.ids.is_empty()
                        && file.time_range_ms().0 >= floor_ms,
                    slot,
                }
            })
            .collect();
        let growing = &state.growing;
        views.push(SegmentView {
            ids: &growing.ids,
            kinds: &growing.kinds,
            subjects: &growing.subjects,
            cameras: &growing.cameras,
            times: &growing.times,
            vectors: &growing.vectors,
            codes: None,
            tombstones: None,
            filter,
            floor_ms,
            // drop_before already removed expired growing rows
            admits_all: filter.admits_all(),
            slot: state.sealed.len(),
        });
        views
    }

    fn search_state(
        &self,
        state: &State,
        query: &[f32],
        k: usize,
        filter: &SearchFilter,
        method: SearchMethod,
    ) -> Vec<EntryHit> {
        let kernels = KernelSet::detect();
        let dimension = self.dimension;
        let views = self.views(state, filter);
        let scan_exact = |view: &SegmentView<'_>, depth: usize| -> TopK {
            let view = *view;
            let block = move |first: usize, rows: usize, scores: &mut [f32]| {
                kernels.dot_rows(
                    query,
                    &view.vectors[first * dimension..(first + rows) * dimension],
                    scores,
                )
            };
            task_ranges(view.rows(), MIN_ROWS_PER_TASK)
                .into_par_iter()
                .map(|range| {
                    let mut top = TopK::new(depth);
                    view.scan(range, &mut top, &block);
                    top
                })
                .reduce(|| TopK::new(depth), TopK::merge)
        };
        let quantized = QuantizedQuery::new(query);
        let per_view = |view: &SegmentView<'_>| -> TopK {
            if view.rows() == 0 {
                return TopK::new(k);
            }
            let approximate = match (method, view.codes) {
                (SearchMethod::Exact, _) | (_, None) => return scan_exact(view, k),
                (SearchMethod::Int8 { rerank_factor }, Some((codes, scales))) => {
                    let depth = k.saturating_mul(rerank_factor.max(1));
                    let block = |first: usize, rows: usize, scores: &mut [f32]| {
                        kernels.dot_rows_int8(
                            &quantized,
                            &codes[first * dimension..(first + rows) * dimension],
                            &scales[first..first + rows],
                            scores,
                        )
                    };
                    task_ranges(view.rows(), MIN_ROWS_PER_TASK)
                        .into_par_iter()
                        .map(|range| {
                            let mut top = TopK::new(depth);
                            view.scan(range, &mut top, &block);
                            top
                        })
                        .reduce(|| TopK::new(depth), TopK::merge)
                        .into_sorted()
                }
                (SearchMethod::Ann { nprobe, rerank }, Some(_)) => {
                    let Some((_, ann)) = state.sealed[view.slot].ann.as_ref() else {
                        return scan_exact(view, k);
                    };
                    let candidates =
                        ann.search(query, nprobe, rerank.max(k), &|row| view.admits(row));
                    if candidates.len() < k {
                        // a selective filter left too few rows in the probed lists
                        return scan_exact(view, k);
                    }
                    candidates
                }
            };
            let mut top = TopK::new(k);
            let mut score = [0f32];
            for candidate in approximate {
                let row = candidate.row & ((1 << ROW_BITS) - 1);
                kernels.dot_rows(query, view.vector(row, dimension), &mut score);
                top.offer(view.candidate(row, score[0]));
            }
            top
        };
        let best = views
            .par_iter()
            .map(per_view)
            .reduce(|| TopK::new(k), TopK::merge)
            .into_sorted();
        best.iter()
            .map(|candidate| {
                let slot = candidate.row >> ROW_BITS;
                let row = candidate.row & ((1 << ROW_BITS) - 1);
                let entry = match state.sealed.get(slot) {
                    Some(segment) => segment.file.meta(row),
                    None => state.growing.meta(row),
                };
                EntryHit {
                    entry,
                    score: candidate.score,
                }
            })
            .collect()
    }
}

fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), IndexError> {
    let path = dir.join(MANIFEST_NAME);
    let bytes = serde_json::to_vec(manifest).map_err(|error| IndexError::Corrupt {
        path: path.clone(),
        reason: error.to_string(),
    })?;
    write_atomically(&path, &bytes)
}

/// Deletes what a crash can leave behind: temporary files, and segments, sidecars and logs
/// that the manifest does not name.
fn remove_unlisted_files(dir: &Path, manifest: &Manifest) -> Result<(), IndexError> {
    let mut listed: BTreeSet<&str> = BTreeSet::new();
    listed.insert(MANIFEST_NAME);
    listed.insert(&manifest.wal);
    for segment in &manifest.segments {
        listed.insert(&segment.file);
        if let Some(ann) = &segment.ann {
            listed.insert(ann);
        }
    }
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name.ends_with(".tmp")
            || name.ends_with(".vseg")
            || name.ends_with(".ivfpq")
            || (name.starts_with("wal-") && name.ends_with(".log"));
        if ours && !listed.contains(name.as_str()) {
            std::fs::remove_file(entry.path()).map_err(io_error(&entry.path()))?;
        }
    }
    Ok(())
}
