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
];
