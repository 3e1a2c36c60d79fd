//! The agent's HTTP client for the controller API.

use pulih_core::api::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The controller could not be reached (or answered 5xx): try later.
    #[error("controller unreachable: {0}")]
    Unreachable(String),
    /// The controller refused the request: retrying the same will not help.
    #[error("controller refused the request ({status} {code}): {message}")]
    Rejected {
        status: u16,
        code: String,
        message: String,
    },
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    server: String,
    credential: Option<String>,
}

/// Trust the certificates in a PEM file (the controller's own CA) besides
/// the system's.
pub fn trust_ca(
    b: reqwest::ClientBuilder,
    ca_file: Option<&std::path::Path>,
) -> anyhow::Result<reqwest::ClientBuilder> {
    let Some(path) = ca_file else { return Ok(b) };
    let pem = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("cannot read CA file {}: {e}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| anyhow::anyhow!("CA file {} is not PEM certificates: {e}", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "CA file {} holds no certificate",
        path.display()
    );
    Ok(certs.into_iter().fold(b, |b, c| b.add_root_certificate(c)))
}

impl Client {
    pub fn new(
        base: &str,
        server: &str,
        bind: Option<std::net::IpAddr>,
        ca_file: Option<&std::path::Path>,
    ) -> anyhow::Result<Client> {
        let mut b = trust_ca(
            reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .connect_timeout(std::time::Duration::from_secs(5)),
            ca_file,
        )?;
        if let Some(ip) = bind {
            b = b.local_address(ip);
        }
        Ok(Client {
            http: b.build()?,
            base: format!("{}/api/v1", base.trim_end_matches('/')),
            server: server.to_string(),
            credential: None,
        })
    }

    pub fn set_credential(&mut self, c: String) {
        self.credential = Some(c);
    }

    async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, ClientError> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(c) = &self.credential {
            req = req.bearer_auth(c);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(ClientError::Unreachable(format!("HTTP {status}")));
        }
        if !status.is_success() {
            let body: Option<ErrorBody> = resp.json().await.ok();
            let (code, message) = body.map_or(("unknown".into(), String::new()), |b| {
                (b.error.code, b.error.message)
            });
            return Err(ClientError::Rejected {
                status: status.as_u16(),
                code,
                message,
            });
        }
        resp.json()
            .await
            .map_err(|e| ClientError::Unreachable(format!("bad response: {e}")))
    }

    pub async fn enroll(&self, token: &str, facts: Facts) -> Result<EnrollResponse, ClientError> {
        let req = EnrollRequest {
            server: self.server.clone(),
            token: token.to_string(),
            facts,
        };
        self.post("/agents/enroll", &req).await
    }

    pub async fn heartbeat(&self, facts: Facts) -> Result<HeartbeatResponse, ClientError> {
        self.post(
            &format!("/agents/{}/heartbeat", self.server),
            &HeartbeatRequest { facts },
        )
        .await
    }

    pub async fn start_run(
        &self,
        run_key: &str,
        req: &RunStartRequest,
    ) -> Result<RunStartResponse, ClientError> {
        self.post(
            &format!("/agents/{}/runs/{run_key}/start", self.server),
            req,
        )
        .await
    }

    /// A DRC executor's heartbeat: its queued drills.
    pub async fn drc_heartbeat(
        &self,
        target: &str,
        facts: Facts,
    ) -> Result<DrcHeartbeatResponse, ClientError> {
        self.post(
            &format!("/drc/{target}/heartbeat"),
            &DrcHeartbeatRequest { facts },
        )
        .await
    }

    pub async fn drill_start(
        &self,
        target: &str,
        id: &str,
    ) -> Result<DrillStartResponse, ClientError> {
        self.post(
            &format!("/drc/{target}/drills/{id}/start"),
            &serde_json::json!({}),
        )
        .await
    }

    pub async fn plan_teardown(
        &self,
        target: &str,
        run: &str,
        teardown: &pulih_core::drill::Teardown,
    ) -> Result<(), ClientError> {
        let _: serde_json::Value = self
            .post(&format!("/drc/{target}/plan-runs/{run}/teardown"), teardown)
            .await?;
        Ok(())
    }

    pub async fn drill_report(
        &self,
        target: &str,
        report: &pulih_core::drill::DrillReport,
    ) -> Result<(), ClientError> {
        let _: serde_json::Value = self
            .post(
                &format!("/drc/{target}/drills/{}/report", report.id),
                report,
            )
            .await?;
        Ok(())
    }

    pub async fn result(&self, run_key: &str, res: &RunResult) -> Result<(), ClientError> {
        let _: serde_json::Value = self
            .post(
                &format!("/agents/{}/runs/{run_key}/result", self.server),
                res,
            )
            .await?;
        Ok(())
    }
}
