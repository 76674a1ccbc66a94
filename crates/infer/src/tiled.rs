//! Detection on images much larger than the network input, by tiling a pyramid.
//!
//! Level k is the image shrunk by 2^k (2×2 box filter per step). Every level whose longer side
//! still exceeds the network input is covered by input-sized tiles overlapping by `overlap` of
//! their side; the coarsest pass is the whole image letterboxed to the input. Invariant: a face
//! no larger than `overlap × input` pixels at some tiled level lies whole inside one of its
//! tiles, and larger faces are small enough at a coarser level or in the whole-image pass.
//! Detections touching an internal tile edge are dropped (the face is cut there and whole
//! elsewhere); everything else is mapped to source pixels and merged by NMS.

use crate::detect::{non_maximum_suppression, DetectedFace, FaceDetector, RgbView};
use crate::InferError;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TilingSettings {
    /// Square network input side, pixels.
    pub input_pixels: u32,
    /// Overlap of neighbouring tiles as a fraction of the tile side, in [0, 0.9).
    pub overlap: f32,
    /// Tile only when the longer side exceeds this many network inputs.
    pub tile_above_factor: f32,
}

impl TilingSettings {
    pub fn needs_tiling(&self, width: u32, height: u32) -> bool {
        width.max(height) as f32 > self.tile_above_factor * self.input_pixels as f32
    }
}

/// Start offsets of tiles of `tile` pixels covering `length` pixels with at least
/// `overlap_pixels` shared between neighbours; the last tile ends flush with the image.
pub fn tile_starts(length: u32, tile: u32, overlap_pixels: u32) -> Vec<u32> {
    if length <= tile {
        return vec![0];
    }
    let step = tile.saturating_sub(overlap_pixels).max(1);
    let mut starts: Vec<u32> = (0..)
        .map(|i| i * step)
        .take_while(|s| s + tile < length)
        .collect();
    starts.push(length - tile);
    starts
}

/// Halves an RGB8 image with a 2×2 box filter (odd last row/column dropped).
fn half_size(image: RgbView<'_>) -> (u32, u32, Vec<u8>) {
    let (width, height) = ((image.width / 2).max(1), (image.height / 2).max(1));
    let source_stride = image.width as usize * 3;
    let mut out = vec![0u8; width as usize * height as usize * 3];
    if image.width < 2 || image.height < 2 {
        let length = out.len();
        out.copy_from_slice(&image.rgb[..length]);
        return (width, height, out);
    }
    for (y, row) in out.chunks_exact_mut(width as usize * 3).enumerate() {
        let top = &image.rgb[2 * y * source_stride..(2 * y + 1) * source_stride];
        let bottom = &image.rgb[(2 * y + 1) * source_stride..(2 * y + 2) * source_stride];
        for ((pixel, top_pair), bottom_pair) in row
            .chunks_exact_mut(3)
            .zip(top.chunks_exact(6))
            .zip(bottom.chunks_exact(6))
        {
            for channel in 0..3 {
                let sum = top_pair[channel] as u16
                    + top_pair[channel + 3] as u16
                    + bottom_pair[channel] as u16
                    + bottom_pair[channel + 3] as u16;
                pixel[channel] = ((sum + 2) / 4) as u8;
            }
        }
    }
    (width, height, out)
}

/// Runs the tiled pyramid; see the module documentation.
pub fn detect_tiled(
    detector: &dyn FaceDetector,
    image: RgbView<'_>,
    settings: &TilingSettings,
    threshold: f32,
) -> Result<Vec<DetectedFace>, InferError> {
    let tile = settings.input_pixels;
    let overlap_pixels = (settings.overlap.clamp(0.0, 0.9) * tile as f32).round() as u32;
    // Boxes of faces cut by a tile edge end on it; allow for the detector's slack.
    let edge_margin = (tile as f32 * 0.01).max(2.0);
    let mut faces = Vec::new();
    let mut level_image: Option<(u32, u32, Vec<u8>)> = None;
    let mut level_scale = 1.0f32;
    let mut tile_buffer = Vec::new();
    loop {
        let view = match &level_image {
            Some((width, height, rgb)) => RgbView {
                width: *width,
                height: *height,
                rgb,
            },
            None => image,
        };
        if view.width.max(view.height) <= tile {
            break;
        }
        let row_stride = view.width as usize * 3;
        for &y0 in &tile_starts(view.height, tile, overlap_pixels) {
            for &x0 in &tile_starts(view.width, tile, overlap_pixels) {
                let tile_width = tile.min(view.width);
                let tile_height = tile.min(view.height);
                tile_buffer.clear();
                for y in y0..y0 + tile_height {
                    let start = y as usize * row_stride + x0 as usize * 3;
                    tile_buffer
                        .extend_from_slice(&view.rgb[start..start + tile_width as usize * 3]);
                }
                let tile_view = RgbView {
                    width: tile_width,
                    height: tile_height,
                    rgb: &tile_buffer,
                };
                let internal_left = x0 > 0;
                let internal_top = y0 > 0;
                let internal_right = x0 + tile_width < view.width;
                let internal_bottom = y0 + tile_height < view.height;
                for face in detector.detect_view(tile_view, tile, threshold)? {
                    let b = face.bbox;
                    let cut = (internal_left && b.x1 <= edge_margin)
                        || (internal_top && b.y1 <= edge_margin)
                        || (internal_right && b.x2 >= tile_width as f32 - edge_margin)
                        || (internal_bottom && b.y2 >= tile_height as f32 - edge_margin);
                    if !cut {
                        faces.push(face.mapped([x0 as f32, y0 as f32], level_scale));
                    }
                }
            }
        }
        level_image = Some(half_size(view));
        level_scale *= 2.0;
    }
    faces.extend(detector.detect_view(image, tile, threshold)?);
    Ok(non_maximum_suppression(faces, detector.nms_iou()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_span_up_to_the_overlap_lies_inside_one_tile() {
        for length in [641u32, 1000, 1919, 4000, 8000] {
            for overlap in [0u32, 100, 160, 320] {
                let starts = tile_starts(length, 640, overlap);
                assert_eq!(*starts.last().unwrap() + 640, length);
                if overlap == 0 {
                    continue;
                }
                for begin in 0..=length - overlap {
                    let end = begin + overlap;
                    assert!(
                        starts.iter().any(|s| *s <= begin && end <= s + 640),
                        "span {begin}..{end} of {length} not in a tile (overlap {overlap})"
                    );
                }
            }
        }
        assert_eq!(tile_starts(500, 640, 160), vec![0]);
    }

    #[test]
    fn half_size_averages_blocks() {
        let rgb: Vec<u8> = [[0u8, 0, 0], [4, 4, 4], [8, 8, 8], [12, 12, 12]].concat();
        let (w, h, out) = half_size(RgbView {
            width: 2,
            height: 2,
            rgb: &rgb,
        });
        assert_eq!((w, h, out), (1, 1, vec![6, 6, 6]));
    }
}
