//! Tree blobs (FORMAT.md §7): one per directory, JSON, nodes sorted by name.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use serde::{Deserialize, Serialize};

use crate::id::BlobId;
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    File,
    Dir,
    Symlink,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Node {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_hex: Option<String>,
    pub kind: NodeKind,
    pub mode: u32,
    pub mtime_ns: i64,
    pub uid: u32,
    pub gid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Vec<BlobId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtree: Option<BlobId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_hex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_id: Option<u64>,
}

/// Store bytes as a UTF-8 string when they are one, else as hex.
fn split_bytes(b: &[u8]) -> (Option<String>, Option<String>) {
    match std::str::from_utf8(b) {
        Ok(s) => (Some(s.to_owned()), None),
        Err(_) => (None, Some(hex::encode(b))),
    }
}

fn join_bytes(s: &Option<String>, h: &Option<String>, what: &str) -> Result<Vec<u8>> {
    match (s, h) {
        (Some(s), None) => Ok(s.as_bytes().to_vec()),
        (None, Some(h)) => {
            hex::decode(h).map_err(|_| Error::corrupt("tree", format!("{what}_hex is not hex")))
        }
        _ => Err(Error::corrupt(
            "tree",
            format!("node needs exactly one of {what} and {what}_hex"),
        )),
    }
}

impl Node {
    pub fn new(name: &OsStr, kind: NodeKind) -> Node {
        let (name, name_hex) = split_bytes(name.as_bytes());
        Node {
            name,
            name_hex,
            kind,
            mode: 0,
            mtime_ns: 0,
            uid: 0,
            gid: 0,
            size: None,
            content: None,
            subtree: None,
            target: None,
            target_hex: None,
            link_id: None,
        }
    }

    pub fn name_bytes(&self) -> Result<Vec<u8>> {
        let n = join_bytes(&self.name, &self.name_hex, "name")?;
        if n.is_empty() || n == b"." || n == b".." || n.contains(&0) {
            return Err(Error::corrupt(
                "tree",
                format!("invalid node name {:?}", String::from_utf8_lossy(&n)),
            ));
        }
        Ok(n)
    }

    pub fn set_target(&mut self, target: &OsStr) {
        (self.target, self.target_hex) = split_bytes(target.as_bytes());
    }

    pub fn target_bytes(&self) -> Result<Vec<u8>> {
        join_bytes(&self.target, &self.target_hex, "target")
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("trees serialize")
    }

    pub fn decode(bytes: &[u8], id: &BlobId) -> Result<Tree> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt(format!("tree {id}"), e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn tree_round_trip(names in proptest::collection::vec(proptest::collection::vec(1u8..=255, 1..20), 0..10), mode in any::<u32>(), mtime in any::<i64>()) {
            // Valid file names: no `/`, never `.` or `..` (a prefix byte rules those out).
            let names: Vec<Vec<u8>> = names.into_iter().map(|n| std::iter::once(b'n').chain(n.into_iter().map(|b| if b == b'/' { b'_' } else { b })).collect()).collect();
            let nodes: Vec<Node> = names.iter().enumerate().map(|(i, n)| {
                let mut node = Node::new(OsStr::from_bytes(n), if i % 2 == 0 { NodeKind::File } else { NodeKind::Symlink });
                node.mode = mode; node.mtime_ns = mtime;
                if i % 2 == 0 { node.size = Some(i as u64); node.content = Some(vec![BlobId([i as u8; 32])]); }
                else { node.set_target(OsStr::from_bytes(n)); }
                node
            }).collect();
            let t = Tree { nodes };
            let back = Tree::decode(&t.encode(), &BlobId::default()).unwrap();
            for (a, b) in back.nodes.iter().zip(&names) { prop_assert_eq!(&a.name_bytes().unwrap(), b); }
            prop_assert_eq!(back, t);
        }
    }
}
