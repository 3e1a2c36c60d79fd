//! Manifests: how agencies onboard (DESIGN.md §5).
//!
//! [`parse`] reads YAML text (one or many documents per file) into typed
//! objects; [`ManifestSet::validate`] checks what no single document can
//! (references, duplicates, Pasal 9 consistency). Every problem becomes a
//! [`Diagnostic`] naming file, line and column; all problems of a run are
//! reported together, and no input makes this code panic (fuzzed by
//! `fuzz/fuzz_targets/manifest.rs`).

pub mod types;
pub mod values;
pub mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub use types::*;
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

fn validate_target(t: &Located<DrcTargetSpec>, d: &mut Vec<Diagnostic>) {
    let url = &t.spec().url;
    let ok = url.starts_with('/')
        || url.starts_with("file://")
        || url.starts_with("memory://")
        || (url.starts_with("s3://") && url::Url::parse(url).is_ok_and(|u| u.host_str().is_some()));
    if !ok {
        d.push(t.diag(
            "spec.url",
            format!("invalid store URL `{url}`: use an absolute path, file:///PATH or s3://BUCKET/PREFIX?endpoint=…"),
        ));
    }
    if t.spec().max_concurrent_jobs == Some(0) {
        d.push(t.diag(
            "spec.maxConcurrentJobs",
            "maxConcurrentJobs must be at least 1",
        ));
    }
}

fn validate_pd(set: &ManifestSet, pd: &Located<PerangkatDaerahSpec>, d: &mut Vec<Diagnostic>) {
    let spec = pd.spec();
    if spec.code.trim().is_empty() {
        d.push(pd.diag("spec.code", "code must not be empty"));
    }
    if !set.drc_targets.contains_key(&spec.drc_target) {
        d.push(pd.diag(
            "spec.drcTarget",
            format!(
                "DrcTarget `{}` is not defined in these manifests",
                spec.drc_target
            ),
        ));
    }
    if let Some(key) = &spec.walidata.public_key
        && key.parse::<age::x25519::Recipient>().is_err()
    {
        d.push(pd.diag(
            "spec.walidata.publicKey",
            "publicKey is not an age X25519 public key (`age1…`)",
        ));
    }
    if let Some(w) = &spec.replication_window
        && w.start == w.end
    {
        d.push(pd.diag(
            "spec.replicationWindow",
            "replication window start and end are equal",
        ));
    }
    if spec.max_concurrent_jobs == Some(0) {
        d.push(pd.diag(
            "spec.maxConcurrentJobs",
            "maxConcurrentJobs must be at least 1",
        ));
    }
    if let Some(drills) = &spec.drills
        && drills.schedule.is_some()
        && !drills.consent
    {
        d.push(pd.diag(
            "spec.drills.schedule",
            "a drill schedule needs `consent: true` from the walidata",
        ));
    }
}

fn validate_server(set: &ManifestSet, s: &Located<ServerSpec>, d: &mut Vec<Diagnostic>) {
    let spec = s.spec();
    if !set.perangkat_daerah.contains_key(&spec.perangkat_daerah) {
        d.push(s.diag(
            "spec.perangkatDaerah",
            format!(
                "PerangkatDaerah `{}` is not defined in these manifests",
                spec.perangkat_daerah
            ),
        ));
    }
    let c = &spec.centralization;
    match c.status {
        CentralizationStatus::Centralized if spec.location != Location::PusatData => {
            d.push(s.diag(
                "spec.location",
                "the server is declared centralized but its location is not `pusat-data` (Pasal 9)",
            ))
        }
        CentralizationStatus::Migrating | CentralizationStatus::Pending if c.deadline.is_none() => {
            d.push(s.diag(
                "spec.centralization",
                "a `migrating` or `pending` server needs a `deadline` (YYYY-MM-DD)",
            ))
        }
        CentralizationStatus::Exempt
            if c.legal_basis.as_deref().is_none_or(|b| b.trim().is_empty()) =>
        {
            d.push(s.diag(
                "spec.centralization",
                "an `exempt` server needs a `legalBasis`",
            ))
        }
        _ => {}
    }
    if spec.sources.is_empty() {
        d.push(s.diag("spec.sources", "at least one source is required"));
    }
    for (i, src) in spec.sources.iter().enumerate() {
        let at = format!("spec.sources[{i}]");
        let set_count = [
            src.path.is_some(),
            src.docker_volume.is_some(),
            src.docker_container.is_some(),
            src.dump.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if set_count != 1 {
            d.push(s.diag(
                &at,
                format!("a source sets exactly one of path, dockerVolume, dockerContainer, dump (this one sets {set_count})"),
            ));
        }
        if let Some(p) = &src.path
            && !p.starts_with('/')
        {
            d.push(s.diag(
                &format!("{at}.path"),
                format!("source path `{p}` must be absolute"),
            ));
        }
        if let Some(dump) = &src.dump {
            if dump.command.is_empty() {
                d.push(s.diag(
                    &format!("{at}.dump.command"),
                    "dump command must not be empty",
                ));
            }
            if dump.file_name.is_empty()
                || dump.file_name.contains('/')
                || dump.file_name.starts_with('.')
            {
                d.push(s.diag(
                    &format!("{at}.dump.fileName"),
                    format!("fileName `{}` must be a plain file name", dump.file_name),
                ));
            }
        }
        if !src.exclude.is_empty() && src.path.is_none() {
            d.push(s.diag(
                &format!("{at}.exclude"),
                "exclude applies to path sources only",
            ));
        }
    }
    if let Some(hooks) = &spec.hooks {
        for (phase, list) in [("pre", &hooks.pre), ("post", &hooks.post)] {
            for (i, h) in list.iter().enumerate() {
                if h.command.is_empty() == h.pause.is_none() {
                    d.push(s.diag(
                        &format!("spec.hooks.{phase}[{i}]"),
                        "a hook sets exactly one of `command` or `pause`",
                    ));
                }
            }
        }
    }
    if let Some(r) = &spec.retention
        && *r == Retention::default()
    {
        d.push(s.diag(
            "spec.retention",
            "retention keeps nothing; set at least one keep* field",
        ));
    }
    if let Some(rec) = &spec.recovery {
        validate_recovery(s, rec, d);
    }
}

fn validate_recovery(s: &Located<ServerSpec>, rec: &RecoverySpec, d: &mut Vec<Diagnostic>) {
    let mut names = BTreeSet::new();
    for (i, c) in rec.containers.iter().enumerate() {
        if !is_dns_label(&c.name) {
            d.push(s.diag(
                &format!("spec.recovery.containers[{i}].name"),
                format!(
                    "invalid container name `{}`: use lowercase letters, digits and `-`",
                    c.name
                ),
            ));
        }
        if !names.insert(c.name.as_str()) {
            d.push(s.diag(
                &format!("spec.recovery.containers[{i}].name"),
                format!("duplicate container name `{}`", c.name),
            ));
        }
        let sources: BTreeSet<&str> = s
            .spec()
            .sources
            .iter()
            .filter_map(|src| src.docker_volume.as_deref().or(src.path.as_deref()))
            .collect();
        for (j, v) in c.volumes.iter().enumerate() {
            if !sources.contains(v.source.as_str()) {
                d.push(s.diag(
                    &format!("spec.recovery.containers[{i}].volumes[{j}].source"),
                    format!(
                        "volume source `{}` is not a dockerVolume or path of this server's sources",
                        v.source
                    ),
                ));
            }
        }
    }
    for (i, h) in rec.health_checks.iter().enumerate() {
        let at = format!("spec.recovery.healthChecks[{i}]");
        let kinds = [h.http.is_some(), h.tcp.is_some(), h.exec.is_some()];
        if kinds.iter().filter(|b| **b).count() != 1 {
            d.push(s.diag(&at, "a health check sets exactly one of http, tcp, exec"));
        }
        let container = h
            .http
            .as_ref()
            .map(|x| (x.container.as_str(), "http"))
            .or(h.tcp.as_ref().map(|x| (x.container.as_str(), "tcp")))
            .or(h.exec.as_ref().map(|x| (x.container.as_str(), "exec")));
        if let Some((c, kind)) = container
            && !names.contains(c)
        {
            d.push(s.diag(
                &format!("{at}.{kind}.container"),
                format!("container `{c}` is not one of spec.recovery.containers"),
            ));
        }
    }
}

fn validate_plan(set: &ManifestSet, p: &Located<RecoveryPlanSpec>, d: &mut Vec<Diagnostic>) {
    let spec = p.spec();
    if set.servers.contains_key(p.name()) {
        d.push(p.diag(
            "metadata.name",
            format!(
                "a Server is named `{}` too; `pulih drill run NAME` and `pulih failover start NAME` take either, so a plan needs a name of its own",
                p.name()
            ),
        ));
    }
    if spec.groups.is_empty() {
        d.push(p.diag("spec.groups", "a recovery plan needs at least one group"));
    }
    let mut names = BTreeMap::new();
    for (i, g) in spec.groups.iter().enumerate() {
        if g.name == "rollback" {
            d.push(p.diag(
                &format!("spec.groups[{i}].name"),
                "`rollback` is reserved (a run's rollback is recorded under it); name the group otherwise",
            ));
        }
        if names.insert(g.name.as_str(), i).is_some() {
            d.push(p.diag(
                &format!("spec.groups[{i}].name"),
                format!("duplicate group `{}`", g.name),
            ));
        }
        if g.servers.is_empty() {
            d.push(p.diag(
                &format!("spec.groups[{i}].servers"),
                "a group needs at least one server",
            ));
        }
        for (j, srv) in g.servers.iter().enumerate() {
            if let Some(first) = spec.groups[..i]
                .iter()
                .find(|o| o.servers.contains(srv))
                .or_else(|| g.servers[..j].contains(srv).then_some(g))
            {
                d.push(p.diag(
                    &format!("spec.groups[{i}].servers[{j}]"),
                    format!(
                        "Server `{srv}` is already in group `{}` of this plan (a server is recovered once per run)",
                        first.name
                    ),
                ));
            }
            if !set.servers.contains_key(srv) {
                d.push(p.diag(
                    &format!("spec.groups[{i}].servers[{j}]"),
                    format!("Server `{srv}` is not defined in these manifests"),
                ));
            }
        }
    }
    // Dependencies: must name groups of this plan, and form no cycle.
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); spec.groups.len()];
    for (i, g) in spec.groups.iter().enumerate() {
        for (j, dep) in g.depends_on.iter().enumerate() {
            match names.get(dep.as_str()) {
                Some(&k) if k == i => d.push(p.diag(
                    &format!("spec.groups[{i}].dependsOn[{j}]"),
                    format!("group `{dep}` depends on itself"),
                )),
                // Groups start in the plan's order: a dependency comes first.
                Some(&k) if k > i => {
                    d.push(p.diag(
                        &format!("spec.groups[{i}].dependsOn[{j}]"),
                        format!(
                            "group `{dep}` is listed after `{}`; groups start in the order they are listed, so list the groups a group depends on before it",
                            g.name
                        ),
                    ));
                    edges[i].push(k);
                }
                Some(&k) => edges[i].push(k),
                None => d.push(p.diag(
                    &format!("spec.groups[{i}].dependsOn[{j}]"),
                    format!("group `{dep}` is not a group of this plan"),
                )),
            }
        }
    }
    if let Some(i) = find_cycle(&edges) {
        d.push(p.diag(
            &format!("spec.groups[{i}].dependsOn"),
            format!(
                "group `{}` is part of a dependency cycle",
                spec.groups[i].name
            ),
        ));
    }
    for (i, r) in spec.approvals.iter().enumerate() {
        if spec.approvals[..i].contains(r) {
            d.push(p.diag(
                &format!("spec.approvals[{i}]"),
                format!("`{}` is named twice (each role approves once)", r.as_str()),
            ));
        }
    }
    // A run records each step's outcome by name, so names are unique.
    for (field, steps) in [
        ("preSteps", &spec.pre_steps),
        ("postSteps", &spec.post_steps),
    ] {
        for (i, st) in steps.iter().enumerate() {
            if st.name.trim().is_empty() {
                d.push(p.diag(&format!("spec.{field}[{i}].name"), "a step needs a name"));
            } else if steps[..i].iter().any(|o| o.name == st.name) {
                d.push(p.diag(
                    &format!("spec.{field}[{i}].name"),
                    format!("duplicate step `{}` in {field}", st.name),
                ));
            }
            if st.command.first().is_none_or(|c| c.is_empty()) {
                d.push(p.diag(
                    &format!("spec.{field}[{i}].command"),
                    "a step needs a command: the program and its arguments, e.g. [/usr/local/bin/status-page, set, degraded]",
                ));
            }
        }
    }
}

/// A node on a cycle of `edges`, if any (iterative three-colour DFS).
fn find_cycle(edges: &[Vec<usize>]) -> Option<usize> {
    let mut state = vec![0u8; edges.len()]; // 0 new, 1 on stack, 2 done
    for start in 0..edges.len() {
        if state[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        state[start] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&to) = edges[node].get(*next) {
                *next += 1;
                match state[to] {
                    1 => return Some(to),
                    0 => {
                        state[to] = 1;
                        stack.push((to, 0));
                    }
                    _ => {}
                }
            } else {
                state[node] = 2;
                stack.pop();
            }
        }
    }
    None
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
