//! hato's protection stages, in the manner of Exchange Online Protection: each stage is a pure
//! decision over a context (the client, the recipient's tenant, a policy, the time), returning a
//! verdict with its reasons (`hato_core::Reason`). No sockets, no HTTP: DNS and the clock reach
//! a stage through traits, and the SMTP server calls the stages from its hook points.
//!
//! The stage order is fixed (seed B1, C, D; `exchange-online-behaviour.md` §2, §3, §8):
//!
//! - **at connect**, before the banner: the provider's block list, DNS block lists, throttling
//!   by volume and reputation, the early-talker check;
//! - **at EHLO/HELO**: a HELO claiming to be this server;
//! - **at RCPT**, once the recipient's tenant is known: the tenant's connection filter policy
//!   (IP allow and block lists; an allowed IP also overrides the provider's block list for that
//!   tenant's recipients, never a DNS block list).
//!
//! Nothing here needs the message body.
