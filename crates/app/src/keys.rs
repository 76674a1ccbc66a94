//! `vigil keys`: keys for encryption at rest and their rotation (docs/design/011).

use crate::cli::KeysCommand;
use crate::context::Context;
use anyhow::{bail, Context as _};
use vigil_store::ColumnSealing;

pub fn run(context: &Context, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::EvidencePublic => crate::evidence::print_public_key(context),
        KeysCommand::Generate => {
            // Only the key line goes to stdout, so `>> keyfile` appends exactly one key.
            println!("{}", vigil_seal::Sealer::generate_key()?);
            Ok(())
        }
        KeysCommand::Status => {
            let store = context.open_sqlite()?;
            if let Some(sealer) = store.sealer() {
                println!("active key: {}", sealer.active_key_id());
            } else {
                println!("encryption at rest is off (no key file, no $VIGIL_SEAL_KEYS)");
            }
            print_status(&store.sealing_status()?);
            Ok(())
        }
        KeysCommand::Reseal => {
            let store = context.open_sqlite()?;
            let Some(active) = store.sealer().map(|sealer| sealer.active_key_id()) else {
                bail!("no keys are configured: set encryption.key_file or $VIGIL_SEAL_KEYS");
            };
            eprintln!("resealing with key {active}");
            let status = store
                .reseal_all(&mut |progress| {
                    eprintln!(
                        "{}: {} rows looked at, {} rewritten",
                        progress.place, progress.scanned, progress.rewritten
                    );
                })
                .context("resealing")?;
            print_status(&status);
            let active = active.to_string();
            let left: u64 = status
                .iter()
                .map(|column| {
                    column.plaintext
                        + column
                            .by_key
                            .iter()
                            .filter(|(key, _)| **key != active)
                            .map(|(_, count)| count)
                            .sum::<u64>()
                })
                .sum();
            println!("{left} blobs left under other keys or in plaintext");
            if left == 0 {
                println!("keys other than {active} can now be removed from the key file");
            }
            Ok(())
        }
    }
}

fn print_status(status: &[ColumnSealing]) {
    for column in status {
        let keys: Vec<String> = column
            .by_key
            .iter()
            .map(|(key, count)| format!("{key}: {count}"))
            .collect();
        println!(
            "{}: plaintext {}{}{}",
            column.place,
            column.plaintext,
            if keys.is_empty() { "" } else { ", " },
            keys.join(", ")
        );
    }
}
