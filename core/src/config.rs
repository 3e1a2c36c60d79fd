//! The `config` object (FORMAT.md §3.1): public parameters, authenticated
//! with a key derived from the master secret.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::id::RepoId;
use crate::keys::{ChunkerParams, MasterKey};
use crate::{Error, Result};

pub const FORMAT_VERSION: u32 = 1;

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
    pub fn encode(&self, master: &MasterKey) -> Vec<u8> {
        let body = serde_json::to_vec(self).expect("config serializes");
        let mac = crate::crypto::mac(&master.config_mac_key(), &body);
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
        if f.body.version != FORMAT_VERSION {
            return Err(Error::corrupt(
                "object `config`",
                format!(
                    "format version {} is not supported (this build reads {FORMAT_VERSION})",
                    f.body.version
                ),
            ));
        }
        Ok(f.body)
    }

    /// Parse and check the MAC with the master secret.
    pub fn parse_verified(bytes: &[u8], master: &MasterKey) -> Result<ConfigBody> {
        let f: ConfigFile = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt("object `config`", e.to_string()))?;
        let body = serde_json::to_vec(&f.body).expect("config serializes");
        let mac = crate::crypto::mac(&master.config_mac_key(), &body);
        if hex::encode(mac) != f.mac {
            return Err(Error::corrupt(
                "object `config`",
                "its MAC does not verify: it was altered",
            ));
        }
        Self::parse_unverified(bytes)
    }
}
