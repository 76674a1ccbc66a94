//! Detectors on the group photos against the Python reference, and tiled detection on a
//! mosaic far larger than the network input.

mod common;

use common::*;
use vigil_base::config::PipelineConfig;
use vigil_infer::manifest::Manifest;
use vigil_infer::{FaceDetector, OnnxDetector};

/// Every reference face found (IoU ≥ 0.5) and nothing else.
fn finds_all_group_photo_faces(model: &str, reference_key: &str, threshold: f32) {
    let manifest = Manifest::builtin();
    let detector = OnnxDetector::open(
        &environment(),
        &models_dir(),
        manifest.get(model).unwrap(),
        None,
        2,
    )
    .unwrap();
    let (mut found, mut expected, mut extra) = (0, 0, 0);
    for photo in PHOTOS {
        let image = load(&shared().join("data/group_photos").join(photo));
        let faces = detector.detect(&image, threshold).unwrap();
        let reference = reference_boxes(photo, reference_key, threshold);
        expected += reference.len();
        let matched = reference
            .iter()
            .filter(|r| faces.iter().any(|f| iou(**r, &f.bbox) >= 0.5))
            .count();
        found += matched;
        extra += faces.len().saturating_sub(matched);
    }
    assert_eq!(expected, 22, "reference should hold 22 faces for {model}");
    assert_eq!(
        (found, extra),
        (22, 0),
        "{model}: found {found}/22 with {extra} extra"
    );
}

#[test]
fn scrfd_2_5g_finds_all_22_group_photo_faces() {
    finds_all_group_photo_faces("scrfd_2.5g", "det_2.5g.onnx@640", 0.5);
}

#[test]
fn scrfd_500m_finds_all_22_group_photo_faces() {
    finds_all_group_photo_faces("scrfd_500m", "det_500m.onnx@640", 0.5);
}

#[test]
fn yunet_finds_all_22_group_photo_faces_at_threshold_0_7() {
    finds_all_group_photo_faces("yunet", "face_detection_yunet_2023mar.onnx@640", 0.7);
}

#[test]
fn yunet_dynamic_matches_official_yunet_at_640() {
    finds_all_group_photo_faces(
        "yunet_dynamic",
        "face_detection_yunet_2023mar.onnx@640",
        0.7,
    );
}

#[test]
fn retinaface_finds_all_22_group_photo_faces() {
    finds_all_group_photo_faces("retinaface_mb025", "retinaface_mobilenet0.25.onnx@640", 0.6);
}

/// Pastes `source` scaled by `scale` at `offset` into the canvas; returns the reference boxes
/// mapped the same way.
fn paste(
    canvas: &mut image::RgbImage,
    source: &image::RgbImage,
    photo: &str,
    offset: (u32, u32),
    scale: f32,
) -> Vec<[f32; 4]> {
    let resized = if scale == 1.0 {
        source.clone()
    } else {
        let (w, h) = (
            (source.width() as f32 * scale) as u32,
            (source.height() as f32 * scale) as u32,
        );
        image::imageops::resize(source, w, h, image::imageops::FilterType::Triangle)
    };
    image::imageops::replace(canvas, &resized, offset.0 as i64, offset.1 as i64);
    let (sx, sy) = (
        resized.width() as f32 / source.width() as f32,
        resized.height() as f32 / source.height() as f32,
    );
    reference_boxes(photo, "det_2.5g.onnx@640", 0.5)
        .into_iter()
        .map(|b| {
            [
                b[0] * sx + offset.0 as f32,
                b[1] * sy + offset.1 as f32,
                b[2] * sx + offset.0 as f32,
                b[3] * sy + offset.1 as f32,
            ]
        })
        .collect()
}

#[test]
fn tiled_detection_finds_every_face_in_an_8000x6000_mosaic() {
    let mut canvas = image::RgbImage::from_pixel(8000, 6000, image::Rgb([128, 128, 128]));
    let mut expected = Vec::new();
    let natives = [
        (100, 100),
        (2100, 100),
        (4100, 100),
        (100, 1800),
        (2100, 1800),
        (4100, 1800),
    ];
    let small = [
        (6200, 100),
        (6200, 900),
        (6200, 1700),
        (100, 3600),
        (1100, 3600),
        (2100, 3600),
    ];
    for (index, photo) in PHOTOS.iter().enumerate() {
        let decoded = load(&shared().join("data/group_photos").join(photo));
        let source = image::RgbImage::from_raw(decoded.width, decoded.height, decoded.rgb).unwrap();
        expected.extend(paste(&mut canvas, &source, photo, natives[index], 1.0));
        expected.extend(paste(&mut canvas, &source, photo, small[index], 0.4));
    }
    let image = vigil_infer::DecodedImage::from_rgb(8000, 6000, canvas.into_raw()).unwrap();
    let analyzer = analyzer("scrfd_2.5g", "w600k_mbf_int8", PipelineConfig::default());
    let faces = analyzer.detect(&image).unwrap();
    let missed: Vec<_> = expected
        .iter()
        .filter(|e| !faces.iter().any(|f| iou(**e, &f.bbox) >= 0.5))
        .collect();
    let false_positives = faces
        .iter()
        .filter(|f| !expected.iter().any(|e| iou(*e, &f.bbox) >= 0.3))
        .count();
    assert_eq!(expected.len(), 44);
    assert!(
        missed.is_empty(),
        "missed {} faces: {missed:?}",
        missed.len()
    );
    assert!(false_positives <= 2, "{false_positives} false positives");
    // The same image without tiling (one 640 letterbox, faces ≤ 20 px) misses most small faces:
    // the tiling is what finds them.
    let untiled = analyzer.detect_with(&image, 640, 0.5).unwrap();
    assert!(
        untiled.len() < 30,
        "untiled pass found {} faces",
        untiled.len()
    );
}
