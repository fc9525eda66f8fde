//! Versioned schema migrations for the embedded store. Each entry runs once, in order, inside a
//! transaction; `PRAGMA user_version` records how far a database has come.

pub const MIGRATIONS: &[&str] = &[
    // 1: directory, tokens, queue, trace, mailboxes.
    r#"
    -- AUTOINCREMENT: ids of removed tenants and mailboxes are never reused, so old trace rows
    -- and queued recipients can never be attributed to a new tenant or mailbox.
    CREATE TABLE tenants(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        created INTEGER NOT NULL
    );
    CREATE TABLE domains(
        domain TEXT PRIMARY KEY,
        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        type TEXT NOT NULL
    );
    CREATE INDEX domains_tenant ON domains(tenant_id);
    CREATE TABLE mailboxes(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        address TEXT NOT NULL UNIQUE,
        display_name TEXT NOT NULL,
        type TEXT NOT NULL,
        attributes TEXT NOT NULL,
        quota_bytes INTEGER NOT NULL,
        used_bytes INTEGER NOT NULL DEFAULT 0,
        created INTEGER NOT NULL
    );
    CREATE INDEX mailboxes_tenant ON mailboxes(tenant_id);
    -- Every address a mailbox answers to (primary and proxy addresses), canonical form.
    CREATE TABLE addresses(
        address TEXT PRIMARY KEY,
        mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
        is_primary INTEGER NOT NULL
    );
    CREATE INDEX addresses_mailbox ON addresses(mailbox_id);
    CREATE TABLE tokens(
        hash TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        tenant_id INTEGER REFERENCES tenants(id) ON DELETE CASCADE,
        created INTEGER NOT NULL
    );
    CREATE TABLE messages(
        id INTEGER PRIMARY KEY,
        trace_id TEXT NOT NULL UNIQUE,
        received INTEGER NOT NULL,
        sender TEXT NOT NULL,
        client_ip TEXT NOT NULL,
        helo TEXT NOT NULL,
        message_id TEXT NOT NULL,
        subject TEXT NOT NULL,
        size INTEGER NOT NULL,
        -- The spooled content; cleared once no recipient needs it any more.
        content BLOB
    );
    CREATE INDEX messages_received ON messages(received);
    CREATE INDEX messages_message_id ON messages(message_id);
    CREATE TABLE recipients(
        id INTEGER PRIMARY KEY,
        message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        tenant_id INTEGER NOT NULL,
        address TEXT NOT NULL,
        route TEXT NOT NULL,
        mailbox_id INTEGER,
        status TEXT NOT NULL,
        -- 0: no NDR owed; 1: an NDR is owed to the sender; 2: the NDR was queued.
        ndr_state INTEGER NOT NULL DEFAULT 0,
        next_attempt INTEGER NOT NULL,
        updated INTEGER NOT NULL
    );
    CREATE INDEX recipients_message ON recipients(message_id);
    CREATE INDEX recipients_tenant_address ON recipients(tenant_id, address);
    CREATE INDEX recipients_due ON recipients(next_attempt) WHERE status = 'Pending' AND route IN ('local', 'relay');
    CREATE INDEX recipients_ndr ON recipients(message_id) WHERE ndr_state = 1;
    CREATE TABLE trace_events(
        id INTEGER PRIMARY KEY,
        recipient_id INTEGER NOT NULL REFERENCES recipients(id) ON DELETE CASCADE,
        time INTEGER NOT NULL,
        event TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX trace_events_recipient ON trace_events(recipient_id);
    CREATE TABLE mail_items(
        id INTEGER PRIMARY KEY,
        mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
        folder TEXT NOT NULL,
        blob TEXT NOT NULL,
        received INTEGER NOT NULL,
        from_header TEXT NOT NULL,
        subject TEXT NOT NULL,
        size INTEGER NOT NULL,
        -- The queue recipient it came from: delivery inserts at most one item per recipient.
        recipient_id INTEGER UNIQUE
    );
    CREATE INDEX mail_items_mailbox ON mail_items(mailbox_id, folder, received);
    "#,
    // 2: small blobs live in the database: one file per small message costs more (an inode,
    // a sync, a directory sync) than the message itself, and they commit with their delivery.
    r#"
    CREATE TABLE blobs(
        hash TEXT PRIMARY KEY,
        data BLOB NOT NULL
    );
    "#,
    // 3: groups, contacts, permissions, role groups, users' passwords and tokens, moderation,
    // group mailboxes; a directory version that every directory change bumps, so cached
    // snapshots know when to reload.
    r#"
    ALTER TABLE mailboxes ADD COLUMN password_hash TEXT;
    ALTER TABLE tokens ADD COLUMN mailbox_id INTEGER REFERENCES mailboxes(id) ON DELETE CASCADE;
    ALTER TABLE tokens ADD COLUMN expires INTEGER;
    CREATE TABLE directory_version(id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
    INSERT INTO directory_version(id, version) VALUES (1, 1);
    CREATE TABLE contacts(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        address TEXT NOT NULL,
        display_name TEXT NOT NULL,
        attributes TEXT NOT NULL,
        UNIQUE(tenant_id, address)
    );
    CREATE TABLE groups(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        address TEXT UNIQUE,
        type TEXT NOT NULL,
        settings TEXT NOT NULL,
        created INTEGER NOT NULL
    );
    CREATE INDEX groups_tenant ON groups(tenant_id);
    CREATE TABLE group_members(
        group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        member_id INTEGER NOT NULL,
        PRIMARY KEY(group_id, kind, member_id)
    );
    CREATE INDEX group_members_member ON group_members(kind, member_id);
    CREATE TABLE group_owners(
        group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
        mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
        PRIMARY KEY(group_id, mailbox_id)
    );
    CREATE TABLE group_subscribers(
        group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
        mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
        PRIMARY KEY(group_id, mailbox_id)
    );
    CREATE TABLE permissions(
        mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
        trustee_kind TEXT NOT NULL,
        trustee_id INTEGER NOT NULL,
        right TEXT NOT NULL,
        PRIMARY KEY(mailbox_id, trustee_kind, trustee_id, right)
    );
    CREATE TABLE role_groups(
        group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
        role TEXT NOT NULL,
        PRIMARY KEY(group_id, role)
    );
    CREATE TABLE join_requests(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
        mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        created INTEGER NOT NULL,
        UNIQUE(group_id, mailbox_id, kind)
    );
    ALTER TABLE recipients ADD COLUMN group_id INTEGER;
    DROP INDEX recipients_due;
    CREATE INDEX recipients_due ON recipients(next_attempt) WHERE status = 'Pending' AND route IN ('local', 'relay', 'group');
    ALTER TABLE recipients ADD COLUMN report_to TEXT;
    ALTER TABLE recipients ADD COLUMN approved INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE moderation(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        recipient_id INTEGER NOT NULL UNIQUE REFERENCES recipients(id) ON DELETE CASCADE,
        group_id INTEGER NOT NULL,
        tenant_id INTEGER NOT NULL,
        created INTEGER NOT NULL,
        expires INTEGER NOT NULL,
        state TEXT NOT NULL,
        decided_by TEXT NOT NULL DEFAULT '',
        comment TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX moderation_state ON moderation(state, expires);
    CREATE TABLE conversations(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
        topic TEXT NOT NULL,
        normalized TEXT NOT NULL,
        last_activity INTEGER NOT NULL
    );
    CREATE INDEX conversations_topic ON conversations(group_id, normalized);
    CREATE TABLE group_items(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        blob TEXT NOT NULL,
        received INTEGER NOT NULL,
        from_header TEXT NOT NULL,
        subject TEXT NOT NULL,
        size INTEGER NOT NULL,
        message_id TEXT NOT NULL,
        recipient_id INTEGER UNIQUE
    );
    CREATE INDEX group_items_message_id ON group_items(group_id, message_id);
    CREATE TABLE group_calendar(
        group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
        uid TEXT NOT NULL,
        item TEXT NOT NULL,
        PRIMARY KEY(group_id, uid)
    );
    "#,
    // 4: the directory version per tenant, so a change in one tenant leaves the cached
    // directories of the others alone.
    r#"
    CREATE TABLE tenant_directory_version(
        tenant_id INTEGER PRIMARY KEY,
        version INTEGER NOT NULL
    );
    DROP TABLE directory_version;
    "#,
    // 5: blob references are looked up by hash, for garbage collection.
    r#"
    CREATE INDEX mail_items_blob ON mail_items(blob);
    CREATE INDEX group_items_blob ON group_items(blob);
    "#,
    // 6: ids of messages, recipients and mailbox items are never reused. Without AUTOINCREMENT,
    // SQLite gives a new row the largest id in the table plus one (https://sqlite.org/autoinc.html),
    // so once trace retention had removed the newest messages, a new recipient could get the id
    // that `mail_items.recipient_id` or `group_items.recipient_id` (no foreign key: the item
    // outlives the trace) still holds: a UNIQUE conflict at delivery, or an item attributed to the
    // wrong message. Mailbox item ids are handed out by the API, so they are never reused either.
    // The tables are rebuilt by SQLite's procedure for schema changes ALTER TABLE cannot make
    // (https://sqlite.org/lang_altertable.html#otheralter: new table, copy, drop, rename,
    // indexes), with foreign keys off (`migrate` does that and runs `foreign_key_check` before
    // committing). `trace_events` ids are neither referenced nor shown, so that table stays.
    r#"
    CREATE TABLE new_messages(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        trace_id TEXT NOT NULL UNIQUE,
        received INTEGER NOT NULL,
        sender TEXT NOT NULL,
        client_ip TEXT NOT NULL,
        helo TEXT NOT NULL,
        message_id TEXT NOT NULL,
        subject TEXT NOT NULL,
        size INTEGER NOT NULL,
        -- The spooled content; cleared once no recipient needs it any more.
        content BLOB
    );
    INSERT INTO new_messages(id, trace_id, received, sender, client_ip, helo, message_id, subject, size, content)
        SELECT id, trace_id, received, sender, client_ip, helo, message_id, subject, size, content FROM messages;
    DROP TABLE messages;
    ALTER TABLE new_messages RENAME TO messages;
    CREATE INDEX messages_received ON messages(received);
    CREATE INDEX messages_message_id ON messages(message_id);

    CREATE TABLE new_recipients(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        tenant_id INTEGER NOT NULL,
        address TEXT NOT NULL,
        route TEXT NOT NULL,
        mailbox_id INTEGER,
        status TEXT NOT NULL,
        -- 0: no NDR owed; 1: an NDR is owed to the sender; 2: the NDR was queued.
        ndr_state INTEGER NOT NULL DEFAULT 0,
        next_attempt INTEGER NOT NULL,
        updated INTEGER NOT NULL,
        group_id INTEGER,
        report_to TEXT,
        approved INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO new_recipients(id, message_id, tenant_id, address, route, mailbox_id, status, ndr_state,
                               next_attempt, updated, group_id, report_to, approved)
        SELECT id, message_id, tenant_id, address, route, mailbox_id, status, ndr_state,
               next_attempt, updated, group_id, report_to, approved FROM recipients;
    DROP TABLE recipients;
    ALTER TABLE new_recipients RENAME TO recipients;
    CREATE INDEX recipients_message ON recipients(message_id);
    CREATE INDEX recipients_tenant_address ON recipients(tenant_id, address);
    CREATE INDEX recipients_due ON recipients(next_attempt) WHERE status = 'Pending' AND route IN ('local', 'relay', 'group');
    CREATE INDEX recipients_ndr ON recipients(message_id) WHERE ndr_state = 1;

    CREATE TABLE new_mail_items(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
        folder TEXT NOT NULL,
        blob TEXT NOT NULL,
        received INTEGER NOT NULL,
        from_header TEXT NOT NULL,
        subject TEXT NOT NULL,
        size INTEGER NOT NULL,
        -- The queue recipient it came from: delivery inserts at most one item per recipient.
        recipient_id INTEGER UNIQUE
    );
    INSERT INTO new_mail_items(id, mailbox_id, folder, blob, received, from_header, subject, size, recipient_id)
        SELECT id, mailbox_id, folder, blob, received, from_header, subject, size, recipient_id FROM mail_items;
    DROP TABLE mail_items;
    ALTER TABLE new_mail_items RENAME TO mail_items;
    CREATE INDEX mail_items_mailbox ON mail_items(mailbox_id, folder, received);
    CREATE INDEX mail_items_blob ON mail_items(blob);

    -- Start each sequence above every id that was ever handed out and is still referenced: the
    -- removed newest rows are gone, but the columns that pointed at them remember their ids.
    DELETE FROM sqlite_sequence WHERE name IN ('messages', 'recipients', 'mail_items');
    INSERT INTO sqlite_sequence(name, seq) VALUES
        ('messages', max(
            coalesce((SELECT max(id) FROM messages), 0),
            coalesce((SELECT max(message_id) FROM recipients), 0))),
        ('recipients', max(
            coalesce((SELECT max(id) FROM recipients), 0),
            coalesce((SELECT max(recipient_id) FROM trace_events), 0),
            coalesce((SELECT max(recipient_id) FROM moderation), 0),
            coalesce((SELECT max(recipient_id) FROM mail_items), 0),
            coalesce((SELECT max(recipient_id) FROM group_items), 0))),
        ('mail_items', coalesce((SELECT max(id) FROM mail_items), 0));
    "#,
    // 7: the mailbox a message's sender authenticated as (NULL for direct send), so routing at
    // delivery uses the identity the RCPT decision used instead of trusting MAIL FROM; join
    // requests remember whether the owners were mailed; groups that sent members' NDRs to their
    // owner (report_to_originator off) keep doing so under report_to_manager.
    r#"
    ALTER TABLE messages ADD COLUMN authenticated_mailbox INTEGER;
    UPDATE groups SET settings = json_set(settings, '$.report_to_manager', json('true'))
      WHERE json_extract(settings, '$.report_to_originator') = 0;
    -- Whether a join request's owners were mailed (once per request).
    ALTER TABLE join_requests ADD COLUMN notified INTEGER NOT NULL DEFAULT 0;
    "#,
    // 8: a large message's content is a queue file (`<data_dir>/queue/<spool>`); `content`
    // then holds only what hato put in front of it.
    r#"
    ALTER TABLE messages ADD COLUMN spool TEXT;
    CREATE INDEX messages_spool ON messages(spool) WHERE spool IS NOT NULL;
    "#,
    // 9: recipients for the platform's postmaster mailbox are routed (and retried) by the
    // delivery agent too.
    r#"
    DROP INDEX recipients_due;
    CREATE INDEX recipients_due ON recipients(next_attempt) WHERE status = 'Pending' AND route IN ('local', 'relay', 'group', 'postmaster');
    "#,
    // 10: per-message work stays linear and a failing item waits instead of stalling the queue.
    // - Expansion asks "is this address already a recipient of the message?" once per member:
    //   an index on (message_id, address) answers it without scanning the message's recipients
    //   (a 100,000-member expansion did 5 billion row visits with the index on message_id alone).
    //   It also serves every lookup by message_id, so the old single-column index goes.
    // - `release_spool` runs after every delivery batch and asks whether any recipient of the
    //   message is still open: a partial index holds only the open ones.
    // - `attempts` counts how often processing a recipient failed (deferral with backoff, then
    //   failure with an NDR); `ndr_state` 3 means the NDR itself could not be generated.
    r#"
    CREATE INDEX recipients_message_address ON recipients(message_id, address);
    DROP INDEX recipients_message;
    CREATE INDEX recipients_open ON recipients(message_id) WHERE status = 'Pending' OR ndr_state = 1;
    ALTER TABLE recipients ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    "#,
    // 11: trace events carry structured fields besides their detail, so that nothing reads codes
    // back out of text: the SMTP reply code and RFC 3463 enhanced status code of the reply an
    // event is about (the one that failed a recipient; later a remote server's answer), the
    // remote host a delivery attempt talked to (empty until outbound delivery exists), and the
    // reason (JSON of `hato_core::Reason`: stage, rule, sentence, figures). A Fail event's detail
    // is now its reply's text; events written before this migration began with the reply itself
    // (`554 5.2.2 mailbox full; ...`), so their codes are copied out of it once, here, and the
    // NDRs still owed for them report the right status. Other old events keep NULL codes and
    // reasons.
    r#"
    ALTER TABLE trace_events ADD COLUMN status INTEGER;
    ALTER TABLE trace_events ADD COLUMN enhanced_status TEXT;
    ALTER TABLE trace_events ADD COLUMN remote_host TEXT NOT NULL DEFAULT '';
    ALTER TABLE trace_events ADD COLUMN reason TEXT;
    UPDATE trace_events SET
        status = CAST(substr(detail, 1, 3) AS INTEGER),
        enhanced_status = substr(detail, 5, instr(substr(detail, 5) || ' ', ' ') - 1),
        detail = ltrim(substr(detail, 5 + instr(substr(detail, 5) || ' ', ' ')))
      WHERE event = 'Fail' AND detail GLOB '[245][0-9][0-9] [245].[0-9]*.[0-9]* *';
    "#,
    // 12: per-recipient queue state, so that every wait is one deferral with a bound and several
    // nodes can later share the queue (architecture §4):
    // - `expires`: when a recipient still deferred fails with 550 4.4.7 (received + the message
    //   expiration, Exchange's MessageExpirationTimeout). Rows already queued get received + the
    //   default 48 hours: the setting is not known here. A recipient queued earlier than that
    //   and still waiting (an NDR to an outside sender) expires at its next attempt.
    // - the last error of a deferral, in the form of trace events' structured fields: reply
    //   code, enhanced code, text, remote host, reason (JSON of `hato_core::Reason`);
    // - a lease: the node working on the recipient and until when; taking due recipients sets
    //   it, completing or deferring them clears it, and a lease that ran out counts as none.
    // Every pending recipient is due now, outside addresses (`remote`) too: they wait with a
    // real deferral instead of not being looked at, so the due index covers every route.
    r#"
    ALTER TABLE recipients ADD COLUMN expires INTEGER NOT NULL DEFAULT 0;
    UPDATE recipients SET expires = (SELECT m.received FROM messages m WHERE m.id = recipients.message_id) + 172800000000;
    ALTER TABLE recipients ADD COLUMN last_status INTEGER;
    ALTER TABLE recipients ADD COLUMN last_enhanced_status TEXT;
    ALTER TABLE recipients ADD COLUMN last_detail TEXT;
    ALTER TABLE recipients ADD COLUMN last_remote_host TEXT;
    ALTER TABLE recipients ADD COLUMN last_reason TEXT;
    ALTER TABLE recipients ADD COLUMN lease_owner TEXT;
    ALTER TABLE recipients ADD COLUMN lease_until INTEGER;
    DROP INDEX recipients_due;
    CREATE INDEX recipients_due ON recipients(next_attempt) WHERE status = 'Pending';
    "#,
    // 13: tenants' throttle exemption lists: IP addresses and networks (canonical text, as
    // `hato_protection::throttle::Network` writes them) the throttle never defers; Exchange
    // exempts IPs of on-premises inbound connectors. A tenant's entries go with it.
    r#"
    CREATE TABLE throttle_exemptions(
        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        network TEXT NOT NULL,
        created INTEGER NOT NULL,
        PRIMARY KEY(tenant_id, network)
    ) WITHOUT ROWID;
    "#,
    // 14: the edge. A tenant's connection filter policy (Exchange's IPAllowList and IPBlockList):
    // one row per entry, in its canonical text (one text per set of addresses, so an entry is
    // added once and removed by any spelling), and a version per tenant that every change bumps,
    // so the edge reloads a tenant's lists only after they changed. The connection log: every
    // connection the edge refused, deferred or cut, with the reply, the stage and rule (apart, to
    // filter on), the reason and the notes made before (JSON of `hato_core::Reason`), and the
    // tenant whose policy refused (NULL for the platform's own stages: only the operator sees
    // those rows). Rows go with their tenant.
    r#"
    CREATE TABLE connection_filters(
        tenant_id INTEGER PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
        version INTEGER NOT NULL
    );
    CREATE TABLE connection_filter_entries(
        id INTEGER PRIMARY KEY,
        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        list TEXT NOT NULL CHECK (list IN ('allow', 'block')),
        entry TEXT NOT NULL,
        UNIQUE(tenant_id, list, entry)
    );
    CREATE TABLE connection_log(
        id INTEGER PRIMARY KEY,
        time INTEGER NOT NULL,
        ip TEXT NOT NULL,
        ptr TEXT NOT NULL,
        helo TEXT NOT NULL,
        tenant_id INTEGER REFERENCES tenants(id) ON DELETE CASCADE,
        stage TEXT NOT NULL,
        rule TEXT,
        status INTEGER NOT NULL,
        enhanced_status TEXT NOT NULL,
        text TEXT NOT NULL,
        reason TEXT NOT NULL,
        notes TEXT NOT NULL
    );
    CREATE INDEX connection_log_time ON connection_log(time);
    CREATE INDEX connection_log_ip ON connection_log(ip, time);
    CREATE INDEX connection_log_tenant ON connection_log(tenant_id, time);
    "#,
    // 15: the provider's block list (operator only; seed C1-C3) and the requests made on its
    // delist page. An entry is an address or a network in canonical text, so one network is
    // listed once; `expires` NULL is never. A delist request records who asked (the web
    // client's IP), when, for which IP and address, and what came of it; its confirmation token
    // is kept only as a SHA-256 hash (a copy of the database removes nothing), with its expiry
    // and when it was used (once). `entry_id` names the block list row the link was mailed for,
    // without a foreign key: the entry may go (removed, expired) while the record stays.
    r#"
    CREATE TABLE block_list(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        entry TEXT NOT NULL UNIQUE,
        reason TEXT NOT NULL,
        added_by TEXT NOT NULL,
        added INTEGER NOT NULL,
        expires INTEGER
    );
    CREATE INDEX block_list_expires ON block_list(expires) WHERE expires IS NOT NULL;
    CREATE TABLE delist_requests(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        requested INTEGER NOT NULL,
        ip TEXT NOT NULL,
        address TEXT NOT NULL,
        client_ip TEXT NOT NULL,
        outcome TEXT NOT NULL,
        entry_id INTEGER,
        entry TEXT,
        token_hash TEXT UNIQUE,
        token_expires INTEGER,
        confirmed INTEGER
    );
    CREATE INDEX delist_requests_requested ON delist_requests(requested);
    "#,
    // 16: accepted domains are verified: a domain a tenant admin adds is 'pending' until the
    // DNS TXT record `hato-verification=<token>` is seen at it; the token is random per domain
    // and claim. Domains added before this are the operator's and already carry mail, so they
    // are verified, each with a token of its own (16 random bytes, hex) for later checks.
    r#"
    ALTER TABLE domains ADD COLUMN status TEXT NOT NULL DEFAULT 'verified';
    ALTER TABLE domains ADD COLUMN verification_token TEXT NOT NULL DEFAULT '';
    UPDATE domains SET verification_token = lower(hex(randomblob(16)));
    "#,
    // 17: transport (mail flow) rules, per tenant. A rule's definition is its JSON (the model
    // lives in hato-protection; the store keeps it as it is given); name, priority and enabled
    // are columns so lookups and ordering need no JSON. Priorities are unique per tenant and
    // contiguous from 0 (Exchange's: inserting at a priority shifts the others down), names
    // unique regardless of case. `hits` counts messages the rule matched. The version of a
    // tenant's rules moves with every change (not with hits), for the compiled rules' cache.
    r#"
    CREATE TABLE transport_rules(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name TEXT NOT NULL COLLATE NOCASE,
        priority INTEGER NOT NULL,
        enabled INTEGER NOT NULL,
        definition TEXT NOT NULL,
        hits INTEGER NOT NULL DEFAULT 0,
        created INTEGER NOT NULL,
        modified INTEGER NOT NULL,
        UNIQUE(tenant_id, name),
        UNIQUE(tenant_id, priority)
    );
    CREATE TABLE transport_rule_versions(
        tenant_id INTEGER PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
        version INTEGER NOT NULL
    );
    "#,
    // 18: quarantine (issue 8). A stage's decision to hold a recipient is queued with it
    // (`quarantine_*` on `recipients`: the kind, the policy or rule, the reason as JSON);
    // delivery then stores one `quarantine` row per recipient (UNIQUE recipient_id: a replayed
    // step stores nothing twice) naming the stored form's blob, which garbage collection keeps
    // while a row names it. A release or deletion keeps the row (state, who, when) until it
    // expires, so a second release is refused; a deletion clears `blob`. `recipient_id` has no
    // foreign key: the item outlives trace retention. The malware filter policy of a tenant is
    // one row per policy (the default's only once changed), its settings as JSON
    // (`hato_store::MalwareFilterPolicy`), a custom policy's priority in its own column.
    r#"
    ALTER TABLE recipients ADD COLUMN quarantine_kind TEXT;
    ALTER TABLE recipients ADD COLUMN quarantine_policy TEXT;
    ALTER TABLE recipients ADD COLUMN quarantine_reason TEXT;
    CREATE TABLE quarantine(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        recipient_id INTEGER NOT NULL UNIQUE,
        trace_id TEXT NOT NULL,
        recipient TEXT NOT NULL,
        mailbox_id INTEGER,
        sender TEXT NOT NULL,
        from_header TEXT NOT NULL,
        subject TEXT NOT NULL,
        received INTEGER NOT NULL,
        quarantined INTEGER NOT NULL,
        kind TEXT NOT NULL,
        policy TEXT NOT NULL,
        reason TEXT,
        expires INTEGER NOT NULL,
        size INTEGER NOT NULL,
        blob TEXT,
        state TEXT NOT NULL DEFAULT 'held',
        decided_by TEXT,
        decided INTEGER
    );
    CREATE INDEX quarantine_tenant ON quarantine(tenant_id, received);
    CREATE INDEX quarantine_recipient ON quarantine(tenant_id, recipient, received);
    CREATE INDEX quarantine_mailbox ON quarantine(mailbox_id, received) WHERE mailbox_id IS NOT NULL;
    CREATE INDEX quarantine_kind ON quarantine(tenant_id, kind, received);
    CREATE INDEX quarantine_trace ON quarantine(trace_id);
    CREATE INDEX quarantine_expires ON quarantine(expires);
    CREATE INDEX quarantine_blob ON quarantine(blob) WHERE blob IS NOT NULL;
    CREATE TABLE malware_filter_policies(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name TEXT NOT NULL COLLATE NOCASE,
        -- NULL for the default policy; custom ones 0, 1, ... (0 first).
        priority INTEGER,
        settings TEXT NOT NULL,
        updated INTEGER NOT NULL,
        UNIQUE(tenant_id, name)
    );
    "#,
    // 19: each recipient's own header fields (its antispam report), put on top at delivery.
    r#"
    ALTER TABLE recipients ADD COLUMN stamp TEXT NOT NULL DEFAULT '';
    "#,
    // 20: a version per tenant of its malware filter policies, moved by every change to them,
    // so the content pipeline reads one integer per message instead of the policies.
    r#"
    CREATE TABLE malware_filter_versions(
        tenant_id INTEGER PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
        version INTEGER NOT NULL
    );
    "#,
    // 21: the anti-spam policies (Exchange's HostedContentFilterPolicy + HostedContentFilterRule)
    // as the malware filter's are kept: one row per policy (the default's only once changed),
    // the whole record as JSON (`hato_store::SpamFilterPolicyRecord`), a custom policy's priority
    // in its own column; their version per tenant; each tenant's personalised classifier model
    // (opaque bytes) with its version; users' junk / not-junk reports, one per message, recipient
    // and reporter (a later opposite report replaces the earlier), the delivered content's blob
    // kept for the classifier to learn from.
    r#"
    CREATE TABLE spam_filter_policies(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name TEXT NOT NULL COLLATE NOCASE,
        -- NULL for the default policy; custom ones 0, 1, ... (0 first).
        priority INTEGER,
        settings TEXT NOT NULL,
        updated INTEGER NOT NULL,
        UNIQUE(tenant_id, name)
    );
    CREATE TABLE spam_filter_versions(
        tenant_id INTEGER PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
        version INTEGER NOT NULL
    );
    CREATE TABLE spam_tenant_models(
        tenant_id INTEGER PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
        model BLOB NOT NULL,
        version INTEGER NOT NULL,
        updated INTEGER NOT NULL
    );
    CREATE TABLE spam_reports(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        trace_id TEXT NOT NULL,
        recipient TEXT NOT NULL,
        reporter TEXT NOT NULL,
        verdict TEXT NOT NULL,
        replaces TEXT,
        reported INTEGER NOT NULL,
        blob TEXT NOT NULL,
        client_ip TEXT NOT NULL,
        UNIQUE(tenant_id, trace_id, recipient, reporter)
    );
    CREATE INDEX spam_reports_blob ON spam_reports(blob);
    "#,
    // 22: the spam filter's per-recipient outcome: delivered to the Junk Email folder, and the
    // anti-spam policy's quarantine retention.
    r#"
    ALTER TABLE recipients ADD COLUMN junk INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE recipients ADD COLUMN quarantine_days INTEGER;
    "#,
    // 23 (issue 9, end-user quarantine notifications): per tenant and recipient, when the last
    // digest went out (the policy's frequency counts from it) and the newest quarantine time it
    // covered (the next digest lists only what was held after it), so a restart sends nothing
    // twice; the server's secret for signed release links (made once, never in a link); held
    // items by quarantine time, for the digest's search for new ones.
    r#"
    CREATE TABLE quarantine_notifications(
        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        recipient TEXT NOT NULL,
        last_sent INTEGER NOT NULL,
        covered_until INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, recipient)
    );
    CREATE TABLE server_secrets(
        name TEXT PRIMARY KEY,
        value BLOB NOT NULL
    );
    CREATE INDEX quarantine_held ON quarantine(quarantined) WHERE state = 'held';
    "#,
    // 24 (issue 9): the RFC 5322.From address whose domain passed DMARC aligned, so routing at
    // delivery (group restrictions, moderation bypass) decides with the identity the DATA's
    // check used.
    r#"
    ALTER TABLE messages ADD COLUMN authenticated_from TEXT;
    "#,
    // 25 (issue 10, inbound connectors): tenants' inbound connectors (Exchange's
    // New-InboundConnector: the settings as JSON, `hato_protection::connector::InboundConnector`;
    // type and enabled in columns of their own for the edge's and the throttle's queries), the
    // organisation settings (Set-OrganizationConfig -RejectDirectSend), and one version over
    // both that the edge reads per MAIL FROM. Triggers move the version, so a change by any
    // path — a tenant's removal cascading to its rows included — reaches the edge's cache.
    r#"
    CREATE TABLE inbound_connectors(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name TEXT NOT NULL COLLATE NOCASE,
        connector_type TEXT NOT NULL,
        enabled INTEGER NOT NULL,
        definition TEXT NOT NULL,
        created INTEGER NOT NULL,
        updated INTEGER NOT NULL,
        UNIQUE(tenant_id, name)
    );
    CREATE TABLE organization_config(
        tenant_id INTEGER PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
        reject_direct_send INTEGER NOT NULL DEFAULT 0,
        updated INTEGER NOT NULL
    );
    CREATE TABLE connector_version(
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL
    );
    INSERT INTO connector_version(id, version) VALUES (1, 0);
    CREATE TRIGGER inbound_connectors_added AFTER INSERT ON inbound_connectors
        BEGIN UPDATE connector_version SET version = version + 1; END;
    CREATE TRIGGER inbound_connectors_changed AFTER UPDATE ON inbound_connectors
        BEGIN UPDATE connector_version SET version = version + 1; END;
    CREATE TRIGGER inbound_connectors_removed AFTER DELETE ON inbound_connectors
        BEGIN UPDATE connector_version SET version = version + 1; END;
    CREATE TRIGGER organization_config_added AFTER INSERT ON organization_config
        BEGIN UPDATE connector_version SET version = version + 1; END;
    CREATE TRIGGER organization_config_changed AFTER UPDATE ON organization_config
        BEGIN UPDATE connector_version SET version = version + 1; END;
    CREATE TRIGGER organization_config_removed AFTER DELETE ON organization_config
        BEGIN UPDATE connector_version SET version = version + 1; END;
    "#,
    // 26 (issue 10, items 6-7): the sender failed SPF or DMARC at arrival (the content stages'
    // sender authentication), so no NDR is ever sent to it (no backscatter).
    r#"
    ALTER TABLE messages ADD COLUMN sender_auth_failed INTEGER NOT NULL DEFAULT 0;
    "#,
    // 27 (issue 10, DKIM signing per tenant domain): a config per accepted domain (Exchange's
    // New-DkimSigningConfig) with its two selectors' keys (PKCS#8 DER: the database holds
    // secrets), the selector that signs, the enabled flag; both go with the domain (and so with
    // the tenant). Triggers move one version that the outbound signer caches by.
    r#"
    CREATE TABLE dkim_signing_configs(
        domain TEXT PRIMARY KEY REFERENCES domains(domain) ON DELETE CASCADE,
        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        enabled INTEGER NOT NULL,
        active_selector INTEGER NOT NULL CHECK (active_selector IN (1, 2)),
        created INTEGER NOT NULL,
        rotated INTEGER
    );
    CREATE INDEX dkim_signing_configs_tenant ON dkim_signing_configs(tenant_id);
    CREATE TABLE dkim_keys(
        domain TEXT NOT NULL REFERENCES dkim_signing_configs(domain) ON DELETE CASCADE,
        selector INTEGER NOT NULL CHECK (selector IN (1, 2)),
        key_type TEXT NOT NULL,
        bits INTEGER NOT NULL,
        private_key BLOB NOT NULL,
        public_key BLOB NOT NULL,
        created INTEGER NOT NULL,
        PRIMARY KEY (domain, selector)
    );
    CREATE TABLE dkim_version(
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL
    );
    INSERT INTO dkim_version(id, version) VALUES (1, 0);
    CREATE TRIGGER dkim_configs_added AFTER INSERT ON dkim_signing_configs
        BEGIN UPDATE dkim_version SET version = version + 1; END;
    CREATE TRIGGER dkim_configs_changed AFTER UPDATE ON dkim_signing_configs
        BEGIN UPDATE dkim_version SET version = version + 1; END;
    CREATE TRIGGER dkim_configs_removed AFTER DELETE ON dkim_signing_configs
        BEGIN UPDATE dkim_version SET version = version + 1; END;
    CREATE TRIGGER dkim_keys_changed AFTER UPDATE ON dkim_keys
        BEGIN UPDATE dkim_version SET version = version + 1; END;
    "#,
    // 28 (issue 10, client submission): Set-CASMailbox -SmtpClientAuthenticationDisabled per
    // mailbox (`hato mailbox set --smtp-client-authentication-disabled`); off (SMTP AUTH
    // allowed) for every existing mailbox.
    r#"
    ALTER TABLE mailboxes ADD COLUMN smtp_client_authentication_disabled INTEGER NOT NULL DEFAULT 0;
    "#,
    // 29 (issue 10, outbound connectors): tenants' outbound connectors (Exchange's
    // New-OutboundConnector: the settings as JSON,
    // `hato_protection::outbound_connector::OutboundConnector`). Their changes move the
    // connector version the inbound ones move, and so do the accepted domains' (an
    // all-accepted-domains connector's reach is the tenant's domains): the outbound agent's
    // selector rebuilds its snapshot when it moves. A transport rule's
    // RouteMessageOutboundConnector choice is kept with the recipient (`connector`).
    r#"
    CREATE TABLE outbound_connectors(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name TEXT NOT NULL COLLATE NOCASE,
        enabled INTEGER NOT NULL,
        definition TEXT NOT NULL,
        created INTEGER NOT NULL,
        updated INTEGER NOT NULL,
        UNIQUE(tenant_id, name)
    );
    CREATE TRIGGER outbound_connectors_added AFTER INSERT ON outbound_connectors
        BEGIN UPDATE connector_version SET version = version + 1; END;
    CREATE TRIGGER outbound_connectors_changed AFTER UPDATE ON outbound_connectors
        BEGIN UPDATE connector_version SET version = version + 1; END;
    CREATE TRIGGER outbound_connectors_removed AFTER DELETE ON outbound_connectors
        BEGIN UPDATE connector_version SET version = version + 1; END;
    CREATE TRIGGER domains_added_connectors AFTER INSERT ON domains
        BEGIN UPDATE connector_version SET version = version + 1; END;
    CREATE TRIGGER domains_changed_connectors AFTER UPDATE ON domains
        BEGIN UPDATE connector_version SET version = version + 1; END;
    CREATE TRIGGER domains_removed_connectors AFTER DELETE ON domains
        BEGIN UPDATE connector_version SET version = version + 1; END;
    ALTER TABLE recipients ADD COLUMN connector TEXT;
    "#,
    // 30 (issue 10, DSN: RFC 3461): MAIL's RET and ENVID per message, RCPT's NOTIFY (NULL: not
    // given, FAILURE,DELAY applies) and ORCPT (`type;address`, decoded) per recipient. Per
    // recipient too: `delay_notice` 0 while a delay notice may still be owed, 1 once it was
    // sent or is never to be sent (NOTIFY without DELAY, a null or forged sender);
    // `success_notice` 0 none owed, 1 a "delivered" notice owed, 2 a "relayed" one, 3 sent.
    // Partial indexes keep the agent's per-step look for due notices to the few that qualify.
    r#"
    ALTER TABLE messages ADD COLUMN dsn_ret TEXT;
    ALTER TABLE messages ADD COLUMN dsn_envid TEXT;
    ALTER TABLE recipients ADD COLUMN dsn_notify TEXT;
    ALTER TABLE recipients ADD COLUMN dsn_orcpt TEXT;
    ALTER TABLE recipients ADD COLUMN delay_notice INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE recipients ADD COLUMN success_notice INTEGER NOT NULL DEFAULT 0;
    UPDATE recipients SET delay_notice = 1;
    CREATE INDEX recipients_delay_notice ON recipients(message_id)
        WHERE status = 'Pending' AND delay_notice = 0 AND attempts > 0;
    CREATE INDEX recipients_success_notice ON recipients(message_id) WHERE success_notice IN (1, 2);
    "#,
    // 31 (issue 10, MTA-STS): the policies fetched for recipient domains (RFC 8461 §5.1: a
    // cached policy outlives a failed refresh, and a restart), one row per domain.
    r#"
    CREATE TABLE mta_sts_policies(
        domain TEXT PRIMARY KEY,
        policy_id TEXT NOT NULL,
        policy TEXT NOT NULL,
        fetched INTEGER NOT NULL,
        expires INTEGER NOT NULL
    );
    CREATE INDEX mta_sts_policies_expires ON mta_sts_policies(expires);
    "#,
    // 32 (issue 10 item 8, outbound spam): a tenant's outbound spam filter policy (Exchange's
    // HostedOutboundSpamFilterPolicy, as JSON; the defaults until changed); per sender, its
    // recipients in the current UTC hour (external, internal) and day, so a restart does not
    // reset them; the restricted senders (`until` NULL: until an admin unblocks; else the start
    // of the next UTC day); and the pool a queued message leaves from (high-risk: outbound
    // spam). Everything goes with the tenant.
    r#"
    CREATE TABLE outbound_spam_policies(
        tenant_id INTEGER PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
        definition TEXT NOT NULL,
        updated INTEGER NOT NULL
    );
    CREATE TABLE outbound_sender_counts(
        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        sender TEXT NOT NULL,
        hour_start INTEGER NOT NULL,
        external_hour INTEGER NOT NULL,
        internal_hour INTEGER NOT NULL,
        day_start INTEGER NOT NULL,
        day INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, sender)
    );
    CREATE INDEX outbound_sender_counts_day ON outbound_sender_counts(day_start);
    CREATE TABLE restricted_senders(
        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        sender TEXT NOT NULL,
        action TEXT NOT NULL,
        reason TEXT NOT NULL,
        blocked_at INTEGER NOT NULL,
        until INTEGER,
        PRIMARY KEY (tenant_id, sender)
    );
    ALTER TABLE messages ADD COLUMN high_risk INTEGER NOT NULL DEFAULT 0;
    "#,
    // 33 (issue 10 item 9, warm-up): each outbound pool's warm-up plan (its daily allowances as
    // a JSON array), what each pool delivered and had deferred by pacing per UTC day (so a
    // restart does not reset the day), and the pools' back-offs from destination domains after
    // throttling replies (421/451 4.7.x). Pools are the server's: no tenant column.
    r#"
    CREATE TABLE warmup_plans(
        pool TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        monthly_volume INTEGER,
        daily_limits TEXT NOT NULL,
        start INTEGER NOT NULL,
        created INTEGER NOT NULL
    );
    CREATE TABLE warmup_days(
        pool TEXT NOT NULL,
        day INTEGER NOT NULL,
        sent INTEGER NOT NULL DEFAULT 0,
        deferred INTEGER NOT NULL DEFAULT 0,
        reduced INTEGER NOT NULL DEFAULT 0,
        throttled INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (pool, day)
    );
    CREATE TABLE outbound_backoffs(
        pool TEXT NOT NULL,
        domain TEXT NOT NULL,
        count INTEGER NOT NULL,
        until INTEGER NOT NULL,
        last_reply TEXT NOT NULL,
        last_host TEXT NOT NULL,
        updated INTEGER NOT NULL,
        PRIMARY KEY (pool, domain)
    );
    CREATE INDEX outbound_backoffs_updated ON outbound_backoffs(updated);
    "#,
    // 34 (issue 11, the web console): console sign-in sessions, kept as the SHA-256 of their
    // random 256-bit id only (a copy of the database signs nobody in), with the role they act
    // with, when they began (absolute expiry) and were last used (idle expiry). Message trace
    // by sender, newest first, without a walk over every message (the console's trace page at
    // a million rows); the home page's counts of malware and rule events, and of the queue.
    r#"
    CREATE TABLE console_sessions(
        hash TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        tenant_id INTEGER REFERENCES tenants(id) ON DELETE CASCADE,
        mailbox_id INTEGER REFERENCES mailboxes(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        created INTEGER NOT NULL,
        last_seen INTEGER NOT NULL
    );
    CREATE INDEX console_sessions_last_seen ON console_sessions(last_seen);
    CREATE INDEX messages_sender_received ON messages(sender, received);
    CREATE INDEX trace_events_event_time ON trace_events(event, time);
    CREATE INDEX recipients_pending_tenant ON recipients(tenant_id) WHERE status = 'Pending';
    "#,
    // 35 (issue 11, the console's Home at a million trace rows): mail-flow counters per tenant
    // and UTC hour, kept by triggers in the transaction of every write they count (a recipient
    // added or its status changed, a Malware or TransportRule trace event, an edge refusal in
    // the connection log), so Home sums at most 720 rows a tenant for 30 days instead of
    // scanning the trace, and no writer can forget them. `tenant_id` 0 holds refusals before a
    // tenant was known; -1 counts each message once across tenants (the operator's "received").
    // The hour is the message's arrival for its recipients' figures (as the trace's windows
    // are), the event's or refusal's own time for the others. Backfilled from the rows there.
    r#"
    CREATE TABLE mail_flow_hours(
        tenant_id INTEGER NOT NULL,
        hour INTEGER NOT NULL,
        received INTEGER NOT NULL DEFAULT 0,
        delivered INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        spam INTEGER NOT NULL DEFAULT 0,
        quarantined INTEGER NOT NULL DEFAULT 0,
        malware INTEGER NOT NULL DEFAULT 0,
        rule_actions INTEGER NOT NULL DEFAULT 0,
        refused INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (tenant_id, hour)
    ) WITHOUT ROWID;
    CREATE INDEX mail_flow_hours_hour ON mail_flow_hours(hour);
    INSERT INTO mail_flow_hours(tenant_id, hour, received, delivered, failed, spam, quarantined)
        SELECT r.tenant_id, m.received - m.received % 3600000000, COUNT(DISTINCT r.message_id),
               SUM(r.status = 'Delivered'), SUM(r.status = 'Failed'),
               SUM(r.status = 'FilteredAsSpam'), SUM(r.status = 'Quarantined')
        FROM recipients r JOIN messages m ON m.id = r.message_id WHERE true GROUP BY 1, 2;
    INSERT INTO mail_flow_hours(tenant_id, hour, received)
        SELECT -1, m.received - m.received % 3600000000, COUNT(*) FROM messages m
        WHERE EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id) GROUP BY 1, 2;
    INSERT INTO mail_flow_hours(tenant_id, hour, malware, rule_actions)
        SELECT r.tenant_id, e.time - e.time % 3600000000, SUM(e.event = 'Malware'),
               SUM(e.event = 'TransportRule')
        FROM trace_events e JOIN recipients r ON r.id = e.recipient_id
        WHERE e.event IN ('Malware', 'TransportRule') GROUP BY 1, 2
        ON CONFLICT(tenant_id, hour) DO UPDATE SET malware = malware + excluded.malware,
            rule_actions = rule_actions + excluded.rule_actions;
    INSERT INTO mail_flow_hours(tenant_id, hour, refused)
        SELECT COALESCE(tenant_id, 0), time - time % 3600000000, COUNT(*) FROM connection_log
        WHERE status >= 400 GROUP BY 1, 2
        ON CONFLICT(tenant_id, hour) DO UPDATE SET refused = refused + excluded.refused;
    CREATE TRIGGER mail_flow_recipient_added AFTER INSERT ON recipients BEGIN
        INSERT INTO mail_flow_hours(tenant_id, hour, received, delivered, failed, spam, quarantined)
            SELECT NEW.tenant_id, m.received - m.received % 3600000000,
                   NOT EXISTS (SELECT 1 FROM recipients o WHERE o.message_id = NEW.message_id
                                 AND o.tenant_id = NEW.tenant_id AND o.id <> NEW.id),
                   NEW.status = 'Delivered', NEW.status = 'Failed',
                   NEW.status = 'FilteredAsSpam', NEW.status = 'Quarantined'
            FROM messages m WHERE m.id = NEW.message_id
            ON CONFLICT(tenant_id, hour) DO UPDATE SET received = received + excluded.received,
                delivered = delivered + excluded.delivered, failed = failed + excluded.failed,
                spam = spam + excluded.spam, quarantined = quarantined + excluded.quarantined;
        INSERT INTO mail_flow_hours(tenant_id, hour, received)
            SELECT -1, m.received - m.received % 3600000000, 1 FROM messages m
            WHERE m.id = NEW.message_id AND NOT EXISTS (SELECT 1 FROM recipients o
                WHERE o.message_id = NEW.message_id AND o.id <> NEW.id)
            ON CONFLICT(tenant_id, hour) DO UPDATE SET received = received + 1;
    END;
    CREATE TRIGGER mail_flow_recipient_status AFTER UPDATE OF status ON recipients
        WHEN OLD.status IS NOT NEW.status BEGIN
        INSERT INTO mail_flow_hours(tenant_id, hour, delivered, failed, spam, quarantined)
            SELECT NEW.tenant_id, m.received - m.received % 3600000000,
                   (NEW.status = 'Delivered') - (OLD.status = 'Delivered'),
                   (NEW.status = 'Failed') - (OLD.status = 'Failed'),
                   (NEW.status = 'FilteredAsSpam') - (OLD.status = 'FilteredAsSpam'),
                   (NEW.status = 'Quarantined') - (OLD.status = 'Quarantined')
            FROM messages m WHERE m.id = NEW.message_id
            ON CONFLICT(tenant_id, hour) DO UPDATE SET delivered = delivered + excluded.delivered,
                failed = failed + excluded.failed, spam = spam + excluded.spam,
                quarantined = quarantined + excluded.quarantined;
    END;
    CREATE TRIGGER mail_flow_event AFTER INSERT ON trace_events
        WHEN NEW.event IN ('Malware', 'TransportRule') BEGIN
        INSERT INTO mail_flow_hours(tenant_id, hour, malware, rule_actions)
            SELECT r.tenant_id, NEW.time - NEW.time % 3600000000, NEW.event = 'Malware',
                   NEW.event = 'TransportRule'
            FROM recipients r WHERE r.id = NEW.recipient_id
            ON CONFLICT(tenant_id, hour) DO UPDATE SET malware = malware + excluded.malware,
                rule_actions = rule_actions + excluded.rule_actions;
    END;
    CREATE TRIGGER mail_flow_refusal AFTER INSERT ON connection_log WHEN NEW.status >= 400 BEGIN
        INSERT INTO mail_flow_hours(tenant_id, hour, refused)
            VALUES (COALESCE(NEW.tenant_id, 0), NEW.time - NEW.time % 3600000000, 1)
            ON CONFLICT(tenant_id, hour) DO UPDATE SET refused = refused + 1;
    END;
    "#,
    // 36 (issue 11, message trace's saved queries): a person's named message trace queries (the
    // query string the trace page and `GET /api/v1/trace` take), per owner (`tenant/mailbox`,
    // `-` where there is none: the operator, or an admin's token without a mailbox), gone with
    // the mailbox or the tenant.
    r#"
    CREATE TABLE trace_saved_queries(
        id INTEGER PRIMARY KEY,
        owner TEXT NOT NULL,
        tenant_id INTEGER REFERENCES tenants(id) ON DELETE CASCADE,
        mailbox_id INTEGER REFERENCES mailboxes(id) ON DELETE CASCADE,
        name TEXT NOT NULL COLLATE NOCASE,
        query TEXT NOT NULL,
        created INTEGER NOT NULL,
        UNIQUE (owner, name)
    );
    "#,
    // 37 (issue 11 with issue 9, quarantine policies): a tenant's custom quarantine policies
    // (Exchange's New-QuarantinePolicy: end-user permissions as its
    // EndUserQuarantinePermissionsValue bits, ESNEnabled); the quarantine policy each held item
    // was quarantined under (existing items get the defaults of their kind, which is what
    // governed them before) and the spam verdict's tag queued with a recipient; a recipient's
    // release request (pending, approved, denied; who and when).
    r#"
    CREATE TABLE quarantine_policies(
        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name TEXT NOT NULL COLLATE NOCASE,
        permissions INTEGER NOT NULL,
        notifications INTEGER NOT NULL DEFAULT 0,
        updated INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, name)
    );
    ALTER TABLE recipients ADD COLUMN quarantine_tag TEXT;
    ALTER TABLE quarantine ADD COLUMN quarantine_policy TEXT NOT NULL DEFAULT '';
    UPDATE quarantine SET quarantine_policy = CASE
        WHEN kind IN ('malware', 'transport-rule', 'high-confidence-phish') THEN 'AdminOnlyAccessPolicy'
        ELSE 'DefaultFullAccessPolicy' END;
    ALTER TABLE quarantine ADD COLUMN request_state TEXT;
    ALTER TABLE quarantine ADD COLUMN requested_by TEXT;
    ALTER TABLE quarantine ADD COLUMN requested INTEGER;
    ALTER TABLE quarantine ADD COLUMN request_decided_by TEXT;
    ALTER TABLE quarantine ADD COLUMN request_decided INTEGER;
    CREATE INDEX quarantine_request ON quarantine(tenant_id, request_state, received)
        WHERE request_state IS NOT NULL;
    "#,
    // 38 (issue 11): the operator's decision on a delist request: approved (the entry is
    // removed) or denied (it stays, and the request's link removes nothing); who, when and
    // why. NULL: not decided. Existing requests are undecided.
    r#"
    ALTER TABLE delist_requests ADD COLUMN decision TEXT;
    ALTER TABLE delist_requests ADD COLUMN decided_by TEXT;
    ALTER TABLE delist_requests ADD COLUMN decided INTEGER;
    ALTER TABLE delist_requests ADD COLUMN decision_reason TEXT;
    "#,
    // 39 (issue 9 with issue 11, mailbox junk email configuration): a mailbox's `Enabled`
    // (a row once changed; enabled until then) and its Safe Senders / Blocked Senders entries
    // (lower case addresses or domains), gone with the mailbox. The content pipeline reads a
    // mailbox's entries by the primary key's prefix, never a scan.
    r#"
    CREATE TABLE junk_email_configs(
        mailbox_id INTEGER PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
        enabled INTEGER NOT NULL DEFAULT 1,
        updated INTEGER NOT NULL
    );
    CREATE TABLE junk_email_senders(
        mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
        list TEXT NOT NULL CHECK (list IN ('trusted', 'blocked')),
        entry TEXT NOT NULL,
        PRIMARY KEY (mailbox_id, list, entry)
    ) WITHOUT ROWID;
    "#,
    // 40 (issue 11, Home's top senders and recipients under attack): a Space-Saving summary
    // (`heavy_hitters.rs`) per tenant (-1: every tenant), UTC hour and kind (0 senders, 1
    // recipients), at most `TOP_CAPACITY` counters each, kept by `top_address_catch_up` from the
    // recipients written since `top_address_progress`'s row (no trigger: a recipient's write
    // costs what it did). Home merges the day's 24 summaries: bounded whatever the traffic.
    r#"
    CREATE TABLE top_address_hours(
        tenant_id INTEGER NOT NULL,
        kind INTEGER NOT NULL,
        hour INTEGER NOT NULL,
        address TEXT NOT NULL,
        count INTEGER NOT NULL,
        error INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, kind, hour, address)
    ) WITHOUT ROWID;
    CREATE INDEX top_address_hours_hour ON top_address_hours(hour);
    CREATE TABLE top_address_progress(
        id INTEGER PRIMARY KEY CHECK (id = 0),
        recipient_id INTEGER NOT NULL
    );
    INSERT INTO top_address_progress(id, recipient_id) VALUES (0, 0);
    "#,
];
