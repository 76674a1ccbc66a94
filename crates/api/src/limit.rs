//! Refusing oversized uploads with a 413 the client can actually read.
//!
//! Answering before the body is read and then closing the socket with unread data makes the
//! kernel send a reset, and many clients then lose the response and report a dropped
//! connection. So a body whose declared length exceeds the limit is read and discarded (up to
//! a cap) before the 413 goes out. Bodies without a declared length are cut by axum's
//! `DefaultBodyLimit` while they are parsed, and the extractors map that to 413 as well.

use crate::error::ApiError;
use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::header::{CONNECTION, CONTENT_LENGTH};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::pin::Pin;

/// Most bytes discarded from an oversized body before the server gives up on it and lets the
/// connection drop; keeps a hostile client from streaming forever.
const MAX_DISCARDED_BYTES: u64 = 64 * 1024 * 1024;

/// The configured upload limit, as middleware state.
#[derive(Debug, Clone, Copy)]
pub struct UploadLimit {
    pub max_upload_bytes: usize,
}

pub async fn refuse_oversized_bodies(
    State(limit): State<UploadLimit>,
    request: Request,
    next: Next,
) -> Response {
    let declared_bytes = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    match declared_bytes {
        Some(declared) if declared > limit.max_upload_bytes as u64 => {
            discard_body(request.into_body(), MAX_DISCARDED_BYTES).await;
            let mut response = ApiError::PayloadTooLarge {
                limit_bytes: limit.max_upload_bytes,
            }
            .into_response();
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            response
        }
        _ => next.run(request).await,
    }
}

/// Reads and drops the body until it ends, fails, or `cap_bytes` have been read.
async fn discard_body(mut body: Body, cap_bytes: u64) {
    let mut discarded: u64 = 0;
    while discarded < cap_bytes {
        let frame = std::future::poll_fn(|context| Pin::new(&mut body).poll_frame(context)).await;
        match frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    discarded += data.len() as u64;
                }
            }
            Some(Err(_)) | None => break,
        }
    }
}
