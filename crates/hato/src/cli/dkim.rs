//! `hato dkim add|list|show|set|rotate|remove DOMAIN --tenant T` and `hato dkim sign`: DKIM
//! signing configs per accepted domain (Exchange's `New-`/`Get-`/`Set-`/`Rotate-`/
//! `Remove-DkimSigningConfig`; `--key-size` and `--enabled` are its KeySize and Enabled). `add`
//! and `rotate` print the DNS TXT records to publish; hato is self-hosted, so a record is the
//! public key itself, not Exchange's CNAME to its own zone.

use super::client::Client;
use super::output::{enc, print_rows};
use clap::Subcommand;
use serde_json::{Map, Value, json};
use std::io::{Read, Write};

#[derive(Subcommand)]
pub(super) enum DkimCmd {
    /// Add a config (New-DkimSigningConfig): two new keys, selector1 signing; prints the DNS
    /// records to publish.
    Add {
        /// One of the tenant's verified accepted domains.
        domain: String,
        #[arg(long)]
        tenant: String,
        /// KeySize: RSA's bits. 2048 (the default; hato signs with no smaller RSA key).
        #[arg(long, value_name = "BITS")]
        key_size: Option<u32>,
        /// rsa (rsa-sha256, the default) or ed25519 (ed25519-sha256, RFC 8463).
        #[arg(long, value_name = "rsa|ed25519")]
        key_type: Option<String>,
        /// Enabled: sign at once (default true); false to publish the records first.
        #[arg(long, value_name = "true|false")]
        enabled: Option<bool>,
        /// The API's answer as it is.
        #[arg(long)]
        json: bool,
    },
    /// The tenant's configs.
    List {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// One config with its DNS records.
    Show {
        domain: String,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Turn signing on or off (Set-DkimSigningConfig -Enabled).
    Set {
        domain: String,
        #[arg(long)]
        tenant: String,
        #[arg(long, value_name = "true|false")]
        enabled: Option<bool>,
        #[arg(long)]
        json: bool,
    },
    /// Rotate-DkimSigningConfig: the other selector signs from now on; the one that signed
    /// gets a new key, whose record to publish before the next rotation is printed.
    Rotate {
        domain: String,
        #[arg(long)]
        tenant: String,
        #[arg(long, value_name = "BITS")]
        key_size: Option<u32>,
        #[arg(long, value_name = "rsa|ed25519")]
        key_type: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove a config: the domain's mail goes out unsigned.
    Remove {
        domain: String,
        #[arg(long)]
        tenant: String,
    },
    /// Sign a message (a file, or standard input) with its From domain's config, even while
    /// disabled, and print it with its DKIM-Signature field: to check the published records.
    Sign {
        #[arg(long)]
        tenant: String,
        /// The message (.eml, CRLF line ends); standard input when not given.
        file: Option<std::path::PathBuf>,
    },
}

fn base(tenant: &str) -> String {
    format!("/api/v1/tenants/{}/dkim", enc(tenant))
}

fn one(tenant: &str, domain: &str) -> String {
    format!("{}/{}", base(tenant), enc(domain))
}

fn key_body(key_size: Option<u32>, key_type: Option<String>) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(k) = key_size {
        m.insert("key_size".into(), json!(k));
    }
    if let Some(t) = key_type {
        m.insert("key_type".into(), json!(t));
    }
    m
}

pub(super) fn run(c: &Client, cmd: DkimCmd) -> Result<(), String> {
    let (v, json, records) = match cmd {
        DkimCmd::Add {
            domain,
            tenant,
            key_size,
            key_type,
            enabled,
            json,
        } => {
            let mut body = key_body(key_size, key_type);
            body.insert("domain".into(), json!(domain));
            if let Some(e) = enabled {
                body.insert("enabled".into(), json!(e));
            }
            let v = c.json("POST", &base(&tenant), &[], Some(Value::Object(body)))?;
            (v, json, true)
        }
        DkimCmd::List { tenant, json } => {
            let v = c.json("GET", &base(&tenant), &[], None)?;
            return print_rows(
                &v,
                &[
                    "domain",
                    "enabled",
                    "active_selector",
                    "key_type",
                    "key_size",
                    "rotated",
                ],
                json,
            );
        }
        DkimCmd::Show {
            domain,
            tenant,
            json,
        } => (
            c.json("GET", &one(&tenant, &domain), &[], None)?,
            json,
            true,
        ),
        DkimCmd::Set {
            domain,
            tenant,
            enabled,
            json,
        } => {
            let Some(enabled) = enabled else {
                return Err("nothing to change: give --enabled true|false".into());
            };
            let body = json!({ "enabled": enabled });
            (
                c.json("PATCH", &one(&tenant, &domain), &[], Some(body))?,
                json,
                false,
            )
        }
        DkimCmd::Rotate {
            domain,
            tenant,
            key_size,
            key_type,
            json,
        } => {
            let body = Value::Object(key_body(key_size, key_type));
            let path = format!("{}/rotate", one(&tenant, &domain));
            (c.json("POST", &path, &[], Some(body))?, json, true)
        }
        DkimCmd::Remove { domain, tenant } => {
            c.request("DELETE", &one(&tenant, &domain), &[], None)?;
            println!("removed the DKIM signing config of {domain}");
            return Ok(());
        }
        DkimCmd::Sign { tenant, file } => return sign(c, &tenant, file.as_deref()),
    };
    if json {
        return print_rows(&v, &[], true);
    }
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    println!("domain: {} (tenant {})", s("domain"), s("tenant"));
    println!("enabled: {}", v["enabled"].as_bool().unwrap_or_default());
    println!(
        "signing selector: {} ({} {})",
        s("active_selector"),
        s("key_type"),
        v["key_size"]
    );
    println!("created: {}", s("created"));
    if let Some(r) = v["rotated"].as_str() {
        println!("rotated: {r}");
    }
    if records {
        println!("DNS TXT records to publish:");
        for sel in v["selectors"].as_array().into_iter().flatten() {
            println!("{}", sel["zone_line"].as_str().unwrap_or_default());
        }
    }
    Ok(())
}

fn sign(c: &Client, tenant: &str, file: Option<&std::path::Path>) -> Result<(), String> {
    let mut message = Vec::new();
    match file {
        Some(f) => {
            message = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
        }
        None => {
            std::io::stdin()
                .read_to_end(&mut message)
                .map_err(|e| format!("reading standard input: {e}"))?;
        }
    }
    let path = format!("/api/v1/tenants/{}/dkim-sign", enc(tenant));
    let v = c.bytes(&path, &[], "message/rfc822", &message)?;
    let signature = v["signature"].as_str().unwrap_or_default();
    let mut out = std::io::stdout().lock();
    out.write_all(signature.as_bytes())
        .and_then(|_| out.write_all(&message))
        .and_then(|_| out.flush())
        .map_err(|e| format!("writing the signed message: {e}"))
}
