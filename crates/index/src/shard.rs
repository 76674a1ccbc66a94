//! A remote shard's wire protocol, as used by the scale simulation
//! (`crates/bench/examples/shard_sim.rs`): length-prefixed little-endian frames over TCP. A
//! request carries k, the search method and the query; a response the shard's top-k (id, exact
//! score) and its own search time, so the coordinator can separate search time from fan-out and
//! merge overhead.

use crate::entry::{SearchFilter, SearchMethod};
use crate::segmented::SegmentedIndex;
use crate::IndexError;
use std::io::{Read, Write};
use std::time::Instant;
use vigil_base::Embedding;

/// Frames longer than this are refused: a 4096-d query is 16 KiB, 10,000 hits 120 KiB.
const MAX_FRAME_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq)]
pub struct ShardRequest {
    pub k: u32,
    pub method: SearchMethod,
    pub query: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShardResponse {
    /// Best first.
    pub hits: Vec<(u64, f32)>,
    pub search_micros: u64,
}

fn protocol(message: impl Into<String>) -> IndexError {
    IndexError::Shard(message.into())
}

fn io(error: std::io::Error) -> IndexError {
    IndexError::Shard(error.to_string())
}

fn write_frame(stream: &mut impl Write, payload: &[u8]) -> Result<(), IndexError> {
    stream
        .write_all(&(payload.len() as u32).to_le_bytes())
        .and_then(|()| stream.write_all(payload))
        .and_then(|()| stream.flush())
        .map_err(io)
}

/// `None` on a clean end of stream between frames.
fn read_frame(stream: &mut impl Read) -> Result<Option<Vec<u8>>, IndexError> {
    let mut length = [0u8; 4];
    match stream.read_exact(&mut length) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(io(error)),
    }
    let length = u32::from_le_bytes(length) as usize;
    if length > MAX_FRAME_BYTES {
        return Err(protocol(format!("frame of {length} bytes")));
    }
    let mut payload = vec![0u8; length];
    stream.read_exact(&mut payload).map_err(io)?;
    Ok(Some(payload))
}

fn word(payload: &[u8], at: usize) -> Result<u32, IndexError> {
    payload
        .get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| protocol("truncated frame"))
}

pub fn write_request(stream: &mut impl Write, request: &ShardRequest) -> Result<(), IndexError> {
    let (tag, first, second) = match request.method {
        SearchMethod::Exact => (0u32, 0, 0),
        SearchMethod::Int8 { rerank_factor } => (1, rerank_factor as u32, 0),
        SearchMethod::Ann { nprobe, rerank } => (2, nprobe as u32, rerank as u32),
    };
    let mut payload = Vec::with_capacity(16 + request.query.len() * 4);
    for value in [request.k, tag, first, second] {
        payload.extend_from_slice(&value.to_le_bytes());
    }
    for value in &request.query {
        payload.extend_from_slice(&value.to_le_bytes());
    }
    write_frame(stream, &payload)
}

pub fn read_request(stream: &mut impl Read) -> Result<Option<ShardRequest>, IndexError> {
    let Some(payload) = read_frame(stream)? else {
        return Ok(None);
    };
    let k = word(&payload, 0)?;
    let first = word(&payload, 8)? as usize;
    let second = word(&payload, 12)? as usize;
    let method = match word(&payload, 4)? {
        0 => SearchMethod::Exact,
        1 => SearchMethod::Int8 {
            rerank_factor: first,
        },
        2 => SearchMethod::Ann {
            nprobe: first,
            rerank: second,
        },
        other => return Err(protocol(format!("unknown search method {other}"))),
    };
    let query = payload[16..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok(Some(ShardRequest { k, method, query }))
}

pub fn write_response(stream: &mut impl Write, response: &ShardResponse) -> Result<(), IndexError> {
    let mut payload = Vec::with_capacity(8 + response.hits.len() * 12);
    payload.extend_from_slice(&response.search_micros.to_le_bytes());
    for (id, score) in &response.hits {
        payload.extend_from_slice(&id.to_le_bytes());
        payload.extend_from_slice(&score.to_le_bytes());
    }
    write_frame(stream, &payload)
}

pub fn read_response(stream: &mut impl Read) -> Result<ShardResponse, IndexError> {
    let payload = read_frame(stream)?.ok_or_else(|| protocol("shard closed the connection"))?;
    let micros = payload
        .get(..8)
        .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
        .ok_or_else(|| protocol("truncated response"))?;
    if (payload.len() - 8) % 12 != 0 {
        return Err(protocol("response is not whole hits"));
    }
    let hits = payload[8..]
        .chunks_exact(12)
        .map(|b| {
            let mut id = [0u8; 8];
            id.copy_from_slice(&b[..8]);
            (
                u64::from_le_bytes(id),
                f32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            )
        })
        .collect();
    Ok(ShardResponse {
        hits,
        search_micros: micros,
    })
}

/// Answers requests on one connection until the peer closes it.
pub fn serve_connection(
    stream: &mut (impl Read + Write),
    index: &SegmentedIndex,
) -> Result<(), IndexError> {
    while let Some(request) = read_request(stream)? {
        let started = Instant::now();
        let query = Embedding::normalised(index.model().clone(), request.query)
            .map_err(|error| protocol(format!("query: {error}")))?;
        let hits = index.search(
            &query,
            request.k as usize,
            &SearchFilter::all(),
            request.method,
        )?;
        let response = ShardResponse {
            hits: hits.iter().map(|hit| (hit.entry.id, hit.score)).collect(),
            search_micros: started.elapsed().as_micros() as u64,
        };
        write_response(stream, &response)?;
    }
    Ok(())
}

/// The coordinator's merge: the `k` best of every shard's best-first list, ties by id.
pub fn merge_top_k(shard_hits: &[Vec<(u64, f32)>], k: usize) -> Vec<(u64, f32)> {
    let mut all: Vec<(u64, f32)> = shard_hits.iter().flatten().copied().collect();
    all.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_merge_keeps_the_global_best() {
        let request = ShardRequest {
            k: 10,
            method: SearchMethod::Ann {
                nprobe: 32,
                rerank: 100,
            },
            query: vec![0.5, -0.25],
        };
        let mut buffer = Vec::new();
        write_request(&mut buffer, &request).unwrap();
        let mut reader = buffer.as_slice();
        assert_eq!(read_request(&mut reader).unwrap(), Some(request));
        assert_eq!(read_request(&mut reader).unwrap(), None);

        let response = ShardResponse {
            hits: vec![(3, 0.9), (1, 0.5)],
            search_micros: 77,
        };
        let mut buffer = Vec::new();
        write_response(&mut buffer, &response).unwrap();
        assert_eq!(read_response(&mut buffer.as_slice()).unwrap(), response);

        let merged = merge_top_k(&[vec![(3, 0.9), (1, 0.5)], vec![(2, 0.7), (4, 0.5)]], 3);
        assert_eq!(merged, vec![(3, 0.9), (2, 0.7), (1, 0.5)]);
    }

    #[test]
    fn oversized_frames_are_refused() {
        let mut bytes = ((MAX_FRAME_BYTES + 1) as u32).to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0; 16]);
        assert!(read_request(&mut bytes.as_slice()).is_err());
    }
}
