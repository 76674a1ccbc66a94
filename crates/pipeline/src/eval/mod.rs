//! Evaluation protocols run on the project's own pipeline: LFW verification against the
//! reference scores, LFW open-set identification, and detection on the group photos.

pub mod detect;
pub mod embeddings;
pub mod lfw;
pub mod openset;

/// Progress bar on stderr for long evaluations (hidden when stderr is not a terminal).
pub(crate) fn progress(length: usize, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(length as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg:>24} [{bar:40}] {pos}/{len} {per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}
