//! Face embedding: aligned 112×112 crops to unit-length vectors, one model per `ModelId`.

use crate::align::ALIGNED_SIDE;
use crate::detect::Normalisation;
use crate::manifest::{ChannelOrder, ModelEntry, ModelRole};
use crate::{AlignedFace, InferError};
use ort::session::Session;
use ort::value::TensorRef;
use std::path::Path;
use std::sync::Mutex;
use vigil_base::{Embedding, ModelId};

pub trait FaceEmbedder: Send + Sync {
    fn model_id(&self) -> &ModelId;
    /// One embedding per face, in order.
    fn embed(&self, faces: &[AlignedFace]) -> Result<Vec<Embedding>, InferError>;
}

struct EmbedderSession {
    session: Session,
    input: Vec<f32>,
}

/// A manifest recognizer run one face at a time: w600k_mbf_int8 quantises activations with one
/// scale per input tensor, so batching would change every embedding (MANIFEST: cos 0.98–0.99).
pub struct OnnxEmbedder {
    model_id: ModelId,
    normalisation: Normalisation,
    state: Mutex<EmbedderSession>,
}

impl OnnxEmbedder {
    pub fn open(
        environment: &ort::environment::Environment,
        models_dir: &Path,
        entry: &ModelEntry,
        intra_threads: usize,
    ) -> Result<Self, InferError> {
        if entry.role != ModelRole::Recognizer {
            return Err(InferError::WrongModelRole {
                name: entry.name.clone(),
                expected: ModelRole::Recognizer.to_string(),
                actual: entry.role.to_string(),
            });
        }
        let path = models_dir.join(&entry.file);
        crate::manifest::verify_file(&path, &entry.sha256)?;
        let session = crate::runtime::open_session(environment, &entry.name, &path, intra_threads)?;
        Ok(Self {
            model_id: ModelId::new(entry.name.clone()),
            normalisation: Normalisation {
                channel_order: entry.channel_order,
                mean: entry.mean,
                std: entry.std,
            },
            state: Mutex::new(EmbedderSession {
                session,
                input: Vec::new(),
            }),
        })
    }

    fn embed_one(
        &self,
        state: &mut EmbedderSession,
        face: &AlignedFace,
    ) -> Result<Embedding, InferError> {
        let name = self.model_id.as_str();
        let plane = ALIGNED_SIDE * ALIGNED_SIDE;
        if face.rgb.len() != plane * 3 {
            return Err(InferError::InvalidSetting(format!(
                "aligned face has {} bytes, expected {}",
                face.rgb.len(),
                plane * 3
            )));
        }
        state.input.resize(plane * 3, 0.0);
        let source_channel = match self.normalisation.channel_order {
            ChannelOrder::Rgb => [0, 1, 2],
            ChannelOrder::Bgr => [2, 1, 0],
        };
        for (plane_index, values) in state.input.chunks_exact_mut(plane).enumerate() {
            let channel = source_channel[plane_index];
            let scale = 1.0 / self.normalisation.std[plane_index];
            let offset = -self.normalisation.mean[plane_index] * scale;
            for (value, pixel) in values.iter_mut().zip(face.rgb.chunks_exact(3)) {
                *value = pixel[channel] as f32 * scale + offset;
            }
        }
        let tensor = TensorRef::from_array_view((
            [1usize, 3, ALIGNED_SIDE, ALIGNED_SIDE],
            state.input.as_slice(),
        ))
        .map_err(|e| InferError::onnx(name, e))?;
        let outputs = state
            .session
            .run(ort::inputs![tensor])
            .map_err(|e| InferError::onnx(name, e))?;
        if outputs.len() == 0 {
            return Err(InferError::bad_output(name, "no outputs"));
        }
        let (_, values) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| InferError::onnx(name, e))?;
        Ok(Embedding::normalised(
            self.model_id.clone(),
            values.to_vec(),
        )?)
    }
}

impl FaceEmbedder for OnnxEmbedder {
    fn model_id(&self) -> &ModelId {
        &self.model_id
    }

    fn embed(&self, faces: &[AlignedFace]) -> Result<Vec<Embedding>, InferError> {
        let mut guard = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        faces
            .iter()
            .map(|face| self.embed_one(&mut guard, face))
            .collect()
    }
}
