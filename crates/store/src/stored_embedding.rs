//! Decoding stored embeddings without renormalising them.
//!
//! `Embedding::from_le_bytes` renormalises, and renormalising an already unit-length f32 vector
//! can move values by one ulp. A store must hand back exactly the vector it was given (scores
//! computed before and after a restart must agree bit for bit), so stored values are checked to
//! be unit length and then taken as they are. `vigil-base` offers no constructor for that, so the
//! values go through `Embedding`'s own serde form (`{model, values}`, fields in order), which is
//! its public wire format. A `from_unit_values` constructor in base would replace this module.

use serde::de::value::{SeqDeserializer, StringDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, SeqAccess, Visitor};
use serde::Deserialize;
use vigil_base::{Embedding, ModelId};

/// How far from 1 a stored embedding's L2 norm may be. Encoding never changes bits, so anything
/// beyond f32 rounding means the row was corrupted or written by something else.
const UNIT_NORM_TOLERANCE: f64 = 1e-4;

/// Why stored bytes are not a usable embedding.
#[derive(Debug, PartialEq)]
pub(crate) enum StoredEmbeddingError {
    Length { bytes: usize, dimension: usize },
    NotFinite,
    NotUnitNorm(f64),
    Decode(String),
}

impl std::fmt::Display for StoredEmbeddingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Length { bytes, dimension } => {
                write!(
                    f,
                    "blob of {bytes} bytes does not hold {dimension} f32 values"
                )
            }
            Self::NotFinite => f.write_str("a value is not finite"),
            Self::NotUnitNorm(norm) => write!(f, "norm is {norm}, not 1"),
            Self::Decode(reason) => write!(f, "cannot rebuild embedding: {reason}"),
        }
    }
}

/// Rebuilds the exact embedding whose `to_le_bytes()` produced `blob`.
pub(crate) fn embedding_from_stored_bytes(
    model: &ModelId,
    dimension: usize,
    blob: &[u8],
) -> Result<Embedding, StoredEmbeddingError> {
    if dimension == 0 || blob.len() != dimension.saturating_mul(4) {
        return Err(StoredEmbeddingError::Length {
            bytes: blob.len(),
            dimension,
        });
    }
    let values: Vec<f32> = blob
        .chunks_exact(4)
        .map(|bytes| f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
        .collect();
    if values.iter().any(|value| !value.is_finite()) {
        return Err(StoredEmbeddingError::NotFinite);
    }
    let norm = values
        .iter()
        .map(|value| f64::from(*value) * f64::from(*value))
        .sum::<f64>()
        .sqrt();
    if (norm - 1.0).abs() > UNIT_NORM_TOLERANCE {
        return Err(StoredEmbeddingError::NotUnitNorm(norm));
    }
    Embedding::deserialize(ModelAndValues {
        model: model.as_str().to_owned(),
        values,
    })
    .map_err(|error| StoredEmbeddingError::Decode(error.to_string()))
}

/// Presents `(model, values)` to a derived `Deserialize` as a two-element sequence, the serde
/// form of a struct with fields in declaration order.
struct ModelAndValues {
    model: String,
    values: Vec<f32>,
}

impl<'de> Deserializer<'de> for ModelAndValues {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_seq(ModelThenValues {
            model: Some(self.model),
            values: Some(self.values),
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

struct ModelThenValues {
    model: Option<String>,
    values: Option<Vec<f32>>,
}

impl<'de> SeqAccess<'de> for ModelThenValues {
    type Error = de::value::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        if let Some(model) = self.model.take() {
            let model: StringDeserializer<Self::Error> = model.into_deserializer();
            return seed.deserialize(model).map(Some);
        }
        if let Some(values) = self.values.take() {
            let values = SeqDeserializer::<_, Self::Error>::new(values.into_iter());
            return seed.deserialize(values).map(Some);
        }
        Ok(None)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(usize::from(self.model.is_some()) + usize::from(self.values.is_some()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> ModelId {
        ModelId::new("m")
    }

    #[test]
    fn stored_bytes_come_back_bit_exact() {
        for seed in 0..200 {
            let values = crate::conformance::pseudo_random_values(seed, 512);
            let original = Embedding::normalised(model(), values).unwrap();
            let back = embedding_from_stored_bytes(&model(), 512, &original.to_le_bytes()).unwrap();
            assert_eq!(back, original, "seed {seed}");
            assert_eq!(back.model(), &model());
        }
    }

    #[test]
    fn corrupt_stored_bytes_are_refused() {
        let unit = Embedding::normalised(model(), vec![1.0, 0.0])
            .unwrap()
            .to_le_bytes();
        assert!(matches!(
            embedding_from_stored_bytes(&model(), 3, &unit),
            Err(StoredEmbeddingError::Length { .. })
        ));
        let doubled: Vec<u8> = [2.0f32, 0.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert!(matches!(
            embedding_from_stored_bytes(&model(), 2, &doubled),
            Err(StoredEmbeddingError::NotUnitNorm(_))
        ));
        let nan: Vec<u8> = [f32::NAN, 1.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(
            embedding_from_stored_bytes(&model(), 2, &nan),
            Err(StoredEmbeddingError::NotFinite)
        );
        assert!(embedding_from_stored_bytes(&model(), 0, &[]).is_err());
    }
}
