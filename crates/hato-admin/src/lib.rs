#![recursion_limit = "512"]
//! hato's admin HTTP API: JSON under `/api/v1/`, bearer tokens, tenant isolation.
//!
//! A tenant admin's token confines every request to its tenant; another tenant's objects answer
//! `404` exactly as if they did not exist, so names cannot be probed across tenants.
//!
//! Layout: `state.rs` (the state, the caller, role checks, tenant scope), `routes/` (one module
//! per resource, shared lookups in `routes/common.rs`, the router in `routes/mod.rs`),
//! `error.rs`, `password.rs`, `login_limit.rs`, `openapi.rs`; SMTP AUTH's credential check for
//! the submission listener, with the same password hashes and limits (`smtp_auth.rs`); the provider's block list as the
//! server holds it (`block_list.rs`) and the delist page's limits (`delist_limit.rs`).

pub mod block_list;
pub mod console;
pub mod delist_limit;
mod error;
pub mod login_limit;
mod openapi;
mod password;
mod routes;
pub mod smtp_auth;
mod state;
pub mod test_clock;

pub use block_list::BlockListService;
pub use console::ConsoleSettings;
pub use delist_limit::{DelistLimiter, DelistLimits};
pub use error::ApiError;
pub use login_limit::{LoginLimiter, LoginLimits};
pub use routes::router;
pub use state::AppState;
pub use test_clock::TestClock;
