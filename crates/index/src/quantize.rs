//! Int8 scalar quantization: each row stored as `scale × code`, codes in -127..=127 with a
//! per-row scale, so a 512-d face costs 512 bytes + 4 instead of 2048. A query is quantized
//! to i16 (finer than the rows, free since it is one vector) and scored with integer
//! multiply-adds; the approximate ranking is then re-scored exactly on f32.

use crate::kernel::KernelSet;

/// Largest row code magnitude.
const ROW_CODE_MAX: f32 = 127.0;

/// Quantizes `row` into `codes`; returns the scale that maps codes back to values.
pub(crate) fn quantize_row(row: &[f32], codes: &mut [i8]) -> f32 {
    let largest = row.iter().fold(0f32, |max, value| max.max(value.abs()));
    if largest == 0.0 || !largest.is_finite() {
        codes.fill(0);
        return 0.0;
    }
    let scale = largest / ROW_CODE_MAX;
    for (code, value) in codes.iter_mut().zip(row) {
        *code = (value / scale).round().clamp(-ROW_CODE_MAX, ROW_CODE_MAX) as i8;
    }
    scale
}

/// A query quantized to i16 with one scale.
pub(crate) struct QuantizedQuery {
    pub(crate) codes: Vec<i16>,
    pub(crate) scale: f32,
}

impl QuantizedQuery {
    pub(crate) fn new(query: &[f32]) -> Self {
        // i16 × i8 products summed in pairs into i32 lanes: keep
        // dimension × 127 × code_max well under 2^31 so no lane can overflow.
        let code_max = ((i32::MAX as f64 * 0.5) / (query.len().max(1) as f64 * 127.0))
            .clamp(1.0, 16383.0) as f32;
        let largest = query.iter().fold(0f32, |max, value| max.max(value.abs()));
        if largest == 0.0 || !largest.is_finite() {
            return Self {
                codes: vec![0; query.len()],
                scale: 0.0,
            };
        }
        let scale = largest / code_max;
        let codes = query
            .iter()
            .map(|value| (value / scale).round().clamp(-code_max, code_max) as i16)
            .collect();
        Self { codes, scale }
    }
}

impl KernelSet {
    /// `scores[i] = integer dot(query, row i) × query scale × row scale`.
    pub(crate) fn dot_rows_int8(
        self,
        query: &QuantizedQuery,
        codes: &[i8],
        row_scales: &[f32],
        scores: &mut [f32],
    ) {
        let dimension = query.codes.len();
        assert!(dimension > 0 && codes.len() == dimension * scores.len());
        assert!(row_scales.len() == scores.len());
        match self {
            Self::Portable => {
                for (row, score) in codes.chunks_exact(dimension).zip(scores.iter_mut()) {
                    *score = portable_dot(&query.codes, row) as f32;
                }
            }
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `detect` confirmed AVX2; lengths were checked above.
            Self::Avx2Fma => unsafe { avx2::dot_rows(&query.codes, codes, scores) },
        }
        for (score, row_scale) in scores.iter_mut().zip(row_scales) {
            *score *= query.scale * row_scale;
        }
    }
}

fn portable_dot(query: &[i16], row: &[i8]) -> i32 {
    let mut lanes = [0i32; 8];
    let mut query_chunks = query.chunks_exact(8);
    let mut row_chunks = row.chunks_exact(8);
    for (q, r) in (&mut query_chunks).zip(&mut row_chunks) {
        for lane in 0..8 {
            lanes[lane] += q[lane] as i32 * r[lane] as i32;
        }
    }
    let mut sum: i32 = lanes.iter().sum();
    for (q, r) in query_chunks.remainder().iter().zip(row_chunks.remainder()) {
        sum += *q as i32 * *r as i32;
    }
    sum
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Two rows at a time, 16 dimensions per step: sign-extend 16 codes to i16 and
    /// `madd` with the query, accumulating i32 lanes. Integer sums are exact, so the order
    /// does not matter and the result equals the portable kernel's.
    ///
    /// # Safety
    /// AVX2 must be available; `codes.len() == query.len() * scores.len()`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn dot_rows(query: &[i16], codes: &[i8], scores: &mut [f32]) {
        let dimension = query.len();
        let wide_end = dimension - dimension % 16;
        let q = query.as_ptr();
        for (row_index, score) in scores.iter_mut().enumerate() {
            let row = codes.as_ptr().add(row_index * dimension);
            let mut low = _mm256_setzero_si256();
            let mut high = _mm256_setzero_si256();
            let mut d = 0;
            while d + 32 <= wide_end {
                let r0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(row.add(d) as *const __m128i));
                let q0 = _mm256_loadu_si256(q.add(d) as *const __m256i);
                let r1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(row.add(d + 16) as *const __m128i));
                let q1 = _mm256_loadu_si256(q.add(d + 16) as *const __m256i);
                low = _mm256_add_epi32(low, _mm256_madd_epi16(r0, q0));
                high = _mm256_add_epi32(high, _mm256_madd_epi16(r1, q1));
                d += 32;
            }
            if d < wide_end {
                let r0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(row.add(d) as *const __m128i));
                let q0 = _mm256_loadu_si256(q.add(d) as *const __m256i);
                low = _mm256_add_epi32(low, _mm256_madd_epi16(r0, q0));
                d += 16;
            }
            let sum = _mm256_add_epi32(low, high);
            let halves = _mm_add_epi32(
                _mm256_castsi256_si128(sum),
                _mm256_extracti128_si256::<1>(sum),
            );
            let pairs = _mm_add_epi32(halves, _mm_shuffle_epi32::<0b01_00_11_10>(halves));
            let single = _mm_add_epi32(pairs, _mm_shuffle_epi32::<0b10_11_00_01>(pairs));
            let mut total = _mm_cvtsi128_si32(single);
            for tail in d..dimension {
                total += *q.add(tail) as i32 * *row.add(tail) as i32;
            }
            *score = total as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(seed: u64, count: usize) -> Vec<f32> {
        let mut state = seed | 1;
        (0..count)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect()
    }

    #[test]
    fn int8_scores_track_f32_dot_products_within_quantization_error() {
        let mut sets = vec![KernelSet::Portable];
        if KernelSet::detect() != KernelSet::Portable {
            sets.push(KernelSet::detect());
        }
        for dimension in [1, 15, 16, 17, 48, 512, 515] {
            let query = values(dimension as u64, dimension);
            let rows = values(dimension as u64 + 77, dimension * 5);
            let mut codes = vec![0i8; rows.len()];
            let scales: Vec<f32> = rows
                .chunks_exact(dimension)
                .zip(codes.chunks_exact_mut(dimension))
                .map(|(row, codes)| quantize_row(row, codes))
                .collect();
            let quantized = QuantizedQuery::new(&query);
            let mut by_set = Vec::new();
            for set in &sets {
                let mut scores = vec![0f32; 5];
                set.dot_rows_int8(&quantized, &codes, &scales, &mut scores);
                for (row, score) in rows.chunks_exact(dimension).zip(&scores) {
                    let exact: f32 = row.iter().zip(&query).map(|(a, b)| a * b).sum();
                    let norm: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt()
                        * query.iter().map(|v| v * v).sum::<f32>().sqrt();
                    assert!(
                        (score - exact).abs() <= 0.02 * norm + 1e-6,
                        "{score} {exact}"
                    );
                }
                by_set.push(scores);
            }
            // integer sums are exact, so every kernel gives the same scores
            assert!(by_set.windows(2).all(|pair| pair[0] == pair[1]));
        }
    }

    #[test]
    fn zero_rows_quantize_to_zero_scale() {
        let mut codes = [1i8; 4];
        assert_eq!(quantize_row(&[0.0; 4], &mut codes), 0.0);
        assert_eq!(codes, [0; 4]);
    }
}
