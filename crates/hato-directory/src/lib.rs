//! Directory logic for hato that needs no I/O: recipient filters for
//! Exchange-style dynamic distribution groups.

pub mod index;
pub mod opath;
pub mod policy;
pub mod rules;
pub mod service;

pub use index::{Addressee, DirectoryIndex};
pub use service::Directory;
