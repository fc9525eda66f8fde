#![recursion_limit = "512"]
//! hato's admin HTTP API: JSON under `/api/v1/`, bearer tokens, tenant isolation.
//!
//! A tenant admin's token confines every request to its tenant; another tenant's objects answer
//! `404` exactly as if they did not exist, so names cannot be probed across tenants.

mod api;
mod error;
mod groups;
mod openapi;
mod password;

pub use api::{AppState, router};
pub use error::ApiError;
