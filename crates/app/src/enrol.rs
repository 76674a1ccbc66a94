//! `vigil enroll`, `vigil identify`, `vigil verify`.

use crate::cli::{EnrollArgs, IdentifyArgs, VerifyArgs};
use crate::context::Context;
use crate::output;
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use vigil_pipeline::NamedImage;
use vigil_store::SubjectRef;

const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"];

/// Files named on the command line, and image files found under named folders (sorted).
fn collect_images(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found)?;
            found.sort();
            files.extend(found);
        } else if path.exists() {
            files.push(path.clone());
        } else {
            anyhow::bail!("{} does not exist", path.display());
        }
    }
    Ok(files)
}

fn walk(folder: &Path, found: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in
        std::fs::read_dir(folder).with_context(|| format!("reading {}", folder.display()))?
    {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, found)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            found.push(path);
        }
    }
    Ok(())
}

pub fn run(context: &Context, args: EnrollArgs) -> anyhow::Result<()> {
    context.authorize(vigil_auth::Permission::Enrol, false)?;
    let files = collect_images(&args.paths)?;
    if files.is_empty() {
        anyhow::bail!("no image files found");
    }
    let service = context.service()?;
    let bar = indicatif::ProgressBar::new(files.len() as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("enrolling [{bar:40}] {pos}/{len} {wide_msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    let mut prepared = Vec::new();
    let mut failures = Vec::new();
    for file in &files {
        bar.set_message(file.display().to_string());
        let result = std::fs::read(file)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| {
                let image = NamedImage {
                    name: file.display().to_string(),
                    bytes,
                };
                service
                    .prepare_template(&image)
                    .map_err(anyhow::Error::from)
            });
        match result {
            Ok(template) => prepared.push(template),
            Err(error) => {
                bar.suspend(|| eprintln!("skipped {}: {error}", file.display()));
                failures.push((file.clone(), error.to_string()));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if prepared.is_empty() {
        anyhow::bail!(
            "none of the {} files could be enrolled; nothing was stored",
            files.len()
        );
    }
    // The entry is written in the enrolment's transaction (the store adds the ids).
    let audit = context.audit_entry(
        vigil_audit::AuditAction::Enrol,
        ("subject", &args.subject),
        serde_json::json!({ "templates": prepared.len(), "skipped": failures.len() }),
    );
    let report = service.commit_enrolment_audited(
        SubjectRef::ByName(args.subject),
        args.notes,
        prepared,
        Some(audit),
    )?;
    if args.json {
        return output::json(&serde_json::json!({
            "enrolment": report,
            "skipped": failures.iter().map(|(f, e)| serde_json::json!({"file": f, "error": e})).collect::<Vec<_>>(),
        }));
    }
    println!(
        "{} subject {} (id {}): {} template(s) enrolled, {} file(s) skipped; {} template(s) in total",
        if report.created { "created" } else { "extended" },
        report.subject.name,
        report.subject.id,
        report.enrolled.len(),
        failures.len(),
        report.subject.template_count
    );
    Ok(())
}

pub fn identify(context: &Context, args: IdentifyArgs) -> anyhow::Result<()> {
    context.authorize(vigil_auth::Permission::Identify, true)?;
    let bytes =
        std::fs::read(&args.photo).with_context(|| format!("reading {}", args.photo.display()))?;
    let service = context.service()?;
    let report = service.identify(&bytes, args.top_k, args.false_match_rate)?;
    context.audit(
        vigil_audit::AuditAction::Identify,
        ("photo", &args.photo.display().to_string()),
        serde_json::json!({
            "faces": report.faces.len(),
            "candidates": report.faces.iter().map(|f| f.candidates.len()).sum::<usize>(),
            "false_match_rate_threshold": report.false_match_rate_threshold,
        }),
        Some(bytes.clone()),
    )?;
    if args.json {
        return output::json(&report);
    }
    println!(
        "{}: {} face(s); gallery of {} template(s) ({}); threshold false-match rate {} (cosine {:.3})",
        args.photo.display(),
        report.faces.len(),
        report.gallery_templates,
        report.model,
        output::rate(report.false_match_rate_threshold),
        report.score_threshold
    );
    for (index, face) in report.faces.iter().enumerate() {
        println!("{}", output::face_line(index, &face.face));
        if face.candidates.is_empty() {
            println!("  no candidate at or below the false-match-rate threshold");
        }
        for (rank, candidate) in face.candidates.iter().enumerate() {
            println!("{}", output::candidate_line(rank + 1, candidate));
        }
    }
    Ok(())
}

pub fn verify(context: &Context, args: VerifyArgs) -> anyhow::Result<()> {
    context.authorize(vigil_auth::Permission::Verify, true)?;
    let a = std::fs::read(&args.a).with_context(|| format!("reading {}", args.a.display()))?;
    let b = std::fs::read(&args.b).with_context(|| format!("reading {}", args.b.display()))?;
    let service = context.service()?;
    let report = service.verify(&a, &b)?;
    context.audit(
        vigil_audit::AuditAction::Verify,
        (
            "photos",
            &format!("{} {}", args.a.display(), args.b.display()),
        ),
        serde_json::json!({ "same_person": report.same_person, "score": report.score }),
        Some(a.clone()),
    )?;
    if args.json {
        return output::json(&report);
    }
    println!(
        "{}: score {:.3}, false-match rate {}{} (threshold {})",
        if report.same_person {
            "SAME PERSON"
        } else {
            "not the same person"
        },
        report.score,
        output::rate(report.false_match_rate),
        if report.false_match_rate_extrapolated {
            " (extrapolated)"
        } else {
            ""
        },
        output::rate(report.false_match_rate_threshold)
    );
    Ok(())
}
