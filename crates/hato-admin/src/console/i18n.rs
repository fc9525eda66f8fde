//! Every string the console shows, in English and Japanese, in one table. Japanese follows the
//! terms of Exchange's Japanese admin centre (メッセージ追跡, 検疫, コネクタ, 承認済みドメイン,
//! メール フロー, 受信者).

use axum::http::HeaderMap;
use axum::http::header;

/// The console's languages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    Ja,
}

/// The cookie that keeps the language a person chose (it outranks `Accept-Language`).
pub const LANG_COOKIE: &str = "hato_lang";

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "ja" => Some(Lang::Ja),
            _ => None,
        }
    }

    /// The language of a request: the cookie if set, else the best of `Accept-Language`
    /// (RFC 9110 §12.5.4: the highest weight wins; `ja`, `ja-JP`, … are Japanese), else English.
    pub fn of(headers: &HeaderMap) -> Lang {
        if let Some(l) = super::cookie(headers, LANG_COOKIE).and_then(|v| Lang::parse(&v)) {
            return l;
        }
        let Some(accept) = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
        else {
            return Lang::En;
        };
        let mut best = (Lang::En, 0.0_f32);
        // At most 32 entries are read: the header is the client's, its length is not ours.
        for item in accept.split(',').take(32) {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let lang = if tag == "ja" || tag.starts_with("ja-") {
                Lang::Ja
            } else if tag == "en" || tag.starts_with("en-") {
                Lang::En
            } else {
                continue;
            };
            if q > best.1 {
                best = (lang, q);
            }
        }
        best.0
    }
}

/// One string in both languages.
#[derive(Clone, Copy, Debug)]
pub struct Text(pub &'static str, pub &'static str);

impl Text {
    pub fn get(self, lang: Lang) -> &'static str {
        match lang {
            Lang::En => self.0,
            Lang::Ja => self.1,
        }
    }
}

// Navigation.
pub const PRODUCT: Text = Text("hato admin centre", "hato 管理センター");
pub const HOME: Text = Text("Home", "ホーム");
pub const RECIPIENTS: Text = Text("Recipients", "受信者");
pub const GROUPS: Text = Text("Groups", "グループ");
pub const MAIL_FLOW: Text = Text("Mail flow", "メール フロー");
pub const MESSAGE_TRACE: Text = Text("Message trace", "メッセージ追跡");
pub const PROTECTION: Text = Text("Protection", "保護");
pub const QUARANTINE: Text = Text("Quarantine", "検疫");
pub const SIGN_OUT: Text = Text("Sign out", "サインアウト");
pub const LANGUAGE: Text = Text("Language", "言語");

// Roles.
pub const ROLE_OPERATOR: Text = Text("Platform operator", "プラットフォーム運用者");
pub const ROLE_GLOBAL_ADMIN: Text = Text("Global admin", "グローバル管理者");
pub const ROLE_RECIPIENT_ADMIN: Text = Text("Recipient admin", "受信者の管理者");
pub const ROLE_USER: Text = Text("User", "ユーザー");

// Sign-in.
pub const SIGN_IN: Text = Text("Sign in", "サインイン");
pub const ADDRESS: Text = Text("Email address", "メール アドレス");
pub const PASSWORD: Text = Text("Password", "パスワード");
pub const SIGN_IN_HELP: Text = Text(
    "Sign in with your mailbox address and password. The platform operator signs in as \"operator\" with the operator token.",
    "メールボックスのアドレスとパスワードでサインインします。プラットフォーム運用者は「operator」とオペレーター トークンでサインインします。",
);
pub const WRONG_LOGIN: Text = Text(
    "Wrong address or password.",
    "アドレスまたはパスワードが正しくありません。",
);
pub const LOCKED: Text = Text(
    "Too many failed sign-ins. Try again in {} seconds.",
    "サインインの失敗が多すぎます。{} 秒後にもう一度お試しください。",
);
pub const BUSY: Text = Text(
    "The server is busy checking other sign-ins; try again in a few seconds.",
    "サーバーが他のサインインを確認中です。数秒後にもう一度お試しください。",
);
pub const SESSION_ENDED: Text = Text(
    "Your session has ended. Sign in again.",
    "セッションの有効期限が切れました。もう一度サインインしてください。",
);

// Errors.
pub const FORBIDDEN: Text = Text("Not permitted", "アクセス許可がありません");
pub const NOT_FOUND: Text = Text("Not found", "見つかりません");
pub const BAD_REQUEST: Text = Text("Cannot do that", "実行できません");
pub const ERROR: Text = Text("Something went wrong", "エラーが発生しました");
pub const CSRF_REFUSED: Text = Text(
    "This form has expired or did not come from this console. Reload the page and try again.",
    "このフォームは期限切れか、このコンソールから送信されたものではありません。ページを再読み込みしてもう一度お試しください。",
);
pub const NOT_YET: Text = Text("Not built yet", "未実装");
pub const NOT_YET_TEXT: Text = Text(
    "This page of the console is not built yet. The admin API (/api/v1/) and the hato command already do all of it.",
    "コンソールのこのページはまだありません。管理 API (/api/v1/) と hato コマンドでは既にすべて操作できます。",
);

// Tables.
pub const FILTER: Text = Text("Filter rows", "行をフィルター");
pub const APPLY: Text = Text("Apply", "適用");
pub const PAGE_SIZE: Text = Text("Rows per page", "1 ページの行数");
pub const PREVIOUS: Text = Text("Previous", "前へ");
pub const NEXT: Text = Text("Next", "次へ");
pub const PAGE: Text = Text("Page", "ページ");
pub const EXPORT_CSV: Text = Text("Export CSV", "CSV にエクスポート");
pub const NO_ROWS: Text = Text("No results.", "結果はありません。");
pub const SORT_NOTE: Text = Text(
    "Sorting and the row filter apply to the rows of this page; the query narrows all of them.",
    "並べ替えと行フィルターはこのページの行に適用されます。すべての行を絞り込むにはクエリを使用します。",
);

// Message trace.
pub const SENDERS: Text = Text("Senders", "送信者");
pub const RECIPIENTS_FIELD: Text = Text("Recipients", "受信者");
pub const WILDCARD_HINT: Text = Text("address or *@domain", "アドレスまたは *@ドメイン");
pub const START: Text = Text("Start (UTC)", "開始 (UTC)");
pub const END: Text = Text("End (UTC)", "終了 (UTC)");
pub const STATUS: Text = Text("Delivery status", "配信状態");
pub const DIRECTION: Text = Text("Direction", "方向");
pub const INBOUND: Text = Text("Inbound", "受信");
pub const OUTBOUND: Text = Text("Outbound", "送信");
pub const ANY: Text = Text("All", "すべて");
pub const MESSAGE_ID: Text = Text("Message ID", "メッセージ ID");
pub const CLIENT_IP: Text = Text("Client IP", "クライアント IP");
pub const SUBJECT: Text = Text("Subject", "件名");
pub const SEARCH: Text = Text("Search", "検索");
pub const RECEIVED: Text = Text("Date (UTC)", "日付 (UTC)");
pub const SENDER: Text = Text("Sender", "送信者");
pub const RECIPIENT: Text = Text("Recipient", "受信者");
pub const SIZE: Text = Text("Size", "サイズ");
pub const DETAILS: Text = Text("Details", "詳細");
pub const MESSAGE_EVENTS: Text = Text("Message events", "メッセージ イベント");
pub const EVENT: Text = Text("Event", "イベント");
pub const ACTION: Text = Text("Action", "アクション");
pub const TIME: Text = Text("Time (UTC)", "時刻 (UTC)");
pub const REASON: Text = Text("Reason", "理由");
pub const REPLY: Text = Text("Reply", "応答");
pub const FIND_RELATED: Text = Text("Find related", "関連メッセージの検索");
pub const SAME_MESSAGE_ID: Text = Text("Same Message ID", "同じメッセージ ID");
pub const SAME_SENDER: Text = Text("Same sender", "同じ送信者");
pub const TRACE_ID: Text = Text("Trace ID", "追跡 ID");
pub const STAGE: Text = Text("Stage", "段階");
pub const RULE: Text = Text("Rule", "ルール");

// Home.
pub const MAIL_FLOW_STATUS: Text = Text("Mail flow status", "メール フローの状態");
pub const LAST_24H: Text = Text("Last 24 hours", "過去 24 時間");
pub const LAST_7D: Text = Text("Last 7 days", "過去 7 日間");
pub const LAST_30D: Text = Text("Last 30 days", "過去 30 日間");
pub const M_RECEIVED: Text = Text("Received", "受信");
pub const M_DELIVERED: Text = Text("Delivered", "配信済み");
pub const M_FAILED: Text = Text("Failed", "失敗");
pub const M_REFUSED: Text = Text("Refused at the edge", "接続時に拒否");
pub const M_MALWARE: Text = Text("Malware", "マルウェア");
pub const M_RULES: Text = Text("Rule actions", "ルールの操作");
pub const M_SPAM: Text = Text("Spam", "スパム");
pub const M_QUARANTINED: Text = Text("Quarantined", "検疫済み");
pub const QUEUE: Text = Text("Queue", "キュー");
pub const QUEUED: Text = Text("Recipients waiting in the queue", "キューで待機中の受信者");
pub const TOP_SENDERS: Text = Text("Top senders (24 hours)", "上位の送信者 (24 時間)");
pub const TOP_RECIPIENTS: Text = Text("Top recipients (24 hours)", "上位の受信者 (24 時間)");
pub const COUNT: Text = Text("Messages", "メッセージ数");
pub const WELCOME: Text = Text("Welcome", "ようこそ");
pub const USER_HOME_TEXT: Text = Text(
    "From here you reach your quarantine and your groups.",
    "ここから自分の検疫とグループにアクセスできます。",
);

// Quarantine
pub const Q_JUNK_EMAIL: Text = Text("Junk Email", "迷惑メール");
pub const Q_INBOX: Text = Text("Inbox", "受信トレイ");
pub const Q_REASON: Text = Text("Quarantine reason", "検疫の理由");
pub const Q_POLICY: Text = Text("Policy", "ポリシー");
pub const Q_EXPIRES: Text = Text("Expires (UTC)", "有効期限 (UTC)");
pub const Q_EXPIRES_BEFORE: Text = Text("Expires before (UTC)", "有効期限がこれより前 (UTC)");
pub const Q_RELEASE_STATUS: Text = Text("Release status", "解放の状態");
pub const Q_HELD: Text = Text("Needs review", "要確認");
pub const Q_RELEASED: Text = Text("Released", "解放済み");
pub const Q_DELETED: Text = Text("Deleted", "削除済み");
pub const Q_FROM: Text = Text("From", "差出人");
pub const Q_DECIDED: Text = Text("Released or deleted by", "解放または削除したユーザー");
pub const Q_WHY: Text = Text("Why it was held", "保留された理由");
pub const Q_ACTIONS: Text = Text("Actions", "操作");
pub const Q_RELEASE: Text = Text("Release", "解放");
pub const Q_RELEASE_ALL: Text = Text("Release to all recipients", "すべての受信者に解放");
pub const Q_RELEASE_SOME_TITLE: Text = Text("Release to some recipients", "一部の受信者に解放");
pub const Q_RELEASE_SOME: Text = Text("Release to the selected recipients", "選択した受信者に解放");
pub const Q_CHOOSE: Text = Text(
    "Choose at least one recipient to release the message to.",
    "メッセージを解放する受信者を 1 人以上選択してください。",
);
pub const Q_DELETE: Text = Text("Delete", "削除");
pub const Q_PREVIEW: Text = Text("Preview", "プレビュー");
pub const Q_HEADERS: Text = Text("Message header", "メッセージ ヘッダー");
pub const Q_TEXT: Text = Text("Message text", "メッセージ本文");
pub const Q_TEXT_FROM_HTML: Text = Text(
    "The text of the HTML body: the HTML itself is never shown, and nothing it links to is loaded.",
    "HTML 本文のテキストです。HTML 自体は表示されず、リンク先も読み込まれません。",
);
pub const Q_HTML_HIDDEN: Text = Text(
    "The message also has an HTML body, which is not shown.",
    "このメッセージには HTML 本文もありますが、表示されません。",
);
pub const Q_TRUNCATED: Text = Text(
    "The text was cut at its limit.",
    "本文は上限で切り詰められました。",
);
pub const Q_ATTACHMENTS: Text = Text("Attachments", "添付ファイル");
pub const Q_NO_CONTENT: Text = Text(
    "The message was deleted: its content is gone.",
    "メッセージは削除されました。内容は残っていません。",
);
pub const Q_DONE_RELEASED: Text = Text(
    "Released: {} recipient(s) get the message in their Inbox.",
    "解放しました: {} 人の受信者の受信トレイに配信されます。",
);
pub const Q_DONE_DELETED: Text = Text("The message was deleted.", "メッセージを削除しました。");
pub const Q_DONE_NOT_JUNK: Text = Text(
    "Reported as not junk and moved to the Inbox.",
    "迷惑メールではないメールとして報告し、受信トレイに移動しました。",
);
pub const Q_DONE_JUNK: Text = Text(
    "Reported as junk and moved to Junk Email.",
    "迷惑メールとして報告し、迷惑メール フォルダーに移動しました。",
);
pub const Q_USER_NOTE: Text = Text(
    "Your own quarantined messages. Messages held as malware, high confidence phishing or by a mail flow rule are not listed: only admins can release them.",
    "自分宛ての検疫済みメッセージです。マルウェア、高確度フィッシング、またはメール フロー ルールによって保留されたメッセージは表示されません。解放できるのは管理者のみです。",
);
pub const Q_NO_MAILBOX: Text = Text(
    "You are signed in without a mailbox: there is no Junk Email or Inbox to show.",
    "メールボックスなしでサインインしています。表示する迷惑メールや受信トレイはありません。",
);
pub const Q_JUNK_NOTE: Text = Text(
    "Messages delivered to your Junk Email folder. Open one to report it as not junk: it moves to your Inbox.",
    "迷惑メール フォルダーに配信されたメッセージです。メッセージを開いて迷惑メールではないと報告すると、受信トレイに移動します。",
);
pub const Q_INBOX_NOTE: Text = Text(
    "Messages in your Inbox. Open one to report it as junk: it moves to Junk Email.",
    "受信トレイのメッセージです。メッセージを開いて迷惑メールとして報告すると、迷惑メール フォルダーに移動します。",
);
pub const Q_FOLDER: Text = Text("Folder", "フォルダー");
pub const Q_NOT_JUNK: Text = Text("Not junk", "迷惑メールではない");
pub const Q_REPORT_JUNK: Text = Text("Junk", "迷惑メール");
pub const Q_NOT_JUNK_NOTE: Text = Text(
    "Reports the message to your administrator as not junk and moves it to your Inbox.",
    "このメッセージを迷惑メールではないとして管理者に報告し、受信トレイに移動します。",
);
pub const Q_REPORT_JUNK_NOTE: Text = Text(
    "Reports the message to your administrator as junk and moves it to Junk Email.",
    "このメッセージを迷惑メールとして管理者に報告し、迷惑メール フォルダーに移動します。",
);

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(accept: &str, cookie: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_str(accept).expect("header"),
        );
        if let Some(c) = cookie {
            h.insert(header::COOKIE, HeaderValue::from_str(c).expect("header"));
        }
        h
    }

    #[test]
    fn the_language_comes_from_the_cookie_then_the_best_weighted_accept_language() {
        assert_eq!(
            Lang::of(&headers("ja-JP,ja;q=0.9,en;q=0.8", None)),
            Lang::Ja
        );
        assert_eq!(Lang::of(&headers("en-US,ja;q=0.5", None)), Lang::En);
        assert_eq!(Lang::of(&headers("fr, ja;q=0.3", None)), Lang::Ja);
        assert_eq!(Lang::of(&headers("fr", None)), Lang::En);
        assert_eq!(
            Lang::of(&headers("ja", Some("a=b; hato_lang=en"))),
            Lang::En
        );
        assert_eq!(Lang::of(&headers("en", Some("hato_lang=ja"))), Lang::Ja);
    }

    #[test]
    fn the_locked_text_has_one_place_for_the_seconds() {
        for l in [Lang::En, Lang::Ja] {
            assert_eq!(LOCKED.get(l).matches("{}").count(), 1);
        }
    }
}
