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

// Mail flow and Protection
pub const YES: Text = Text("Yes", "はい");
pub const NO: Text = Text("No", "いいえ");
pub const TENANT: Text = Text("Organization", "組織");
pub const CHOOSE_TENANT: Text = Text("Open", "開く");
pub const TABS: Text = Text("Sections", "セクション");
pub const DONE_CREATED: Text = Text("Added.", "追加しました。");
pub const DONE_CHANGED: Text = Text("Saved.", "保存しました。");
pub const DONE_REMOVED: Text = Text("Removed.", "削除しました。");
pub const DONE_MOVED: Text = Text("Priority changed.", "優先度を変更しました。");
pub const DONE_VERIFIED: Text = Text("Verified.", "確認しました。");
pub const DONE_RETRIED: Text = Text("Queued for a new attempt.", "再試行を要求しました。");
pub const DONE_RELEASED: Text = Text("Throttle released.", "調整を解除しました。");
pub const RULES: Text = Text("Rules", "ルール");
pub const ACCEPTED_DOMAINS: Text = Text("Accepted domains", "承認済みドメイン");
pub const CONNECTORS: Text = Text("Connectors", "コネクタ");
pub const MODE_ENFORCE: Text = Text("Enforce", "強制");
pub const MODE_AUDIT: Text = Text("Test without policy tips", "ポリシー ヒントなしでテスト");
pub const MODE_AUDIT_NOTIFY: Text = Text("Test with policy tips", "ポリシー ヒントありでテスト");
pub const PRIORITY: Text = Text("Priority", "優先度");
pub const NAME: Text = Text("Name", "名前");
pub const ENABLED: Text = Text("Enabled", "有効");
pub const MODE: Text = Text("Mode", "モード");
pub const CONDITIONS: Text = Text("Conditions", "条件");
pub const ACTIONS: Text = Text("Actions", "アクション");
pub const HITS: Text = Text("Matches", "一致数");
pub const NEW_RULE: Text = Text("New rule", "新しいルール");
pub const CONDITION: Text = Text("Apply this rule if", "このルールを適用する条件");
pub const VALUE: Text = Text("Value", "値");
pub const LIST_HINT: Text = Text(
    "one value, or several separated by commas",
    "値 (複数の場合はコンマ区切り)",
);
pub const STOP_PROCESSING: Text = Text("Stop processing more rules", "以降のルールを処理しない");
pub const CREATE: Text = Text("Save", "保存");
pub const TEST_MESSAGE: Text = Text("Test a message", "メッセージのテスト");
pub const TEST_HELP: Text = Text(
    "See which rules match a message and what they would do, without sending it: paste a whole message (headers and body), or give its sender, recipients, subject and body.",
    "メッセージを送信せずに、一致するルールとその動作を確認します。メッセージ全体 (ヘッダーと本文) を貼り付けるか、送信者、受信者、件名、本文を入力します。",
);
pub const BODY: Text = Text("Body", "本文");
pub const WHOLE_MESSAGE: Text = Text(
    "Or the whole message (headers and body)",
    "またはメッセージ全体 (ヘッダーと本文)",
);
pub const RUN_TEST: Text = Text("Test", "テスト");
pub const TEST_RESULT: Text = Text("Test result", "テスト結果");
pub const MATCHED: Text = Text("Matched conditions", "一致した条件");
pub const RULES_HELP: Text = Text(
    "Rules apply in priority order (0 first) and take effect at once. Open a rule to move it, turn it on or off, set its mode or delete it.",
    "ルールは優先度の順 (0 が最初) に適用され、すぐに有効になります。ルールを開くと、移動、有効化/無効化、モードの設定、削除ができます。",
);
pub const BACK: Text = Text("Back to the list", "一覧に戻る");
pub const MOVE_UP: Text = Text("Move up", "上へ移動");
pub const MOVE_DOWN: Text = Text("Move down", "下へ移動");
pub const ENABLE: Text = Text("Enable", "有効にする");
pub const DISABLE: Text = Text("Disable", "無効にする");
pub const SET_MODE: Text = Text("Set mode", "モードを設定");
pub const DELETE: Text = Text("Delete", "削除");
pub const DOMAIN: Text = Text("Domain", "ドメイン");
pub const DOMAIN_TYPE: Text = Text("Domain type", "ドメインの種類");
pub const VERIFICATION: Text = Text("Status", "状態");
pub const VERIFICATION_RECORD: Text = Text("TXT record to publish", "公開する TXT レコード");
pub const DOMAINS_HELP: Text = Text(
    "Mail for a domain you add is refused until its TXT record is seen in the DNS: publish it, then verify.",
    "追加したドメイン宛てのメールは、その TXT レコードが DNS で確認されるまで拒否されます。レコードを公開してから確認してください。",
);
pub const ADD_DOMAIN: Text = Text("Add a domain", "ドメインの追加");
pub const ADD: Text = Text("Add", "追加");
pub const DOMAIN_ACTIONS: Text = Text("Verify or remove a domain", "ドメインの確認または削除");
pub const VERIFY: Text = Text("Verify", "確認");
pub const REMOVE: Text = Text("Remove", "削除");
pub const CONNECTOR_TYPE: Text = Text("From / to", "種類");
pub const CONNECTOR_SCOPE: Text = Text("Applies to", "適用対象");
pub const COMMENT: Text = Text("Description", "説明");
pub const PARTNER: Text = Text("Partner organization", "パートナー組織");
pub const ON_PREMISES: Text = Text("Your organization's email server", "組織のメール サーバー");
pub const SENDER_IPS: Text = Text(
    "Sender IP addresses (inbound)",
    "送信者の IP アドレス (受信)",
);
pub const SENDER_DOMAINS: Text = Text("Sender domains (inbound)", "送信者のドメイン (受信)");
pub const INBOUND_ONLY: Text = Text("inbound connectors only", "受信コネクタのみ");
pub const RECIPIENT_DOMAINS: Text = Text("Recipient domains (outbound)", "受信者のドメイン (送信)");
pub const SMART_HOSTS: Text = Text(
    "Smart hosts (outbound; empty: MX records)",
    "スマート ホスト (送信。空の場合は MX レコード)",
);
pub const OUTBOUND_ONLY: Text = Text("outbound connectors only", "送信コネクタのみ");
pub const NEW_CONNECTOR: Text = Text("Add a connector", "コネクタの追加");
pub const EDIT: Text = Text("Edit", "編集");
pub const SAVE: Text = Text("Save", "保存");
pub const VALIDATE: Text = Text("Validate", "検証");
pub const VALIDATE_HELP: Text = Text(
    "Sends a test message through the connector and shows the SMTP conversation.",
    "コネクタ経由でテスト メッセージを送信し、SMTP のやり取りを表示します。",
);
pub const VALIDATION_RESULT: Text = Text("Validation result", "検証結果");
pub const QUEUE_STATUS: Text = Text("Queue status", "キューの状態");
pub const ATTEMPTS: Text = Text("Attempts", "試行回数");
pub const LAST_ERROR: Text = Text("Last error", "最後のエラー");
pub const NEXT_ATTEMPT: Text = Text("Next attempt (UTC)", "次の試行 (UTC)");
pub const QUEUE_ACTIONS: Text = Text("Retry or delete a message", "メッセージの再試行または削除");
pub const WITH_NDR: Text = Text("Send the sender an NDR", "送信者に NDR を送信する");
pub const RETRY: Text = Text("Retry", "再試行");
pub const CONNECTION_FILTER: Text = Text("Connection filter", "接続フィルター");
pub const PROVIDER_BLOCK_LIST: Text = Text("Provider block list", "プロバイダーのブロック リスト");
pub const THROTTLE: Text = Text("Throttling", "調整");
pub const MALWARE_POLICY: Text = Text("Anti-malware", "マルウェア対策");
pub const SPAM_POLICIES: Text = Text("Anti-spam", "スパム対策");
pub const CONNECTION_LOG: Text = Text("Connection log", "接続ログ");
pub const IP_ALLOW_LIST: Text = Text("IP Allow list", "IP 許可一覧");
pub const IP_BLOCK_LIST: Text = Text("IP Block list", "IP 禁止一覧");
pub const IP_LIST: Text = Text("List", "一覧");
pub const IP_ENTRY: Text = Text("IP address or range", "IP アドレスまたは範囲");
pub const CONNECTION_FILTER_HELP: Text = Text(
    "Always accept mail from the IP Allow list; refuse mail from the IP Block list (550 5.7.513). Changes apply at once.",
    "IP 許可一覧からのメールは常に受け入れ、IP 禁止一覧からのメールは拒否します (550 5.7.513)。変更はすぐに適用されます。",
);
pub const CHANGE_IP_LISTS: Text = Text("Add or remove an entry", "エントリの追加または削除");
pub const ADDED_BY: Text = Text("Added by", "追加者");
pub const ADDED: Text = Text("Added (UTC)", "追加日時 (UTC)");
pub const EXPIRES: Text = Text("Expires (UTC)", "有効期限 (UTC)");
pub const EXPIRES_IN: Text = Text("Expires in", "有効期間");
pub const BLOCK_LIST_OPERATOR: Text = Text(
    "The provider block list is the platform's: the platform operator manages it. Senders listed there can ask to be removed on the delist page.",
    "プロバイダーのブロック リストはプラットフォーム全体のもので、プラットフォーム運用者が管理します。登録された送信者は、登録解除ページから削除を依頼できます。",
);
pub const BLOCK_LIST_HELP: Text = Text(
    "Connections from these addresses are refused for every tenant (550 5.7.606).",
    "これらのアドレスからの接続は、すべてのテナントで拒否されます (550 5.7.606)。",
);
pub const CHANGE_BLOCK_LIST: Text = Text("Add or remove an entry", "エントリの追加または削除");
pub const THROTTLE_HELP: Text = Text(
    "Look up a sending IP: whether it is throttled, by which rule and until when. The platform operator can release it.",
    "送信元 IP を調べます: 調整中かどうか、どのルールで、いつまで。プラットフォーム運用者は解除できます。",
);
pub const LOOK_UP: Text = Text("Look up", "検索");
pub const THROTTLED: Text = Text("Throttled", "調整中");
pub const NOT_THROTTLED: Text = Text("Not throttled", "調整されていません");
pub const RELEASE: Text = Text("Release", "解除");
pub const CHANGE_SETTING: Text = Text("Change a setting", "設定の変更");
pub const SETTING: Text = Text("Setting", "設定");
pub const MALWARE_HELP: Text = Text(
    "The default anti-malware policy of the organization.",
    "組織の既定のマルウェア対策ポリシーです。",
);
pub const INBOUND_SPAM: Text = Text("Anti-spam inbound policies", "スパム対策の受信ポリシー");
pub const OUTBOUND_SPAM: Text = Text("Anti-spam outbound policy", "スパム対策の送信ポリシー");
pub const SPAM_ACTION: Text = Text("Spam", "スパム");
pub const HIGH_CONFIDENCE_SPAM_ACTION: Text = Text("High confidence spam", "高確度スパム");
pub const PHISH_ACTION: Text = Text("Phishing", "フィッシング");
pub const BULK_THRESHOLD: Text = Text("Bulk threshold", "バルク メールのしきい値");
pub const PTR: Text = Text("Reverse DNS", "逆引き DNS");
pub const HELO: Text = Text("HELO", "HELO");
pub const CONNECTION_LOG_HELP: Text = Text(
    "Connections refused, deferred or cut at the edge, newest first, with the reason.",
    "エッジで拒否、延期、または切断された接続を、新しい順に理由とともに表示します。",
);
// Recipients and Groups
pub const P_CREATED: Text = Text("Created.", "作成しました。");
pub const P_SAVED: Text = Text("Saved.", "保存しました。");
pub const P_DELETED: Text = Text("Deleted.", "削除しました。");
pub const P_PASSWORD_SET: Text = Text("The password was reset.", "パスワードをリセットしました。");
pub const P_DISPLAY_NAME: Text = Text("Display name", "表示名");
pub const P_EMAIL_ADDRESS: Text = Text("Email address", "メール アドレス");
pub const P_RECIPIENT_TYPE: Text = Text("Recipient type", "受信者の種類");
pub const P_QUOTA_MB: Text = Text("Quota (MB)", "クォータ (MB)");
pub const P_USED_MB: Text = Text("Used (MB)", "使用量 (MB)");
pub const P_USER_MAILBOX: Text = Text("User mailbox", "ユーザー メールボックス");
pub const P_SHARED_MAILBOX: Text = Text("Shared mailbox", "共有メールボックス");
pub const P_MAILBOXES: Text = Text("Mailboxes", "メールボックス");
pub const P_CONTACTS: Text = Text("Contacts", "連絡先");
pub const P_ADD_MAILBOX: Text = Text("Add a mailbox", "メールボックスの追加");
pub const P_ADD_CONTACT: Text = Text("Add a mail contact", "メール連絡先の追加");
pub const P_CREATE: Text = Text("Create", "作成");
pub const P_DEPARTMENT: Text = Text("Department", "部署");
pub const P_COMPANY: Text = Text("Company", "会社");
pub const P_OFFICE: Text = Text("Office", "事業所");
pub const P_CITY: Text = Text("City", "市区町村");
pub const P_STATE: Text = Text("State or province", "都道府県");
pub const P_COUNTRY: Text = Text("Country or region", "国/地域");
pub const P_JOB_TITLE: Text = Text("Job title", "役職");
pub const P_TENANT: Text = Text("Tenant", "テナント");
pub const P_GENERAL: Text = Text("General", "全般");
pub const P_SMTP_AUTH_OFF: Text = Text(
    "Authenticated SMTP off for this mailbox",
    "このメールボックスの認証済み SMTP を無効にする",
);
pub const P_CUSTOM_ATTRIBUTES: Text = Text("Custom attributes", "カスタム属性");
pub const P_CUSTOM_ATTRIBUTE: Text = Text("Custom attribute", "カスタム属性");
pub const P_SAVE: Text = Text("Save", "保存");
pub const P_ALIASES: Text = Text("Email addresses (aliases)", "メール アドレス (エイリアス)");
pub const P_ADD_ALIAS: Text = Text("Add an alias", "エイリアスの追加");
pub const P_ADD: Text = Text("Add", "追加");
pub const P_REMOVE: Text = Text("Remove", "削除");
pub const P_PASSWORD_RESET: Text = Text("Reset password", "パスワードのリセット");
pub const P_NEW_PASSWORD: Text = Text("New password", "新しいパスワード");
pub const P_SET_PASSWORD: Text = Text("Reset", "リセット");
pub const P_PASSWORD_HINT: Text = Text(
    "8 to 256 characters. Left empty, it removes the password: the user can no longer sign in. Signing in again is needed everywhere.",
    "8 ～ 256 文字。空のままにするとパスワードが削除され、ユーザーはサインインできなくなります。すべての場所で再サインインが必要になります。",
);
pub const P_PERMISSIONS: Text = Text("Mailbox permissions", "メールボックスのアクセス許可");
pub const P_TRUSTEE: Text = Text(
    "User or security group",
    "ユーザーまたはセキュリティ グループ",
);
pub const P_RIGHT: Text = Text("Permission", "アクセス許可");
pub const P_FULL_ACCESS: Text = Text("Full access", "フル アクセス");
pub const P_SEND_AS: Text = Text("Send as", "送信者として送信");
pub const P_SEND_ON_BEHALF_NOTE: Text = Text(
    "Send as: the user sends as the mailbox itself. Send on behalf (Exchange's GrantSendOnBehalfTo): the user sends with the mailbox in From and themselves in Sender.",
    "送信者として送信: ユーザーはこのメールボックスとして送信します。代理人として送信: ユーザーは差出人 (From) をこのメールボックス、送信者 (Sender) を自分自身として送信します。",
);
pub const P_DELETE_MAILBOX: Text = Text("Delete mailbox", "メールボックスの削除");
pub const P_TRANSFER_OWNERSHIP: Text = Text(
    "Make this mailbox owner of the groups it alone owns (optional)",
    "このメールボックスだけが所有するグループの新しい所有者 (省略可能)",
);
pub const P_DELETE: Text = Text("Delete", "削除");
pub const P_DELETE_CONTACT: Text = Text("Delete the mail contact", "メール連絡先を削除");
pub const P_CANCEL: Text = Text("Cancel", "キャンセル");
pub const G_DISTRIBUTION: Text = Text("Distribution lists", "配布リスト");
pub const G_M365: Text = Text("Microsoft 365 groups", "Microsoft 365 グループ");
pub const G_MAIL_SECURITY: Text = Text("Mail-enabled security", "メールが有効なセキュリティ");
pub const G_SECURITY: Text = Text("Security groups", "セキュリティ グループ");
pub const G_DYNAMIC: Text = Text("Dynamic distribution lists", "動的配布リスト");
pub const G_MODERATION: Text = Text("Moderation", "モデレーション");
pub const G_JOINED: Text = Text("You joined the group.", "グループに参加しました。");
pub const G_LEFT: Text = Text("You left the group.", "グループから脱退しました。");
pub const G_REQUESTED: Text = Text(
    "Your request was sent to the group's owners.",
    "要求をグループの所有者に送信しました。",
);
pub const G_ALREADY_MEMBER: Text = Text("You are already a member.", "既にメンバーです。");
pub const G_APPROVED: Text = Text("Approved.", "承認しました。");
pub const G_REJECTED: Text = Text("Rejected.", "拒否しました。");
pub const G_BYPASSED: Text = Text(
    "Approved; this sender's messages to the group are no longer moderated.",
    "承認しました。この送信者からグループへのメッセージは今後モデレートされません。",
);
pub const G_NAME: Text = Text("Name", "名前");
pub const G_TYPE: Text = Text("Group type", "グループの種類");
pub const G_OWNERS: Text = Text("Owners", "所有者");
pub const G_MEMBERS: Text = Text("Members", "メンバー");
pub const G_MEMBER_COUNT: Text = Text("Members", "メンバー数");
pub const G_HIDDEN: Text = Text("hidden", "非表示");
pub const G_ADD_GROUP: Text = Text("Add a group", "グループの追加");
pub const G_ONE_A_LINE: Text = Text(
    "Addresses (or group names), one a line",
    "アドレス (またはグループ名) を 1 行に 1 つ",
);
pub const G_FILTER: Text = Text("Recipient filter (OPATH)", "受信者フィルター (OPATH)");
pub const G_FILTER_HINT: Text = Text(
    "For example: Department -eq 'Sales' -and RecipientType -eq 'UserMailbox'. The members it would have show as you type.",
    "例: Department -eq 'Sales' -and RecipientType -eq 'UserMailbox'。入力すると、該当するメンバーが表示されます。",
);
pub const G_PREVIEW: Text = Text("Preview", "プレビュー");
pub const G_PREVIEW_COUNT: Text = Text(
    "{} recipients match now.",
    "現在 {} 件の受信者が該当します。",
);
pub const G_BYPASS_CHECK: Text = Text(
    "Bypass the security group manager check",
    "セキュリティ グループ マネージャーのチェックをバイパスする",
);
pub const G_JOIN: Text = Text("Join", "参加");
pub const G_LEAVE: Text = Text("Leave", "脱退");
pub const G_ADD_OWNER: Text = Text("Add an owner", "所有者の追加");
pub const G_ADD_MEMBER: Text = Text("Add a member", "メンバーの追加");
pub const G_REQUESTS: Text = Text("Join and leave requests", "参加および脱退の要求");
pub const G_REQUEST_KIND: Text = Text("Request", "要求");
pub const G_APPROVE: Text = Text("Approve", "承認");
pub const G_REJECT: Text = Text("Reject", "拒否");
pub const G_APPROVE_BYPASS: Text = Text(
    "Approve and stop moderating this sender",
    "承認して今後この送信者をモデレートしない",
);
pub const G_SETTINGS: Text = Text("Settings", "設定");
pub const G_OPEN: Text = Text("Open", "オープン");
pub const G_CLOSED: Text = Text("Closed", "クローズ");
pub const G_APPROVAL: Text = Text("Owner approval", "所有者の承認");
pub const G_JOIN_RESTRICTION: Text = Text("Joining the group", "グループへの参加");
pub const G_DEPART_RESTRICTION: Text = Text("Leaving the group", "グループからの脱退");
pub const G_PRIVACY: Text = Text("Privacy", "プライバシー");
pub const G_PUBLIC: Text = Text("Public", "パブリック");
pub const G_PRIVATE: Text = Text("Private", "プライベート");
pub const G_AUTO_SUBSCRIBE: Text = Text(
    "Send copies of group conversations to members' inboxes",
    "グループの会話のコピーをメンバーの受信トレイに送信する",
);
pub const G_DELIVERY: Text = Text("Delivery management", "配信管理");
pub const G_SENDER_AUTH: Text = Text("Only senders inside the organisation", "組織内の送信者のみ");
pub const G_ACCEPT_FROM: Text = Text(
    "Accept messages only from",
    "次の送信者からのメッセージのみを受け入れる",
);
pub const G_REJECT_FROM: Text = Text(
    "Reject messages from",
    "次の送信者からのメッセージを拒否する",
);
pub const G_MODERATION_ENABLED: Text = Text(
    "Messages to this group need a moderator's approval",
    "このグループへのメッセージにはモデレーターの承認が必要",
);
pub const G_MODERATED_BY: Text = Text(
    "Moderators (none: the owners)",
    "モデレーター (なし: 所有者)",
);
pub const G_BYPASS_FROM: Text = Text("Senders who don't need approval", "承認が不要な送信者");
pub const G_REPORT_ORIGINATOR: Text = Text(
    "Send delivery reports to the sender",
    "配信レポートを送信者に送信する",
);
pub const G_REPORT_MANAGER: Text = Text(
    "Send delivery reports to the group's owners",
    "配信レポートをグループの所有者に送信する",
);
pub const G_DELETE_GROUP: Text = Text("Delete group", "グループの削除");
pub const G_PENDING: Text = Text("Waiting", "保留中");
pub const G_APPROVED_STATE: Text = Text("Approved", "承認済み");
pub const G_REJECTED_STATE: Text = Text("Rejected", "拒否済み");
pub const G_EXPIRED: Text = Text("Expired", "期限切れ");
pub const G_EXPIRES: Text = Text("Expires (UTC)", "有効期限 (UTC)");
pub const G_COMMENT: Text = Text("Comment (optional)", "コメント (省略可能)");
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
    "Your own quarantined messages, as each one's quarantine policy lets you see them: what you may do with a message (release, request release, preview, delete) is its policy's. Messages held by a mail flow rule, and others whose policy gives no access, are not listed: only admins can release them.",
    "自分宛ての検疫済みメッセージのうち、検疫ポリシーで表示が許可されているものです。メッセージに対して実行できる操作 (解放、解放の要求、プレビュー、削除) は、そのポリシーによって決まります。メール フロー ルールによって保留されたメッセージや、アクセス権のないポリシーのメッセージは表示されません。解放できるのは管理者のみです。",
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

// s9 mail flow and protection: rule exceptions and editing, inbound connector validation,
// custom malware policies, delist requests.

pub const S9_EXCEPTIONS: Text = Text("Exceptions", "例外");
pub const S9_PARAMETER: Text = Text("Parameter", "パラメーター");
pub const S9_EDIT_RULE: Text = Text("Edit the rule", "ルールの編集");
pub const S9_RULE_FORM_HELP: Text = Text(
    "Every condition must hold (values within one are alternatives); any exception keeps the rule from applying. Leave a row at — to leave it out; clearing a row and saving removes it.",
    "すべての条件が満たされる必要があります (1 つの条件内の値はいずれか)。例外のいずれかに一致するとルールは適用されません。行を — のままにすると使用されません。行を空にして保存すると削除されます。",
);
pub const S9_APPLY_IF: Text = Text("Apply this rule if", "このルールを適用する条件");
pub const S9_EXCEPT_IF: Text = Text("Except if", "例外");
pub const S9_DO_THE_FOLLOWING: Text = Text("Do the following", "実行する処理");
pub const S9_EVERY_MESSAGE: Text = Text("Apply to all messages", "すべてのメッセージに適用");
pub const S9_ACTIVATION_DATE: Text = Text("Activate this rule on", "このルールを有効にする日");
pub const S9_EXPIRY_DATE: Text = Text("Deactivate this rule on", "このルールを無効にする日");
pub const S9_COMMENTS: Text = Text("Comments", "コメント");
pub const S9_SENDER_IP: Text = Text("Sending IP address", "送信元 IP アドレス");
pub const S9_SENDER_ADDRESS: Text =
    Text("Sender address (MAIL FROM)", "送信者アドレス (MAIL FROM)");
pub const S9_CERTIFICATE_NAME: Text = Text("TLS certificate name", "TLS 証明書名");
pub const S9_OVER_TLS: Text = Text(
    "The client uses STARTTLS",
    "クライアントが STARTTLS を使用する",
);
pub const S9_VALIDATE_INBOUND_HELP: Text = Text(
    "Says which connector the SMTP edge would attribute a connection from this IP to, and why, and whether relay to outside domains would be allowed. Exchange has no such check; the answer comes from the same code as live mail.",
    "この IP からの接続を SMTP エッジがどのコネクタに関連付けるか、その理由、および外部ドメインへのリレーが許可されるかを表示します。Exchange にはない確認です。実際のメールと同じコードで判定します。",
);
pub const S9_ATTRIBUTED: Text = Text("Attributed to", "関連付け先");
pub const S9_RELAY: Text = Text("Relay to outside domains", "外部ドメインへのリレー");
pub const S9_CUSTOM_POLICIES: Text = Text("Malware policies", "マルウェア対策ポリシー");
pub const S9_NEW_MALWARE_POLICY: Text =
    Text("Create a malware policy", "マルウェア対策ポリシーの作成");
pub const S9_MALWARE_POLICIES_HELP: Text = Text(
    "Custom policies apply to the recipients their conditions name, the first by priority (0 first); everyone else gets the default policy. Policies are never merged.",
    "カスタム ポリシーは条件に一致する受信者に、優先度順 (0 が最初) で最初のものが適用されます。それ以外の受信者には既定のポリシーが適用されます。ポリシーは結合されません。",
);
pub const S9_POLICY: Text = Text("Policy", "ポリシー");
pub const S9_DELIST_REQUESTS: Text = Text("Delist requests", "リスト解除要求");
pub const S9_OUTCOME: Text = Text("Outcome", "結果");
pub const S9_REQUESTED_BY: Text = Text("Requested from", "要求元");
pub const S9_CONFIRMED: Text = Text("Confirmed", "確認日時");
pub const S9_SENT_TO: Text = Text("SentTo (recipients)", "SentTo (受信者)");
pub const S9_SENT_TO_MEMBER_OF: Text = Text("SentToMemberOf (groups)", "SentToMemberOf (グループ)");
pub const S9_RECIPIENT_DOMAIN_IS: Text = Text(
    "RecipientDomainIs (domains)",
    "RecipientDomainIs (ドメイン)",
);
pub const S9_FILE_FILTER: Text = Text(
    "Common attachments filter",
    "一般的な添付ファイル フィルター",
);
pub const S9_STORE_SORT_NOTE: Text = Text(
    "Sorting applies to every row; the row filter to the rows of this page.",
    "並べ替えはすべての行に適用されます。行フィルターはこのページの行に適用されます。",
);
// s9 Home (throttled IPs) and Message trace (saved queries, live updates)
pub const T_THROTTLED_IPS: Text = Text("Throttled IPs", "調整中の IP");
pub const T_THROTTLED_NOW: Text = Text("Throttled now", "現在調整中");
pub const T_ALL_THROTTLED: Text = Text("All throttled IPs", "調整中のすべての IP");
pub const T_SINCE: Text = Text("Since", "開始");
pub const T_UNTIL: Text = Text("Until", "終了");
pub const T_STRIKES: Text = Text("Strikes", "回数");
pub const TR_SAVED: Text = Text("Saved queries", "保存済みのクエリ");
pub const TR_SAVE_AS: Text = Text("Save this query as", "このクエリに名前を付けて保存");
pub const TR_NAME: Text = Text("Name", "名前");
pub const TR_DELETE: Text = Text("Delete", "削除");
pub const TR_NO_SAVED: Text = Text(
    "No saved queries yet.",
    "保存済みのクエリはまだありません。",
);
pub const TR_DONE_SAVED: Text = Text("Query saved.", "クエリを保存しました。");
pub const TR_DONE_DELETED: Text = Text("Saved query deleted.", "保存済みのクエリを削除しました。");
pub const TR_LIVE: Text = Text(
    "New since the page was loaded",
    "ページの読み込み後に届いたメッセージ",
);
pub const TR_LIVE_NOTE: Text = Text(
    "New mail matching the query appears here every 5 seconds.",
    "クエリに一致する新しいメールは 5 秒ごとにここに表示されます。",
);
pub const TR_REFRESH: Text = Text("Refresh", "最新の情報に更新");
// s9 quarantine policies, release requests, send on behalf
pub const QP_QUARANTINE_POLICY: Text = Text("Quarantine policy", "検疫ポリシー");
pub const QP_PERMISSIONS: Text = Text("Recipient's permissions", "受信者のアクセス許可");
pub const QP_NO_ACCESS: Text = Text("No access", "アクセス権なし");
pub const QP_REQUEST: Text = Text("Release request", "解放の要求");
pub const QP_REQ_PENDING: Text = Text("Release requested", "解放が要求されました");
pub const QP_REQ_APPROVED: Text = Text("Approved", "承認済み");
pub const QP_REQ_DENIED: Text = Text("Denied", "拒否済み");
pub const QP_REQUEST_RELEASE: Text = Text("Request release", "解放を要求");
pub const QP_APPROVE: Text = Text("Approve and release", "承認して解放");
pub const QP_DENY: Text = Text("Deny release", "解放を拒否");
pub const QP_DONE_REQUESTED: Text = Text(
    "Release requested: an admin will approve or deny it.",
    "解放を要求しました。管理者が承認または拒否します。",
);
pub const QP_DONE_DENIED: Text = Text(
    "The release request was denied: the message stays in quarantine.",
    "解放の要求を拒否しました。メッセージは検疫に残ります。",
);
pub const QP_NO_PREVIEW: Text = Text(
    "The message's quarantine policy does not permit you to preview it.",
    "このメッセージの検疫ポリシーでは、プレビューは許可されていません。",
);
pub const QP_SEND_ON_BEHALF: Text = Text("Send on behalf", "代理人として送信");

// s10 console leftovers: delist decisions, the live trace's expired session, the malware
// policy's quarantine tag.
pub const S10_SESSION_EXPIRED: Text = Text(
    "Your session has expired: live updates have stopped.",
    "セッションの有効期限が切れたため、ライブ更新が停止しました。",
);
pub const S10_SIGN_IN_AGAIN: Text = Text("Sign in again", "もう一度サインイン");
pub const S10_DELIST_HELP: Text = Text(
    "Requests made on the public delist page. A sender's confirmation link removes a single-address entry by itself; a request whose entry is still listed is pending until you approve it (the entry is removed) or deny it (the entry stays and the request's link no longer works). A request is decided once.",
    "公開のリスト解除ページで行われた要求です。送信者が確認リンクを開くと、単一アドレスのエントリは自動的に削除されます。エントリが残っている要求は、承認 (エントリを削除) または拒否 (エントリを残し、要求のリンクを無効化) するまで保留中です。決定は一度だけ行えます。",
);
pub const S10_REQUEST_STATUS: Text = Text("Status", "状態");
pub const S10_ALL: Text = Text("All", "すべて");
pub const S10_PENDING: Text = Text("Pending", "保留中");
pub const S10_APPROVED: Text = Text("Approved", "承認済み");
pub const S10_DENIED: Text = Text("Denied", "拒否済み");
pub const S10_CLOSED: Text = Text("Closed", "完了");
pub const S10_APPROVE: Text = Text("Approve", "承認");
pub const S10_DENY: Text = Text("Deny", "拒否");
pub const S10_DECIDED: Text = Text("Decided", "決定");
pub const S10_DECISION_REASON: Text = Text("Reason (optional)", "理由 (省略可)");
pub const S10_DONE_APPROVED: Text = Text(
    "Approved: the entry was removed from the block list.",
    "承認しました。エントリをブロック一覧から削除しました。",
);
pub const S10_DONE_DENIED: Text = Text(
    "Denied: the entry stays on the block list.",
    "拒否しました。エントリはブロック一覧に残ります。",
);
pub const S10_QUARANTINE_TAG: Text = Text("Quarantine policy", "検疫ポリシー");
// s10 junk email configuration
pub const JE_TITLE: Text = Text("Junk email settings", "迷惑メールの設定");
pub const JE_ENABLED: Text = Text(
    "Use my safe senders and blocked senders lists",
    "差出人セーフ リストと受信拒否リストを使用する",
);
pub const JE_SAVE: Text = Text("Save", "保存");
pub const JE_SAFE_SENDERS: Text = Text("Safe senders and domains", "差出人セーフ リスト");
pub const JE_BLOCKED_SENDERS: Text = Text("Blocked senders and domains", "受信拒否リスト");
pub const JE_SAFE_HINT: Text = Text(
    "Mail from these addresses and domains goes to the Inbox, even when it looks like spam (malware and high confidence phishing are still quarantined).",
    "これらのアドレスとドメインからのメールは、迷惑メールと判定されても受信トレイに配信されます (マルウェアと高確度フィッシングは引き続き検疫されます)。",
);
pub const JE_BLOCKED_HINT: Text = Text(
    "Mail from these addresses and domains goes to the Junk Email folder.",
    "これらのアドレスとドメインからのメールは迷惑メール フォルダーに移動されます。",
);
pub const JE_ENTRIES: Text = Text("Addresses or domains", "アドレスまたはドメイン");
pub const JE_ENTRY: Text = Text("Address or domain", "アドレスまたはドメイン");
pub const JE_LIST: Text = Text("List", "リスト");
pub const JE_ADD: Text = Text("Add", "追加");
pub const JE_REMOVE: Text = Text("Remove", "削除");
pub const JE_EMPTY: Text = Text("The list is empty.", "リストは空です。");
pub const JE_PREVIOUS: Text = Text("Previous", "前へ");
pub const JE_NEXT: Text = Text("Next", "次へ");
pub const JE_NOTHING: Text = Text(
    "Type an address or a domain first.",
    "先にアドレスまたはドメインを入力してください。",
);
pub const JE_DONE_ADDED: Text = Text("Added to the list.", "リストに追加しました。");
pub const JE_DONE_REMOVED: Text = Text("Removed from the list.", "リストから削除しました。");
pub const JE_DONE_SAVED: Text = Text("Settings saved.", "設定を保存しました。");
pub const JE_ALLOW_SENDER: Text = Text("Allow sender", "送信者を許可");
pub const JE_BLOCK_SENDER: Text = Text("Block sender", "送信者をブロック");
pub const JE_DONE_SENDER_ALLOWED: Text = Text(
    "The sender was added to the recipient's safe senders list.",
    "送信者を受信者の差出人セーフ リストに追加しました。",
);
pub const JE_DONE_SENDER_BLOCKED: Text = Text(
    "The sender was added to the recipient's blocked senders list.",
    "送信者を受信者の受信拒否リストに追加しました。",
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
