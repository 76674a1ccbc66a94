//! The Python peers of `vigil bench pipeline | search`, run in the project's `.venv`, which
//! `scripts/dev env` creates when missing.

use crate::BenchContext;
use anyhow::{bail, Context as _};
use std::path::PathBuf;
use std::process::Command;

fn python(context: &BenchContext<'_>) -> anyhow::Result<PathBuf> {
    let root = context
        .repository_root
        .clone()
        .context("cannot find the repository root")?;
    let status = Command::new(root.join("scripts/dev"))
        .arg("env")
        .stdout(std::process::Stdio::null())
        .status()
        .context("running scripts/dev env to set up .venv")?;
    if !status.success() {
        bail!("scripts/dev env failed");
    }
    Ok(root.join(".venv/bin/python"))
}

/// Runs a Python peer (`script`, relative to the repository root) in `.venv`; its report is the
/// JSON document at the end of its output.
pub fn run_peer(
    context: &BenchContext<'_>,
    script: &str,
    args: &[String],
) -> anyhow::Result<serde_json::Value> {
    let root = context
        .repository_root
        .clone()
        .context("cannot find the repository root")?;
    let output = Command::new(python(context)?)
        .arg(root.join(script))
        .args(args)
        .output()
        .with_context(|| format!("running {script}"))?;
    if !output.status.success() {
        bail!(
            "{script} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    // the report is the JSON document at the end of the output
    let report = stdout.find('{').map_or("", |start| &stdout[start..]);
    serde_json::from_str(report).with_context(|| format!("parsing {script} output: {stdout}"))
}
