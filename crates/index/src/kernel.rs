//! Dot-product kernels: one query against many rows, and a blocked many-rows × many-queries tile.
//!
//! Each kernel has an AVX2+FMA version chosen at run time and a portable version that the
//! compiler vectorises for the baseline target. The machine this was tuned on (AMD EPYC,
//! Zen 3) has no AVX-512, so there is no AVX-512 path: it could not be tested here.

/// Queries per packed group: two 8-lane registers per tile row.
pub(crate) const QUERY_GROUP: usize = 16;
/// Rows per tile: 6 rows × 2 registers = 12 accumulators, leaving 4 of AVX2's 16 registers
/// for the two query loads and the broadcast row value.
pub(crate) const TILE_ROWS: usize = 6;

/// Scores of one tile: `[row][query in group]`.
pub(crate) type TileScores = [[f32; QUERY_GROUP]; TILE_ROWS];

/// Which instruction set the kernels use; detected once per search, not per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KernelSet {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
}

impl KernelSet {
    pub(crate) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Self::Avx2Fma;
            }
        }
        Self::Portable
    }

    /// Writes `scores[i] = dot(query, row i)` for each `dimension`-long row in `rows`.
    pub(crate) fn dot_rows(self, query: &[f32], rows: &[f32], scores: &mut [f32]) {
        let dimension = query.len();
        assert!(dimension > 0 && rows.len() == dimension * scores.len());
        match self {
            Self::Portable => portable::dot_rows(query, rows, scores),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `detect` confirmed AVX2 and FMA; lengths were checked above.
            Self::Avx2Fma => unsafe { avx2::dot_rows(query, rows, scores) },
        }
    }

    /// Scores up to `TILE_ROWS` rows against one packed query group (see [`PackedQueries`]).
    /// Rows past `rows.len() / dimension` are left untouched in `scores`.
    pub(crate) fn tile(
        self,
        rows: &[f32],
        dimension: usize,
        packed_group: &[f32],
        scores: &mut TileScores,
    ) {
        let row_count = rows.len() / dimension;
        assert!(row_count <= TILE_ROWS && rows.len() == row_count * dimension);
        assert!(packed_group.len() == dimension * QUERY_GROUP);
        match self {
            Self::Portable => portable::tile(rows, dimension, packed_group, scores),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `detect` confirmed AVX2 and FMA; lengths were checked above.
            Self::Avx2Fma => unsafe {
                match row_count {
                    6 => avx2::tile::<6>(rows, dimension, packed_group, scores),
                    5 => avx2::tile::<5>(rows, dimension, packed_group, scores),
                    4 => avx2::tile::<4>(rows, dimension, packed_group, scores),
                    3 => avx2::tile::<3>(rows, dimension, packed_group, scores),
                    2 => avx2::tile::<2>(rows, dimension, packed_group, scores),
                    1 => avx2::tile::<1>(rows, dimension, packed_group, scores),
                    _ => {}
                }
            },
        }
    }
}

/// Queries transposed into groups of `QUERY_GROUP`, dimension-major within a group
/// (`group[d * QUERY_GROUP + q]`), so the tile kernel loads one dimension of 16 queries with two
/// vector loads and broadcasts the row value: the layout of a GEMM micro-kernel. Missing queries
/// in the last group are zeros; their scores are ignored.
pub(crate) struct PackedQueries {
    dimension: usize,
    values: Vec<f32>,
}

impl PackedQueries {
    pub(crate) fn pack(queries: &[&[f32]], dimension: usize) -> Self {
        let groups = queries.len().div_ceil(QUERY_GROUP);
        let mut values = vec![0f32; groups * dimension * QUERY_GROUP];
        for (index, query) in queries.iter().enumerate() {
            let group = &mut values[(index / QUERY_GROUP) * dimension * QUERY_GROUP..];
            let lane = index % QUERY_GROUP;
            for (d, value) in query.iter().enumerate() {
                group[d * QUERY_GROUP + lane] = *value;
            }
        }
        Self { dimension, values }
    }

    pub(crate) fn group_count(&self) -> usize {
        self.values.len() / (self.dimension * QUERY_GROUP)
    }

    pub(crate) fn group(&self, group: usize) -> &[f32] {
        let size = self.dimension * QUERY_GROUP;
        &self.values[group * size..(group + 1) * size]
    }
}

mod portable {
    use super::{TileScores, QUERY_GROUP};

    pub(super) fn dot_rows(query: &[f32], rows: &[f32], scores: &mut [f32]) {
        for (row, score) in rows.chunks_exact(query.len()).zip(scores.iter_mut()) {
            *score = dot(query, row);
        }
    }

    /// Eight independent lanes so the compiler can vectorise without reassociating floats.
    pub(super) fn dot(left: &[f32], right: &[f32]) -> f32 {
        let mut lanes = [0f32; 8];
        let mut left_chunks = left.chunks_exact(8);
        let mut right_chunks = right.chunks_exact(8);
        for (l, r) in (&mut left_chunks).zip(&mut right_chunks) {
            for lane in 0..8 {
                lanes[lane] += l[lane] * r[lane];
            }
        }
        let mut sum: f32 = lanes.iter().sum();
        for (l, r) in left_chunks.remainder().iter().zip(right_chunks.remainder()) {
            sum += l * r;
        }
        sum
    }

    pub(super) fn tile(
        rows: &[f32],
        dimension: usize,
        packed_group: &[f32],
        scores: &mut TileScores,
    ) {
        for (row, row_scores) in rows.chunks_exact(dimension).zip(scores.iter_mut()) {
            let mut lanes = [0f32; QUERY_GROUP];
            for (value, queries) in row.iter().zip(packed_group.chunks_exact(QUERY_GROUP)) {
                for lane in 0..QUERY_GROUP {
                    lanes[lane] += value * queries[lane];
                }
            }
            *row_scores = lanes;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{TileScores, QUERY_GROUP};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    unsafe fn horizontal_sum(v: __m256) -> f32 {
        let halves = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let pairs = _mm_add_ps(halves, _mm_movehl_ps(halves, halves));
        let single = _mm_add_ss(pairs, _mm_shuffle_ps::<0b01>(pairs, pairs));
        _mm_cvtss_f32(single)
    }

    /// Four rows at a time with two accumulators each: eight independent FMA chains cover the
    /// FMA latency, and four adjacent rows read memory as one sequential stream. Leftover rows
    /// use the same per-row arithmetic, so a row's score never depends on its position.
    ///
    /// # Safety
    /// AVX2 and FMA must be available; `rows.len() == query.len() * scores.len()`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_rows(query: &[f32], rows: &[f32], scores: &mut [f32]) {
        let dimension = query.len();
        let mut row_index = 0;
        while row_index + 4 <= scores.len() {
            dot_row_group::<4>(
                query,
                rows.as_ptr().add(row_index * dimension),
                &mut scores[row_index..],
            );
            row_index += 4;
        }
        let rest_rows = rows.as_ptr().add(row_index * dimension);
        let rest_scores = &mut scores[row_index..];
        match rest_scores.len() {
            3 => dot_row_group::<3>(query, rest_rows, rest_scores),
            2 => dot_row_group::<2>(query, rest_rows, rest_scores),
            1 => dot_row_group::<1>(query, rest_rows, rest_scores),
            _ => {}
        }
    }

    /// # Safety
    /// AVX2 and FMA; `rows` points at `ROWS * query.len()` values; `scores.len() >= ROWS`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn dot_row_group<const ROWS: usize>(
        query: &[f32],
        rows: *const f32,
        scores: &mut [f32],
    ) {
        let dimension = query.len();
        let wide_end = dimension - dimension % 16;
        let q = query.as_ptr();
        let mut pointers = [rows; ROWS];
        for (r, pointer) in pointers.iter_mut().enumerate() {
            *pointer = rows.add(r * dimension);
        }
        let mut low = [_mm256_setzero_ps(); ROWS];
        let mut high = [_mm256_setzero_ps(); ROWS];
        let mut d = 0;
        while d < wide_end {
            let q_low = _mm256_loadu_ps(q.add(d));
            let q_high = _mm256_loadu_ps(q.add(d + 8));
            for r in 0..ROWS {
                low[r] = _mm256_fmadd_ps(_mm256_loadu_ps(pointers[r].add(d)), q_low, low[r]);
                high[r] = _mm256_fmadd_ps(_mm256_loadu_ps(pointers[r].add(d + 8)), q_high, high[r]);
            }
            d += 16;
        }
        if d + 8 <= dimension {
            let q_low = _mm256_loadu_ps(q.add(d));
            for r in 0..ROWS {
                low[r] = _mm256_fmadd_ps(_mm256_loadu_ps(pointers[r].add(d)), q_low, low[r]);
            }
            d += 8;
        }
        for r in 0..ROWS {
            let mut sum = horizontal_sum(_mm256_add_ps(low[r], high[r]));
            for tail in d..dimension {
                sum += *pointers[r].add(tail) * *q.add(tail);
            }
            scores[r] = sum;
        }
    }

    /// `ROWS` rows × 16 queries held in `2 * ROWS` accumulators for the whole dimension loop, so
    /// each row value loaded is used for 16 FMAs lanes and nothing is stored until the end.
    ///
    /// # Safety
    /// AVX2 and FMA must be available; `rows.len() == ROWS * dimension`,
    /// `packed_group.len() == dimension * QUERY_GROUP`, `ROWS <= TILE_ROWS`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tile<const ROWS: usize>(
        rows: &[f32],
        dimension: usize,
        packed_group: &[f32],
        scores: &mut TileScores,
    ) {
        let mut low = [_mm256_setzero_ps(); ROWS];
        let mut high = [_mm256_setzero_ps(); ROWS];
        let row_base = rows.as_ptr();
        let mut queries = packed_group.as_ptr();
        for d in 0..dimension {
            let q_low = _mm256_loadu_ps(queries);
            let q_high = _mm256_loadu_ps(queries.add(8));
            for r in 0..ROWS {
                let value = _mm256_broadcast_ss(&*row_base.add(r * dimension + d));
                low[r] = _mm256_fmadd_ps(value, q_low, low[r]);
                high[r] = _mm256_fmadd_ps(value, q_high, high[r]);
            }
            queries = queries.add(QUERY_GROUP);
        }
        for r in 0..ROWS {
            let out = scores[r].as_mut_ptr();
            _mm256_storeu_ps(out, low[r]);
            _mm256_storeu_ps(out.add(8), high[r]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_dot(left: &[f32], right: &[f32]) -> f32 {
        left.iter()
            .zip(right)
            .map(|(l, r)| (*l as f64) * (*r as f64))
            .sum::<f64>() as f32
    }

    fn random_values(seed: u64, count: usize) -> Vec<f32> {
        let mut state = seed;
        (0..count)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect()
    }

    fn kernel_sets() -> Vec<KernelSet> {
        let mut sets = vec![KernelSet::Portable];
        if KernelSet::detect() != KernelSet::Portable {
            sets.push(KernelSet::detect());
        }
        sets
    }

    #[test]
    fn dot_rows_matches_naive_dot_for_odd_and_even_dimensions() {
        for set in kernel_sets() {
            for dimension in [1, 3, 7, 8, 9, 15, 16, 17, 31, 128, 511, 512, 513] {
                for row_count in [1, 3, 4, 5, 9] {
                    let query = random_values(dimension as u64 + 1, dimension);
                    let rows = random_values(row_count as u64 * 7 + 3, dimension * row_count);
                    let mut scores = vec![f32::NAN; row_count];
                    set.dot_rows(&query, &rows, &mut scores);
                    for (row, score) in rows.chunks_exact(dimension).zip(&scores) {
                        let expected = naive_dot(&query, row);
                        assert!(
                            (score - expected).abs() < 1e-4,
                            "{set:?} d={dimension} rows={row_count}: {score} vs {expected}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn tile_matches_naive_dot_for_every_row_count_and_partial_groups() {
        for set in kernel_sets() {
            for dimension in [1, 5, 17, 512] {
                for query_count in [1, 7, 16] {
                    let queries: Vec<Vec<f32>> = (0..query_count)
                        .map(|q| random_values(q as u64 * 31 + dimension as u64, dimension))
                        .collect();
                    let query_slices: Vec<&[f32]> = queries.iter().map(Vec::as_slice).collect();
                    let packed = PackedQueries::pack(&query_slices, dimension);
                    assert_eq!(packed.group_count(), 1);
                    for row_count in 1..=TILE_ROWS {
                        let rows = random_values(row_count as u64 + 99, row_count * dimension);
                        let mut scores = [[f32::NAN; QUERY_GROUP]; TILE_ROWS];
                        set.tile(&rows, dimension, packed.group(0), &mut scores);
                        for (r, row) in rows.chunks_exact(dimension).enumerate() {
                            for (q, query) in queries.iter().enumerate() {
                                let expected = naive_dot(query, row);
                                assert!(
                                    (scores[r][q] - expected).abs() < 1e-4,
                                    "{set:?} d={dimension} row {r} query {q}"
                                );
                            }
                            // padding lanes hold zero queries, so they score zero
                            assert!(scores[r][query_count..].iter().all(|s| *s == 0.0));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn packing_spreads_queries_over_groups() {
        let queries: Vec<Vec<f32>> = (0..17).map(|q| vec![q as f32, -(q as f32)]).collect();
        let slices: Vec<&[f32]> = queries.iter().map(Vec::as_slice).collect();
        let packed = PackedQueries::pack(&slices, 2);
        assert_eq!(packed.group_count(), 2);
        assert_eq!(packed.group(0)[3], 3.0);
        assert_eq!(packed.group(0)[QUERY_GROUP + 3], -3.0);
        assert_eq!(packed.group(1)[0], 16.0);
        assert_eq!(packed.group(1)[1], 0.0);
    }
}
