//! Embeddings of LFW images, computed once per pipeline variant and cached on disk, since
//! calibration, verification and open-set evaluation all need them.

use crate::error::ServiceError;
use crate::lfw::{LfwDataset, LfwImage};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use vigil_base::{Embedding, ModelId};
use vigil_infer::{decode_image, DecodeLimits, DetectedFace, FaceAnalyzer};

/// How faces are found in an LFW image before embedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LfwVariant {
    /// The reference pipeline of data/MANIFEST.md: the analyzer's detector letterboxed to 256,
    /// threshold 0.3, face nearest the centre.
    Reference,
    /// vigil's own default pipeline (`FaceAnalyzer::analyze`), face nearest the centre.
    Default,
}

impl LfwVariant {
    fn tag(self) -> &'static str {
        match self {
            LfwVariant::Reference => "reference",
            LfwVariant::Default => "default",
        }
    }
}

/// The embedding of one image, or None when no face was found.
#[derive(Debug, Clone)]
pub struct ImageEmbedding {
    pub embedding: Option<Embedding>,
    /// Whether the face passed the quality gate.
    pub usable: bool,
}

pub struct EmbeddingSet {
    pub model: ModelId,
    pub by_image: HashMap<LfwImage, ImageEmbedding>,
}

const CACHE_MAGIC: &[u8; 6] = b"VLFWE1";

/// LFW's images are 250×250 with the labelled person centred.
const LFW_CENTRE: [f32; 2] = [125.0, 125.0];

pub fn nearest_centre(faces: &[DetectedFace], centre: [f32; 2]) -> Option<usize> {
    faces
        .iter()
        .enumerate()
        .min_by(|(_, a), (_, b)| distance(a, centre).total_cmp(&distance(b, centre)))
        .map(|(i, _)| i)
}

fn distance(face: &DetectedFace, centre: [f32; 2]) -> f32 {
    let [x, y] = face.bbox.center();
    (x - centre[0]).powi(2) + (y - centre[1]).powi(2)
}

fn embed_one(
    analyzer: &FaceAnalyzer,
    variant: LfwVariant,
    bytes: &[u8],
) -> Result<ImageEmbedding, ServiceError> {
    let image = decode_image(bytes, &DecodeLimits::default())?;
    match variant {
        LfwVariant::Reference => {
            let faces = analyzer.detect_with(&image, 256, 0.3)?;
            let Some(best) = nearest_centre(&faces, LFW_CENTRE) else {
                return Ok(ImageEmbedding {
                    embedding: None,
                    usable: false,
                });
            };
            let aligned = analyzer.align(&image, &faces[best]);
            let embedding = analyzer
                .embed(std::slice::from_ref(&aligned))?
                .into_iter()
                .next();
            Ok(ImageEmbedding {
                embedding,
                usable: true,
            })
        }
        LfwVariant::Default => {
            let faces = analyzer.analyze(&image)?;
            let detections: Vec<DetectedFace> = faces.iter().map(|f| f.detection.clone()).collect();
            let Some(best) = nearest_centre(&detections, LFW_CENTRE) else {
                return Ok(ImageEmbedding {
                    embedding: None,
                    usable: false,
                });
            };
            let face = &faces[best];
            Ok(ImageEmbedding {
                embedding: Some(face.embedding.clone()),
                usable: face.is_usable(),
            })
        }
    }
}

/// Embeds `images` (reusing the cache in `cache_dir` when it holds them). The images are
/// shared out over `analyzers` (same models, one thread each works best; see BENCHMARKS.md),
/// which run side by side.
pub fn embed_lfw(
    dataset: &LfwDataset,
    analyzers: &[FaceAnalyzer],
    variant: LfwVariant,
    images: &[LfwImage],
    cache_dir: Option<&Path>,
) -> Result<EmbeddingSet, ServiceError> {
    let analyzer = analyzers
        .first()
        .ok_or_else(|| ServiceError::Invalid("no analyzer to embed with".into()))?;
    let model = analyzer.recognizer_model().clone();
    let cache_path = cache_dir.map(|dir| {
        dir.join(format!(
            "lfw-{}-{}-{}.bin",
            variant.tag(),
            analyzer.detector_name(),
            model
        ))
    });
    let mut by_image = match &cache_path {
        Some(path) if path.exists() => read_cache(path, &model).unwrap_or_default(),
        _ => HashMap::new(),
    };
    let missing: Vec<&LfwImage> = images
        .iter()
        .filter(|i| !by_image.contains_key(*i))
        .collect();
    if !missing.is_empty() {
        let bar = super::progress(missing.len(), &format!("embedding {model}"));
        let embed_share = |worker: usize, analyzer: &FaceAnalyzer| {
            let mut done = Vec::new();
            for image in missing.iter().skip(worker).step_by(analyzers.len()) {
                let path = dataset.path_of(image);
                let bytes = std::fs::read(&path).map_err(|source| ServiceError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                done.push(((*image).clone(), embed_one(analyzer, variant, &bytes)?));
                bar.inc(1);
            }
            Ok::<_, ServiceError>(done)
        };
        let shares: Vec<Result<Vec<(LfwImage, ImageEmbedding)>, ServiceError>> =
            std::thread::scope(|scope| {
                let handles: Vec<_> = analyzers
                    .iter()
                    .enumerate()
                    .map(|(worker, analyzer)| {
                        let embed_share = &embed_share;
                        scope.spawn(move || embed_share(worker, analyzer))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|handle| {
                        handle.join().unwrap_or_else(|_| {
                            Err(ServiceError::Invalid("an embedding worker panicked".into()))
                        })
                    })
                    .collect()
            });
        bar.finish_and_clear();
        for share in shares {
            by_image.extend(share?);
        }
        if let Some(path) = &cache_path {
            write_cache(path, &by_image)?;
        }
    }
    Ok(EmbeddingSet { model, by_image })
}

fn write_cache(
    path: &Path,
    entries: &HashMap<LfwImage, ImageEmbedding>,
) -> Result<(), ServiceError> {
    let io = |source| ServiceError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut out = Vec::with_capacity(entries.len() * 2100);
    out.extend_from_slice(CACHE_MAGIC);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (image, value) in entries {
        let name = image.relative_path();
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(u8::from(value.embedding.is_some()) | (u8::from(value.usable) << 1));
        let values = value.embedding.as_ref().map(|e| e.values()).unwrap_or(&[]);
        out.extend_from_slice(&(values.len() as u16).to_le_bytes());
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    // write then rename, so a crash never leaves a half cache that parses
    let temporary: PathBuf = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temporary).map_err(io)?;
    file.write_all(&out).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)
}

fn read_cache(path: &Path, model: &ModelId) -> Option<HashMap<LfwImage, ImageEmbedding>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .read_to_end(&mut bytes)
        .ok()?;
    let mut cursor = bytes.strip_prefix(CACHE_MAGIC)?;
    let mut take = |n: usize| -> Option<&[u8]> {
        if cursor.len() < n {
            return None;
        }
        let (head, tail) = cursor.split_at(n);
        cursor = tail;
        Some(head)
    };
    let count = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
    let mut entries = HashMap::with_capacity(count);
    for _ in 0..count {
        let name_length = u16::from_le_bytes(take(2)?.try_into().ok()?) as usize;
        let name = std::str::from_utf8(take(name_length)?).ok()?.to_string();
        let flags = take(1)?[0];
        let dimension = u16::from_le_bytes(take(2)?.try_into().ok()?) as usize;
        let raw = take(dimension * 4)?;
        let embedding = if flags & 1 == 1 {
            Some(Embedding::from_le_bytes(model.clone(), raw).ok()?)
        } else {
            None
        };
        let file = name.rsplit('/').next()?;
        let stem = file.strip_suffix(".jpg")?;
        let (identity, number) = stem.rsplit_once('_')?;
        entries.insert(
            LfwImage {
                identity: identity.to_string(),
                number: number.parse().ok()?,
            },
            ImageEmbedding {
                embedding,
                usable: flags & 2 == 2,
            },
        );
    }
    Some(entries)
}
