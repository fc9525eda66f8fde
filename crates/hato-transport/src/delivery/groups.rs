//! Routing of group recipients: sender restrictions, moderation, one level of expansion, and
//! Microsoft 365 group mailboxes (conversations, calendar, subscribers' copies).

use super::{
    DeliveryAgent, GroupWork, MODERATION_EXPIRY_SECS, calendar_from_json, calendar_to_json,
    stored_form,
};
use crate::groupmail;
use crate::summarize;
use hato_core::directory::{GroupId, GroupType, Route};
use hato_core::reply;
use hato_core::{Reason, Refusal, Stage};
use hato_directory::DirectoryIndex;
use hato_directory::policy::{self, Sender};
use hato_store::{
    ExpandedRecipient, GroupMailboxStore, GroupOutcome, NewGroupItem, QueuedMessage,
    QueuedRecipient, StoreError,
};

impl DeliveryAgent {
    /// Routing of a group recipient: its sender restrictions (again: the directory may have
    /// changed, and nested groups are only checked here), moderation, then one level of
    /// expansion — or, for a Microsoft 365 group, filing in the group mailbox and copies to its
    /// subscribers.
    pub(super) fn route_group(
        &self,
        m: &QueuedMessage,
        r: &QueuedRecipient,
    ) -> Result<GroupWork, StoreError> {
        let work = |outcome| GroupWork {
            recipient: r.id,
            message: m.id,
            outcome,
            item: None,
            notice: None,
        };
        let Route::Group(group_id) = r.route else {
            return Ok(work(GroupOutcome::Fail(Refusal::new(
                reply::RECIPIENT_NOT_FOUND,
                Reason::new(Stage::Recipient, "The recipient is not routed to a group"),
            ))));
        };
        let ix = self.directory.index(r.tenant_id)?;
        let Some(group) = ix.group(group_id) else {
            return Ok(work(GroupOutcome::Fail(group_removed(
                &r.address, group_id,
            ))));
        };
        let name = group.address.clone().unwrap_or_else(|| group.name.clone());
        // The identity the message was queued with (the one its RCPT decision used), never one
        // derived from the envelope address.
        let sender = Sender {
            address: (!m.sender.is_empty()).then_some(m.sender.as_str()),
            identity: m.authenticated,
            domain_authenticated: m.authenticated_from.as_deref(),
        };
        if !r.approved {
            if let Err(refusal) = policy::check_sender(&ix, group, sender) {
                return Ok(work(GroupOutcome::Fail(refusal)));
            }
            if policy::needs_moderation(&ix, group, sender) {
                let moderators: Vec<(i64, String)> = policy::moderators(group)
                    .into_iter()
                    .filter_map(|id| ix.mailbox(id).map(|mb| (id, mb.address.clone())))
                    .collect();
                let expires = self.clock.now().plus_seconds(MODERATION_EXPIRY_SECS);
                let names: Vec<&str> = moderators.iter().map(|(_, a)| a.as_str()).collect();
                let reason = Reason::new(
                    Stage::Moderation,
                    format!(
                        "Held for moderation of group {name}; moderators: {}",
                        names.join(", ")
                    ),
                )
                .rule(format!("{name}: ModerationEnabled"))
                .figure("moderators", moderators.len())
                .figure("expires", expires.to_rfc3339());
                let notice =
                    self.approval_request(m, r.id, r.tenant_id, &name, &moderators, expires);
                let mut w = work(GroupOutcome::Hold {
                    group_id,
                    tenant_id: r.tenant_id,
                    expires,
                    reason,
                });
                w.notice = notice;
                return Ok(w);
            }
        }
        // Exchange §1.6 (Set-DistributionGroup): ReportToOriginatorEnabled sends members' NDRs
        // to the sender, ReportToManagerEnabled to the group's first owner; both, both; neither,
        // nobody.
        let manager = group
            .owners
            .iter()
            .find_map(|o| ix.mailbox(*o))
            .map(|mb| mb.address.clone());
        let report_to = match (
            group.settings.report_to_originator,
            group.settings.report_to_manager,
        ) {
            (true, false) => None,
            (true, true) => Some(
                (!m.sender.is_empty())
                    .then(|| m.sender.clone())
                    .into_iter()
                    .chain(manager)
                    .collect(),
            ),
            (false, true) => Some(manager.into_iter().collect()),
            (false, false) => Some(Vec::new()),
        };
        if group.group_type == GroupType::M365 {
            return self.to_group_mailbox(m, r, &ix, group_id, &name, report_to);
        }
        let members: Vec<ExpandedRecipient> = policy::expansion(&ix, group)
            .into_iter()
            .map(|mr| ExpandedRecipient {
                address: mr.address,
                tenant_id: r.tenant_id,
                route: mr.route,
                group_id: None,
                report_to: report_to.clone(),
                detail: format!("Recipient through group {name}"),
                fail: None,
            })
            .collect();
        let detail = format!(
            "Expanded group {name} ({}) to {} recipient(s)",
            group.group_type.as_str(),
            members.len()
        );
        let reason = Reason::new(Stage::Recipient, detail.as_str())
            .rule(name.as_str())
            .figure("members", members.len());
        Ok(work(GroupOutcome::Expand {
            detail,
            reason: Some(reason),
            members,
        }))
    }

    /// A Microsoft 365 group: the message is stored once in the group mailbox, threaded into a
    /// conversation, its invitations update the group calendar, and each subscriber gets a copy.
    fn to_group_mailbox(
        &self,
        m: &QueuedMessage,
        r: &QueuedRecipient,
        ix: &DirectoryIndex,
        group_id: i64,
        name: &str,
        report_to: Option<Vec<String>>,
    ) -> Result<GroupWork, StoreError> {
        let Some(group) = ix.group(group_id) else {
            return Ok(GroupWork {
                recipient: r.id,
                message: m.id,
                outcome: GroupOutcome::Fail(group_removed(&r.address, group_id)),
                item: None,
                notice: None,
            });
        };
        let stored = stored_form(m);
        let summary = summarize(&m.content);
        let headers = groupmail::thread_headers(&m.content);
        // At most MAX_CALENDAR_ITEMS invitations, applied to the entries they name (one bounded
        // read); the others are ignored and the trace says so.
        let calendar = groupmail::calendar_update(groupmail::calendar_items(&m.content), |uids| {
            self.store
                .group_calendar_entries(group_id, uids)
                .map(|rows| {
                    rows.iter()
                        .filter_map(|(_, json)| calendar_from_json(json))
                        .collect()
                })
        })?;
        let calendar_changes = calendar
            .changes
            .iter()
            .map(|c| (c.uid.clone(), Some(calendar_to_json(c))))
            .collect();
        let size = stored.len() as u64;
        let item = NewGroupItem {
            recipient_id: r.id,
            group_id,
            blob: self.store.stage_blob(stored)?,
            size,
            from: summary.from,
            subject: headers.subject.clone(),
            message_id: headers.message_id.clone().unwrap_or_default(),
            // Chosen when it is filed, after the items filed before it are committed.
            conversation: None,
            normalized_subject: headers.normalized_subject.clone(),
            calendar: calendar_changes,
            now: self.clock.now(),
        };
        let members: Vec<ExpandedRecipient> = group
            .subscribers
            .iter()
            .filter_map(|id| ix.mailbox(*id))
            .map(|mb| ExpandedRecipient {
                address: mb.address.clone(),
                tenant_id: r.tenant_id,
                route: Route::Local(mb.id),
                group_id: None,
                report_to: report_to.clone(),
                detail: format!("Subscriber copy from group {name}"),
                fail: None,
            })
            .collect();
        let mut detail = format!(
            "Stored in the group mailbox of {name}; copies to {} subscriber(s)",
            members.len()
        );
        if calendar.ignored > 0 {
            detail.push_str(&format!(
                "; {} calendar item(s) beyond the first {} of the message ignored",
                calendar.ignored,
                groupmail::MAX_CALENDAR_ITEMS
            ));
        }
        let reason = Reason::new(Stage::Recipient, detail.as_str())
            .rule(name)
            .figure("subscribers", members.len())
            .figure("calendar_items", calendar.changes.len())
            .figure("calendar_items_ignored", calendar.ignored);
        Ok(GroupWork {
            recipient: r.id,
            message: m.id,
            outcome: GroupOutcome::Expand {
                detail,
                reason: Some(reason),
                members,
            },
            item: Some((item, headers)),
            notice: None,
        })
    }
}

/// The failure of a group recipient whose group is gone.
fn group_removed(address: &str, group: GroupId) -> Refusal {
    Refusal::new(
        reply::GROUP_REMOVED,
        Reason::new(
            Stage::Recipient,
            format!("The group {address} was removed after the message was accepted"),
        )
        .figure("group_id", group),
    )
}

/// The conversation of a message filed in a group mailbox: the one threading rule
/// ([`groupmail::try_choose_conversation`]: at most [`groupmail::MAX_THREAD_LOOKUPS`] reference
/// lookups, then the subject) over the group's filed items.
pub(super) fn group_conversation(
    store: &dyn GroupMailboxStore,
    group: GroupId,
    headers: &groupmail::ThreadHeaders,
) -> Result<Option<i64>, StoreError> {
    groupmail::try_choose_conversation(
        headers,
        |id| store.conversation_of_message(group, id),
        |subject| store.conversation_by_subject(group, subject),
    )
}
