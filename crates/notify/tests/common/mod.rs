//! A real HTTP receiver on 127.0.0.1 for the delivery tests.
// Each test binary uses part of it.
#![allow(dead_code)]

use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use vigil_notify::SCHEMA_SQL;

/// Part of every answer's body, to check the body is not stored.
pub const RECEIVER_BODY_MARKER: &str = "internal stack trace: db password hunter2";

/// One request as the receiver saw it; header names lowercased.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    pub method: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl ReceivedRequest {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
}

pub struct Receiver {
    pub url: String,
    pub requests: Arc<Mutex<Vec<ReceivedRequest>>>,
}

impl Receiver {
    /// Answers the n-th request with `statuses[n]`, and 200 after the list runs out.
    pub fn start(statuses: Vec<u16>) -> Receiver {
        Self::start_with(move |index| statuses.get(index).copied().unwrap_or(200))
    }

    /// Accepts connections and reads requests but never answers.
    pub fn silent() -> Receiver {
        Self::start_with(|_| 0)
    }

    fn start_with(status_for: impl Fn(usize) -> u16 + Send + 'static) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!(
            "http://{}/hooks/vigil",
            listener.local_addr().expect("addr")
        );
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(request) = read_request(&mut stream) else {
                    continue;
                };
                let index = {
                    let mut seen = seen.lock();
                    seen.push(request);
                    seen.len() - 1
                };
                let status = status_for(index);
                if status == 0 {
                    held.push(stream);
                    continue;
                }
                // What a careless receiver answers; the delivery log must never keep it.
                let body = format!("status {status}; {RECEIVER_BODY_MARKER}");
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} Whatever\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Receiver { url, requests }
    }

    /// The port the receiver listens on (at 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.url
            .trim_start_matches("http://127.0.0.1:")
            .split('/')
            .next()
            .and_then(|port| port.parse().ok())
            .expect("a receiver URL")
    }

    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.requests.lock().clone()
    }
}

fn read_request(stream: &mut TcpStream) -> Option<ReceivedRequest> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let method = request_line.split_whitespace().next()?.to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let length: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(ReceivedRequest {
        method,
        headers,
        body,
    })
}

/// A URL on which nothing listens: connections are refused at once.
pub fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{address}/hooks")
}

/// A database file with the notify tables, and a connection to it (the "store's").
pub fn database() -> (tempfile::TempDir, PathBuf, rusqlite::Connection) {
    let directory = tempfile::tempdir().expect("tempdir");
    let path = directory.path().join("vigil.sqlite3");
    let connection = rusqlite::Connection::open(&path).expect("open");
    connection
        .pragma_update(None, "journal_mode", "wal")
        .expect("wal");
    connection
        .pragma_update(None, "foreign_keys", "ON")
        .expect("foreign keys");
    connection.execute_batch(SCHEMA_SQL).expect("schema");
    (directory, path, connection)
}
