//! IVF-PQ: an inverted file over a spherical k-means coarse quantizer, with each row's
//! residual (row − its list centroid) product-quantized to one byte per sub-space.
//!
//! For inner products the residual split makes the lookup table independent of the list:
//! `q·x ≈ q·c + Σ_j q_j·codeword_j[code_j]`, so one table of `sub_quantizers × 256` floats per
//! query serves every probed list. Codes are stored in blocks of 8 rows, sub-space-major, so
//! the AVX2 kernel scores 8 rows with one gather per sub-space. Candidates are re-ranked on
//! the f32 rows by the caller.

use crate::kernel::{KernelSet, PackedQueries, TileScores, QUERY_GROUP, TILE_ROWS};
use crate::topk::{Candidate, TopK};
use crate::IndexError;
use rayon::prelude::*;
use vigil_base::TemplateId;

/// Codewords per sub-quantizer: one byte per code.
const CODEWORDS: usize = 256;
/// Rows per code block: one AVX2 register of scores.
const BLOCK_ROWS: usize = 8;
/// Points per parallel assignment task.
const ASSIGN_CHUNK: usize = 512;
/// Training points per centroid (faiss uses 39–256): more costs time, fewer costs recall.
const TRAINING_POINTS_PER_CENTROID: usize = 64;

const FILE_MAGIC: &[u8; 8] = b"VIGILIVF";
pub const IVFPQ_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IvfPqParams {
    /// Coarse lists; about 4·√rows is the usual choice.
    pub lists: usize,
    /// Bytes per row; must divide the dimension.
    pub sub_quantizers: usize,
    pub kmeans_iterations: usize,
    pub seed: u64,
}

impl IvfPqParams {
    /// Defaults for `rows` rows of `dimension` (64 bytes per 512-d row).
    pub fn for_rows(rows: usize, dimension: usize) -> Self {
        let lists = ((rows as f64).sqrt() * 1.0).round().clamp(1.0, 65536.0) as usize;
        let mut sub_quantizers = (dimension / 8).max(1);
        while !dimension.is_multiple_of(sub_quantizers) {
            sub_quantizers -= 1;
        }
        Self {
            lists,
            sub_quantizers,
            kmeans_iterations: 10,
            seed: 0x1F_5EED,
        }
    }
}

struct InvertedList {
    /// Row numbers in the segment, in code order.
    rows: Vec<u32>,
    /// `ceil(rows / 8)` blocks of `sub_quantizers × 8` codes.
    codes: Vec<u8>,
}

pub struct IvfPq {
    dimension: usize,
    sub_quantizers: usize,
    /// `lists × dimension`, unit length.
    centroids: Vec<f32>,
    /// `sub_quantizers × 256 × sub_dimension`.
    codebooks: Vec<f32>,
    lists: Vec<InvertedList>,
}

/// splitmix64, for sampling training points and re-seeding empty clusters.
struct Sampler(u64);

impl Sampler {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

/// For each point, the centroid maximising `point·centroid − bias[centroid]`: with a zero bias
/// the inner-product nearest, with `bias = |c|²/2` the L2 nearest. Uses the blocked GEMM tile.
fn assign_nearest(
    kernels: KernelSet,
    points: &[f32],
    centroids: &[f32],
    bias: &[f32],
    dimension: usize,
) -> Vec<u32> {
    let centroid_count = bias.len();
    let mut assignment = vec![0u32; points.len() / dimension];
    points
        .par_chunks(ASSIGN_CHUNK * dimension)
        .zip(assignment.par_chunks_mut(ASSIGN_CHUNK))
        .for_each(|(chunk, assigned)| {
            let queries: Vec<&[f32]> = chunk.chunks_exact(dimension).collect();
            let packed = PackedQueries::pack(&queries, dimension);
            let mut best = vec![(f32::NEG_INFINITY, 0u32); queries.len()];
            let mut tile: TileScores = [[0f32; QUERY_GROUP]; TILE_ROWS];
            for group in 0..packed.group_count() {
                let first = group * QUERY_GROUP;
                let in_group = (queries.len() - first).min(QUERY_GROUP);
                let mut start = 0;
                while start < centroid_count {
                    let end = (start + TILE_ROWS).min(centroid_count);
                    kernels.tile(
                        &centroids[start * dimension..end * dimension],
                        dimension,
                        packed.group(group),
                        &mut tile,
                    );
                    for (centroid, scores) in (start..end).zip(&tile) {
                        for lane in 0..in_group {
                            let score = scores[lane] - bias[centroid];
                            if score > best[first + lane].0 {
                                best[first + lane] = (score, centroid as u32);
                            }
                        }
                    }
                    start = end;
                }
            }
            for (slot, (_, centroid)) in assigned.iter_mut().zip(best) {
                *slot = centroid;
            }
        });
    assignment
}

/// Lloyd's k-means; `spherical` keeps centroids unit length and assigns by inner product.
fn kmeans(
    kernels: KernelSet,
    points: &[f32],
    dimension: usize,
    clusters: usize,
    iterations: usize,
    spherical: bool,
    sampler: &mut Sampler,
) -> Vec<f32> {
    let count = points.len() / dimension;
    let mut centroids = vec![0f32; clusters * dimension];
    for centroid in 0..clusters {
        let point = if count >= clusters {
            // a stride through a shuffled start: distinct points when there are enough
            (centroid * count / clusters + sampler.below(count / clusters)) % count
        } else {
            sampler.below(count)
        };
        centroids[centroid * dimension..(centroid + 1) * dimension]
            .copy_from_slice(&points[point * dimension..(point + 1) * dimension]);
    }
    let mut bias = vec![0f32; clusters];
    for _ in 0..iterations {
        if !spherical {
            for (b, centroid) in bias.iter_mut().zip(centroids.chunks_exact(dimension)) {
                *b = centroid.iter().map(|v| v * v).sum::<f32>() * 0.5;
            }
        }
        let assignment = assign_nearest(kernels, points, &centroids, &bias, dimension);
        let mut sums = vec![0f64; clusters * dimension];
        let mut sizes = vec![0usize; clusters];
        for (point, &cluster) in points.chunks_exact(dimension).zip(&assignment) {
            let cluster = cluster as usize;
            sizes[cluster] += 1;
            for (sum, value) in sums[cluster * dimension..].iter_mut().zip(point) {
                *sum += *value as f64;
            }
        }
        for cluster in 0..clusters {
            let centroid = &mut centroids[cluster * dimension..(cluster + 1) * dimension];
            if sizes[cluster] == 0 {
                // an empty cluster restarts at a random point, with a nudge off it
                let point = sampler.below(count);
                centroid.copy_from_slice(&points[point * dimension..(point + 1) * dimension]);
                for value in centroid.iter_mut() {
                    *value *=
                        1.0 + ((sampler.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 1e-3;
                }
            } else {
                let size = sizes[cluster] as f64;
                for (value, sum) in centroid.iter_mut().zip(&sums[cluster * dimension..]) {
                    *value = (*sum / size) as f32;
                }
            }
            if spherical {
                let norm = centroid.iter().map(|v| v * v).sum::<f32>().sqrt();
                if norm > 0.0 {
                    centroid.iter_mut().for_each(|v| *v /= norm);
                }
            }
        }
    }
    centroids
}

impl IvfPq {
    /// Trains on (a sample of) `vectors` and encodes all of them; `progress` receives a
    /// fraction in 0..=1 after each phase.
    pub fn train(
        vectors: &[f32],
        dimension: usize,
        params: &IvfPqParams,
        progress: &mut (dyn FnMut(f32) + Send),
    ) -> Result<Self, IndexError> {
        let rows = vectors.len() / dimension.max(1);
        if dimension == 0 || rows == 0 || vectors.len() != rows * dimension {
            return Err(IndexError::AnnConfig("no rows to train on".into()));
        }
        if params.sub_quantizers == 0 || !dimension.is_multiple_of(params.sub_quantizers) {
            return Err(IndexError::AnnConfig(format!(
                "{} sub-quantizers do not divide dimension {dimension}",
                params.sub_quantizers
            )));
        }
        if rows > u32::MAX as usize {
            return Err(IndexError::AnnConfig(
                "more than 2^32 rows in one segment".into(),
            ));
        }
        let kernels = KernelSet::detect();
        let lists = params.lists.clamp(1, rows);
        let sub_quantizers = params.sub_quantizers;
        let sub_dimension = dimension / sub_quantizers;
        let mut sampler = Sampler(params.seed);

        let training_rows = (lists * TRAINING_POINTS_PER_CENTROID)
            .max(CODEWORDS * 64)
            .min(rows);
        let sample = sample_rows(vectors, dimension, training_rows, &mut sampler);
        let centroids = kmeans(
            kernels,
            &sample,
            dimension,
            lists,
            params.kmeans_iterations,
            true,
            &mut sampler,
        );
        progress(0.3);

        // codebooks: L2 k-means of each sub-space of the training residuals
        let sample_lists =
            assign_nearest(kernels, &sample, &centroids, &vec![0.0; lists], dimension);
        let residual_sample = residuals(&sample, &centroids, &sample_lists, dimension);
        let codebooks: Vec<f32> = (0..sub_quantizers)
            .flat_map(|sub| {
                let points = sub_space(&residual_sample, dimension, sub, sub_dimension);
                let mut sub_sampler = Sampler(params.seed ^ ((sub as u64 + 1) * 0x2545_F491));
                kmeans(
                    kernels,
                    &points,
                    sub_dimension,
                    CODEWORDS.min(points.len() / sub_dimension),
                    params.kmeans_iterations,
                    false,
                    &mut sub_sampler,
                )
                .into_iter()
                .chain(std::iter::repeat(0.0))
                .take(CODEWORDS * sub_dimension)
                .collect::<Vec<f32>>()
            })
            .collect();
        progress(0.5);

        let assignment = assign_nearest(kernels, vectors, &centroids, &vec![0.0; lists], dimension);
        progress(0.7);
        let codes = encode(
            kernels,
            vectors,
            &centroids,
            &assignment,
            &codebooks,
            dimension,
            sub_quantizers,
        );
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); lists];
        for (row, &list) in assignment.iter().enumerate() {
            members[list as usize].push(row as u32);
        }
        let lists = members
            .into_iter()
            .map(|rows| {
                let blocks = rows.len().div_ceil(BLOCK_ROWS);
                let mut block_codes = vec![0u8; blocks * sub_quantizers * BLOCK_ROWS];
                for (position, &row) in rows.iter().enumerate() {
                    let block = position / BLOCK_ROWS;
                    let lane = position % BLOCK_ROWS;
                    for sub in 0..sub_quantizers {
                        block_codes[(block * sub_quantizers + sub) * BLOCK_ROWS + lane] =
                            codes[row as usize * sub_quantizers + sub];
                    }
                }
                InvertedList {
                    rows,
                    codes: block_codes,
                }
            })
            .collect();
        progress(1.0);
        Ok(Self {
            dimension,
            sub_quantizers,
            centroids,
            codebooks,
            lists,
        })
    }

    pub fn list_count(&self) -> usize {
        self.lists.len()
    }

    /// Bytes held in memory: codes, row numbers, centroids and codebooks.
    pub fn memory_bytes(&self) -> usize {
        let lists: usize = self
            .lists
            .iter()
            .map(|list| list.codes.len() + list.rows.len() * 4)
            .sum();
        lists + (self.centroids.len() + self.codebooks.len()) * 4
    }

    /// The `candidates` rows with the highest approximate score among the `nprobe` lists
    /// nearest to `query`, considering only rows for which `admits(row)` holds.
    pub(crate) fn search(
        &self,
        query: &[f32],
        nprobe: usize,
        candidates: usize,
        admits: &(dyn Fn(usize) -> bool + Sync),
    ) -> Vec<Candidate> {
        let kernels = KernelSet::detect();
        let lists = self.lists.len();
        let mut list_scores = vec![0f32; lists];
        kernels.dot_rows(query, &self.centroids, &mut list_scores);
        let mut order: Vec<usize> = (0..lists).collect();
        let nprobe = nprobe.clamp(1, lists);
        order.select_nth_unstable_by(nprobe - 1, |a, b| {
            list_scores[*b].total_cmp(&list_scores[*a])
        });
        order.truncate(nprobe);

        let sub_dimension = self.dimension / self.sub_quantizers;
        let mut table = vec![0f32; self.sub_quantizers * CODEWORDS];
        for sub in 0..self.sub_quantizers {
            let query_part = &query[sub * sub_dimension..(sub + 1) * sub_dimension];
            let codebook = &self.codebooks
                [sub * CODEWORDS * sub_dimension..(sub + 1) * CODEWORDS * sub_dimension];
            kernels.dot_rows(
                query_part,
                codebook,
                &mut table[sub * CODEWORDS..(sub + 1) * CODEWORDS],
            );
        }
        // one heap per worker, not per list: merging many deep heaps would cost more than the scan
        let scan = |mut top: TopK, list: &usize| {
            let inverted = &self.lists[*list];
            let base = list_scores[*list];
            let block_bytes = self.sub_quantizers * BLOCK_ROWS;
            let mut scores = [0f32; BLOCK_ROWS];
            for (block, rows) in inverted.rows.chunks(BLOCK_ROWS).enumerate() {
                let mut admitted = [false; BLOCK_ROWS];
                let mut any_admitted = false;
                for (slot, row) in admitted.iter_mut().zip(rows) {
                    *slot = admits(*row as usize);
                    any_admitted |= *slot;
                }
                if !any_admitted {
                    continue;
                }
                let codes = &inverted.codes[block * block_bytes..(block + 1) * block_bytes];
                kernels.adc_block(&table, codes, self.sub_quantizers, &mut scores);
                let threshold = top.threshold();
                for ((row, score), admitted) in rows.iter().zip(scores).zip(admitted) {
                    let score = base + score;
                    if admitted && score >= threshold {
                        top.offer(Candidate {
                            score,
                            template: TemplateId(*row as i64),
                            row: *row as usize,
                        });
                    }
                }
            }
            top
        };
        order
            .par_iter()
            .fold(|| TopK::new(candidates), scan)
            .reduce(|| TopK::new(candidates), TopK::merge)
            .into_sorted()
    }

    /// Serialised form, for a sidecar file beside its segment.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(FILE_MAGIC);
        bytes.extend_from_slice(&IVFPQ_FORMAT_VERSION.to_le_bytes());
        for value in [self.dimension, self.sub_quantizers, self.lists.len()] {
            bytes.extend_from_slice(&(value as u64).to_le_bytes());
        }
        for value in self.centroids.iter().chain(&self.codebooks) {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        for list in &self.lists {
            bytes.extend_from_slice(&(list.rows.len() as u64).to_le_bytes());
            for row in &list.rows {
                bytes.extend_from_slice(&row.to_le_bytes());
            }
            bytes.extend_from_slice(&list.codes);
        }
        let checksum = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&checksum.to_le_bytes());
        bytes
    }

    pub(crate) fn from_bytes(bytes: &[u8], rows_in_segment: usize) -> Result<Self, String> {
        let (body, checksum) = bytes.split_at(bytes.len().checked_sub(4).ok_or("too short")?);
        if crc32fast::hash(body).to_le_bytes() != checksum {
            return Err("checksum mismatch".into());
        }
        let mut reader = Reader { bytes: body, at: 0 };
        if reader.take(8)? != FILE_MAGIC {
            return Err("not an IVF-PQ file".into());
        }
        let version = u32::from_le_bytes(reader.take(4)?.try_into().map_err(|_| "header")?);
        if version != IVFPQ_FORMAT_VERSION {
            return Err(format!(
                "format version {version}, expected {IVFPQ_FORMAT_VERSION}"
            ));
        }
        let dimension = reader.count()?;
        let sub_quantizers = reader.count()?;
        let list_count = reader.count()?;
        if sub_quantizers == 0 || !dimension.is_multiple_of(sub_quantizers) || list_count == 0 {
            return Err("inconsistent header".into());
        }
        let centroids = reader.floats(list_count.checked_mul(dimension).ok_or("size")?)?;
        let codebooks = reader.floats(CODEWORDS * dimension)?;
        let mut lists = Vec::with_capacity(list_count.min(1 << 20));
        for _ in 0..list_count {
            let count = reader.count()?;
            let rows: Vec<u32> = reader
                .take(count.checked_mul(4).ok_or("size")?)?
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if rows.iter().any(|row| *row as usize >= rows_in_segment) {
                return Err("row number past the segment".into());
            }
            let codes = reader
                .take(count.div_ceil(BLOCK_ROWS) * sub_quantizers * BLOCK_ROWS)?
                .to_vec();
            lists.push(InvertedList { rows, codes });
        }
        if reader.at != body.len() {
            return Err("trailing bytes".into());
        }
        Ok(Self {
            dimension,
            sub_quantizers,
            centroids,
            codebooks,
            lists,
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(count).ok_or("size overflow")?;
        let slice = self.bytes.get(self.at..end).ok_or("truncated")?;
        self.at = end;
        Ok(slice)
    }

    fn count(&mut self) -> Result<usize, String> {
        let bytes = self.take(8)?;
        let mut word = [0u8; 8];
        word.copy_from_slice(bytes);
        usize::try_from(u64::from_le_bytes(word)).map_err(|_| "count too large".into())
    }

    fn floats(&mut self, count: usize) -> Result<Vec<f32>, String> {
        Ok(self
            .take(count.checked_mul(4).ok_or("size overflow")?)?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
}

fn sample_rows(vectors: &[f32], dimension: usize, count: usize, sampler: &mut Sampler) -> Vec<f32> {
    let rows = vectors.len() / dimension;
    if count >= rows {
        return vectors.to_vec();
    }
    // every row once at most: a partial Fisher-Yates over row numbers
    let mut order: Vec<u32> = (0..rows as u32).collect();
    let mut sample = Vec::with_capacity(count * dimension);
    for position in 0..count {
        let pick = position + sampler.below(rows - position);
        order.swap(position, pick);
        let row = order[position] as usize;
        sample.extend_from_slice(&vectors[row * dimension..(row + 1) * dimension]);
    }
    sample
}

fn residuals(points: &[f32], centroids: &[f32], assignment: &[u32], dimension: usize) -> Vec<f32> {
    let mut out = points.to_vec();
    for (point, &list) in out.chunks_exact_mut(dimension).zip(assignment) {
        let centroid = &centroids[list as usize * dimension..(list as usize + 1) * dimension];
        for (value, c) in point.iter_mut().zip(centroid) {
            *value -= c;
        }
    }
    out
}

fn sub_space(points: &[f32], dimension: usize, sub: usize, sub_dimension: usize) -> Vec<f32> {
    points
        .chunks_exact(dimension)
        .flat_map(|point| {
            point[sub * sub_dimension..(sub + 1) * sub_dimension]
                .iter()
                .copied()
        })
        .collect()
}

/// Row-major `rows × sub_quantizers` codes of every row's residual.
fn encode(
    kernels: KernelSet,
    vectors: &[f32],
    centroids: &[f32],
    assignment: &[u32],
    codebooks: &[f32],
    dimension: usize,
    sub_quantizers: usize,
) -> Vec<u8> {
    let sub_dimension = dimension / sub_quantizers;
    let rows = assignment.len();
    let mut codes = vec![0u8; rows * sub_quantizers];
    const CHUNK_ROWS: usize = 16384;
    codes
        .par_chunks_mut(CHUNK_ROWS * sub_quantizers)
        .enumerate()
        .for_each(|(chunk, chunk_codes)| {
            let start = chunk * CHUNK_ROWS;
            let end = (start + CHUNK_ROWS).min(rows);
            let residual = residuals(
                &vectors[start * dimension..end * dimension],
                centroids,
                &assignment[start..end],
                dimension,
            );
            for sub in 0..sub_quantizers {
                let codebook = &codebooks
                    [sub * CODEWORDS * sub_dimension..(sub + 1) * CODEWORDS * sub_dimension];
                let bias: Vec<f32> = codebook
                    .chunks_exact(sub_dimension)
                    .map(|c| c.iter().map(|v| v * v).sum::<f32>() * 0.5)
                    .collect();
                let points = sub_space(&residual, dimension, sub, sub_dimension);
                let nearest = assign_nearest(kernels, &points, codebook, &bias, sub_dimension);
                for (row, code) in nearest.iter().enumerate() {
                    chunk_codes[row * sub_quantizers + sub] = *code as u8;
                }
            }
        });
    codes
}

impl KernelSet {
    /// `scores[lane] = Σ_sub table[sub][codes[sub][lane]]` for one block of 8 rows.
    fn adc_block(
        self,
        table: &[f32],
        codes: &[u8],
        sub_quantizers: usize,
        scores: &mut [f32; BLOCK_ROWS],
    ) {
        assert!(
            table.len() == sub_quantizers * CODEWORDS && codes.len() == sub_quantizers * BLOCK_ROWS
        );
        match self {
            Self::Portable => {
                *scores = [0.0; BLOCK_ROWS];
                for (sub, sub_codes) in codes.chunks_exact(BLOCK_ROWS).enumerate() {
                    let sub_table = &table[sub * CODEWORDS..(sub + 1) * CODEWORDS];
                    for lane in 0..BLOCK_ROWS {
                        scores[lane] += sub_table[sub_codes[lane] as usize];
                    }
                }
            }
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `detect` confirmed AVX2; lengths were checked above.
            Self::Avx2Fma => unsafe { avx2_adc_block(table, codes, sub_quantizers, scores) },
        }
    }
}

/// One gather of 8 table entries per sub-space, two accumulators to overlap gather latency.
///
/// # Safety
/// AVX2 must be available; `table` holds `sub_quantizers × 256` floats and `codes`
/// `sub_quantizers × 8` bytes, so every gathered index is in bounds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn avx2_adc_block(
    table: &[f32],
    codes: &[u8],
    sub_quantizers: usize,
    scores: &mut [f32; BLOCK_ROWS],
) {
    use std::arch::x86_64::*;
    let mut even = _mm256_setzero_ps();
    let mut odd = _mm256_setzero_ps();
    let mut sub = 0;
    while sub + 2 <= sub_quantizers {
        let first = _mm256_cvtepu8_epi32(_mm_loadl_epi64(
            codes.as_ptr().add(sub * BLOCK_ROWS) as *const __m128i
        ));
        let second = _mm256_cvtepu8_epi32(_mm_loadl_epi64(
            codes.as_ptr().add((sub + 1) * BLOCK_ROWS) as *const __m128i,
        ));
        even = _mm256_add_ps(
            even,
            _mm256_i32gather_ps::<4>(table.as_ptr().add(sub * CODEWORDS), first),
        );
        odd = _mm256_add_ps(
            odd,
            _mm256_i32gather_ps::<4>(table.as_ptr().add((sub + 1) * CODEWORDS), second),
        );
        sub += 2;
    }
    if sub < sub_quantizers {
        let last = _mm256_cvtepu8_epi32(_mm_loadl_epi64(
            codes.as_ptr().add(sub * BLOCK_ROWS) as *const __m128i
        ));
        even = _mm256_add_ps(
            even,
            _mm256_i32gather_ps::<4>(table.as_ptr().add(sub * CODEWORDS), last),
        );
    }
    _mm256_storeu_ps(scores.as_mut_ptr(), _mm256_add_ps(even, odd));
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_base::{Embedding, ModelId};

    /// splitmix64, for the test data below.
    fn split_mix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Clustered unit rows (8 per cluster, centre plus noise, normalised): the rows of
    /// `vigil_bench::synthetic::SyntheticVectors`, which lives above this crate.
    fn data(rows: usize, dimension: usize) -> Vec<f32> {
        let clusters = (rows / 8).max(1);
        let symmetric =
            |state: &mut u64| (split_mix(state) >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
        let noise_scale = 0.04 * (dimension as f32 / 3.0).sqrt();
        (0..rows)
            .flat_map(|row| {
                let cluster = row % clusters;
                let mut centre = 0x5EED_0003 ^ (cluster as u64).wrapping_mul(0xA24B_AED4_963E_E407);
                let mut noise = 0x5EED_0001 ^ (row as u64).wrapping_mul(0x9FB2_1C65_1E98_DF25);
                let values = (0..dimension)
                    .map(|_| symmetric(&mut centre) + noise_scale * symmetric(&mut noise))
                    .collect();
                Embedding::normalised(ModelId::new("synthetic"), values)
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect()
    }

    #[test]
    fn adc_kernels_agree() {
        let sub_quantizers = 5;
        let table: Vec<f32> = (0..sub_quantizers * CODEWORDS)
            .map(|i| (i % 97) as f32 * 0.01)
            .collect();
        let codes: Vec<u8> = (0..sub_quantizers * BLOCK_ROWS)
            .map(|i| (i * 37 % 256) as u8)
            .collect();
        let mut portable = [0f32; BLOCK_ROWS];
        KernelSet::Portable.adc_block(&table, &codes, sub_quantizers, &mut portable);
        let mut detected = [0f32; BLOCK_ROWS];
        KernelSet::detect().adc_block(&table, &codes, sub_quantizers, &mut detected);
        for (a, b) in portable.iter().zip(&detected) {
            assert!((a - b).abs() < 1e-4);
        }
    }

    #[test]
    fn ivfpq_finds_the_exact_nearest_with_enough_probes_and_round_trips() {
        let dimension = 32;
        let rows = 3000;
        let vectors = data(rows, dimension);
        let params = IvfPqParams {
            lists: 16,
            sub_quantizers: 8,
            kmeans_iterations: 6,
            seed: 3,
        };
        let mut phases = Vec::new();
        let index = IvfPq::train(&vectors, dimension, &params, &mut |f| phases.push(f)).unwrap();
        assert_eq!(phases.last(), Some(&1.0));
        let total: usize = index.lists.iter().map(|list| list.rows.len()).sum();
        assert_eq!(total, rows);
        let copy = IvfPq::from_bytes(&index.to_bytes(), rows).unwrap();
        assert!(IvfPq::from_bytes(&index.to_bytes()[1..], rows).is_err());
        let admit_all = |_: usize| true;
        let mut found = 0;
        for query_row in (0..rows).step_by(97) {
            let query = &vectors[query_row * dimension..(query_row + 1) * dimension];
            // all lists probed: the only approximation left is PQ, and a stored row is its own
            // best match among 20 re-ranked candidates
            let candidates = copy.search(query, 16, 20, &admit_all);
            if candidates.iter().any(|c| c.row == query_row) {
                found += 1;
            }
            let only_even = |row: usize| row.is_multiple_of(2);
            assert!(index
                .search(query, 4, 20, &only_even)
                .iter()
                .all(|c| c.row % 2 == 0));
        }
        assert!(found >= 30, "found {found} of 31");
    }
}
