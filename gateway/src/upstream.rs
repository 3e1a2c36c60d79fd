//! The stores behind the gateway: one per agency, `<upstream>/<agency>/`,
//! opened with the gateway's own credentials.

use std::collections::HashMap;
use std::sync::Mutex;

use pulih_core::storage::Store;
use s3s::{S3Result, s3_error};

/// The upstream store of each agency: `<upstream>/<agency>/`.
pub struct Upstreams {
    base: String,
    credentials: Option<(String, String)>,
    stores: Mutex<HashMap<String, Store>>,
}

impl Upstreams {
    pub fn new(base: &str, credentials: Option<(String, String)>) -> Upstreams {
        Upstreams {
            base: base.to_owned(),
            credentials,
            stores: Mutex::default(),
        }
    }

    /// The URL of an agency's part of the upstream store.
    pub fn url(&self, agency: &str) -> anyhow::Result<String> {
        if self.base.starts_with("s3://") {
            let mut u = url::Url::parse(&self.base)?;
            let path = format!("{}/{agency}", u.path().trim_end_matches('/'));
            u.set_path(&path);
            Ok(u.to_string())
        } else {
            let dir = self.base.strip_prefix("file://").unwrap_or(&self.base);
            Ok(std::path::Path::new(dir)
                .join(agency)
                .to_string_lossy()
                .into_owned())
        }
    }

    pub fn get(&self, agency: &str) -> S3Result<Store> {
        let mut stores = self.stores.lock().expect("upstream stores");
        if let Some(s) = stores.get(agency) {
            return Ok(s.clone());
        }
        let store = self
            .url(agency)
            .map_err(|e| e.to_string())
            .and_then(|u| {
                let creds = self
                    .credentials
                    .as_ref()
                    .map(|(a, s)| (a.as_str(), s.as_str()));
                Store::open_with(&u, true, creds).map_err(|e| e.to_string())
            })
            .map_err(|e| {
                tracing::error!(agency, error = %e, "opening the upstream store");
                s3_error!(ServiceUnavailable, "the upstream store cannot be opened")
            })?;
        stores.insert(agency.to_owned(), store.clone());
        Ok(store)
    }
}
