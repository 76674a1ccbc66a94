//! A face embedding: an L2-normalised vector tagged with the model that made it.

use crate::ids::ModelId;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EmbeddingError {
    #[error("embedding is empty")]
    Empty,
    #[error("embedding has a non-finite value")]
    NotFinite,
    #[error("embedding has zero norm")]
    ZeroNorm,
    #[error("cannot compare embeddings of model {left} and model {right}")]
    ModelMismatch { left: ModelId, right: ModelId },
    #[error("embedding dimensions differ: {left} vs {right}")]
    DimensionMismatch { left: usize, right: usize },
    #[error("embedding blob of {0} bytes is not a whole number of f32 values")]
    BadBlob(usize),
}

/// Unit-length embedding. The constructor normalises, so every `Embedding` has norm 1 and the
/// cosine similarity of two is their dot product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    model: ModelId,
    values: Vec<f32>,
}

impl Embedding {
    /// Normalises `values` to unit length.
    pub fn normalised(model: ModelId, mut values: Vec<f32>) -> Result<Self, EmbeddingError> {
        if values.is_empty() {
            return Err(EmbeddingError::Empty);
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(EmbeddingError::NotFinite);
        }
        let norm = values
            .iter()
            .map(|v| (*v as f64) * (*v as f64))
            .sum::<f64>()
            .sqrt();
        if norm <= f64::EPSILON {
            return Err(EmbeddingError::ZeroNorm);
        }
        let inverse = (1.0 / norm) as f32;
        values.iter_mut().for_each(|v| *v *= inverse);
        Ok(Self { model, values })
    }

    pub fn model(&self) -> &ModelId {
        &self.model
    }

    pub fn values(&self) -> &[f32] {
        &self.values
    }

    pub fn dimension(&self) -> usize {
        self.values.len()
    }

    /// Cosine similarity; refuses to compare across models.
    pub fn cosine(&self, other: &Embedding) -> Result<f32, EmbeddingError> {
        if self.model != other.model {
            return Err(EmbeddingError::ModelMismatch {
                left: self.model.clone(),
                right: other.model.clone(),
            });
        }
        if self.values.len() != other.values.len() {
            return Err(EmbeddingError::DimensionMismatch {
                left: self.values.len(),
                right: other.values.len(),
            });
        }
        Ok(dot(&self.values, &other.values))
    }

    /// Little-endian f32 bytes, the storage form.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        self.values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    pub fn from_le_bytes(model: ModelId, bytes: &[u8]) -> Result<Self, EmbeddingError> {
        if !bytes.len().is_multiple_of(4) {
            return Err(EmbeddingError::BadBlob(bytes.len()));
        }
        let values = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Self::normalised(model, values)
    }

    /// Mean of several embeddings of one model, renormalised: the fused template of a subject.
    pub fn mean(embeddings: &[&Embedding]) -> Result<Self, EmbeddingError> {
        let first = embeddings.first().ok_or(EmbeddingError::Empty)?;
        let mut sum = vec![0f32; first.dimension()];
        for e in embeddings {
            if e.model != first.model {
                return Err(EmbeddingError::ModelMismatch {
                    left: first.model.clone(),
                    right: e.model.clone(),
                });
            }
            if e.dimension() != sum.len() {
                return Err(EmbeddingError::DimensionMismatch {
                    left: sum.len(),
                    right: e.dimension(),
                });
            }
            sum.iter_mut().zip(&e.values).for_each(|(s, v)| *s += v);
        }
        Self::normalised(first.model.clone(), sum)
    }
}

/// Plain dot product; the compiler vectorises this loop. The index crate has the tuned kernels.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = a.len() / 8;
    for i in 0..chunks {
        for l in 0..8 {
            lanes[l] += a[i * 8 + l] * b[i * 8 + l];
        }
    }
    let mut sum: f32 = lanes.iter().sum();
    for i in chunks * 8..a.len() {
        sum += a[i] * b[i];
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_embedding_has_unit_norm() {
        let e = Embedding::normalised(ModelId::new("m"), vec![3.0, 4.0]).unwrap();
        assert!((e.values()[0] - 0.6).abs() < 1e-6);
        assert!((e.cosine(&e).unwrap() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn comparing_across_models_is_refused() {
        let a = Embedding::normalised(ModelId::new("a"), vec![1.0, 0.0]).unwrap();
        let b = Embedding::normalised(ModelId::new("b"), vec![1.0, 0.0]).unwrap();
        assert!(matches!(
            a.cosine(&b),
            Err(EmbeddingError::ModelMismatch { .. })
        ));
    }

    #[test]
    fn zero_and_nan_vectors_are_rejected() {
        assert_eq!(
            Embedding::normalised(ModelId::new("m"), vec![0.0; 4]),
            Err(EmbeddingError::ZeroNorm)
        );
        assert_eq!(
            Embedding::normalised(ModelId::new("m"), vec![f32::NAN, 1.0]),
            Err(EmbeddingError::NotFinite)
        );
    }

    #[test]
    fn blob_round_trip() {
        let e = Embedding::normalised(ModelId::new("m"), vec![1.0, 2.0, 3.0]).unwrap();
        let back = Embedding::from_le_bytes(ModelId::new("m"), &e.to_le_bytes()).unwrap();
        assert_eq!(e, back);
        assert!(Embedding::from_le_bytes(ModelId::new("m"), &[1, 2, 3]).is_err());
    }
}
