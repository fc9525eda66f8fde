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
        .routes(routes!(validate))
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
    super::common::tenant_read(&s, p, tenant, |s, t| {
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

/// What to validate an inbound connector against: a connection as the edge would see it.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ValidateRequest {
    /// The client's IP (`--sender-ip-address`).
    sender_ip_address: String,
    /// The MAIL FROM address (`--sender-address`); none for the null sender.
    #[serde(default)]
    sender_address: Option<String>,
    /// The name on the client's TLS certificate, if it would present one.
    #[serde(default)]
    tls_certificate_name: Option<String>,
    /// Whether the client uses STARTTLS (default: it does when a certificate name is given).
    #[serde(default)]
    tls: Option<bool>,
}

/// What the edge would make of such a connection (hato's own: Exchange has no such check).
#[derive(Serialize, ToSchema)]
pub(crate) struct InboundValidation {
    tenant: String,
    /// The connector validated.
    connector: String,
    connector_type: String,
    enabled: bool,
    sender_ip_address: String,
    sender_address: Option<String>,
    /// Whether this connector's `--sender-ip-addresses` hold the IP.
    lists_ip: bool,
    /// The on-premises connector the edge attributes the connection to, as
    /// `tenant/connector` (another tenant's connector is not named to a tenant's admins);
    /// null when none is.
    attributed_to: Option<String>,
    /// Whether that is this connector.
    attributed_here: bool,
    /// Whether relay to domains no tenant accepts would be allowed (the attributed
    /// connector vouches for the sender's domain).
    relay_allowed: bool,
    /// A partner connector's refusal of mail from the sender's domain to this tenant, as the
    /// SMTP reply would say it; null when it would accept.
    refusal: Option<String>,
    /// Why, one line per step, in the order the edge decides.
    reasons: Vec<String>,
}

/// Validate an inbound connector: which connector the SMTP edge would attribute a connection
/// from `sender_ip_address` (with MAIL FROM `sender_address`) to and why, whether relay would
/// be allowed, and what a partner connector would refuse. The answer is computed by the edge's
/// own code (`hato_transport::connectors::Snapshot`) on the connectors as stored now.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/connectors/inbound/{name}/validate",
    tag = "connectors",
    params(
        ("tenant" = String, Path, description = "The tenant's name"),
        ("name" = String, Path, description = "The connector's name (any case)"),
    ),
    request_body = ValidateRequest,
    responses(
        (status = 200, description = "What the edge would decide", body = InboundValidation),
        (status = 400, description = "Not an IP address or not an email address, or not JSON", body = ErrorBody),
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
) -> ApiResult<Json<InboundValidation>> {
    require_global_admin(&p)?;
    let input = body(payload)?;
    let raw_ip = input.sender_ip_address.trim().to_string();
    let ip: std::net::IpAddr = raw_ip.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "sender_ip_address {raw_ip:?}: an IPv4 or IPv6 address"
        ))
    })?;
    // As the edge sees a client: an IPv4-mapped IPv6 address is the IPv4 one.
    let ip = hato_protection::ip::canonical_ip(ip);
    let sender = match input.sender_address.as_deref().map(str::trim) {
        None | Some("") | Some("<>") => None,
        Some(a) => Some(
            hato_core::Address::parse(a)
                .map_err(|e| ApiError::bad_request(format!("sender_address {a:?}: {e}")))?,
        ),
    };
    let cert = input
        .tls_certificate_name
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    let tls = input.tls.unwrap_or(cert.is_some());
    let operator = p.role == hato_core::auth::Role::Operator;
    s.blocking(move |s| {
        let t = visible_tenant(s, &p, &tenant)?;
        let record = s.store.inbound_connector(t.id, &name)?;
        let edge = hato_transport::connectors::InboundConnectors::new(s.store.clone());
        let snapshot = edge.snapshot()?;
        let owner = match &sender {
            Some(a) => edge.owner(a.domain())?,
            None => None,
        };
        let c = &record.connector;
        let mut reasons = Vec::new();
        let lists_ip = c.ip_entries().iter().any(|e| e.contains(ip));
        if !c.enabled {
            reasons.push(format!(
                "The connector {:?} is disabled: the edge does not use it",
                record.name
            ));
        }
        reasons.push(if lists_ip {
            format!("{ip} is in its --sender-ip-addresses")
        } else {
            format!(
                "{ip} is not in its --sender-ip-addresses ({})",
                if c.sender_ip_addresses.is_empty() {
                    "none".to_string()
                } else {
                    c.sender_ip_addresses.join(", ")
                }
            )
        });
        match (&sender, owner) {
            (None, _) => reasons.push(
                "No sender address given (or the null sender): no domain to vouch for".into(),
            ),
            (Some(a), Some(o)) if o == t.id => reasons.push(format!(
                "{} is a verified accepted domain of this tenant",
                a.domain()
            )),
            (Some(a), Some(_)) => reasons.push(format!(
                "{} is a verified accepted domain of another tenant",
                a.domain()
            )),
            (Some(a), None) => reasons.push(format!(
                "{} is no tenant's verified accepted domain",
                a.domain()
            )),
        }
        let holders = snapshot.holders(ip);
        if holders.len() > 1 {
            reasons.push(format!(
                "{} enabled on-premises connectors hold {ip}: the one of the sender domain's \
                 tenant wins, else the one created first (seed E3)",
                holders.len()
            ));
        }
        let attributed = snapshot.attribution(ip, owner, sender.as_ref());
        let name_of = |a: &hato_core::client::ConnectorAttribution| {
            let held = holders.iter().find(|h| h.id == a.connector_id);
            let tenant_name = held.map(|h| h.tenant_name.clone()).unwrap_or_default();
            if a.tenant == t.id || operator {
                format!("{tenant_name}/{}", a.connector)
            } else {
                "another tenant's on-premises connector".to_string()
            }
        };
        let attributed_to = attributed.as_ref().map(name_of);
        let attributed_here = attributed
            .as_ref()
            .is_some_and(|a| a.connector_id == record.id);
        match &attributed {
            Some(a) => reasons.push(format!(
                "The edge attributes the connection to {}",
                name_of(a)
            )),
            None => reasons.push(format!(
                "No enabled on-premises connector holds {ip}: the connection is attributed to no tenant"
            )),
        }
        // Relay (a recipient in a domain no tenant accepts) needs the attributed connector to
        // vouch for the sender (hato_transport::routing, Exchange Online's 5.7.64 otherwise).
        let relay_allowed = attributed
            .as_ref()
            .is_some_and(|a| a.vouched_sender.is_some());
        reasons.push(if relay_allowed {
            "Relay to outside domains is allowed: the attributed connector's tenant owns the sender domain".into()
        } else {
            match (&attributed, &sender, owner) {
                (_, Some(a), Some(_)) => format!(
                    "Relay to outside domains is refused ({}): {} is not vouched for by an \
                     on-premises connector of its tenant that holds {ip}",
                    hato_core::reply::TENANT_ATTRIBUTION_RELAY_DENIED,
                    a.domain()
                ),
                _ => format!(
                    "Relay to outside domains is refused ({}): no connector vouches for the sender",
                    hato_core::reply::UNABLE_TO_RELAY
                ),
            }
        });
        let mut refusal = None;
        if c.connector_type == ConnectorType::Partner {
            if let Some(a) = &sender {
                let applies = snapshot
                    .partner_for(t.id, a.domain())
                    .map(|h| h.name.clone());
                match &applies {
                    Some(n) if n.eq_ignore_ascii_case(&record.name) => reasons.push(format!(
                        "This partner connector applies to mail from {} to this tenant",
                        a.domain()
                    )),
                    Some(n) => reasons.push(format!(
                        "The partner connector {n:?} applies to mail from {} before this one",
                        a.domain()
                    )),
                    None => reasons.push(format!(
                        "No enabled partner connector of this tenant covers {}",
                        a.domain()
                    )),
                }
                let attributed_own = attributed.as_ref().is_some_and(|x| x.tenant == t.id);
                if !attributed_own {
                    refusal = snapshot
                        .partner_refusal(t.id, a.domain(), ip, tls)
                        .map(|r| {
                            reasons.push(r.reason.text.clone());
                            r.reply.to_string()
                        });
                }
                if c.restrict_domains_to_certificate {
                    let wanted = c.tls_sender_certificate_name.clone().unwrap_or_default();
                    reasons.push(match &cert {
                        Some(n) if certificate_matches(&wanted, n) => format!(
                            "The certificate name {n} matches --tls-sender-certificate-name \
                             {wanted}, but hato does not ask clients for certificates yet: \
                             the edge refuses"
                        ),
                        Some(n) => format!(
                            "The certificate name {n} does not match \
                             --tls-sender-certificate-name {wanted}"
                        ),
                        None => format!("No certificate named {wanted} given"),
                    });
                }
            } else {
                reasons.push(
                    "A partner connector applies by the sender's domain: give --sender-address"
                        .into(),
                );
            }
        }
        Ok(Json(InboundValidation {
            tenant: t.name.clone(),
            connector: record.name.clone(),
            connector_type: c.connector_type.name().into(),
            enabled: c.enabled,
            sender_ip_address: ip.to_string(),
            sender_address: sender.map(|a| a.to_string()),
            lists_ip,
            attributed_to,
            attributed_here,
            relay_allowed,
            refusal,
            reasons,
        }))
    })
    .await
}

/// Whether a certificate's name matches the connector's `--tls-sender-certificate-name`
/// (`*.example.com` covers one label, as a certificate's wildcard does: RFC 6125 §6.4.3).
fn certificate_matches(wanted: &str, name: &str) -> bool {
    let (wanted, name) = (wanted.to_ascii_lowercase(), name.to_ascii_lowercase());
    match wanted.strip_prefix("*.") {
        Some(base) => name
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == base),
        None => wanted == name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_wildcard_covers_one_label() {
        assert!(certificate_matches("mail.example.com", "MAIL.example.com"));
        assert!(certificate_matches("*.example.com", "mx1.example.com"));
        assert!(!certificate_matches("*.example.com", "a.b.example.com"));
        assert!(!certificate_matches("*.example.com", "example.com"));
        assert!(!certificate_matches("mail.example.com", "mail.example.org"));
    }

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
