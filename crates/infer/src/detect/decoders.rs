//! Turning raw detector outputs into faces in network-input pixels (before NMS).

use super::{BoundingBox, Canvas, DetectedFace};
use crate::InferError;
use ort::session::SessionOutputs;

const STRIDES: [usize; 3] = [8, 16, 32];

fn output<'o>(
    model: &str,
    outputs: &'o SessionOutputs<'_>,
    key: OutputKey<'_>,
    expected_len: usize,
) -> Result<&'o [f32], InferError> {
    let value = match key {
        OutputKey::Index(index) if index < outputs.len() => &outputs[index],
        OutputKey::Name(name) => outputs
            .get(name)
            .ok_or_else(|| InferError::bad_output(model, format!("no output `{name}`")))?,
        OutputKey::Index(index) => {
            return Err(InferError::bad_output(model, format!("no output #{index}")))
        }
    };
    let (_, data) = value
        .try_extract_tensor::<f32>()
        .map_err(|e| InferError::onnx(model, e))?;
    if data.len() != expected_len {
        return Err(InferError::bad_output(
            model,
            format!(
                "output {key:?} has {} values, expected {expected_len}",
                data.len()
            ),
        ));
    }
    Ok(data)
}

#[derive(Debug, Clone, Copy)]
enum OutputKey<'a> {
    Index(usize),
    Name(&'a str),
}

/// SCRFD: per stride, 2 anchors per cell centred at (x·s, y·s); distances ·s from the centre.
pub(super) fn scrfd(
    model: &str,
    outputs: &SessionOutputs<'_>,
    canvas: Canvas,
    threshold: f32,
) -> Result<Vec<DetectedFace>, InferError> {
    const ANCHORS_PER_CELL: usize = 2;
    let mut faces = Vec::new();
    for (level, stride) in STRIDES.into_iter().enumerate() {
        let cells_per_row = canvas.width as usize / stride;
        let anchors = cells_per_row * (canvas.height as usize / stride) * ANCHORS_PER_CELL;
        let scores = output(model, outputs, OutputKey::Index(level), anchors)?;
        let boxes = output(model, outputs, OutputKey::Index(level + 3), anchors * 4)?;
        let keypoints = output(model, outputs, OutputKey::Index(level + 6), anchors * 10)?;
        let s = stride as f32;
        for (anchor, score) in scores.iter().enumerate() {
            if *score < threshold {
                continue;
            }
            let cell = anchor / ANCHORS_PER_CELL;
            let cx = (cell % cells_per_row) as f32 * s;
            let cy = (cell / cells_per_row) as f32 * s;
            let distances = &boxes[anchor * 4..anchor * 4 + 4];
            let points = &keypoints[anchor * 10..anchor * 10 + 10];
            let mut landmarks = [[0f32; 2]; 5];
            for (index, landmark) in landmarks.iter_mut().enumerate() {
                *landmark = [cx + points[index * 2] * s, cy + points[index * 2 + 1] * s];
            }
            faces.push(DetectedFace {
                bbox: BoundingBox {
                    x1: cx - distances[0] * s,
                    y1: cy - distances[1] * s,
                    x2: cx + distances[2] * s,
                    y2: cy + distances[3] * s,
                },
                score: *score,
                landmarks,
            });
        }
    }
    Ok(faces)
}

/// YuNet: score = sqrt(cls·obj); box (c+dx, r+dy)·s centre, exp(log size)·s.
pub(super) fn yunet(
    model: &str,
    outputs: &SessionOutputs<'_>,
    canvas: Canvas,
    threshold: f32,
) -> Result<Vec<DetectedFace>, InferError> {
    let mut faces = Vec::new();
    for stride in STRIDES {
        let cells_per_row = canvas.width as usize / stride;
        let cells = cells_per_row * (canvas.height as usize / stride);
        let classes = output(
            model,
            outputs,
            OutputKey::Name(&format!("cls_{stride}")),
            cells,
        )?;
        let objectness = output(
            model,
            outputs,
            OutputKey::Name(&format!("obj_{stride}")),
            cells,
        )?;
        let boxes = output(
            model,
            outputs,
            OutputKey::Name(&format!("bbox_{stride}")),
            cells * 4,
        )?;
        let keypoints = output(
            model,
            outputs,
            OutputKey::Name(&format!("kps_{stride}")),
            cells * 10,
        )?;
        let s = stride as f32;
        for cell in 0..cells {
            let score = (classes[cell].clamp(0.0, 1.0) * objectness[cell].clamp(0.0, 1.0)).sqrt();
            if score < threshold {
                continue;
            }
            let column = (cell % cells_per_row) as f32;
            let row = (cell / cells_per_row) as f32;
            let regression = &boxes[cell * 4..cell * 4 + 4];
            let cx = (column + regression[0]) * s;
            let cy = (row + regression[1]) * s;
            let width = regression[2].exp() * s;
            let height = regression[3].exp() * s;
            let points = &keypoints[cell * 10..cell * 10 + 10];
            let mut landmarks = [[0f32; 2]; 5];
            for (index, landmark) in landmarks.iter_mut().enumerate() {
                *landmark = [
                    (column + points[index * 2]) * s,
                    (row + points[index * 2 + 1]) * s,
                ];
            }
            faces.push(DetectedFace {
                bbox: BoundingBox::from_centre(cx, cy, width, height),
                score,
                landmarks,
            });
        }
    }
    Ok(faces)
}

/// RetinaFace: SSD-style priors, variances (0.1, 0.2), everything in units of the input side.
pub(super) fn retinaface(
    model: &str,
    outputs: &SessionOutputs<'_>,
    canvas: Canvas,
    threshold: f32,
) -> Result<Vec<DetectedFace>, InferError> {
    const MIN_SIZES: [[f32; 2]; 3] = [[16.0, 32.0], [64.0, 128.0], [256.0, 512.0]];
    const CENTRE_VARIANCE: f32 = 0.1;
    const SIZE_VARIANCE: f32 = 0.2;
    let priors: Vec<[f32; 4]> = STRIDES
        .iter()
        .zip(MIN_SIZES)
        .flat_map(|(&stride, sizes)| {
            let cells_per_row = (canvas.width as usize).div_ceil(stride);
            let rows = (canvas.height as usize).div_ceil(stride);
            (0..cells_per_row * rows).flat_map(move |cell| {
                let cx = ((cell % cells_per_row) as f32 + 0.5) * stride as f32;
                let cy = ((cell / cells_per_row) as f32 + 0.5) * stride as f32;
                sizes.map(|size| [cx, cy, size, size])
            })
        })
        .collect();
    let count = priors.len();
    let locations = output(model, outputs, OutputKey::Name("output0"), count * 4)?;
    let scores = output(model, outputs, OutputKey::Name("572"), count * 2)?;
    let landmark_offsets = output(model, outputs, OutputKey::Name("571"), count * 10)?;
    let mut faces = Vec::new();
    for (index, prior) in priors.iter().enumerate() {
        let score = scores[index * 2 + 1];
        if score < threshold {
            continue;
        }
        let [px, py, pw, ph] = *prior;
        let location = &locations[index * 4..index * 4 + 4];
        let cx = px + location[0] * CENTRE_VARIANCE * pw;
        let cy = py + location[1] * CENTRE_VARIANCE * ph;
        let width = pw * (location[2] * SIZE_VARIANCE).exp();
        let height = ph * (location[3] * SIZE_VARIANCE).exp();
        let points = &landmark_offsets[index * 10..index * 10 + 10];
        let mut landmarks = [[0f32; 2]; 5];
        for (point, landmark) in landmarks.iter_mut().enumerate() {
            *landmark = [
                px + points[point * 2] * CENTRE_VARIANCE * pw,
                py + points[point * 2 + 1] * CENTRE_VARIANCE * ph,
            ];
        }
        faces.push(DetectedFace {
            bbox: BoundingBox::from_centre(cx, cy, width, height),
            score,
            landmarks,
        });
    }
    Ok(faces)
}
