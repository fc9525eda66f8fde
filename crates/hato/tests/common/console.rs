//! A client of the web console for handler tests without a browser: it keeps the console's
//! cookies, follows no redirect, and reads what the tests look at (headers, the CSRF field, the
//! navigation entries). `tests/console*.rs` share it.

use super::Server;
use std::collections::BTreeMap;

/// A client that keeps the console's cookies and follows no redirect.
pub struct Client {
    pub base: String,
    pub agent: ureq::Agent,
    pub cookies: BTreeMap<String, String>,
    /// The CSRF field of the last page that had one (for [`Client::post_csrf`]).
    pub csrf: String,
}

pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The hidden CSRF field of the page's first form that has one.
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"_csrf\" value=\"")
            .expect("a CSRF field")
            + 20;
        self.body[at..at + 64].to_string()
    }

    /// The rows of the page's data table (`<tr>` in its body).
    pub fn table_rows(&self) -> usize {
        self.body
            .split("<tbody")
            .nth(1)
            .map(|t| {
                t.split("</tbody>")
                    .next()
                    .unwrap_or("")
                    .matches("<tr>")
                    .count()
            })
            .unwrap_or(0)
    }

    /// The `data-nav` entries of the header.
    pub fn nav(&self) -> Vec<String> {
        self.body
            .split("data-nav=\"")
            .skip(1)
            .map(|s| s[..s.find('"').unwrap_or(0)].to_string())
            .collect()
    }
}

impl Client {
    pub fn new(s: &Server) -> Client {
        Client {
            base: format!("http://{}", s.admin),
            agent: ureq::AgentBuilder::new().redirects(0).build(),
            cookies: BTreeMap::new(),
            csrf: String::new(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn finish(&mut self, r: Result<ureq::Response, ureq::Error>) -> Answer {
        let r = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("request failed: {e}"),
        };
        let status = r.status();
        let headers: Vec<(String, String)> = r
            .headers_names()
            .into_iter()
            .flat_map(|n| {
                r.all(&n)
                    .into_iter()
                    .map(|v| (n.clone(), v.to_string()))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (k, v) in &headers {
            if k.eq_ignore_ascii_case("set-cookie") {
                let pair = v.split(';').next().unwrap_or("");
                if let Some((name, value)) = pair.split_once('=') {
                    if v.contains("Max-Age=0") {
                        self.cookies.remove(name);
                    } else {
                        self.cookies.insert(name.to_string(), value.to_string());
                    }
                }
            }
        }
        let body = r.into_string().unwrap_or_default();
        if let Some(at) = body.find("name=\"_csrf\" value=\"")
            && let Some(token) = body.get(at + 20..at + 84)
        {
            self.csrf = token.to_string();
        }
        Answer {
            status,
            headers,
            body,
        }
    }

    pub fn get(&mut self, path: &str) -> Answer {
        let mut req = self.agent.get(&format!("{}{path}", self.base));
        if !self.cookies.is_empty() {
            req = req.set("Cookie", &self.cookie_header());
        }
        let r = req.call();
        self.finish(r)
    }

    pub fn post(&mut self, path: &str, form: &[(&str, &str)], headers: &[(&str, &str)]) -> Answer {
        let mut req = self.agent.post(&format!("{}{path}", self.base));
        if !self.cookies.is_empty() {
            req = req.set("Cookie", &self.cookie_header());
        }
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let r = req.send_form(form);
        self.finish(r)
    }

    /// Posts `form` with the CSRF token `token` and asserts the answer's status, and for a
    /// redirect where it leads (`location`, when given); the answer is returned for more
    /// checks (through the API, on the page).
    pub fn post_and_expect(
        &mut self,
        path: &str,
        token: &str,
        form: &[(&str, &str)],
        status: u16,
        location: Option<&str>,
    ) -> Answer {
        let mut all = vec![("_csrf", token)];
        all.extend_from_slice(form);
        let a = self.post(path, &all, &[]);
        assert_eq!(a.status, status, "POST {path} {form:?}: {}", a.body);
        if let Some(to) = location {
            assert_eq!(a.header("location"), Some(to), "POST {path} {form:?}");
        }
        a
    }

    /// A POST of `form` with the CSRF token the client last saw (unless `csrf` is false: a
    /// forged POST).
    pub fn post_with(&mut self, path: &str, form: &[(&str, &str)], csrf: bool) -> Answer {
        let token = self.csrf.clone();
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        if csrf {
            fields.push(("_csrf", &token));
        }
        self.post(path, &fields, &[])
    }

    /// A POST of `form` with the CSRF token the client last saw.
    pub fn post_csrf(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        self.post_with(path, form, true)
    }

    /// Signed in, with the session's CSRF token read from the home page.
    pub fn signed_in_csrf(s: &Server, address: &str, password: &str) -> Client {
        let mut c = Client::signed_in(s, address, password);
        let home = c.get("/");
        assert_eq!(home.status, 200, "{}", home.body);
        assert_eq!(c.csrf.len(), 64, "a CSRF token");
        c
    }

    pub fn sign_in(&mut self, address: &str, password: &str) -> Answer {
        self.post(
            "/login",
            &[("address", address), ("password", password), ("next", "/")],
            &[],
        )
    }

    pub fn signed_in(s: &Server, address: &str, password: &str) -> Client {
        let mut c = Client::new(s);
        let a = c.sign_in(address, password);
        assert_eq!(a.status, 303, "sign-in of {address}: {}", a.body);
        assert!(c.cookies.contains_key("hato_session"), "{:?}", a.headers);
        c
    }
}

/// The console tests' tenants on a started server: contoso with a user, a recipient admin (`ra`,
/// in "Recipient Desk") and a global admin (`ga`, in "Global Admins") — roles through role
/// groups, as Exchange gives them — and the groups' owner; fabrikam with `other`. Every mailbox
/// has `password`.
pub fn roles_fixture(s: Server, password: &str) -> Server {
    s.tenant("contoso");
    s.tenant("fabrikam");
    for m in ["user", "ra", "ga", "owner"] {
        s.mailbox(&format!("{m}@contoso.test"), &["--password", password]);
    }
    s.mailbox("other@fabrikam.test", &["--password", password]);
    admin_groups(&s);
    s
}

/// contoso's "Global Admins" (`ga@`) and "Recipient Desk" (`ra@`), owned by `owner@`: the
/// console tests' admins, through role groups as Exchange gives the roles.
pub fn admin_groups(s: &Server) {
    role_group(
        s,
        "contoso",
        "Global Admins",
        "owner@contoso.test",
        &["ga@contoso.test"],
        "global-admin",
    );
    role_group(
        s,
        "contoso",
        "Recipient Desk",
        "owner@contoso.test",
        &["ra@contoso.test"],
        "recipient-admin",
    );
}

/// A security group of `tenant` named `name`, owned by `owner`, with `members`, given `role`.
pub fn role_group(s: &Server, tenant: &str, name: &str, owner: &str, members: &[&str], role: &str) {
    let (status, v) = s.api(
        "POST",
        "/api/v1/groups",
        Some(
            serde_json::json!({ "type": "security", "tenant": tenant, "name": name,
                                  "owners": [owner], "members": members }),
        ),
    );
    assert_eq!(status, 201, "{v}");
    let (status, v) = s.api(
        "POST",
        &format!("/api/v1/groups/{}/roles", name.replace(' ', "%20")),
        Some(serde_json::json!({ "role": role })),
    );
    assert_eq!(status, 200, "{v}");
}

impl Client {
    /// The operator, signed in with its token.
    pub fn operator(s: &Server) -> Client {
        let mut c = Client::new(s);
        let a = c.sign_in("operator", &s.token);
        assert_eq!(a.status, 303, "{}", a.body);
        c
    }
}

/// contoso with `admin@` (a global admin through the "Global Admins" role group, which it owns)
/// and `user@`, both with `password`: the browser tests' quarantine setup.
pub fn admin_and_user_fixture(password: &str) -> Server {
    let s = Server::start();
    s.tenant("contoso");
    for m in ["admin@contoso.test", "user@contoso.test"] {
        s.mailbox(m, &["--password", password]);
    }
    role_group(
        &s,
        "contoso",
        "Global Admins",
        "admin@contoso.test",
        &["admin@contoso.test"],
        "global-admin",
    );
    s
}
