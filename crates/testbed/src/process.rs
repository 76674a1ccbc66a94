//! Running the external tools (ffmpeg, ffprobe, python) the test bed is made of.

use crate::{Error, Result};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Runs a tool to the end, at most `limit`; its stdout, or an error carrying the end of its
/// stderr. A tool still running at `limit` is killed: a hung stream must fail the test, not hang it.
pub(crate) fn run_tool(program: &str, args: &[String], limit: Duration) -> Result<Vec<u8>> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn {
            program: program.into(),
            source,
        })?;
    let stderr = StderrLog::collect(&mut child);
    let stdout = child.stdout.take().map(|mut out| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = out.read_to_end(&mut bytes);
            bytes
        })
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let output = stdout
        .and_then(|reader| reader.join().ok())
        .unwrap_or_default();
    match status {
        Some(status) if status.success() => Ok(output),
        Some(status) => Err(Error::ToolFailed {
            program: program.into(),
            detail: format!("{status}: {}", stderr.text()),
        }),
        None => Err(Error::ToolFailed {
            program: program.into(),
            detail: format!(
                "still running after {} s: {}",
                limit.as_secs(),
                stderr.text()
            ),
        }),
    }
}

/// The last few lines of a tool's diagnostics, enough to say why it failed.
pub(crate) fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join(" | ")
}

/// Keeps the end of a child's stderr, read on a thread so the child never blocks on a full pipe.
#[derive(Clone, Default)]
pub(crate) struct StderrLog(Arc<Mutex<String>>);

impl StderrLog {
    pub(crate) fn collect(child: &mut Child) -> Self {
        let log = Self::default();
        if let Some(mut stderr) = child.stderr.take() {
            let shared = log.0.clone();
            thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while let Ok(read) = stderr.read(&mut buffer) {
                    if read == 0 {
                        break;
                    }
                    let mut text = shared.lock().unwrap_or_else(|e| e.into_inner());
                    text.push_str(&String::from_utf8_lossy(&buffer[..read]));
                    // Bounded: a long-running server may log for minutes.
                    if text.len() > 64 * 1024 {
                        let cut = text.len() - 32 * 1024;
                        let cut = (cut..text.len())
                            .find(|&i| text.is_char_boundary(i))
                            .unwrap_or(0);
                        text.drain(..cut);
                    }
                }
            });
        }
        log
    }

    pub(crate) fn text(&self) -> String {
        tail(&self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Waits for a child to exit, killing it (SIGKILL) if it has not within `timeout`.
pub(crate) fn stop_child(child: &mut Child, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) => return,
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}
