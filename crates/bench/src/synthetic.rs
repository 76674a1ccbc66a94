//! Deterministic synthetic face templates: clustered unit vectors (random centres plus noise,
//! normalised), like a gallery of several photos per person. The index benchmarks and the
//! scale simulation (`examples/shard_sim.rs`) run on them.

use crate::BenchError;
use vigil_base::{Embedding, ModelId, SubjectId};

/// Rows per synthetic identity cluster.
const ROWS_PER_CLUSTER: usize = 8;
/// Per-component noise added to a cluster centre before normalising.
const NOISE_PER_COMPONENT: f32 = 0.04;
const ROW_SEED: u64 = 0x5EED_0001;
const QUERY_SEED: u64 = 0x5EED_0002;
const CENTRE_SEED: u64 = 0x5EED_0003;

/// splitmix64: tiny, seedable, and good enough for synthetic vectors.
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn next_symmetric(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// Deterministic clustered unit vectors: item `i` of a stream is cluster centre `c` plus noise,
/// where the centre is regenerated from its own seed rather than stored.
pub struct SyntheticVectors {
    dimension: usize,
    clusters: usize,
    model: ModelId,
}

impl SyntheticVectors {
    pub fn new(dimension: usize, rows: usize) -> Self {
        Self {
            dimension,
            clusters: (rows / ROWS_PER_CLUSTER).max(1),
            model: ModelId::new("synthetic"),
        }
    }

    pub fn model(&self) -> &ModelId {
        &self.model
    }

    fn vector(&self, cluster: usize, noise_seed: u64) -> Result<Embedding, BenchError> {
        let mut centre =
            SplitMix(CENTRE_SEED ^ (cluster as u64).wrapping_mul(0xA24B_AED4_963E_E407));
        let mut noise = SplitMix(noise_seed);
        // centre components are uniform with norm about sqrt(d / 3); scale noise to match
        let noise_scale = NOISE_PER_COMPONENT * (self.dimension as f32 / 3.0).sqrt();
        let values = (0..self.dimension)
            .map(|_| centre.next_symmetric() + noise_scale * noise.next_symmetric())
            .collect();
        Embedding::normalised(self.model.clone(), values)
            .map_err(|error| BenchError::Config(format!("synthetic vector: {error}")))
    }

    /// The synthetic person behind row `row`: its cluster.
    pub fn subject_of(&self, row: usize) -> SubjectId {
        SubjectId((row % self.clusters) as i64)
    }

    /// Row `row` of the gallery: clusters take rows in turn.
    pub fn row(&self, row: usize) -> Result<Embedding, BenchError> {
        self.vector(
            row % self.clusters,
            ROW_SEED ^ (row as u64).wrapping_mul(0x9FB2_1C65_1E98_DF25),
        )
    }

    /// Query `query`: a fresh noisy view of a pseudo-randomly chosen cluster.
    pub fn query(&self, query: usize) -> Result<Embedding, BenchError> {
        let mut pick = SplitMix(QUERY_SEED ^ query as u64);
        let cluster = (pick.next_u64() % self.clusters as u64) as usize;
        self.vector(cluster, pick.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_data_is_deterministic_unit_and_clustered() {
        let data = SyntheticVectors::new(64, 800);
        let first = data.row(3).unwrap();
        assert_eq!(first, data.row(3).unwrap());
        assert!((first.values().iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-4);
        // rows 3 and 3 + clusters share a centre; rows 3 and 4 do not
        let same_cluster = data.row(3 + 100).unwrap();
        let other_cluster = data.row(4).unwrap();
        assert!(first.cosine(&same_cluster).unwrap() > first.cosine(&other_cluster).unwrap() + 0.3);
        assert_ne!(data.query(0).unwrap(), data.query(1).unwrap());
    }
}
