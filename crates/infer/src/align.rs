//! Alignment: a 4-DOF similarity from the five detector landmarks to the ArcFace template,
//! then a bilinear warp to 112×112 (OpenCV `warpAffine` conventions, constant border 0).

use crate::{DecodedImage, DetectedFace, InferError};
use image::ImageEncoder;

/// Side of the aligned crop, pixels.
pub const ALIGNED_SIDE: usize = 112;

/// ArcFace reference positions of the five landmarks in a 112×112 crop.
pub const ARCFACE_TEMPLATE: [[f32; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// A 112×112 face crop in the ArcFace frame.
#[derive(Debug, Clone, PartialEq)]
pub struct AlignedFace {
    /// 112·112·3 bytes, packed RGB8.
    pub rgb: Vec<u8>,
}

impl AlignedFace {
    /// JPEG thumbnail, as stored with a template.
    pub fn to_jpeg(&self, quality: u8) -> Result<Vec<u8>, InferError> {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
            .write_image(
                &self.rgb,
                ALIGNED_SIDE as u32,
                ALIGNED_SIDE as u32,
                image::ExtendedColorType::Rgb8,
            )
            .map_err(|e| InferError::CorruptImage(e.to_string()))?;
        Ok(out)
    }
}

/// Row-major 2×3 affine matrix mapping source to destination pixels.
pub type Affine = [[f32; 3]; 2];

/// Least-squares similarity (rotation, uniform scale, translation) taking `source` points onto
/// `destination` points; in 2-D this linear solution is the Umeyama estimate.
pub fn similarity_transform(source: &[[f32; 2]; 5], destination: &[[f32; 2]; 5]) -> Affine {
    let count = source.len() as f64;
    let mean = |points: &[[f32; 2]; 5], axis: usize| {
        points.iter().map(|p| p[axis] as f64).sum::<f64>() / count
    };
    let (source_x, source_y) = (mean(source, 0), mean(source, 1));
    let (destination_x, destination_y) = (mean(destination, 0), mean(destination, 1));
    let (mut dot, mut cross, mut norm) = (0f64, 0f64, 0f64);
    for (s, d) in source.iter().zip(destination) {
        let (sx, sy) = (s[0] as f64 - source_x, s[1] as f64 - source_y);
        let (dx, dy) = (d[0] as f64 - destination_x, d[1] as f64 - destination_y);
        dot += sx * dx + sy * dy;
        cross += sx * dy - sy * dx;
        norm += sx * sx + sy * sy;
    }
    if norm <= f64::EPSILON {
        // All landmarks coincide: no rotation or scale can be estimated; keep translation.
        return [
            [1.0, 0.0, (destination_x - source_x) as f32],
            [0.0, 1.0, (destination_y - source_y) as f32],
        ];
    }
    let a = dot / norm;
    let b = cross / norm;
    let tx = destination_x - (a * source_x - b * source_y);
    let ty = destination_y - (b * source_x + a * source_y);
    [
        [a as f32, -b as f32, tx as f32],
        [b as f32, a as f32, ty as f32],
    ]
}

fn invert(matrix: &Affine) -> Option<Affine> {
    let [[a, b, c], [d, e, f]] = matrix.map(|row| row.map(f64::from));
    let determinant = a * e - b * d;
    if determinant.abs() < 1e-12 {
        return None;
    }
    let inverse_determinant = 1.0 / determinant;
    let (ia, ib, id, ie) = (
        e * inverse_determinant,
        -b * inverse_determinant,
        -d * inverse_determinant,
        a * inverse_determinant,
    );
    Some([
        [ia as f32, ib as f32, (-(ia * c + ib * f)) as f32],
        [id as f32, ie as f32, (-(id * c + ie * f)) as f32],
    ])
}

/// Warps the face into the ArcFace frame.
pub fn align_face(image: &DecodedImage, face: &DetectedFace) -> AlignedFace {
    let transform = similarity_transform(&face.landmarks, &ARCFACE_TEMPLATE);
    warp_affine(image, &transform)
}

/// `dst(x, y) = src(M⁻¹·(x, y, 1))`, bilinear; taps outside the source read 0.
pub fn warp_affine(image: &DecodedImage, transform: &Affine) -> AlignedFace {
    let mut rgb = vec![0u8; ALIGNED_SIDE * ALIGNED_SIDE * 3];
    let Some(inverse) = invert(transform) else {
        return AlignedFace { rgb };
    };
    let (width, height) = (image.width as i64, image.height as i64);
    let stride = image.width as usize * 3;
    let source = &image.rgb;
    let tap = |x: i64, y: i64, channel: usize| -> f32 {
        if x < 0 || y < 0 || x >= width || y >= height {
            0.0
        } else {
            source[y as usize * stride + x as usize * 3 + channel] as f32
        }
    };
    for (y, row) in rgb.chunks_exact_mut(ALIGNED_SIDE * 3).enumerate() {
        let yf = y as f32;
        for (x, pixel) in row.chunks_exact_mut(3).enumerate() {
            let xf = x as f32;
            let sx = inverse[0][0] * xf + inverse[0][1] * yf + inverse[0][2];
            let sy = inverse[1][0] * xf + inverse[1][1] * yf + inverse[1][2];
            if !(sx > -1.0 && sy > -1.0 && sx < width as f32 && sy < height as f32) {
                continue;
            }
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            let inside = x0 >= 0 && y0 >= 0 && x0 + 1 < width && y0 + 1 < height;
            for (channel, out) in pixel.iter_mut().enumerate() {
                let (p00, p01, p10, p11) = if inside {
                    let base = y0 as usize * stride + x0 as usize * 3 + channel;
                    (
                        source[base] as f32,
                        source[base + 3] as f32,
                        source[base + stride] as f32,
                        source[base + stride + 3] as f32,
                    )
                } else {
                    (
                        tap(x0, y0, channel),
                        tap(x0 + 1, y0, channel),
                        tap(x0, y0 + 1, channel),
                        tap(x0 + 1, y0 + 1, channel),
                    )
                };
                let top = p00 + (p01 - p00) * fx;
                let bottom = p10 + (p11 - p10) * fx;
                *out = (top + (bottom - top) * fy).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    AlignedFace { rgb }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_similarity_is_recovered_exactly() {
        // destination = 2·R(30°)·source + (5, -3)
        let (cos, sin) = (
            30f32.to_radians().cos() * 2.0,
            30f32.to_radians().sin() * 2.0,
        );
        let source = [
            [10.0, 20.0],
            [40.0, 22.0],
            [25.0, 35.0],
            [12.0, 50.0],
            [38.0, 49.0],
        ];
        let destination = source.map(|[x, y]| [cos * x - sin * y + 5.0, sin * x + cos * y - 3.0]);
        let m = similarity_transform(&source, &destination);
        assert!((m[0][0] - cos).abs() < 1e-4 && (m[1][0] - sin).abs() < 1e-4);
        assert!((m[0][2] - 5.0).abs() < 1e-3 && (m[1][2] + 3.0).abs() < 1e-3);
    }

    #[test]
    fn warp_follows_opencv_inverse_mapping_with_zero_border() {
        // A pure translation by (-10, -20): dst(x, y) = src(x + 10, y + 20).
        let (width, height) = (200u32, 200u32);
        let rgb: Vec<u8> = (0..width * height)
            .flat_map(|i| [(i % width) as u8, (i / width) as u8, 7])
            .collect();
        let image = DecodedImage::from_rgb(width, height, rgb).unwrap();
        let aligned = warp_affine(&image, &[[1.0, 0.0, -10.0], [0.0, 1.0, -20.0]]);
        let at = |x: usize, y: usize| {
            &aligned.rgb[(y * ALIGNED_SIDE + x) * 3..(y * ALIGNED_SIDE + x) * 3 + 3]
        };
        assert_eq!(at(0, 0), &[10, 20, 7]);
        assert_eq!(at(100, 50), &[110, 70, 7]);
        // Shift the other way: the left part falls outside the source and reads 0.
        let shifted = warp_affine(&image, &[[1.0, 0.0, 50.0], [0.0, 1.0, 0.0]]);
        assert_eq!(&shifted.rgb[0..3], &[0, 0, 0]);
        assert_eq!(&shifted.rgb[60 * 3..60 * 3 + 3], &[10, 0, 7]);
        assert!(!aligned.to_jpeg(90).unwrap().is_empty());
    }
}
