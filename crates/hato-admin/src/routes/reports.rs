//! Users' junk / not-junk reports of delivered mail (Outlook's Report message; Exchange's
//! user-reported messages): stored for the classifier to learn from, recorded on the message's
//! trace, and a junk report counted against the sending IP's reputation. A user reports only
//! mail delivered to their own mailbox, a global admin any recipient of their tenant; anything
//! else is answered 404, as if it did not exist, so no one learns of another's mail.

use super::common::{SpamReportView, actor_name, counted_report};
use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiResult, AppState, body, requested_tenant};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use hato_core::Address;
use hato_core::auth::Principal;
use hato_store::{NewSpamReport, SpamReportVerdict};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(report))
}

/// A trace id is a UUID; anything much longer is not one.
const TRACE_ID_MAX: usize = 100;

/// A report of one delivered message.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewReport {
    /// The message's trace id (`hato trace`, the `X-MS-Exchange-Organization-Network-Message-Id`
    /// hato stamps).
    trace_id: String,
    /// The recipient whose copy is reported.
    recipient: String,
    /// `junk` or `not-junk`.
    verdict: String,
    /// The operator names the tenant; others report in their own.
    tenant: Option<String>,
}

/// Report a delivered message as junk or not junk. The same reporter reporting the same again
/// changes nothing (`recorded` false); the opposite replaces the earlier report.
#[utoipa::path(
    post,
    path = "/api/v1/reports",
    tag = "reports",
    request_body = NewReport,
    responses(
        (status = 200, description = "The report as stored", body = SpamReportView),
        (status = 400, description = "A bad verdict, recipient or trace id, or no tenant named by the operator", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A caller without a mailbox who is not a global admin", body = ErrorBody),
        (status = 404, description = "No such message delivered to that recipient that the caller may report", body = ErrorBody),
    )
)]
async fn report(
    State(s): State<AppState>,
    p: Principal,
    payload: Result<Json<NewReport>, JsonRejection>,
) -> ApiResult<Json<SpamReportView>> {
    let input = body(payload)?;
    let verdict = SpamReportVerdict::parse(&input.verdict).ok_or_else(|| {
        ApiError::bad_request(format!(
            "verdict: {:?} is not one of junk, not-junk",
            input.verdict
        ))
    })?;
    let recipient = Address::parse(input.recipient.trim())
        .map_err(|e| {
            ApiError::bad_request(format!(
                "recipient: {:?} is not an address: {e}",
                input.recipient
            ))
        })?
        .to_string();
    let trace_id = input.trace_id.trim().to_string();
    if trace_id.is_empty()
        || trace_id.len() > TRACE_ID_MAX
        || !trace_id.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ApiError::bad_request(format!(
            "trace_id: {:?} is not a trace id",
            input.trace_id
        )));
    }
    // Users (and recipient admins) report what reached their own mailbox; global admins any
    // recipient of their tenant.
    let mailbox = if p.is_global_admin() {
        None
    } else {
        Some(p.mailbox_id.ok_or_else(|| {
            ApiError::forbidden("only a mailbox's user or a global admin may report mail")
        })?)
    };
    let (tenant, reporter) = s
        .blocking(move |s| {
            let t = requested_tenant(s, &p, input.tenant.as_deref())?;
            Ok((t.id, actor_name(s, &p)?))
        })
        .await?;
    let outcome = s
        .store
        .report_spam(NewSpamReport {
            tenant,
            trace_id: trace_id.clone(),
            recipient: recipient.clone(),
            mailbox,
            verdict,
            reporter,
            now: s.clock.now(),
        })
        .await
        .map_err(|e| match e {
            hato_store::StoreError::NotFound(_) => ApiError::not_found(format!(
                "no message {trace_id} delivered to {recipient} that you may report"
            )),
            e => e.into(),
        })?;
    Ok(Json(counted_report(&s, outcome)))
}
