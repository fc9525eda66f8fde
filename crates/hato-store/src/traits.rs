//! The store's traits, one per resource; [`Store`] is all of them. A new resource gets its trait
//! here, its SQLite implementation in `sqlite/<resource>.rs`, and a place in [`Store`].

use crate::error::Result;
use crate::pending::Pending;
use crate::types::*;
use hato_core::Timestamp;
use hato_core::auth::Role;
use hato_core::directory::{
    AcceptedDomain, Contact, ContactId, DomainEntry, DomainType, Group, GroupId, Mailbox,
    MailboxId, Permission, Tenant, TenantDirectory, TenantId,
};

/// Tenants and their accepted domains.
pub trait TenantStore: Send + Sync {
    fn create_tenant(&self, name: &str) -> Pending<Tenant>;
    fn tenants(&self) -> Result<Vec<Tenant>>;
    fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>>;
    fn remove_tenant(&self, id: TenantId) -> Pending<()>;

    /// Adds a domain, verified at once (the operator adds it). A domain any tenant holds,
    /// pending or verified, is a `Conflict` that names no tenant.
    fn add_domain(
        &self,
        domain: &str,
        tenant: TenantId,
        kind: DomainType,
    ) -> Pending<AcceptedDomain>;
    /// Adds a domain pending verification (a tenant admin adds it), with a new random
    /// verification token. A domain any tenant holds is a `Conflict` that names no tenant.
    fn add_pending_domain(
        &self,
        domain: &str,
        tenant: TenantId,
        kind: DomainType,
    ) -> Pending<AcceptedDomain>;
    /// Marks a domain verified (its verification record was seen); a verified one stays so.
    fn verify_domain(&self, domain: &str) -> Pending<AcceptedDomain>;
    fn domains(&self, tenant: Option<TenantId>) -> Result<Vec<AcceptedDomain>>;
    /// The tenant and type of a domain a tenant holds, pending or verified (canonical,
    /// lower-case name). Whether mail for it is taken is [`TenantStore::domain_entry`]'s status.
    fn domain(&self, domain: &str) -> Result<Option<(TenantId, DomainType)>>;
    /// A held domain with its status and verification record.
    fn domain_entry(&self, domain: &str) -> Result<Option<DomainEntry>>;
    fn remove_domain(&self, domain: &str) -> Pending<()>;
}

/// Mailboxes and their addresses.
pub trait MailboxStore: Send + Sync {
    fn create_mailbox(&self, mailbox: NewMailbox) -> Pending<Mailbox>;
    fn update_mailbox(&self, id: MailboxId, change: MailboxChange) -> Pending<Mailbox>;
    fn mailboxes(&self, tenant: Option<TenantId>) -> Result<Vec<Mailbox>>;
    /// One page of mailboxes (the console's list), and whether more follow.
    fn mailbox_page(&self, q: &RecipientPage) -> Result<(Vec<Mailbox>, bool)>;
    /// Finds a mailbox by its primary address or any alias (canonical form).
    fn mailbox_by_address(&self, address: &str) -> Result<Option<Mailbox>>;
    fn remove_mailbox(&self, id: MailboxId) -> Pending<()> {
        self.remove_mailbox_transferring(id, None)
    }
    /// Removes a mailbox. Refused ([`StoreError::InUse`](crate::StoreError::InUse), naming the
    /// groups) when it is the last owner of a group, unless `transfer_ownership_to` (a mailbox
    /// of the same tenant) becomes an owner of every group it owns.
    fn remove_mailbox_transferring(
        &self,
        id: MailboxId,
        transfer_ownership_to: Option<MailboxId>,
    ) -> Pending<()>;
}

/// API tokens, stored as SHA-256 hashes only.
pub trait TokenStore: Send + Sync {
    fn add_token(&self, token_hash: &str, info: TokenInfo) -> Pending<()>;
    fn token(&self, token_hash: &str) -> Result<Option<TokenInfo>>;
}

/// The web console's sign-in sessions (kept as hashes of their ids) and the figures of its home
/// page.
pub trait ConsoleStore: Send + Sync {
    fn add_console_session(&self, id_hash: &str, session: ConsoleSession) -> Pending<()>;
    fn console_session(&self, id_hash: &str) -> Result<Option<ConsoleSession>>;
    /// Records a use of the session at `now` (its idle expiry counts from the last use).
    fn touch_console_session(&self, id_hash: &str, now: Timestamp) -> Pending<()>;
    /// Signs the session out; nothing when there is none.
    fn delete_console_session(&self, id_hash: &str) -> Pending<()>;
    /// Deletes sessions idle since before `idle_before` or begun before `created_before`.
    fn purge_console_sessions(
        &self,
        idle_before: Timestamp,
        created_before: Timestamp,
    ) -> Pending<usize>;
    /// Mail flow since each time of `since` (one tenant's, or every tenant's for `None`), from
    /// the counters kept per tenant and UTC hour as mail is written: each window starts at the
    /// beginning of the hour of its `since` (up to an hour more than the exact window).
    fn mail_flow_counts(
        &self,
        tenant: Option<TenantId>,
        since: &[Timestamp],
    ) -> Result<Vec<MailFlowCounts>>;
    /// The same figures counted from the trace and the connection log themselves, the windows
    /// starting at the same hours: slow (a pass over the rows of the widest window), for
    /// checking the counters.
    fn mail_flow_recount(
        &self,
        tenant: Option<TenantId>,
        since: &[Timestamp],
    ) -> Result<Vec<MailFlowCounts>>;
    /// The senders and the recipients with the most recipients since `since`, at most `limit`
    /// of each, most first by their guaranteed count (ties by address), from the hourly
    /// summaries [`ConsoleStore::top_address_catch_up`] keeps (the window starts at the
    /// beginning of the hour of `since`, as [`ConsoleStore::mail_flow_counts`]'s): at most
    /// `TOP_CAPACITY` rows an hour whatever the number of distinct addresses.
    fn top_addresses(
        &self,
        tenant: Option<TenantId>,
        since: Timestamp,
        limit: usize,
    ) -> Result<(Vec<AddressCount>, Vec<AddressCount>)>;
    /// Feeds the recipients written since the last call (at most `max_rows`, and only those of
    /// messages received from the hour of `from` on) into the hourly top-address summaries, and
    /// drops summaries of hours before it; the number of recipients read (`max_rows`: call
    /// again).
    fn top_address_catch_up(&self, from: Timestamp, max_rows: usize) -> Pending<usize>;
    /// Recipients waiting in the queue.
    fn queued_recipients(&self, tenant: Option<TenantId>) -> Result<u64>;
    /// `owner`'s saved message trace queries, by name.
    fn saved_trace_queries(&self, owner: SavedQueryOwner) -> Result<Vec<SavedTraceQuery>>;
    /// Saves `query` under `name` for `owner`, replacing one of the same name (any case); at
    /// most [`SAVED_QUERIES_MAX`] an owner (`Invalid` beyond).
    fn save_trace_query(
        &self,
        owner: SavedQueryOwner,
        name: &str,
        query: &str,
    ) -> Pending<SavedTraceQuery>;
    /// Deletes `owner`'s saved query `name` (any case); `NotFound` when there is none.
    fn delete_trace_query(&self, owner: SavedQueryOwner, name: &str) -> Pending<()>;
}

/// A tenant's whole directory in one read, and the version that says when to read it again.
pub trait SnapshotStore: Send + Sync {
    /// Bumped by every change of the tenant's directory; a cached [`TenantDirectory`] of that
    /// tenant with this version is current.
    fn directory_version(&self, tenant: TenantId) -> Result<i64>;
    fn tenant_directory(&self, tenant: TenantId) -> Result<TenantDirectory>;
}

/// Groups: settings, owners, members and subscribers.
pub trait GroupStore: Send + Sync {
    fn create_group(&self, group: NewGroup) -> Pending<Group>;
    fn update_group(&self, id: GroupId, change: GroupChange) -> Pending<Group>;
    fn remove_group(&self, id: GroupId) -> Pending<()>;
    fn group(&self, id: GroupId) -> Result<Option<Group>>;
    fn groups(&self, tenant: Option<TenantId>) -> Result<Vec<Group>>;
}

/// Mail contacts: outside addresses in a tenant's directory.
pub trait ContactStore: Send + Sync {
    fn create_contact(&self, contact: NewContact) -> Pending<Contact>;
    fn contacts(&self, tenant: Option<TenantId>) -> Result<Vec<Contact>>;
    /// One page of contacts (the console's list), and whether more follow.
    fn contact_page(&self, q: &RecipientPage) -> Result<(Vec<Contact>, bool)>;
    fn remove_contact(&self, id: ContactId) -> Pending<()>;
}

/// Users' passwords, mailbox permissions, role groups and join requests.
pub trait RightsStore: Send + Sync {
    /// Sets (or clears) a mailbox's password hash; ends its open sessions.
    fn set_password(&self, mailbox: MailboxId, hash: Option<String>) -> Pending<()>;
    fn password_hash(&self, mailbox: MailboxId) -> Result<Option<String>>;
    /// Turns SMTP AUTH off (or on again) for a mailbox: Exchange's `Set-CASMailbox
    /// -SmtpClientAuthenticationDisabled`. Its password still logs in to the API.
    fn set_smtp_client_authentication_disabled(
        &self,
        mailbox: MailboxId,
        disabled: bool,
    ) -> Pending<()>;
    /// Whether SMTP AUTH is off for the mailbox; `NotFound` for no such mailbox.
    fn smtp_client_authentication_disabled(&self, mailbox: MailboxId) -> Result<bool>;

    fn grant(&self, permission: Permission) -> Pending<()>;
    fn revoke(&self, permission: Permission) -> Pending<()>;
    /// Makes a security group a role group (or stops it being one).
    fn assign_role(&self, group: GroupId, role: Role, assign: bool) -> Pending<()>;

    fn add_join_request(
        &self,
        group: GroupId,
        mailbox: MailboxId,
        kind: JoinRequestKind,
    ) -> Pending<JoinRequest>;
    fn join_requests(&self, group: GroupId) -> Result<Vec<JoinRequest>>;
    fn remove_join_request(&self, id: i64) -> Pending<()>;
    /// Marks a join request's owners as told; true when they already were (tell them once).
    fn mark_join_request_notified(&self, id: i64) -> Pending<bool>;
}

/// The routing decision for group recipients, and the moderation queue.
pub trait ModerationStore: Send + Sync {
    /// Applies the routing decision for a group recipient of a queued message; false when the
    /// recipient was no longer pending (nothing done).
    fn route_group_recipient(
        &self,
        recipient: i64,
        message: i64,
        outcome: GroupOutcome,
        now: Timestamp,
    ) -> Pending<bool>;
    fn moderation_queue(
        &self,
        tenant: Option<TenantId>,
        group: Option<GroupId>,
        state: Option<ModerationState>,
    ) -> Result<Vec<HeldMessage>>;
    /// Pending moderation requests whose time is up.
    fn expired_moderation(&self, now: Timestamp) -> Result<Vec<i64>>;
    /// Approves (the recipient becomes due again, marked approved), rejects or expires (the
    /// recipient fails and the sender gets an NDR) a held message.
    fn decide_moderation(
        &self,
        id: i64,
        decision: ModerationState,
        by: String,
        comment: String,
        now: Timestamp,
    ) -> Pending<HeldMessage>;
}

/// Microsoft 365 group mailboxes: conversations, items and the group calendar.
pub trait GroupMailboxStore: Send + Sync {
    /// Files a message in a group mailbox (threading it into a conversation) for a recipient
    /// that is still pending; returns false if it was already handled.
    /// Filing twice for the same recipient (a retry after a crash) files nothing the second time.
    fn file_group_item(&self, item: NewGroupItem) -> Pending<bool>;
    /// The conversation of the group's item with this Message-ID (without `<>`), if any.
    fn conversation_of_message(&self, group: GroupId, message_id: &str) -> Result<Option<i64>>;
    /// The most recently active conversation of the group with this normalized subject.
    fn conversation_by_subject(&self, group: GroupId, normalized: &str) -> Result<Option<i64>>;
    /// The group calendar's entries with these UIDs: (UID, event JSON); one indexed lookup each.
    fn group_calendar_entries(
        &self,
        group: GroupId,
        uids: &[String],
    ) -> Result<Vec<(String, String)>>;
    fn conversations(&self, group: GroupId) -> Result<Vec<Conversation>>;
    fn group_items(&self, group: GroupId, conversation: Option<i64>) -> Result<Vec<GroupItem>>;
    /// The group calendar: (UID, event JSON).
    fn group_calendar(&self, group: GroupId) -> Result<Vec<(String, String)>>;
}

/// The durable queue: messages with per-recipient state, and the trace events of each recipient.
pub trait QueueStore: Send + Sync {
    /// Commits a received message, its recipients and their first trace events (group commit).
    /// A message whose trace id is already queued is refused with [`crate::StoreError::Conflict`]
    /// (for a generated message with a derived trace id: it was queued before). Each recipient
    /// expires the store's message expiration after the message was received (Exchange's
    /// `MessageExpirationTimeout`, `queue.message_expiration_hours`).
    fn enqueue(&self, message: NewMessage) -> Pending<()>;
    /// Takes due recipients for `lease.owner`: messages with recipients whose next attempt has
    /// come (local delivery, routing, relay, the platform postmaster; outside addresses only
    /// when held in quarantine: the outbound agent takes the others, `due_remote`), oldest
    /// first: `limit` recipients at most, and messages whose content stays within
    /// [`crate::DUE_CONTENT_BUDGET`]. Each recipient handed out is leased to the owner until
    /// `lease.until` in the writer's transaction, so no other caller is handed it meanwhile;
    /// completing or deferring it ends the lease, and a lease that runs out (its node died)
    /// makes it due again for anyone. Blocks on the writer: call it from blocking code.
    fn due_deliveries(
        &self,
        now: Timestamp,
        lease: &Lease,
        limit: usize,
    ) -> Result<Vec<QueuedMessage>>;
    /// [`QueueStore::due_deliveries`] for the outbound agent: due recipients routed outside
    /// every tenant (`Route::Remote`, not held in quarantine), leased the same way, with their
    /// messages' content (a spooled message's queue file named in `spool`, to be streamed).
    /// `due_deliveries` no longer hands them out.
    fn due_remote(&self, now: Timestamp, lease: &Lease, limit: usize)
    -> Result<Vec<QueuedMessage>>;
    /// Applies delivery outcomes in one transaction: mailbox items, quotas, statuses, events.
    /// An outcome whose writes fail is rolled back alone and returned; the others are applied.
    fn complete_deliveries(
        &self,
        outcomes: Vec<DeliveryOutcome>,
        now: Timestamp,
    ) -> Pending<Vec<FailedOutcome>>;
    /// Failed recipients whose sender has not yet been sent an NDR and whose NDR is due at `now`,
    /// grouped by message. Not leased: an NDR's trace id is derived from what it reports, so
    /// two nodes that build the same NDR queue it once.
    fn due_ndrs(&self, now: Timestamp, limit: usize) -> Result<Vec<NdrWork>>;
    /// Recipients that owe their sender a delivery status notification other than an NDR,
    /// grouped by message and kind (RFC 3461 §4.1): a delay notice for a recipient still pending
    /// after at least one deferral whose message arrived at or before `arrived_by` (once per
    /// recipient; never when its NOTIFY leaves DELAY out, nor to a null sender or one that
    /// failed SPF/DMARC), and a success notice for one delivered or relayed with
    /// `NOTIFY=SUCCESS`. Not leased: a notice's trace id is derived from what it reports.
    fn due_notices(&self, arrived_by: Timestamp, limit: usize) -> Result<Vec<NoticeWork>>;
    /// The notice of `kind` for these recipients is done with (queued, or it could not be
    /// generated): none is owed any more, and each gets a `Dsn` event with `detail`.
    fn notices_done(
        &self,
        kind: NoticeKind,
        recipients: Vec<i64>,
        detail: String,
        now: Timestamp,
    ) -> Pending<()>;
    /// Applies deferrals (see [`Deferral`]): for [`QueueWork::Delivery`], recipients still
    /// pending are counted, scheduled and given their last error, or fail at their expiry; for
    /// [`QueueWork::Ndr`], failed recipients still owing an NDR are retried the same way, and
    /// their NDR is given up once the message expiration has passed since they failed. Items no
    /// longer waiting for that work are left alone; each deferral ends the recipient's lease.
    fn defer(&self, work: Vec<DeferredWork>, now: Timestamp) -> Pending<()>;
    /// One page of the recipients waiting in the queue, oldest message first (ties by
    /// recipient row, so pages never overlap).
    fn queue(&self, query: &QueueQuery) -> Result<QueuePage>;
    /// An administrator's action on the recipients of message `trace_id` waiting in the queue
    /// (`recipient`: only that one; `tenant`: only that tenant's): retry them now, or delete
    /// them. Recipients a node is delivering right now (their lease runs) and those held for
    /// moderation are left alone and counted as busy.
    fn queue_act(
        &self,
        tenant: Option<TenantId>,
        trace_id: &str,
        recipient: Option<&str>,
        action: QueueAction,
        now: Timestamp,
    ) -> Pending<QueueActed>;
}

/// Mailbox folders and the messages in them.
pub trait MailStore: Send + Sync {
    /// Messages of a mailbox (or one folder), newest first: `limit` of them after skipping `offset`.
    fn mail_page(
        &self,
        mailbox: MailboxId,
        folder: Option<Folder>,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<MailItem>>;
    fn mail_list(&self, mailbox: MailboxId, folder: Option<Folder>) -> Result<Vec<MailItem>> {
        self.mail_page(mailbox, folder, i64::MAX as usize, 0)
    }
    fn mail_item(&self, mailbox: MailboxId, id: i64) -> Result<Option<MailItem>>;
    /// Prepares content for [`QueueStore::complete_deliveries`]: content larger than
    /// [`INLINE_BLOB_MAX`](crate::blobs::INLINE_BLOB_MAX) is written to the blob directory
    /// (synced) now; smaller content is returned to be stored in the delivery's own transaction.
    fn stage_blob(&self, content: Vec<u8>) -> Result<StagedBlob>;
    /// [`MailStore::stage_blob`] for a spooled message: its stored form is `head` followed by
    /// its queue file, streamed into the blob directory (never whole in memory). Returns the
    /// blob and its size.
    fn stage_spooled(&self, head: Vec<u8>, spool: &std::path::Path) -> Result<(StagedBlob, u64)>;
    fn blob(&self, hash: &str) -> Result<Vec<u8>>;
    /// Removes blobs no mailbox or group mailbox refers to any more (after mailboxes, groups or
    /// tenants were removed). Blob files younger than `min_age` are spared: a delivery may have
    /// just written one and not yet committed the reference. Call it where blobs are staged (the
    /// delivery agent, between its steps), never concurrently with staging. Blocks; returns
    /// (rows, files) removed.
    fn collect_garbage(&self, min_age: std::time::Duration) -> Result<(usize, usize)>;
}

/// Message trace queries and retention.
pub trait TraceStore: Send + Sync {
    /// One page of trace rows, newest first (ties by recipient row, so pages never overlap).
    fn trace(&self, query: &TraceQuery) -> Result<TracePage>;
    fn trace_detail(
        &self,
        tenant: Option<TenantId>,
        trace_id: &str,
        recipient: Option<&str>,
    ) -> Result<Vec<TraceDetailRow>>;
    /// Deletes trace (and finished queue records) of messages received before `before`.
    fn purge_trace(&self, before: Timestamp) -> Pending<usize>;
}

/// Tenants' throttle exemption lists (the throttle itself keeps its state in memory and in a
/// snapshot file, not here). Networks are given in canonical form; the store does not parse
/// them.
pub trait ThrottleStore: Send + Sync {
    /// Adds an entry: `Conflict` if the tenant has it, `Invalid` beyond
    /// [`THROTTLE_EXEMPTIONS_MAX`](crate::THROTTLE_EXEMPTIONS_MAX) entries.
    fn add_throttle_exemption(
        &self,
        tenant: TenantId,
        network: &str,
    ) -> Pending<ThrottleExemptionRow>;
    /// Removes an entry: `NotFound` if the tenant has none such.
    fn remove_throttle_exemption(&self, tenant: TenantId, network: &str) -> Pending<()>;
    /// One tenant's entries, or every tenant's (`None`), by tenant and network.
    fn throttle_exemptions(&self, tenant: Option<TenantId>) -> Result<Vec<ThrottleExemptionRow>>;
}

/// Tenants' connectors (issue 10): inbound connectors now (`New-InboundConnector`); outbound
/// connectors will join them here. Names are unique per tenant, compared in any case.
pub trait ConnectorStore: Send + Sync {
    /// A tenant's inbound connectors, by name.
    fn inbound_connectors(&self, tenant: TenantId) -> Result<Vec<InboundConnectorRecord>>;
    /// One of them: `NotFound` naming it.
    fn inbound_connector(&self, tenant: TenantId, name: &str) -> Result<InboundConnectorRecord>;
    /// Adds a connector (its settings validated again): `Conflict` when the tenant has one of
    /// that name; `Invalid` past [`INBOUND_CONNECTORS_MAX`](crate::INBOUND_CONNECTORS_MAX);
    /// `InUse` when it is on-premises and one of its IPs is on an on-premises connector of
    /// another tenant (seed E3, the shared-IP pitfall), unless `force`.
    fn add_inbound_connector(
        &self,
        tenant: TenantId,
        name: &str,
        connector: hato_protection::connector::InboundConnector,
        force: bool,
    ) -> Pending<InboundConnectorRecord>;
    /// Replaces a connector's settings; the shared-IP check as for an add, for the IPs it did
    /// not have (or all of them, when it becomes on-premises).
    fn set_inbound_connector(
        &self,
        tenant: TenantId,
        name: &str,
        connector: hato_protection::connector::InboundConnector,
        force: bool,
    ) -> Pending<InboundConnectorRecord>;
    fn remove_inbound_connector(&self, tenant: TenantId, name: &str) -> Pending<()>;
    /// Moved by every change of any tenant's inbound connectors or organisation settings (and
    /// by a tenant's removal): the edge reads it per MAIL FROM and reloads only when it moved.
    fn connector_version(&self) -> Result<i64>;
    /// Every tenant's enabled inbound connectors (for the edge: attribution by IP across
    /// tenants, each tenant's partner connectors), oldest first.
    fn enabled_inbound_connectors(&self) -> Result<Vec<InboundConnectorRecord>>;
}

/// Tenants' outbound connectors (`New-OutboundConnector`, issue 10 item 4). Names are unique
/// per tenant, compared in any case. Every change moves
/// [`ConnectorStore::connector_version`].
pub trait OutboundConnectorStore: Send + Sync {
    /// A tenant's outbound connectors, by name.
    fn outbound_connectors(&self, tenant: TenantId) -> Result<Vec<OutboundConnectorRecord>>;
    /// One of them: `NotFound` naming it.
    fn outbound_connector(&self, tenant: TenantId, name: &str) -> Result<OutboundConnectorRecord>;
    /// Adds a connector (its settings validated again): `Conflict` when the tenant has one of
    /// that name; `Invalid` past [`OUTBOUND_CONNECTORS_MAX`](crate::OUTBOUND_CONNECTORS_MAX).
    fn add_outbound_connector(
        &self,
        tenant: TenantId,
        name: &str,
        connector: hato_protection::outbound_connector::OutboundConnector,
    ) -> Pending<OutboundConnectorRecord>;
    /// Replaces a connector's settings.
    fn set_outbound_connector(
        &self,
        tenant: TenantId,
        name: &str,
        connector: hato_protection::outbound_connector::OutboundConnector,
    ) -> Pending<OutboundConnectorRecord>;
    fn remove_outbound_connector(&self, tenant: TenantId, name: &str) -> Pending<()>;
    /// Every tenant's outbound connectors, enabled or not (the outbound agent's selector), by
    /// tenant and name.
    fn all_outbound_connectors(&self) -> Result<Vec<OutboundConnectorRecord>>;
}

/// Tenants' organisation-wide settings (`Get-`/`Set-OrganizationConfig`).
pub trait OrganizationConfigStore: Send + Sync {
    /// The tenant's settings (the defaults until changed); `NotFound` for no such tenant.
    fn organization_config(&self, tenant: TenantId) -> Result<OrganizationConfig>;
    fn set_organization_config(
        &self,
        tenant: TenantId,
        config: OrganizationConfig,
    ) -> Pending<OrganizationConfig>;
    /// The tenants that have `RejectDirectSend` on.
    fn reject_direct_send_tenants(&self) -> Result<Vec<TenantId>>;
}

/// Outbound pools' warm-up (issue 10 item 9, migration 33): each pool's plan, what each pool
/// delivered and had deferred by pacing per UTC day, and the pools' back-offs from destination
/// domains after throttling replies. Pools are the server's, not a tenant's.
pub trait WarmupStore: Send + Sync {
    /// Every pool's plan, by pool name.
    fn warmup_plans(&self) -> Result<Vec<WarmupPlan>>;
    /// Sets (or replaces) the pool's plan.
    fn set_warmup_plan(&self, plan: WarmupPlan) -> Pending<WarmupPlan>;
    /// Removes the pool's plan; whether it had one. The day counts stay.
    fn clear_warmup_plan(&self, pool: &str) -> Pending<bool>;
    /// Every pool's counts for the UTC day `day` (pools with none are left out).
    fn warmup_days(&self, day: i64) -> Result<Vec<WarmupDay>>;
    /// Adds to the pool's counts of `day` (rows older than 60 days go in the same write).
    fn count_warmup(&self, pool: &str, day: i64, sent: u64, deferred: u64) -> Pending<()>;
    /// Every back-off (in force or not: the count of replies in a row is kept until a success).
    fn outbound_backoffs(&self) -> Result<Vec<OutboundBackoff>>;
    /// A throttling reply: the pool's back-off from the domain begins (or grows, when the last
    /// one had ended without a success since) and the day's counts move; the back-off as now,
    /// and whether this reply began it (`false`: one was in force already, left as it was).
    fn record_throttle(&self, throttle: ThrottleReply) -> Pending<(OutboundBackoff, bool)>;
    /// A success: the pool's back-off from the domain is forgotten.
    fn clear_backoff(&self, pool: &str, domain: &str) -> Pending<()>;
}

/// Outbound spam (issue 10 item 8; `exchange-online-behaviour.md` §7): each tenant's outbound
/// spam filter policy, the recipients each sender sent to in the current UTC hour and day
/// (persisted, so a restart does not start them again), and the restricted senders.
pub trait OutboundSpamStore: Send + Sync {
    /// The tenant's policy (Exchange's defaults until changed); `NotFound` for no such tenant.
    fn outbound_spam_filter(
        &self,
        tenant: TenantId,
    ) -> Result<hato_protection::spam::outbound::OutboundSpamPolicy>;
    fn set_outbound_spam_filter(
        &self,
        tenant: TenantId,
        policy: hato_protection::spam::outbound::OutboundSpamPolicy,
    ) -> Pending<hato_protection::spam::outbound::OutboundSpamPolicy>;
    /// Adds one message's recipients to `sender`'s counts at `now`, in fixed windows: the UTC
    /// hour (external and internal) and the UTC day (all), each starting again when `now` is in
    /// a later one. Returns the counts before and after, in one write.
    fn count_outbound_recipients(
        &self,
        tenant: TenantId,
        sender: &str,
        recipients: OutboundRecipients,
        now: Timestamp,
    ) -> Pending<(
        hato_protection::spam::outbound::Tally,
        hato_protection::spam::outbound::Tally,
    )>;
    /// Restricts a sender (replacing an earlier restriction of it).
    fn restrict_sender(&self, restricted: RestrictedSender) -> Pending<()>;
    /// The sender's restriction in force at `now`, if any.
    fn restricted_sender(
        &self,
        tenant: TenantId,
        sender: &str,
        now: Timestamp,
    ) -> Result<Option<RestrictedSender>>;
    /// The tenant's restrictions in force at `now`, oldest first.
    fn restricted_senders(&self, tenant: TenantId, now: Timestamp)
    -> Result<Vec<RestrictedSender>>;
    /// Unblocks a sender (`Remove-BlockedSenderAddress`): its restriction and its counts go, so
    /// it starts afresh; `NotFound` when it is not restricted at `now`.
    fn remove_restricted_sender(
        &self,
        tenant: TenantId,
        sender: &str,
        now: Timestamp,
    ) -> Pending<RestrictedSender>;
}

/// DKIM signing configs per accepted domain (issue 10; Exchange's `New-`/`Set-`/`Rotate-`/
/// `Remove-DkimSigningConfig`). The private keys are stored as PKCS#8 DER in the database, which
/// then holds secrets. A config goes with its domain and with its tenant.
pub trait DkimStore: Send + Sync {
    /// Adds a config for one of the tenant's verified accepted domains, with the keys of
    /// `selector1` (active) and `selector2`: `Invalid` for a domain that is not one of the
    /// tenant's (another tenant's too, unnamed) or is pending verification, `Conflict` when it
    /// has one.
    fn add_dkim_signing_config(
        &self,
        tenant: TenantId,
        domain: &str,
        enabled: bool,
        keys: [NewDkimKey; 2],
    ) -> Pending<DkimSigningConfig>;
    /// The tenant's configs (every tenant's with `None`), by domain.
    fn dkim_signing_configs(&self, tenant: Option<TenantId>) -> Result<Vec<DkimSigningConfig>>;
    /// One config: `NotFound` naming the domain.
    fn dkim_signing_config(&self, tenant: TenantId, domain: &str) -> Result<DkimSigningConfig>;
    fn set_dkim_signing_enabled(
        &self,
        tenant: TenantId,
        domain: &str,
        enabled: bool,
    ) -> Pending<DkimSigningConfig>;
    /// `Rotate-DkimSigningConfig`: the other selector signs from now on, and the selector that
    /// signed until now gets `new_key` (its record is to be published before the next rotation;
    /// until the record changes, receivers still verify what the old key signed).
    fn rotate_dkim_signing_config(
        &self,
        tenant: TenantId,
        domain: &str,
        new_key: NewDkimKey,
    ) -> Pending<DkimSigningConfig>;
    fn remove_dkim_signing_config(&self, tenant: TenantId, domain: &str) -> Pending<()>;
    /// Moved by every change of any config (a domain's or tenant's removal included): the
    /// signer reloads only when it moved.
    fn dkim_version(&self) -> Result<i64>;
    /// A number that moves after every committed change of any config or key (the store's
    /// policy generation, [`MalwareFilterStore::content_policy_generation`]): while it stays,
    /// the signer need not read [`DkimStore::dkim_version`] again. `None` when the store cannot
    /// know of every change.
    fn dkim_generation(&self) -> Option<u64> {
        None
    }
    /// Every enabled config of every tenant (the signer's).
    fn enabled_dkim_signing_configs(&self) -> Result<Vec<DkimSigningConfig>>;
}

/// MTA-STS policies (RFC 8461) fetched for recipient domains, kept so that a restart still has
/// them: §5.1 wants a cached policy used while it has not expired, when a refresh fails.
pub trait MtaStsStore: Send + Sync {
    /// The policy kept for `domain` (lower case), expired or not.
    fn mta_sts_policy(&self, domain: &str) -> Result<Option<MtaStsPolicyRecord>>;
    /// Keeps `policy` for its domain (replacing the one kept), and forgets policies that
    /// expired before `policy.fetched`.
    fn save_mta_sts_policy(&self, policy: MtaStsPolicyRecord) -> Pending<()>;
}

/// The hosted quarantine: one item per recipient a stage held (delivery stores them; see
/// [`RecipientOutcome::Quarantine`]).
pub trait QuarantineStore: Send + Sync {
    /// A page of items, newest first (`received`, then id).
    fn quarantine_items(&self, query: &QuarantineQuery) -> Result<QuarantinePage>;
    fn quarantine_item(&self, id: i64) -> Result<Option<QuarantineItem>>;
    /// Delivers a held item to the Inbox of its recipient's mailbox (the one it was routed to,
    /// else the mailbox that answers to its address now), in one write: the mailbox item, the
    /// item marked released by `by`, and on the recipient's trace a `Release` event naming `by`
    /// and a `Deliver` event. `Conflict` when it was released or deleted already, `NotFound`
    /// when no mailbox takes it any more, `InUse` when the mailbox is over its quota.
    fn release_quarantined(&self, id: i64, by: &str, now: Timestamp) -> Pending<QuarantineItem>;
    /// Deletes a held or released item's content (the row stays, marked deleted by `by`, until
    /// it expires); `Conflict` when it was deleted already.
    fn delete_quarantined(&self, id: i64, by: &str, now: Timestamp) -> Pending<QuarantineItem>;
    /// Removes the items that expired at or before `now` (their content goes with the next
    /// blob garbage collection unless something else names it); returns how many.
    fn purge_quarantine(&self, now: Timestamp) -> Pending<usize>;
    /// Records the recipient's request to release a held item (`by`: who asked). `InUse` when
    /// the item is not held any more, or a request was made already (pending or denied).
    fn request_release(&self, id: i64, by: &str, now: Timestamp) -> Pending<QuarantineItem>;
    /// Denies a held item's pending release request (`by`: the admin); the item stays held.
    /// `InUse` when there is no pending request or the item is not held.
    fn deny_release(&self, id: i64, by: &str, now: Timestamp) -> Pending<QuarantineItem>;
    /// A tenant's custom quarantine policies, by name (the built-in ones are not stored:
    /// [`QuarantinePolicy::built_ins`]).
    fn quarantine_policies(&self, tenant: TenantId) -> Result<Vec<QuarantinePolicy>>;
    /// Creates (`create`: `InUse` when the name is taken) or replaces a custom policy;
    /// `NotFound` when replacing one that does not exist.
    fn put_quarantine_policy(
        &self,
        tenant: TenantId,
        policy: QuarantinePolicy,
        create: bool,
        now: Timestamp,
    ) -> Pending<()>;
    /// Removes a custom policy; `NotFound` when there is none of that name.
    fn remove_quarantine_policy(&self, tenant: TenantId, name: &str) -> Pending<()>;
}

/// End-user quarantine notifications (Exchange's quarantine notifications, formerly end-user spam
/// notifications): whom a digest is owed, what it lists, when each recipient was last told, and
/// the server's secret that signs release links.
pub trait QuarantineDigestStore: Send + Sync {
    /// Recipients with items held (of the kinds users manage, [`QuarantineKind::admin_only`]
    /// left out) that expire after `now` and were quarantined after the newest time their last
    /// digest covered; by tenant and address, the page after `after`, at most `limit`.
    fn digest_candidates(
        &self,
        now: Timestamp,
        after: Option<(TenantId, String)>,
        limit: usize,
    ) -> Result<Vec<DigestCandidate>>;
    /// A recipient's items for a digest: held, of the kinds users manage, expiring after
    /// `now`, quarantined after `since` (all if `None`) and at or before `until`; newest first,
    /// at most `limit`, and how many there are in all.
    fn digest_items(
        &self,
        tenant: TenantId,
        recipient: &str,
        since: Option<Timestamp>,
        until: Timestamp,
        now: Timestamp,
        limit: usize,
    ) -> Result<DigestItems>;
    /// Records that a digest went out at `sent`, covering items quarantined up to
    /// `covered_until`.
    fn record_digest(
        &self,
        tenant: TenantId,
        recipient: &str,
        sent: Timestamp,
        covered_until: Timestamp,
    ) -> Pending<()>;
    fn digest_record(&self, tenant: TenantId, recipient: &str) -> Result<Option<DigestRecord>>;
    /// The secret that signs release links: `fresh` is stored the first time, and what was
    /// stored first is answered ever after (so every process on one store signs alike).
    fn release_link_secret(&self, fresh: [u8; 32]) -> Pending<Vec<u8>>;
    /// The secret if one was made; `None` before the first digest (no link can be valid yet).
    fn existing_release_link_secret(&self) -> Result<Option<Vec<u8>>>;
}

/// Tenants' malware filter policies (Exchange's `Get-`/`Set-`/`New-`/`Remove-MalwareFilterPolicy`
/// with their `MalwareFilterRule`s): one default per tenant and custom ones by priority.
pub trait MalwareFilterStore: Send + Sync {
    /// The versions of what the content pipeline reads of a tenant (its directory, its
    /// transport rules, its malware filter policies), in one read: each moves with every change
    /// to what it versions, so a cache of them stays valid while they stay.
    fn content_policy_versions(&self, tenant: TenantId) -> Result<ContentPolicyVersions>;
    /// A number that moves, in memory and without a read, after every committed change to any
    /// tenant's directory (its accepted domains too), transport rules, malware filter, spam
    /// filter, outbound spam or connection filter policies, restricted senders, inbound or
    /// outbound connectors or organization config, before the writer tells the change's caller;
    /// `None` for a store that cannot know of every change (another process may write). While
    /// it stays, versions read earlier are still the versions, and answers read earlier are
    /// still the answers (`hato_transport::cache`).
    fn content_policy_generation(&self) -> Option<u64> {
        None
    }
    /// The tenant's default policy: as stored, or Exchange's defaults if never changed.
    /// `NotFound` for a tenant that does not exist.
    fn malware_filter(&self, tenant: TenantId) -> Result<MalwareFilterPolicy> {
        self.malware_filter_named(tenant, DEFAULT_MALWARE_FILTER)
    }
    /// A policy by name (case-insensitive): `NotFound` when the tenant has none such.
    fn malware_filter_named(&self, tenant: TenantId, name: &str) -> Result<MalwareFilterPolicy>;
    /// Every policy of the tenant in the order they are tried: custom ones by priority, then
    /// the default.
    fn malware_filters(&self, tenant: TenantId) -> Result<Vec<MalwareFilterPolicy>>;
    /// Replaces the policy of that name: the default (`priority` `None`, name `Default`), or a
    /// custom one that exists. A custom policy taking a priority another holds pushes that one
    /// and those after it down by one (Exchange's `-Priority`). `NotFound` for a custom name the
    /// tenant does not have.
    fn set_malware_filter(
        &self,
        tenant: TenantId,
        policy: MalwareFilterPolicy,
    ) -> Pending<MalwareFilterPolicy>;
    /// Adds a custom policy (`priority` set: at most the number of custom policies, shifting
    /// as above). `Conflict` when the name is taken, `Invalid` for the name `Default` or a
    /// priority past the end.
    fn add_malware_filter(
        &self,
        tenant: TenantId,
        policy: MalwareFilterPolicy,
    ) -> Pending<MalwareFilterPolicy>;
    /// Removes a custom policy (those after it move up); the default cannot be removed
    /// (`Invalid`).
    fn remove_malware_filter(&self, tenant: TenantId, name: &str) -> Pending<()>;
}

/// Tenants' anti-spam policies (Exchange's `Get-`/`Set-`/`New-`/`Remove-HostedContentFilterPolicy`
/// with their `HostedContentFilterRule`s), users' junk / not-junk reports, and each tenant's
/// personalised classifier model. Every change to a tenant's policies or model moves
/// [`MalwareFilterStore::content_policy_versions`] (`spam_filters`, `spam_model`) and
/// [`MalwareFilterStore::content_policy_generation`], as malware policy changes do.
pub trait SpamFilterStore: Send + Sync {
    /// The tenant's default policy: as stored, or Exchange's defaults if never changed.
    /// `NotFound` for a tenant that does not exist.
    fn spam_filter(&self, tenant: TenantId) -> Result<SpamFilterPolicyRecord> {
        self.spam_filter_named(tenant, DEFAULT_SPAM_FILTER)
    }
    /// A policy by name (case-insensitive): `NotFound` when the tenant has none such.
    fn spam_filter_named(&self, tenant: TenantId, name: &str) -> Result<SpamFilterPolicyRecord>;
    /// Every policy of the tenant in the order they are tried: custom ones by priority, then
    /// the default. [`spam_policy_for`](crate::spam_policy_for) picks one recipient's.
    fn spam_filters(&self, tenant: TenantId) -> Result<Vec<SpamFilterPolicyRecord>>;
    /// Replaces the policy of that name (the default, or a custom one that exists); a custom
    /// policy taking a priority another holds pushes that one and those after it down by one.
    /// `Invalid` when the settings fail [`SpamFilterPolicy::validate`](hato_protection::spam::SpamFilterPolicy::validate).
    fn set_spam_filter(
        &self,
        tenant: TenantId,
        policy: SpamFilterPolicyRecord,
    ) -> Pending<SpamFilterPolicyRecord>;
    /// Adds a custom policy (`priority` `None`: last). `Conflict` when the name is taken,
    /// `Invalid` for the name `Default`, a priority past the end, no condition, or settings
    /// that fail validation.
    fn add_spam_filter(
        &self,
        tenant: TenantId,
        policy: SpamFilterPolicyRecord,
    ) -> Pending<SpamFilterPolicyRecord>;
    /// Removes a custom policy (those after it move up); the default cannot be removed.
    fn remove_spam_filter(&self, tenant: TenantId, name: &str) -> Pending<()>;

    /// The tenant's personalised classifier model (opaque bytes) and its version, if any.
    fn spam_tenant_model(&self, tenant: TenantId) -> Result<Option<(Vec<u8>, i64)>>;
    /// Stores the tenant's model; returns its new version (1 for the first).
    fn set_spam_tenant_model(&self, tenant: TenantId, model: Vec<u8>) -> Pending<i64>;

    /// Records a user's junk / not-junk report of a message delivered to a mailbox of the
    /// tenant, in one write: the report, and an `AgentInfo` event on that recipient's trace.
    /// The same reporter saying the same again changes nothing (`recorded` false); saying the
    /// opposite replaces the earlier report (a new id, `replaces` set). `NotFound` when the
    /// tenant has no such trace id and recipient delivered to a mailbox (or not to
    /// `report.mailbox` when given).
    fn report_spam(&self, report: NewSpamReport) -> Pending<SpamReportOutcome>;
    /// The tenant's reports with an id above `after_id`, in order of id, at most `limit`:
    /// what the classifier learns from, consumed in order (keep the last id seen).
    fn spam_reports_after(
        &self,
        tenant: TenantId,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<SpamReport>>;
    /// Moves a mailbox item to `folder`. Junk Email → Inbox is a not-junk report by `by`,
    /// Inbox → Junk Email a junk report ([`SpamFilterStore::report_spam`], same write), when
    /// the message's trace is still kept. `NotFound` for no such item in the mailbox.
    fn move_mail(
        &self,
        mailbox: MailboxId,
        id: i64,
        folder: Folder,
        by: &str,
        now: Timestamp,
    ) -> Pending<MailMove>;
    /// Whether hato carried a message with this Message-ID (`<...>`, as stored) from the
    /// envelope sender `sender` while its trace is kept: a delivery report about it that comes
    /// back to `sender` is a real NDR, not backscatter (`MarkAsSpamNdrBackscatter`).
    fn carried_message_from(&self, message_id: &str, sender: &str) -> Result<bool>;
}

/// Tenants' connection filter policies: the IP allow and block lists the edge decides on at RCPT.
pub trait ConnectionFilterStore: Send + Sync {
    fn connection_filter(&self, tenant: TenantId) -> Result<ConnectionFilterPolicy>;
    /// The version of the tenant's policy (0: never changed), in one indexed read: a policy
    /// read at this version is current, so the edge reloads a tenant's lists only after they
    /// changed.
    fn connection_filter_version(&self, tenant: TenantId) -> Result<i64>;
    /// Applies a change in one write, removals first: an entry already listed is not added
    /// twice, one not listed is not removed. Refused ([`crate::StoreError::Invalid`]) when a
    /// list would hold more entries than the store's limit (Exchange's 1,273 by default), and
    /// ([`crate::StoreError::NotFound`]) for a tenant that does not exist.
    fn change_connection_filter(
        &self,
        tenant: TenantId,
        change: ConnectionFilterChange,
    ) -> Pending<ConnectionFilterPolicy>;
}

/// The connection log: every connection the edge refused, deferred or cut.
pub trait ConnectionLogStore: Send + Sync {
    /// Adds a row (group commit: nobody needs to wait for it, the session's reply does not).
    fn log_connection(&self, record: NewConnectionRecord) -> Pending<()>;
    /// One page of rows, newest first (ties by row, so pages never overlap).
    fn connections(&self, query: &ConnectionQuery) -> Result<ConnectionPage>;
    /// Deletes rows older than `before` (`edge.connection_log_retention_days`).
    fn purge_connections(&self, before: Timestamp) -> Pending<usize>;
}

/// The provider's block list (operator only) and the requests made on its delist page.
pub trait BlockListStore: Send + Sync {
    /// Adds an entry; [`crate::StoreError::Conflict`] when the same entry is listed and not
    /// expired at `entry.added` (an expired one not purged yet is replaced).
    fn add_block(&self, entry: NewBlockEntry) -> Pending<BlockEntry>;
    /// The entries that still match at `now`, oldest first.
    fn block_entries(&self, now: Timestamp) -> Result<Vec<BlockEntry>>;
    /// The entry with this canonical text, expired or not.
    fn block_entry(&self, entry: &str) -> Result<Option<BlockEntry>>;
    /// Removes an entry (canonical text) and, in the same write, closes the pending delist
    /// requests for it (`by` and `now` recorded, "entry removed" the reason);
    /// [`crate::StoreError::NotFound`] when none has it.
    fn remove_block(&self, entry: &str, by: &str, now: Timestamp) -> Pending<BlockEntry>;
    /// Removes the entries expired at `now` and the delist requests made before
    /// `requests_before`; returns how many of each.
    fn purge_block_list(
        &self,
        now: Timestamp,
        requests_before: Timestamp,
    ) -> Pending<(usize, usize)>;
    /// Records a delist request; returns its id.
    fn add_delist_request(&self, request: NewDelistRequest) -> Pending<i64>;
    /// The request whose confirmation token has this hash.
    fn delist_request_by_token(&self, token_hash: &str) -> Result<Option<DelistRequest>>;
    /// Uses a confirmation token, once: in one write, a token that is known, unused and not
    /// expired at `now` is marked used and removes the entry it was mailed for, if that entry
    /// is still there (the same row: an entry listed anew since is not removed).
    fn confirm_delist(&self, token_hash: &str, now: Timestamp) -> Pending<DelistConfirmation>;
    /// The recorded delist requests, newest first, at most `limit`.
    fn delist_requests(&self, limit: usize) -> Result<Vec<DelistRequest>> {
        self.delist_request_page(&DelistRequestQuery {
            status: None,
            offset: 0,
            limit,
        })
    }
    /// One page of the recorded delist requests, newest first, in the state asked for (the
    /// filter and the page are the query's).
    fn delist_request_page(&self, query: &DelistRequestQuery) -> Result<Vec<DelistRequest>>;
    /// The request with this id.
    fn delist_request(&self, id: i64) -> Result<Option<DelistRequest>>;
    /// The operator's decision on a pending request, in one write: approving removes the
    /// entry listed as the request's (by its text, whatever row lists it now), denying keeps
    /// it and makes the request's link remove nothing. [`crate::StoreError::NotFound`] for an
    /// unknown id; [`crate::StoreError::InUse`] (a conflict) for a request decided already or one with
    /// nothing to decide (not pending).
    fn decide_delist(
        &self,
        id: i64,
        decision: DelistDecision,
        by: &str,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Pending<DelistDecided>;
}

/// Everything a hato node needs from its store.
/// Tenants' transport rules, in priority order (0 first; unique, contiguous).
pub trait TransportRuleStore: Send + Sync {
    /// The tenant's rules, by priority.
    fn transport_rules(&self, tenant: TenantId) -> Result<Vec<TransportRuleRecord>>;
    /// A rule by name (any case).
    fn transport_rule(&self, tenant: TenantId, name: &str) -> Result<Option<TransportRuleRecord>>;
    /// The version of the tenant's rules (0: never changed): moves with every change but not
    /// with hits, so rules compiled at a version are current while it stays.
    fn transport_rules_version(&self, tenant: TenantId) -> Result<i64>;
    /// Adds a rule at its priority (shifting the others from there down by one) or last.
    /// `Conflict` for a name the tenant has, `Invalid` for a priority beyond the last place or
    /// beyond [`TRANSPORT_RULES_MAX`](crate::TRANSPORT_RULES_MAX) rules, `NotFound` for no
    /// such tenant.
    fn add_transport_rule(
        &self,
        tenant: TenantId,
        rule: NewTransportRule,
    ) -> Pending<TransportRuleRecord>;
    /// Changes a rule; a new priority moves it there (the rules between shift by one).
    fn change_transport_rule(
        &self,
        tenant: TenantId,
        name: &str,
        change: TransportRuleChange,
    ) -> Pending<TransportRuleRecord>;
    /// Removes a rule; the rules after it move up by one.
    fn remove_transport_rule(&self, tenant: TenantId, name: &str) -> Pending<()>;
    /// Imports rules in one write: `replace` removes every rule first (the result is exactly
    /// `rules`, in the order of their priorities, given ones first); else each rule replaces the
    /// one of its name or is added. Nothing changes when one fails.
    fn import_transport_rules(
        &self,
        tenant: TenantId,
        rules: Vec<NewTransportRule>,
        replace: bool,
    ) -> Pending<Vec<TransportRuleRecord>>;
    /// Adds to rules' hit counters, (rule id, hits): one cheap write for a batch of messages
    /// (ids of rules removed since are skipped).
    fn count_transport_rule_hits(&self, hits: Vec<(i64, u64)>) -> Pending<()>;
}

/// Mailboxes' junk email configuration (Exchange's `Get-`/`Set-MailboxJunkEmailConfiguration`,
/// migration 39): `Enabled` and the Safe Senders (`TrustedSendersAndDomains`) and Blocked
/// Senders (`BlockedSendersAndDomains`) lists, each at most
/// [`hato_protection::spam::junk::MAX_ENTRIES`] entries. Every change moves the store's policy
/// generation ([`MalwareFilterStore::content_policy_generation`]), so the content pipeline's
/// cache of the lists ends with it.
pub trait JunkEmailStore: Send + Sync {
    /// The mailbox's configuration (the defaults until changed: enabled, both lists empty);
    /// `NotFound` for no such mailbox. One indexed read (the lists' primary key).
    fn junk_email_config(&self, mailbox: MailboxId) -> Result<JunkEmailConfig>;
    /// Changes it: entries normalized (`Invalid` for one that is neither an address nor a
    /// domain, or a list that would hold more than the limit); removing an entry not there
    /// changes nothing. `NotFound` for no such mailbox.
    fn set_junk_email_config(
        &self,
        mailbox: MailboxId,
        change: JunkEmailChange,
    ) -> Pending<JunkEmailConfig>;
    /// One page of a list (`trusted`: Safe Senders, else Blocked Senders), sorted, entries
    /// containing `filter` (lower case; empty: all), and whether more follow: the console's
    /// paged view, read by the primary key's range.
    fn junk_email_entries(
        &self,
        mailbox: MailboxId,
        trusted: bool,
        filter: &str,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<String>, bool)>;
}

pub trait Store:
    TenantStore
    + MailboxStore
    + TokenStore
    + SnapshotStore
    + GroupStore
    + ContactStore
    + RightsStore
    + ModerationStore
    + GroupMailboxStore
    + QueueStore
    + MailStore
    + TraceStore
    + ThrottleStore
    + ConnectionFilterStore
    + ConnectionLogStore
    + BlockListStore
    + TransportRuleStore
    + QuarantineStore
    + QuarantineDigestStore
    + MalwareFilterStore
    + SpamFilterStore
    + ConnectorStore
    + OutboundConnectorStore
    + OrganizationConfigStore
    + DkimStore
    + MtaStsStore
    + OutboundSpamStore
    + ConsoleStore
    + WarmupStore
    + JunkEmailStore
{
}
impl<T> Store for T where
    T: TenantStore
        + MailboxStore
        + TokenStore
        + SnapshotStore
        + GroupStore
        + ContactStore
        + RightsStore
        + ModerationStore
        + GroupMailboxStore
        + QueueStore
        + MailStore
        + TraceStore
        + ThrottleStore
        + ConnectionFilterStore
        + ConnectionLogStore
        + BlockListStore
        + TransportRuleStore
        + QuarantineStore
        + QuarantineDigestStore
        + MalwareFilterStore
        + SpamFilterStore
        + ConnectorStore
        + OutboundConnectorStore
        + OrganizationConfigStore
        + DkimStore
        + MtaStsStore
        + OutboundSpamStore
        + ConsoleStore
        + WarmupStore
        + JunkEmailStore
{
}
