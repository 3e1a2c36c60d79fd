//! Storage over `object_store`: `file://` (or a plain path), `s3://` (any
//! S3-compatible store) and `memory://` (tests). The engine sees only a
//! flat key space of immutable objects.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, PutPayload};

use crate::{Error, Result};

/// What a listing says of one object.
#[derive(Clone, Debug)]
pub struct ObjectInfo {
    /// Key relative to the repository prefix.
    pub key: String,
    pub size: u64,
    /// The store's own time of the last write, Unix seconds.
    pub modified: i64,
}

/// How long one request to an S3 store may take, from connecting to the
/// last byte of the answer (`?timeout=` in the URL); then it is cut and
/// sent again. object_store's 30 s cuts a backup's uploads on links under
/// ~17 Mbit/s (three ~20 MiB packs in flight share the link) so that they
/// never finish; 2 minutes carries them at ~4 Mbit/s, while a request a
/// dead link or a stuck store node holds is not waited for much longer.
const DEFAULT_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// A repository's store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    url: String,
    /// For `file://` stores: the directory, which must exist to open.
    local_dir: Option<std::path::PathBuf>,
    /// For S3 stores: what a request of our own needs (`writers.rs`).
    s3: Option<Arc<S3Params>>,
}

/// An S3 store's endpoint, bucket, prefix and credentials as the store
/// was opened with them.
pub(crate) struct S3Params {
    pub endpoint: String,
    pub bucket: String,
    /// The repository's prefix in the bucket, without slashes around it.
    pub prefix: String,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub ca: Option<String>,
    pub timeout: std::time::Duration,
}

fn memory_stores() -> &'static Mutex<HashMap<String, Arc<InMemory>>> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    STORES.get_or_init(Default::default)
}

/// Read a secret from a file, refusing files other users can read: its
/// group's members or every user (SECURITY.md, "Handling secrets").
pub fn read_secret_file(path: &std::path::Path) -> Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let mode = meta.permissions().mode();
    if mode & 0o044 != 0 {
        let who = if mode & 0o004 != 0 {
            "every user"
        } else {
            "its group"
        };
        return Err(Error::Invalid(format!(
            "{} is readable by {who} (mode {:o}); a secret file must be readable by its owner only (chmod 600 it)",
            path.display(),
            mode & 0o777
        )));
    }
    let s = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    Ok(s.trim_end_matches(['\n', '\r']).to_owned())
}

/// Writes `bytes` to `path` atomically (a temporary file beside it, then a
/// rename), readable by its owner only (0600, also where a temporary file
/// was left behind with another mode). `durable` syncs the bytes before
/// the rename.
pub fn write_private_atomic(path: &std::path::Path, bytes: &[u8], durable: bool) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::io(&tmp, e))?;
    // A temporary file left behind keeps its own mode on open.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    if durable {
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    }
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

impl Store {
    /// Open a store from a repository URL. `create` makes a missing local
    /// directory (for `init`).
    pub fn open(url: &str, create: bool) -> Result<Store> {
        Self::open_with(url, create, None)
    }

    /// As [`Store::open`], with S3 credentials given directly (they
    /// override the environment).
    pub fn open_with(
        url: &str,
        create: bool,
        s3_credentials: Option<(&str, &str)>,
    ) -> Result<Store> {
        let bad = |reason: &str| Error::BadUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(name) = url.strip_prefix("memory://") {
            let mem = memory_stores()
                .lock()
                .expect("memory store registry")
                .entry(name.to_owned())
                .or_default()
                .clone();
            return Ok(Store {
                inner: mem,
                url: url.to_owned(),
                local_dir: None,
                s3: None,
            });
        }
        if url.starts_with("s3://") {
            return Self::open_s3(url, s3_credentials);
        }
        let path = match url.strip_prefix("file://") {
            Some(p) => std::path::PathBuf::from(p),
            None if url.contains("://") => {
                return Err(bad(
                    "unknown scheme; use file://PATH, s3://BUCKET/PREFIX or memory://NAME",
                ));
            }
            None => std::path::PathBuf::from(url),
        };
        if path.as_os_str().is_empty() {
            return Err(bad("empty path"));
        }
        let path = if path.is_absolute() {
            path
        } else {
            std::env::current_dir()
                .map_err(|e| Error::io(".", e))?
                .join(path)
        };
        if create {
            std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        } else if !path.is_dir() {
            return Err(Error::NotARepository {
                url: url.to_owned(),
            });
        }
        let fs = LocalFileSystem::new_with_prefix(&path).map_err(|e| Error::Store {
            key: url.to_owned(),
            source: e,
        })?;
        Ok(Store {
            inner: Arc::new(fs),
            url: url.to_owned(),
            local_dir: Some(path),
            s3: None,
        })
    }

    fn open_s3(url: &str, credentials: Option<(&str, &str)>) -> Result<Store> {
        let bad = |reason: String| Error::BadUrl {
            url: url.to_owned(),
            reason,
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        let bucket = parsed
            .host_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| bad("no bucket name".into()))?;
        let prefix = parsed.path().trim_matches('/').to_owned();
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_virtual_hosted_style_request(false);
        let mut timeout = DEFAULT_REQUEST_TIMEOUT;
        let mut plain_http: Option<String> = None;
        let mut insecure_http = false;
        let mut ca: Option<String> = None;
        for (k, v) in parsed.query_pairs() {
            match &*k {
                "endpoint" => {
                    if v.starts_with("http://") {
                        plain_http = Some(v.to_string());
                    }
                    b = b
                        .with_allow_http(v.starts_with("http://"))
                        .with_endpoint(v.to_string());
                }
                "insecure_http" => insecure_http = v == "true",
                // No SHA-256 of each body in its signature: for a sender
                // that checked the bytes itself (the gateway, upstream).
                "unsigned_payload" => b = b.with_unsigned_payload(v == "true"),
                "ca" => ca = Some(v.to_string()),
                "region" => b = b.with_region(v.to_string()),
                "path_style" => b = b.with_virtual_hosted_style_request(v == "false"),
                "timeout" => {
                    timeout = humantime::parse_duration(&v)
                        .ok()
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| {
                            bad(format!("timeout `{v}` is no duration (e.g. 5m, 90s)"))
                        })?;
                }
                other => {
                    return Err(bad(format!(
                        "unknown parameter `{other}` (known: endpoint, region, path_style, timeout, insecure_http, ca, unsigned_payload)"
                    )));
                }
            }
        }
        // Plain HTTP only on loopback, unless the URL says so: off it, the
        // store's requests (signed, but in clear: object names, sizes,
        // times) cross the network readable by anyone on the path.
        if let Some(endpoint) = &plain_http {
            let host = url::Url::parse(endpoint)
                .ok()
                .and_then(|u| u.host().map(|h| h.to_owned()));
            let loopback = match &host {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if !loopback && !insecure_http {
                return Err(bad(format!(
                    "plain http:// to {endpoint}, which is not loopback: the store's requests would cross the network in clear; use https://, or add `insecure_http=true` to the URL to allow it"
                )));
            }
            if !loopback {
                tracing::warn!(%endpoint, "plain HTTP to a store off loopback (insecure_http=true)");
            }
        }
        // Only the timeout: the other client options (allow_http, and what
        // the AWS_* environment set) stay.
        b = b.with_config(
            AmazonS3ConfigKey::Client(object_store::ClientConfigKey::Timeout),
            format!("{}ms", timeout.as_millis()),
        );
        // A private CA (e.g. the DKIS CA of an append-only gateway): trusted
        // beside the system's roots.
        if let Some(ca) = &ca {
            let pem = std::fs::read(ca).map_err(|e| bad(format!("ca file {ca}: {e}")))?;
            let certs = object_store::Certificate::from_pem_bundle(&pem)
                .map_err(|e| bad(format!("ca file {ca}: {e}")))?;
            if certs.is_empty() {
                return Err(bad(format!("ca file {ca} holds no PEM certificate")));
            }
            let mut opts = object_store::ClientOptions::new()
                .with_allow_http(plain_http.is_some())
                .with_timeout(timeout);
            for c in certs {
                opts = opts.with_root_certificate(c);
            }
            b = b.with_client_options(opts);
        }
        if let Ok(f) = std::env::var("PULIH_S3_ACCESS_KEY_ID_FILE") {
            b = b.with_access_key_id(read_secret_file(f.as_ref())?);
        }
        if let Ok(f) = std::env::var("PULIH_S3_SECRET_ACCESS_KEY_FILE") {
            b = b.with_secret_access_key(read_secret_file(f.as_ref())?);
        }
        if let Some((id, secret)) = credentials {
            b = b.with_access_key_id(id).with_secret_access_key(secret);
        }
        let conf = |k: AmazonS3ConfigKey| b.get_config_value(&k);
        // object_store's defaults where the URL and environment say nothing.
        let region = conf(AmazonS3ConfigKey::Region).unwrap_or_else(|| "us-east-1".into());
        let params = S3Params {
            endpoint: conf(AmazonS3ConfigKey::Endpoint)
                .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com")),
            bucket: bucket.to_owned(),
            prefix: prefix.clone(),
            region,
            access_key_id: conf(AmazonS3ConfigKey::AccessKeyId),
            secret_access_key: conf(AmazonS3ConfigKey::SecretAccessKey),
            ca,
            timeout,
        };
        let s3 = b.build().map_err(|e| bad(e.to_string()))?;
        let inner: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(PrefixStore::new(s3, prefix.as_str()))
        };
        Ok(Store {
            inner,
            url: url.to_owned(),
            local_dir: None,
            s3: Some(Arc::new(params)),
        })
    }

    pub(crate) fn s3_params(&self) -> Option<&S3Params> {
        self.s3.as_deref()
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The directory of a `file://` store.
    pub fn local_dir(&self) -> Option<&std::path::Path> {
        self.local_dir.as_deref()
    }

    fn err(key: &str, e: object_store::Error) -> Error {
        match e {
            object_store::Error::NotFound { .. } => Error::Missing(key.to_owned()),
            e => Error::Store {
                key: key.to_owned(),
                source: e,
            },
        }
    }

    pub async fn get(&self, key: &str) -> Result<Bytes> {
        let r = self
            .inner
            .get(&ObjPath::from(key))
            .await
            .map_err(|e| Self::err(key, e))?;
        r.bytes().await.map_err(|e| Self::err(key, e))
    }

    pub async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        self.inner
            .get_range(&ObjPath::from(key), range)
            .await
            .map_err(|e| Self::err(key, e))
    }

    /// The bytes of `range`, as they arrive. The answer may end early
    /// (an object shorter than the range): the caller checks the length.
    pub async fn get_range_stream(
        &self,
        key: &str,
        range: Range<u64>,
    ) -> Result<futures::stream::BoxStream<'static, Result<Bytes>>> {
        let opts = object_store::GetOptions {
            range: Some(range.into()),
            ..Default::default()
        };
        let r = self
            .inner
            .get_opts(&ObjPath::from(key), opts)
            .await
            .map_err(|e| Self::err(key, e))?;
        let key = key.to_owned();
        Ok(Box::pin(
            r.into_stream().map_err(move |e| Self::err(&key, e)),
        ))
    }

    pub async fn exists(&self, key: &str) -> Result<bool> {
        match self.inner.head(&ObjPath::from(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(Self::err(key, e)),
        }
    }

    /// An object's size and the store's own time of it; None when absent.
    pub async fn info(&self, key: &str) -> Result<Option<ObjectInfo>> {
        match self.inner.head(&ObjPath::from(key)).await {
            Ok(m) => Ok(Some(ObjectInfo {
                key: key.to_string(),
                size: m.size,
                modified: m.last_modified.timestamp(),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Self::err(key, e)),
        }
    }

    pub async fn size(&self, key: &str) -> Result<u64> {
        Ok(self
            .inner
            .head(&ObjPath::from(key))
            .await
            .map_err(|e| Self::err(key, e))?
            .size)
    }

    /// Writes an object. object_store sends a plain S3 PUT again when it
    /// timed out or the connection broke (it is idempotent), as it retries
    /// GETs: every write of the engine is (an object's bytes are fixed by
    /// its key, or its key is new). On a `file://` store the write is
    /// durable when this returns (see [`sync_local`]), as an S3 store's
    /// answer to a PUT is.
    pub async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        // A local store writes the payload's pieces one `write` each: in
        // pieces of `LOCAL_WRITE` (no copy; see there).
        let payload = if self.local_dir.is_some() {
            (0..data.len())
                .step_by(LOCAL_WRITE)
                .map(|at| data.slice(at..data.len().min(at + LOCAL_WRITE)))
                .collect()
        } else {
            PutPayload::from_bytes(data)
        };
        self.inner
            .put(&ObjPath::from(key), payload)
            .await
            .map_err(|e| Self::err(key, e))?;
        if let Some(root) = &self.local_dir {
            let (root, key) = (root.clone(), key.to_owned());
            tokio::task::spawn_blocking(move || sync_local(&root, &key))
                .await
                .map_err(|e| Error::Task(format!("syncing a write to disk: {e}")))??;
        }
        Ok(())
    }

    pub async fn delete(&self, key: &str) -> Result<()> {
        match self.inner.delete(&ObjPath::from(key)).await {
            Ok(()) => Ok(()),
            Err(object_store::Error::PermissionDenied { source, .. }) => {
                Err(Error::DeleteRefused {
                    key: key.to_owned(),
                    reason: source.to_string(),
                })
            }
            Err(e) => Err(Self::err(key, e)),
        }
    }

    /// Deletes an object, or says it was refused (an append-only gateway
    /// keeps everything younger than its retention floor): false then.
    pub async fn delete_if_allowed(&self, key: &str) -> Result<bool> {
        match self.delete(key).await {
            Ok(()) => Ok(true),
            Err(Error::DeleteRefused { key, reason }) => {
                tracing::info!(%key, %reason, "the store keeps an object");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// All objects under `prefix` (e.g. `"data/"`).
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let p = ObjPath::from(prefix.trim_end_matches('/'));
        let metas: Vec<object_store::ObjectMeta> = self
            .inner
            .list(Some(&p))
            .try_collect()
            .await
            .map_err(|e| Self::err(prefix, e))?;
        Ok(metas
            .into_iter()
            .map(|m| ObjectInfo {
                key: m.location.to_string(),
                size: m.size,
                modified: m.last_modified.timestamp(),
            })
            .collect())
    }
}

/// The largest single `write` to a `file://` store. One `write` of 2 MiB
/// or more makes the kernel fill the page cache with 2 MiB folios, taken
/// from whole free 2 MiB blocks; on a VM that hands free memory back to
/// its host (free page reporting, as on this project's Firecracker
/// machines) each such block is faulted in again by the host. Measured
/// here (650 MB into a new file, `dd`, system time): 1.6-2.0 s in 2 MiB or
/// 64 MiB writes, 0.13 s in 1 MiB or 512 KiB writes. Without a host to
/// hand memory back to, the size of the pieces should not matter (not
/// measured).
pub(crate) const LOCAL_WRITE: usize = 1 << 20;

/// Makes a write to a `file://` store durable: the file's bytes, then the
/// directory entries from its directory up to the store's root (a new
/// `data/ab/` is itself an entry of `data/`). object_store's local store
/// writes a temporary file and renames it, without either; a power cut
/// could then keep an index or snapshot written after its packs and lose
/// the packs. Packs, index files and snapshots are written in that order
/// (FORMAT.md §8), so each one synced before the next is written keeps a
/// crash from ever leaving a reference to data that is not on disk.
fn sync_local(root: &std::path::Path, key: &str) -> Result<()> {
    let sync = |p: &std::path::Path| {
        std::fs::File::open(p)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(p, e))
    };
    let path = root.join(key);
    sync(&path)?;
    let mut dir = path.parent();
    while let Some(d) = dir {
        sync(d)?;
        if d == root {
            break;
        }
        dir = d.parent();
    }
    Ok(())
}
