//! DKIM signing configs per accepted domain (Exchange's `New-`/`Get-`/`Set-`/`Rotate-`/
//! `Remove-DkimSigningConfig`) under `/api/v1/tenants/{tenant}/dkim`: global admins of the
//! tenant and the operator, as the tenant's other mail-flow settings. A config holds two keys,
//! `selector1` (signing first) and `selector2`; every answer carries both DNS TXT records to
//! publish. hato is self-hosted, so a record is the public key itself (Exchange publishes CNAMEs
//! to its own zone instead). Private keys never leave the server.

use crate::error::{ApiError, ErrorBody};
use crate::state::{ApiResult, AppState, Path, body, require_global_admin, visible_tenant};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use hato_core::auth::Principal;
use hato_store::{DkimKeyType, DkimSelectorKey, DkimSigningConfig, NewDkimKey, StoreError};
use hato_transport::dkim::{
    DEFAULT_RSA_KEY_SIZE, DkimError, DomainSigner, dns_record_name, dns_record_text,
    dns_txt_strings, dns_zone_line, from_domain, generate_key,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, change, remove))
        .routes(routes!(rotate))
        .routes(routes!(sign))
}

/// One selector of a config and the DNS record that publishes its key.
#[derive(Serialize, ToSchema)]
struct DkimSelectorView {
    /// `selector1` or `selector2`.
    selector: String,
    /// Whether this selector signs.
    active: bool,
    /// `rsa` or `ed25519`.
    key_type: String,
    /// Bits: 2048 (RSA), 256 (Ed25519).
    key_size: u32,
    /// RFC 3339, UTC: when this key was made.
    created: String,
    /// The TXT record's name: `selector1._domainkey.example.com`.
    record_name: String,
    /// The TXT record's text: `v=DKIM1; k=rsa; p=...`.
    record: String,
    /// The text as the record's strings of at most 255 bytes (RFC 1035 §3.3.14).
    record_strings: Vec<String>,
    /// The record as a zone-file line.
    zone_line: String,
}

/// A domain's DKIM signing config.
#[derive(Serialize, ToSchema)]
struct DkimConfigView {
    tenant: String,
    domain: String,
    /// Whether hato signs the domain's outbound mail.
    enabled: bool,
    /// The selector that signs.
    active_selector: String,
    /// The active key's type and size.
    key_type: String,
    key_size: u32,
    /// RFC 3339, UTC.
    created: String,
    /// The last rotation, if any.
    rotated: Option<String>,
    selectors: Vec<DkimSelectorView>,
}

fn selector_view(domain: &str, s: &DkimSelectorKey, active: bool) -> DkimSelectorView {
    let record = dns_record_text(&s.key);
    DkimSelectorView {
        selector: s.selector.clone(),
        active,
        key_type: s.key.key_type.as_str().to_string(),
        key_size: s.key.bits,
        created: s.created.to_rfc3339(),
        record_name: dns_record_name(&s.selector, domain),
        record_strings: dns_txt_strings(&record)
            .into_iter()
            .map(str::to_string)
            .collect(),
        record,
        zone_line: dns_zone_line(&s.selector, domain, &s.key),
    }
}

fn view(c: &DkimSigningConfig) -> DkimConfigView {
    let active = c.active_selector();
    DkimConfigView {
        tenant: c.tenant.clone(),
        domain: c.domain.clone(),
        enabled: c.enabled,
        active_selector: active.selector.clone(),
        key_type: active.key.key_type.as_str().to_string(),
        key_size: active.key.bits,
        created: c.created.to_rfc3339(),
        rotated: c.rotated.map(|t| t.to_rfc3339()),
        selectors: c
            .selectors
            .iter()
            .map(|s| selector_view(&c.domain, s, s.selector == active.selector))
            .collect(),
    }
}

/// The key settings of a new config or a rotation (`-KeySize`; hato's `key_type`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct KeySettings {
    /// `rsa` (default, rsa-sha256) or `ed25519` (ed25519-sha256, RFC 8463; many receivers do
    /// not verify it yet).
    key_type: Option<String>,
    /// `KeySize`: RSA's bits, 2048 (the default and the only size hato signs with).
    key_size: Option<u32>,
}

fn key_type(s: &KeySettings) -> ApiResult<DkimKeyType> {
    match s.key_type.as_deref().map(str::trim) {
        None | Some("") => Ok(DkimKeyType::Rsa),
        Some(t) => DkimKeyType::parse(&t.to_ascii_lowercase())
            .ok_or_else(|| ApiError::bad_request(format!("key-type {t:?}: rsa or ed25519"))),
    }
}

/// A new key, made on the blocking pool (an RSA key takes a good fraction of a second).
async fn new_key(s: &AppState, settings: &KeySettings) -> ApiResult<NewDkimKey> {
    let kind = key_type(settings)?;
    let bits = settings.key_size.unwrap_or(DEFAULT_RSA_KEY_SIZE);
    if kind == DkimKeyType::Ed25519 && settings.key_size.is_some() {
        return Err(ApiError::bad_request(
            "key-size applies to RSA keys only (an Ed25519 key has one size)",
        ));
    }
    s.blocking(move |_| generate_key(kind, bits).map_err(key_error))
        .await
}

fn key_error(e: DkimError) -> ApiError {
    match e {
        DkimError::KeySize(_) => ApiError::bad_request(e.to_string()),
        other => {
            tracing::error!(error = %other, "DKIM");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string())
        }
    }
}

/// The tenant's DKIM signing configs, by domain.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/dkim",
    tag = "dkim",
    params(("tenant" = String, Path, description = "The tenant's name")),
    responses(
        (status = 200, description = "The configs, by domain", body = [DkimConfigView]),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
    )
)]
async fn list(
    State(s): State<AppState>,
    p: Principal,
    Path(tenant): Path<String>,
) -> ApiResult<Json<Vec<DkimConfigView>>> {
    require_global_admin(&p)?;
    s.blocking(move |s| {
        let t = visible_tenant(s, &p, &tenant)?;
        let all = s.store.dkim_signing_configs(Some(t.id))?;
        Ok(Json(all.iter().map(view).collect()))
    })
    .await
}

/// A new config: the domain, its key settings, whether it signs at once.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewConfig {
    /// One of the tenant's verified accepted domains.
    domain: String,
    /// `Enabled` (default true): sign at once. Give false to publish the records first.
    enabled: Option<bool>,
    /// As [`KeySettings`].
    key_type: Option<String>,
    key_size: Option<u32>,
}

/// Add a DKIM signing config (`New-DkimSigningConfig`): two new keys, `selector1` signing.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/dkim",
    tag = "dkim",
    params(("tenant" = String, Path, description = "The tenant's name")),
    request_body = NewConfig,
    responses(
        (status = 201, description = "The new config with the two DNS records to publish", body = DkimConfigView),
        (status = 400, description = "Not one of the tenant's accepted domains, a domain pending verification, a bad key type or size, or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
        (status = 409, description = "The domain has a config", body = ErrorBody),
    )
)]
async fn create(
    State(s): State<AppState>,
    p: Principal,
    Path(tenant): Path<String>,
    payload: Result<Json<NewConfig>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<DkimConfigView>)> {
    require_global_admin(&p)?;
    let input = body(payload)?;
    let domain = input
        .domain
        .trim()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if domain.is_empty() {
        return Err(ApiError::bad_request(
            "domain: give one of the tenant's accepted domains",
        ));
    }
    let t = s.blocking(move |s| visible_tenant(s, &p, &tenant)).await?;
    // Checked before the keys are made, so a mistyped domain answers at once; the store checks
    // again in its write.
    let (tid, d) = (t.id, domain.clone());
    s.blocking(move |s| {
        if s.store.dkim_signing_config(tid, &d).is_ok() {
            return Err(StoreError::Conflict(format!("DKIM signing config of {d}")).into());
        }
        match s.store.domain(&d)? {
            Some((owner, _)) if owner == tid => Ok(()),
            _ => Err(ApiError::bad_request(format!(
                "domain {d} is not an accepted domain of this tenant"
            ))),
        }
    })
    .await?;
    let settings = KeySettings {
        key_type: input.key_type,
        key_size: input.key_size,
    };
    let keys = [new_key(&s, &settings).await?, new_key(&s, &settings).await?];
    let stored = s
        .store
        .add_dkim_signing_config(t.id, &domain, input.enabled.unwrap_or(true), keys)
        .await?;
    Ok((StatusCode::CREATED, Json(view(&stored))))
}

/// One domain's config.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/dkim/{domain}",
    tag = "dkim",
    params(
        ("tenant" = String, Path, description = "The tenant's name"),
        ("domain" = String, Path, description = "The accepted domain"),
    ),
    responses(
        (status = 200, description = "The config with its DNS records", body = DkimConfigView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant or config (or another tenant's)", body = ErrorBody),
    )
)]
async fn show(
    State(s): State<AppState>,
    p: Principal,
    Path((tenant, domain)): Path<(String, String)>,
) -> ApiResult<Json<DkimConfigView>> {
    require_global_admin(&p)?;
    s.blocking(move |s| {
        let t = visible_tenant(s, &p, &tenant)?;
        Ok(Json(view(&s.store.dkim_signing_config(t.id, &domain)?)))
    })
    .await
}

/// A change (`Set-DkimSigningConfig`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ConfigChange {
    /// `Enabled`.
    enabled: Option<bool>,
}

/// Turn signing on or off (`Set-DkimSigningConfig -Enabled`); the signer takes the change with
/// the next message.
#[utoipa::path(
    patch,
    path = "/api/v1/tenants/{tenant}/dkim/{domain}",
    tag = "dkim",
    params(
        ("tenant" = String, Path, description = "The tenant's name"),
        ("domain" = String, Path, description = "The accepted domain"),
    ),
    request_body = ConfigChange,
    responses(
        (status = 200, description = "The config after the change", body = DkimConfigView),
        (status = 400, description = "Nothing to change, or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant or config (or another tenant's)", body = ErrorBody),
    )
)]
async fn change(
    State(s): State<AppState>,
    p: Principal,
    Path((tenant, domain)): Path<(String, String)>,
    payload: Result<Json<ConfigChange>, JsonRejection>,
) -> ApiResult<Json<DkimConfigView>> {
    require_global_admin(&p)?;
    let input = body(payload)?;
    let Some(enabled) = input.enabled else {
        return Err(ApiError::bad_request("nothing to change: give enabled"));
    };
    let t = s.blocking(move |s| visible_tenant(s, &p, &tenant)).await?;
    let stored = s
        .store
        .set_dkim_signing_enabled(t.id, &domain, enabled)
        .await?;
    Ok(Json(view(&stored)))
}

/// Rotate the keys (`Rotate-DkimSigningConfig`): the other selector signs from now on (its
/// record was published with the config), and the selector that signed until now gets a new
/// key, whose record is to be published before the next rotation. Until that record changes,
/// receivers still verify what the old key signed.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/dkim/{domain}/rotate",
    tag = "dkim",
    params(
        ("tenant" = String, Path, description = "The tenant's name"),
        ("domain" = String, Path, description = "The accepted domain"),
    ),
    request_body = KeySettings,
    responses(
        (status = 200, description = "The config after the rotation, with the new record", body = DkimConfigView),
        (status = 400, description = "A bad key type or size, or not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant or config (or another tenant's)", body = ErrorBody),
    )
)]
async fn rotate(
    State(s): State<AppState>,
    p: Principal,
    Path((tenant, domain)): Path<(String, String)>,
    payload: Result<Json<KeySettings>, JsonRejection>,
) -> ApiResult<Json<DkimConfigView>> {
    require_global_admin(&p)?;
    let input = body(payload)?;
    let d = domain.clone();
    let t = s
        .blocking(move |s| {
            let t = visible_tenant(s, &p, &tenant)?;
            s.store.dkim_signing_config(t.id, &d)?;
            Ok(t)
        })
        .await?;
    let key = new_key(&s, &input).await?;
    let stored = s
        .store
        .rotate_dkim_signing_config(t.id, &domain, key)
        .await?;
    Ok(Json(view(&stored)))
}

/// Remove a config: the domain's mail goes unsigned.
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/dkim/{domain}",
    tag = "dkim",
    params(
        ("tenant" = String, Path, description = "The tenant's name"),
        ("domain" = String, Path, description = "The accepted domain"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant or config", body = ErrorBody),
    )
)]
async fn remove(
    State(s): State<AppState>,
    p: Principal,
    Path((tenant, domain)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    require_global_admin(&p)?;
    let t = s.blocking(move |s| visible_tenant(s, &p, &tenant)).await?;
    s.store.remove_dkim_signing_config(t.id, &domain).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signature of a message.
#[derive(Serialize, ToSchema)]
struct SignedView {
    domain: String,
    selector: String,
    /// The whole `DKIM-Signature: ...` field with its CRLF, to prepend to the message.
    signature: String,
}

/// Sign a message with the config of its From domain, as outbound delivery signs it, even while
/// the config is disabled: to check the published records before enabling signing. The body is
/// the message (`.eml`, CRLF line ends, at most the API's 2 MB).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/dkim-sign",
    tag = "dkim",
    params(("tenant" = String, Path, description = "The tenant's name")),
    request_body(content = String, content_type = "message/rfc822", description = "The message"),
    responses(
        (status = 200, description = "The signature", body = SignedView),
        (status = 400, description = "No single From domain, or no config of the tenant for it", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not a global admin of the tenant, nor the operator", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's)", body = ErrorBody),
    )
)]
async fn sign(
    State(s): State<AppState>,
    p: Principal,
    Path(tenant): Path<String>,
    eml: Bytes,
) -> ApiResult<Json<SignedView>> {
    require_global_admin(&p)?;
    s.blocking(move |s| {
        let t = visible_tenant(s, &p, &tenant)?;
        let Some(domain) = from_domain(&eml) else {
            return Err(ApiError::bad_request(
                "the message's From field names no single domain (RFC 5322 section 3.6.2)",
            ));
        };
        let config = match s.store.dkim_signing_config(t.id, &domain) {
            Ok(c) => c,
            Err(StoreError::NotFound(_)) => {
                return Err(ApiError::bad_request(format!(
                    "the tenant has no DKIM signing config for {domain} (the From domain); add one with hato dkim add {domain}"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let signer = DomainSigner::from_config(&config).map_err(key_error)?;
        let mut reader: &[u8] = &eml;
        let signature = signer.sign_reader(&mut reader).map_err(|e| match e {
            DkimError::HeaderTooLarge(_) => ApiError::bad_request(e.to_string()),
            other => key_error(other),
        })?;
        Ok(Json(SignedView {
            domain,
            selector: signer.selector.clone(),
            signature,
        }))
    })
    .await
}
