//! `vigil models list | fetch | verify`.
//!
//! `fetch` downloads each model from its official upstream URL (extracting it from the release
//! archive where upstream ships one), checks its sha256 against the compiled-in manifest, and
//! only then moves it into the models folder; `--from DIR` does the same from a local copy.

use crate::cli::ModelsCommand;
use crate::context::Context;
use anyhow::{bail, Context as _};
use std::io::Read;
use std::path::{Path, PathBuf};
use vigil_infer::manifest::{verify_file, Manifest, ModelEntry};

/// Upper bound on one download (buffalo_m.zip is about 260 MB).
const MAX_DOWNLOAD_BYTES: u64 = 1 << 30;

pub fn run(context: &Context, command: ModelsCommand) -> anyhow::Result<()> {
    let manifest = Manifest::builtin();
    let folder = &context.config.models_dir;
    match command {
        ModelsCommand::List => {
            println!(
                "{:<18} {:<10} {:<10} {:<28} {:<10} upstream",
                "name", "role", "installed", "licence", "use"
            );
            for m in &manifest.models {
                let installed = match verify_file(&folder.join(&m.file), &m.sha256) {
                    Ok(()) => "yes",
                    Err(vigil_infer::InferError::ModelMissing { .. }) => "no",
                    Err(_) => "CORRUPT",
                };
                println!(
                    "{:<18} {:<10} {:<10} {:<28} {:<10} {}",
                    m.name,
                    m.role.to_string(),
                    installed,
                    m.licence,
                    if m.non_commercial { "NON-COMM." } else { "any" },
                    m.upstream_url
                );
            }
            println!(
                "\nNON-COMM.: the weights' licence allows non-commercial research use only; \
                 check it before any other use."
            );
            Ok(())
        }
        ModelsCommand::Fetch { names, from } => {
            let selected = select(&manifest, &names)?;
            std::fs::create_dir_all(folder)
                .with_context(|| format!("creating {}", folder.display()))?;
            let mut failures = 0;
            for entry in selected {
                let target = folder.join(&entry.file);
                if verify_file(&target, &entry.sha256).is_ok() {
                    println!("{:<18} already installed", entry.name);
                    continue;
                }
                let result = match &from {
                    Some(source) => install_from_folder(entry, source, &target),
                    None => download(entry, &target),
                };
                match result {
                    Ok(()) => println!("{:<18} installed, sha256 verified", entry.name),
                    Err(error) => {
                        failures += 1;
                        eprintln!("{:<18} FAILED: {error:#}", entry.name);
                    }
                }
            }
            if failures > 0 {
                bail!("{failures} model(s) could not be installed");
            }
            Ok(())
        }
        ModelsCommand::Verify => {
            let mut bad = 0;
            for m in &manifest.models {
                match verify_file(&folder.join(&m.file), &m.sha256) {
                    Ok(()) => println!("{:<18} ok", m.name),
                    Err(vigil_infer::InferError::ModelMissing { .. }) => {
                        println!("{:<18} not installed", m.name)
                    }
                    Err(error) => {
                        bad += 1;
                        println!("{:<18} BAD: {error}", m.name);
                    }
                }
            }
            if bad > 0 {
                bail!("{bad} installed model(s) fail verification");
            }
            Ok(())
        }
    }
}

fn select<'a>(manifest: &'a Manifest, names: &[String]) -> anyhow::Result<Vec<&'a ModelEntry>> {
    if names.is_empty() {
        return Ok(manifest.models.iter().collect());
    }
    names
        .iter()
        .map(|n| manifest.get(n).map_err(anyhow::Error::from))
        .collect()
}

/// Writes `bytes` next to `target`, checks the checksum, then renames into place, so the
/// models folder never holds an unverified file under a model's name.
fn install_bytes(entry: &ModelEntry, bytes: &[u8], target: &Path) -> anyhow::Result<()> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let partial = target.with_extension("partial");
    std::fs::write(&partial, bytes).with_context(|| format!("writing {}", partial.display()))?;
    if let Err(error) = verify_file(&partial, &entry.sha256) {
        let _ = std::fs::remove_file(&partial);
        return Err(error.into());
    }
    std::fs::rename(&partial, target)?;
    Ok(())
}

fn install_from_folder(entry: &ModelEntry, source: &Path, target: &Path) -> anyhow::Result<()> {
    let candidates: Vec<PathBuf> = [
        Some(source.join(&entry.file)),
        Path::new(&entry.file)
            .file_name()
            .map(|name| source.join(name)),
    ]
    .into_iter()
    .flatten()
    .collect();
    let found = candidates
        .iter()
        .find(|p| p.is_file())
        .with_context(|| format!("{} not found in {}", entry.file, source.display()))?;
    let bytes = std::fs::read(found).with_context(|| format!("reading {}", found.display()))?;
    install_bytes(entry, &bytes, target)
}

fn download(entry: &ModelEntry, target: &Path) -> anyhow::Result<()> {
    if let Some(reason) = &entry.download_unavailable {
        bail!("{reason}");
    }
    eprintln!("{:<18} downloading {}", entry.name, entry.upstream_url);
    let response = ureq::get(&entry.upstream_url)
        .timeout(std::time::Duration::from_secs(600))
        .call()
        .with_context(|| format!("downloading {}", entry.upstream_url))?;
    let mut body = Vec::new();
    response
        .into_reader()
        .take(MAX_DOWNLOAD_BYTES)
        .read_to_end(&mut body)?;
    let bytes = match &entry.archive_member {
        None => body,
        Some(member) => extract(&entry.upstream_url, &body, member)?,
    };
    install_bytes(entry, &bytes, target)
}

fn extract(url: &str, archive: &[u8], member: &str) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    if url.ends_with(".zip") {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(archive))?;
        let mut file = zip
            .by_name(member)
            .with_context(|| format!("{member} not in {url}"))?;
        file.read_to_end(&mut out)?;
        return Ok(out);
    }
    if url.ends_with(".tgz") || url.ends_with(".tar.gz") {
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
        for item in tar.entries()? {
            let mut item = item?;
            if item.path()?.to_string_lossy() == member {
                item.read_to_end(&mut out)?;
                return Ok(out);
            }
        }
        bail!("{member} not in {url}");
    }
    bail!("unknown archive type: {url}")
}
