//! `vigil subjects list | show | delete`.

use crate::cli::SubjectsCommand;
use crate::context::Context;
use crate::output;

pub fn run(context: &Context, command: SubjectsCommand) -> anyhow::Result<()> {
    let service = context.service()?;
    match command {
        SubjectsCommand::List {
            offset,
            limit,
            json,
        } => {
            let subjects = service.list_subjects(offset, limit)?;
            if json {
                return output::json(&subjects);
            }
            println!("{:>6}  {:<40} {:>9}", "id", "name", "templates");
            for s in subjects {
                println!("{:>6}  {:<40} {:>9}", s.id, s.name, s.template_count);
            }
        }
        SubjectsCommand::Show { subject, json } => {
            let id = service.find_subject(&subject)?;
            let detail = service.subject_detail(id)?;
            if json {
                return output::json(&detail);
            }
            let s = &detail.subject;
            println!(
                "subject {} (id {}), {} template(s)",
                s.name, s.id, s.template_count
            );
            if let Some(notes) = &s.notes {
                println!("notes: {notes}");
            }
            for t in &detail.templates {
                println!(
                    "  template {:>6}  {}  quality {:.2}  {}  {}",
                    t.id,
                    t.model,
                    t.quality,
                    &t.source_sha256[..t.source_sha256.len().min(12)],
                    t.source_name.as_deref().unwrap_or("")
                );
            }
        }
        SubjectsCommand::Delete { subject } => {
            context.authorize(vigil_auth::Permission::DeleteBiometric, false)?;
            let id = service.find_subject(&subject)?;
            let audit = context.audit_entry(
                vigil_audit::AuditAction::Delete,
                ("subject", &id.to_string()),
                serde_json::json!({}),
            );
            let removed = service.delete_subject_audited(id, Some(&audit))?;
            println!("deleted subject {id} and its {removed} template(s)");
        }
    }
    Ok(())
}
