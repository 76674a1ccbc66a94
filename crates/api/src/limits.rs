//! What one client, or all of them together, may hold of the server: requests in flight,
//! connections, and time to send a request.
//!
//! - At most `max_in_flight` requests are handled at once; beyond, 503 `overloaded` at once
//!   (with Retry-After) rather than a queue that grows until memory runs out.
//! - One client address may have `max_in_flight_per_client` requests in flight (429
//!   `throttled` beyond) and `max_connections_per_client` connections open (closed beyond), so
//!   one caller cannot take every slot from the others.
//! - Headers must arrive within `header_timeout_secs` (hyper closes the connection) and a body
//!   within `body_timeout_secs` of its headers: a slow-loris client that trickles bytes holds
//!   a slot for a bounded time only.
//!
//! The client address is the peer's, or, when the peer is a configured trusted proxy, the
//! right-most address of `X-Forwarded-For` that is not itself a trusted proxy.

use crate::error::{ErrorBody, ErrorDetail};
use crate::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Extensions, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use vigil_base::camera::IpNetwork;
use vigil_base::config::ServerConfig;

/// The limits of one server, shared by its connections and requests.
#[derive(Debug)]
pub struct RequestLimits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    in_flight: Arc<Semaphore>,
    max_in_flight_per_client: usize,
    max_connections_per_client: usize,
    per_client: Mutex<HashMap<IpAddr, ClientLoad>>,
    trusted_proxies: Vec<IpNetwork>,
}

#[derive(Debug, Default, Clone, Copy)]
struct ClientLoad {
    requests: usize,
    connections: usize,
}

impl RequestLimits {
    pub fn new(server: &ServerConfig) -> Self {
        Self {
            header_timeout: Duration::from_secs(server.header_timeout_secs.max(1)),
            body_timeout: Duration::from_secs(server.body_timeout_secs.max(1)),
            in_flight: Arc::new(Semaphore::new(server.max_in_flight.max(1))),
            max_in_flight_per_client: server.max_in_flight_per_client.max(1),
            max_connections_per_client: server.max_connections_per_client.max(1),
            per_client: Mutex::new(HashMap::new()),
            trusted_proxies: server.trusted_proxies.clone(),
        }
    }

    /// Who is calling: see the module documentation.
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let trusted = |address: IpAddr| self.trusted_proxies.iter().any(|n| n.contains(address));
        if !trusted(peer) {
            return peer;
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
            .collect();
        forwarded
            .iter()
            .rev()
            .copied()
            .find(|address| !trusted(*address))
            .or_else(|| forwarded.first().copied())
            .unwrap_or(peer)
    }

    /// A connection slot for `client`, or `None` when it already holds its share.
    pub fn open_connection(self: &Arc<Self>, client: IpAddr) -> Option<ConnectionSlot> {
        let mut loads = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
        let load = loads.entry(client).or_default();
        if load.connections >= self.max_connections_per_client {
            return None;
        }
        load.connections += 1;
        Some(ConnectionSlot {
            limits: self.clone(),
            client,
        })
    }

    fn release(&self, client: IpAddr, release: impl FnOnce(&mut ClientLoad)) {
        let mut loads = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(load) = loads.get_mut(&client) {
            release(load);
            if load.requests == 0 && load.connections == 0 {
                loads.remove(&client);
            }
        }
    }
}

/// An open connection counted against its client; released when dropped.
pub struct ConnectionSlot {
    limits: Arc<RequestLimits>,
    client: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.limits.release(self.client, |load| {
            load.connections = load.connections.saturating_sub(1)
        });
    }
}

struct RequestSlot {
    limits: Arc<RequestLimits>,
    client: IpAddr,
    _permit: OwnedSemaphorePermit,
}

impl Drop for RequestSlot {
    fn drop(&mut self) {
        self.limits.release(self.client, |load| {
            load.requests = load.requests.saturating_sub(1)
        });
    }
}

/// The peer address of a request (loopback for in-process routers without connection info).
pub fn peer_address(extensions: &Extensions) -> IpAddr {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |info| info.0.ip())
}

/// Middleware: the in-flight limits and the body deadline.
pub async fn limit_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limits = state.limits().clone();
    let client = limits.client_address(peer_address(request.extensions()), request.headers());
    let Ok(permit) = limits.in_flight.clone().try_acquire_owned() else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the server is handling as many requests as it may; retry shortly",
        );
    };
    {
        let mut loads = limits.per_client.lock().unwrap_or_else(|p| p.into_inner());
        let load = loads.entry(client).or_default();
        if load.requests >= limits.max_in_flight_per_client {
            drop(loads);
            return refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                "too many requests in flight from your address; wait for some to finish",
            );
        }
        load.requests += 1;
    }
    let slot = RequestSlot {
        limits: limits.clone(),
        client,
        _permit: permit,
    };
    let (parts, body) = request.into_parts();
    let body = Body::new(DeadlineBody {
        inner: body,
        deadline: Box::pin(tokio::time::sleep(limits.body_timeout)),
        seconds: limits.body_timeout.as_secs(),
    });
    let response = next.run(Request::from_parts(parts, body)).await;
    // The slot covers the handler, not a streamed answer (an SSE stream would hold it forever).
    drop(slot);
    response
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (
        status,
        Json(ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// A request body that fails once its deadline passes, however it trickles in.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    seconds: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0} s")]
struct BodyTooSlow(u64);

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.deadline.as_mut().poll(context).is_ready() {
            return Poll::Ready(Some(Err(BodyTooSlow(self.seconds).into())));
        }
        Pin::new(&mut self.inner)
            .poll_frame(context)
            .map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(trusted: &[&str]) -> RequestLimits {
        RequestLimits::new(&ServerConfig {
            trusted_proxies: trusted
                .iter()
                .map(|t| IpNetwork::parse(t).unwrap())
                .collect(),
            ..ServerConfig::default()
        })
    }

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().unwrap());
        headers
    }

    #[test]
    fn the_forwarded_header_is_believed_only_from_a_trusted_proxy() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let none = limits(&[]);
        assert_eq!(
            none.client_address(ip("203.0.113.7"), &forwarded("198.51.100.1")),
            ip("203.0.113.7")
        );
        let proxied = limits(&["10.0.0.0/24"]);
        assert_eq!(
            proxied.client_address(ip("10.0.0.5"), &forwarded("198.51.100.1")),
            ip("198.51.100.1")
        );
        // A client writing its own header before the proxy appends: the right-most untrusted
        // address is the one the proxy saw.
        assert_eq!(
            proxied.client_address(
                ip("10.0.0.5"),
                &forwarded("1.2.3.4, 198.51.100.1, 10.0.0.9")
            ),
            ip("198.51.100.1")
        );
        assert_eq!(
            proxied.client_address(ip("10.0.0.5"), &HeaderMap::new()),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn a_client_holds_at_most_its_share_of_connections() {
        let limits = Arc::new(RequestLimits::new(&ServerConfig {
            max_connections_per_client: 2,
            ..ServerConfig::default()
        }));
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        let first = limits.open_connection(client).unwrap();
        let _second = limits.open_connection(client).unwrap();
        assert!(limits.open_connection(client).is_none());
        assert!(limits
            .open_connection("192.0.2.2".parse().unwrap())
            .is_some());
        drop(first);
        assert!(limits.open_connection(client).is_some());
    }
}
