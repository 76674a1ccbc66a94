//! Test videos with known identities: LFW photos of chosen people moving over a background,
//! encoded to H.264 MP4, with the ground truth of who is where and when.
//!
//! The people are enrolled from *other* LFW photos ([`enrolment_photos`]), so recognising them in
//! the video is a real 1:N search, not a lookup of the same pixels.

use crate::process::{stop_child, StderrLog};
use crate::{io_error, Error, Result};
use image::{imageops, Rgb, RgbImage};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The people of [`Scene::standard`] that a test enrols.
pub const ENROLLED_PEOPLE: [&str; 4] = [
    "George_W_Bush",
    "Colin_Powell",
    "Tony_Blair",
    "Donald_Rumsfeld",
];
/// The person of [`Scene::standard`] a test leaves out of the gallery: must never be named.
pub const UNENROLLED_PEOPLE: [&str; 1] = ["Gerhard_Schroeder"];

/// LFW deep-funneled photos are 250×250 with the face centred; this square around the centre
/// holds the whole head (face about 100 px wide) and little of the neighbours.
const LFW_CROP: (u32, u32, u32) = (50, 50, 150);

/// One person on screen: an LFW photo's central crop, a square of `size_px`, whose centre moves
/// linearly from `from` to `to` over frames `start_frame..end_frame`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Appearance {
    /// The LFW identity (folder name), e.g. `George_W_Bush`.
    pub person: String,
    /// The LFW photo shown.
    pub photo: PathBuf,
    pub start_frame: u32,
    /// Exclusive.
    pub end_frame: u32,
    /// Centre of the patch at `start_frame`, in pixels.
    pub from: (f32, f32),
    /// Centre of the patch at `end_frame - 1`, in pixels.
    pub to: (f32, f32),
    /// Side of the square patch; the face inside is about two thirds of it wide.
    pub size_px: u32,
}

impl Appearance {
    /// The patch's box `[x1, y1, x2, y2]` at `frame`, None when the person is not on screen.
    pub fn patch_box(&self, frame: u32) -> Option<[f32; 4]> {
        let (x, y) = self.centre(frame)?;
        let half = self.size_px as f32 / 2.0;
        Some([x - half, y - half, x + half, y + half])
    }

    /// Where the face roughly is at `frame`: the middle two thirds of the patch.
    pub fn face_box(&self, frame: u32) -> Option<[f32; 4]> {
        let (x, y) = self.centre(frame)?;
        let half = self.size_px as f32 / 3.0;
        Some([x - half, y - half, x + half, y + half])
    }

    fn centre(&self, frame: u32) -> Option<(f32, f32)> {
        if !(self.start_frame..self.end_frame).contains(&frame) {
            return None;
        }
        let steps = (self.end_frame - self.start_frame).saturating_sub(1).max(1) as f32;
        let progress = (frame - self.start_frame) as f32 / steps;
        Some((
            self.from.0 + (self.to.0 - self.from.0) * progress,
            self.from.1 + (self.to.1 - self.from.1) * progress,
        ))
    }
}

/// What the people move over.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Background {
    /// A smooth blue-grey gradient: nothing in it looks like a face.
    Gradient,
    /// An image file, scaled to fill the frame.
    Image(PathBuf),
    /// One frame of a video, at `at_seconds`, scaled to fill the frame.
    VideoFrame { video: PathBuf, at_seconds: f64 },
}

/// The whole test video: its format and who appears when and where.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scene {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub frame_count: u32,
    pub background: Background,
    pub appearances: Vec<Appearance>,
}

impl Scene {
    /// 1280×720 at 12 fps, 15.5 s (186 frames), on a gradient. Each person of
    /// [`ENROLLED_PEOPLE`] then [`UNENROLLED_PEOPLE`] crosses the frame alone for 2 s, with 0.5 s
    /// of empty frame before each; then George_W_Bush and Colin_Powell cross side by side for 2 s
    /// (another photo of each). Patches are 200 px (faces about 130 px wide).
    pub fn standard(lfw_dir: &Path) -> Result<Scene> {
        let fps = 12;
        let second = |seconds: f32| (seconds * fps as f32).round() as u32;
        let photo = |person: &str, number: u32| -> Result<PathBuf> {
            let path = lfw_dir
                .join(person)
                .join(format!("{person}_{number:04}.jpg"));
            if path.is_file() {
                Ok(path)
            } else {
                Err(Error::SharedDataMissing(path))
            }
        };
        // Frontal, single-face photos, chosen by eye.
        let alone = [
            ("George_W_Bush", 1),
            ("Colin_Powell", 1),
            ("Tony_Blair", 2),
            ("Donald_Rumsfeld", 1),
            ("Gerhard_Schroeder", 1),
        ];
        let mut appearances = Vec::new();
        let mut start = 0.5;
        for (index, (person, number)) in alone.into_iter().enumerate() {
            // Alternate directions, so a tracker sees motion both ways.
            let (from_x, to_x) = if index % 2 == 0 {
                (340.0, 940.0)
            } else {
                (940.0, 340.0)
            };
            appearances.push(Appearance {
                person: person.into(),
                photo: photo(person, number)?,
                start_frame: second(start),
                end_frame: second(start + 2.0),
                from: (from_x, 380.0),
                to: (to_x, 340.0),
                size_px: 200,
            });
            start += 2.5;
        }
        for (person, number, from, to) in [
            ("George_W_Bush", 2, (250.0, 250.0), (450.0, 450.0)),
            ("Colin_Powell", 2, (1030.0, 450.0), (830.0, 250.0)),
        ] {
            appearances.push(Appearance {
                person: person.into(),
                photo: photo(person, number)?,
                start_frame: second(start),
                end_frame: second(start + 2.0),
                from,
                to,
                size_px: 200,
            });
        }
        Ok(Scene {
            width: 1280,
            height: 720,
            fps,
            frame_count: second(start + 2.5),
            background: Background::Gradient,
            appearances,
        })
    }

    pub fn duration_seconds(&self) -> f64 {
        self.frame_count as f64 / self.fps as f64
    }

    /// The appearances on screen at `frame`.
    pub fn on_screen(&self, frame: u32) -> Vec<&Appearance> {
        self.appearances
            .iter()
            .filter(|a| (a.start_frame..a.end_frame).contains(&frame))
            .collect()
    }

    /// Every distinct person in the scene, in order of first appearance.
    pub fn people(&self) -> Vec<&str> {
        let mut people: Vec<&str> = Vec::new();
        for appearance in &self.appearances {
            if !people.contains(&appearance.person.as_str()) {
                people.push(&appearance.person);
            }
        }
        people
    }

    /// The LFW photos the scene shows of `person`.
    pub fn photos_of(&self, person: &str) -> Vec<&Path> {
        self.appearances
            .iter()
            .filter(|a| a.person == person)
            .map(|a| a.photo.as_path())
            .collect()
    }
}

/// The composed video and its ground truth.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroundTruth {
    pub video: PathBuf,
    pub scene: Scene,
}

impl GroundTruth {
    /// The ground truth as JSON (for a test's failure output or a file beside the video).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// `count` photos of `person` that the scene does not show, in file-name order, for enrolment.
pub fn enrolment_photos(
    lfw_dir: &Path,
    scene: &Scene,
    person: &str,
    count: usize,
) -> Result<Vec<PathBuf>> {
    let folder = lfw_dir.join(person);
    let shown = scene.photos_of(person);
    let mut photos: Vec<PathBuf> = std::fs::read_dir(&folder)
        .map_err(io_error(format!("listing {}", folder.display())))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "jpg"))
        .filter(|path| !shown.contains(&path.as_path()))
        .collect();
    photos.sort();
    if photos.len() < count {
        return Err(Error::Invalid(format!(
            "{person} has {} photos besides those in the video, {count} wanted",
            photos.len()
        )));
    }
    photos.truncate(count);
    Ok(photos)
}

/// Renders the scene and encodes it to an H.264 MP4 at `output` (libx264, yuv420p, no B-frames,
/// a key frame every second, moov first). The same scene gives the same file.
pub fn compose(scene: &Scene, output: &Path) -> Result<GroundTruth> {
    if scene.width == 0 || scene.height == 0 || scene.width % 2 == 1 || scene.height % 2 == 1 {
        return Err(Error::Invalid(format!(
            "frame size {}x{} must be even and non-zero",
            scene.width, scene.height
        )));
    }
    if scene.fps == 0 || scene.frame_count == 0 {
        return Err(Error::Invalid(
            "fps and frame_count must be non-zero".into(),
        ));
    }
    let background = background(scene)?;
    let patches = scene
        .appearances
        .iter()
        .map(|a| patch(&a.photo, a.size_px))
        .collect::<Result<Vec<_>>>()?;

    let mut encoder = Command::new("ffmpeg")
        .args([
            "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
        ])
        .arg(format!("{}x{}", scene.width, scene.height))
        .args(["-r", &scene.fps.to_string(), "-i", "-"])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-bf", "0"])
        .args(["-g", &scene.fps.to_string(), "-pix_fmt", "yuv420p"])
        .args(["-movflags", "+faststart"])
        .arg(output)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn {
            program: "ffmpeg".into(),
            source,
        })?;
    let log = StderrLog::collect(&mut encoder);
    let written = (|| -> std::io::Result<()> {
        let Some(mut input) = encoder.stdin.take() else {
            return Err(std::io::Error::other("no stdin"));
        };
        for frame in 0..scene.frame_count {
            let mut canvas = background.clone();
            for (appearance, patch) in scene.appearances.iter().zip(&patches) {
                if let Some([x1, y1, _, _]) = appearance.patch_box(frame) {
                    blend(&mut canvas, patch, x1.round() as i64, y1.round() as i64);
                }
            }
            input.write_all(canvas.as_raw())?;
        }
        Ok(())
    })();
    // stdin is closed here (dropped in the closure), so ffmpeg finishes the file.
    let status = encoder.wait();
    match (written, status) {
        (Ok(()), Ok(status)) if status.success() => Ok(GroundTruth {
            video: output.to_path_buf(),
            scene: scene.clone(),
        }),
        (written, status) => {
            stop_child(&mut encoder, Duration::ZERO);
            Err(Error::ToolFailed {
                program: "ffmpeg (libx264)".into(),
                detail: format!("{written:?}, {status:?}: {}", log.text()),
            })
        }
    }
}

fn background(scene: &Scene) -> Result<RgbImage> {
    let (width, height) = (scene.width, scene.height);
    let fill = |image: image::DynamicImage| {
        image
            .resize_to_fill(width, height, imageops::FilterType::Triangle)
            .to_rgb8()
    };
    match &scene.background {
        Background::Gradient => Ok(RgbImage::from_fn(width, height, |x, y| {
            let across = x as f32 / width as f32;
            let down = y as f32 / height as f32;
            Rgb([
                (70.0 + 60.0 * down) as u8,
                (90.0 + 50.0 * across) as u8,
                (120.0 + 60.0 * (1.0 - down)) as u8,
            ])
        })),
        Background::Image(path) => {
            let image = image::open(path).map_err(|source| Error::Image {
                path: path.clone(),
                source,
            })?;
            Ok(fill(image))
        }
        Background::VideoFrame { video, at_seconds } => {
            let png = crate::process::run_tool(
                "ffmpeg",
                &[
                    "-v".into(),
                    "error".into(),
                    "-nostdin".into(),
                    "-ss".into(),
                    at_seconds.to_string(),
                    "-i".into(),
                    video.display().to_string(),
                    "-frames:v".into(),
                    "1".into(),
                    "-f".into(),
                    "image2pipe".into(),
                    "-c:v".into(),
                    "png".into(),
                    "-".into(),
                ],
                Duration::from_secs(60),
            )?;
            let image = image::load_from_memory(&png).map_err(|source| Error::Image {
                path: video.clone(),
                source,
            })?;
            Ok(fill(image))
        }
    }
}

/// The photo's central crop scaled to `size_px`, with an alpha that fades over the outer eighth
/// so the patch has no hard edge for a detector to latch on to.
fn patch(photo: &Path, size_px: u32) -> Result<image::RgbaImage> {
    if size_px < 16 {
        return Err(Error::Invalid(format!(
            "patch size {size_px} px is too small"
        )));
    }
    let image = image::open(photo)
        .map_err(|source| Error::Image {
            path: photo.to_path_buf(),
            source,
        })?
        .to_rgb8();
    let (x, y, side) = LFW_CROP;
    if image.width() < x + side || image.height() < y + side {
        return Err(Error::Invalid(format!(
            "{} is {}x{}, not an LFW 250x250 photo",
            photo.display(),
            image.width(),
            image.height()
        )));
    }
    let crop = imageops::crop_imm(&image, x, y, side, side).to_image();
    let scaled = imageops::resize(&crop, size_px, size_px, imageops::FilterType::CatmullRom);
    let fade = (size_px / 8).max(1) as f32;
    Ok(image::RgbaImage::from_fn(size_px, size_px, |px, py| {
        let edge = px.min(py).min(size_px - 1 - px).min(size_px - 1 - py) as f32;
        let alpha = (edge / fade).min(1.0);
        let Rgb([r, g, b]) = *scaled.get_pixel(px, py);
        image::Rgba([r, g, b, (alpha * 255.0) as u8])
    }))
}

fn blend(canvas: &mut RgbImage, patch: &image::RgbaImage, left: i64, top: i64) {
    for (px, py, pixel) in patch.enumerate_pixels() {
        let (x, y) = (left + px as i64, top + py as i64);
        if x < 0 || y < 0 || x >= canvas.width() as i64 || y >= canvas.height() as i64 {
            continue;
        }
        let alpha = pixel[3] as u32;
        let target = canvas.get_pixel_mut(x as u32, y as u32);
        for channel in 0..3 {
            target[channel] = ((pixel[channel] as u32 * alpha
                + target[channel] as u32 * (255 - alpha))
                / 255) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn appearance() -> Appearance {
        Appearance {
            person: "A".into(),
            photo: PathBuf::from("a.jpg"),
            start_frame: 10,
            end_frame: 21,
            from: (100.0, 200.0),
            to: (300.0, 400.0),
            size_px: 60,
        }
    }

    #[test]
    fn a_patch_moves_linearly_between_its_first_and_last_frame() {
        let a = appearance();
        assert_eq!(a.patch_box(9), None);
        assert_eq!(a.patch_box(10), Some([70.0, 170.0, 130.0, 230.0]));
        assert_eq!(a.patch_box(15), Some([170.0, 270.0, 230.0, 330.0]));
        assert_eq!(a.patch_box(20), Some([270.0, 370.0, 330.0, 430.0]));
        assert_eq!(a.patch_box(21), None);
    }
}
