//! `vigil cases`, `vigil search` and `vigil access-report`: the case-bound side of the command
//! line, held to the same rules as the API (`Context::authorize`) and audited the same way.

use crate::cli::{AccessReportArgs, CasesCommand, SearchArgs};
use crate::context::Context;
use crate::output;
use anyhow::{bail, Context as _};
use vigil_audit::{Actor, AuditAction, NewAuditEntry, Outcome, Target};
use vigil_auth::Permission;
use vigil_base::CameraId;
use vigil_pipeline::access_report::{build_report, ReportBasis, ReportRequest};
use vigil_pipeline::video::{search_stored, SearchFilter};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn entry(
    context: &Context,
    action: AuditAction,
    target: (&str, &str),
    request: serde_json::Value,
) -> NewAuditEntry {
    NewAuditEntry {
        actor: Actor {
            user_id: None,
            user_name: context.actor.clone(),
        },
        action,
        target: Target {
            kind: target.0.into(),
            id: target.1.into(),
        },
        case_ref: context.case_ref.clone(),
        reason: context
            .reason
            .clone()
            .unwrap_or_else(|| "command line".into()),
        request,
        probe_image: None,
        outcome: Outcome::success(""),
    }
}

pub fn cases(context: &Context, command: CasesCommand) -> anyhow::Result<()> {
    let store = context.open_sqlite()?;
    match command {
        CasesCommand::Export(args) => return crate::evidence::export(context, args),
        CasesCommand::Open {
            reference,
            purpose,
            legal_basis,
            expires_days,
            members,
            evidence_retention_days,
        } => {
            context.authorize(Permission::ManageCases, false)?;
            let now = now_ms();
            let audit = NewAuditEntry {
                case_ref: Some(reference.clone()),
                reason: purpose.clone(),
                ..entry(
                    context,
                    AuditAction::CaseOpen,
                    ("case", &reference),
                    serde_json::json!({
                        "legal_basis": legal_basis,
                        "members": members,
                        "expires_days": expires_days,
                        "evidence_retention_days": evidence_retention_days,
                    }),
                )
            };
            let case = store.open_case(
                &vigil_store::NewCase {
                    reference,
                    purpose,
                    legal_basis,
                    owner: context.actor.clone(),
                    members,
                    expires_at_ms: now + i64::from(expires_days) * 86_400_000,
                    evidence_retention_days,
                },
                &audit,
                now,
            )?;
            println!(
                "opened case {} owned by {}, open until {} ms",
                case.reference, case.owner, case.expires_at_ms
            );
        }
        CasesCommand::List { json } => {
            context.authorize(Permission::ManageCases, false)?;
            let cases = store.cases()?;
            if json {
                return output::json(&cases);
            }
            let now = now_ms();
            for case in cases {
                println!(
                    "{:<20} {:<8} owner {:<12} members [{}]  {}",
                    case.reference,
                    if case.is_open(now) { "open" } else { "closed" },
                    case.owner,
                    case.members.join(", "),
                    case.purpose
                );
            }
        }
        CasesCommand::Close { reference } => {
            context.authorize(Permission::ManageCases, false)?;
            let Some(case) = store.case(&reference)? else {
                bail!("no case {reference}");
            };
            // Only the owner ends a case, as over the API; the refusal is logged.
            if case.owner != context.actor {
                store.audit(&NewAuditEntry {
                    case_ref: Some(reference.clone()),
                    outcome: Outcome::refused("not_in_case"),
                    ..entry(
                        context,
                        AuditAction::CaseClose,
                        ("case", &reference),
                        serde_json::json!({ "owner": case.owner }),
                    )
                })?;
                bail!(
                    "only the owner of case {reference} ({}) may close it",
                    case.owner
                );
            }
            let audit = NewAuditEntry {
                case_ref: Some(reference.clone()),
                ..entry(
                    context,
                    AuditAction::CaseClose,
                    ("case", &reference),
                    serde_json::json!({}),
                )
            };
            store.close_case(&reference, &audit, now_ms())?;
            println!("closed case {reference}");
        }
    }
    Ok(())
}

pub fn search(context: &Context, args: SearchArgs) -> anyhow::Result<()> {
    context.authorize(Permission::Search, true)?;
    let bytes =
        std::fs::read(&args.photo).with_context(|| format!("reading {}", args.photo.display()))?;
    let cameras = args
        .cameras
        .iter()
        .map(|c| CameraId::parse(c))
        .collect::<Result<Vec<_>, _>>()?;
    let filter = SearchFilter {
        cameras,
        from_ms: args.from_ms,
        to_ms: args.to_ms,
    };
    let store = context.open_sqlite()?;
    let service = context.service_on(store.clone())?;
    let report = search_stored(
        &service,
        store.as_ref(),
        &bytes,
        &filter,
        args.limit,
        args.false_match_rate,
    )?;
    let findings: Vec<i64> = report.hits.iter().map(|hit| hit.sighting.id).collect();
    // What a search under a case returns, the case's investigators may look at again.
    if let Some(case) = &context.case_ref {
        store.link_sightings_to_case(case, &findings, now_ms())?;
    }
    context.audit(
        AuditAction::Search,
        ("photo", &args.photo.display().to_string()),
        serde_json::json!({
            "cameras": args.cameras,
            "from_ms": args.from_ms,
            "to_ms": args.to_ms,
            "findings": { "subjects": [], "sightings": findings },
        }),
        Some(bytes),
    )?;
    if args.json {
        return output::json(&report);
    }
    println!(
        "{} sighting(s) at or below false-match rate {} among {} searched",
        report.hits.len(),
        output::rate(report.false_match_rate_threshold),
        report.sightings_searched
    );
    for hit in &report.hits {
        println!(
            "  sighting {:>6}  camera {:<16} {} .. {}  score {:.3}  false-match rate {}",
            hit.sighting.id,
            hit.sighting.camera,
            hit.sighting.started_at_ms,
            hit.sighting.ended_at_ms,
            hit.score,
            output::rate(hit.false_match_rate)
        );
    }
    Ok(())
}

pub fn access_report(context: &Context, args: AccessReportArgs) -> anyhow::Result<()> {
    context.authorize(Permission::SubjectAccessReport, false)?;
    let Some(reason) = context.reason.clone() else {
        bail!("say why with --reason (e.g. the request's reference)");
    };
    let store = context.open_sqlite()?;
    let service = context.service_on(store.clone())?;
    let (basis, photo) = match (&args.photo, &args.subject) {
        (Some(path), _) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            (ReportBasis::Photo(bytes.clone()), Some(bytes))
        }
        (None, Some(subject)) => (ReportBasis::Subject(service.find_subject(subject)?), None),
        (None, None) => bail!("give --photo or --subject"),
    };
    let target = match &basis {
        ReportBasis::Subject(id) => id.to_string(),
        ReportBasis::Photo(_) => "photo".to_string(),
    };
    let request = ReportRequest {
        basis,
        requested_by: context.actor.clone(),
        reason,
        false_match_rate: args.false_match_rate,
        check_probes: !args.no_probe_check,
    };
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("comparing stored search probes {pos}/{len}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let report = build_report(&service, &store, &request, now_ms(), &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    context.audit(
        AuditAction::AccessReport,
        ("subject", &target),
        serde_json::json!({
            "subjects": report.subjects.len(),
            "sightings": report.sightings.len(),
            "searches": report.searches.len(),
        }),
        photo,
    )?;
    match &args.output {
        Some(path) => {
            let is_html = path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
            let text = if is_html {
                report.to_html()
            } else {
                serde_json::to_string_pretty(&report)?
            };
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "wrote {}: {} subject(s), {} watchlist entr(ies), {} sighting(s), {} alert(s), {} search(es)",
                path.display(),
                report.subjects.len(),
                report.watchlist_entries.len(),
                report.sightings.len(),
                report.alerts.len(),
                report.searches.len()
            );
            Ok(())
        }
        None => output::json(&report),
    }
}
