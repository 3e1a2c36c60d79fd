//! `POST /manifests` (apply, with history) and `GET /manifests/revisions`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use pulih_model::api::{ApplyRequest, ApplyResponse, ObjectChange, Revision};
use pulih_model::manifest::{Located, ManifestSet};
use serde::Serialize;

use super::{ApiJson, Authorize, internal};
use crate::compliance::rfc3339;
use crate::desired::{from_stored, stored_name};
use crate::error::ApiError;
use crate::state::{Desired, Shared};
use crate::store::StoredObject;

/// (kind, name) → the object as a JSON value.
fn objects_of(set: &ManifestSet) -> BTreeMap<(String, String), serde_json::Value> {
    fn add<S: Serialize>(
        out: &mut BTreeMap<(String, String), serde_json::Value>,
        kind: &str,
        m: &BTreeMap<String, Located<S>>,
    ) {
        for (name, o) in m {
            let v = serde_json::to_value(&o.object).unwrap_or_default();
            out.insert((kind.to_string(), name.clone()), v);
        }
    }
    let mut out = BTreeMap::new();
    add(&mut out, "PerangkatDaerah", &set.perangkat_daerah);
    add(&mut out, "Server", &set.servers);
    add(&mut out, "RecoveryPlan", &set.recovery_plans);
    add(&mut out, "DrcTarget", &set.drc_targets);
    out
}

/// The JSON paths where `a` and `b` differ.
fn diff_paths(a: &serde_json::Value, b: &serde_json::Value, at: &str, out: &mut Vec<String>) {
    use serde_json::Value::{Array, Object};
    match (a, b) {
        (Object(x), Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => diff_paths(p, q, &path, out),
                    _ => out.push(path),
                }
            }
        }
        (Array(x), Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff_paths(p, q, &format!("{at}[{i}]"), out);
            }
        }
        _ if a != b => out.push(at.to_string()),
        _ => {}
    }
}

pub async fn apply(
    State(st): State<Shared>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<ApplyRequest>,
) -> Result<Json<ApplyResponse>, ApiError> {
    let actor = st.require_admin(&headers)?;
    if req.files.is_empty() {
        return Err(ApiError::InvalidBody(
            "no manifest files in the request".into(),
        ));
    }
    // Parse the new files alone first: their own problems, with their positions.
    let mut incoming = ManifestSet::default();
    let mut diags = Vec::new();
    for f in &req.files {
        incoming.add_file(&f.name, f.content.as_bytes(), &mut diags);
    }
    if !diags.is_empty() {
        diags.sort();
        return Err(ApiError::InvalidManifests(diags));
    }
    let new_objects = objects_of(&incoming);
    // Then the whole desired state after this apply: stored objects not
    // replaced, plus the new files, validated together (references).
    let stored = st.store.objects().map_err(internal)?;
    let mut merged = ManifestSet::default();
    for o in &stored {
        if !new_objects.contains_key(&(o.kind.clone(), o.name.clone())) {
            merged.add_file(
                &stored_name(&o.kind, &o.name),
                o.json.as_bytes(),
                &mut diags,
            );
        }
    }
    for f in &req.files {
        merged.add_file(&f.name, f.content.as_bytes(), &mut diags);
    }
    diags.extend(merged.validate());
    if !diags.is_empty() {
        diags.sort();
        diags.dedup();
        return Err(ApiError::InvalidManifests(diags));
    }
    let old: BTreeMap<(String, String), serde_json::Value> = stored
        .iter()
        .map(|o| {
            let v = serde_json::from_str(&o.json).unwrap_or_default();
            ((o.kind.clone(), o.name.clone()), v)
        })
        .collect();
    let mut changes = Vec::new();
    let mut to_write = Vec::new();
    for ((kind, name), v) in &new_objects {
        let (change, fields) = match old.get(&(kind.clone(), name.clone())) {
            None => ("created", Vec::new()),
            Some(prev) if prev == v => ("unchanged", Vec::new()),
            Some(prev) => {
                let mut f = Vec::new();
                diff_paths(prev, v, "", &mut f);
                ("updated", f)
            }
        };
        if change != "unchanged" {
            to_write.push(StoredObject {
                kind: kind.clone(),
                name: name.clone(),
                json: v.to_string(),
            });
        }
        changes.push(ObjectChange {
            kind: kind.clone(),
            name: name.clone(),
            change: change.to_string(),
            fields,
        });
    }
    if req.dry_run || to_write.is_empty() {
        return Ok(Json(ApplyResponse {
            revision: None,
            changes,
        }));
    }
    let applied_by = match &req.reported_by {
        Some(who) => format!("{actor} ({who})"),
        None => actor.to_string(),
    };
    let t = st.now();
    let real_changes: Vec<ObjectChange> = changes
        .iter()
        .filter(|c| c.change != "unchanged")
        .cloned()
        .collect();
    let rev = st
        .store
        .apply(&to_write, &applied_by, &real_changes, t)
        .map_err(internal)?;
    st.store
        .audit(
            actor,
            "manifests.apply",
            &format!("revision {rev}: {} object(s) changed", to_write.len()),
            t,
        )
        .map_err(internal)?;
    let all = st.store.objects().map_err(internal)?;
    let set = from_stored(&all)
        .map_err(|d| ApiError::Internal(format!("stored manifests no longer parse: {}", d[0])))?;
    *st.desired.write().unwrap_or_else(|p| p.into_inner()) = Desired {
        set,
        revision: Some(rev),
    };
    tracing::info!(revision = rev, changed = to_write.len(), by = %applied_by, "manifests applied");
    Ok(Json(ApplyResponse {
        revision: Some(rev),
        changes,
    }))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    #[serde(default)]
    limit: Option<u32>,
}

pub async fn revisions(
    State(st): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<Limit>,
) -> Result<Json<Vec<Revision>>, ApiError> {
    st.require_admin(&headers)?;
    let revs = st
        .store
        .revisions(q.limit.unwrap_or(50).min(1000))
        .map_err(internal)?;
    Ok(Json(
        revs.into_iter()
            .map(|r| Revision {
                id: r.id,
                applied_at: rfc3339(r.applied_at),
                applied_by: r.applied_by,
                changes: r.changes,
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_changed_paths() {
        let a = serde_json::json!({"spec": {"rpo": "24h", "sources": [{"path": "/a"}]}});
        let b =
            serde_json::json!({"spec": {"rpo": "12h", "sources": [{"path": "/a"}], "rto": "4h"}});
        let mut out = Vec::new();
        diff_paths(&a, &b, "", &mut out);
        assert_eq!(out, vec!["spec.rpo", "spec.rto"]);
    }
}
