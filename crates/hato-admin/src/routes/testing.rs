//! The test clock (`[testing] manual_clock = true`, for end-to-end tests only): the operator
//! reads it and moves it forward. Without the setting every request here answers 404.

use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiResult, AppState, body, require_operator};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use hato_core::Clock;
use hato_core::auth::Principal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show, advance))
}

/// The longest single move: a year.
const MAX_ADVANCE_SECS: i64 = 366 * 86_400;

#[derive(Serialize, ToSchema)]
struct ClockView {
    /// The server's time now, RFC 3339, UTC.
    now: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ClockAdvance {
    /// Seconds to move the clock forward (1 to 31,622,400); it never moves back.
    advance_seconds: i64,
}

fn test_clock(s: &AppState) -> ApiResult<&crate::TestClock> {
    s.test_clock.as_deref().ok_or_else(|| {
        ApiError::not_found(
            "no test clock: the server runs on the system clock ([testing] manual_clock is off)",
        )
    })
}

/// The test clock's time.
#[utoipa::path(
    get,
    path = "/api/v1/testing/clock",
    tag = "testing",
    responses(
        (status = 200, description = "The time", body = ClockView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the operator", body = ErrorBody),
        (status = 404, description = "The server has no test clock", body = ErrorBody),
    )
)]
async fn show(State(s): State<AppState>, p: Principal) -> ApiResult<Json<ClockView>> {
    let clock = test_clock(&s)?;
    require_operator(&p)?;
    Ok(Json(ClockView {
        now: clock.now().to_rfc3339(),
    }))
}

/// Move the test clock forward; the delivery and outbound agents look at the queue at once.
#[utoipa::path(
    post,
    path = "/api/v1/testing/clock",
    tag = "testing",
    request_body = ClockAdvance,
    responses(
        (status = 200, description = "The time after the move", body = ClockView),
        (status = 400, description = "Not JSON, or advance_seconds out of range", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the operator", body = ErrorBody),
        (status = 404, description = "The server has no test clock", body = ErrorBody),
    )
)]
async fn advance(
    State(s): State<AppState>,
    p: Principal,
    payload: Result<Json<ClockAdvance>, JsonRejection>,
) -> ApiResult<Json<ClockView>> {
    let clock = test_clock(&s)?;
    require_operator(&p)?;
    let input = body(payload)?;
    if !(1..=MAX_ADVANCE_SECS).contains(&input.advance_seconds) {
        return Err(ApiError::bad_request(format!(
            "advance_seconds: must be from 1 to {MAX_ADVANCE_SECS} (the clock only moves forward), got {}",
            input.advance_seconds
        )));
    }
    let now = clock.advance(input.advance_seconds);
    tracing::info!(
        "test clock moved {}s forward to {}",
        input.advance_seconds,
        now.to_rfc3339()
    );
    Ok(Json(ClockView {
        now: now.to_rfc3339(),
    }))
}
