//! `vigil users …` and `vigil audit …`: the user directory and the audit log, on the local
//! database (the operator of the machine acts here; every change is audited under the name
//! given with `--as`, default the OS user).

use crate::cli::{AuditCommand, UsersCommand};
use crate::context::Context;
use anyhow::{bail, Context as _};
use std::io::Write;
use std::time::Duration;
use vigil_audit::{Actor, AuditAction, NewAuditEntry, Outcome, Target};
use vigil_auth::{AuthOptions, Role, UserDirectory};

pub fn users(context: &Context, command: UsersCommand) -> anyhow::Result<()> {
    let store = context.open_sqlite()?;
    let directory = UserDirectory::new(AuthOptions::default())?;
    match command {
        UsersCommand::Add {
            name,
            roles,
            display_name,
            password_stdin,
        } => {
            let roles: Vec<Role> = roles
                .iter()
                .map(|r| r.parse::<Role>())
                .collect::<Result<_, _>>()?;
            if roles.is_empty() {
                bail!(
                    "give at least one --role (admin, operator, reviewer, investigator, auditor)"
                );
            }
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                Some(line.trim_end_matches(['\n', '\r']).to_string())
            } else {
                None
            };
            let display = display_name.unwrap_or_else(|| name.clone());
            // The user and its audit entry commit together.
            let audit = context.audit_entry(
                AuditAction::UserCreate,
                ("user", &name),
                serde_json::json!({ "roles": roles.iter().map(|r| r.as_str()).collect::<Vec<_>>() }),
            );
            let user = store.audited_transaction(
                &audit,
                |connection| {
                    directory
                        .create_user(connection, &name, &display, &roles, password.as_deref())
                        .map_err(anyhow::Error::from)
                },
                |_| None,
            )?;
            println!("created user {} ({})", user.name, user.id.0);
        }
        UsersCommand::List => {
            let users = store.with_connection(|connection| directory.list_users(connection))?;
            for user in users {
                let roles: Vec<&str> = user.roles.iter().map(|r| r.as_str()).collect();
                println!(
                    "{:<4} {:<20} {:<40} {}",
                    user.id.0,
                    user.name,
                    roles.join(","),
                    if user.disabled { "disabled" } else { "" }
                );
            }
        }
        UsersCommand::Token {
            name,
            token_name,
            ttl_days,
        } => {
            let audit = context.audit_entry(
                AuditAction::UserChange,
                ("user", &name),
                serde_json::json!({ "token_issued": token_name }),
            );
            let issued = store.audited_transaction(
                &audit,
                |connection| {
                    let user = directory
                        .find_user(connection, &name)?
                        .ok_or_else(|| vigil_auth::AuthError::NotFound(format!("user {name}")))?;
                    directory
                        .issue_token(
                            connection,
                            user.id,
                            &token_name,
                            ttl_days.map(|d| Duration::from_secs(d * 86_400)),
                        )
                        .map_err(anyhow::Error::from)
                },
                |_| None,
            )?;
            // The secret on stdout alone, so scripts can capture it; it is not stored.
            println!("{}", issued.secret);
        }
    }
    Ok(())
}

pub fn audit(context: &Context, command: AuditCommand) -> anyhow::Result<()> {
    let store = context.open_sqlite()?;
    let anchors_path = context.audit_anchors_path();
    match command {
        AuditCommand::Verify { anchors } => {
            let path = anchors.unwrap_or(anchors_path);
            let anchors = if path.exists() {
                vigil_audit::read_anchors(&path)?
            } else {
                Vec::new()
            };
            let report = store.with_read_connection(|connection| {
                vigil_audit::verify_sealed(connection, &anchors, store.sealer())
            })?;
            println!(
                "{} entries checked against {} published heads",
                report.entries_checked, report.anchors_checked
            );
            if report.is_intact() {
                println!("audit log intact");
            } else {
                for problem in &report.problems {
                    println!("PROBLEM: {}", serde_json::to_string(problem)?);
                }
                bail!("the audit log has been tampered with");
            }
        }
        AuditCommand::Export { output, from } => {
            let head = match output {
                Some(path) => {
                    let file = std::fs::File::create(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    let mut writer = std::io::BufWriter::new(file);
                    let head = store.with_read_connection(|connection| {
                        vigil_audit::export(connection, &mut writer, from)
                    })?;
                    writer.flush()?;
                    head
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut writer = stdout.lock();
                    store.with_read_connection(|connection| {
                        vigil_audit::export(connection, &mut writer, from)
                    })?
                }
            };
            eprintln!(
                "exported up to entry {} (head {})",
                head.sequence,
                head.hash.to_hex()
            );
        }
        AuditCommand::Head => {
            let head = store.with_connection(|connection| {
                vigil_audit::publish_head(connection, &anchors_path)
            })?;
            println!("{} {}", head.sequence, head.hash.to_hex());
            eprintln!("appended to {}", anchors_path.display());
        }
        AuditCommand::Misuse {
            scan,
            acknowledge,
            note,
            json,
        } => {
            context.authorize(vigil_auth::Permission::ViewMisuseAlerts, false)?;
            let policy = &context.config.misuse;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            if let Some(id) = acknowledge {
                let note = note.unwrap_or_default();
                let entry = NewAuditEntry {
                    actor: Actor {
                        user_id: None,
                        user_name: context.actor.clone(),
                    },
                    action: AuditAction::MisuseReview,
                    target: Target {
                        kind: "misuse_alert".into(),
                        id: id.to_string(),
                    },
                    case_ref: None,
                    reason: note.clone(),
                    request: serde_json::json!({}),
                    probe_image: None,
                    outcome: Outcome::success(""),
                };
                store.acknowledge_misuse_alert(id, &context.actor, &note, &entry, now)?;
                println!("acknowledged misuse alert {id}");
                return Ok(());
            }
            let raised = if scan {
                store.scan_for_misuse(policy, now)?
            } else {
                Vec::new()
            };
            let activity = store.search_activity(now, policy)?;
            let alerts = store.misuse_alerts(true, 1000)?;
            if json {
                return crate::output::json(&serde_json::json!({
                    "raised": raised,
                    "activity": activity,
                    "open_alerts": alerts,
                }));
            }
            println!(
                "{:<20} {:>8} {:>10} {:>9} {:>13}",
                "user", "searches", "norm/day", "off-hours", "outside-case"
            );
            for user in &activity {
                println!(
                    "{:<20} {:>8} {:>10.1} {:>9} {:>13}",
                    user.user_name,
                    user.searches,
                    user.baseline_per_day,
                    user.off_hours,
                    user.outside_case_attempts
                );
            }
            println!(
                "{} open misuse alert(s), {} raised now",
                alerts.len(),
                raised.len()
            );
            for alert in &alerts {
                println!(
                    "  #{} {} {}: {}",
                    alert.id,
                    alert.user_name,
                    alert.rule.as_str(),
                    alert.detail
                );
            }
        }
    }
    Ok(())
}
