//! Users' passwords, mailbox permissions, role groups and join requests.

use super::{SqliteStore, bump_directory, member_kind, tenant_of};
use crate::error::{Result, StoreError};
use crate::pending::Pending;
use crate::traits::RightsStore;
use crate::types::{JoinRequest, JoinRequestKind};
use hato_core::Timestamp;
use hato_core::auth::Role;
use hato_core::directory::{GroupId, MailboxId, Permission};
use rusqlite::{OptionalExtension, params};

impl RightsStore for SqliteStore {
    fn set_password(&self, mailbox: MailboxId, hash: Option<String>) -> Pending<()> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE mailboxes SET password_hash = ?1 WHERE id = ?2",
                params![hash, mailbox],
            )?;
            // A changed password ends the mailbox's sessions.
            conn.execute("DELETE FROM tokens WHERE mailbox_id = ?1", [mailbox])?;
            Ok(())
        })
    }

    fn password_hash(&self, mailbox: MailboxId) -> Result<Option<String>> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT password_hash FROM mailboxes WHERE id = ?1",
                    [mailbox],
                    |r| r.get(0),
                )
                .optional()?
                .flatten())
        })
    }

    fn set_smtp_client_authentication_disabled(
        &self,
        mailbox: MailboxId,
        disabled: bool,
    ) -> Pending<()> {
        self.write(move |conn| {
            let n = conn.execute(
                "UPDATE mailboxes SET smtp_client_authentication_disabled = ?1 WHERE id = ?2",
                params![disabled, mailbox],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("mailbox {mailbox}")));
            }
            Ok(())
        })
    }

    fn smtp_client_authentication_disabled(&self, mailbox: MailboxId) -> Result<bool> {
        self.read(|conn| {
            conn.query_row(
                "SELECT smtp_client_authentication_disabled FROM mailboxes WHERE id = ?1",
                [mailbox],
                |r| r.get::<_, bool>(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))
        })
    }

    fn grant(&self, p: Permission) -> Pending<()> {
        self.write(move |conn| {
            let tenant = tenant_of(conn, "mailboxes", p.mailbox)?;
            let (kind, id) = member_kind(&p.trustee);
            conn.execute(
                "INSERT OR IGNORE INTO permissions(mailbox_id, trustee_kind, trustee_id, right) VALUES (?1, ?2, ?3, ?4)",
                params![p.mailbox, kind, id, p.right.as_str()],
            )?;
            if let Some(t) = tenant {
                bump_directory(conn, t)?;
            }
            Ok(())
        })
    }

    fn revoke(&self, p: Permission) -> Pending<()> {
        self.write(move |conn| {
            let tenant = tenant_of(conn, "mailboxes", p.mailbox)?;
            let (kind, id) = member_kind(&p.trustee);
            let n = conn.execute(
                "DELETE FROM permissions WHERE mailbox_id = ?1 AND trustee_kind = ?2 AND trustee_id = ?3 AND right = ?4",
                params![p.mailbox, kind, id, p.right.as_str()],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound("permission".into()));
            }
            if let Some(t) = tenant {
                bump_directory(conn, t)?;
            }
            Ok(())
        })
    }

    fn assign_role(&self, group: GroupId, role: Role, assign: bool) -> Pending<()> {
        self.write(move |conn| {
            let tenant = tenant_of(conn, "groups", group)?;
            if assign {
                conn.execute(
                    "INSERT OR IGNORE INTO role_groups(group_id, role) VALUES (?1, ?2)",
                    params![group, role.as_str()],
                )?;
            } else {
                conn.execute(
                    "DELETE FROM role_groups WHERE group_id = ?1 AND role = ?2",
                    params![group, role.as_str()],
                )?;
            }
            if let Some(t) = tenant {
                bump_directory(conn, t)?;
            }
            Ok(())
        })
    }

    fn add_join_request(
        &self,
        group: GroupId,
        mailbox: MailboxId,
        kind: JoinRequestKind,
    ) -> Pending<JoinRequest> {
        let now = self.now_micros();
        self.write(move |conn| {
            let kind_text = match kind {
                JoinRequestKind::Join => "join",
                JoinRequestKind::Depart => "depart",
            };
            conn.execute(
                "INSERT OR IGNORE INTO join_requests(group_id, mailbox_id, kind, created) VALUES (?1, ?2, ?3, ?4)",
                params![group, mailbox, kind_text, now],
            )?;
            let (id, created): (i64, i64) = conn.query_row(
                "SELECT id, created FROM join_requests WHERE group_id = ?1 AND mailbox_id = ?2 AND kind = ?3",
                params![group, mailbox, kind_text],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(JoinRequest { id, group_id: group, mailbox_id: mailbox, kind, created: Timestamp(created) })
        })
    }

    fn join_requests(&self, group: GroupId) -> Result<Vec<JoinRequest>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, mailbox_id, kind, created FROM join_requests WHERE group_id = ?1 ORDER BY id",
            )?;
            let rows = stmt
                .query_map([group], |r| {
                    let kind: String = r.get(2)?;
                    Ok(JoinRequest {
                        id: r.get(0)?,
                        group_id: group,
                        mailbox_id: r.get(1)?,
                        kind: if kind == "depart" { JoinRequestKind::Depart } else { JoinRequestKind::Join },
                        created: Timestamp(r.get(3)?),
                    })
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn mark_join_request_notified(&self, id: i64) -> Pending<bool> {
        self.write(move |conn| {
            let n = conn.execute(
                "UPDATE join_requests SET notified = 1 WHERE id = ?1 AND notified = 0",
                [id],
            )?;
            Ok(n == 0)
        })
    }

    fn remove_join_request(&self, id: i64) -> Pending<()> {
        self.write(move |conn| {
            let n = conn.execute("DELETE FROM join_requests WHERE id = ?1", [id])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("request {id}")));
            }
            Ok(())
        })
    }
}
