//! MTA-STS policies kept for recipient domains (migration 31): one row per domain, replaced by
//! each fetch; rows expired are deleted as new ones are saved, so the table holds only the
//! domains mail went to within their policies' `max_age`.

use super::SqliteStore;
use crate::error::Result;
use crate::pending::Pending;
use crate::traits::MtaStsStore;
use crate::types::MtaStsPolicyRecord;
use hato_core::Timestamp;
use rusqlite::{OptionalExtension, params};

impl MtaStsStore for SqliteStore {
    fn mta_sts_policy(&self, domain: &str) -> Result<Option<MtaStsPolicyRecord>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT domain, policy_id, policy, fetched, expires FROM mta_sts_policies \
                     WHERE domain = ?1",
                )?
                .query_row([domain], |r| {
                    Ok(MtaStsPolicyRecord {
                        domain: r.get(0)?,
                        id: r.get(1)?,
                        policy: r.get(2)?,
                        fetched: Timestamp(r.get(3)?),
                        expires: Timestamp(r.get(4)?),
                    })
                })
                .optional()?)
        })
    }

    fn save_mta_sts_policy(&self, p: MtaStsPolicyRecord) -> Pending<()> {
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM mta_sts_policies WHERE expires < ?1",
                [p.fetched.0],
            )?;
            conn.execute(
                "INSERT INTO mta_sts_policies(domain, policy_id, policy, fetched, expires) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(domain) DO UPDATE SET \
                 policy_id = excluded.policy_id, policy = excluded.policy, \
                 fetched = excluded.fetched, expires = excluded.expires",
                params![p.domain, p.id, p.policy, p.fetched.0, p.expires.0],
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_is_kept_per_domain_and_expired_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let rec = |domain: &str, id: &str, fetched: i64, expires: i64| MtaStsPolicyRecord {
            domain: domain.into(),
            id: id.into(),
            policy: "version: STSv1\nmode: enforce\nmax_age: 1\nmx: mx.b.test\n".into(),
            fetched: Timestamp(fetched),
            expires: Timestamp(expires),
        };
        assert_eq!(store.mta_sts_policy("b.test").unwrap(), None);
        store
            .save_mta_sts_policy(rec("old.test", "1", 0, 10))
            .wait()
            .unwrap();
        store
            .save_mta_sts_policy(rec("b.test", "a", 5, 100))
            .wait()
            .unwrap();
        store
            .save_mta_sts_policy(rec("b.test", "b", 20, 200))
            .wait()
            .unwrap();
        assert_eq!(
            store.mta_sts_policy("b.test").unwrap(),
            Some(rec("b.test", "b", 20, 200))
        );
        assert_eq!(
            store.mta_sts_policy("old.test").unwrap(),
            None,
            "expired at 10 < 20"
        );
    }
}
