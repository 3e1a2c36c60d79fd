//! What a prune holds back when an object it would read does not
//! authenticate (FORMAT.md §11, "What does not authenticate"): junk any
//! writer of the agency can put under `snapshots/`, `index/` or `locks/`
//! no longer stops a prune, and never makes it delete a blob the object
//! might have kept alive.

use std::collections::HashSet;

use crate::id::SpaceId;
use crate::repo::{LoadedIndexes, Unreadable};

#[derive(Default)]
pub(crate) struct Holdback {
    /// Spaces none of whose packs is condemned or deleted.
    spaces: HashSet<SpaceId>,
    /// Every space held back.
    all: bool,
    /// No unindexed pack deleted.
    unindexed: bool,
    /// What was set aside and what that held back, once each.
    notes: Vec<String>,
}

impl Holdback {
    fn note(&mut self, n: String) {
        if !self.notes.contains(&n) {
            tracing::warn!("{n}");
            self.notes.push(n);
        }
    }

    /// Snapshots that do not authenticate: the space each names.
    pub fn snapshots(&mut self, unreadable: &[Unreadable]) {
        for u in unreadable {
            match u.space {
                Some(s) => self.space(s, u),
                None => self.note(format!("{u}; set aside (it names no space)")),
            }
        }
    }

    /// Index files that do not authenticate: their spaces, and every
    /// unindexed pack (the packs they list look unindexed).
    pub fn indexes(&mut self, loaded: &LoadedIndexes) {
        for (id, e) in &loaded.damaged {
            self.unindexed = true;
            self.note(format!(
                "{}: {e}; no unindexed pack deleted",
                crate::layout::index(id)
            ));
        }
        for s in &loaded.damaged_spaces {
            self.spaces.insert(*s);
            self.note(format!(
                "space {} not pruned: one of its index files does not authenticate",
                s.to_hex()
            ));
        }
    }

    /// Prune records that do not verify: their packs are in no index and
    /// no record, so no unindexed pack is deleted.
    pub fn prune_records(&mut self, unreadable: &[Unreadable]) {
        for u in unreadable {
            self.unindexed = true;
            self.note(format!("{u}; no unindexed pack deleted"));
        }
    }

    /// Moves records that do not verify, for a prune that follows them
    /// instead of walking trees (the maintenance key's): every space.
    pub fn moves_records(&mut self, unreadable: &[Unreadable]) {
        for u in unreadable {
            self.all = true;
            self.note(format!("{u}; no space pruned"));
        }
    }

    /// Holds back space `s` because of `why`.
    pub fn space(&mut self, s: SpaceId, why: impl std::fmt::Display) {
        self.spaces.insert(s);
        self.note(format!("{why}; space {} not pruned", s.to_hex()));
    }

    /// Whether no pack of `s` may be condemned or deleted.
    pub fn holds(&self, s: SpaceId) -> bool {
        self.all || self.spaces.contains(&s)
    }

    /// Whether any space is held back.
    pub fn holds_any(&self) -> bool {
        self.all || !self.spaces.is_empty()
    }

    /// Whether unindexed packs must be kept.
    pub fn keeps_unindexed(&self) -> bool {
        self.unindexed
    }

    pub fn into_notes(self) -> Vec<String> {
        self.notes
    }
}
