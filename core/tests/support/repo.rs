//! Shared set-up for the core test suites.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use pulih_core::keys::ReaderKeys;
use pulih_core::repo::{InitOptions, ListedSnapshot, Reader, Repo};
use pulih_core::restore::{RestoreOptions, RestoreProgress, restore};
use pulih_core::storage::Store;

/// Init options with a cheap argon2id (64 KiB, one pass), so tests stay fast.
pub fn fast_init() -> InitOptions {
    InitOptions {
        kdf: pulih_core::keys::PassphraseKdf { m_kib: 64, t: 1 },
        ..Default::default()
    }
}

pub async fn init(store: &Store, passphrase: &str) -> (Repo, ReaderKeys) {
    Repo::init(store.clone(), passphrase, &fast_init())
        .await
        .unwrap()
}

/// Restore a whole snapshot under `target`.
pub async fn restore_all(reader: &Reader, snap: &ListedSnapshot, target: &Path) {
    restore(
        reader,
        snap,
        target,
        &RestoreOptions::default(),
        Arc::new(RestoreProgress::default()),
    )
    .await
    .unwrap();
}

/// Rewrites `config`'s version as whoever writes the store could (its MAC
/// left as it was); returns the bytes it had, to put back.
pub async fn set_config_version(store: &Store, version: u32) -> bytes::Bytes {
    let bytes = store.get(pulih_core::layout::CONFIG).await.unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["body"]["version"] = version.into();
    store
        .put(
            pulih_core::layout::CONFIG,
            serde_json::to_vec(&v).unwrap().into(),
        )
        .await
        .unwrap();
    bytes
}
