//! The admin API client the commands use: where the API is, which token to send, one request.

use crate::config::Config;
use crate::serve::{ADMIN_ADDR_FILE, OPERATOR_TOKEN_FILE};
use serde_json::Value;

pub(crate) struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
}

fn read_token(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|t| t.trim().to_string())
        .map_err(|e| format!("cannot read the API token from {}: {e}", path.display()))
}

impl Client {
    /// A client without a token (for logging in).
    pub(crate) fn anonymous(config: &Config) -> Result<Self, String> {
        let mut c = Self::with_token(config, String::new())?;
        c.token.clear();
        Ok(c)
    }

    pub(crate) fn new(config: &Config, as_token: Option<&std::path::Path>) -> Result<Self, String> {
        let token = match (
            as_token,
            std::env::var("HATO_TOKEN")
                .ok()
                .filter(|t| !t.trim().is_empty()),
        ) {
            (Some(path), _) => read_token(path)?,
            (None, Some(t)) => t.trim().to_string(),
            (None, None) => {
                read_token(&config.server.data_dir.join(OPERATOR_TOKEN_FILE)).map_err(|e| {
                    format!("{e} (has `hato serve` been started with this settings file?)")
                })?
            }
        };
        Self::with_token(config, token)
    }

    fn with_token(config: &Config, token: String) -> Result<Self, String> {
        let mut addr = config.admin.listen.clone();
        if addr.ends_with(":0") {
            addr = std::fs::read_to_string(config.server.data_dir.join(ADMIN_ADDR_FILE))
                .map(|a| a.trim().to_string())
                .map_err(|e| {
                    format!(
                        "the admin API port is 0 and the server's address file is unreadable: {e}"
                    )
                })?;
        }
        let addr = addr
            .replace("0.0.0.0", "127.0.0.1")
            .replace("[::]", "[::1]");
        let agent = ureq::AgentBuilder::new()
            .timeout(std::time::Duration::from_secs(60))
            .build();
        Ok(Client {
            base: format!("http://{addr}"),
            token,
            agent,
        })
    }

    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<ureq::Response, String> {
        let mut req = self
            .agent
            .request(method, &format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.token));
        for (k, v) in query {
            req = req.query(k, v);
        }
        let result = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        self.answer(result)
    }

    /// A request whose body is bytes of `content_type` (a message to test rules on), answered
    /// with JSON.
    pub(crate) fn bytes(
        &self,
        path: &str,
        query: &[(&str, String)],
        content_type: &str,
        body: &[u8],
    ) -> Result<Value, String> {
        let mut req = self
            .agent
            .request("POST", &format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.token))
            .set("Content-Type", content_type);
        for (k, v) in query {
            req = req.query(k, v);
        }
        self.answer(req.send_bytes(body))?
            .into_json::<Value>()
            .map_err(|e| format!("unreadable answer from the API: {e}"))
    }

    /// An answer, or the API's error message with its status.
    fn answer(
        &self,
        result: Result<ureq::Response, ureq::Error>,
    ) -> Result<ureq::Response, String> {
        match result {
            Ok(r) => Ok(r),
            Err(ureq::Error::Status(code, r)) => {
                let text = r.into_string().unwrap_or_default();
                let msg = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v["error"].as_str().map(str::to_string))
                    .unwrap_or(text);
                Err(format!("{msg} (HTTP {code})"))
            }
            Err(ureq::Error::Transport(t)) => {
                Err(format!("cannot reach the admin API at {}: {t}", self.base))
            }
        }
    }

    pub(crate) fn json(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Value, String> {
        let r = self.request(method, path, query, body)?;
        if r.status() == 204 {
            return Ok(Value::Null);
        }
        r.into_json::<Value>()
            .map_err(|e| format!("unreadable answer from the API: {e}"))
    }
}
