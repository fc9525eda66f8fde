//! API tokens (admins' and users' sessions), kept as hashes.

use super::SqliteStore;
use crate::error::Result;
use crate::pending::Pending;
use crate::traits::TokenStore;
use crate::types::TokenInfo;
use hato_core::Timestamp;
use hato_core::auth::Role;
use rusqlite::{OptionalExtension, params};

impl TokenStore for SqliteStore {
    fn add_token(&self, token_hash: &str, info: TokenInfo) -> Pending<()> {
        let hash = token_hash.to_string();
        let now = self.now_micros();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO tokens(hash, role, tenant_id, created, mailbox_id, expires) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![hash, info.role.as_str(), info.tenant_id, now, info.mailbox_id, info.expires.map(|t| t.0)],
            )?;
            Ok(())
        })
    }

    fn token(&self, token_hash: &str) -> Result<Option<TokenInfo>> {
        self.read(|conn| {
            let info = conn
                .prepare_cached(
                    "SELECT role, tenant_id, mailbox_id, expires FROM tokens WHERE hash = ?1",
                )?
                .query_row([token_hash], |r| {
                    let role: String = r.get(0)?;
                    Ok(
                        Role::parse(&role).map(|role| -> rusqlite::Result<TokenInfo> {
                            Ok(TokenInfo {
                                role,
                                tenant_id: r.get(1)?,
                                mailbox_id: r.get(2)?,
                                expires: r.get::<_, Option<i64>>(3)?.map(Timestamp),
                            })
                        }),
                    )
                })
                .optional()?;
            Ok(info.flatten().transpose()?)
        })
    }
}
