//! The controller's request bodies (JSON, from agents, executors and ops),
//! and the revocation feed the gateway reads from it, from arbitrary bytes: every body type the API decodes is tried, never
//! a panic; a manifest apply's files go through the same parse and
//! validation the controller runs on them. What decodes re-encodes to
//! JSON that decodes again.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pulih_model::api::*;
use pulih_model::drill::{DrillReport, Teardown};
use pulih_model::manifest::ManifestSet;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trip<T: Serialize + DeserializeOwned>(data: &[u8]) -> Option<T> {
    let v: T = serde_json::from_slice(data).ok()?;
    let again = serde_json::to_vec(&v).expect("a decoded body encodes");
    serde_json::from_slice::<T>(&again).expect("an encoded body decodes");
    Some(v)
}

fuzz_target!(|data: &[u8]| {
    let _ = round_trip::<DrcHeartbeatRequest>(data);
    let _ = round_trip::<DrillReport>(data);
    let _ = round_trip::<DrillRequest>(data);
    let _ = round_trip::<EnrollRequest>(data);
    let _ = round_trip::<FailoverRequest>(data);
    let _ = round_trip::<HeartbeatRequest>(data);
    let _ = round_trip::<MaintenanceRequest>(data);
    let _ = round_trip::<PlanApproveRequest>(data);
    let _ = round_trip::<RestoreRequest>(data);
    let _ = round_trip::<RunResult>(data);
    let _ = round_trip::<RunStartRequest>(data);
    let _ = round_trip::<Teardown>(data);
    // The other way: the controller's revocation feed as the gateway reads it.
    let _ = round_trip::<pulih_gateway::floors::Feed>(data);
    if let Some(req) = round_trip::<ApplyRequest>(data) {
        let mut set = ManifestSet::default();
        let mut diags = Vec::new();
        for f in &req.files {
            set.add_file(&f.name, f.content.as_bytes(), &mut diags);
        }
        if diags.is_empty() {
            let _ = set.validate();
        }
    }
});
