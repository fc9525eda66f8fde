//! `hato login`: a user's token from their address and password.

use super::client::Client;
use crate::config::Config;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;

pub(super) fn run(
    config: &Config,
    address: String,
    password_file: Option<PathBuf>,
    save: Option<PathBuf>,
) -> Result<(), String> {
    let password = match password_file {
        Some(f) => {
            std::fs::read_to_string(&f).map_err(|e| format!("cannot read {}: {e}", f.display()))?
        }
        None => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            line
        }
    };
    let password = password.trim_end_matches(['\r', '\n']).to_string();
    let client = Client::anonymous(config)?;
    let v = client.json(
        "POST",
        "/api/v1/auth/login",
        &[],
        Some(json!({ "address": address, "password": password })),
    )?;
    let token = v["token"].as_str().unwrap_or_default().to_string();
    match save {
        Some(path) => {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            writeln!(f, "{token}").map_err(|e| e.to_string())?;
            println!(
                "logged in as {}; token saved in {} (use --as {})",
                v["address"].as_str().unwrap_or(""),
                path.display(),
                path.display()
            );
        }
        None => println!("{token}"),
    }
    Ok(())
}
