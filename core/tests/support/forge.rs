//! What an attacker holding one agent key can write: a snapshot of its
//! own making (any trees, tags and time) through the public format
//! pieces, as a compromised server would, without the backup's walk.

#![allow(dead_code)]

use std::ffi::OsStr;

use pulih_core::id::{BlobId, IndexId, SnapshotId};
use pulih_core::index::{IndexFile, IndexPack};
use pulih_core::keys::{AgentKey, SessionKey};
use pulih_core::layout;
use pulih_core::pack::{BlobType, PackWriter};
use pulih_core::snapshot::{Snapshot, Summary};
use pulih_core::storage::Store;
use pulih_core::tree::{Node, NodeKind, Tree};

/// Blobs to store, and the snapshot's fields.
pub struct Forge<'a> {
    pub agent: &'a AgentKey,
    blobs: Vec<(BlobType, BlobId, Vec<u8>)>,
}

impl<'a> Forge<'a> {
    pub fn new(agent: &'a AgentKey) -> Self {
        Forge {
            agent,
            blobs: Vec::new(),
        }
    }

    /// A data blob; its id.
    pub fn data(&mut self, bytes: &[u8]) -> BlobId {
        let id = self.agent.space.blob_id(bytes);
        self.blobs.push((BlobType::Data, id, bytes.to_vec()));
        id
    }

    /// A tree blob of `nodes`; its id.
    pub fn tree(&mut self, nodes: Vec<Node>) -> BlobId {
        let bytes = Tree { nodes }.encode();
        let id = self.agent.space.blob_id(&bytes);
        self.blobs.push((BlobType::Tree, id, bytes));
        id
    }

    /// Stores the blobs (uncompressed, one pack per kind, one index) and a
    /// snapshot of root tree `root` with `tags`, dated `time` (RFC 3339).
    pub async fn snapshot(
        self,
        store: &Store,
        root: BlobId,
        tags: &[&str],
        time: &str,
    ) -> SnapshotId {
        let session = SessionKey::generate();
        store
            .put(
                &layout::session_key(&session.id),
                session.wrap(&self.agent.recipients).unwrap().into(),
            )
            .await
            .unwrap();
        let mut packs = Vec::new();
        for kind in [BlobType::Data, BlobType::Tree] {
            let mut w = PackWriter::new(&session, kind, 0);
            for (_, id, raw) in self.blobs.iter().filter(|b| b.0 == kind) {
                w.add(*id, raw, 0, raw.len() as u32);
            }
            if w.is_empty() {
                continue;
            }
            let f = w.finish(&self.agent.space);
            store
                .put(&layout::pack(&f.id), f.bytes.into())
                .await
                .unwrap();
            packs.push(IndexPack {
                pack: f.id,
                header: f.header,
            });
        }
        let pack_ids = packs.iter().map(|p| p.pack).collect();
        let space = self.agent.space.space;
        let iid = IndexId::random();
        let index = IndexFile { space, packs }.encode(&self.agent.space, &iid);
        store.put(&layout::index(&iid), index.into()).await.unwrap();
        let sid = SnapshotId::random();
        let snap = Snapshot {
            time: time.to_string(),
            host: "forged".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            paths: vec!["/srv".into()],
            tree: root,
            session: session.id,
            parent: None,
            agent_version: "forged".into(),
            summary: Summary {
                total_bytes: 1,
                ..Default::default()
            },
            packs: Some(pack_ids),
        };
        store
            .put(
                &layout::snapshot(&sid),
                snap.encode(&self.agent.space, &sid).into(),
            )
            .await
            .unwrap();
        sid
    }
}

/// A directory node named `name` of tree `subtree`.
pub fn dir(name: &str, subtree: BlobId) -> Node {
    let mut n = Node::new(OsStr::new(name), NodeKind::Dir);
    n.mode = 0o755;
    n.subtree = Some(subtree);
    n
}

/// A file node named `name` of `blobs` (each `blob_len` bytes).
pub fn file(name: &str, blobs: Vec<BlobId>, blob_len: u64) -> Node {
    let mut n = Node::new(OsStr::new(name), NodeKind::File);
    n.mode = 0o644;
    n.size = Some(blobs.len() as u64 * blob_len);
    n.content = Some(blobs);
    n
}

/// The time now, RFC 3339.
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}
