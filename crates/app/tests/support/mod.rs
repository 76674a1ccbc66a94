//! Starting `vigil` as an operator would, for the tests that stop, kill and starve it.
#![allow(dead_code)] // each test binary uses its own part

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .canonicalize()
        .expect("the shared folder (models, data) next to the checkout")
}

/// The folder of test clips, the media root of the tests' file cameras.
pub fn media() -> PathBuf {
    shared().join("data/video")
}

pub fn vigil(data: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vigil"));
    command
        .env("VIGIL_DATA_DIR", data)
        .env("VIGIL_MODELS_DIR", shared().join("models"))
        .env("VIGIL_SHARED_DIR", shared())
        .env_remove("VIGIL_CONFIG")
        .env_remove("VIGIL_SEAL_KEYS");
    command
}

/// A running `vigil serve`; killed when dropped.
pub struct Server {
    pub child: Child,
    pub address: String,
    /// Every line the server wrote on stderr so far.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    pub fn base(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`TERM`, `KILL`, ...) with kill(1).
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{signal}");
    }

    /// Waits for the process to exit; None when it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn serve(data: &Path, config: &Path) -> Server {
    let mut child = vigil(data)
        .arg("--config")
        .arg(config)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let lines = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let _ = sender.send(rest.trim().to_string());
            }
            lines.lock().unwrap().push(line);
        }
    });
    let address = receiver
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("the server printed no address: {:?}", log.lock().unwrap()));
    Server {
        child,
        address,
        log,
    }
}

/// A new user holding `roles` and a client carrying its token.
pub fn client_with(data: &Path, name: &str, roles: &[&str]) -> reqwest::blocking::Client {
    let mut add = vigil(data);
    add.args(["users", "add", name, "--as", "test-setup"]);
    for role in roles {
        add.args(["--role", role]);
    }
    let added = add.output().unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let token = vigil(data)
        .args(["users", "token", name, "--as", "test-setup"])
        .output()
        .unwrap();
    assert!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    let secret = String::from_utf8(token.stdout).unwrap().trim().to_string();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {secret}").parse().unwrap(),
    );
    reqwest::blocking::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub fn get_json(client: &reqwest::blocking::Client, url: &str) -> serde_json::Value {
    let response = client.get(url).send().unwrap();
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.json().unwrap()
}

pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A process's parent id and state letter, from /proc; None once it is gone.
pub fn parent_and_state(pid: u32) -> Option<(u32, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    Some((parent, state))
}

/// The ffmpeg processes whose parent is `parent`.
pub fn ffmpeg_children(parent: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "ffmpeg" && parent_and_state(pid).is_some_and(|(p, _)| p == parent) {
            children.push(pid);
        }
    }
    children
}

/// Still running: present and not a zombie waiting for its new parent to reap it.
pub fn alive(pid: u32) -> bool {
    parent_and_state(pid).is_some_and(|(_, state)| state != 'Z')
}

/// The names of a process's environment variables.
pub fn environment_names(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| {
            String::from_utf8_lossy(v)
                .split('=')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// A config file with `body`, the media root set to the test clips' folder.
pub fn config_with(directory: &Path, body: &str) -> PathBuf {
    let config = directory.join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            "{body}\n[video]\nmedia_root = {:?}\nmin_free_bytes = 0\nsegment_seconds = 2\n",
            media().display().to_string()
        ),
    )
    .unwrap();
    config
}
