//! The sections not built yet: each answers with a short "not yet" page to those who may see
//! the section (by the same rule as the navigation), 403 to others.

use super::error_page;
use super::i18n;
use super::layout::{self, Nav};
use super::session::Ctx;
use axum::response::{IntoResponse, Response};
use maud::html;

fn not_yet(ctx: Ctx, section: Nav) -> Response {
    let lang = ctx.lang;
    if !section.visible_to(&ctx.p) {
        return error_page(
            Some(&ctx),
            lang,
            crate::ApiError::forbidden(i18n::FORBIDDEN.get(lang)),
        );
    }
    let body = html! {
        p.note.not-yet { (i18n::NOT_YET.get(lang)) }
        p { (i18n::NOT_YET_TEXT.get(lang)) }
    };
    layout::page(&ctx, Some(section), section.label().get(lang), body).into_response()
}

pub async fn recipients(ctx: Ctx) -> Response {
    not_yet(ctx, Nav::Recipients)
}
pub async fn groups(ctx: Ctx) -> Response {
    not_yet(ctx, Nav::Groups)
}
pub async fn mail_flow(ctx: Ctx) -> Response {
    not_yet(ctx, Nav::MailFlow)
}
pub async fn protection(ctx: Ctx) -> Response {
    not_yet(ctx, Nav::Protection)
}
