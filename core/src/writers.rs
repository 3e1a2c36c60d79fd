//! Who wrote each object, as the store recorded it: an S3 `ListObjectsV2`
//! with `fetch-owner=true`. The append-only gateway (docs/GATEWAY.md)
//! answers it with the access key id that wrote each object and its own
//! time of receipt, which no writer can set; the controller's ransomware
//! signals measure a server's runs from it (SECURITY.md "Ransomware
//! signals") instead of from what the agent says of itself.
//!
//! object_store's listing does not ask for owners, so this one request is
//! made here, signed with SigV4 by `aws-sigv4` with the store's own
//! endpoint, region, credentials and CA.

use std::time::SystemTime;

use serde::Deserialize;

use crate::storage::{S3Params, Store};
use crate::{Error, Result};

/// The most pages (of up to 1000 objects) one listing follows: 10 M
/// objects, 160 TB of 16 MiB packs.
const MAX_PAGES: usize = 10_000;

/// One object of a listing with its writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Key relative to the repository prefix.
    pub key: String,
    pub size: u64,
    /// The store's time of the write (the gateway's receipt), Unix ms.
    pub received_ms: i64,
    /// The access key id that wrote it, where the store says.
    pub writer: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListBucketResult {
    #[serde(default)]
    is_truncated: bool,
    #[serde(default)]
    next_continuation_token: Option<String>,
    #[serde(default)]
    contents: Vec<Contents>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Contents {
    key: String,
    size: u64,
    last_modified: String,
    #[serde(default)]
    owner: Option<Owner>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Owner {
    #[serde(rename = "ID", default)]
    id: Option<String>,
}

/// Parses one page of a `ListObjectsV2` answer (untrusted bytes: fuzz
/// target `writers_listing`): its objects (keys as the store has them,
/// with the bucket-level prefix) and the token of the next page, if
/// truncated.
pub fn parse_page(xml: &str) -> std::result::Result<(Vec<Written>, Option<String>), String> {
    let page: ListBucketResult = quick_xml::de::from_str(xml).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(page.contents.len());
    for c in page.contents {
        let t = humantime::parse_rfc3339_weak(c.last_modified.trim_end_matches('Z'))
            .map_err(|e| format!("LastModified `{}` of {}: {e}", c.last_modified, c.key))?;
        let ms = t
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_err(|_| format!("LastModified `{}` is before 1970", c.last_modified))?
            .as_millis() as i64;
        out.push(Written {
            key: c.key,
            size: c.size,
            received_ms: ms,
            writer: c.owner.and_then(|o| o.id).filter(|s| !s.is_empty()),
        });
    }
    let next = if page.is_truncated {
        match page.next_continuation_token {
            Some(t) if !t.is_empty() => Some(t),
            _ => return Err("a truncated listing without a continuation token".into()),
        }
    } else {
        None
    };
    Ok((out, next))
}

/// The objects under `prefix` (relative to the repository, e.g. `data/`)
/// with their writers. `Ok(None)` for a store that is not S3 (`file://`,
/// `memory://`): there is no writer to ask about.
pub async fn list_writers(store: &Store, prefix: &str) -> Result<Option<Vec<Written>>> {
    let Some(p) = store.s3_params() else {
        return Ok(None);
    };
    let err = |detail: String| Error::Corrupt {
        what: format!("the listing of {prefix} in {}", store.url()),
        detail,
    };
    let full = if p.prefix.is_empty() {
        prefix.to_owned()
    } else {
        format!("{}/{prefix}", p.prefix)
    };
    let client = client(p).map_err(err)?;
    let mut token: Option<String> = None;
    let mut out = Vec::new();
    let mut pages = 0usize;
    loop {
        let query = {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("list-type", "2")
                .append_pair("prefix", &full)
                .append_pair("fetch-owner", "true");
            if let Some(t) = &token {
                q.append_pair("continuation-token", t);
            }
            q.finish()
        };
        let url = format!("{}/{}?{query}", p.endpoint.trim_end_matches('/'), p.bucket);
        let headers = sign(p, &url).map_err(err)?;
        let mut req = client.get(&url);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let io = |e: reqwest::Error| Error::io(store.url(), std::io::Error::other(e.without_url()));
        let resp = req.send().await.map_err(io)?;
        let status = resp.status();
        let body = resp.text().await.map_err(io)?;
        if !status.is_success() {
            return Err(err(format!(
                "the store answered {status}: {}",
                body.chars().take(300).collect::<String>()
            )));
        }
        let (page, next) = parse_page(&body).map_err(err)?;
        for mut w in page {
            let Some(rel) = w.key.strip_prefix(&format!("{}/", p.prefix)) else {
                if p.prefix.is_empty() {
                    out.push(w);
                }
                continue;
            };
            w.key = rel.to_owned();
            out.push(w);
        }
        pages += 1;
        match next {
            // A store that names the same page again, or never ends, is
            // not followed for ever.
            Some(t) if token.as_deref() == Some(t.as_str()) => {
                return Err(err(format!("the store named page `{t}` twice")));
            }
            Some(_) if pages >= MAX_PAGES => {
                return Err(err(format!("more than {MAX_PAGES} pages")));
            }
            Some(t) => token = Some(t),
            None => return Ok(Some(out)),
        }
    }
}

fn client(p: &S3Params) -> std::result::Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .timeout(p.timeout)
        .https_only(!p.endpoint.starts_with("http://"));
    if let Some(ca) = &p.ca {
        let pem = std::fs::read(ca).map_err(|e| format!("ca file {ca}: {e}"))?;
        for c in
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| format!("ca file {ca}: {e}"))?
        {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(|e| e.to_string())
}

/// The SigV4 headers of a `GET url` with an empty body (header
/// signature, the payload's SHA-256 in `x-amz-content-sha256`, as S3
/// wants it).
fn sign(p: &S3Params, url: &str) -> std::result::Result<Vec<(String, String)>, String> {
    use aws_sigv4::http_request::{
        PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
        UriPathNormalizationMode, sign,
    };
    let (Some(id), Some(secret)) = (&p.access_key_id, &p.secret_access_key) else {
        return Err("no S3 credentials to sign the listing with".into());
    };
    let identity =
        aws_credential_types::Credentials::new(id.as_str(), secret.as_str(), None, None, "pulih")
            .into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(&p.region)
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let request = SignableRequest::new("GET", url, std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(request, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    let (headers, _) = instructions.into_parts();
    Ok(headers
        .into_iter()
        .map(|h| (h.name().to_owned(), h.value().to_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_gives_keys_sizes_receipts_writers_and_the_next_token() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>pulih</Name><Prefix>dinkes/data/</Prefix><KeyCount>2</KeyCount>
  <IsTruncated>true</IsTruncated><NextContinuationToken>abc</NextContinuationToken>
  <Contents><Key>dinkes/data/00/aa</Key><LastModified>2026-12-07T10:00:01.250Z</LastModified>
    <ETag>"x"</ETag><Size>4096</Size>
    <Owner><ID>PLH.agent.dinkes.web.1</ID><DisplayName>agent web</DisplayName></Owner></Contents>
  <Contents><Key>dinkes/data/01/bb</Key><LastModified>2026-12-07T10:00:02Z</LastModified>
    <Size>7</Size></Contents>
</ListBucketResult>"#;
        let (page, next) = parse_page(xml).unwrap();
        assert_eq!(next.as_deref(), Some("abc"));
        assert_eq!(
            page,
            vec![
                Written {
                    key: "dinkes/data/00/aa".into(),
                    size: 4096,
                    received_ms: 1_796_637_601_250,
                    writer: Some("PLH.agent.dinkes.web.1".into()),
                },
                Written {
                    key: "dinkes/data/01/bb".into(),
                    size: 7,
                    received_ms: 1_796_637_602_000,
                    writer: None,
                },
            ]
        );
        let empty = r#"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>"#;
        assert_eq!(parse_page(empty).unwrap(), (vec![], None));
        let bad = r#"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>"#;
        assert!(parse_page(bad).unwrap_err().contains("continuation"));
    }
}
