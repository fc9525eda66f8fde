//! A tenant's inbound connectors (Exchange's `Get-`/`New-`/`Set-`/`Remove-InboundConnector`,
//! `exchange-online-behaviour.md` §9.1) under `/api/v1/tenants/{tenant}/connectors/inbound`:
//! global admins of the tenant and the operator, as the tenant's other mail-flow settings.
//! Every value is checked before anything is stored, each refusal naming the setting
//! (`hato_protection::connector`). An on-premises connector whose IP is on another tenant's
//! on-premises connector is refused (409, naming that connector and tenant: the seed's E3
//! shared-IP pitfall) unless `force`. On-premises connectors' IPs are throttle exemptions of
//! their tenant while they exist and are enabled; the throttle takes each change at once.
//! Outbound connectors will live here too.

use crate::error::{ApiError, ErrorBody};
use crate::state::{
    ApiResult, AppState, Path, body, reload_throttle_exemptions, require_global_admin,
    visible_tenant,
};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use hato_core::auth::Principal;
use hato_protection::connector::{
    ConnectorError, ConnectorType, InboundConnector, certificate_name, sender_domain, sender_ip,
};
use hato_store::InboundConnectorRecord;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, change, remove))
}

/// An inbound connector, Exchange's parameters in snake case, every setting with its value.
#[derive(Serialize, ToSchema)]
pub(crate) struct InboundConnectorView {
    tenant: String,
    name: String,
    /// `on-premises` or `partner`.
    connector_type: String,
    /// Addresses and CIDR blocks, canonical.
    sender_ip_addresses: Vec<String>,
    /// `example.com`, `*.example.com`, `*`.
    sender_domains: Vec<String>,
    /// Partner: mail from its domains without STARTTLS is refused (default true, as the
    /// `New-InboundConnector` page states).
    require_tls: bool,
    restrict_domains_to_ip_addresses: bool,
    restrict_domains_to_certificate: bool,
    tls_sender_certificate_name: Option<String>,
    /// On-premises: hato's own header fields from this server are kept.
    cloud_services_mail_enabled: bool,
    enabled: bool,
    comment: String,
    /// RFC 3339, UTC.
    created: String,
    updated: String,
}

fn view(r: InboundConnectorRecord) -> InboundConnectorView {
    let c = r.connector;
    InboundConnectorView {
        tenant: r.tenant,
        name: r.name,
        connector_type: c.connector_type.name().into(),
        sender_ip_addresses: c.sender_ip_addresses,
        sender_domains: c.sender_domains,
        require_tls: c.require_tls,
        restrict_domains_to_ip_addresses: c.restrict_domains_to_ip_addresses,
        restrict_domains_to_certificate: c.restrict_domains_to_certificate,
        tls_sender_certificate_name: c.tls_sender_certificate_name,
        cloud_services_mail_enabled: c.cloud_services_mail_enabled,
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
    /// `on-premises` or `partner` (Exchange's `OnPremises`/`Partner` too); required to add.
    connector_type: Option<String>,
    sender_ip_addresses: Option<Vec<String>>,
    sender_domains: Option<Vec<String>>,
    require_tls: Option<bool>,
    restrict_domains_to_ip_addresses: Option<bool>,
    restrict_domains_to_certificate: Option<bool>,
    /// `""` clears it.
    tls_sender_certificate_name: Option<String>,
    cloud_services_mail_enabled: Option<bool>,
    enabled: Option<bool>,
    comment: Option<String>,
    /// Register IPs that are on another tenant's on-premises connector anyway.
    #[serde(default)]
    force: bool,
}

/// Applies `change` to `current` and checks the result as `Set-InboundConnector` would.
fn apply(mut c: InboundConnector, change: ConnectorChange) -> Result<InboundConnector, String> {
    let e = |e: ConnectorError| e.to_string();
    if let Some(t) = change.connector_type {
        c.connector_type = ConnectorType::parse(&t).ok_or_else(|| e(ConnectorError::Type(t)))?;
    }
    if let Some(ips) = change.sender_ip_addresses {
        let mut out: Vec<String> = Vec::new();
        for ip in ips.iter().filter(|i| !i.trim().is_empty()) {
            let canonical = sender_ip(ip).map_err(e)?.to_string();
            if !out.contains(&canonical) {
                out.push(canonical);
            }
        }
        c.sender_ip_addresses = out;
    }
    if let Some(domains) = change.sender_domains {
        let mut out: Vec<String> = Vec::new();
        for d in domains.iter().filter(|d| !d.trim().is_empty()) {
            let canonical = sender_domain(d).map_err(e)?;
            if !out.contains(&canonical) {
                out.push(canonical);
            }
        }
        c.sender_domains = out;
    }
    if let Some(name) = change.tls_sender_certificate_name {
        c.tls_sender_certificate_name = if name.trim().is_empty() {
            None
        } else {
            Some(certificate_name(&name).map_err(e)?)
        };
    }
    let flags = [
        (change.require_tls, &mut c.require_tls),
        (
            change.restrict_domains_to_ip_addresses,
            &mut c.restrict_domains_to_ip_addresses,
        ),
        (
            change.restrict_domains_to_certificate,
            &mut c.restrict_domains_to_certificate,
        ),
        (
            change.cloud_services_mail_enabled,
            &mut c.cloud_services_mail_enabled,
        ),
        (change.enabled, &mut c.enabled),
    ];
    for (given, slot) in flags {
        if let Some(v) = given {
            *slot = v;
        }
    }
    if let Some(comment) = change.comment {
        c.comment = comment;
    }
    c.validate().map_err(e)?;
    Ok(c)
}

/// A connector's name: 1 to 64 characters, no control characters, no `/` (it is a path
/// segment).
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

/// The tenant's inbound connectors, by name.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/connectors/inbound",
    tag = "connectors",
    params(("tenant" = String, Path, description = "The tenant's name")),
    responses(
        (status = 200, description = "The connectors, by name", body = [InboundConnectorView]),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(s): State<AppState>,
    p: Principal,
    Path(tenant): Path<String>,
) -> ApiResult<Json<Vec<InboundConnectorView>>> {
    require_global_admin(&p)?;
    s.blocking(move |s| {
        let t = visible_tenant(s, &p, &tenant)?;
        let all = s.store.inbound_connectors(t.id)?;
        Ok(Json(all.into_iter().map(view).collect()))
    })
    .await
}

/// One inbound connector.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/connectors/inbound/{name}",
    tag = "connectors",
    params(
        ("tenant" = String, Path, description = "The tenant's name"),
        ("name" = String, Path, description = "The connector's name (any case)"),
    ),
    responses(
        (status = 200, description = "The connector, every setting with its value", body = InboundConnectorView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant or connector (or another tenant's)", body = ErrorBody),
    )
)]
pub(crate) async fn show(
    State(s): State<AppState>,
    p: Principal,
    Path((tenant, name)): Path<(String, String)>,
) -> ApiResult<Json<InboundConnectorView>> {
    require_global_admin(&p)?;
    s.blocking(move |s| {
        let t = visible_tenant(s, &p, &tenant)?;
        Ok(Json(view(s.store.inbound_connector(t.id, &name)?)))
    })
    .await
}

/// A new inbound connector: its name and what `PATCH` takes (`connector_type` required).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewConnector {
    name: String,
    #[serde(flatten)]
    settings: ConnectorChange,
}

/// Add an inbound connector (`New-InboundConnector`): Exchange's defaults for what is not given.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/connectors/inbound",
    tag = "connectors",
    params(("tenant" = String, Path, description = "The tenant's name")),
    request_body = NewConnector,
    responses(
        (status = 201, description = "The new connector", body = InboundConnectorView),
        (status = 400, description = "A bad value or a rule between settings broken (the setting named), no connector_type, too many connectors, or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
        (status = 409, description = "The tenant has a connector of that name, or an IP is on another tenant's on-premises connector (without force)", body = ErrorBody),
    )
)]
pub(crate) async fn create(
    State(s): State<AppState>,
    p: Principal,
    Path(tenant): Path<String>,
    payload: Result<Json<NewConnector>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<InboundConnectorView>)> {
    require_global_admin(&p)?;
    let input = body(payload)?;
    let name = check_name(&input.name)?;
    if input.settings.connector_type.is_none() {
        return Err(ApiError::bad_request(
            "connector-type is required: on-premises (your organisation's mail server) or partner (another organisation or service)",
        ));
    }
    let force = input.settings.force;
    let connector =
        apply(InboundConnector::default(), input.settings).map_err(ApiError::bad_request)?;
    let t = s.blocking(move |s| visible_tenant(s, &p, &tenant)).await?;
    let stored = s
        .store
        .add_inbound_connector(t.id, &name, connector, force)
        .await?;
    s.blocking(reload_throttle_exemptions).await?;
    Ok((StatusCode::CREATED, Json(view(stored))))
}

/// Change an inbound connector (`Set-InboundConnector`): nothing changes when one value is
/// refused.
#[utoipa::path(
    patch,
    path = "/api/v1/tenants/{tenant}/connectors/inbound/{name}",
    tag = "connectors",
    params(
        ("tenant" = String, Path, description = "The tenant's name"),
        ("name" = String, Path, description = "The connector's name (any case)"),
    ),
    request_body = ConnectorChange,
    responses(
        (status = 200, description = "The connector after the change", body = InboundConnectorView),
        (status = 400, description = "A bad value or a rule between settings broken (the setting named), or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant or connector (or another tenant's)", body = ErrorBody),
        (status = 409, description = "A new IP is on another tenant's on-premises connector (without force)", body = ErrorBody),
    )
)]
pub(crate) async fn change(
    State(s): State<AppState>,
    p: Principal,
    Path((tenant, name)): Path<(String, String)>,
    payload: Result<Json<ConnectorChange>, JsonRejection>,
) -> ApiResult<Json<InboundConnectorView>> {
    require_global_admin(&p)?;
    let input = body(payload)?;
    let force = input.force;
    let (t, current) = s
        .blocking(move |s| {
            let t = visible_tenant(s, &p, &tenant)?;
            let current = s.store.inbound_connector(t.id, &name)?;
            Ok((t, current))
        })
        .await?;
    let changed = apply(current.connector, input).map_err(ApiError::bad_request)?;
    let stored = s
        .store
        .set_inbound_connector(t.id, &current.name, changed, force)
        .await?;
    s.blocking(reload_throttle_exemptions).await?;
    Ok(Json(view(stored)))
}

/// Remove an inbound connector (its IPs stop being throttle exemptions).
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/connectors/inbound/{name}",
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
    s.store.remove_inbound_connector(t.id, &name).await?;
    s.blocking(reload_throttle_exemptions).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_canonicalises_its_values_and_names_the_bad_one() {
        let c = apply(
            InboundConnector::default(),
            ConnectorChange {
                connector_type: Some("OnPremises".into()),
                sender_ip_addresses: Some(vec![
                    "192.0.2.9/24".into(),
                    "192.0.2.0/24".into(),
                    " ".into(),
                ]),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.connector_type, ConnectorType::OnPremises);
        assert_eq!(c.sender_ip_addresses, ["192.0.2.0/24"]);
        let e = apply(
            c.clone(),
            ConnectorChange {
                connector_type: Some("hybrid".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            e,
            "connector-type: \"hybrid\" is not one of on-premises, partner"
        );
        let e = apply(
            c.clone(),
            ConnectorChange {
                sender_domains: Some(vec!["mail.*.example.com".into()]),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(
            e.starts_with("sender-domains: \"mail.*.example.com\""),
            "{e}"
        );
        // Clearing the IPs of an on-premises connector leaves it unmatched: refused.
        let e = apply(
            c,
            ConnectorChange {
                sender_ip_addresses: Some(vec![]),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(
            e.contains("needs sender-ip-addresses or tls-sender-certificate-name"),
            "{e}"
        );
    }
}
