//! Running the gateway: load its config and keys, finish what a stop left
//! half done, serve HTTPS until told to stop, read the config again when
//! it changes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use anyhow::Context;
use s3s::service::S3ServiceBuilder;
use tokio_util::sync::CancellationToken;

use crate::access::{Access, Auth};
use crate::config::{GatewayConfig, RELOAD_EVERY};
use crate::creds::GatewayKey;
use crate::index::Index;
use crate::service::GatewayS3;
use crate::state::Gateway;
use crate::upstream::Upstreams;

fn maintenance_secret(config: &GatewayConfig) -> anyhow::Result<Option<String>> {
    config
        .maintenance
        .as_ref()
        .map(|m| pulih_core::storage::read_secret_file(&m.secret_file).map_err(Into::into))
        .transpose()
}

/// Builds the gateway's state from its config file.
pub fn open(config_path: &Path) -> anyhow::Result<Arc<Gateway>> {
    let config = GatewayConfig::load(config_path)?;
    let key = GatewayKey::load(&config.key_file)?;
    let secret = maintenance_secret(&config)?;
    let index = Index::open(&config.state_dir)?;
    let credentials = match (
        &config.upstream_access_key_id_file,
        &config.upstream_secret_access_key_file,
    ) {
        (Some(id), Some(secret)) => Some((
            pulih_core::storage::read_secret_file(id)?,
            pulih_core::storage::read_secret_file(secret)?,
        )),
        _ => None,
    };
    let upstreams = Upstreams::new(&config.upstream, credentials);
    // Refuse a bad upstream URL at start, not at the first request.
    upstreams.url("check")?;
    if config.upstream.starts_with("s3://") {
        pulih_core::storage::Store::open_with(&upstreams.url("check")?, false, None)?;
    }
    let buffered = tokio::sync::Semaphore::new(config.max_buffered_bytes.div_ceil(1024) as usize);
    let latest_receipt = std::sync::atomic::AtomicI64::new(index.latest_receipt()?);
    let floors = crate::floors::Floors::load(&config.state_dir)?;
    Ok(Arc::new(Gateway {
        latest_receipt,
        buffered,
        key,
        maintenance_secret: RwLock::new(secret),
        index,
        upstreams,
        puts: Default::default(),
        rate: RwLock::new(crate::state::rate_limiter(&config)),
        floors,
        config: RwLock::new(Arc::new(config)),
    }))
}

/// Rows a stop left pending (a write never acknowledged: its upstream
/// object, if any, is removed) or deleting (the delete is finished).
pub async fn recover(gw: &Gateway) -> anyhow::Result<()> {
    let rows = gw.index.unfinished()?;
    for r in rows {
        let store = gw
            .upstreams
            .get(&r.bucket)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if r.deleting {
            crate::service::finish_delete(gw, &r.bucket, &r.key)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        } else {
            match store.delete(&r.key).await {
                Ok(()) | Err(pulih_core::Error::Missing(_)) => {}
                Err(e) => return Err(e.into()),
            }
            gw.index.release(&r.bucket, &r.key, r.size)?;
        }
        tracing::info!(bucket = %r.bucket, key = %r.key, deleting = r.deleting, "finished an interrupted operation");
    }
    Ok(())
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Reads the config again whenever its file changes; a config that does
/// not load is logged and the last good one stays.
async fn reload(gw: Arc<Gateway>, path: PathBuf, stop: CancellationToken) {
    let mut seen = modified(&path);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(RELOAD_EVERY) => {}
        }
        let now = modified(&path);
        if now == seen {
            continue;
        }
        seen = now;
        match GatewayConfig::load(&path).and_then(|c| Ok((maintenance_secret(&c)?, c))) {
            Ok((secret, c)) => {
                let old = gw.config();
                if c.listen != old.listen
                    || c.state_dir != old.state_dir
                    || c.upstream != old.upstream
                    || c.key_file != old.key_file
                    || c.tls_cert_file != old.tls_cert_file
                    || c.tls_key_file != old.tls_key_file
                    || c.max_buffered_bytes != old.max_buffered_bytes
                {
                    tracing::warn!(
                        "listen, state_dir, upstream, key_file, the TLS files and max_buffered_bytes take effect at the next start"
                    );
                }
                *gw.maintenance_secret.write().expect("secret lock") = secret;
                if (c.rate_limit_per_second, c.rate_limit_burst)
                    != (old.rate_limit_per_second, old.rate_limit_burst)
                {
                    *gw.rate.write().expect("rate lock") = crate::state::rate_limiter(&c);
                }
                *gw.config.write().expect("config lock") = Arc::new(c);
                tracing::info!(config = %path.display(), "configuration read again");
            }
            Err(e) => {
                tracing::error!(error = %e, "the changed configuration does not load; keeping the last one");
            }
        }
    }
}

/// The S3 service over a gateway's state: authentication, then access,
/// then the handlers.
pub fn service(gw: &Arc<Gateway>) -> s3s::service::S3Service {
    let mut builder = S3ServiceBuilder::new(GatewayS3(gw.clone()));
    builder.set_auth(Auth(gw.clone()));
    builder.set_access(Access(gw.clone()));
    // POST form uploads are refused, but s3s reads a form before any
    // access check: give it no room (its default is 5 GiB per request).
    let mut config = s3s::config::S3Config::default();
    config.post_object_max_file_size = 0;
    config.form_max_field_size = 1024;
    config.form_max_fields_size = 4096;
    config.form_max_parts = 8;
    config.xml_max_body_size = 64 * 1024;
    builder.set_config(Arc::new(s3s::config::StaticConfigProvider::new(Arc::new(
        config,
    ))));
    builder.build()
}

/// Serves until `stop` is cancelled. `ready` gets the bound address.
pub async fn run(
    config_path: &Path,
    stop: CancellationToken,
    ready: impl FnOnce(std::net::SocketAddr, bool),
) -> anyhow::Result<()> {
    let gw = open(config_path)?;
    recover(&gw)
        .await
        .context("finishing interrupted operations")?;
    let config = gw.config();
    let service = service(&gw);

    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("listening on {}", config.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let tls = match (&config.tls_cert_file, &config.tls_key_file) {
        (Some(cert), Some(key)) => {
            let cert_pem = std::fs::read(cert).with_context(|| cert.display().to_string())?;
            let key_pem = pulih_core::storage::read_secret_file(key)?;
            let tls =
                axum_server::tls_rustls::RustlsConfig::from_pem(cert_pem, key_pem.into_bytes())
                    .await
                    .context("loading the TLS certificate and key")?;
            // HTTP/1.1 only (no `h2` offered): the engine's S3 client
            // speaks it, and a connection is one request at a time, so
            // the per-request limits bound what one client holds.
            let mut inner = (*tls.get_inner()).clone();
            inner.alpn_protocols = vec![b"http/1.1".to_vec()];
            tls.reload_from_config(std::sync::Arc::new(inner));
            Some(tls)
        }
        _ => None,
    };
    if tls.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(%addr, "serving plain HTTP off loopback (insecure_http = true)");
    }
    ready(addr, tls.is_some());
    tracing::info!(%addr, tls = tls.is_some(), floor_days = config.retention_floor_days, "gateway serving");

    tokio::spawn(reload(gw.clone(), config_path.to_owned(), stop.clone()));
    tokio::spawn(crate::feed::poll(gw.clone(), stop.clone()));
    let handle = axum_server::Handle::new();
    {
        let (handle, stop) = (handle.clone(), stop.clone());
        tokio::spawn(async move {
            stop.cancelled().await;
            handle.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
        });
    }
    let make = tower::make::Shared::new(service);
    match tls {
        Some(tls) => {
            let mut server = axum_server::from_tcp_rustls(listener, tls)?;
            http1_only(server.http_builder());
            server.handle(handle).serve(make).await?
        }
        None => {
            let mut server = axum_server::from_tcp(listener)?;
            http1_only(server.http_builder());
            server.handle(handle).serve(make).await?
        }
    }
    Ok(())
}

/// Refuses HTTP/2 (also its cleartext prior-knowledge form): one request
/// per connection at a time.
fn http1_only(b: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>) {
    *b = b.clone().http1_only();
}
