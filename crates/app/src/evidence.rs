//! `vigil cases export`, `vigil verify-export` and `vigil keys evidence-public`: case evidence
//! bundles signed with the server's key, and their offline check (docs/design/017).

use crate::context::Context;
use anyhow::{bail, Context as _};
use clap::Args;
use std::path::PathBuf;
use vigil_audit::{Actor, AuditAction, NewAuditEntry, Outcome, Target};
use vigil_auth::Permission;
use vigil_evidence::{ClipSource, EvidenceKey, ExportRequest, KeyTrust};

#[derive(Args)]
pub struct ExportArgs {
    /// The case's reference.
    pub reference: String,
    /// Where to write the bundle (a tar archive).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct VerifyExportArgs {
    /// The bundle written by `vigil cases export` or `GET /v1/cases/{reference}/evidence`.
    pub file: PathBuf,
    /// The server's public key as `vigil keys evidence-public` prints it (or a file holding
    /// it). Without it only integrity is checked, not who signed.
    #[arg(long)]
    pub public_key: Option<String>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The server's signing key (made on first use), sealed when encryption at rest is on.
fn signing_key(context: &Context) -> anyhow::Result<EvidenceKey> {
    Ok(EvidenceKey::load_or_create(
        &context.config.data_dir,
        context.sealer()?.as_ref(),
    )?)
}

pub fn export(context: &Context, args: ExportArgs) -> anyhow::Result<()> {
    context.authorize(Permission::Export, false)?;
    let Some(reason) = context.reason.clone().filter(|r| !r.trim().is_empty()) else {
        bail!("say why the case is exported: --reason TEXT (it is recorded and in the bundle)");
    };
    let store = context.open_sqlite()?;
    let Some(case) = store.case(&args.reference)? else {
        bail!("no case {}", args.reference);
    };
    // As over the API: only the case's owner and members take its evidence out; refusals are
    // logged.
    if !case.admits(&context.actor) {
        store.audit(&NewAuditEntry {
            actor: Actor {
                user_id: None,
                user_name: context.actor.clone(),
            },
            action: AuditAction::Export,
            target: Target {
                kind: "case".into(),
                id: case.reference.clone(),
            },
            case_ref: Some(case.reference.clone()),
            reason,
            request: serde_json::json!({ "command_line": true }),
            probe_image: None,
            outcome: Outcome::refused("not_in_case"),
        })?;
        bail!(
            "{} is neither owner nor member of case {}",
            context.actor,
            case.reference
        );
    }
    let key = signing_key(context)?;
    let clips = ClipSource {
        ffmpeg: context.config.video.ffmpeg.clone(),
        recordings_dir: context.recordings_dir(),
    };
    // Written beside the target and renamed into place: no half-written bundle under its name.
    let partial_path = args.out.with_extension("partial");
    let partial = std::fs::File::create(&partial_path)
        .with_context(|| format!("writing {}", partial_path.display()))?;
    let summary = vigil_evidence::export_case(
        &store,
        &key,
        &ExportRequest {
            case: case.reference.clone(),
            actor: Actor {
                user_id: None,
                user_name: context.actor.clone(),
            },
            reason,
            now_ms: now_ms(),
        },
        context.recordings_dir().is_dir().then_some(&clips),
        std::io::BufWriter::new(&partial),
    );
    let summary = match summary.map_err(anyhow::Error::from).and_then(|summary| {
        partial.sync_all()?;
        std::fs::rename(&partial_path, &args.out)?;
        Ok(summary)
    }) {
        Ok(summary) => summary,
        Err(error) => {
            let _ = std::fs::remove_file(&partial_path);
            return Err(error.context(format!("writing {}", args.out.display())));
        }
    };
    let manifest = &summary.manifest;
    println!(
        "wrote {}: case {}, {} files, {} skipped, audit head {} (entry {})",
        args.out.display(),
        manifest.case,
        manifest.files.len(),
        manifest.skipped.len(),
        manifest.audit_head.hash,
        manifest.audit_head.sequence
    );
    for skipped in &manifest.skipped {
        println!("  skipped {}: {}", skipped.path, skipped.reason);
    }
    println!("signed by {}", summary.public_key);
    Ok(())
}

/// Needs nothing but the file (and the pinned key): no data directory, no models.
pub fn verify(args: VerifyExportArgs) -> anyhow::Result<()> {
    let pinned = match &args.public_key {
        None => None,
        Some(text) => Some(match vigil_evidence::parse_public_key(text) {
            Ok(key) => key,
            Err(error) => {
                let path = PathBuf::from(text);
                if !path.is_file() {
                    return Err(error.into());
                }
                let contents = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                vigil_evidence::parse_public_key(&contents)?
            }
        }),
    };
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let report = vigil_evidence::verify_bundle(std::io::BufReader::new(file), pinned.as_ref())
        .with_context(|| format!("reading {}", args.file.display()))?;
    if let Some(manifest) = &report.manifest {
        println!(
            "case {}, exported by {} at {} ms: {:?}",
            manifest.case, manifest.exported_by, manifest.exported_at_ms, manifest.reason
        );
        for skipped in &manifest.skipped {
            println!("  not included: {} ({})", skipped.path, skipped.reason);
        }
    }
    println!(
        "{} files checked, {} audit entries checked",
        report.files_checked, report.audit_entries
    );
    for problem in &report.problems {
        println!("FAILED: {problem}");
    }
    if !report.is_intact() {
        bail!(
            "the bundle does not verify ({} problem(s))",
            report.problems.len()
        );
    }
    match report.trust {
        KeyTrust::Pinned => println!("verified: signed by the pinned key"),
        KeyTrust::BundleKeyOnly => eprintln!(
            "warning: no --public-key given; checked against the bundle's own key {}. This proves \
             the files are as signed, not who signed them: pin the server's key (`vigil keys \
             evidence-public`) to prove origin",
            report.bundle_key.as_deref().unwrap_or("?")
        ),
    }
    println!("verified: every file matches the signed manifest, the audit entries hash correctly");
    Ok(())
}

/// `vigil keys evidence-public`: the line a recipient pins.
pub fn print_public_key(context: &Context) -> anyhow::Result<()> {
    println!("{}", signing_key(context)?.public_key_text());
    Ok(())
}
