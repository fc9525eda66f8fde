// The reply catalogue (`reply.rs`) is one `replies!` invocation that munches an entry per
// step; past about 128 entries it needs more than the default recursion limit.
#![recursion_limit = "512"]
//! hato's domain model. Nothing in this crate performs I/O: it holds the types every other
//! layer shares (addresses, tenants, directory objects, SMTP replies, the reasons behind decisions,
//! trace events, ids, the clock, message content that files injected through a trait may hold, and
//! the message context the deciding stages read).

pub mod address;
pub mod auth;
pub mod body;
pub mod client;
pub mod client_key;
pub mod clock;
pub mod directory;
pub mod dns;
pub mod dsn;
pub mod header;
pub mod id;
pub mod message;
pub mod reason;
pub mod reply;
pub mod trace;

pub use address::{Address, AddressError};
pub use body::MessageBody;
pub use client::{ClientContext, Pregreet, SessionState, TlsInfo};
pub use client_key::client_key;
pub use clock::{Clock, SystemClock, Timestamp};
pub use message::MessageContext;
pub use reason::{Reason, Reasoned, Refusal, Stage};
pub use reply::Reply;
