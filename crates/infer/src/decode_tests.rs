use super::*;
use image::{ImageEncoder, Rgb, RgbImage};

fn limits() -> DecodeLimits {
    DecodeLimits {
        max_pixels: 50_000_000,
    }
}

/// 32x48 image with four solid quadrants, distinct enough to survive JPEG.
const CORNERS: [[u8; 3]; 4] = [[230, 20, 20], [20, 230, 20], [20, 20, 230], [230, 230, 20]];

fn quadrants() -> RgbImage {
    RgbImage::from_fn(32, 48, |x, y| {
        let index = (y >= 24) as usize * 2 + (x >= 16) as usize;
        Rgb(CORNERS[index])
    })
}

fn encode_jpeg(image: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    out
}

fn encode_png(image: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    out
}

/// Inserts an APP1 Exif segment carrying only an Orientation tag right after SOI.
fn with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&0x0112u16.to_be_bytes());
    tiff.extend_from_slice(&3u16.to_be_bytes());
    tiff.extend_from_slice(&1u32.to_be_bytes());
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes());
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn pixel(image: &DecodedImage, x: u32, y: u32) -> [u8; 3] {
    let offset = ((y * image.width + x) * 3) as usize;
    [
        image.rgb[offset],
        image.rgb[offset + 1],
        image.rgb[offset + 2],
    ]
}

fn close(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| (*x as i32 - y as i32).abs() < 40)
}

#[test]
fn every_exif_orientation_is_turned_upright() {
    let jpeg = encode_jpeg(&quadrants());
    let [tl, tr, bl, br] = [0, 1, 2, 3];
    // Expected display corners (TL, TR, BL, BR) as indices of the stored corners, from the
    // EXIF specification; orientations 5..8 swap width and height.
    let expected: [(u16, [usize; 4]); 8] = [
        (1, [tl, tr, bl, br]),
        (2, [tr, tl, br, bl]),
        (3, [br, bl, tr, tl]),
        (4, [bl, br, tl, tr]),
        (5, [tl, bl, tr, br]),
        (6, [bl, tl, br, tr]),
        (7, [br, tr, bl, tl]),
        (8, [tr, br, tl, bl]),
    ];
    for (orientation, corners) in expected {
        let image = decode_image(&with_orientation(&jpeg, orientation), &limits()).unwrap();
        let rotated = orientation >= 5;
        assert_eq!(
            (image.width, image.height),
            if rotated { (48, 32) } else { (32, 48) }
        );
        let (w, h) = (image.width - 4, image.height - 4);
        let seen = [
            pixel(&image, 3, 3),
            pixel(&image, w, 3),
            pixel(&image, 3, h),
            pixel(&image, w, h),
        ];
        for (position, stored) in corners.iter().enumerate() {
            assert!(
                close(seen[position], CORNERS[*stored]),
                "orientation {orientation}, corner {position}: {:?} vs {:?}",
                seen[position],
                CORNERS[*stored]
            );
        }
    }
}

#[test]
fn cmyk_jpeg_decodes_to_matching_rgb() {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/cmyk.jpg"
    ))
    .unwrap();
    let image = decode_image(&bytes, &limits()).unwrap();
    assert_eq!((image.width, image.height), (32, 32));
    assert!(
        close(pixel(&image, 4, 16), [220, 30, 30]),
        "{:?}",
        pixel(&image, 4, 16)
    );
    assert!(
        close(pixel(&image, 28, 16), [30, 30, 220]),
        "{:?}",
        pixel(&image, 28, 16)
    );
}

#[test]
fn grayscale_png_becomes_rgb() {
    let gray = image::GrayImage::from_fn(8, 8, |x, _| image::Luma([x as u8 * 30]));
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(gray.as_raw(), 8, 8, image::ExtendedColorType::L8)
        .unwrap();
    let image = decode_image(&bytes, &limits()).unwrap();
    assert_eq!(image.rgb.len(), 8 * 8 * 3);
    assert_eq!(pixel(&image, 5, 2), [150, 150, 150]);
}

#[test]
fn webp_decodes_and_sha256_is_of_input_bytes() {
    let source = quadrants();
    let mut bytes = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut bytes)
        .write_image(source.as_raw(), 32, 48, image::ExtendedColorType::Rgb8)
        .unwrap();
    let image = decode_image(&bytes, &limits()).unwrap();
    assert_eq!(image.rgb, source.into_raw());
    assert_eq!(image.sha256, hex::encode(Sha256::digest(&bytes)));
}

#[test]
fn format_is_sniffed_from_bytes_not_name() {
    let png = encode_png(&quadrants());
    let jpeg = encode_jpeg(&quadrants());
    assert_eq!(
        decode_image(&png, &limits()).unwrap().rgb,
        quadrants().into_raw()
    );
    assert_eq!(decode_image(&jpeg, &limits()).unwrap().width, 32);
}

#[test]
fn huge_header_is_refused_before_decoding() {
    let mut png = encode_png(&quadrants());
    png[16..20].copy_from_slice(&30000u32.to_be_bytes());
    png[20..24].copy_from_slice(&30000u32.to_be_bytes());
    assert!(matches!(
        decode_image(&png, &limits()),
        Err(InferError::ImageTooLarge {
            width: 30000,
            height: 30000,
            max_pixels: 50_000_000
        })
    ));

    let mut jpeg = encode_jpeg(&quadrants());
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    jpeg[sof + 5..sof + 7].copy_from_slice(&30000u16.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&30000u16.to_be_bytes());
    assert!(matches!(
        decode_image(&jpeg, &limits()),
        Err(InferError::ImageTooLarge {
            width: 30000,
            height: 30000,
            ..
        })
    ));
}

#[test]
fn empty_unknown_truncated_and_corrupt_inputs_get_distinct_errors() {
    assert!(matches!(
        decode_image(&[], &limits()),
        Err(InferError::EmptyImage)
    ));
    assert!(matches!(
        decode_image(b"plain text, not an image", &limits()),
        Err(InferError::UnsupportedFormat)
    ));
    let png = encode_png(&quadrants());
    assert!(matches!(
        decode_image(&png[..png.len() / 2], &limits()),
        Err(InferError::CorruptImage(_))
    ));
    let jpeg = encode_jpeg(&quadrants());
    assert!(matches!(
        decode_image(&jpeg[..12], &limits()),
        Err(InferError::CorruptImage(_))
    ));
    let mut garbled = png.clone();
    for byte in garbled[40..].iter_mut() {
        *byte ^= 0x5A;
    }
    assert!(matches!(
        decode_image(&garbled, &limits()),
        Err(InferError::CorruptImage(_))
    ));
}

#[test]
fn jpeg_cut_inside_its_pixel_data_is_refused_but_trailing_bytes_are_accepted() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/lfw/lfw-deepfunneled/Colin_Powell/Colin_Powell_0001.jpg");
    let jpeg = std::fs::read(path).unwrap();
    assert!(decode_image(&jpeg, &limits()).is_ok());
    // cut three quarters of the way in: the header and part of the scan are intact
    let cut = &jpeg[..jpeg.len() * 3 / 4];
    match decode_image(cut, &limits()) {
        Err(InferError::CorruptImage(message)) => assert!(message.contains("truncated")),
        other => panic!("expected CorruptImage, got {:?}", other.map(|i| i.width)),
    }
    // data appended after the end-of-image marker, as some cameras write, is fine
    let mut trailing = jpeg.clone();
    trailing.extend_from_slice(b"camera trailer bytes");
    assert!(decode_image(&trailing, &limits()).is_ok());
}
