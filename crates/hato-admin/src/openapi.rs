//! The OpenAPI 3.1 description of the admin API, generated from the handlers (utoipa) and served at
//! `/api/v1/openapi.json`.
//!
//! Every handler carries its `#[utoipa::path(...)]` and is routed through `utoipa_axum::routes!`
//! (`routes/`), so the document and the router come from the same list; `routes::tests` checks
//! that they agree. What is common to every operation lives here: the title, the bearer scheme,
//! which every operation needs unless it says `security()`, and the tags.

use crate::error::ApiError;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hato admin API",
        description = "Tenants, domains, mailboxes, groups, contacts, rights, moderation, \
            message trace, the queue, connection filter policies, the connection log, the provider's block list, the quarantine and malware filter policies of a \
            hato server. Every error is `{\"error\": \"one line\"}`; another tenant's objects \
            answer 404 as if they did not exist."
    ),
    security(("bearer" = [])),
    modifiers(&BearerScheme),
    tags(
        (name = "meta", description = "This document"),
        (name = "tenants", description = "Tenants and tenant admins' tokens (the operator's)"),
        (name = "domains", description = "Accepted domains"),
        (name = "mailboxes", description = "Mailboxes, their passwords and permissions"),
        (name = "mail", description = "The messages in a mailbox"),
        (name = "trace", description = "Message trace"),
        (name = "queue", description = "The recipients waiting in the queue (read-only)"),
        (name = "users", description = "Users' login"),
        (name = "groups", description = "Groups, members, owners, joining and role groups"),
        (name = "group content", description = "Microsoft 365 groups' conversations, calendar and files"),
        (name = "moderation", description = "Messages held for moderated groups"),
        (name = "contacts", description = "Mail contacts"),
        (name = "throttle", description = "IP throttling: a sending IP's status, releases, tenants' exemption lists"),
        (name = "connectors", description = "Tenants' inbound connectors: on-premises servers (relay, attribution) and partners (TLS, IP restrictions)"),
        (name = "dkim", description = "Tenants' DKIM signing configs per accepted domain: keys, DNS records, rotation"),
        (name = "organization", description = "Tenants' organisation-wide settings (RejectDirectSend)"),
        (name = "outbound spam", description = "Tenants' outbound spam filter policies (recipient limits, the action when reached) and restricted senders"),
        (name = "connection filter", description = "A tenant's IP allow and block lists (its connection filter policy)"),
        (name = "connections", description = "The connection log: connections the edge refused, deferred or cut"),
        (name = "block list", description = "The provider's block list and its delist requests (the operator's)"),
        (name = "quarantine", description = "Messages held in quarantine: listing, preview, release, deletion"),
        (name = "malware filter", description = "A tenant's malware filter policy (common attachments filter, response, notifications)"),
        (name = "warm-up", description = "Outbound pools' warm-up plans, pacing and throttling back-offs (the operator's)"),
        (name = "testing", description = "The test clock of a server started with [testing] manual_clock (tests only)"),
    )
)]
pub(crate) struct ApiDoc;

/// The scheme named by every operation's `security`: `Authorization: Bearer TOKEN`.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The operator's token (data_dir/operator.token), a tenant admin's \
                         (POST /api/v1/tenants/{name}/tokens) or a user's (POST /api/v1/auth/login)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document, generated once: the routes do not change while the process runs.
fn document_text() -> &'static Result<String, String> {
    static TEXT: OnceLock<Result<String, String>> = OnceLock::new();
    TEXT.get_or_init(|| {
        crate::routes::api()
            .into_openapi()
            .to_json()
            .map_err(|e| e.to_string())
    })
}

/// This OpenAPI document (no token needed).
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    security(),
    responses(
        (status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json",
            body = Object),
        (status = 500, description = "The document could not be written", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn document() -> Response {
    match document_text() {
        Ok(text) => ([(header::CONTENT_TYPE, "application/json")], text.clone()).into_response(),
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot write the OpenAPI document: {e}"),
        )
        .into_response(),
    }
}
