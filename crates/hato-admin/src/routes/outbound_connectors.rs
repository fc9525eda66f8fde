//! A tenant's outbound connectors (Exchange's `Get-`/`New-`/`Set-`/`Remove-OutboundConnector`
//! and the EAC's "Validate this connector", `exchange-online-behaviour.md` §9.2) under
//! `/api/v1/tenants/{tenant}/connectors/outbound`: global admins of the tenant and the
//! operator, as inbound connectors. Every value is checked before anything is stored, each
//! refusal naming the setting (`hato_protection::outbound_connector`). The outbound agent
//! takes a change with its next batch (the store's connector version moves).

use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiResult, AppState, Path, body, require_global_admin, visible_tenant};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use hato_core::Address;
use hato_core::auth::Principal;
use hato_protection::connector::ConnectorType;
use hato_protection::outbound_connector::{
    OutboundConnector, OutboundConnectorError, OutboundTls, recipient_domain, smart_host,
    tls_domain,
};
use hato_store::OutboundConnectorRecord;
use hato_transport::outbound::OutboundSettings;
use hato_transport::outbound_connectors::{Held, validate as deliver_test};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, change, remove))
        .routes(routes!(validate))
}

/// An outbound connector, Exchange's parameters in snake case, every setting with its value.
#[derive(Serialize, ToSchema)]
pub(crate) struct OutboundConnectorView {
    tenant: String,
    name: String,
    /// `partner` or `on-premises`.
    connector_type: String,
    /// `example.com`, `*.example.com`, `*`.
    recipient_domains: Vec<String>,
    all_accepted_domains: bool,
    /// `host[:port]`, `ip[:port]`, `[ipv6]:port`.
    smart_hosts: Vec<String>,
    use_mx_record: bool,
    /// `encryption-only`, `certificate-validation`, `domain-validation`; `null`:
    /// opportunistic STARTTLS.
    tls_settings: Option<String>,
    tls_domain: Option<String>,
    is_transport_rule_scoped: bool,
    enabled: bool,
    comment: String,
    /// RFC 3339, UTC.
    created: String,
    updated: String,
}

fn view(r: OutboundConnectorRecord) -> OutboundConnectorView {
    let c = r.connector;
    OutboundConnectorView {
        tenant: r.tenant,
        name: r.name,
        connector_type: c.connector_type.name().into(),
        recipient_domains: c.recipient_domains,
        all_accepted_domains: c.all_accepted_domains,
        smart_hosts: c.smart_hosts,
        use_mx_record: c.use_mx_record,
        tls_settings: c.tls_settings.map(|t| t.name().to_string()),
        tls_domain: c.tls_domain,
        is_transport_rule_scoped: c.is_transport_rule_scoped,
        enabled: c.enabled,
        comment: c.comment,
        created: r.created.to_rfc3339(),
        updated: r.updated.to_rfc3339(),
    }
}

/// A change: only the settings given change; a list given replaces the list (`[]` clears it).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConnectorChange {
    /// `partner` (default) or `on-premises`.
    connector_type: Option<String>,
    recipient_domains: Option<Vec<String>>,
    all_accepted_domains: Option<bool>,
    /// Given non-empty, the connector sends to them (`use_mx_record` becomes false).
    smart_hosts: Option<Vec<String>>,
    /// `true` clears the smart hosts; `false` needs smart hosts.
    use_mx_record: Option<bool>,
    /// `encryption-only`, `certificate-validation`, `domain-validation`; `""` clears it.
    tls_settings: Option<String>,
    /// `""` clears it.
    tls_domain: Option<String>,
    is_transport_rule_scoped: Option<bool>,
    enabled: Option<bool>,
    comment: Option<String>,
}

/// Applies `change` to `c` and checks the result as `Set-OutboundConnector` would.
fn apply(mut c: OutboundConnector, change: ConnectorChange) -> Result<OutboundConnector, String> {
    let e = |e: OutboundConnectorError| e.to_string();
    if let Some(t) = change.connector_type {
        c.connector_type =
            ConnectorType::parse(&t).ok_or_else(|| e(OutboundConnectorError::Type(t)))?;
    }
    if let Some(domains) = change.recipient_domains {
        let mut out: Vec<String> = Vec::new();
        for d in domains.iter().filter(|d| !d.trim().is_empty()) {
            let canonical = recipient_domain(d).map_err(e)?;
            if !out.contains(&canonical) {
                out.push(canonical);
            }
        }
        c.recipient_domains = out;
    }
    if let Some(all) = change.all_accepted_domains {
        c.all_accepted_domains = all;
    }
    if change.use_mx_record == Some(true)
        && change
            .smart_hosts
            .as_ref()
            .is_some_and(|h| h.iter().any(|h| !h.trim().is_empty()))
    {
        return Err(e(OutboundConnectorError::SmartHostsAndMx));
    }
    if let Some(hosts) = change.smart_hosts {
        let mut out: Vec<String> = Vec::new();
        for h in hosts.iter().filter(|h| !h.trim().is_empty()) {
            let canonical = smart_host(h).map_err(e)?;
            if !out.contains(&canonical) {
                out.push(canonical);
            }
        }
        // Exchange: UseMXRecord is $true exactly when there are no smart hosts.
        c.use_mx_record = out.is_empty();
        c.smart_hosts = out;
    }
    match change.use_mx_record {
        Some(true) => {
            c.use_mx_record = true;
            c.smart_hosts.clear();
        }
        Some(false) => c.use_mx_record = false,
        None => {}
    }
    if let Some(t) = change.tls_settings {
        c.tls_settings = if t.trim().is_empty() {
            None
        } else {
            Some(OutboundTls::parse(&t).ok_or_else(|| e(OutboundConnectorError::Tls(t)))?)
        };
    }
    if let Some(d) = change.tls_domain {
        c.tls_domain = if d.trim().is_empty() {
            None
        } else {
            Some(tls_domain(&d).map_err(e)?)
        };
    }
    if let Some(v) = change.is_transport_rule_scoped {
        c.is_transport_rule_scoped = v;
    }
    if let Some(v) = change.enabled {
        c.enabled = v;
    }
    if let Some(comment) = change.comment {
        c.comment = comment;
    }
    c.validate().map_err(e)?;
    Ok(c)
}

/// A connector's name: 1 to 64 characters, no control characters, no `/` (a path segment).
fn check_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > 64
        || name.chars().any(|c| c.is_control() || c == '/')
    {
        return Err(ApiError::bad_request(format!(
            "name {name:?}: 1 to 64 characters, no control characters or /"
        )));
    }
    Ok(name.to_string())
}

/// The tenant's outbound connectors, by name.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/connectors/outbound",
    tag = "connectors",
    params(("tenant" = String, Path, description = "The tenant's name")),
    responses(
        (status = 200, description = "The connectors, by name", body = [OutboundConnectorView]),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(s): State<AppState>,
    p: Principal,
    Path(tenant): Path<String>,
) -> ApiResult<Json<Vec<OutboundConnectorView>>> {
    super::common::tenant_read(&s, p, tenant, |s, t| {
        let all = s.store.outbound_connectors(t.id)?;
        Ok(Json(all.into_iter().map(view).collect()))
    })
    .await
}

/// One outbound connector.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/connectors/outbound/{name}",
    tag = "connectors",
    params(
        ("tenant" = String, Path, description = "The tenant's name"),
        ("name" = String, Path, description = "The connector's name (any case)"),
    ),
    responses(
        (status = 200, description = "The connector, every setting with its value", body = OutboundConnectorView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant or connector (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn show(
    State(s): State<AppState>,
    p: Principal,
    Path((tenant, name)): Path<(String, String)>,
) -> ApiResult<Json<OutboundConnectorView>> {
    require_global_admin(&p)?;
    s.blocking(move |s| {
        let t = visible_tenant(s, &p, &tenant)?;
        Ok(Json(view(s.store.outbound_connector(t.id, &name)?)))
    })
    .await
}

/// A new outbound connector: its name and what `PATCH` takes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewConnector {
    name: String,
    #[serde(flatten)]
    settings: ConnectorChange,
}

/// Add an outbound connector (`New-OutboundConnector`): Exchange's defaults for what is not
/// given (partner, UseMXRecord without smart hosts, opportunistic TLS, enabled).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/connectors/outbound",
    tag = "connectors",
    params(("tenant" = String, Path, description = "The tenant's name")),
    request_body = NewConnector,
    responses(
        (status = 201, description = "The new connector", body = OutboundConnectorView),
        (status = 400, description = "A bad value or a rule between settings broken (the setting named), too many connectors, or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
        (status = 409, description = "The tenant has a connector of that name", body = ErrorBody),
    )
)]
pub(crate) async fn create(
    State(s): State<AppState>,
    p: Principal,
    Path(tenant): Path<String>,
    payload: Result<Json<NewConnector>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<OutboundConnectorView>)> {
    require_global_admin(&p)?;
    let input = body(payload)?;
    let name = check_name(&input.name)?;
    let connector =
        apply(OutboundConnector::default(), input.settings).map_err(ApiError::bad_request)?;
    let t = s.blocking(move |s| visible_tenant(s, &p, &tenant)).await?;
    let stored = s
        .store
        .add_outbound_connector(t.id, &name, connector)
        .await?;
    Ok((StatusCode::CREATED, Json(view(stored))))
}

/// Change an outbound connector (`Set-OutboundConnector`): nothing changes when one value is
/// refused.
#[utoipa::path(
    patch,
    path = "/api/v1/tenants/{tenant}/connectors/outbound/{name}",
    tag = "connectors",
    params(
        ("tenant" = String, Path, description = "The tenant's name"),
        ("name" = String, Path, description = "The connector's name (any case)"),
    ),
    request_body = ConnectorChange,
    responses(
        (status = 200, description = "The connector after the change", body = OutboundConnectorView),
        (status = 400, description = "A bad value or a rule between settings broken (the setting named), or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant or connector (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn change(
    State(s): State<AppState>,
    p: Principal,
    Path((tenant, name)): Path<(String, String)>,
    payload: Result<Json<ConnectorChange>, JsonRejection>,
) -> ApiResult<Json<OutboundConnectorView>> {
    require_global_admin(&p)?;
    let input = body(payload)?;
    let (t, current) = s
        .blocking(move |s| {
            let t = visible_tenant(s, &p, &tenant)?;
            let current = s.store.outbound_connector(t.id, &name)?;
            Ok((t, current))
        })
        .await?;
    let changed = apply(current.connector, input).map_err(ApiError::bad_request)?;
    let stored = s
        .store
        .set_outbound_connector(t.id, &current.name, changed)
        .await?;
    Ok(Json(view(stored)))
}

/// Remove an outbound connector.
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/connectors/outbound/{name}",
    tag = "connectors",
    params(
        ("tenant" = String, Path, description = "The tenant's name"),
        ("name" = String, Path, description = "The connector's name (any case)"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant or connector", body = ErrorBody),
    )
)]
pub(crate) async fn remove(
    State(s): State<AppState>,
    p: Principal,
    Path((tenant, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    require_global_admin(&p)?;
    let t = s.blocking(move |s| visible_tenant(s, &p, &tenant)).await?;
    s.store.remove_outbound_connector(t.id, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What to validate a connector with.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ValidateRequest {
    /// Where the test message goes.
    recipient: String,
    /// Its envelope and From address; default `postmaster@` the server's host name.
    sender: Option<String>,
}

/// The validation's outcome.
#[derive(Serialize, ToSchema)]
pub(crate) struct ValidationView {
    connector: String,
    recipient: String,
    /// Whether a host took the test message (250 after the data).
    delivered: bool,
    /// `OK: …` or `FAILED: …`.
    summary: String,
    /// The SMTP session(s): `C: ` commands, `S: ` replies, `* ` notes.
    transcript: Vec<String>,
}

/// Validate an outbound connector: really deliver a short test message through it (its smart
/// hosts or the recipient domain's MX hosts, its TLS settings) and answer with the SMTP
/// transcript. A disabled connector is validated too (validating it before turning it on is
/// the point, reference §9.2).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/connectors/outbound/{name}/validate",
    tag = "connectors",
    params(
        ("tenant" = String, Path, description = "The tenant's name"),
        ("name" = String, Path, description = "The connector's name (any case)"),
    ),
    request_body = ValidateRequest,
    responses(
        (status = 200, description = "The attempt, delivered or not, with its transcript", body = ValidationView),
        (status = 400, description = "The recipient or sender is not an address", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant or connector", body = ErrorBody),
    )
)]
pub(crate) async fn validate(
    State(s): State<AppState>,
    p: Principal,
    Path((tenant, name)): Path<(String, String)>,
    payload: Result<Json<ValidateRequest>, JsonRejection>,
) -> ApiResult<Json<ValidationView>> {
    require_global_admin(&p)?;
    let input = body(payload)?;
    let recipient = Address::parse(input.recipient.trim())
        .map_err(|e| ApiError::bad_request(format!("recipient {:?}: {e}", input.recipient)))?
        .to_string();
    let settings = match &s.outbound {
        Some(o) => (**o).clone(),
        None => OutboundSettings::new(&s.hostname),
    };
    let sender = match input.sender {
        Some(a) => Address::parse(a.trim())
            .map_err(|e| ApiError::bad_request(format!("sender {a:?}: {e}")))?
            .to_string(),
        None => format!("postmaster@{}", settings.normal.helo_name),
    };
    let record = s
        .blocking(move |s| {
            let t = visible_tenant(s, &p, &tenant)?;
            Ok(s.store.outbound_connector(t.id, &name)?)
        })
        .await?;
    let held = Held {
        name: record.name,
        connector: record.connector,
    };
    let date = chrono::DateTime::<chrono::Utc>::from_timestamp_micros(s.clock.now().0)
        .unwrap_or_default()
        .to_rfc2822();
    let v = deliver_test(&held, &sender, &recipient, &*s.resolver, &settings, &date).await;
    Ok(Json(ValidationView {
        connector: v.connector,
        recipient: v.recipient,
        delivered: v.delivered,
        summary: v.summary,
        transcript: v.transcript,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_canonicalises_and_keeps_smart_hosts_and_mx_apart() {
        let c = apply(
            OutboundConnector::default(),
            ConnectorChange {
                recipient_domains: Some(vec!["Contoso.TEST".into(), "contoso.test".into()]),
                smart_hosts: Some(vec!["Relay.Contoso.test:2525".into()]),
                tls_settings: Some("DomainValidation".into()),
                tls_domain: Some("*.Contoso.test".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.recipient_domains, ["contoso.test"]);
        assert_eq!(c.smart_hosts, ["relay.contoso.test:2525"]);
        assert!(!c.use_mx_record);
        assert_eq!(c.tls_domain.as_deref(), Some("*.contoso.test"));
        // --use-mx-record clears the smart hosts, as Set-OutboundConnector -UseMXRecord $true.
        let mx = apply(
            c.clone(),
            ConnectorChange {
                use_mx_record: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(mx.use_mx_record && mx.smart_hosts.is_empty());
        let e = apply(
            c.clone(),
            ConnectorChange {
                use_mx_record: Some(true),
                smart_hosts: Some(vec!["192.0.2.1".into()]),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(
            e.starts_with("smart-hosts and use-mx-record exclude"),
            "{e}"
        );
        let e = apply(
            c,
            ConnectorChange {
                tls_settings: Some("strict".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.starts_with("tls-settings: \"strict\""), "{e}");
    }
}
