//! Image decoding: format sniffed from the bytes, size refused from the header before any
//! pixel is decoded, EXIF orientation applied, output always packed RGB8.

use crate::InferError;
use image::{DynamicImage, ImageFormat, ImageReader};
use sha2::{Digest, Sha256};
use std::io::Cursor;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted width × height.
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_pixels: vigil_base::config::ServerConfig::default().max_image_pixels,
        }
    }
}

/// An upright image as packed RGB8 rows.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedImage {
    pub width: u32,
    pub height: u32,
    /// `width * height * 3` bytes, row-major, R G B.
    pub rgb: Vec<u8>,
    /// Hex sha256 of the encoded input bytes; empty for images built from raw pixels.
    pub sha256: String,
}

impl DecodedImage {
    /// Wraps raw RGB8 pixels (e.g. a video frame).
    pub fn from_rgb(width: u32, height: u32, rgb: Vec<u8>) -> Result<Self, InferError> {
        if rgb.len() as u64 != width as u64 * height as u64 * 3 || width == 0 || height == 0 {
            return Err(InferError::CorruptImage(format!(
                "{} bytes is not a {width}x{height} RGB image",
                rgb.len()
            )));
        }
        Ok(Self {
            width,
            height,
            rgb,
            sha256: String::new(),
        })
    }
}

pub fn decode_image(bytes: &[u8], limits: &DecodeLimits) -> Result<DecodedImage, InferError> {
    if bytes.is_empty() {
        return Err(InferError::EmptyImage);
    }
    let format = image::guess_format(bytes).map_err(|_| InferError::UnsupportedFormat)?;
    let (width, height) = header_dimensions(bytes, format)?;
    if width as u64 * height as u64 > limits.max_pixels {
        return Err(InferError::ImageTooLarge {
            width,
            height,
            max_pixels: limits.max_pixels,
        });
    }
    if width == 0 || height == 0 {
        return Err(InferError::CorruptImage(format!(
            "header says {width}x{height}"
        )));
    }
    if format == ImageFormat::Jpeg && !jpeg_has_end_after_last_scan(bytes) {
        // The JPEG decoder fills a cut-off scan with grey and reports success; a truncated
        // upload must be refused, not enrolled half grey.
        return Err(InferError::CorruptImage(
            "the JPEG is truncated: no end-of-image marker after its last scan".into(),
        ));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut decoder_limits = image::Limits::default();
    // Room for the decoded image plus the decoder's working copy at 16 bits per sample.
    decoder_limits.max_alloc = Some((width as u64 * height as u64 * 8).max(64 << 20));
    reader.limits(decoder_limits);
    let mut decoded = reader
        .decode()
        .map_err(|e| InferError::CorruptImage(e.to_string()))?;
    if let Some(orientation) = exif_orientation(bytes) {
        decoded.apply_orientation(orientation);
    }
    let rgb = match decoded {
        DynamicImage::ImageRgb8(buffer) => buffer,
        other => other.to_rgb8(),
    };
    Ok(DecodedImage {
        width: rgb.width(),
        height: rgb.height(),
        rgb: rgb.into_raw(),
        sha256: hex::encode(Sha256::digest(bytes)),
    })
}

/// True when an end-of-image marker (FF D9) follows the last start-of-scan (FF DA). Inside
/// entropy-coded data an FF byte is always followed by 00 or a restart marker, so FF D9 there
/// can only be the real end; bytes after the end (some cameras append data) are allowed.
fn jpeg_has_end_after_last_scan(bytes: &[u8]) -> bool {
    let Some(last_scan) = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]) else {
        return false;
    };
    bytes[last_scan + 2..].windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Width and height from the header alone. JPEG and PNG are parsed here so that a hostile
/// header is refused without running a decoder; other formats use the decoder's header read.
fn header_dimensions(bytes: &[u8], format: ImageFormat) -> Result<(u32, u32), InferError> {
    let truncated = || InferError::CorruptImage("header is truncated".into());
    match format {
        ImageFormat::Png => {
            // 8-byte signature, IHDR length + type, then big-endian width and height.
            let header = bytes.get(16..24).ok_or_else(truncated)?;
            if bytes.get(12..16) != Some(b"IHDR") {
                return Err(InferError::CorruptImage("PNG without IHDR".into()));
            }
            let width = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
            let height = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
            Ok((width, height))
        }
        ImageFormat::Jpeg => jpeg_dimensions(bytes).ok_or_else(truncated),
        _ => ImageReader::with_format(Cursor::new(bytes), format)
            .into_dimensions()
            .map_err(|e| InferError::CorruptImage(e.to_string())),
    }
}

/// Walks JPEG marker segments to the first start-of-frame.
fn jpeg_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let mut position = 2;
    loop {
        // Markers may be padded with any number of 0xFF bytes.
        while *bytes.get(position)? == 0xFF && *bytes.get(position + 1)? == 0xFF {
            position += 1;
        }
        if *bytes.get(position)? != 0xFF {
            return None;
        }
        let marker = *bytes.get(position + 1)?;
        let length = u16::from_be_bytes([*bytes.get(position + 2)?, *bytes.get(position + 3)?]);
        let is_start_of_frame =
            matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_start_of_frame {
            let segment = bytes.get(position + 4..position + 9)?;
            let height = u16::from_be_bytes([segment[1], segment[2]]) as u32;
            let width = u16::from_be_bytes([segment[3], segment[4]]) as u32;
            return Some((width, height));
        }
        position += 2 + length as usize;
    }
}

fn exif_orientation(bytes: &[u8]) -> Option<image::metadata::Orientation> {
    let exif = exif::Reader::new()
        .read_from_container(&mut Cursor::new(bytes))
        .ok()?;
    let field = exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)?;
    let value = field.value.get_uint(0)?;
    image::metadata::Orientation::from_exif(u8::try_from(value).ok()?)
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
