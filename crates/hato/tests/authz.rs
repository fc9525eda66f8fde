//! Authorization matrix for changing groups, against a real `hato serve`: every group-changing
//! API call × every role × every group type × with and without the
//! `bypass_security_group_manager_check` switch, checked against the rules of
//! `hato_directory::policy::authorize` (seed A1–A4 and Exchange's ManagedBy rules). Each cell
//! runs on a fresh group, so a DELETE or an owner removal never affects another cell; an allowed
//! cell must really change the group, a refused one must leave it exactly as it was.
//! Also: the last owner can't be removed, role groups give (and take away) admin rights at once,
//! and who may create which type of group.

mod common;
use common::*;

use serde_json::{Map, Value, json};
use std::cell::Cell;

const NOT_MANAGER: &str = "This operation can only be performed by a manager of the group.";
const BYPASS_REFUSED: &str = "only global admins may use bypass_security_group_manager_check";

const OWNER: &str = "owner@contoso.test";
const MEMBER: &str = "member@contoso.test";
const OTHER: &str = "other@contoso.test";
const EXTRA: &str = "extra@contoso.test";
const PASSWORD: &str = "correct horse battery";

// ----- the matrix's axes ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Operator,
    GlobalAdmin,
    RecipientAdmin,
    /// owner@, an owner of every group of the matrix.
    Owner,
    /// member@, a member (not an owner) of every non-dynamic group of the matrix.
    Member,
    /// other@, neither owner nor member.
    OtherUser,
    /// fabrikam's global admin.
    OtherTenantAdmin,
}

const ROLES: [Role; 7] = [
    Role::Operator,
    Role::GlobalAdmin,
    Role::RecipientAdmin,
    Role::Owner,
    Role::Member,
    Role::OtherUser,
    Role::OtherTenantAdmin,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Distribution,
    Security,
    MailSecurity,
    Dynamic,
    M365,
}

const KINDS: [Kind; 5] = [
    Kind::Distribution,
    Kind::Security,
    Kind::MailSecurity,
    Kind::Dynamic,
    Kind::M365,
];

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Distribution => "distribution",
            Kind::Security => "security",
            Kind::MailSecurity => "mail-security",
            Kind::Dynamic => "dynamic",
            Kind::M365 => "m365",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    /// PATCH {"moderation_enabled": true, "moderated_by": [owner@]}
    ChangeSettings,
    /// POST /members {"add": [extra@]}
    AddMember,
    /// POST /members {"remove": [member@]}
    RemoveMember,
    /// POST /owners {"add": [extra@]}
    AddOwner,
    /// POST /owners {"remove": [owner@]} on a group owned by owner@ and extra@
    RemoveOwner,
    /// DELETE
    Delete,
}

const CALLS: [Call; 6] = [
    Call::ChangeSettings,
    Call::AddMember,
    Call::RemoveMember,
    Call::AddOwner,
    Call::RemoveOwner,
    Call::Delete,
];

/// What a cell must answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// 200 (204 for DELETE), and the change is made.
    Allowed,
    /// 400: authorized, but the change makes no sense (a dynamic group's members).
    Invalid,
    /// 403 with exactly this message; nothing changes.
    Forbidden(&'static str),
    /// 404 exactly as for a group that doesn't exist; nothing changes.
    NotFound,
}

/// Calls only the group's managers (owners) may make, unless a global admin sends the bypass
/// switch: everything on a mail-enabled security group; changing owners of, or deleting, a
/// distribution group (seed A4: "even a global admin cannot change owners or delete the group
/// unless an owner, except through -BypassSecurityGroupManagerCheck").
fn managers_only(kind: Kind, call: Call) -> bool {
    match kind {
        Kind::MailSecurity => true,
        Kind::Distribution => matches!(call, Call::AddOwner | Call::RemoveOwner | Call::Delete),
        Kind::Security | Kind::Dynamic | Kind::M365 => false,
    }
}

/// The rules, restated from seed A1–A4 / policy.rs (not computed by calling it).
fn expected(role: Role, kind: Kind, call: Call, bypass: bool) -> Expect {
    // Another tenant's objects don't exist for its admins.
    if role == Role::OtherTenantAdmin {
        return Expect::NotFound;
    }
    // The bypass switch is for global admins (and the operator) only, whoever else asks.
    if bypass && !matches!(role, Role::Operator | Role::GlobalAdmin) {
        return Expect::Forbidden(BYPASS_REFUSED);
    }
    let authorized = match role {
        Role::Owner => true,
        Role::Operator | Role::GlobalAdmin => !managers_only(kind, call) || bypass,
        Role::RecipientAdmin => !managers_only(kind, call),
        Role::Member | Role::OtherUser => false,
        Role::OtherTenantAdmin => unreachable!(),
    };
    if !authorized {
        return Expect::Forbidden(NOT_MANAGER);
    }
    // A dynamic group's members come from its filter: authorization first, then this.
    if kind == Kind::Dynamic && matches!(call, Call::AddMember | Call::RemoveMember) {
        return Expect::Invalid;
    }
    Expect::Allowed
}

// ----- setup ---------------------------------------------------------------------------------------

struct Ctx {
    s: Server,
    global_admin: String,
    recipient_admin: String,
    fabrikam_admin: String,
    owner: String,
    member: String,
    other: String,
    seq: Cell<u32>,
}

fn tenant_token(s: &Server, tenant: &str, role: &str) -> String {
    let (status, v) = s.api(
        "POST",
        &format!("/api/v1/tenants/{tenant}/tokens"),
        Some(json!({ "role": role })),
    );
    assert_eq!(status, 201, "token for {tenant} ({role}): {v}");
    v["token"].as_str().expect("token").to_string()
}

/// Sets a mailbox's password (as operator) and logs in as it.
fn login(s: &Server, address: &str) -> String {
    let (status, v) = s.api(
        "PATCH",
        &format!("/api/v1/mailboxes/{address}"),
        Some(json!({ "password": PASSWORD })),
    );
    assert_eq!(status, 200, "password for {address}: {v}");
    let (status, bytes) = http(
        s.admin,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({ "address": address, "password": PASSWORD })),
    );
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert_eq!(status, 200, "login {address}: {v}");
    assert_eq!(v["role"], "user", "{v}");
    v["token"].as_str().expect("user token").to_string()
}

fn setup() -> Ctx {
    let s = Server::start();
    s.tenant("contoso");
    s.tenant("fabrikam");
    for a in [OWNER, MEMBER, OTHER, EXTRA] {
        s.mailbox(a, &[]);
    }
    s.mailbox("someone@fabrikam.test", &[]);
    Ctx {
        global_admin: tenant_token(&s, "contoso", "global-admin"),
        recipient_admin: tenant_token(&s, "contoso", "recipient-admin"),
        fabrikam_admin: tenant_token(&s, "fabrikam", "global-admin"),
        owner: login(&s, OWNER),
        member: login(&s, MEMBER),
        other: login(&s, OTHER),
        s,
        seq: Cell::new(0),
    }
}

/// A group as the API names it in paths: its address, or (security groups) its name.
struct G {
    /// As the server sees it (for messages).
    ident: String,
    /// URL-encoded, for paths.
    path: String,
}

fn group_ref(ident: &str) -> G {
    G {
        ident: ident.to_string(),
        path: ident.replace('%', "%25").replace(' ', "%20"),
    }
}

impl Ctx {
    fn token(&self, role: Role) -> &str {
        match role {
            Role::Operator => &self.s.token,
            Role::GlobalAdmin => &self.global_admin,
            Role::RecipientAdmin => &self.recipient_admin,
            Role::Owner => &self.owner,
            Role::Member => &self.member,
            Role::OtherUser => &self.other,
            Role::OtherTenantAdmin => &self.fabrikam_admin,
        }
    }

    fn next(&self) -> u32 {
        let n = self.seq.get() + 1;
        self.seq.set(n);
        n
    }

    /// A fresh contoso group of `kind` (as operator), owned by `owners`, with member@ as its
    /// member (dynamic groups: a filter instead).
    fn create(&self, kind: Kind, owners: &[&str]) -> G {
        let n = self.next();
        let mut body = Map::new();
        body.insert("type".into(), json!(kind.as_str()));
        body.insert("tenant".into(), json!("contoso"));
        body.insert("owners".into(), json!(owners));
        let ident = if kind == Kind::Security {
            let name = format!("Sec Group {n}");
            body.insert("name".into(), json!(name));
            name
        } else {
            let address = format!("g{n}-{}@contoso.test", kind.as_str());
            body.insert("address".into(), json!(address));
            address
        };
        if kind == Kind::Dynamic {
            body.insert("recipient_filter".into(), json!("Department -eq 'Sales'"));
        } else {
            body.insert("members".into(), json!([MEMBER]));
        }
        let (status, v) = self
            .s
            .api("POST", "/api/v1/groups", Some(Value::Object(body)));
        assert_eq!(status, 201, "create {kind:?} group {ident}: {v}");
        let g = group_ref(&ident);
        let got = self.get(&g).expect("the new group");
        assert_eq!(got["type"], kind.as_str(), "{got}");
        assert_eq!(got["moderation_enabled"], false, "{got}");
        assert_eq!(strings(&got["owners"]).len(), owners.len(), "{got}");
        if kind == Kind::M365 {
            // A Microsoft 365 group's owners are its members.
            let mut members = strings(&got["members"]);
            members.sort();
            let mut want: Vec<String> = owners.iter().map(|o| o.to_string()).collect();
            want.push(MEMBER.to_string());
            want.sort();
            assert_eq!(members, want, "{got}");
        } else if kind != Kind::Dynamic {
            assert_eq!(strings(&got["members"]), vec![MEMBER.to_string()], "{got}");
        }
        g
    }

    /// The group as the operator sees it; `None` when it doesn't exist.
    fn get(&self, g: &G) -> Option<Value> {
        let (status, v) = self
            .s
            .api("GET", &format!("/api/v1/groups/{}", g.path), None);
        match status {
            200 => Some(v),
            404 => None,
            _ => panic!("GET group {}: {status} {v}", g.ident),
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Sends `call` on `g` with `token`; returns (status, body).
fn send(ctx: &Ctx, token: &str, g: &G, call: Call, bypass: bool) -> (u16, Value) {
    let base = format!("/api/v1/groups/{}", g.path);
    let with_bypass = |mut body: Value| {
        if bypass {
            body["bypass_security_group_manager_check"] = json!(true);
        }
        Some(body)
    };
    let (method, path, body) = match call {
        Call::ChangeSettings => (
            "PATCH",
            base,
            with_bypass(json!({ "moderation_enabled": true, "moderated_by": [OWNER] })),
        ),
        Call::AddMember => (
            "POST",
            format!("{base}/members"),
            with_bypass(json!({ "add": [EXTRA] })),
        ),
        Call::RemoveMember => (
            "POST",
            format!("{base}/members"),
            with_bypass(json!({ "remove": [MEMBER] })),
        ),
        Call::AddOwner => (
            "POST",
            format!("{base}/owners"),
            with_bypass(json!({ "add": [EXTRA] })),
        ),
        Call::RemoveOwner => (
            "POST",
            format!("{base}/owners"),
            with_bypass(json!({ "remove": [OWNER] })),
        ),
        Call::Delete => (
            "DELETE",
            if bypass {
                format!("{base}?bypass_security_group_manager_check=true")
            } else {
                base
            },
            None,
        ),
    };
    ctx.s.api_as(token, method, &path, body)
}

fn error_of(v: &Value) -> &str {
    v["error"].as_str().unwrap_or("")
}

/// Runs one cell on a fresh group; `Err` describes what went wrong.
fn run_cell(ctx: &Ctx, role: Role, kind: Kind, call: Call, bypass: bool) -> Result<(), String> {
    let owners: &[&str] = if call == Call::RemoveOwner {
        &[OWNER, EXTRA]
    } else {
        &[OWNER]
    };
    let g = ctx.create(kind, owners);
    let before = ctx.get(&g).expect("group before the call");
    let (status, body) = send(ctx, ctx.token(role), &g, call, bypass);
    let after = ctx.get(&g);
    let want = expected(role, kind, call, bypass);
    let unchanged = |what: &str| -> Result<(), String> {
        match &after {
            Some(a) if *a == before => Ok(()),
            Some(a) => Err(format!(
                "{what}, but the group changed:\n  before {before}\n  after  {a}"
            )),
            None => Err(format!("{what}, but the group was deleted")),
        }
    };
    match want {
        Expect::NotFound => {
            if status != 404 || error_of(&body) != format!("group {} not found", g.ident) {
                return Err(format!(
                    "want 404 \"group {} not found\", got {status} {body}",
                    g.ident
                ));
            }
            unchanged("refused (404)")
        }
        Expect::Forbidden(msg) => {
            if status != 403 || error_of(&body) != msg {
                return Err(format!("want 403 {msg:?}, got {status} {body}"));
            }
            unchanged("refused (403)")
        }
        Expect::Invalid => {
            if status != 400 {
                return Err(format!("want 400, got {status} {body}"));
            }
            if call == Call::AddMember && !error_of(&body).contains("recipient filter") {
                return Err(format!(
                    "want 400 about the recipient filter, got {status} {body}"
                ));
            }
            unchanged("refused (400)")
        }
        Expect::Allowed => {
            let want_status = if call == Call::Delete { 204 } else { 200 };
            if status != want_status {
                return Err(format!("want {want_status}, got {status} {body}"));
            }
            if call == Call::Delete {
                return match after {
                    None => Ok(()),
                    Some(a) => Err(format!("204 but the group is still there: {a}")),
                };
            }
            let Some(a) = after else {
                return Err("the group disappeared".into());
            };
            if body != a {
                return Err(format!(
                    "the answer is not the group as it now is:\n  answer {body}\n  GET    {a}"
                ));
            }
            let (owners, members) = (strings(&a["owners"]), strings(&a["members"]));
            let ok = match call {
                Call::ChangeSettings => a["moderation_enabled"] == true,
                Call::AddMember => members.contains(&EXTRA.to_string()),
                Call::RemoveMember => !members.contains(&MEMBER.to_string()),
                Call::AddOwner => owners == [OWNER, EXTRA] || owners == [EXTRA, OWNER],
                Call::RemoveOwner => owners == [EXTRA],
                Call::Delete => unreachable!(),
            };
            if !ok {
                return Err(format!(
                    "{status}, but the change was not made:\n  before {before}\n  after  {a}"
                ));
            }
            Ok(())
        }
    }
}

fn outcome(e: Expect) -> String {
    match e {
        Expect::Allowed => "allowed".into(),
        Expect::Invalid => "400".into(),
        Expect::Forbidden(m) if m == NOT_MANAGER => "403 not-manager".into(),
        Expect::Forbidden(_) => "403 bypass-refused".into(),
        Expect::NotFound => "404".into(),
    }
}

// ----- the matrix ----------------------------------------------------------------------------------

#[test]
fn group_change_authorization_matrix() {
    let ctx = setup();

    // What another tenant's admin sees must be what a missing group looks like.
    for call in CALLS {
        let missing = group_ref("no-such-group@contoso.test");
        let (status, body) = send(&ctx, &ctx.fabrikam_admin, &missing, call, false);
        assert_eq!(status, 404, "{call:?} on a missing group: {body}");
        assert_eq!(
            error_of(&body),
            "group no-such-group@contoso.test not found",
            "{call:?}"
        );
    }

    let mut failures = Vec::new();
    let mut cells = 0;
    let mut table = String::new();
    for role in ROLES {
        for kind in KINDS {
            for call in CALLS {
                for bypass in [false, true] {
                    cells += 1;
                    let want = expected(role, kind, call, bypass);
                    table.push_str(&format!(
                        "{role:?} × {} × {call:?} × bypass={bypass}: {}\n",
                        kind.as_str(),
                        outcome(want)
                    ));
                    if let Err(e) = run_cell(&ctx, role, kind, call, bypass) {
                        failures.push(format!(
                            "[{role:?} × {} × {call:?} × bypass={bypass}] {e}",
                            kind.as_str()
                        ));
                    }
                }
            }
        }
    }
    assert_eq!(cells, 7 * 5 * 6 * 2);
    if std::env::var_os("AUTHZ_PRINT_MATRIX").is_some() {
        eprintln!("{table}");
    }
    assert!(
        failures.is_empty(),
        "{} of {cells} cells failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ----- the last owner --------------------------------------------------------------------------------

#[test]
fn the_last_owner_cannot_be_removed() {
    let ctx = setup();
    for kind in KINDS {
        // Alone: neither the owner themself nor an admin can remove them.
        let g = ctx.create(kind, &[OWNER]);
        let before = ctx.get(&g).unwrap();
        for (who, token) in [
            ("owner", ctx.owner.as_str()),
            ("operator", ctx.s.token.as_str()),
            ("global admin", ctx.global_admin.as_str()),
        ] {
            let bypass = managers_only(kind, Call::RemoveOwner) && who != "owner";
            let (status, body) = send(&ctx, token, &g, Call::RemoveOwner, bypass);
            assert_eq!(
                status,
                400,
                "{} × {who} removes the last owner: {body}",
                kind.as_str()
            );
            assert!(
                error_of(&body).contains("at least one owner"),
                "{} × {who}: {body}",
                kind.as_str()
            );
            assert_eq!(ctx.get(&g).unwrap(), before, "{} × {who}", kind.as_str());
        }

        // Two owners, both removed in one request: refused as a whole.
        let g = ctx.create(kind, &[OWNER, EXTRA]);
        let before = ctx.get(&g).unwrap();
        let (status, body) = ctx.s.api(
            "POST",
            &format!("/api/v1/groups/{}/owners", g.path),
            Some(json!({
                "remove": [OWNER, EXTRA],
                "bypass_security_group_manager_check": managers_only(kind, Call::RemoveOwner),
            })),
        );
        assert_eq!(status, 400, "{} × both owners: {body}", kind.as_str());
        assert!(error_of(&body).contains("at least one owner"), "{body}");
        assert_eq!(ctx.get(&g).unwrap(), before, "{}", kind.as_str());

        // One of two: fine, and then the other one is the last.
        let (status, body) = send(&ctx, &ctx.owner, &g, Call::RemoveOwner, false);
        assert_eq!(status, 200, "{} × one of two: {body}", kind.as_str());
        assert_eq!(strings(&ctx.get(&g).unwrap()["owners"]), [EXTRA]);
        let (status, body) = ctx.s.api(
            "POST",
            &format!("/api/v1/groups/{}/owners", g.path),
            Some(json!({
                "remove": [EXTRA],
                "bypass_security_group_manager_check": managers_only(kind, Call::RemoveOwner),
            })),
        );
        assert_eq!(status, 400, "{} × now the last: {body}", kind.as_str());
        assert_eq!(strings(&ctx.get(&g).unwrap()["owners"]), [EXTRA]);
    }
}

// ----- role groups -------------------------------------------------------------------------------------

/// PATCHes `moderation_enabled` as `token`; returns (status, body).
fn set_moderation(ctx: &Ctx, token: &str, g: &G, on: bool, bypass: bool) -> (u16, Value) {
    // A mail-enabled security group's moderation needs a named moderator.
    let mut body = json!({ "moderation_enabled": on, "moderated_by": [OWNER] });
    if bypass {
        body["bypass_security_group_manager_check"] = json!(true);
    }
    ctx.s.api_as(
        token,
        "PATCH",
        &format!("/api/v1/groups/{}", g.path),
        Some(body),
    )
}

#[track_caller]
fn assert_refused(got: &(u16, Value), msg: &str, what: &str) {
    assert_eq!(got.0, 403, "{what}: {}", got.1);
    assert_eq!(error_of(&got.1), msg, "{what}");
}

#[test]
fn role_group_members_act_as_admins_until_removed() {
    let ctx = setup();
    let dist = ctx.create(Kind::Distribution, &[OWNER]);
    let msec = ctx.create(Kind::MailSecurity, &[OWNER]);
    let moderation = |g: &G| ctx.get(g).unwrap()["moderation_enabled"].clone();

    // The role group: a security group with other@ in it.
    let (status, v) = ctx.s.api(
        "POST",
        "/api/v1/groups",
        Some(
            json!({ "type": "security", "tenant": "contoso", "name": "Helpdesk Admins",
                     "owners": [OWNER], "members": [OTHER] }),
        ),
    );
    assert_eq!(status, 201, "{v}");
    let role_group = group_ref("Helpdesk Admins");

    // Before it holds a role, other@ is just a user.
    let got = set_moderation(&ctx, &ctx.other, &dist, true, false);
    assert_refused(&got, NOT_MANAGER, "before the role");
    assert_eq!(moderation(&dist), false);

    // Only a global admin makes a role group.
    for (who, token) in [
        ("recipient admin", ctx.recipient_admin.as_str()),
        ("owner", ctx.owner.as_str()),
        ("other", ctx.other.as_str()),
    ] {
        let got = ctx.s.api_as(
            token,
            "POST",
            &format!("/api/v1/groups/{}/roles", role_group.path),
            Some(json!({ "role": "global-admin" })),
        );
        assert_refused(&got, "this needs the global admin role", who);
    }
    let got = ctx.s.api_as(
        &ctx.fabrikam_admin,
        "POST",
        &format!("/api/v1/groups/{}/roles", role_group.path),
        Some(json!({ "role": "global-admin" })),
    );
    assert_eq!(got.0, 404, "other tenant's admin: {}", got.1);
    assert_eq!(strings(&ctx.get(&role_group).unwrap()["roles"]).len(), 0);

    let (status, v) = ctx.s.api_as(
        &ctx.global_admin,
        "POST",
        &format!("/api/v1/groups/{}/roles", role_group.path),
        Some(json!({ "role": "global-admin" })),
    );
    assert_eq!(status, 200, "{v}");
    // The API takes "global-admin" and calls it by its internal name, "tenant-admin".
    let roles = strings(&ctx.get(&role_group).unwrap()["roles"]);
    assert!(
        roles == ["global-admin"] || roles == ["tenant-admin"],
        "{roles:?}"
    );

    // Now other@ (same token) acts as a global admin.
    let (status, v) = set_moderation(&ctx, &ctx.other, &dist, true, false);
    assert_eq!(status, 200, "role member changes a distribution group: {v}");
    assert_eq!(moderation(&dist), true);
    let got = set_moderation(&ctx, &ctx.other, &msec, true, false);
    assert_refused(&got, NOT_MANAGER, "role member, mail-security, no bypass");
    assert_eq!(moderation(&msec), false);
    let (status, v) = set_moderation(&ctx, &ctx.other, &msec, true, true);
    assert_eq!(status, 200, "role member, mail-security, bypass: {v}");
    assert_eq!(moderation(&msec), true);
    let (status, v) = ctx.s.api_as(
        &ctx.other,
        "POST",
        &format!("/api/v1/groups/{}/members", msec.path),
        Some(json!({ "add": [EXTRA], "bypass_security_group_manager_check": true })),
    );
    assert_eq!(status, 200, "{v}");
    assert!(strings(&ctx.get(&msec).unwrap()["members"]).contains(&EXTRA.to_string()));
    // …and may create what only admins create.
    let (status, v) = ctx.s.api_as(
        &ctx.other,
        "POST",
        "/api/v1/groups",
        Some(json!({ "type": "security", "name": "Made By Delegate" })),
    );
    assert_eq!(status, 201, "{v}");
    // member@ is not in the role group and stays a user.
    let got = set_moderation(&ctx, &ctx.member, &dist, false, false);
    assert_refused(&got, NOT_MANAGER, "member@ is no admin");
    assert_eq!(moderation(&dist), true);

    // Out of the role group: the right goes at the next request.
    let (status, v) = ctx.s.api_as(
        &ctx.global_admin,
        "POST",
        &format!("/api/v1/groups/{}/members", role_group.path),
        Some(json!({ "remove": [OTHER] })),
    );
    assert_eq!(status, 200, "{v}");
    let got = set_moderation(&ctx, &ctx.other, &dist, false, false);
    assert_refused(&got, NOT_MANAGER, "after removal, distribution");
    assert_eq!(moderation(&dist), true);
    let got = set_moderation(&ctx, &ctx.other, &msec, false, true);
    assert_refused(&got, BYPASS_REFUSED, "after removal, bypass");
    assert_eq!(moderation(&msec), true);
    let (status, v) = ctx.s.api_as(
        &ctx.other,
        "POST",
        "/api/v1/groups",
        Some(json!({ "type": "security", "name": "Made Too Late" })),
    );
    assert_eq!(status, 403, "{v}");
    assert!(ctx.get(&group_ref("Made Too Late")).is_none());

    // A recipient-admin role group: admin rights, but no bypass.
    let (status, v) = ctx.s.api(
        "POST",
        "/api/v1/groups",
        Some(
            json!({ "type": "security", "tenant": "contoso", "name": "Recipient Desk",
                     "owners": [OWNER], "members": [MEMBER] }),
        ),
    );
    assert_eq!(status, 201, "{v}");
    let (status, v) = ctx.s.api_as(
        &ctx.global_admin,
        "POST",
        "/api/v1/groups/Recipient%20Desk/roles",
        Some(json!({ "role": "recipient-admin" })),
    );
    assert_eq!(status, 200, "{v}");
    let (status, v) = set_moderation(&ctx, &ctx.member, &dist, false, false);
    assert_eq!(status, 200, "recipient-admin role member: {v}");
    assert_eq!(moderation(&dist), false);
    let got = set_moderation(&ctx, &ctx.member, &msec, false, false);
    assert_refused(
        &got,
        NOT_MANAGER,
        "recipient-admin role member, mail-security",
    );
    let got = set_moderation(&ctx, &ctx.member, &msec, false, true);
    assert_refused(&got, BYPASS_REFUSED, "recipient-admin role member, bypass");
    assert_eq!(moderation(&msec), true);
}

// ----- creating groups -----------------------------------------------------------------------------------

#[test]
fn who_may_create_which_group() {
    let ctx = setup();
    let create =
        |token: &str, body: Value| ctx.s.api_as(token, "POST", "/api/v1/groups", Some(body));

    // A user: no security, mail-security or dynamic groups…
    for (kind, body) in [
        (
            "security",
            json!({ "type": "security", "name": "User Sec" }),
        ),
        (
            "security (tenant named)",
            json!({ "type": "security", "tenant": "contoso", "name": "User Sec" }),
        ),
        (
            "mail-security",
            json!({ "type": "mail-security", "address": "user-msec@contoso.test" }),
        ),
        (
            "dynamic",
            json!({ "type": "dynamic", "address": "user-dyn@contoso.test",
                    "recipient_filter": "Department -eq 'Sales'" }),
        ),
    ] {
        let got = create(&ctx.other, body);
        assert_refused(&got, "only admins may create this type of group", kind);
    }
    assert!(ctx.get(&group_ref("User Sec")).is_none());
    assert!(ctx.get(&group_ref("user-msec@contoso.test")).is_none());
    assert!(ctx.get(&group_ref("user-dyn@contoso.test")).is_none());

    // …but distribution (and Microsoft 365) groups, which they then own.
    for (kind, address) in [
        ("distribution", "users-own@contoso.test"),
        ("m365", "users-team@contoso.test"),
    ] {
        let (status, v) = create(&ctx.other, json!({ "type": kind, "address": address }));
        assert_eq!(status, 201, "user creates {kind}: {v}");
        let g = group_ref(address);
        let got = ctx.get(&g).expect("created");
        assert_eq!(strings(&got["owners"]), [OTHER], "{got}");
        let (status, v) = set_moderation(&ctx, &ctx.other, &g, true, false);
        assert_eq!(status, 200, "the creator owns {kind}: {v}");
        // …which doesn't make them an admin of anything else.
        let (status, v) = create(
            &ctx.other,
            json!({ "type": "security", "name": format!("After {kind}") }),
        );
        assert_eq!(status, 403, "{v}");
    }

    // The tenant's admins may create a security group.
    for (who, token, name) in [
        ("global admin", ctx.global_admin.as_str(), "GA Sec"),
        ("recipient admin", ctx.recipient_admin.as_str(), "RA Sec"),
        ("operator", ctx.s.token.as_str(), "Op Sec"),
    ] {
        let (status, v) = create(
            token,
            json!({ "type": "security", "tenant": "contoso", "name": name, "owners": [OWNER] }),
        );
        assert_eq!(status, 201, "{who}: {v}");
        let got = ctx.get(&group_ref(name)).expect("created");
        assert_eq!(got["tenant"], "contoso", "{got}");
    }

    // Another tenant's admin: contoso doesn't exist for them.
    for (kind, body) in [
        (
            "distribution",
            json!({ "type": "distribution", "tenant": "contoso",
                    "address": "fab-dist@contoso.test", "owners": [OWNER] }),
        ),
        (
            "security",
            json!({ "type": "security", "tenant": "contoso", "name": "Fab Sec",
                    "owners": [OWNER] }),
        ),
    ] {
        let (status, v) = create(&ctx.fabrikam_admin, body);
        assert_eq!(status, 404, "fabrikam admin creates a contoso {kind}: {v}");
        assert_eq!(error_of(&v), "tenant contoso not found", "{kind}");
    }
    assert!(ctx.get(&group_ref("fab-dist@contoso.test")).is_none());
    assert!(ctx.get(&group_ref("Fab Sec")).is_none());
    // Nor in their own tenant with a contoso address.
    let (status, v) = create(
        &ctx.fabrikam_admin,
        json!({ "type": "distribution", "address": "fab-own@contoso.test",
                "owners": ["someone@fabrikam.test"] }),
    );
    assert_eq!(status, 404, "{v}");
    assert!(ctx.get(&group_ref("fab-own@contoso.test")).is_none());
}

// ----- escalation paths (hardening: a recipient admin must not become a global admin) --------------

const ROLE_GROUP: &str = "Global Admins";
const ROLE_GROUP_PATH: &str = "Global%20Admins";

/// The role group every escalation test aims at: a security group owned by owner@ (who is no
/// admin) that holds the global-admin role, with admin@ in it.
fn with_role_group(ctx: &Ctx) {
    ctx.s.mailbox("admin@contoso.test", &[]);
    let (status, v) = ctx.s.api(
        "POST",
        "/api/v1/groups",
        Some(
            json!({ "type": "security", "tenant": "contoso", "name": ROLE_GROUP,
                     "owners": [OWNER], "members": ["admin@contoso.test"] }),
        ),
    );
    assert_eq!(status, 201, "{v}");
    let (status, v) = ctx.s.api(
        "POST",
        &format!("/api/v1/groups/{ROLE_GROUP_PATH}/roles"),
        Some(json!({ "role": "global-admin" })),
    );
    assert_eq!(status, 200, "{v}");
}

fn members_of(ctx: &Ctx, path: &str) -> Vec<String> {
    let (status, v) = ctx.s.api("GET", &format!("/api/v1/groups/{path}"), None);
    assert_eq!(status, 200, "{v}");
    let mut m = strings(&v["members"]);
    m.sort();
    m
}

fn role_refusal(group: &str) -> String {
    format!(
        "only global admins may change the members or owners of {group}: it holds an admin role or is nested in a group that does"
    )
}

fn domains(ctx: &Ctx) -> Vec<String> {
    let (status, v) = ctx.s.api("GET", "/api/v1/domains", None);
    assert_eq!(status, 200, "{v}");
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d["domain"].as_str().unwrap().to_string())
        .collect()
}

fn try_login(ctx: &Ctx, address: &str, password: &str) -> (u16, Value) {
    let (status, bytes) = http(
        ctx.s.admin,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({ "address": address, "password": password })),
    );
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The escalation as it was reproduced: a recipient admin creates a mailbox with a password,
/// puts it in the security group that holds the global-admin role, logs in as it and adds an
/// accepted domain. The second step is refused, so the rest never happens.
#[test]
fn a_recipient_admin_cannot_put_a_mailbox_of_its_own_in_a_role_group() {
    let ctx = setup();
    with_role_group(&ctx);
    let ra = ctx.recipient_admin.as_str();
    let before = members_of(&ctx, ROLE_GROUP_PATH);
    let (status, v) = ctx.s.api_as(
        ra,
        "POST",
        "/api/v1/mailboxes",
        Some(json!({ "address": "mallory@contoso.test", "password": PASSWORD })),
    );
    assert_eq!(
        status, 201,
        "creating a plain mailbox is a recipient admin's job: {v}"
    );
    let got = ctx.s.api_as(
        ra,
        "POST",
        &format!("/api/v1/groups/{ROLE_GROUP_PATH}/members"),
        Some(json!({ "add": ["mallory@contoso.test"] })),
    );
    assert_refused(
        &got,
        &role_refusal(ROLE_GROUP),
        "recipient admin adds to a role group",
    );
    assert_eq!(members_of(&ctx, ROLE_GROUP_PATH), before);
    // Logged in as the new mailbox, it is a user and nothing more.
    let (status, v) = try_login(&ctx, "mallory@contoso.test", PASSWORD);
    assert_eq!(status, 200, "{v}");
    let mallory = v["token"].as_str().unwrap().to_string();
    let got = ctx.s.api_as(
        &mallory,
        "POST",
        "/api/v1/domains",
        Some(json!({ "domain": "evil.test", "tenant": "contoso" })),
    );
    assert_eq!(got.0, 403, "{}", got.1);
    assert!(!domains(&ctx).contains(&"evil.test".to_string()));
    // Nor may the recipient admin make a role group of its own.
    let (status, v) = ctx.s.api_as(
        ra,
        "POST",
        "/api/v1/groups",
        Some(
            json!({ "type": "security", "name": "Mine", "owners": ["mallory@contoso.test"],
                     "members": ["mallory@contoso.test"] }),
        ),
    );
    assert_eq!(status, 201, "{v}");
    let got = ctx.s.api_as(
        ra,
        "POST",
        "/api/v1/groups/Mine/roles",
        Some(json!({ "role": "global-admin" })),
    );
    assert_refused(
        &got,
        "this needs the global admin role",
        "recipient admin assigns a role",
    );
    assert!(strings(&ctx.get(&group_ref("Mine")).unwrap()["roles"]).is_empty());
}

/// Members, owners and nesting of a role group, and of groups nested in it at any depth, are
/// for global admins only: not recipient admins, not owners who are no global admins.
#[test]
fn only_global_admins_change_who_is_in_a_role_group_at_any_depth() {
    let ctx = setup();
    with_role_group(&ctx);
    // Level 1 and level 2 security groups nested under the role group (made by the operator).
    for (name, parent) in [
        ("Nested One", ROLE_GROUP_PATH),
        ("Nested Two", "Nested%20One"),
    ] {
        let (status, v) = ctx.s.api(
            "POST",
            "/api/v1/groups",
            Some(
                json!({ "type": "security", "tenant": "contoso", "name": name, "owners": [OWNER] }),
            ),
        );
        assert_eq!(status, 201, "{v}");
        let (status, v) = ctx.s.api(
            "POST",
            &format!("/api/v1/groups/{parent}/members"),
            Some(json!({ "add": [name] })),
        );
        assert_eq!(status, 200, "{v}");
    }
    let (status, v) = ctx.s.api(
        "POST",
        "/api/v1/groups",
        Some(
            json!({ "type": "security", "tenant": "contoso", "name": "Loose", "owners": [OWNER] }),
        ),
    );
    assert_eq!(status, 201, "{v}");
    let snapshot = |ctx: &Ctx| -> Vec<Value> {
        [ROLE_GROUP, "Nested One", "Nested Two"]
            .iter()
            .map(|g| ctx.get(&group_ref(g)).unwrap())
            .collect()
    };
    let before = snapshot(&ctx);
    for (who, token) in [
        ("recipient admin", ctx.recipient_admin.as_str()),
        ("owner (no admin)", ctx.owner.as_str()),
    ] {
        for (group, path) in [
            (ROLE_GROUP, ROLE_GROUP_PATH),
            ("Nested One", "Nested%20One"),
            ("Nested Two", "Nested%20Two"),
        ] {
            for (what, sub, body) in [
                ("add a member", "members", json!({ "add": [OTHER] })),
                (
                    "remove a member",
                    "members",
                    json!({ "remove": ["admin@contoso.test"] }),
                ),
                ("nest a group", "members", json!({ "add": ["Loose"] })),
                ("add an owner", "owners", json!({ "add": [OTHER] })),
            ] {
                let got = ctx.s.api_as(
                    token,
                    "POST",
                    &format!("/api/v1/groups/{path}/{sub}"),
                    Some(body),
                );
                assert_refused(
                    &got,
                    &role_refusal(group),
                    &format!("{who}: {what} in {group}"),
                );
            }
        }
    }
    assert_eq!(snapshot(&ctx), before, "nothing changed");
    // other@ never became an admin.
    let got = ctx.s.api_as(
        &ctx.other,
        "POST",
        "/api/v1/domains",
        Some(json!({ "domain": "evil.test", "tenant": "contoso" })),
    );
    assert_eq!(got.0, 403, "{}", got.1);
    // A global admin may (the owner's approval of a join request is refused the same way).
    let (status, v) = ctx.s.api_as(
        &ctx.global_admin,
        "POST",
        "/api/v1/groups/Nested%20Two/members",
        Some(json!({ "add": [OTHER] })),
    );
    assert_eq!(status, 200, "{v}");
    let (status, v) = ctx.s.api_as(
        &ctx.other,
        "POST",
        "/api/v1/domains",
        Some(json!({ "domain": "granted.test", "tenant": "contoso" })),
    );
    assert_eq!(
        status, 201,
        "other@ is now a global admin through two levels: {v}"
    );
}

/// A recipient admin may not take over an admin's account: no password set or cleared, no
/// rename or re-alias, no removal — also for an admin through nested role groups.
#[test]
fn a_recipient_admin_cannot_take_over_an_admins_mailbox() {
    let ctx = setup();
    with_role_group(&ctx);
    let (status, v) = ctx.s.api(
        "POST",
        "/api/v1/groups",
        Some(
            json!({ "type": "security", "tenant": "contoso", "name": "Deep", "owners": [OWNER],
                     "members": [MEMBER] }),
        ),
    );
    assert_eq!(status, 201, "{v}");
    let (status, v) = ctx.s.api(
        "POST",
        &format!("/api/v1/groups/{ROLE_GROUP_PATH}/members"),
        Some(json!({ "add": ["Deep"] })),
    );
    assert_eq!(status, 200, "{v}");
    let admin = "admin@contoso.test";
    let (status, v) = ctx.s.api(
        "PATCH",
        &format!("/api/v1/mailboxes/{admin}"),
        Some(json!({ "password": PASSWORD })),
    );
    assert_eq!(status, 200, "{v}");
    // member@ (logged in by setup()) is an admin through Deep.
    for target in [admin, MEMBER] {
        let (_, before) = ctx
            .s
            .api("GET", &format!("/api/v1/mailboxes/{target}"), None);
        let refusal = format!(
            "only global admins may change the password, name, addresses or permissions of, or remove, {target}: its user holds an admin role"
        );
        for (what, method, body) in [
            (
                "set the password",
                "PATCH",
                Some(json!({ "password": "a new password 123" })),
            ),
            (
                "clear the password",
                "PATCH",
                Some(json!({ "password": "" })),
            ),
            (
                "rename",
                "PATCH",
                Some(json!({ "display_name": "Not An Admin" })),
            ),
            (
                "re-alias",
                "PATCH",
                Some(json!({ "aliases": ["boss@contoso.test"] })),
            ),
            ("remove", "DELETE", None),
        ] {
            let got = ctx.s.api_as(
                &ctx.recipient_admin,
                method,
                &format!("/api/v1/mailboxes/{target}"),
                body,
            );
            assert_refused(&got, &refusal, &format!("{what} {target}"));
        }
        // Nor may it give a mailbox of its choosing full access to (read the mail of), or send-as
        // on (write as), an admin's mailbox.
        for right in ["full-access", "send-as"] {
            let got = ctx.s.api_as(
                &ctx.recipient_admin,
                "POST",
                &format!("/api/v1/mailboxes/{target}/permissions"),
                Some(json!({ "user": OTHER, "right": right })),
            );
            assert_refused(&got, &refusal, &format!("grant {right} on {target}"));
        }
        let (status, v) = ctx.s.api(
            "GET",
            &format!("/api/v1/mailboxes/{target}/permissions"),
            None,
        );
        assert_eq!(
            (status, v),
            (200, json!([])),
            "no right was given on {target}"
        );
        let (status, after) = ctx
            .s
            .api("GET", &format!("/api/v1/mailboxes/{target}"), None);
        assert_eq!(status, 200, "{target} still exists");
        assert_eq!(after, before, "{target} unchanged");
        let (status, v) = try_login(&ctx, target, PASSWORD);
        assert_eq!(status, 200, "the password of {target} still works: {v}");
    }
    // The user token of member@ survived too (a password change would have ended it).
    let (status, v) = ctx.s.api_as(
        &ctx.member,
        "GET",
        &format!("/api/v1/mailboxes/{MEMBER}"),
        None,
    );
    assert_eq!(status, 200, "{v}");
    // A mailbox without a role: the recipient admin may.
    let (status, v) = ctx.s.api_as(
        &ctx.recipient_admin,
        "PATCH",
        &format!("/api/v1/mailboxes/{OTHER}"),
        Some(json!({ "password": "a new password 123" })),
    );
    assert_eq!(status, 200, "{v}");
    // And a global admin may for the admin too.
    let (status, v) = ctx.s.api_as(
        &ctx.global_admin,
        "PATCH",
        &format!("/api/v1/mailboxes/{admin}"),
        Some(json!({ "display_name": "Renamed By GA" })),
    );
    assert_eq!(status, 200, "{v}");
}

/// Rights and roles flow only through security-type groups: a distribution list, dynamic or
/// Microsoft 365 group cannot be nested into a role group, a rights group or a group nested in
/// either, and a role or right cannot go to a group that contains one.
#[test]
fn rights_and_roles_flow_only_through_security_groups() {
    let ctx = setup();
    ctx.s.mailbox("shared@contoso.test", &["--type", "shared"]);
    let create = |body: Value| {
        let (status, v) = ctx.s.api("POST", "/api/v1/groups", Some(body));
        assert_eq!(status, 201, "{v}");
    };
    create(
        json!({ "type": "distribution", "tenant": "contoso", "address": "dl@contoso.test",
                   "owners": [OWNER], "members": [OTHER] }),
    );
    create(
        json!({ "type": "dynamic", "tenant": "contoso", "address": "dyn@contoso.test",
                   "owners": [OWNER], "recipient_filter": "Department -eq 'Sales'" }),
    );
    // A mail-enabled security group holding the global-admin role, and one that is the trustee
    // of full access to shared@, with a mail-enabled security group nested in it.
    create(
        json!({ "type": "mail-security", "tenant": "contoso", "address": "admins@contoso.test",
                   "owners": [OWNER] }),
    );
    let (status, v) = ctx.s.api(
        "POST",
        "/api/v1/groups/admins@contoso.test/roles",
        Some(json!({ "role": "global-admin" })),
    );
    assert_eq!(status, 200, "{v}");
    create(
        json!({ "type": "mail-security", "tenant": "contoso", "address": "readers@contoso.test",
                   "owners": [OWNER] }),
    );
    create(
        json!({ "type": "mail-security", "tenant": "contoso", "address": "inner@contoso.test",
                   "owners": [OWNER] }),
    );
    let (status, v) = ctx.s.api(
        "POST",
        "/api/v1/groups/readers@contoso.test/members",
        Some(json!({ "add": ["inner@contoso.test"], "bypass_security_group_manager_check": true })),
    );
    assert_eq!(status, 200, "{v}");
    let (status, v) = ctx.s.api(
        "POST",
        "/api/v1/mailboxes/shared@contoso.test/permissions",
        Some(json!({ "user": "readers@contoso.test", "right": "full-access" })),
    );
    assert_eq!(status, 201, "{v}");
    // A mail-enabled security group with a distribution list two levels down.
    create(
        json!({ "type": "mail-security", "tenant": "contoso", "address": "outer@contoso.test",
                   "owners": [OWNER] }),
    );
    create(
        json!({ "type": "mail-security", "tenant": "contoso", "address": "middle@contoso.test",
                   "owners": [OWNER], "members": ["dl@contoso.test"] }),
    );
    let (status, v) = ctx.s.api(
        "POST",
        "/api/v1/groups/outer@contoso.test/members",
        Some(
            json!({ "add": ["middle@contoso.test"], "bypass_security_group_manager_check": true }),
        ),
    );
    assert_eq!(status, 200, "{v}");

    let snapshot = || -> Vec<Value> {
        ["admins", "readers", "inner", "outer", "middle"]
            .iter()
            .map(|g| ctx.get(&group_ref(&format!("{g}@contoso.test"))).unwrap())
            .collect()
    };
    let permissions = || {
        ctx.s
            .api(
                "GET",
                "/api/v1/mailboxes/shared@contoso.test/permissions",
                None,
            )
            .1
    };
    let (groups_before, perms_before) = (snapshot(), permissions());
    for (target, nested, named) in [
        (
            "admins@contoso.test",
            "dl@contoso.test",
            "dl@contoso.test (distribution)",
        ),
        (
            "admins@contoso.test",
            "dyn@contoso.test",
            "dyn@contoso.test (dynamic)",
        ),
        (
            "readers@contoso.test",
            "dl@contoso.test",
            "dl@contoso.test (distribution)",
        ),
        (
            "inner@contoso.test",
            "dl@contoso.test",
            "dl@contoso.test (distribution)",
        ),
        (
            "admins@contoso.test",
            "outer@contoso.test",
            "dl@contoso.test (distribution)",
        ),
    ] {
        let (status, v) = ctx.s.api(
            "POST",
            &format!("/api/v1/groups/{target}/members"),
            Some(json!({ "add": [nested], "bypass_security_group_manager_check": true })),
        );
        assert_eq!(status, 400, "{nested} into {target}: {v}");
        let e = error_of(&v);
        assert!(
            e.starts_with("rights and roles flow only through security groups")
                && e.contains(named),
            "{nested} into {target}: {e}"
        );
    }
    // A role or a right for a group that contains a distribution list.
    let (status, v) = ctx.s.api(
        "POST",
        "/api/v1/groups/outer@contoso.test/roles",
        Some(json!({ "role": "recipient-admin" })),
    );
    assert_eq!(status, 400, "{v}");
    assert!(
        error_of(&v).contains("dl@contoso.test (distribution)"),
        "{v}"
    );
    let (status, v) = ctx.s.api(
        "POST",
        "/api/v1/mailboxes/shared@contoso.test/permissions",
        Some(json!({ "user": "middle@contoso.test", "right": "send-as" })),
    );
    assert_eq!(status, 400, "{v}");
    assert!(
        error_of(&v).contains("dl@contoso.test (distribution)"),
        "{v}"
    );
    assert_eq!(snapshot(), groups_before, "no group changed");
    assert_eq!(permissions(), perms_before, "no right changed");
    // A security-type group still nests fine.
    create(
        json!({ "type": "mail-security", "tenant": "contoso", "address": "fine@contoso.test",
                   "owners": [OWNER], "members": [OTHER] }),
    );
    let (status, v) = ctx.s.api(
        "POST",
        "/api/v1/groups/admins@contoso.test/members",
        Some(json!({ "add": ["fine@contoso.test"], "bypass_security_group_manager_check": true })),
    );
    assert_eq!(status, 200, "{v}");
}

#[test]
fn a_group_cannot_be_renamed_to_another_groups_name() {
    let ctx = setup();
    let a = ctx.create(Kind::Distribution, &[OWNER]);
    let b = ctx.create(Kind::Security, &[OWNER]);
    let before = ctx.get(&a).unwrap();
    let other_name = b.ident.to_uppercase();
    let (status, v) = ctx.s.api(
        "PATCH",
        &format!("/api/v1/groups/{}", a.path),
        Some(json!({ "name": other_name })),
    );
    assert_eq!(status, 409, "{v}");
    assert!(error_of(&v).contains("already exists"), "{v}");
    assert_eq!(ctx.get(&a).unwrap(), before);
    // Its own name in another case is fine.
    let (status, v) = ctx.s.api(
        "PATCH",
        &format!("/api/v1/groups/{}", a.path),
        Some(json!({ "name": before["name"].as_str().unwrap().to_uppercase() })),
    );
    assert_eq!(status, 200, "{v}");
}
