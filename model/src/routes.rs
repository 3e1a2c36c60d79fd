//! The controller API's route paths: the one owner of every path under
//! [`PREFIX`]. The controller's router and its OpenAPI document register
//! these templates; the API client fills them with [`path`].
//!
//! Templates use axum's `{param}` syntax, which is also OpenAPI's.

/// Every route below is under this prefix.
pub const PREFIX: &str = "/api/v1";

/// Liveness, outside [`PREFIX`].
pub const HEALTHZ: &str = "/healthz";

pub const MANIFESTS: &str = "/manifests";
pub const MANIFEST_REVISIONS: &str = "/manifests/revisions";

pub const SERVERS: &str = "/servers";
pub const SERVER: &str = "/servers/{name}";
pub const SERVER_ENROLL_TOKEN: &str = "/servers/{name}/enroll-token";
pub const SERVER_REPLICATE: &str = "/servers/{name}/replicate";
pub const SERVER_CLEAR_ANOMALY: &str = "/servers/{name}/clear-anomaly";
pub const SERVER_VERIFY: &str = "/servers/{name}/verify";
pub const SERVER_RESTORE: &str = "/servers/{name}/restore";
pub const SERVER_DRILL: &str = "/servers/{name}/drill";
pub const SERVER_FAILOVER: &str = "/servers/{name}/failover";
pub const SERVER_FAILBACK: &str = "/servers/{name}/failback";

pub const MAINTENANCE: &str = "/maintenance";
pub const MAINTENANCE_RUN: &str = "/maintenance/run";

pub const RUNS: &str = "/runs";
pub const RUN: &str = "/runs/{run_key}";
pub const STATUS: &str = "/status";
pub const COMPLIANCE: &str = "/compliance";

pub const AGENT_ENROLL: &str = "/agents/enroll";
pub const AGENT_HEARTBEAT: &str = "/agents/{server}/heartbeat";
pub const AGENT_RUN_START: &str = "/agents/{server}/runs/{run_key}/start";
pub const AGENT_RUN_RESULT: &str = "/agents/{server}/runs/{run_key}/result";

pub const PLAN_DRILL: &str = "/plans/{name}/drill";
pub const PLAN_FAILOVER: &str = "/plans/{name}/failover";
pub const PLAN_RUNS: &str = "/plan-runs";
pub const PLAN_RUN: &str = "/plan-runs/{id}";
pub const PLAN_RUN_RESUME: &str = "/plan-runs/{id}/resume";
pub const PLAN_RUN_APPROVE: &str = "/plan-runs/{id}/approve";
pub const PLAN_RUN_ROLLBACK: &str = "/plan-runs/{id}/rollback";

pub const DRILLS: &str = "/drills";
pub const DRILL: &str = "/drills/{id}";

pub const DRC_ENROLL_TOKEN: &str = "/drc/{target}/enroll-token";
pub const DRC_HEARTBEAT: &str = "/drc/{target}/heartbeat";
pub const DRC_DRILL_START: &str = "/drc/{target}/drills/{id}/start";
pub const DRC_DRILL_REPORT: &str = "/drc/{target}/drills/{id}/report";
pub const DRC_PLAN_TEARDOWN: &str = "/drc/{target}/plan-runs/{id}/teardown";

/// The append-only gateway's revocation feed (issued credentials' floors).
pub const GATEWAY_REVOCATIONS: &str = "/gateway/revocations";

pub const OPENAPI: &str = "/openapi.json";

/// Every route under [`PREFIX`] that the OpenAPI document describes (all
/// but [`OPENAPI`] itself); a test in the controller checks the document
/// against it.
pub const DOCUMENTED: &[&str] = &[
    MANIFESTS,
    MANIFEST_REVISIONS,
    SERVERS,
    SERVER,
    SERVER_ENROLL_TOKEN,
    SERVER_REPLICATE,
    SERVER_CLEAR_ANOMALY,
    SERVER_VERIFY,
    SERVER_RESTORE,
    SERVER_DRILL,
    SERVER_FAILOVER,
    SERVER_FAILBACK,
    MAINTENANCE,
    MAINTENANCE_RUN,
    RUNS,
    RUN,
    STATUS,
    COMPLIANCE,
    AGENT_ENROLL,
    AGENT_HEARTBEAT,
    AGENT_RUN_START,
    AGENT_RUN_RESULT,
    PLAN_DRILL,
    PLAN_FAILOVER,
    PLAN_RUNS,
    PLAN_RUN,
    PLAN_RUN_RESUME,
    PLAN_RUN_APPROVE,
    PLAN_RUN_ROLLBACK,
    DRILLS,
    DRILL,
    DRC_ENROLL_TOKEN,
    DRC_HEARTBEAT,
    DRC_DRILL_START,
    DRC_DRILL_REPORT,
    DRC_PLAN_TEARDOWN,
    GATEWAY_REVOCATIONS,
];

/// Fills `template`'s `{param}`s, in order, with `args` (each
/// percent-encoded as one path segment). The result is relative to
/// [`PREFIX`].
///
/// Panics if the number of `args` differs from the template's parameters:
/// that is a programming error, caught by the tests of every caller.
pub fn path(template: &str, args: &[&str]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut args = args.iter();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .unwrap_or_else(|| panic!("unclosed parameter in route {template}"));
        let arg = args
            .next()
            .unwrap_or_else(|| panic!("too few arguments for route {template}"));
        encode_segment(arg, &mut out);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    assert!(
        args.next().is_none(),
        "too many arguments for route {template}"
    );
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters and `:`.
fn encode_segment(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_parameters_in_order() {
        assert_eq!(
            path(
                AGENT_RUN_START,
                &["simpus-db", "sched-simpus-db-1700000000"]
            ),
            "/agents/simpus-db/runs/sched-simpus-db-1700000000/start"
        );
        assert_eq!(path(SERVERS, &[]), "/servers");
        assert_eq!(
            path(DRC_HEARTBEAT, &["drc-utama"]),
            "/drc/drc-utama/heartbeat"
        );
    }

    #[test]
    fn a_parameter_cannot_leave_its_segment() {
        assert_eq!(path(SERVER, &["../status"]), "/servers/..%2Fstatus");
        assert_eq!(path(SERVER, &["a b?c"]), "/servers/a%20b%3Fc");
    }

    #[test]
    #[should_panic(expected = "too few arguments")]
    fn too_few_arguments_panic() {
        path(SERVER_DRILL, &[]);
    }
}
