//! pulih-client: the one HTTP client of the controller API (`/api/v1`).
//!
//! [`Client`] sends a request with a bearer token and maps every answer to
//! a value or a [`ClientError`] that says whether trying again may help
//! ([`ClientError::is_retryable`]). Paths come from
//! [`pulih_model::routes`]; [`AgentClient`] adds the calls an agent or a
//! DRC executor makes under its own name. The CLI's ops commands and both
//! agent roles use this crate; nothing else talks to the controller.

use std::path::Path;
use std::time::Duration;

use pulih_model::api::*;
use pulih_model::manifest::Diagnostic;
use pulih_model::routes;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What a request to the controller came to, when it did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The controller could not be reached, or its answer could not be
    /// read: try again later.
    #[error("cannot reach the controller at {url}: {message}")]
    Unreachable { url: String, message: String },
    /// The controller failed (HTTP 5xx): try again later.
    #[error("the controller failed ({status} {code}): {message}")]
    Failed {
        status: u16,
        code: String,
        message: String,
    },
    /// The controller refused the request (HTTP 4xx): retrying the same
    /// will not help.
    #[error("the controller refused the request ({status} {code}): {message}")]
    Rejected {
        status: u16,
        code: String,
        message: String,
        /// Manifest problems, when the refusal was a manifest validation.
        diagnostics: Vec<Diagnostic>,
    },
    /// The client could not be built (a bad CA file, say).
    #[error("{0}")]
    Setup(String),
}

impl ClientError {
    /// Whether the same request may succeed later (unreachable or 5xx).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ClientError::Unreachable { .. } | ClientError::Failed { .. }
        )
    }

    /// The stable error code of a controller's answer (docs/API.md).
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Failed { code, .. } | ClientError::Rejected { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// How a [`Client`] connects.
#[derive(Debug, Clone, Default)]
pub struct Options<'a> {
    /// Bounds a whole request (default 60 s).
    pub timeout: Option<Duration>,
    /// Bounds connecting (default: the whole request's bound).
    pub connect_timeout: Option<Duration>,
    /// The local address to send from.
    pub bind: Option<std::net::IpAddr>,
    /// PEM certificates to trust besides the system's (DKIS's own CA).
    pub ca_file: Option<&'a Path>,
    /// Allow plain `http://` to a controller that is not on loopback
    /// (tokens then cross the network in clear); logged when used.
    pub insecure_http: bool,
}

/// Plain HTTP carries bearer tokens and enrolment secrets in clear: it is
/// refused to anything but a loopback host unless `insecure` says so (and
/// then logged).
pub fn check_plain_http(url: &str, insecure: bool) -> Result<(), ClientError> {
    let u = reqwest::Url::parse(url)
        .map_err(|e| ClientError::Setup(format!("controller URL `{url}`: {e}")))?;
    if u.scheme() != "http" {
        return Ok(());
    }
    let host = u.host_str().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare == "localhost"
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        return Ok(());
    }
    if !insecure {
        return Err(ClientError::Setup(format!(
            "refusing plain HTTP to {url}: tokens would cross the network in clear; use https:// (the controller's tls_cert_file), or allow it explicitly (--insecure-http, or insecure_http = true in the agent's config)"
        )));
    }
    tracing::warn!(%url, "plain HTTP to a controller that is not on loopback: tokens cross the network in clear (insecure_http)");
    Ok(())
}

/// A client of one controller, with one bearer token (or none yet).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// The controller's URL with [`routes::PREFIX`].
    base: String,
    token: Option<String>,
}

/// Trust the certificates in a PEM file besides the system's.
fn trust_ca(
    b: reqwest::ClientBuilder,
    ca_file: Option<&Path>,
) -> Result<reqwest::ClientBuilder, ClientError> {
    let Some(path) = ca_file else { return Ok(b) };
    let pem = std::fs::read(path)
        .map_err(|e| ClientError::Setup(format!("cannot read CA file {}: {e}", path.display())))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        ClientError::Setup(format!(
            "CA file {} is not PEM certificates: {e}",
            path.display()
        ))
    })?;
    if certs.is_empty() {
        return Err(ClientError::Setup(format!(
            "CA file {} holds no certificate",
            path.display()
        )));
    }
    Ok(certs.into_iter().fold(b, |b, c| b.add_root_certificate(c)))
}

impl Client {
    /// A client of the controller at `url` (`http(s)://host:port`).
    pub fn new(url: &str, token: Option<&str>, o: Options<'_>) -> Result<Client, ClientError> {
        check_plain_http(url, o.insecure_http)?;
        let mut b =
            reqwest::Client::builder().timeout(o.timeout.unwrap_or(Duration::from_secs(60)));
        if let Some(t) = o.connect_timeout {
            b = b.connect_timeout(t);
        }
        if let Some(ip) = o.bind {
            b = b.local_address(ip);
        }
        let http = trust_ca(b, o.ca_file)?
            .build()
            .map_err(|e| ClientError::Setup(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client {
            http,
            base: format!("{}{}", url.trim_end_matches('/'), routes::PREFIX),
            token: token.map(str::to_string),
        })
    }

    /// From now on, authenticate with `token`.
    pub fn set_token(&mut self, token: String) {
        self.token = Some(token);
    }

    /// The controller's API base URL (with the `/api/v1` prefix).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET` a path made with [`routes::path`] (a query string may follow).
    pub async fn get<R: DeserializeOwned>(&self, path: &str) -> Result<R, ClientError> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    /// `POST` a JSON body to a path made with [`routes::path`].
    pub async fn post<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, ClientError> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    async fn send<R: DeserializeOwned>(
        &self,
        mut req: reqwest::RequestBuilder,
    ) -> Result<R, ClientError> {
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let unreachable = |message: String| ClientError::Unreachable {
            url: self.base.clone(),
            message,
        };
        let resp = req.send().await.map_err(|e| unreachable(chain(&e)))?;
        let status = resp.status();
        if status.is_success() {
            return resp
                .json()
                .await
                .map_err(|e| unreachable(format!("unreadable response: {}", chain(&e))));
        }
        let body: Option<ErrorBody> = resp.json().await.ok();
        let (code, message, diagnostics) = match body {
            Some(b) => (b.error.code, b.error.message, b.error.diagnostics),
            None => (
                status.as_u16().to_string(),
                format!("HTTP {status}"),
                Vec::new(),
            ),
        };
        // A 5xx or a rate limit (429): passing, worth another try.
        if status.is_server_error() || status.as_u16() == 429 {
            Err(ClientError::Failed {
                status: status.as_u16(),
                code,
                message,
            })
        } else {
            Err(ClientError::Rejected {
                status: status.as_u16(),
                code,
                message,
                diagnostics,
            })
        }
    }
}

/// An error with its causes, `outer: inner: innermost` (a TLS refusal names
/// the certificate only in a cause).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

/// The calls an agent makes under its own name: a PD server's agent
/// (`/agents/{server}/…`) or a DRC executor (`/drc/{target}/…`).
pub struct AgentClient {
    client: Client,
    server: String,
}

impl AgentClient {
    /// An agent's client: requests time out after 30 s, connecting after 5 s.
    pub fn new(
        url: &str,
        server: &str,
        bind: Option<std::net::IpAddr>,
        ca_file: Option<&Path>,
        insecure_http: bool,
    ) -> Result<AgentClient, ClientError> {
        let client = Client::new(
            url,
            None,
            Options {
                timeout: Some(Duration::from_secs(30)),
                connect_timeout: Some(Duration::from_secs(5)),
                bind,
                ca_file,
                insecure_http,
            },
        )?;
        Ok(AgentClient {
            client,
            server: server.to_string(),
        })
    }

    /// Authenticate with the agent's own credential from now on.
    pub fn set_credential(&mut self, c: String) {
        self.client.set_token(c);
    }

    pub async fn enroll(&self, token: &str, facts: Facts) -> Result<EnrollResponse, ClientError> {
        let req = EnrollRequest {
            server: self.server.clone(),
            token: token.to_string(),
            facts,
        };
        self.client
            .post(&routes::path(routes::AGENT_ENROLL, &[]), &req)
            .await
    }

    pub async fn heartbeat(&self, facts: Facts) -> Result<HeartbeatResponse, ClientError> {
        self.client
            .post(
                &routes::path(routes::AGENT_HEARTBEAT, &[&self.server]),
                &HeartbeatRequest { facts },
            )
            .await
    }

    pub async fn start_run(
        &self,
        run_key: &str,
        req: &RunStartRequest,
    ) -> Result<RunStartResponse, ClientError> {
        self.client
            .post(
                &routes::path(routes::AGENT_RUN_START, &[&self.server, run_key]),
                req,
            )
            .await
    }

    pub async fn result(&self, run_key: &str, res: &RunResult) -> Result<(), ClientError> {
        let _: serde_json::Value = self
            .client
            .post(
                &routes::path(routes::AGENT_RUN_RESULT, &[&self.server, run_key]),
                res,
            )
            .await?;
        Ok(())
    }

    /// A DRC executor's heartbeat: its queued drills.
    pub async fn drc_heartbeat(
        &self,
        target: &str,
        facts: Facts,
    ) -> Result<DrcHeartbeatResponse, ClientError> {
        self.client
            .post(
                &routes::path(routes::DRC_HEARTBEAT, &[target]),
                &DrcHeartbeatRequest { facts },
            )
            .await
    }

    pub async fn drill_start(
        &self,
        target: &str,
        id: &str,
    ) -> Result<DrillStartResponse, ClientError> {
        self.client
            .post(
                &routes::path(routes::DRC_DRILL_START, &[target, id]),
                &serde_json::json!({}),
            )
            .await
    }

    pub async fn plan_teardown(
        &self,
        target: &str,
        run: &str,
        teardown: &pulih_model::drill::Teardown,
    ) -> Result<(), ClientError> {
        let _: serde_json::Value = self
            .client
            .post(
                &routes::path(routes::DRC_PLAN_TEARDOWN, &[target, run]),
                teardown,
            )
            .await?;
        Ok(())
    }

    pub async fn drill_report(
        &self,
        target: &str,
        report: &pulih_model::drill::DrillReport,
    ) -> Result<(), ClientError> {
        let _: serde_json::Value = self
            .client
            .post(
                &routes::path(routes::DRC_DRILL_REPORT, &[target, &report.id]),
                report,
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_controller_is_retryable_and_says_why() {
        // A port nothing listens on: bind one, then drop it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = Client::new(
            &format!("http://127.0.0.1:{port}/"),
            Some("t"),
            Options::default(),
        )
        .unwrap();
        assert_eq!(c.base(), format!("http://127.0.0.1:{port}/api/v1"));
        let e = c
            .get::<serde_json::Value>(&routes::path(routes::STATUS, &[]))
            .await
            .unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert_eq!(e.code(), None);
        let text = e.to_string();
        assert!(text.contains(&format!("127.0.0.1:{port}/api/v1")), "{text}");
        // The cause is named, not only "error sending request".
        assert!(text.matches(": ").count() >= 2, "{text}");
    }

    #[test]
    fn a_bad_ca_file_is_a_setup_error() {
        let dir = std::env::temp_dir().join(format!("pulih-client-test-{}", std::process::id()));
        std::fs::write(&dir, "not a certificate").unwrap();
        let e = match Client::new(
            "https://127.0.0.1:1",
            None,
            Options {
                ca_file: Some(&dir),
                ..Default::default()
            },
        ) {
            Err(e) => e,
            Ok(_) => panic!("a CA file without certificates was accepted"),
        };
        std::fs::remove_file(&dir).unwrap();
        assert!(matches!(e, ClientError::Setup(_)), "{e}");
        assert!(!e.is_retryable());
    }

    /// Hardening (issue 20): plain HTTP only on loopback unless asked.
    #[test]
    fn plain_http_off_loopback_is_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:7300",
            "http://localhost:7300",
            "http://[::1]:7300",
            "https://pulih.bontangkota.go.id",
            "https://10.0.0.5:8443",
        ] {
            check_plain_http(url, false).unwrap_or_else(|e| panic!("{url}: {e}"));
        }
        for url in [
            "http://10.0.0.5:8080",
            "http://pulih.bontangkota.go.id",
            "http://[fd00::1]:80",
        ] {
            let e = check_plain_http(url, false).unwrap_err().to_string();
            assert!(
                e.contains("refusing plain HTTP") && e.contains("--insecure-http"),
                "{url}: {e}"
            );
            check_plain_http(url, true).unwrap();
            let refused = Client::new(url, Some("t"), Options::default());
            assert!(matches!(refused, Err(ClientError::Setup(_))), "{url}");
        }
    }
}
