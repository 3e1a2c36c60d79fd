//! The `config` object (FORMAT.md §3.1): public parameters, authenticated
//! with a key derived from the master secret.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::crypto::Key;
use crate::id::RepoId;
use crate::{Error, Result};

/// The version `init` writes: 3 (padded frames, FORMAT.md §4.2).
/// Version-1 and -2 repositories are read, and written in their own
/// version (no frames in version 1, unpadded frames in version 2).
pub const FORMAT_VERSION: u32 = 3;
/// The oldest version this build reads.
pub const OLDEST_VERSION: u32 = 1;

/// The zstd level `pulih repo init` writes into a new repository's config.
pub const DEFAULT_COMPRESSION_LEVEL: i32 = 3;

/// Chunker sizes (FORMAT.md §9).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ChunkerParams {
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        // 128 KiB / 512 KiB / 2 MiB: against 256 KiB / 1 MiB / 4 MiB, a 1 %
        // incremental of the Debian tree adds 34 MB instead of 36–38 and
        // the repository grows 0.4 % (docs/BENCHMARKS.md, "Chunk size").
        ChunkerParams {
            min_size: 128 * 1024,
            avg_size: 512 * 1024,
            max_size: 2 * 1024 * 1024,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigBody {
    pub version: u32,
    pub repo_id: RepoId,
    pub created: String,
    pub chunker: ChunkerParams,
    pub compression_level: i32,
    /// Reader recipients by slot name (`walidata`, `drc-drill`, …).
    pub recipients: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    body: ConfigBody,
    mac: String,
}

impl ConfigBody {
    /// The config object, authenticated with `mac_key` (the master
    /// secret's `MasterKey::config_mac_key`).
    pub fn encode(&self, mac_key: &Key) -> Vec<u8> {
        let body = serde_json::to_vec(self).expect("config serializes");
        let mac = crate::crypto::mac(mac_key, &body);
        serde_json::to_vec_pretty(&ConfigFile {
            body: self.clone(),
            mac: hex::encode(mac),
        })
        .expect("config serializes")
    }

    /// Parse without authenticating (agents, which do not hold the master
    /// secret, only use the repository id from here).
    pub fn parse_unverified(bytes: &[u8]) -> Result<ConfigBody> {
        let f: ConfigFile = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt("object `config`", e.to_string()))?;
        if !(OLDEST_VERSION..=FORMAT_VERSION).contains(&f.body.version) {
            return Err(Error::corrupt(
                "object `config`",
                format!(
                    "format version {} is not supported (this build reads versions {OLDEST_VERSION} to {FORMAT_VERSION}; a newer Pulih wrote it: upgrade)",
                    f.body.version
                ),
            ));
        }
        Ok(f.body)
    }

    /// Parse and check the MAC with `mac_key` (`MasterKey::config_mac_key`).
    pub fn parse_verified(bytes: &[u8], mac_key: &Key) -> Result<ConfigBody> {
        let f: ConfigFile = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt("object `config`", e.to_string()))?;
        let body = serde_json::to_vec(&f.body).expect("config serializes");
        let mac = crate::crypto::mac(mac_key, &body);
        if hex::encode(mac) != f.mac {
            return Err(Error::corrupt(
                "object `config`",
                "its MAC does not verify: it was altered",
            ));
        }
        Self::parse_unverified(bytes)
    }
}
