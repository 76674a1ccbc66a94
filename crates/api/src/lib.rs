//! HTTP API (axum): routes, error mapping, OpenAPI, metrics
