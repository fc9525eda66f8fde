//! Microsoft 365 group mailboxes: the pure logic behind a group's conversations, calendar and files.
//!
//! A group mailbox stores each message once and shows it three ways (Exchange Online behaviour
//! §1.9, seed requirement A6):
//!
//! - **Conversations**: [`thread_headers`] reads what threading needs, [`choose_conversation`]
//!   picks the conversation of a new message (RFC 5322 §3.6.4 references first, then the
//!   normalized subject, see [`normalize_subject`]).
//! - **Calendar**: [`calendar_items`] finds the iTIP (RFC 5546) meeting requests and cancellations
//!   in a message, [`apply_to_calendar`] folds them into the group's events (keyed by UID), and
//!   [`calendar_update`] does so for at most [`MAX_CALENDAR_ITEMS`] of a message's items.
//! - **Files**: [`attachments`] lists the attachments of a message, [`attachment_bytes`] returns
//!   the decoded content of one of them.
//!
//! Everything here is pure (no I/O, no clock) and total: the input is untrusted mail, so malformed
//! input gives an empty or partial answer, never a panic.
//!
//! One file per view: `thread.rs`, `calendar.rs`, `files.rs`; `mime.rs` holds the MIME part
//! helpers the calendar and the files share.

mod calendar;
mod files;
mod mime;
mod thread;

pub use calendar::{
    CANCELED_PREFIX, Calendar, CalendarItem, CalendarItems, CalendarMethod, CalendarUpdate,
    MAX_CALENDAR_ITEMS, MAX_CALENDAR_ITEMS_READ, apply_to_calendar, calendar_items,
    calendar_update,
};
pub use files::{AttachmentInfo, attachment_bytes, attachments};
pub use thread::{
    MAX_THREAD_LOOKUPS, ThreadHeaders, choose_conversation, normalize_subject, thread_headers,
    try_choose_conversation,
};

use std::collections::HashSet;
use std::hash::Hash;

/// `items` with repeats removed, each kept in its first position; linear time (a hash set), as
/// a hostile `References` may hold a million identifiers.
pub(crate) fn dedupe_in_order<T: Eq + Hash>(items: Vec<T>) -> Vec<T> {
    let keep: Vec<bool> = {
        let mut seen = HashSet::with_capacity(items.len());
        items.iter().map(|item| seen.insert(item)).collect()
    };
    items
        .into_iter()
        .zip(keep)
        .filter_map(|(item, keep)| keep.then_some(item))
        .collect()
}

#[cfg(test)]
mod tests;
