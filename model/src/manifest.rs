//! Manifests: how agencies onboard (DESIGN.md §5).
//!
//! [`parse`] reads YAML text (one or many documents per file) into typed
//! objects; [`ManifestSet::validate`] checks what no single document can
//! (references, duplicates, Pasal 9 consistency). Every problem becomes a
//! [`Diagnostic`] naming file, line and column; all problems of a run are
//! reported together, and no input makes this code panic (fuzzed by
//! `fuzz/fuzz_targets/manifest.rs`).

pub mod port;
pub mod types;
mod validate;
pub mod values;
pub mod yaml;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub use types::*;
use validate::*;
use yaml::{Node, Pos, Seg};

/// Files larger than this are refused before parsing.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// One problem in one manifest file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// A parsed object with where it came from (for later diagnostics).
#[derive(Debug, Clone)]
pub struct Located<S> {
    pub object: Object<S>,
    pub file: String,
    pub root: Node,
}

impl<S> Located<S> {
    pub fn name(&self) -> &str {
        &self.object.metadata.name
    }

    /// A diagnostic at `path` (e.g. `spec.sources[1].path`) of this object.
    pub fn diag(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        let pos = self.root.locate(&parse_path(path), false);
        diag(&self.file, pos, message)
    }

    pub fn spec(&self) -> &S {
        &self.object.spec
    }
}

/// Every object of a set of manifest files, by kind and name.
#[derive(Debug, Clone, Default)]
pub struct ManifestSet {
    pub perangkat_daerah: BTreeMap<String, Located<PerangkatDaerahSpec>>,
    pub servers: BTreeMap<String, Located<ServerSpec>>,
    pub recovery_plans: BTreeMap<String, Located<RecoveryPlanSpec>>,
    pub drc_targets: BTreeMap<String, Located<DrcTargetSpec>>,
}

fn diag(file: &str, pos: Pos, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        file: file.to_string(),
        line: pos.line,
        column: pos.col,
        message: message.into(),
    }
}

/// `spec.sources[1].path` → segments.
fn parse_path(path: &str) -> Vec<Seg> {
    let mut segs = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            segs.push(Seg::Key(rest[..i].to_string()));
            rest = &rest[i..];
            while let Some(close) = rest.find(']') {
                if let Ok(n) = rest[1..close].parse() {
                    segs.push(Seg::Index(n));
                }
                rest = &rest[close + 1..];
            }
        } else {
            segs.push(Seg::Key(rest.to_string()));
        }
    }
    segs
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl ManifestSet {
    /// Reads every `*.yaml`/`*.yml` file under the given files and
    /// directories (sorted, recursively), parses and validates them.
    pub fn load(paths: &[PathBuf]) -> Result<ManifestSet, Vec<Diagnostic>> {
        let mut files = Vec::new();
        let mut diags = Vec::new();
        for p in paths {
            collect_files(p, &mut files, &mut diags);
        }
        let mut sources = Vec::new();
        for f in files {
            let name = f.display().to_string();
            match std::fs::read(&f) {
                Ok(bytes) => sources.push((name, bytes)),
                Err(e) => diags.push(diag(
                    &name,
                    Pos { line: 1, col: 1 },
                    format!("cannot read: {e}"),
                )),
            }
        }
        let result = ManifestSet::from_sources(&sources);
        match result {
            Ok(set) if diags.is_empty() => Ok(set),
            Ok(_) => Err(diags),
            Err(mut more) => {
                diags.append(&mut more);
                Err(diags)
            }
        }
    }

    /// Parses and validates named sources (file name, contents).
    pub fn from_sources(sources: &[(String, Vec<u8>)]) -> Result<ManifestSet, Vec<Diagnostic>> {
        let mut set = ManifestSet::default();
        let mut diags = Vec::new();
        for (name, bytes) in sources {
            set.add_file(name, bytes, &mut diags);
        }
        diags.extend(set.validate());
        if diags.is_empty() {
            Ok(set)
        } else {
            diags.sort();
            diags.dedup();
            Err(diags)
        }
    }

    /// Parses one file into the set; problems go to `diags`.
    pub fn add_file(&mut self, file: &str, bytes: &[u8], diags: &mut Vec<Diagnostic>) {
        let start = Pos { line: 1, col: 1 };
        if bytes.len() > MAX_FILE_BYTES {
            diags.push(diag(
                file,
                start,
                format!("file is larger than {MAX_FILE_BYTES} bytes"),
            ));
            return;
        }
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let line = bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
                    + 1;
                diags.push(diag(file, Pos { line, col: 1 }, "file is not valid UTF-8"));
                return;
            }
        };
        let docs = match yaml::parse_stream(text) {
            Ok(d) => d,
            Err(e) => {
                diags.push(diag(
                    file,
                    e.pos,
                    format!("YAML syntax error: {}", e.message),
                ));
                return;
            }
        };
        if docs.is_empty() {
            diags.push(diag(file, start, "no manifest in this file"));
        }
        for doc in docs {
            self.add_document(file, doc.root, diags);
        }
    }

    fn add_document(&mut self, file: &str, root: Node, diags: &mut Vec<Diagnostic>) {
        if !matches!(root.value, yaml::Value::Map(_)) {
            diags.push(diag(
                file,
                root.pos,
                "a manifest must be a mapping with apiVersion, kind, metadata and spec",
            ));
            return;
        }
        let kind = match root.get("kind") {
            None => {
                diags.push(diag(file, root.pos, "missing field `kind`"));
                return;
            }
            Some(k) => match k.as_str() {
                Some(s) => s.to_string(),
                None => {
                    diags.push(diag(file, k.pos, "`kind` must be a string"));
                    return;
                }
            },
        };
        match root.get("apiVersion") {
            None => {
                diags.push(diag(file, root.pos, "missing field `apiVersion`"));
                return;
            }
            Some(v) if v.as_str() != Some(API_VERSION) => {
                diags.push(diag(
                    file,
                    v.pos,
                    format!(
                        "unsupported apiVersion {}; this release reads `{API_VERSION}`",
                        v.to_json()
                    ),
                ));
                return;
            }
            Some(_) => {}
        }
        match kind.as_str() {
            "PerangkatDaerah" => insert(&mut self.perangkat_daerah, &kind, file, root, diags),
            "Server" => insert(&mut self.servers, &kind, file, root, diags),
            "RecoveryPlan" => insert(&mut self.recovery_plans, &kind, file, root, diags),
            "DrcTarget" => insert(&mut self.drc_targets, &kind, file, root, diags),
            other => {
                let pos = root.get("kind").map_or(root.pos, |k| k.pos);
                diags.push(diag(
                    file,
                    pos,
                    format!("unknown kind `{other}`; expected one of PerangkatDaerah, Server, RecoveryPlan, DrcTarget"),
                ));
            }
        }
    }

    /// Checks what spans documents: names, references, consistency.
    pub fn validate(&self) -> Vec<Diagnostic> {
        let mut d = Vec::new();
        for target in self.drc_targets.values() {
            validate_target(target, &mut d);
        }
        for pd in self.perangkat_daerah.values() {
            validate_pd(self, pd, &mut d);
        }
        for server in self.servers.values() {
            validate_server(self, server, &mut d);
        }
        for plan in self.recovery_plans.values() {
            validate_plan(self, plan, &mut d);
        }
        d
    }

    /// The object counts, for messages.
    pub fn summary(&self) -> String {
        format!(
            "{} PerangkatDaerah, {} Server, {} RecoveryPlan, {} DrcTarget",
            self.perangkat_daerah.len(),
            self.servers.len(),
            self.recovery_plans.len(),
            self.drc_targets.len()
        )
    }
}

fn collect_files(path: &Path, files: &mut Vec<PathBuf>, diags: &mut Vec<Diagnostic>) {
    let name = path.display().to_string();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            diags.push(diag(
                &name,
                Pos { line: 1, col: 1 },
                format!("cannot read: {e}"),
            ));
            return;
        }
    };
    if meta.is_file() {
        files.push(path.to_path_buf());
        return;
    }
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            diags.push(diag(
                &name,
                Pos { line: 1, col: 1 },
                format!("cannot list directory: {e}"),
            ));
            return;
        }
    };
    entries.sort();
    for e in entries {
        if e.is_dir() {
            collect_files(&e, files, diags);
        } else if matches!(e.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")) {
            files.push(e);
        }
    }
}

fn insert<S: DeserializeOwned>(
    map: &mut BTreeMap<String, Located<S>>,
    kind: &str,
    file: &str,
    root: Node,
    diags: &mut Vec<Diagnostic>,
) {
    let json = root.to_json();
    let object: Object<S> = match serde_path_to_error::deserialize(&json) {
        Ok(o) => o,
        Err(e) => {
            let mut path: Vec<Seg> = e
                .path()
                .iter()
                .filter_map(|s| match s {
                    serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
                    serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
                    serde_path_to_error::Segment::Enum { .. }
                    | serde_path_to_error::Segment::Unknown => None,
                })
                .collect();
            let message = e.inner().to_string();
            let unknown = message
                .strip_prefix("unknown field `")
                .and_then(|rest| rest.split('`').next())
                .map(str::to_string);
            if let Some(field) = &unknown
                && path.last() != Some(&Seg::Key(field.clone()))
            {
                path.push(Seg::Key(field.clone()));
            }
            let pos = root.locate(&path, unknown.is_some());
            let at = e.path().to_string();
            let message = if at == "." {
                message
            } else {
                format!("{at}: {message}")
            };
            diags.push(diag(file, pos, message));
            return;
        }
    };
    let name = object.metadata.name.clone();
    let located = Located {
        object,
        file: file.to_string(),
        root,
    };
    if !is_dns_label(&name) {
        diags.push(located.diag(
            "metadata.name",
            format!("invalid name `{name}`: use lowercase letters, digits and `-` (at most 63)"),
        ));
        return;
    }
    if let Some(first) = map.get(&name) {
        let at = first.diag("metadata.name", "");
        diags.push(located.diag(
            "metadata.name",
            format!(
                "duplicate {kind} `{name}` (first defined at {}:{}:{})",
                at.file, at.line, at.column
            ),
        ));
        return;
    }
    map.insert(name, located);
}

/// The JSON Schema of a manifest document (any kind), as committed in
/// `manifests/schema/pulih.io_v1alpha1.json`.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(AnyManifest);
    let mut value = serde_json::to_value(schema).expect("a schema serializes");
    if let Some(obj) = value.as_object_mut() {
        obj.insert(
            "$id".into(),
            "https://pulih.io/schema/v1alpha1/manifest.json".into(),
        );
        obj.insert("title".into(), "Pulih manifest (pulih.io/v1alpha1)".into());
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parsing() {
        assert_eq!(
            parse_path("spec.sources[1].path"),
            vec![
                Seg::Key("spec".into()),
                Seg::Key("sources".into()),
                Seg::Index(1),
                Seg::Key("path".into())
            ]
        );
    }

    #[test]
    fn cycles() {
        assert_eq!(find_cycle(&[vec![1], vec![]]), None);
        assert!(find_cycle(&[vec![1], vec![2], vec![0]]).is_some());
    }
}
