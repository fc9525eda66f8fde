//! The frame of every page: the header with the navigation the caller's role may see, who is
//! signed in and as what, the language switch and sign-out; the stylesheet and htmx.

use super::assets;
use super::i18n::{self, Lang, Text};
use super::session::{CSRF_FIELD, Ctx};
use super::url_encode;
use axum::response::Html;
use hato_core::auth::{Principal, Role};
use maud::{DOCTYPE, Markup, html};

/// The console's sections, in the header's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nav {
    Home,
    Recipients,
    Groups,
    MailFlow,
    Trace,
    Protection,
    Quarantine,
}

impl Nav {
    pub const ALL: [Nav; 7] = [
        Nav::Home,
        Nav::Recipients,
        Nav::Groups,
        Nav::MailFlow,
        Nav::Trace,
        Nav::Protection,
        Nav::Quarantine,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Nav::Home => "/",
            Nav::Recipients => "/recipients",
            Nav::Groups => "/groups",
            Nav::MailFlow => "/mail-flow",
            Nav::Trace => "/trace",
            Nav::Protection => "/protection",
            Nav::Quarantine => "/quarantine",
        }
    }

    pub fn label(self) -> Text {
        match self {
            Nav::Home => i18n::HOME,
            Nav::Recipients => i18n::RECIPIENTS,
            Nav::Groups => i18n::GROUPS,
            Nav::MailFlow => i18n::MAIL_FLOW,
            Nav::Trace => i18n::MESSAGE_TRACE,
            Nav::Protection => i18n::PROTECTION,
            Nav::Quarantine => i18n::QUARANTINE,
        }
    }

    /// Whether `p` may see the section, by the API's rules for what it holds: recipients and
    /// message trace are for admins (`require_admin`); mail flow (accepted domains, rules,
    /// connectors) and protection policies for global admins (`require_global_admin`), so a
    /// recipient admin never sees accepted domains; groups for everyone; quarantine for all
    /// but recipient admins (a user sees their own).
    pub fn visible_to(self, p: &Principal) -> bool {
        match self {
            Nav::Home | Nav::Groups => true,
            // As `routes::quarantine` allows: not recipient admins (Exchange's Recipient
            // Management role has no quarantine access).
            Nav::Quarantine => p.role != Role::RecipientAdmin,
            Nav::Recipients | Nav::Trace => p.is_admin(),
            Nav::MailFlow | Nav::Protection => p.is_global_admin(),
        }
    }
}

pub fn role_label(role: Role) -> Text {
    match role {
        Role::Operator => i18n::ROLE_OPERATOR,
        Role::TenantAdmin => i18n::ROLE_GLOBAL_ADMIN,
        Role::RecipientAdmin => i18n::ROLE_RECIPIENT_ADMIN,
        Role::User => i18n::ROLE_USER,
    }
}

fn head(lang: Lang, title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            // htmx without the <style> it would inject (the CSP allows no inline style) and
            // without eval (nor does it allow eval).
            meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}"#;
            title { (title) " - " (i18n::PRODUCT.get(lang)) }
            link rel="stylesheet" href=(assets::css_url());
            script src=(assets::htmx_url()) defer {}
        }
    }
}

fn lang_switch(lang: Lang, here: &str) -> Markup {
    html! {
        span.lang aria-label=(i18n::LANGUAGE.get(lang)) {
            @for (l, label) in [(Lang::En, "English"), (Lang::Ja, "日本語")] {
                @if l == lang {
                    span lang=(l.code()) { (label) }
                } @else {
                    a lang=(l.code()) href={ "/lang?set=" (l.code()) "&next=" (url_encode(here)) } { (label) }
                }
            }
        }
    }
}

/// A whole page for a signed-in caller; `current` marks its section in the navigation.
pub fn page(ctx: &Ctx, current: Option<Nav>, title: &str, body: Markup) -> Html<String> {
    let lang = ctx.lang;
    let csrf_headers = format!(r#"{{"X-CSRF-Token":"{}"}}"#, ctx.csrf);
    let page = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            (head(lang, title))
            body hx-headers=(csrf_headers) {
                header.top {
                    a.brand href="/" { "hato" }
                    nav.main aria-label="main" {
                        @for n in Nav::ALL {
                            @if n.visible_to(&ctx.p) {
                                @if Some(n) == current {
                                    a href=(n.path()) aria-current="page" data-nav=(n.path()) { (n.label().get(lang)) }
                                } @else {
                                    a href=(n.path()) data-nav=(n.path()) { (n.label().get(lang)) }
                                }
                            }
                        }
                    }
                    div.who {
                        span.user { (ctx.name) }
                        span.role { (role_label(ctx.p.role).get(lang)) }
                        (lang_switch(lang, &ctx.here))
                        form method="post" action="/logout" {
                            input type="hidden" name=(CSRF_FIELD) value=(ctx.csrf);
                            button.link type="submit" { (i18n::SIGN_OUT.get(lang)) }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    Html(page.into_string())
}

/// A page without a session (sign-in, errors before it).
pub fn bare(lang: Lang, title: &str, body: Markup) -> Html<String> {
    let page = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            (head(lang, title))
            body {
                header.top {
                    span.brand { "hato" }
                    nav.main {}
                    div.who { (lang_switch(lang, "/login")) }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    Html(page.into_string())
}
