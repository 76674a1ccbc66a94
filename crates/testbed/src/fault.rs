//! Sources that misbehave on purpose: one that accepts and never sends, one that sends garbage.

use crate::{io_error, Result};
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Accepts TCP connections on 127.0.0.1 and never sends a byte (a stalled camera). The
/// connections stay open until the server is dropped.
pub struct SilentServer {
    inner: FaultServer,
}

impl SilentServer {
    pub fn start() -> Result<Self> {
        Ok(Self {
            inner: FaultServer::start(None)?,
        })
    }

    pub fn port(&self) -> u16 {
        self.inner.address.port()
    }

    /// A URL of the given scheme at this server, e.g. `url("rtsp")` → `rtsp://127.0.0.1:PORT/stalled`.
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}/stalled", self.port())
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.inner.accepted.load(Ordering::SeqCst)
    }
}

/// Accepts TCP connections on 127.0.0.1 and answers each with `bytes_per_connection`
/// deterministic pseudo-random bytes, then keeps it open without sending more.
pub struct GarbageServer {
    inner: FaultServer,
}

impl GarbageServer {
    pub fn start(bytes_per_connection: usize) -> Result<Self> {
        Ok(Self {
            inner: FaultServer::start(Some(bytes_per_connection))?,
        })
    }

    pub fn port(&self) -> u16 {
        self.inner.address.port()
    }

    /// A URL of the given scheme at this server, e.g. `url("http")` → `http://127.0.0.1:PORT/garbage`.
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}/garbage", self.port())
    }

    pub fn connections(&self) -> usize {
        self.inner.accepted.load(Ordering::SeqCst)
    }
}

struct FaultServer {
    address: SocketAddr,
    stopped: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultServer {
    fn start(garbage_bytes: Option<usize>) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(io_error("binding 127.0.0.1"))?;
        let address = listener
            .local_addr()
            .map_err(io_error("reading the bound address"))?;
        let stopped = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let acceptor = {
            let (stopped, accepted, connections) =
                (stopped.clone(), accepted.clone(), connections.clone());
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopped.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(mut stream) = stream else { continue };
                    let count = accepted.fetch_add(1, Ordering::SeqCst);
                    if let Some(length) = garbage_bytes {
                        let _ = stream.write_all(&garbage(length, count as u64));
                    }
                    // Held, not read: the peer sees an open, silent connection.
                    connections
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(stream);
                }
            })
        };
        Ok(Self {
            address,
            stopped,
            accepted,
            connections,
            acceptor: Some(acceptor),
        })
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for stream in self
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Deterministic bytes (splitmix64) for garbage and corruption.
pub(crate) fn garbage(length: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut bytes = Vec::with_capacity(length + 8);
    while bytes.len() < length {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        bytes.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    bytes.truncate(length);
    bytes
}
