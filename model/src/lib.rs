//! pulih-model: Pulih's domain types, with no I/O.
//!
//! [`manifest`]: the YAML manifests agencies onboard with (positioned YAML
//! → typed kinds, validation with file:line:column diagnostics, the JSON
//! Schema). [`api`]: the controller API's requests and views, shared by the
//! controller, the agents and the CLI. [`drill`]: the Docker capture record
//! a snapshot carries and the report a drill or failover leaves. [`state`]:
//! every state and kind that crosses the API or the controller's store,
//! as enums with stable strings.
//!
//! No HTTP client or server, no Docker and no repository access: the
//! engine is `pulih-core`; `agent`, `controller` and `cli` build on both.

pub mod api;
pub mod drill;
pub mod manifest;
pub mod routes;
pub mod state;
