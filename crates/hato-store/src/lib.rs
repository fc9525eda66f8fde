//! hato's persistence, behind traits so another backend (PostgreSQL, for several nodes) can be added
//! without touching callers. The embedded default is [`SqliteStore`]: one SQLite database in WAL
//! mode plus a content-addressed blob directory.
//!
//! Writes go through one writer thread that batches concurrent requests into a single transaction
//! (group commit): a caller's [`Pending`] resolves only after the transaction that holds its change
//! has been committed and synced, which is what lets the SMTP server say `250` only for durable mail.
//!
//! Layout: `traits.rs` (one trait per resource, [`Store`] = all), `types.rs` (what goes in and
//! out), `error.rs`, `pending.rs`, `blobs.rs`, `schema.rs` (migrations), and `sqlite/` (one file
//! per resource, shared connection handling in `sqlite/mod.rs`).

mod blobs;
pub mod cache;
mod error;
pub mod heavy_hitters;
mod pending;
mod schema;
mod spool;
mod sqlite;
mod traits;
pub mod types;

pub use blobs::{BlobDir, INLINE_BLOB_MAX};
pub use cache::GenerationCache;
pub use error::{Result, StoreError};
pub use pending::Pending;
/// The schema migrations, in order (tests build databases of older schemas from a prefix).
pub use schema::MIGRATIONS;
pub use spool::FileSpool;
pub use sqlite::SqliteStore;
pub use traits::*;
pub use types::*;

/// [`QueueStore::due_deliveries`] loads at most about this much message content at once (at
/// least one message): spooled messages count only the part kept in the database, as their
/// queue files are streamed.
pub const DUE_CONTENT_BUDGET: usize = 16 * 1024 * 1024;

/// How API tokens are kept: only their SHA-256, so a copy of the database grants nothing.
pub fn hash_token(token: &str) -> String {
    blobs::hash_of(token.trim().as_bytes())
}
