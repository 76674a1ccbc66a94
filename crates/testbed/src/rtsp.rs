//! GStreamer's RTSP server (`scripts/testbed/rtsp_server.py`) as a child process.

use crate::paths::repo_root;
use crate::process::{stop_child, StderrLog};
use crate::{io_error, Error, Result};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A real RTSP server on 127.0.0.1 serving files at mount paths, over TCP and UDP.
///
/// Not looped: each client gets its file once from the start (H.264 as it is in the file, other
/// codecs re-encoded to H.264). Looped: each mount is a live camera that plays its file forever,
/// shared by all clients, re-encoded to H.264 with a key frame every second.
/// The child is killed when this is dropped.
pub struct RtspServer {
    mounts: Vec<(String, PathBuf)>,
    looped: bool,
    port: u16,
    child: Option<Child>,
    stderr: StderrLog,
}

impl RtspServer {
    /// Starts the server on a free port; returns once it listens. Mounts are `("/cam1", file)`
    /// (the leading `/` may be omitted).
    pub fn start(mounts: &[(&str, &Path)], looped: bool) -> Result<Self> {
        if mounts.is_empty() {
            return Err(Error::Invalid(
                "an RTSP server needs at least one mount".into(),
            ));
        }
        let mut mounts_owned = Vec::with_capacity(mounts.len());
        for (mount, path) in mounts {
            let path = path
                .canonicalize()
                .map_err(io_error(format!("video {}", path.display())))?;
            mounts_owned.push((normalise_mount(mount), path));
        }
        let mut server = Self {
            mounts: mounts_owned,
            looped,
            port: 0,
            child: None,
            stderr: StderrLog::default(),
        };
        server.spawn(0)?;
        Ok(server)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `rtsp://127.0.0.1:PORT/mount`.
    pub fn url(&self, mount: &str) -> String {
        format!("rtsp://127.0.0.1:{}{}", self.port, normalise_mount(mount))
    }

    /// Whether the server process is alive.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Kills the server at once (SIGKILL, no RTSP teardown): the "server died" fault.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            // An already exited child makes kill fail; wait reaps it either way.
            let _ = child.kill();
            child
                .wait()
                .map_err(io_error("waiting for the killed RTSP server"))?;
        }
        Ok(())
    }

    /// Starts the server again on the same port (killing it first if it still runs).
    pub fn restart(&mut self) -> Result<()> {
        self.kill()?;
        let port = self.port;
        // The port can be refused for a moment after a kill; try again briefly.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.spawn(port) {
                Ok(()) => return Ok(()),
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(200)),
                Err(error) => return Err(error),
            }
        }
    }

    fn spawn(&mut self, port: u16) -> Result<()> {
        let python =
            std::env::var("VIGIL_TESTBED_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
        let script = repo_root().join("scripts/testbed/rtsp_server.py");
        let mut command = Command::new(&python);
        command
            .arg(&script)
            .args(["--address", "127.0.0.1", "--port", &port.to_string()]);
        for (mount, path) in &self.mounts {
            command
                .arg("--mount")
                .arg(format!("{mount}={}", path.display()));
        }
        if self.looped {
            command.arg("--loop");
        }
        // stdin stays open as a lifeline: the server exits when this process goes away.
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| Error::Spawn {
                program: format!("{python} {}", script.display()),
                source,
            })?;
        let stderr = StderrLog::collect(&mut child);
        let (sender, receiver) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(port) = line.strip_prefix("ready port=") {
                        let _ = sender.send(port.trim().parse::<u16>().ok());
                    }
                }
            });
        }
        let ready = receiver.recv_timeout(READY_TIMEOUT);
        match ready {
            Ok(Some(bound)) => {
                self.port = bound;
                self.child = Some(child);
                self.stderr = stderr;
                Ok(())
            }
            _ => {
                stop_child(&mut child, Duration::ZERO);
                // Give the reader thread a moment to drain the last lines of stderr.
                thread::sleep(Duration::from_millis(50));
                Err(Error::NotReady {
                    what: format!("RTSP server on port {port}"),
                    seconds: READY_TIMEOUT.as_secs(),
                    detail: stderr.text(),
                })
            }
        }
    }

    /// The end of the server's stderr, for failure messages.
    pub fn log(&self) -> String {
        self.stderr.text()
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn normalise_mount(mount: &str) -> String {
    if mount.starts_with('/') {
        mount.to_string()
    } else {
        format!("/{mount}")
    }
}
