//! A minimal HTTP/1.0-style server on 127.0.0.1 for the MJPEG and HLS sources: one thread per
//! connection, one request per connection, and a stop that closes every open connection.

use crate::{io_error, Result};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// What a handler gets: the request path (without query) and the connection to answer on.
pub(crate) type Handler = dyn Fn(&str, &mut TcpStream, &AtomicBool) + Send + Sync;

pub(crate) struct HttpServer {
    address: SocketAddr,
    stopped: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl HttpServer {
    pub(crate) fn start(handler: Arc<Handler>) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(io_error("binding 127.0.0.1"))?;
        let address = listener
            .local_addr()
            .map_err(io_error("reading the bound address"))?;
        let stopped = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let acceptor = {
            let stopped = stopped.clone();
            let connections = connections.clone();
            thread::spawn(move || accept_loop(listener, handler, stopped, connections))
        };
        Ok(Self {
            address,
            stopped,
            connections,
            acceptor: Some(acceptor),
        })
    }

    pub(crate) fn port(&self) -> u16 {
        self.address.port()
    }

    /// Closes the listener and every open connection.
    pub(crate) fn stop(&mut self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wakes the blocking accept so the acceptor sees the flag.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for connection in self
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = connection.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(
    listener: TcpListener,
    handler: Arc<Handler>,
    stopped: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
) {
    for stream in listener.incoming() {
        if stopped.load(Ordering::SeqCst) {
            break;
        }
        let Ok(mut stream) = stream else { continue };
        if let Ok(clone) = stream.try_clone() {
            let mut open = connections.lock().unwrap_or_else(|e| e.into_inner());
            // Forget connections that have ended, so a long test does not collect them.
            open.retain(|c| c.peer_addr().is_ok());
            open.push(clone);
        }
        let handler = handler.clone();
        let stopped = stopped.clone();
        thread::spawn(move || {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            if let Some(path) = read_request_path(&mut stream) {
                handler(&path, &mut stream, &stopped);
            }
            let _ = stream.shutdown(Shutdown::Both);
        });
    }
}

/// The path of a `GET` request, once its header has been read; None for anything else.
fn read_request_path(stream: &mut TcpStream) -> Option<String> {
    let mut header = Vec::new();
    let mut buffer = [0u8; 1024];
    while !header.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).ok()?;
        if read == 0 || header.len() > 16 * 1024 {
            return None;
        }
        header.extend_from_slice(&buffer[..read]);
    }
    let text = String::from_utf8_lossy(&header);
    let mut parts = text.lines().next()?.split_whitespace();
    let method = parts.next()?;
    let target = parts.next()?;
    if method != "GET" && method != "HEAD" {
        let _ = respond(
            stream,
            "405 Method Not Allowed",
            "text/plain",
            b"GET only\n",
        );
        return None;
    }
    Some(target.split('?').next().unwrap_or(target).to_string())
}

/// A complete response with a body; the connection is closed afterwards.
pub(crate) fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    stream.flush()
}
