//! The HTTP client of the CLI: base URL plus bearer token, and problem+json answers
//! turned into one error line (`unauthorized: the token has expired`).

use std::fmt;
use std::time::Duration;

use anyhow::Context;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response, Url};
use serde_json::Value;

use super::config::{self, DEFAULT_URL};
use super::Global;

/// A server's error answer, as one line.
#[derive(Debug)]
pub struct Problem {
    /// HTTP status.
    pub status: u16,
    /// The stable `code` (`budget_exhausted`, …), or `http_<status>` without a body.
    pub code: String,
    /// What happened, for a person.
    pub detail: String,
    /// Seconds to wait before retrying (429).
    pub retry_after_s: Option<u64>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)?;
        if let Some(s) = self.retry_after_s {
            write!(f, " (retry in {s} s)")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}

impl Problem {
    /// Reads a problem+json body; anything else still becomes a one-line problem.
    pub fn from_parts(status: u16, headers: &HeaderMap, body: &[u8]) -> Self {
        let retry_after_s = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let field = |key: &str| {
            parsed
                .as_ref()
                .and_then(|p| p.get(key))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let code = field("code").unwrap_or_else(|| format!("http_{status}"));
        let detail = field("detail")
            .or_else(|| field("title"))
            .or_else(|| {
                let text = String::from_utf8_lossy(body);
                let line = text.lines().find(|l| !l.trim().is_empty())?.trim();
                Some(line.chars().take(200).collect())
            })
            .unwrap_or_else(|| {
                reqwest::StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("error")
                    .to_lowercase()
            });
        Self {
            status,
            code,
            detail: detail.replace('\n', " "),
            retry_after_s,
        }
    }
}

/// Talks to one server with one (optional) token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

impl Client {
    /// The server and token from flags, environment, then the saved config.
    pub fn from_global(global: &Global) -> anyhow::Result<Self> {
        // A script that gives both needs no config file (nor a home directory).
        let saved = match (&global.url, &global.token) {
            (Some(_), Some(_)) => config::Saved::default(),
            _ => config::load()?,
        };
        let url = global
            .url
            .clone()
            .filter(|u| !u.trim().is_empty())
            .or_else(|| saved.url.clone())
            .unwrap_or_else(|| DEFAULT_URL.to_string());
        // The saved token is only ever sent to the server it was issued by.
        let token = global.token.clone().or_else(|| {
            let same = saved.url.as_deref().map(config::normalize_url)
                == Some(config::normalize_url(&url));
            saved.token.filter(|_| same)
        });
        Self::new(&url, token)
    }

    /// A client of `url`.
    pub fn new(url: &str, token: Option<String>) -> anyhow::Result<Self> {
        let base = Url::parse(&config::normalize_url(url))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .with_context(|| format!("{url:?} is not a server URL like http://127.0.0.1:8080"))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("corral-cli/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            base,
            token: token.filter(|t| !t.is_empty()),
        })
    }

    /// The server's URL as given.
    pub fn base(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// The token, or the error saying how to get one.
    pub fn require_token(&self) -> anyhow::Result<&str> {
        self.token.as_deref().context(
            "not logged in: run `corral login` (or `corral signup`), or pass --token / set CORRAL_TOKEN",
        )
    }

    /// The URL of `segments` below the base, each percent-encoded as one segment.
    pub fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("http URLs have paths")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// A request with the bearer token when there is one.
    pub fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let request = self.http.request(method, url);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends; a transport failure or an error status becomes a one-line error.
    pub async fn send(&self, request: RequestBuilder) -> anyhow::Result<Response> {
        let response = request.send().await.map_err(|e| self.transport(e))?;
        self.check(response).await
    }

    /// The response when it is a success, else its problem as the error.
    pub async fn check(&self, response: Response) -> anyhow::Result<Response> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap_or_default();
        Err(self.problem(status.as_u16(), &headers, &body))
    }

    /// The error for an error answer (also used for a refused WebSocket upgrade).
    pub fn problem(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> anyhow::Error {
        let mut problem = Problem::from_parts(status, headers, body);
        if problem.status == 401 && self.token.is_some() {
            problem
                .detail
                .push_str(" (log in again with `corral login`)");
        }
        anyhow::Error::new(problem)
    }

    /// A transport failure as one line naming the server.
    pub fn transport(&self, error: reqwest::Error) -> anyhow::Error {
        let mut root: &dyn std::error::Error = &error;
        while let Some(source) = root.source() {
            root = source;
        }
        if error.is_connect() {
            anyhow::anyhow!("cannot reach {}: {root}", self.base())
        } else if error.is_timeout() {
            anyhow::anyhow!("{} did not answer in time", self.base())
        } else {
            anyhow::anyhow!("talking to {} failed: {root}", self.base())
        }
    }

    /// Sends and reads a JSON answer (`null` for an empty one, e.g. 204).
    pub async fn json(&self, request: RequestBuilder) -> anyhow::Result<Value> {
        let response = self.send(request).await?;
        self.answer(response).await
    }

    /// A response's JSON answer, or its problem as the error.
    pub async fn answer(&self, response: Response) -> anyhow::Result<Value> {
        let response = self.check(response).await?;
        let bytes = response.bytes().await.map_err(|e| self.transport(e))?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).context("the server's answer is not JSON")
    }

    /// `GET` of `segments` with `query`, as JSON.
    pub async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> anyhow::Result<Value> {
        let mut url = self.endpoint(segments);
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        self.json(self.request(Method::GET, url)).await
    }

    /// `method` of `segments` with a JSON body, as JSON.
    pub async fn call(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self.request(method, self.endpoint(segments));
        if let Some(body) = body {
            request = request.json(body);
        }
        self.json(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_is_one_line_with_its_code() {
        let body = br#"{"type":"x","title":"Payment Required","status":402,"detail":"the cap of $1.00 is spent","code":"budget_exhausted"}"#;
        let p = Problem::from_parts(402, &HeaderMap::new(), body);
        assert_eq!(p.to_string(), "budget_exhausted: the cap of $1.00 is spent");
    }

    #[test]
    fn a_bare_error_still_says_something() {
        let p = Problem::from_parts(502, &HeaderMap::new(), b"");
        assert_eq!(p.to_string(), "http_502: bad gateway");
        let p = Problem::from_parts(500, &HeaderMap::new(), b"\n  oops\nmore");
        assert_eq!(p.to_string(), "http_500: oops");
    }

    #[test]
    fn names_are_one_escaped_segment() {
        let client = Client::new("http://h:1/base/", None).unwrap();
        let url = client.endpoint(&["v1", "sprites", "a b/c"]);
        assert_eq!(url.as_str(), "http://h:1/base/v1/sprites/a%20b%2Fc");
    }
}
