//! The pull loop both roles run (DESIGN.md §1: agents pull, the controller
//! never dials them): enrol once, heartbeat with the host's facts on an
//! interval, deliver what waits in the outbox, hand what the heartbeat
//! returned to the role, sleep until the next heartbeat or until the role
//! wants to run again, and stop when cancelled.
//!
//! What differs is a [`Role`]: a PD server's agent ([`crate::pd`]: jobs,
//! cached assignment, cron schedule, results in its outbox) or the DRC
//! executor ([`crate::drc`]: drills and plan teardowns, drill reports in
//! its outbox).

pub(crate) mod enrol;
pub(crate) mod facts;
pub(crate) mod outbox;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use pulih_client::{AgentClient as Client, ClientError};
use pulih_model::api::Facts;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use enrol::Enrolment;
use facts::Host;
use outbox::{Delivery, Outbox};

/// What one kind of agent does with the pull loop.
pub(crate) trait Role {
    /// What a heartbeat hands out (jobs; drills and plan teardowns).
    type Work;
    /// What its outbox holds, and how that is delivered.
    type Delivery: Delivery;

    /// Once, before the first heartbeat.
    async fn start(&mut self) -> Result<()>;

    /// One heartbeat, carrying the host's facts.
    async fn heartbeat(&self, client: &Client, facts: Facts) -> Result<Self::Work, ClientError>;

    /// Works on what a heartbeat just handed out (None: no heartbeat was
    /// due, or it failed). Returns when to be called again before the next
    /// heartbeat (None: at the next heartbeat). An error stops the agent.
    async fn work(
        &mut self,
        link: &Link<Self::Delivery>,
        work: Option<Self::Work>,
        cancel: &CancellationToken,
    ) -> Result<Option<Instant>>;
}

/// The agent's line to the controller: its client (with its credential
/// once enrolled) and its outbox.
pub(crate) struct Link<D> {
    pub client: Client,
    pub outbox: Outbox<D>,
}

impl<D: Delivery> Link<D> {
    /// Keeps `item` in the outbox as `file_name` and tries to deliver
    /// everything that waits there.
    pub async fn send(&self, file_name: &str, item: &D::Item) -> Result<()> {
        self.outbox.put(file_name, item)?;
        self.outbox.flush(&self.client).await
    }
}

/// Who an agent is to the controller, and how it reaches it.
pub(crate) struct Settings<'a> {
    pub controller: &'a str,
    /// The name it enrols under: a server's, or `drc:<target>`.
    pub name: &'a str,
    pub bind_address: Option<IpAddr>,
    pub ca_file: Option<&'a Path>,
    /// Plain HTTP to a controller off loopback (`insecure_http`).
    pub insecure_http: bool,
    /// Credential and outbox.
    pub state_dir: &'a Path,
    pub enroll_token_file: Option<PathBuf>,
    /// Why it cannot start when it has neither credential nor token.
    pub no_token: String,
    pub heartbeat_interval: Duration,
    pub hostname: String,
    /// Whose free space the facts report.
    pub disk_dir: PathBuf,
}

/// A role on the pull loop.
pub(crate) struct Pull<R: Role> {
    role: R,
    link: Link<R::Delivery>,
    enrolment: Enrolment,
    host: Host,
    interval: Duration,
}

impl<R: Role> Pull<R> {
    pub fn new(s: Settings<'_>, delivery: R::Delivery, role: R) -> Result<Pull<R>> {
        let outbox = Outbox::create(s.state_dir, delivery)?;
        let mut client = Client::new(
            s.controller,
            s.name,
            s.bind_address,
            s.ca_file,
            s.insecure_http,
        )?;
        let enrolment = Enrolment::load(s.state_dir, s.enroll_token_file, s.no_token, &mut client)?;
        Ok(Pull {
            role,
            link: Link { client, outbox },
            enrolment,
            host: Host {
                hostname: s.hostname,
                controller: s.controller.to_string(),
                bind: s.bind_address,
                disk_dir: s.disk_dir,
            },
            interval: s.heartbeat_interval,
        })
    }

    /// The agent's main loop, until `cancel`.
    pub async fn run(mut self, cancel: CancellationToken) -> Result<()> {
        self.role.start().await?;
        let mut next_heartbeat = Instant::now();
        loop {
            if cancel.is_cancelled() {
                return Ok(());
            }
            let mut work = None;
            if Instant::now() >= next_heartbeat {
                next_heartbeat = Instant::now() + self.interval;
                work = self.heartbeat().await?;
            }
            let wake = match self.role.work(&self.link, work, &cancel).await? {
                Some(at) => at.min(next_heartbeat),
                None => next_heartbeat,
            };
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// Enrols if need be, heartbeats, and delivers the outbox once the
    /// controller answered. None: not enrolled yet, or no answer.
    async fn heartbeat(&mut self) -> Result<Option<R::Work>> {
        if !self
            .enrolment
            .ensure(&mut self.link.client, &self.host)
            .await?
        {
            return Ok(None);
        }
        match self
            .role
            .heartbeat(&self.link.client, self.host.facts().await)
            .await
        {
            Ok(work) => {
                if let Err(e) = self.link.outbox.flush(&self.link.client).await {
                    tracing::error!(error = %format!("{e:#}"), "cannot deliver what waits in the outbox");
                }
                Ok(Some(work))
            }
            Err(e) if e.is_retryable() => {
                tracing::warn!(error = %e, "heartbeat failed; will retry");
                Ok(None)
            }
            Err(e) => {
                tracing::error!(error = %e, "heartbeat refused; will retry");
                Ok(None)
            }
        }
    }
}
