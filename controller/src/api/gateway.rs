//! `GET /gateway/revocations`: what the append-only gateway polls to
//! refuse credentials the controller issued and replaced (docs/GATEWAY.md
//! "Revocation"). Authenticated with the secret of
//! [`FEED_ID`] under the gateway key, which only the two of them hold.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use pulih_core::gateway_creds::{FEED_ID, GatewayKey};
use pulih_model::api::GatewayRevocations;

use crate::api::{bearer, internal};
use crate::error::ApiError;
use crate::state::Shared;

pub async fn revocations(
    State(st): State<Shared>,
    headers: HeaderMap,
) -> Result<Json<GatewayRevocations>, ApiError> {
    let Some(g) = &st.config.gateway else {
        return Err(ApiError::NotFound(
            "this controller issues no gateway credentials ([gateway] key_file)".into(),
        ));
    };
    let key = GatewayKey::load(&g.key_file).map_err(internal)?;
    if !key.is_secret(FEED_ID, bearer(&headers)?) {
        return Err(ApiError::InvalidToken);
    }
    let agents = st.store.agents().map_err(internal)?;
    let d = st.desired();
    let mut floors = BTreeMap::new();
    for a in agents {
        // The serial of a credential issued at enrolment is its time.
        let serial = u32::try_from(a.enrolled_at).unwrap_or(u32::MAX);
        match a.server.strip_prefix("drc:") {
            Some(target) => floors.insert(format!("executor:{target}"), serial),
            None if d.set.servers.contains_key(&a.server) => {
                floors.insert(format!("agent:{}", a.server), serial)
            }
            // No manifest names it any more: every credential issued so
            // far is revoked (a fixed floor, so the gateway's cache does
            // not change with every ask); one enrolled after it is added
            // again is not.
            None => floors.insert(format!("agent:{}", a.server), serial.saturating_add(1)),
        };
    }
    Ok(Json(GatewayRevocations {
        generated_at: st.now(),
        floors,
    }))
}
