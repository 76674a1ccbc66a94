//! Write-ahead log of the growing segment: every insert, delete and retention drop since the
//! last checkpoint, each record length-prefixed and checksummed. A mutation is acknowledged
//! once its record is fsynced; on recovery the log is replayed up to the first torn or
//! corrupt record, and the file is cut there so later appends follow valid records.

use crate::entry::EntryMeta;
use crate::segment::io_error;
use crate::IndexError;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"VIGILWAL";
pub(crate) const WAL_FORMAT_VERSION: u32 = 1;
const HEADER_BYTES: u64 = 16;
/// Longer records are corrupt: a 4096-d insert is about 16 KiB.
const MAX_RECORD_BYTES: usize = 1 << 20;

const OPERATION_INSERT: u8 = 1;
const OPERATION_DELETE: u8 = 2;
const OPERATION_DROP_BEFORE: u8 = 3;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WalRecord {
    Insert { meta: EntryMeta, vector: Vec<f32> },
    Delete { id: u64 },
    DropBefore { time_ms: i64 },
}

impl WalRecord {
    fn encode(&self, payload: &mut Vec<u8>) {
        match self {
            Self::Insert { meta, vector } => {
                payload.push(OPERATION_INSERT);
                payload.extend_from_slice(&meta.id.to_le_bytes());
                payload.extend_from_slice(&meta.kind.0.to_le_bytes());
                payload.extend_from_slice(&meta.stored_subject().to_le_bytes());
                payload.extend_from_slice(&meta.stored_camera().to_le_bytes());
                payload.extend_from_slice(&meta.timestamp_ms.to_le_bytes());
                for value in vector {
                    payload.extend_from_slice(&value.to_le_bytes());
                }
            }
            Self::Delete { id } => {
                payload.push(OPERATION_DELETE);
                payload.extend_from_slice(&id.to_le_bytes());
            }
            Self::DropBefore { time_ms } => {
                payload.push(OPERATION_DROP_BEFORE);
                payload.extend_from_slice(&time_ms.to_le_bytes());
            }
        }
    }

    fn decode(payload: &[u8], dimension: usize) -> Option<Self> {
        let (&operation, rest) = payload.split_first()?;
        let u64_at = |at: usize| -> Option<u64> {
            Some(u64::from_le_bytes(rest.get(at..at + 8)?.try_into().ok()?))
        };
        match operation {
            OPERATION_INSERT if rest.len() == 36 + dimension * 4 => {
                let kind = u32::from_le_bytes(rest.get(8..12)?.try_into().ok()?);
                let meta = EntryMeta::from_stored(
                    u64_at(0)?,
                    kind,
                    u64_at(12)? as i64,
                    u64_at(20)?,
                    u64_at(28)? as i64,
                );
                let vector = rest[36..]
                    .chunks_exact(4)
                    .map(|bytes| f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
                    .collect();
                Some(Self::Insert { meta, vector })
            }
            OPERATION_DELETE if rest.len() == 8 => Some(Self::Delete { id: u64_at(0)? }),
            OPERATION_DROP_BEFORE if rest.len() == 8 => Some(Self::DropBefore {
                time_ms: u64_at(0)? as i64,
            }),
            _ => None,
        }
    }
}

/// An open log, positioned after its last valid record.
pub(crate) struct Wal {
    path: PathBuf,
    writer: BufWriter<File>,
    payload: Vec<u8>,
}

impl Wal {
    /// Creates an empty log (fsynced, directory entry included).
    pub(crate) fn create(path: &Path, dimension: usize) -> Result<Self, IndexError> {
        let mut file = File::create(path).map_err(io_error(path))?;
        let mut header = Vec::with_capacity(HEADER_BYTES as usize);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&WAL_FORMAT_VERSION.to_le_bytes());
        header.extend_from_slice(&(dimension as u32).to_le_bytes());
        file.write_all(&header).map_err(io_error(path))?;
        file.sync_all().map_err(io_error(path))?;
        crate::segment::sync_parent(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            writer: BufWriter::with_capacity(1 << 16, file),
            payload: Vec::new(),
        })
    }

    /// Reads every valid record, cuts off a torn tail, and opens the log for appending.
    pub(crate) fn open(
        path: &Path,
        dimension: usize,
    ) -> Result<(Self, Vec<WalRecord>), IndexError> {
        let corrupt = |reason: &str| IndexError::Corrupt {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io_error(path))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_error(path))?;
        if bytes.len() < HEADER_BYTES as usize {
            // the header is fsynced before the manifest names this log, so it cannot be torn
            return Err(corrupt("write-ahead log shorter than its header"));
        }
        if &bytes[..8] != MAGIC {
            return Err(corrupt("not a vigil write-ahead log"));
        }
        let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if version != WAL_FORMAT_VERSION {
            return Err(IndexError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
                supported: WAL_FORMAT_VERSION,
            });
        }
        let file_dimension = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        if file_dimension as usize != dimension {
            return Err(corrupt("write-ahead log of another dimension"));
        }
        let mut records = Vec::new();
        let mut valid_end = HEADER_BYTES as usize;
        while let Some(record_header) = bytes.get(valid_end..valid_end + 8) {
            let length = u32::from_le_bytes([
                record_header[0],
                record_header[1],
                record_header[2],
                record_header[3],
            ]) as usize;
            let checksum = u32::from_le_bytes([
                record_header[4],
                record_header[5],
                record_header[6],
                record_header[7],
            ]);
            if length > MAX_RECORD_BYTES {
                break;
            }
            let Some(payload) = bytes.get(valid_end + 8..valid_end + 8 + length) else {
                break;
            };
            if crc32fast::hash(payload) != checksum {
                break;
            }
            let Some(record) = WalRecord::decode(payload, dimension) else {
                break;
            };
            records.push(record);
            valid_end += 8 + length;
        }
        if valid_end < bytes.len() {
            file.set_len(valid_end as u64).map_err(io_error(path))?;
            file.sync_all().map_err(io_error(path))?;
        }
        file.seek(SeekFrom::Start(valid_end as u64))
            .map_err(io_error(path))?;
        Ok((
            Self {
                path: path.to_path_buf(),
                writer: BufWriter::with_capacity(1 << 16, file),
                payload: Vec::new(),
            },
            records,
        ))
    }

    /// Buffers a record; durable only after [`Wal::sync`].
    pub(crate) fn append(&mut self, record: &WalRecord) -> Result<(), IndexError> {
        self.payload.clear();
        record.encode(&mut self.payload);
        let mut header = [0u8; 8];
        header[..4].copy_from_slice(&(self.payload.len() as u32).to_le_bytes());
        header[4..].copy_from_slice(&crc32fast::hash(&self.payload).to_le_bytes());
        self.writer
            .write_all(&header)
            .and_then(|()| self.writer.write_all(&self.payload))
            .map_err(io_error(&self.path))
    }

    /// Flushes and fsyncs: every record appended so far survives a crash.
    pub(crate) fn sync(&mut self) -> Result<(), IndexError> {
        self.writer.flush().map_err(io_error(&self.path))?;
        self.writer
            .get_ref()
            .sync_data()
            .map_err(io_error(&self.path))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{CameraId, EntryKind};
    use vigil_base::SubjectId;

    fn insert(id: u64) -> WalRecord {
        WalRecord::Insert {
            meta: EntryMeta {
                id,
                kind: EntryKind::SIGHTING,
                subject: id.is_multiple_of(2).then_some(SubjectId(id as i64)),
                camera: Some(CameraId(7)),
                timestamp_ms: 1000 + id as i64,
            },
            vector: vec![id as f32, -1.5, 0.25],
        }
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.log");
        let mut wal = Wal::create(&path, 3).unwrap();
        let written = vec![
            insert(1),
            WalRecord::Delete { id: 1 },
            insert(2),
            WalRecord::DropBefore { time_ms: -5 },
        ];
        for record in &written {
            wal.append(record).unwrap();
        }
        wal.sync().unwrap();
        drop(wal);
        // a half-written fifth record, as a crash mid-append leaves it
        let full_length = std::fs::metadata(&path).unwrap().len();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[40, 0, 0, 0, 1, 2, 3, 4, 1, 9]).unwrap();
        drop(file);

        let (mut wal, records) = Wal::open(&path, 3).unwrap();
        assert_eq!(records, written);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), full_length);
        wal.append(&insert(3)).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (_, records) = Wal::open(&path, 3).unwrap();
        assert_eq!(records.len(), 5);
        assert_eq!(records[4], insert(3));
    }

    #[test]
    fn a_flipped_bit_ends_replay_at_that_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.log");
        let mut wal = Wal::create(&path, 3).unwrap();
        for id in 0..3 {
            wal.append(&insert(id)).unwrap();
        }
        wal.sync().unwrap();
        drop(wal);
        let mut bytes = std::fs::read(&path).unwrap();
        let record_bytes = (bytes.len() - HEADER_BYTES as usize) / 3;
        bytes[HEADER_BYTES as usize + record_bytes + 20] ^= 0x10;
        std::fs::write(&path, &bytes).unwrap();
        let (_, records) = Wal::open(&path, 3).unwrap();
        assert_eq!(records, vec![insert(0)]);
    }
}
