//! `vigil demo`: the main job on the embedded default. Enrols the LFW identities with the most
//! photos from a few photos each, then identifies photos of them the gallery has never seen
//! and photos of people who were never enrolled, printing each candidate with its calibrated
//! false-match rate.

use crate::cli::DemoArgs;
use crate::context::{lfw_dir, Context};
use crate::output;
use anyhow::Context as _;
use std::sync::Arc;
use vigil_pipeline::lfw::{LfwDataset, LfwImage};
use vigil_pipeline::{FaceService, NamedImage};
use vigil_store::{SqliteStore, SubjectRef};

pub fn run(context: &Context, args: DemoArgs) -> anyhow::Result<()> {
    let dataset = LfwDataset::new(lfw_dir(args.lfw.as_deref())?)?;
    let identities = dataset.identities()?;
    let needed = args.photos_per_subject + args.probes_per_subject;
    let mut ranked: Vec<(&String, &Vec<LfwImage>)> = identities
        .iter()
        .filter(|(_, images)| images.len() >= needed)
        .collect();
    ranked.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    let enrolled: Vec<_> = ranked.iter().take(args.subjects).collect();
    // people never enrolled: identities with a single photo
    let strangers: Vec<&LfwImage> = identities
        .values()
        .filter(|images| images.len() == 1)
        .take(args.subjects.min(10))
        .map(|images| &images[0])
        .collect();

    // a fresh demo database, so the demo never mixes with a real gallery
    let database = context.config.data_dir.join("demo.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", database.display()));
    }
    let analyzer = Arc::new(context.analyzer(None)?);
    let calibration = context.calibration(analyzer.recognizer_model().as_str())?;
    // with the configured keys: the demo's embeddings and thumbnails are biometric data too
    let store = Arc::new(
        SqliteStore::open_sealed(&database, context.sealer()?)
            .with_context(|| format!("opening {}", database.display()))?,
    );
    let service = FaceService::new(
        analyzer,
        store,
        calibration,
        context.config.matching.clone(),
        context.decode_limits(),
    )?;
    println!(
        "vigil demo: detector {}, recognizer {}, alert threshold false-match rate {}",
        service.analyzer().detector_name(),
        service.model(),
        output::rate(context.config.matching.false_match_rate)
    );

    let bar = indicatif::ProgressBar::new(enrolled.len() as u64);
    let mut probes: Vec<(String, LfwImage)> = Vec::new();
    for (name, images) in &enrolled {
        let mut prepared = Vec::new();
        for image in images.iter().take(args.photos_per_subject) {
            let bytes = std::fs::read(dataset.path_of(image))?;
            match service.prepare_template(&NamedImage {
                name: image.relative_path(),
                bytes,
            }) {
                Ok(template) => prepared.push(template),
                Err(error) => {
                    bar.suspend(|| eprintln!("skipped {}: {error}", image.relative_path()))
                }
            }
        }
        if !prepared.is_empty() {
            service.commit_enrolment(SubjectRef::ByName(display_name(name)), None, prepared)?;
        }
        probes.extend(
            images
                .iter()
                .skip(args.photos_per_subject)
                .take(args.probes_per_subject)
                .map(|i| (display_name(name), i.clone())),
        );
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!(
        "enrolled {} subjects, {} templates\n",
        enrolled.len(),
        service.gallery_templates()
    );

    let mut correct = 0;
    let mut wrong = 0;
    let mut missed = 0;
    let mut false_alarms = 0;
    let all: Vec<(Option<String>, &LfwImage)> = probes
        .iter()
        .map(|(n, i)| (Some(n.clone()), i))
        .chain(strangers.iter().map(|i| (None, *i)))
        .collect();
    for (truth, image) in all {
        let bytes = std::fs::read(dataset.path_of(image))?;
        let label = match &truth {
            Some(name) => format!("unseen photo of {name}"),
            None => format!("never enrolled: {}", display_name(&image.identity)),
        };
        let report = match service.identify(&bytes, Some(3), None) {
            Ok(report) => report,
            Err(error) => {
                println!("{}  ({label}): {error}", image.relative_path());
                continue;
            }
        };
        // LFW images are centred on the labelled person
        let face = report
            .faces
            .iter()
            .min_by(|a, b| centre_distance(&a.face.bbox).total_cmp(&centre_distance(&b.face.bbox)));
        println!("{}  ({label})", image.relative_path());
        let Some(face) = face else { continue };
        if face.candidates.is_empty() {
            println!("  no candidate at or below the threshold");
        }
        for (rank, candidate) in face.candidates.iter().enumerate() {
            println!("{}", output::candidate_line(rank + 1, candidate));
        }
        match (&truth, face.candidates.first()) {
            (Some(name), Some(top)) if &top.subject_name == name => correct += 1,
            (Some(_), Some(_)) => wrong += 1,
            (Some(_), None) => missed += 1,
            (None, Some(_)) => false_alarms += 1,
            (None, None) => {}
        }
    }
    println!(
        "\nsummary: {correct} correct, {wrong} wrong, {missed} missed of {} enrolled-person probes; \
         {false_alarms} false alarm(s) on {} never-enrolled people",
        probes.len(),
        strangers.len()
    );
    Ok(())
}

/// LFW folder names use underscores for spaces.
fn display_name(identity: &str) -> String {
    identity.replace('_', " ")
}

fn centre_distance(bbox: &[f32; 4]) -> f32 {
    let x = 0.5 * (bbox[0] + bbox[2]) - 125.0;
    let y = 0.5 * (bbox[1] + bbox[3]) - 125.0;
    x * x + y * y
}
