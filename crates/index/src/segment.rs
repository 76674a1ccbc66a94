//! Segment files: an immutable, memory-mapped column store of one time slice of the index.
//!
//! Layout (little-endian), version 1:
//! - header, 128 bytes: magic `VIGILSEG`, format version u32, dimension u32, rows u64,
//!   min/max capture time i64, model name length u32 and up to 64 bytes of name, crc32 of the
//!   header bytes before it;
//! - columns, each starting on a 64-byte boundary, in this order: ids u64, kinds u32,
//!   subjects i64, cameras u64, capture times i64, vectors f32 (rows × dimension),
//!   int8 codes (rows × dimension), int8 scales f32;
//! - trailer: crc32 of everything before it, then `VIGILEND`.
//!
//! Rows are sorted by id, so a delete finds its row by binary search without a global map.
//! Column offsets follow from rows and dimension, so there is no offset table to corrupt.

use crate::entry::EntryMeta;
use crate::quantize::quantize_row;
use crate::IndexError;
use memmap2::Mmap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

#[cfg(target_endian = "big")]
compile_error!("segment files are little-endian and read in place; big-endian is not supported");

const MAGIC: &[u8; 8] = b"VIGILSEG";
const END_MAGIC: &[u8; 8] = b"VIGILEND";
/// Bumped on any layout change; readers refuse other versions (see the fixture test).
pub const SEGMENT_FORMAT_VERSION: u32 = 1;
const HEADER_BYTES: usize = 128;
const MODEL_NAME_BYTES: usize = 64;
const COLUMN_ALIGN: usize = 64;
const TRAILER_BYTES: usize = 12;

/// Byte offsets of each column in a file of `rows` rows.
#[derive(Debug, Clone, Copy)]
struct Layout {
    ids: usize,
    kinds: usize,
    subjects: usize,
    cameras: usize,
    times: usize,
    vectors: usize,
    codes: usize,
    scales: usize,
    trailer: usize,
}

fn align(offset: usize) -> usize {
    offset.div_ceil(COLUMN_ALIGN) * COLUMN_ALIGN
}

impl Layout {
    fn new(rows: usize, dimension: usize) -> Self {
        let ids = HEADER_BYTES;
        let kinds = align(ids + rows * 8);
        let subjects = align(kinds + rows * 4);
        let cameras = align(subjects + rows * 8);
        let times = align(cameras + rows * 8);
        let vectors = align(times + rows * 8);
        let codes = align(vectors + rows * dimension * 4);
        let scales = align(codes + rows * dimension);
        let trailer = align(scales + rows * 4);
        Self {
            ids,
            kinds,
            subjects,
            cameras,
            times,
            vectors,
            codes,
            scales,
            trailer,
        }
    }

    fn file_bytes(&self) -> usize {
        self.trailer + TRAILER_BYTES
    }
}

pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> IndexError + '_ {
    move |source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Rows on their way into a segment file, in memory, column by column.
#[derive(Debug, Clone, Default)]
pub(crate) struct Columns {
    pub(crate) ids: Vec<u64>,
    pub(crate) kinds: Vec<u32>,
    pub(crate) subjects: Vec<i64>,
    pub(crate) cameras: Vec<u64>,
    pub(crate) times: Vec<i64>,
    pub(crate) vectors: Vec<f32>,
}

impl Columns {
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(crate) fn push(&mut self, meta: &EntryMeta, vector: &[f32]) {
        self.ids.push(meta.id);
        self.kinds.push(meta.kind.0);
        self.subjects.push(meta.stored_subject());
        self.cameras.push(meta.stored_camera());
        self.times.push(meta.timestamp_ms);
        self.vectors.extend_from_slice(vector);
    }

    /// Removes row `row`; the last row takes its place.
    pub(crate) fn swap_remove(&mut self, row: usize, dimension: usize) {
        let last = self.len() - 1;
        if row != last {
            self.vectors
                .copy_within(last * dimension..(last + 1) * dimension, row * dimension);
        }
        self.vectors.truncate(last * dimension);
        self.ids.swap_remove(row);
        self.kinds.swap_remove(row);
        self.subjects.swap_remove(row);
        self.cameras.swap_remove(row);
        self.times.swap_remove(row);
    }

    pub(crate) fn meta(&self, row: usize) -> EntryMeta {
        EntryMeta::from_stored(
            self.ids[row],
            self.kinds[row],
            self.subjects[row],
            self.cameras[row],
            self.times[row],
        )
    }

    /// The same rows ordered by id, as a segment file stores them.
    fn sorted_by_id(&self, dimension: usize) -> Self {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_unstable_by_key(|&row| self.ids[row]);
        let mut sorted = Self::default();
        for row in order {
            sorted.push(
                &self.meta(row),
                &self.vectors[row * dimension..(row + 1) * dimension],
            );
        }
        sorted
    }
}

/// Writes `columns` as a segment file at `path` (through a temporary name, fsynced, renamed,
/// directory fsynced): after it returns the file is complete and durable, and a crash before
/// leaves at most an ignored `*.tmp`.
pub(crate) fn write_segment(
    path: &Path,
    model: &str,
    dimension: usize,
    columns: &Columns,
) -> Result<(), IndexError> {
    if model.len() > MODEL_NAME_BYTES {
        return Err(IndexError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("model name longer than {MODEL_NAME_BYTES} bytes"),
        });
    }
    let columns = columns.sorted_by_id(dimension);
    let rows = columns.len();
    let layout = Layout::new(rows, dimension);
    let min_time = columns.times.iter().copied().min().unwrap_or(0);
    let max_time = columns.times.iter().copied().max().unwrap_or(0);

    let mut header = Vec::with_capacity(HEADER_BYTES);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&SEGMENT_FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&(dimension as u32).to_le_bytes());
    header.extend_from_slice(&(rows as u64).to_le_bytes());
    header.extend_from_slice(&min_time.to_le_bytes());
    header.extend_from_slice(&max_time.to_le_bytes());
    header.extend_from_slice(&(model.len() as u32).to_le_bytes());
    let mut name = [0u8; MODEL_NAME_BYTES];
    name[..model.len()].copy_from_slice(model.as_bytes());
    header.extend_from_slice(&name);
    let header_crc = crc32fast::hash(&header);
    header.extend_from_slice(&header_crc.to_le_bytes());
    header.resize(HEADER_BYTES, 0);

    let temporary = temporary_path(path);
    let file = File::create(&temporary).map_err(io_error(&temporary))?;
    let mut out = ChecksummedWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        hasher: crc32fast::Hasher::new(),
        written: 0,
    };
    let write = |out: &mut ChecksummedWriter, bytes: &[u8]| {
        out.write_all(bytes).map_err(io_error(&temporary))
    };
    write(&mut out, &header)?;
    let column_error = io_error(&temporary);
    let columns_written = (|| {
        pad_to(&mut out, layout.ids)?;
        write_all(&mut out, &columns.ids, u64::to_le_bytes)?;
        pad_to(&mut out, layout.kinds)?;
        write_all(&mut out, &columns.kinds, u32::to_le_bytes)?;
        pad_to(&mut out, layout.subjects)?;
        write_all(&mut out, &columns.subjects, i64::to_le_bytes)?;
        pad_to(&mut out, layout.cameras)?;
        write_all(&mut out, &columns.cameras, u64::to_le_bytes)?;
        pad_to(&mut out, layout.times)?;
        write_all(&mut out, &columns.times, i64::to_le_bytes)?;
        pad_to(&mut out, layout.vectors)?;
        write_all(&mut out, &columns.vectors, f32::to_le_bytes)
    })();
    columns_written.map_err(column_error)?;
    let mut codes = vec![0i8; dimension];
    let mut scales = Vec::with_capacity(rows);
    pad_to(&mut out, layout.codes).map_err(io_error(&temporary))?;
    for row in columns.vectors.chunks_exact(dimension.max(1)) {
        scales.push(quantize_row(row, &mut codes));
        let bytes: Vec<u8> = codes.iter().map(|code| *code as u8).collect();
        write(&mut out, &bytes)?;
    }
    pad_to(&mut out, layout.scales).map_err(io_error(&temporary))?;
    write_all(&mut out, &scales, f32::to_le_bytes).map_err(io_error(&temporary))?;
    pad_to(&mut out, layout.trailer).map_err(io_error(&temporary))?;
    let checksum = out.hasher.clone().finalize();
    write(&mut out, &checksum.to_le_bytes())?;
    write(&mut out, END_MAGIC)?;
    let file = out
        .inner
        .into_inner()
        .map_err(|error| io_error(&temporary)(error.into_error()))?;
    file.sync_all().map_err(io_error(&temporary))?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(io_error(path))?;
    sync_parent(path)
}

/// `name.tmp` beside `path`: recovery deletes any such file it finds.
pub(crate) fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Makes a rename or create in `path`'s directory durable.
pub(crate) fn sync_parent(path: &Path) -> Result<(), IndexError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|dir_file| dir_file.sync_all())
        .map_err(io_error(dir))
}

struct ChecksummedWriter {
    inner: BufWriter<File>,
    hasher: crc32fast::Hasher,
    written: usize,
}

impl Write for ChecksummedWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.hasher.update(&bytes[..written]);
        self.written += written;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn pad_to(out: &mut ChecksummedWriter, offset: usize) -> std::io::Result<()> {
    let padding = offset.saturating_sub(out.written);
    out.write_all(&vec![0u8; padding])
}

fn write_all<T: Copy, const N: usize>(
    out: &mut ChecksummedWriter,
    values: &[T],
    to_bytes: fn(T) -> [u8; N],
) -> std::io::Result<()> {
    let mut buffer = Vec::with_capacity(N * 8192);
    for chunk in values.chunks(8192) {
        buffer.clear();
        for value in chunk {
            buffer.extend_from_slice(&to_bytes(*value));
        }
        out.write_all(&buffer)?;
    }
    Ok(())
}

/// A sealed segment, memory-mapped read-only.
pub(crate) struct SegmentFile {
    path: PathBuf,
    map: Mmap,
    layout: Layout,
    rows: usize,
    dimension: usize,
    min_time_ms: i64,
    max_time_ms: i64,
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Reinterprets a mapped byte range as `T`s; `None` when misaligned (never, for files laid out
/// by `Layout` and mapped at a page boundary).
fn cast<T: Copy>(bytes: &[u8]) -> Option<&[T]> {
    // SAFETY: T is only ever a plain integer or float, for which every bit pattern is valid;
    // `align_to` puts any misaligned prefix in the first slice, which must then be empty.
    let (prefix, values, suffix) = unsafe { bytes.align_to::<T>() };
    (prefix.is_empty() && suffix.is_empty()).then_some(values)
}

impl SegmentFile {
    /// Maps `path` and checks its header, size and trailer (not the full checksum: that would
    /// read every byte; see [`SegmentFile::verify_checksum`]).
    pub(crate) fn open(path: &Path, model: &str, dimension: usize) -> Result<Self, IndexError> {
        let corrupt = |reason: String| IndexError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let file = File::open(path).map_err(io_error(path))?;
        // SAFETY: segment files are never modified after their rename; the index only
        // deletes them, which leaves an existing mapping valid on Unix.
        let map = unsafe { Mmap::map(&file) }.map_err(io_error(path))?;
        if map.len() < HEADER_BYTES || &map[..8] != MAGIC {
            return Err(corrupt("not a vigil segment file".into()));
        }
        let version = read_u32(&map, 8);
        if version != SEGMENT_FORMAT_VERSION {
            return Err(IndexError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
                supported: SEGMENT_FORMAT_VERSION,
            });
        }
        let crc_at = 44 + MODEL_NAME_BYTES;
        if crc32fast::hash(&map[..crc_at]) != read_u32(&map, crc_at) {
            return Err(corrupt("header checksum mismatch".into()));
        }
        let file_dimension = read_u32(&map, 12) as usize;
        let rows = usize::try_from(read_u64(&map, 16))
            .map_err(|_| corrupt("row count too large".into()))?;
        let min_time_ms = read_u64(&map, 24) as i64;
        let max_time_ms = read_u64(&map, 32) as i64;
        let name_length = (read_u32(&map, 40) as usize).min(MODEL_NAME_BYTES);
        let file_model = String::from_utf8_lossy(&map[44..44 + name_length]).into_owned();
        if file_model != model || file_dimension != dimension {
            return Err(corrupt(format!(
                "holds model {file_model} ({file_dimension}-d), expected {model} ({dimension}-d)"
            )));
        }
        if rows > map.len() / (dimension * 5 + 40) {
            return Err(corrupt("row count exceeds the file size".into()));
        }
        let layout = Layout::new(rows, dimension);
        if map.len() != layout.file_bytes() || &map[layout.trailer + 4..] != END_MAGIC {
            return Err(corrupt(format!(
                "{} bytes, expected {} with an end marker",
                map.len(),
                layout.file_bytes()
            )));
        }
        let segment = Self {
            path: path.to_path_buf(),
            map,
            layout,
            rows,
            dimension,
            min_time_ms,
            max_time_ms,
        };
        segment.check_columns_castable()?;
        Ok(segment)
    }

    fn check_columns_castable(&self) -> Result<(), IndexError> {
        let ok = cast::<u64>(self.bytes(self.layout.ids, 8)).is_some()
            && cast::<u32>(self.bytes(self.layout.kinds, 4)).is_some()
            && cast::<f32>(self.bytes(self.layout.vectors, 4 * self.dimension)).is_some();
        if ok {
            Ok(())
        } else {
            Err(IndexError::Corrupt {
                path: self.path.clone(),
                reason: "columns are not aligned in memory".into(),
            })
        }
    }

    /// Reads every byte and compares the trailer checksum.
    pub(crate) fn verify_checksum(&self) -> Result<(), IndexError> {
        let stored = read_u32(&self.map, self.layout.trailer);
        if crc32fast::hash(&self.map[..self.layout.trailer]) == stored {
            Ok(())
        } else {
            Err(IndexError::Corrupt {
                path: self.path.clone(),
                reason: "checksum mismatch".into(),
            })
        }
    }

    fn bytes(&self, offset: usize, bytes_per_row: usize) -> &[u8] {
        &self.map[offset..offset + self.rows * bytes_per_row]
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    pub(crate) fn time_range_ms(&self) -> (i64, i64) {
        (self.min_time_ms, self.max_time_ms)
    }

    // Each column was checked castable at open, so these never fall back to empty.
    pub(crate) fn ids(&self) -> &[u64] {
        cast(self.bytes(self.layout.ids, 8)).unwrap_or_default()
    }
    pub(crate) fn kinds(&self) -> &[u32] {
        cast(self.bytes(self.layout.kinds, 4)).unwrap_or_default()
    }
    pub(crate) fn subjects(&self) -> &[i64] {
        cast(self.bytes(self.layout.subjects, 8)).unwrap_or_default()
    }
    pub(crate) fn cameras(&self) -> &[u64] {
        cast(self.bytes(self.layout.cameras, 8)).unwrap_or_default()
    }
    pub(crate) fn times(&self) -> &[i64] {
        cast(self.bytes(self.layout.times, 8)).unwrap_or_default()
    }
    pub(crate) fn vectors(&self) -> &[f32] {
        cast(self.bytes(self.layout.vectors, 4 * self.dimension)).unwrap_or_default()
    }
    pub(crate) fn codes(&self) -> &[i8] {
        cast(self.bytes(self.layout.codes, self.dimension)).unwrap_or_default()
    }
    pub(crate) fn scales(&self) -> &[f32] {
        cast(self.bytes(self.layout.scales, 4)).unwrap_or_default()
    }

    /// Row holding `id`, by binary search over the sorted id column.
    pub(crate) fn row_of(&self, id: u64) -> Option<usize> {
        self.ids().binary_search(&id).ok()
    }

    pub(crate) fn meta(&self, row: usize) -> EntryMeta {
        EntryMeta::from_stored(
            self.ids()[row],
            self.kinds()[row],
            self.subjects()[row],
            self.cameras()[row],
            self.times()[row],
        )
    }
}
