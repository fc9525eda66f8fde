//! Identifiers: the store's row ids of directory objects (`TenantId`, `MailboxId`, `GroupId`,
//! `ContactId`, re-exported by [`crate::directory`]), and those that leave the process: trace ids
//! (one per message, shown in the final 250 reply and in message trace, GUID-shaped like Exchange's
//! `MessageTraceId`), API tokens, and the node id a process leases queue entries under.

use crate::clock::{Clock, Timestamp};
use std::sync::Mutex;
use uuid::{ContextV7, Uuid};

pub type TenantId = i64;
pub type MailboxId = i64;
pub type GroupId = i64;
pub type ContactId = i64;

/// Random bytes from the operating system. Falls back to a time-derived value only if the OS
/// refuses, which on Linux means the process is in a broken state anyway.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    if getrandom::fill(&mut buf).is_err() {
        let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) as u128;
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (nanos >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
        }
    }
    buf
}

/// Orders the trace ids of this process: within one millisecond a counter (42 bits, seeded at
/// random each millisecond) follows the time, so ids made in the same millisecond still sort in
/// the order they were made (RFC 9562 §6.2, method 1). Shared by every clock, as the store's index
/// is shared by every caller.
static TRACE_ID_ORDER: Mutex<ContextV7> = Mutex::new(ContextV7::new());

/// A new trace id: a time-ordered (version 7, RFC 9562 §5.7) UUID in its usual text form — the
/// shape of Exchange's `MessageTraceId` — carrying `clock`'s time. Time-ordered ids append at the
/// end of the store's index instead of landing on a random page, which keeps each commit small.
pub fn new_trace_id(clock: &dyn Clock) -> String {
    trace_id_at(clock.now())
}

/// The trace id of something that happens at `now` (for code that has read its clock already).
///
/// The id's timestamp is `now` to the millisecond, except that ids never go back in time: if the
/// clock steps back (or the counter of one millisecond runs out), ids carry on from the latest
/// time this process has used, as RFC 9562 §6.2 has it, so they keep sorting in the order they
/// were made.
pub fn trace_id_at(now: Timestamp) -> String {
    // Before 1970 is not a time hato runs at; such a clock counts as the epoch.
    let micros = u64::try_from(now.0).unwrap_or(0);
    let (secs, nanos) = (micros / 1_000_000, (micros % 1_000_000) as u32 * 1000);
    let ts = uuid::Timestamp::from_unix(&TRACE_ID_ORDER, secs, nanos);
    Uuid::new_v7(ts).hyphenated().to_string()
}

/// A new API token: 32 random bytes, hex.
pub fn new_token() -> String {
    random_bytes::<32>()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Which hato process works on a queue entry: a process takes due recipients by writing its node
/// id and a time into their lease, so that several processes can share one queue (architecture
/// §4) and none picks up what another is working on until that lease runs out. Random at each
/// start, so a restarted process never mistakes the leases of its previous life for its own.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeId(String);

impl NodeId {
    /// A new node id: `node-` and 12 random hex digits (48 bits; a clash between the handful of
    /// processes sharing a queue is as likely as a clash of two random 48-bit numbers).
    pub fn random() -> Self {
        let hex: String = random_bytes::<6>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        NodeId(format!("node-{hex}"))
    }

    /// A node id as stored (a lease read back, a test's fixed name).
    pub fn new(id: impl Into<String>) -> Self {
        NodeId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    /// The millisecond time a version 7 id carries (RFC 9562 §5.7: the first 48 bits).
    fn millis_of(id: &str) -> u64 {
        let u = Uuid::parse_str(id).unwrap();
        assert_eq!(u.get_version_num(), 7, "{id}");
        assert_eq!(u.get_variant(), uuid::Variant::RFC4122, "{id}");
        let (secs, nanos) = u.get_timestamp().unwrap().to_unix();
        secs * 1000 + u64::from(nanos) / 1_000_000
    }

    // One test, not several: the ordering context is shared by the whole process, and this is
    // the only test in it that makes trace ids, so the times below are the only ones it has seen.
    #[test]
    fn trace_ids_carry_the_clock_time_and_sort_in_the_order_they_were_made() {
        // 2030-01-01T00:00:00.123Z
        let start = Timestamp(1_893_456_000_123_456);
        let clock = ManualClock::new(start);
        let first = new_trace_id(&clock);
        assert_eq!(first.len(), 36);
        assert_eq!(&first[14..15], "7", "{first}");
        assert_eq!(millis_of(&first), 1_893_456_000_123);

        // The clock stands still: ids of the same millisecond are distinct, keep its time and
        // still sort in the order they were made.
        let mut same_ms = vec![first.clone()];
        for _ in 0..1000 {
            same_ms.push(new_trace_id(&clock));
        }
        assert!(same_ms.windows(2).all(|w| w[0] < w[1]));
        assert!(same_ms.iter().all(|id| millis_of(id) == 1_893_456_000_123));

        // The clock moves on: the ids follow it.
        clock.advance_seconds(90);
        let later = new_trace_id(&clock);
        assert_eq!(millis_of(&later), 1_893_456_090_123);
        assert!(later > same_ms[1000]);
        let next_ms = trace_id_at(Timestamp(1_893_456_090_124_000));
        assert_eq!(millis_of(&next_ms), 1_893_456_090_124);
        assert!(next_ms > later);

        // The clock steps back: the ids do not, they carry on from the latest time used.
        let back = trace_id_at(start);
        assert!(back > next_ms, "{back} <= {next_ms}");
        assert_eq!(millis_of(&back), 1_893_456_090_124);
    }

    #[test]
    fn node_ids_are_random_and_named_as_such() {
        let (a, b) = (NodeId::random(), NodeId::random());
        assert_ne!(a, b);
        let hex = a.as_str().strip_prefix("node-").expect("node- prefix");
        assert!(
            hex.len() == 12 && hex.bytes().all(|c| c.is_ascii_hexdigit()),
            "{a}"
        );
        assert_eq!(NodeId::new("node-a").to_string(), "node-a");
    }

    #[test]
    fn tokens_are_64_hex_digits_and_distinct() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
