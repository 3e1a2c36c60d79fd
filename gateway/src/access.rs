//! Who may do what: the secret of an access key id ([`S3Auth`]), then,
//! before any body is read, whether its holder may run this operation on
//! this bucket and key ([`S3Access`]). Refused requests get 403 (or 412
//! for a conditional overwrite), never a 5xx: object_store retries every
//! 5xx for minutes.

use std::sync::Arc;

use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::path::S3Path;
use s3s::{S3Result, s3_error};

use crate::creds::Principal;
use crate::keys::{check_key, split_key};
use crate::state::Gateway;

/// The S3 authentication: a known access key id's secret.
pub struct Auth(pub Arc<Gateway>);

#[async_trait::async_trait]
impl S3Auth for Auth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.0.principal(access_key) {
            Some(Principal::Maintenance) => self
                .0
                .maintenance_secret
                .read()
                .expect("secret lock")
                .clone()
                .map(SecretKey::from)
                .ok_or_else(|| s3_error!(InvalidAccessKeyId)),
            Some(_) => Ok(SecretKey::from(self.0.key.secret(access_key))),
            None => Err(s3_error!(
                InvalidAccessKeyId,
                "unknown or revoked access key id"
            )),
        }
    }
}

/// Operations the gateway serves; every other one is refused.
const SERVED: &[&str] = &[
    "GetObject",
    "HeadObject",
    "ListObjectsV2",
    "PutObject",
    "DeleteObject",
    "HeadBucket",
];

/// The value of query parameter `name` (percent-decoded).
fn query_param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The authorization of every request, before its body is read.
pub struct Access(pub Arc<Gateway>);

#[async_trait::async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let Some(creds) = cx.credentials() else {
            return Err(s3_error!(AccessDenied, "a signed request is required"));
        };
        // Only SigV4 in the Authorization header, for service s3, with one
        // payload hash: no SigV2, no presigned URL (replayable by whoever
        // sees it), no `sts` scope (s3s then checks the body differently),
        // no second x-amz-content-sha256 (s3s checks only a single one,
        // and the gateway records it as the object's hash).
        let auth_header = cx
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let scope_service = auth_header
            .split("Credential=")
            .nth(1)
            .and_then(|c| c.split([',', ' ']).next())
            .and_then(|c| c.split('/').nth(3));
        if !auth_header.starts_with("AWS4-HMAC-SHA256 ")
            || scope_service != Some("s3")
            || cx.headers().get_all("x-amz-content-sha256").iter().count() > 1
        {
            return Err(s3_error!(
                AccessDenied,
                "only SigV4 requests signed in the Authorization header for service s3 are accepted"
            ));
        }
        let query = cx.uri().query().unwrap_or("");
        let Some(principal) = self.0.principal(&creds.access_key) else {
            return Err(s3_error!(InvalidAccessKeyId));
        };
        if let Err(why) = self.0.take_rate(&creds.access_key) {
            return Err(s3_error!(SlowDown, "{why}"));
        }
        let op = cx.s3_op().name();
        if !SERVED.contains(&op) {
            return Err(s3_error!(
                AccessDenied,
                "{op} is not served by the Pulih gateway"
            ));
        }
        let config = self.0.config();
        let (bucket, agency, key) = match cx.s3_path() {
            S3Path::Root => {
                return Err(s3_error!(AccessDenied, "listing buckets is not served"));
            }
            S3Path::Bucket { bucket } if op == "HeadBucket" => (bucket.to_string(), None, None),
            S3Path::Bucket { bucket } => {
                // A listing stays within one agency's prefix.
                let prefix = query_param(query, "prefix").unwrap_or_default();
                let agency = prefix.split_once('/').map(|(a, _)| a.to_owned());
                let Some(agency) = agency.filter(|a| !a.is_empty()) else {
                    return Err(s3_error!(
                        AccessDenied,
                        "a listing names its agency's prefix (prefix=AGENCY/…)"
                    ));
                };
                (bucket.to_string(), Some(agency), None)
            }
            S3Path::Object { bucket, key } => {
                let Some((agency, k)) = split_key(key) else {
                    return Err(s3_error!(AccessDenied, "object keys here are AGENCY/KEY"));
                };
                (
                    bucket.to_string(),
                    Some(agency.to_owned()),
                    Some(k.to_owned()),
                )
            }
        };
        if bucket != config.bucket {
            return Err(s3_error!(
                NoSuchBucket,
                "this gateway serves bucket `{}`",
                config.bucket
            ));
        }
        if let Some(agency) = &agency
            && !self.0.reaches(&principal, agency)
        {
            // The same answer whether the agency exists or not.
            return Err(s3_error!(
                AccessDenied,
                "{principal} has no access to agency `{agency}`"
            ));
        }
        if let Some(key) = &key {
            check_key(key)?;
        }
        match op {
            "PutObject"
                if principal != Principal::Maintenance
                    && key.as_deref().is_some_and(crate::keys::maintenance_record) =>
            {
                return Err(s3_error!(
                    AccessDenied,
                    "{principal} may not write prune or hold records: only the maintenance credential does"
                ));
            }
            "PutObject" if cx.headers().contains_key("if-match") => {
                return Err(s3_error!(
                    PreconditionFailed,
                    "objects are never overwritten here (If-Match refused)"
                ));
            }
            "DeleteObject" => {
                let own_scratch = matches!(principal, Principal::Agent { .. })
                    && key.as_deref().is_some_and(crate::keys::is_scratch);
                if principal != Principal::Maintenance && !own_scratch {
                    return Err(s3_error!(
                        AccessDenied,
                        "{principal} may not delete: objects here are deleted only by the maintenance credential"
                    ));
                }
            }
            _ => {}
        }
        cx.extensions_mut().insert(principal);
        Ok(())
    }
}
