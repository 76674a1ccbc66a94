//! Letterbox straight into the network's planar float input: scale the longer side to the net
//! size (bilinear, OpenCV `INTER_LINEAR` pixel-centre convention), image at the top-left, the
//! rest a zero canvas, normalised per channel on the way.

use super::Canvas;
use crate::manifest::ChannelOrder;

/// How pixels become network values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Normalisation {
    pub channel_order: ChannelOrder,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalisation {
    /// Multiplier and offset per network channel, for `value = pixel * scale + offset`, indexed
    /// by the RGB source channel feeding that plane.
    fn plane_terms(&self) -> [(usize, f32, f32); 3] {
        let source_channel = match self.channel_order {
            ChannelOrder::Rgb => [0, 1, 2],
            ChannelOrder::Bgr => [2, 1, 0],
        };
        let mut terms = [(0usize, 0f32, 0f32); 3];
        for (plane, term) in terms.iter_mut().enumerate() {
            let scale = 1.0 / self.std[plane];
            *term = (source_channel[plane], scale, -self.mean[plane] * scale);
        }
        terms
    }
}

/// Fills `tensor` (3 × canvas height × canvas width, resized as needed) with the letterboxed
/// image and returns the scale applied to source coordinates.
pub(crate) fn letterbox_into(
    rgb: &[u8],
    width: u32,
    height: u32,
    canvas: Canvas,
    normalisation: &Normalisation,
    tensor: &mut Vec<f32>,
) -> f32 {
    let canvas_width = canvas.width as usize;
    let plane = canvas_width * canvas.height as usize;
    let scale = (canvas.width as f32 / width as f32).min(canvas.height as f32 / height as f32);
    let resized_width = ((width as f32 * scale).round() as usize).clamp(1, canvas_width);
    let resized_height =
        ((height as f32 * scale).round() as usize).clamp(1, canvas.height as usize);
    let terms = normalisation.plane_terms();
    tensor.clear();
    tensor.resize(plane * 3, 0.0);
    for (index, chunk) in tensor.chunks_exact_mut(plane).enumerate() {
        chunk.fill(terms[index].2);
    }

    let columns = sample_positions(width as usize, resized_width);
    let rows = sample_positions(height as usize, resized_height);
    let stride = width as usize * 3;
    let (red, rest) = tensor.split_at_mut(plane);
    let (green, blue) = rest.split_at_mut(plane);
    let mut planes = [red, green, blue];
    let mut row_values = vec![[0f32; 3]; resized_width];
    for (y, row) in rows.iter().enumerate() {
        let top = &rgb[row.first * stride..(row.first + 1) * stride];
        let bottom = &rgb[row.second * stride..(row.second + 1) * stride];
        for (value, column) in row_values.iter_mut().zip(&columns) {
            let (a, b) = (column.first * 3, column.second * 3);
            for (channel, out) in value.iter_mut().enumerate() {
                let upper = top[a + channel] as f32 * column.first_weight
                    + top[b + channel] as f32 * column.second_weight;
                let lower = bottom[a + channel] as f32 * column.first_weight
                    + bottom[b + channel] as f32 * column.second_weight;
                *out = upper * row.first_weight + lower * row.second_weight;
            }
        }
        for (plane_index, plane_values) in planes.iter_mut().enumerate() {
            let (channel, multiplier, offset) = terms[plane_index];
            let out = &mut plane_values[y * canvas_width..y * canvas_width + resized_width];
            for (destination, value) in out.iter_mut().zip(&row_values) {
                *destination = value[channel] * multiplier + offset;
            }
        }
    }
    scale
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    first: usize,
    second: usize,
    first_weight: f32,
    second_weight: f32,
}

/// Source taps for each destination index, `src = (dst + 0.5) * ratio - 0.5` clamped to the
/// image as OpenCV does.
fn sample_positions(source_len: usize, destination_len: usize) -> Vec<Sample> {
    let ratio = source_len as f32 / destination_len as f32;
    let last = source_len - 1;
    (0..destination_len)
        .map(|destination| {
            let position = ((destination as f32 + 0.5) * ratio - 0.5).max(0.0);
            let first = (position.floor() as usize).min(last);
            let fraction = if first >= last {
                0.0
            } else {
                position - first as f32
            };
            Sample {
                first,
                second: (first + 1).min(last),
                first_weight: 1.0 - fraction,
                second_weight: fraction,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letterbox_pads_bottom_right_and_normalises() {
        // 4x2 image, uniform value 200, into a 8x8 net: scale 2, image occupies the top 4 rows.
        let rgb = vec![200u8; 4 * 2 * 3];
        let normalisation = Normalisation {
            channel_order: ChannelOrder::Rgb,
            mean: [127.5; 3],
            std: [128.0; 3],
        };
        let mut tensor = Vec::new();
        let scale = letterbox_into(&rgb, 4, 2, Canvas::square(8), &normalisation, &mut tensor);
        assert_eq!(scale, 2.0);
        let inside = (200.0 - 127.5) / 128.0;
        let pad = -127.5 / 128.0;
        assert!((tensor[0] - inside).abs() < 1e-5);
        assert!((tensor[3 * 8 + 7] - inside).abs() < 1e-5);
        assert!((tensor[4 * 8] - pad).abs() < 1e-5);
        assert!((tensor[2 * 64 + 63] - pad).abs() < 1e-5);
    }

    #[test]
    fn bgr_order_swaps_planes() {
        let rgb = vec![10u8, 20, 30];
        let normalisation = Normalisation {
            channel_order: ChannelOrder::Bgr,
            mean: [0.0; 3],
            std: [1.0; 3],
        };
        let mut tensor = Vec::new();
        letterbox_into(&rgb, 1, 1, Canvas::square(1), &normalisation, &mut tensor);
        assert_eq!(tensor, vec![30.0, 20.0, 10.0]);
    }

    #[test]
    fn a_wide_canvas_holds_a_wide_image_without_padding_rows() {
        // 8x4 image into an 8x4 canvas: scale 1, every value is image.
        let rgb = vec![50u8; 8 * 4 * 3];
        let normalisation = Normalisation {
            channel_order: ChannelOrder::Rgb,
            mean: [0.0; 3],
            std: [1.0; 3],
        };
        let mut tensor = Vec::new();
        let canvas = Canvas {
            width: 8,
            height: 4,
        };
        let scale = letterbox_into(&rgb, 8, 4, canvas, &normalisation, &mut tensor);
        assert_eq!(scale, 1.0);
        assert_eq!(tensor.len(), 3 * 8 * 4);
        assert!(tensor.iter().all(|v| *v == 50.0));
    }
}
