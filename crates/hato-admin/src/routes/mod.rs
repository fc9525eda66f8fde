//! The admin API's routes: one module per resource, each with its own `routes()`, merged here.
//! Shared lookups live in `common.rs`, the state and the caller in `crate::state`; route modules
//! import only those, never each other. A new resource gets `routes/<resource>.rs` and a line
//! below.

mod common;
mod contacts;
mod domains;
mod group_content;
mod groups;
mod joining;
mod login;
mod mail;
mod mailboxes;
mod moderation;
mod permissions;
mod roles;
mod tenants;
mod trace;

use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/openapi.json", get(crate::openapi::document))
        .merge(tenants::routes())
        .merge(domains::routes())
        .merge(mailboxes::routes())
        .merge(mail::routes())
        .merge(trace::routes())
        .merge(login::routes())
        .merge(groups::routes())
        .merge(joining::routes())
        .merge(roles::routes())
        .merge(group_content::routes())
        .merge(moderation::routes())
        .merge(contacts::routes())
        .merge(permissions::routes())
        .fallback(|| async { ApiError::not_found("no such API endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "this method is not allowed on this endpoint",
            )
        })
        .with_state(state)
}
