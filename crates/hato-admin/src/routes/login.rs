//! Users' login: a mailbox address and password for a user token.

use crate::error::ApiError;
use crate::state::{ApiResult, AppState, body};
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::{Json, Router};
use hato_core::auth::Role;
use hato_core::{Address, Timestamp, id};
use hato_store::{TokenInfo, hash_token};
use serde::Deserialize;
use serde_json::{Value, json};

pub(super) fn routes() -> Router<AppState> {
    use axum::routing::post;
    Router::new().route("/api/v1/auth/login", post(login))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginInput {
    address: String,
    password: String,
}

/// How long a user's token lasts.
const USER_TOKEN_SECS: i64 = 12 * 3600;

/// A user logs in with their mailbox address and password (argon2-hashed by the admin who set
/// it) and gets a user token.
async fn login(
    State(s): State<AppState>,
    payload: Result<Json<LoginInput>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let input = body(payload)?;
    let refused = || ApiError::unauthorized_with("wrong address or password");
    let a = Address::parse(&input.address).map_err(|_| refused())?;
    let mb = s
        .store
        .mailbox_by_address(&a.to_string())?
        .ok_or_else(refused)?;
    let hash = s.store.password_hash(mb.id)?.ok_or_else(refused)?;
    let password = input.password;
    let ok = tokio::task::spawn_blocking(move || crate::password::verify(&password, &hash))
        .await
        .unwrap_or(false);
    if !ok {
        return Err(refused());
    }
    let token = id::new_token();
    let expires = s.clock.now().plus_seconds(USER_TOKEN_SECS);
    s.store
        .add_token(
            &hash_token(&token),
            TokenInfo {
                role: Role::User,
                tenant_id: Some(mb.tenant_id),
                mailbox_id: Some(mb.id),
                expires: Some(expires),
            },
        )
        .await?;
    Ok(Json(
        json!({ "token": token, "role": "user", "address": mb.address, "expires": Timestamp::to_rfc3339(expires) }),
    ))
}
