//! Identifiers: the store's row ids of directory objects (`TenantId`, `MailboxId`, `GroupId`,
//! `ContactId`, re-exported by [`crate::directory`]), and those that leave the process: trace ids
//! (one per message, shown in the final 250 reply and in message trace, GUID-shaped like Exchange's
//! `MessageTraceId`) and API tokens.

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

/// A new trace id: a time-ordered (version 7, RFC 9562 §5.7) UUID in its usual text form — the
/// shape of Exchange's `MessageTraceId`. Time-ordered ids append at the end of the store's index
/// instead of landing on a random page, which keeps each commit small.
pub fn new_trace_id() -> String {
    let mut b = random_bytes::<16>();
    let millis = chrono::Utc::now().timestamp_millis().max(0) as u64;
    b[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    b[6] = (b[6] & 0x0f) | 0x70;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A new API token: 32 random bytes, hex.
pub fn new_token() -> String {
    random_bytes::<32>()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn trace_ids_are_uuid_shaped_and_distinct() {
        let a = super::new_trace_id();
        let b = super::new_trace_id();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "7");
        // Time-ordered: a later id sorts after an earlier one (1 ms apart).
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(super::new_trace_id() > a);
        assert_ne!(a, b);
        assert_eq!(super::new_token().len(), 64);
    }
}
