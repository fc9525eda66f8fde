//! Users' login: a mailbox address and password for a user token, within the login limits
//! (`crate::login_limit`): per-address and per-IP lockouts with back-off, a bound on concurrent
//! password hashes, and the same work and answer for an unknown address as for a wrong password.

use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::login_limit::address_key;
use crate::state::{ApiResult, AppState, ClientIp, body};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hato_core::auth::Role;
use hato_core::directory::Mailbox;
use hato_core::{Address, Timestamp, id};
use hato_store::{TokenInfo, hash_token};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(login))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginInput {
    /// The mailbox's primary address or an alias.
    address: String,
    #[schema(write_only)]
    password: String,
}

/// A user's token.
#[derive(Serialize, ToSchema)]
struct UserToken {
    /// Send as `Authorization: Bearer TOKEN`.
    token: String,
    /// Always `user`; a member of a role group acts with its role.
    role: &'static str,
    /// The mailbox's primary address.
    address: String,
    /// RFC 3339, UTC: 12 hours after the login.
    expires: String,
}

/// How long a user's token lasts.
const USER_TOKEN_SECS: i64 = 12 * 3600;

fn too_many(retry_after_secs: u64) -> Response {
    let mut r = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many failed logins; try again in {retry_after_secs} seconds"),
    )
    .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    r
}

/// A user logs in with their mailbox address and password (argon2-hashed by the admin who set
/// it) and gets a user token (no token needed).
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "users",
    security(),
    request_body = LoginInput,
    responses(
        (status = 200, description = "The user's token, valid for 12 hours", body = UserToken),
        (status = 400, description = "Not JSON, or other fields", body = ErrorBody),
        (status = 401, description = "Wrong address or password (the same answer, and work, for an unknown address)", body = ErrorBody),
        (status = 429, description = "Too many failed logins for this address or client IP; even the right password waits",
            headers(("Retry-After" = u64, description = "Seconds until the next try")), body = ErrorBody),
        (status = 503, description = "Too many logins at once; try again in a few seconds", body = ErrorBody),
    )
)]
async fn login(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    payload: Result<Json<LoginInput>, JsonRejection>,
) -> ApiResult<Response> {
    let input = body(payload)?;
    let mb = match check_password(&s, ip, &input.address, input.password).await {
        Ok(mb) => mb,
        Err(LoginRefused::Locked(secs)) => return Ok(too_many(secs)),
        Err(LoginRefused::Wrong) => {
            return Err(ApiError::unauthorized_with("wrong address or password"));
        }
        Err(LoginRefused::Busy) => return Err(busy()),
        Err(LoginRefused::Failed(e)) => return Err(e),
    };
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
    Ok(Json(UserToken {
        token,
        role: "user",
        address: mb.address,
        expires: Timestamp::to_rfc3339(expires),
    })
    .into_response())
}

/// Why a login was refused.
pub(crate) enum LoginRefused {
    /// The address or the client IP is locked for this many seconds (the password was not
    /// even checked: the right one is refused too).
    Locked(u64),
    /// A wrong address or password (the same answer, and work, for an unknown address).
    Wrong,
    /// Too many password checks at once.
    Busy,
    Failed(ApiError),
}

pub(crate) fn busy() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the server is busy checking other logins; try again in a few seconds",
    )
}

/// Checks a mailbox's address and password within the login limits, and counts the outcome
/// against them: the API's login and the console's sign-in form both go through here.
pub(crate) async fn check_password(
    s: &AppState,
    ip: std::net::IpAddr,
    address: &str,
    password: String,
) -> Result<Mailbox, LoginRefused> {
    let key = address_key(address);
    // While locked, the password is not even checked: the right one gets 429 too.
    if let Err(locked) = s.login.check(&key, ip) {
        return Err(LoginRefused::Locked(locked.retry_after_secs));
    }
    let address = address.to_string();
    let (account, stored) = s
        .blocking(move |s| {
            let account = match Address::parse(&address) {
                Ok(a) => s.store.mailbox_by_address(&a.to_string())?,
                Err(_) => None,
            };
            let stored = match &account {
                Some(mb) => s.store.password_hash(mb.id)?,
                None => None,
            };
            Ok((account, stored))
        })
        .await
        .map_err(LoginRefused::Failed)?;
    let known = stored.is_some();
    let hash = match stored {
        Some(h) => h,
        None => crate::password::dummy_hash()
            .ok_or_else(|| {
                LoginRefused::Failed(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "could not prepare the password check",
                ))
            })?
            .to_string(),
    };
    let permit = s.login.hash_permit().await.ok_or(LoginRefused::Busy)?;
    let verified = tokio::task::spawn_blocking(move || crate::password::verify(&password, &hash))
        .await
        .unwrap_or(false);
    drop(permit);
    match account {
        Some(mb) if verified && known => {
            s.login.succeeded(&key);
            Ok(mb)
        }
        _ => {
            s.login.failed(&key, ip);
            Err(LoginRefused::Wrong)
        }
    }
}
