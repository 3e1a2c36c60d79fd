//! The S3 operations the gateway serves, over the [`Index`] and the
//! upstream store. Access was checked before a handler runs
//! ([`crate::access`]); a handler enforces what needs the index: create
//! only, the quota, the retention floor.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use s3s::dto::{
    DeleteObjectInput, DeleteObjectOutput, ETag, ETagCondition, GetObjectInput, GetObjectOutput,
    HeadBucketInput, HeadBucketOutput, HeadObjectInput, HeadObjectOutput, ListObjectsV2Input,
    ListObjectsV2Output, Object, Owner, PutObjectInput, PutObjectOutput, StreamingBlob, Timestamp,
};
use s3s::{S3, S3Error, S3Request, S3Response, S3Result, s3_error};
use sha2::{Digest, Sha256};

use crate::creds::Principal;
use crate::index::{Reserve, Row};
use crate::keys::{is_scratch, maintenance_record};
use crate::state::Gateway;

/// An object key of the bucket as (agency, key within it); access checked
/// that it has both.
fn locate(key: &str) -> S3Result<(String, String)> {
    crate::keys::split_key(key)
        .map(|(a, k)| (a.to_owned(), k.to_owned()))
        .ok_or_else(|| s3_error!(AccessDenied, "object keys here are AGENCY/KEY"))
}

/// How far the clock may stand behind the latest receipt before deletes
/// stop: more is a clock that ran backwards.
const CLOCK_SLACK_MS: i64 = 5 * 60 * 1000;

/// The most keys one listing page carries.
const MAX_KEYS: usize = 1000;

pub struct GatewayS3(pub Arc<Gateway>);

/// A reserved key, released when dropped uncommitted.
struct Reservation {
    index: crate::index::Index,
    bucket: String,
    key: String,
    len: u64,
    committed: bool,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.committed
            && let Err(e) = self.index.release(&self.bucket, &self.key, self.len)
        {
            tracing::error!(bucket = %self.bucket, key = %self.key, error = %e, "releasing a reservation");
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn timestamp(ms: i64) -> Timestamp {
    Timestamp::from(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
}

fn etag(row: &Row) -> ETag {
    ETag::Strong(row.etag.clone())
}

fn internal(what: &str, e: impl std::fmt::Display) -> S3Error {
    tracing::error!(error = %e, "{what}");
    // 503: object_store sends the request again, which is what a passing
    // failure of the index or the upstream store wants.
    s3_error!(SlowDown, "{what} failed; try again")
}

fn principal<T>(req: &S3Request<T>) -> S3Result<Principal> {
    req.extensions
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| s3_error!(AccessDenied))
}

fn writer<T>(req: &S3Request<T>) -> String {
    req.credentials
        .as_ref()
        .map(|c| c.access_key.clone())
        .unwrap_or_default()
}

/// Reads a request body to its end (at most `len` bytes) and gives its
/// SHA-256. A signed payload's hash (`x-amz-content-sha256`, `signed`)
/// was checked by s3s against the bytes as they came (the last read fails
/// on a mismatch), so it is not computed a second time.
async fn read_body(
    body: Option<StreamingBlob>,
    len: u64,
    signed: Option<String>,
    keep: bool,
    deadline: Option<std::time::Duration>,
) -> S3Result<(Bytes, String)> {
    match deadline {
        None => read_body_now(body, len, signed, keep).await,
        Some(d) => tokio::time::timeout(d, read_body_now(body, len, signed, keep))
            .await
            .unwrap_or_else(|_| {
                Err(s3_error!(
                    RequestTimeout,
                    "the body of {len} bytes did not arrive within {} s (min_upload_bytes_per_second)",
                    d.as_secs()
                ))
            }),
    }
}

async fn read_body_now(
    body: Option<StreamingBlob>,
    len: u64,
    signed: Option<String>,
    keep: bool,
) -> S3Result<(Bytes, String)> {
    let mut buf = BytesMut::with_capacity(if keep { len as usize } else { 0 });
    let mut seen = 0u64;
    let mut hash = signed.is_none().then(Sha256::new);
    if let Some(mut body) = body {
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|e| s3_error!(IncompleteBody, "the request body broke off: {e}"))?;
            if seen + chunk.len() as u64 > len {
                return Err(s3_error!(
                    IncompleteBody,
                    "the body is longer than its Content-Length"
                ));
            }
            if let Some(h) = &mut hash {
                h.update(&chunk);
            }
            seen += chunk.len() as u64;
            if keep {
                buf.extend_from_slice(&chunk);
            }
        }
    }
    if seen != len {
        return Err(s3_error!(
            IncompleteBody,
            "the body is shorter than its Content-Length"
        ));
    }
    let sha = match (hash, signed) {
        (Some(h), _) => hex::encode(h.finalize()),
        (None, Some(signed)) => signed,
        (None, None) => unreachable!("a hash or a signed one"),
    };
    Ok((buf.freeze(), sha))
}

/// The payload hash a SigV4 request signed (64 hex digits), if it signed
/// one (not `UNSIGNED-PAYLOAD` or a streaming form).
fn signed_payload_hash<T>(req: &S3Request<T>) -> Option<String> {
    let v = req.headers.get("x-amz-content-sha256")?.to_str().ok()?;
    (v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())).then(|| v.to_ascii_lowercase())
}

#[async_trait::async_trait]
impl S3 for GatewayS3 {
    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let received_ms = now_ms();
        let writer = writer(&req);
        let signed = signed_payload_hash(&req);
        let input = req.input;
        let (bucket, key) = locate(&input.key)?;
        let config = self.0.config();
        // Checksums the gateway does not verify are refused, not passed on.
        if input.content_md5.is_some()
            || input.checksum_crc32.is_some()
            || input.checksum_crc32c.is_some()
            || input.checksum_crc64nvme.is_some()
            || input.checksum_sha1.is_some()
        {
            return Err(s3_error!(
                InvalidArgument,
                "only x-amz-checksum-sha256 is verified here; send no other checksum"
            ));
        }
        let len = input
            .content_length
            .filter(|n| *n >= 0)
            .ok_or_else(|| s3_error!(MissingContentLength))? as u64;
        if len > config.max_object_bytes {
            return Err(s3_error!(
                EntityTooLarge,
                "{len} bytes is more than the gateway's max_object_bytes ({})",
                config.max_object_bytes
            ));
        }
        let Some(_slot) = self.0.put_slot(&writer) else {
            return Err(s3_error!(
                SlowDown,
                "this credential has {} uploads under way, the most it may",
                config.max_puts_per_credential
            ));
        };
        let deadline = config.upload_deadline(len);
        let quota = config.agency(&bucket).and_then(|a| a.quota_bytes);
        let reserve = {
            let (b, k, w) = (bucket.clone(), key.clone(), writer.clone());
            self.0
                .index
                .run(move |ix| ix.reserve(&b, &k, len, &w, quota, received_ms))
                .await
                .map_err(|e| internal("reserving a key in the index", e))?
        };
        match reserve {
            Reserve::Busy => Err(s3_error!(
                SlowDown,
                "another write of this key is under way"
            )),
            Reserve::OverQuota { used, quota } => Err(s3_error!(
                AccessDenied,
                "quota exceeded: bucket `{bucket}` holds {used} of its {quota} bytes; this object has {len}"
            )),
            Reserve::Exists(row) => {
                if input.if_none_match.is_some() {
                    return Err(s3_error!(PreconditionFailed, "the object exists"));
                }
                // A resend after a timeout carries the same bytes: answer
                // as the first write was answered. Anything else would be
                // an overwrite.
                let (_, sha) = read_body(input.body, len, signed, false, deadline).await?;
                if sha == row.sha256 && len == row.size {
                    Ok(S3Response::new(PutObjectOutput {
                        e_tag: Some(etag(&row)),
                        ..Default::default()
                    }))
                } else {
                    tracing::warn!(%bucket, %key, %writer, "refused an overwrite");
                    Err(s3_error!(
                        PreconditionFailed,
                        "`{key}` exists; objects are never overwritten here"
                    ))
                }
            }
            Reserve::Reserved => {
                // Given back however this ends short of a commit: an error,
                // or the request dropped (a client gone mid-way).
                let mut reservation = Reservation {
                    index: self.0.index.clone(),
                    bucket: bucket.clone(),
                    key: key.clone(),
                    len,
                    committed: false,
                };
                let store = self.0.upstreams.get(&bucket);
                let written = async {
                    let store = store?;
                    // Memory for the body: a PUT waits while others hold it.
                    let kib = u32::try_from(len.div_ceil(1024)).unwrap_or(u32::MAX);
                    let _room = self
                        .0
                        .buffered
                        .acquire_many(kib)
                        .await
                        .map_err(|e| internal("waiting for buffer room", e))?;
                    let (bytes, sha) = read_body(input.body, len, signed, true, deadline).await?;
                    if let Some(want) = &input.checksum_sha256 {
                        let got = base64::engine::general_purpose::STANDARD
                            .encode(hex::decode(&sha).expect("hex"));
                        if *want != got {
                            return Err(s3_error!(
                                BadDigest,
                                "x-amz-checksum-sha256 does not match the body"
                            ));
                        }
                    }
                    store
                        .put(&key, bytes)
                        .await
                        .map_err(|e| internal("writing to the upstream store", e))?;
                    Ok(sha)
                }
                .await;
                let sha = written?;
                let row = Row {
                    key: key.clone(),
                    size: len,
                    etag: sha[..32].to_owned(),
                    sha256: sha,
                    writer,
                    received_ms,
                };
                let b = bucket.clone();
                let r2 = row.clone();
                self.0
                    .index
                    .run(move |ix| ix.commit(&b, &r2, len))
                    .await
                    .map_err(|e| internal("committing an object to the index", e))?;
                reservation.committed = true;
                self.0
                    .latest_receipt
                    .fetch_max(received_ms, std::sync::atomic::Ordering::Relaxed);
                Ok(S3Response::new(PutObjectOutput {
                    e_tag: Some(etag(&row)),
                    size: Some(len as i64),
                    ..Default::default()
                }))
            }
        }
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let (agency, key) = locate(&input.key)?;
        let row = self.row(&agency, &key).await?;
        if let Some(ETagCondition::ETag(want)) = &input.if_match
            && want.value() != row.etag
        {
            return Err(s3_error!(PreconditionFailed, "the ETag differs"));
        }
        let range = match &input.range {
            Some(r) => r.check(row.size).map_err(|_| s3_error!(InvalidRange))?,
            None => 0..row.size,
        };
        let store = self.0.upstreams.get(&agency)?;
        let stream = if range.is_empty() {
            futures::stream::empty().boxed()
        } else {
            store
                .get_range_stream(&key, range.clone())
                .await
                .map_err(|e| match e {
                    pulih_core::Error::Missing(_) => {
                        tracing::error!(%agency, %key, "indexed but missing upstream");
                        s3_error!(
                            NoSuchKey,
                            "the object is missing from the store behind the gateway"
                        )
                    }
                    e => internal("reading from the upstream store", e),
                })?
        };
        let stream = sync_wrapper::SyncStream::new(stream.map_err(std::io::Error::other));
        Ok(S3Response::new(GetObjectOutput {
            body: Some(StreamingBlob::wrap(stream)),
            content_length: Some((range.end - range.start) as i64),
            content_range: input.range.as_ref().map(|_| {
                format!(
                    "bytes {}-{}/{}",
                    range.start,
                    range.end.saturating_sub(1),
                    row.size
                )
            }),
            e_tag: Some(etag(&row)),
            last_modified: Some(timestamp(row.received_ms)),
            accept_ranges: Some("bytes".into()),
            ..Default::default()
        }))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let (agency, key) = locate(&req.input.key)?;
        let row = self.row(&agency, &key).await?;
        Ok(S3Response::new(HeadObjectOutput {
            content_length: Some(row.size as i64),
            e_tag: Some(etag(&row)),
            last_modified: Some(timestamp(row.received_ms)),
            accept_ranges: Some("bytes".into()),
            ..Default::default()
        }))
    }

    async fn head_bucket(
        &self,
        _req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        if input.delimiter.is_some() {
            return Err(s3_error!(
                InvalidArgument,
                "listing with a delimiter is not served by the Pulih gateway"
            ));
        }
        let prefix = input.prefix.clone().unwrap_or_default();
        // Access checked that the prefix names an agency.
        let (agency, inner) = prefix
            .split_once('/')
            .map(|(a, p)| (a.to_owned(), p.to_owned()))
            .ok_or_else(|| s3_error!(AccessDenied, "a listing names its agency's prefix"))?;
        let after = match &input.continuation_token {
            Some(t) => String::from_utf8(hex::decode(t).map_err(|_| {
                s3_error!(InvalidArgument, "the continuation token is not one of ours")
            })?)
            .map_err(|_| s3_error!(InvalidArgument, "the continuation token is not one of ours"))?,
            None => input
                .start_after
                .as_deref()
                .and_then(|s| s.strip_prefix(&format!("{agency}/")))
                .unwrap_or_default()
                .to_owned(),
        };
        let limit = input
            .max_keys
            .filter(|n| *n > 0)
            .map_or(MAX_KEYS, |n| (n as usize).min(MAX_KEYS));
        let (b, p) = (agency.clone(), inner);
        let mut rows = self
            .0
            .index
            .run(move |ix| ix.list(&b, &p, &after, limit + 1))
            .await
            .map_err(|e| internal("listing the index", e))?;
        let truncated = rows.len() > limit;
        rows.truncate(limit);
        let next = truncated
            .then(|| rows.last().map(|r| hex::encode(&r.key)))
            .flatten();
        let fetch_owner = input.fetch_owner.unwrap_or(false);
        let contents: Vec<Object> = rows
            .into_iter()
            .map(|r| Object {
                key: Some(format!("{agency}/{}", r.key)),
                size: Some(r.size as i64),
                last_modified: Some(timestamp(r.received_ms)),
                e_tag: Some(etag(&r)),
                owner: fetch_owner.then(|| Owner {
                    id: Some(r.writer.clone()),
                    display_name: Some(
                        self.0
                            .principal(&r.writer)
                            .map_or_else(|| r.writer.clone(), |p| p.to_string()),
                    ),
                }),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(prefix),
            key_count: Some(contents.len() as i32),
            max_keys: Some(limit as i32),
            is_truncated: Some(truncated),
            continuation_token: input.continuation_token,
            next_continuation_token: next,
            start_after: input.start_after,
            contents: Some(contents),
            ..Default::default()
        }))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let who = principal(&req)?;
        let akid = writer(&req);
        let (bucket, key) = locate(&req.input.key)?;
        let Some(row) = self
            .0
            .index
            .get(&bucket, &key)
            .map_err(|e| internal("reading the index", e))?
        else {
            // As S3: deleting what is not there succeeds.
            return Ok(S3Response::new(DeleteObjectOutput::default()));
        };
        let floor = self.0.config().retention_floor();
        let latest = self
            .0
            .latest_receipt
            .load(std::sync::atomic::Ordering::Relaxed);
        if now_ms() + CLOCK_SLACK_MS < latest {
            tracing::error!(%bucket, %key, latest_ms = latest, "refused a delete: the clock ran backwards");
            return Err(s3_error!(
                AccessDenied,
                "the gateway's clock stands behind the latest receipt it gave: it ran backwards, and no delete is trusted to it until it is right"
            ));
        }
        let age = Duration::from_millis((now_ms() - row.received_ms).max(0) as u64);
        let own = row.writer == akid;
        let exempt = match who {
            Principal::Maintenance => own && maintenance_record(&key),
            // An agent's own benchmark scratch (access allowed no other).
            Principal::Agent { .. } => own && is_scratch(&key),
            _ => false,
        };
        if !exempt && who != Principal::Maintenance {
            return Err(s3_error!(
                AccessDenied,
                "{who} may delete only the benchmark objects it wrote"
            ));
        }
        if !exempt && age < floor {
            tracing::info!(%bucket, %key, age_s = age.as_secs(), "refused a delete under the retention floor");
            return Err(s3_error!(
                AccessDenied,
                "`{key}` was received {} ago; nothing younger than the retention floor ({} days) is deleted",
                humanize(age),
                floor.as_secs() / 86_400
            ));
        }
        let (b, k) = (bucket.clone(), key.clone());
        if self
            .0
            .index
            .run(move |ix| ix.mark_deleting(&b, &k))
            .await
            .map_err(|e| internal("marking a delete in the index", e))?
            .is_none()
        {
            return Ok(S3Response::new(DeleteObjectOutput::default()));
        }
        finish_delete(&self.0, &bucket, &key).await?;
        tracing::info!(%bucket, %key, by = %who, "deleted");
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }
}

/// Deletes the upstream object of a row marked deleting, then the row.
pub(crate) async fn finish_delete(gw: &Gateway, bucket: &str, key: &str) -> S3Result<()> {
    let store = gw.upstreams.get(bucket)?;
    match store.delete(key).await {
        Ok(()) | Err(pulih_core::Error::Missing(_)) => {}
        Err(e) => return Err(internal("deleting from the upstream store", e)),
    }
    let (b, k) = (bucket.to_owned(), key.to_owned());
    gw.index
        .run(move |ix| ix.remove(&b, &k))
        .await
        .map_err(|e| internal("removing a row from the index", e))
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 86_400 {
        format!("{} days", s / 86_400)
    } else if s >= 3600 {
        format!("{} hours", s / 3600)
    } else {
        format!("{} minutes", s / 60)
    }
}

impl GatewayS3 {
    async fn row(&self, bucket: &str, key: &str) -> S3Result<Row> {
        let (b, k) = (bucket.to_owned(), key.to_owned());
        self.0
            .index
            .run(move |ix| ix.get(&b, &k))
            .await
            .map_err(|e| internal("reading the index", e))?
            .ok_or_else(|| s3_error!(NoSuchKey))
    }
}
