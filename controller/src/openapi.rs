//! The OpenAPI 3 document of `/api/v1`, generated from the API types.

use axum::Json;
use pulih_model::api::*;
use pulih_model::routes;
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

/// (method, path, summary, request body type, response type, auth)
type Op = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
);

const OPS: &[Op] = &[
    (
        "post",
        routes::MANIFESTS,
        "Apply manifests (validated together with the applied ones; recorded as a revision)",
        Some("ApplyRequest"),
        "ApplyResponse",
        "admin",
    ),
    (
        "get",
        routes::MANIFEST_REVISIONS,
        "Manifest history: who applied what, when, the diff",
        None,
        "Revisions",
        "admin",
    ),
    (
        "get",
        routes::SERVERS,
        "Servers with centralization status and evidence (?pd=NAME)",
        None,
        "ServerViews",
        "admin",
    ),
    (
        "get",
        routes::SERVER,
        "One server",
        None,
        "ServerView",
        "admin",
    ),
    (
        "post",
        routes::SERVER_ENROLL_TOKEN,
        "Issue a one-time enrolment token for a server's agent",
        None,
        "EnrollTokenResponse",
        "admin",
    ),
    (
        "post",
        routes::SERVER_REPLICATE,
        "Queue a replication now",
        None,
        "ReplicateResponse",
        "admin",
    ),
    (
        "post",
        routes::SERVER_CLEAR_ANOMALY,
        "Clear a server's ransomware signal after looking: its flags, and its holds in the repository",
        None,
        "AnomalyCleared",
        "admin",
    ),
    (
        "post",
        routes::SERVER_VERIFY,
        "Queue a check of the server's own space in its repository (agent key: structure, headers; no data read)",
        None,
        "ReplicateResponse",
        "admin",
    ),
    (
        "post",
        routes::SERVER_RESTORE,
        "Queue a restore to a path on the server (needs a reader key the walidata gave the agent)",
        Some("RestoreRequest"),
        "ReplicateResponse",
        "admin",
    ),
    (
        "get",
        routes::MAINTENANCE,
        "Retention runs (maintenance key: forget by each server's retention, prune whole unused packs), newest first (?limit=N)",
        None,
        "MaintenanceRuns",
        "admin",
    ),
    (
        "post",
        routes::MAINTENANCE_RUN,
        "Run retention now, for every agency or one",
        Some("MaintenanceRequest"),
        "MaintenanceQueued",
        "admin",
    ),
    (
        "get",
        routes::RUNS,
        "Runs, newest first (?server=NAME&limit=N)",
        None,
        "Runs",
        "admin",
    ),
    ("get", routes::RUN, "One run", None, "Run", "admin"),
    (
        "get",
        routes::STATUS,
        "Controller and fleet summary",
        None,
        "StatusResponse",
        "admin",
    ),
    (
        "get",
        routes::COMPLIANCE,
        "Pasal 9 compliance report, per agency and overall",
        None,
        "ComplianceReport",
        "admin",
    ),
    (
        "post",
        routes::AGENT_ENROLL,
        "Enrol an agent with a one-time token",
        Some("EnrollRequest"),
        "EnrollResponse",
        "none",
    ),
    (
        "post",
        routes::AGENT_HEARTBEAT,
        "Heartbeat with facts; returns the assignment and jobs",
        Some("HeartbeatRequest"),
        "HeartbeatResponse",
        "agent",
    ),
    (
        "post",
        routes::AGENT_RUN_START,
        "Ask to start a run (concurrency caps)",
        Some("RunStartRequest"),
        "RunStartResponse",
        "agent",
    ),
    (
        "post",
        routes::AGENT_RUN_RESULT,
        "Report a run's result (idempotent)",
        Some("RunResult"),
        "Recorded",
        "agent",
    ),
    (
        "post",
        routes::SERVER_DRILL,
        "Queue a drill of a server for its DRC target's executor (needs the agency's drill consent)",
        Some("DrillRequest"),
        "DrillQueued",
        "admin",
    ),
    (
        "post",
        routes::SERVER_FAILOVER,
        "Queue a real failover of a server (the failover authorization, not the admin token; `order` names what it runs under)",
        Some("FailoverRequest"),
        "DrillQueued",
        "failover",
    ),
    (
        "post",
        routes::SERVER_FAILBACK,
        "End a server's active failover: the DRC replicates back, then the primary's agent restores in place (the failover authorization)",
        Some("FailoverRequest"),
        "DrillQueued",
        "failover",
    ),
    (
        "post",
        routes::PLAN_DRILL,
        "Drill a recovery plan: its servers' drills in group order, each group once its dependencies passed (404 `unknown_plan` when no plan has that name)",
        Some("DrillRequest"),
        "PlanRunView",
        "admin",
    ),
    (
        "post",
        routes::PLAN_FAILOVER,
        "Fail a recovery plan over: its servers' failovers in group order (the failover authorization)",
        Some("FailoverRequest"),
        "PlanRunView",
        "failover",
    ),
    (
        "get",
        routes::PLAN_RUNS,
        "Recovery plan runs, newest first (?limit=N)",
        None,
        "PlanRunViews",
        "admin",
    ),
    (
        "get",
        routes::PLAN_RUN,
        "One plan run: its groups, each with its servers' recoveries",
        None,
        "PlanRunView",
        "admin",
    ),
    (
        "post",
        routes::PLAN_RUN_RESUME,
        "Resume a stopped plan run: its failed servers are tried again (admin for a drill plan, the failover authorization for a failover plan)",
        None,
        "PlanRunView",
        "admin",
    ),
    (
        "post",
        routes::PLAN_RUN_APPROVE,
        "Approve a failover plan run awaiting approval as one of the roles its plan names (that role's approver token); the run starts once every role approved",
        Some("PlanApproveRequest"),
        "PlanRunView",
        "approver",
    ),
    (
        "post",
        routes::PLAN_RUN_ROLLBACK,
        "Roll back a stopped (or passed) failover plan run: fail back every server it brought up, later groups first; closes a stopped drill plan run",
        Some("FailoverRequest"),
        "PlanRunView",
        "failover",
    ),
    (
        "get",
        routes::DRILLS,
        "Drills, newest first (?server=NAME&limit=N)",
        None,
        "DrillViews",
        "admin",
    ),
    (
        "get",
        routes::DRILL,
        "One drill with its full report",
        None,
        "DrillView",
        "admin",
    ),
    (
        "post",
        routes::DRC_ENROLL_TOKEN,
        "Issue a one-time enrolment token for a DRC target's executor (it enrols as `drc:<target>`)",
        None,
        "EnrollTokenResponse",
        "admin",
    ),
    (
        "post",
        routes::DRC_HEARTBEAT,
        "DRC executor heartbeat: facts in, queued drills out",
        Some("DrcHeartbeatRequest"),
        "DrcHeartbeatResponse",
        "drc",
    ),
    (
        "post",
        routes::DRC_DRILL_START,
        "The executor starts a queued drill (its reader key use is audited)",
        None,
        "DrillStartResponse",
        "drc",
    ),
    (
        "post",
        routes::DRC_PLAN_TEARDOWN,
        "The executor reports what it removed of an ended drill plan run (its drills stay up for the later groups until then)",
        Some("Teardown"),
        "Recorded",
        "agent",
    ),
    (
        "post",
        routes::DRC_DRILL_REPORT,
        "The executor reports a drill's outcome",
        Some("DrillReport"),
        "Recorded",
        "drc",
    ),
    (
        "get",
        routes::GATEWAY_REVOCATIONS,
        "The append-only gateway's revocation feed: the lowest valid serial of each credential issued at enrolment",
        None,
        "GatewayRevocations",
        "gateway",
    ),
];

fn add<T: JsonSchema>(
    generator: &mut schemars::SchemaGenerator,
    name: &str,
    out: &mut serde_json::Map<String, Value>,
) {
    let s = generator.subschema_for::<T>();
    out.insert(name.to_string(), s.to_value());
}

pub fn document() -> Value {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let mut named = serde_json::Map::new();
    add::<ApplyRequest>(&mut generator, "ApplyRequest", &mut named);
    add::<ApplyResponse>(&mut generator, "ApplyResponse", &mut named);
    add::<Vec<Revision>>(&mut generator, "Revisions", &mut named);
    add::<Vec<ServerView>>(&mut generator, "ServerViews", &mut named);
    add::<ServerView>(&mut generator, "ServerView", &mut named);
    add::<EnrollTokenResponse>(&mut generator, "EnrollTokenResponse", &mut named);
    add::<ReplicateResponse>(&mut generator, "ReplicateResponse", &mut named);
    add::<AnomalyCleared>(&mut generator, "AnomalyCleared", &mut named);
    add::<RestoreRequest>(&mut generator, "RestoreRequest", &mut named);
    add::<Vec<MaintenanceRun>>(&mut generator, "MaintenanceRuns", &mut named);
    add::<MaintenanceRequest>(&mut generator, "MaintenanceRequest", &mut named);
    add::<MaintenanceQueued>(&mut generator, "MaintenanceQueued", &mut named);
    add::<Vec<Run>>(&mut generator, "Runs", &mut named);
    add::<Run>(&mut generator, "Run", &mut named);
    add::<StatusResponse>(&mut generator, "StatusResponse", &mut named);
    add::<ComplianceReport>(&mut generator, "ComplianceReport", &mut named);
    add::<EnrollRequest>(&mut generator, "EnrollRequest", &mut named);
    add::<EnrollResponse>(&mut generator, "EnrollResponse", &mut named);
    add::<HeartbeatRequest>(&mut generator, "HeartbeatRequest", &mut named);
    add::<HeartbeatResponse>(&mut generator, "HeartbeatResponse", &mut named);
    add::<RunStartRequest>(&mut generator, "RunStartRequest", &mut named);
    add::<RunStartResponse>(&mut generator, "RunStartResponse", &mut named);
    add::<RunResult>(&mut generator, "RunResult", &mut named);
    add::<DrillRequest>(&mut generator, "DrillRequest", &mut named);
    add::<DrillQueued>(&mut generator, "DrillQueued", &mut named);
    add::<FailoverRequest>(&mut generator, "FailoverRequest", &mut named);
    add::<Vec<DrillView>>(&mut generator, "DrillViews", &mut named);
    add::<DrillView>(&mut generator, "DrillView", &mut named);
    add::<PlanRunView>(&mut generator, "PlanRunView", &mut named);
    add::<Vec<PlanRunView>>(&mut generator, "PlanRunViews", &mut named);
    add::<PlanApproveRequest>(&mut generator, "PlanApproveRequest", &mut named);
    add::<DrcHeartbeatRequest>(&mut generator, "DrcHeartbeatRequest", &mut named);
    add::<DrcHeartbeatResponse>(&mut generator, "DrcHeartbeatResponse", &mut named);
    add::<DrillStartResponse>(&mut generator, "DrillStartResponse", &mut named);
    add::<pulih_model::drill::DrillReport>(&mut generator, "DrillReport", &mut named);
    add::<pulih_model::drill::Teardown>(&mut generator, "Teardown", &mut named);
    add::<pulih_model::api::GatewayRevocations>(&mut generator, "GatewayRevocations", &mut named);
    add::<ErrorBody>(&mut generator, "ErrorBody", &mut named);
    named.insert(
        "Recorded".into(),
        json!({"type": "object", "properties": {"recorded": {"type": "string"}}}),
    );
    let mut schemas: serde_json::Map<String, Value> =
        generator.take_definitions(true).into_iter().collect();
    for (k, v) in named {
        schemas.entry(k).or_insert(v);
    }
    let mut paths = serde_json::Map::new();
    for (method, path, summary, body, resp, auth) in OPS {
        let mut op = json!({
            "summary": summary,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{resp}")}}}},
                "4XX": {"description": "Client error with a stable code", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
            }
        });
        if let Some(b) = body {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{b}")}}}});
        }
        op["security"] = match *auth {
            "none" => json!([]),
            _ => json!([{"bearer": []}]),
        };
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Pulih controller API", "version": env!("CARGO_PKG_VERSION")},
        "servers": [{"url": routes::PREFIX}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "The admin token, the failover authorization, an approver's token, an agent's own credential on /agents/{server}/…, a DRC executor's on /drc/{target}/…, or the gateway's feed secret on /gateway/…"}}
        }
    })
}

pub async fn serve() -> Json<Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document describes every route the model names, and nothing
    /// else: a route added to the router without its entry here fails.
    #[test]
    fn every_route_is_documented_once() {
        let mut documented: Vec<&str> = OPS.iter().map(|op| op.1).collect();
        documented.sort();
        documented.dedup_by(|a, b| a == b);
        let mut want: Vec<&str> = routes::DOCUMENTED.to_vec();
        want.sort();
        assert_eq!(documented, want);
        let doc = document();
        for path in routes::DOCUMENTED {
            assert!(
                doc["paths"][*path].is_object(),
                "{path} is not in the document"
            );
        }
    }
}
