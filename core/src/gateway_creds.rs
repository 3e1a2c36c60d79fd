//! Credentials of the append-only DRC gateway (pulih-gateway,
//! docs/GATEWAY.md), here so that the controller can issue them at
//! enrolment. An access key id names its holder —
//! `PLH.agent.<agency>.<server>.<serial>`, `PLH.reader.<agency>.<serial>`,
//! `PLH.executor.<target>.<serial>` — and its secret is
//! HMAC-SHA256(gateway key, access key id), so whoever holds the gateway
//! key (`pulih drc credential`) issues a credential without the gateway
//! storing anything, and the gateway checks one without a database: the
//! role in the id is believed only because no one without the key can
//! compute its secret. A credential is withdrawn by listing its id under
//! `revoked` in the gateway's config; a new serial issues a fresh one.
//! The maintenance credential is never derived: it is set in the config.

use std::fmt;

use ring::hmac;
use zeroize::Zeroizing;

/// Who a request comes from, as its access key id says.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Principal {
    /// A PD server's agent: reads its agency's bucket, writes new objects.
    Agent {
        agency: String,
        server: String,
        serial: u32,
    },
    /// The agency's walidata (`pulih repo …`): reads, writes new objects.
    Reader { agency: String, serial: u32 },
    /// A DRC target's executor: reads and writes new objects in the
    /// buckets of the agencies that granted it (config `executors`).
    Executor { target: String, serial: u32 },
    /// The configured maintenance credential: may also delete, never an
    /// object younger than the retention floor.
    Maintenance,
}

const PREFIX: &str = "PLH.";

/// Refuses a name that is not a DNS label (what manifests allow).
pub fn check_name(what: &str, s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} `{s}`: use lowercase letters, digits and `-` (at most 63)"
        ))
    }
}

impl Principal {
    /// The principal an issued access key id names; None for any other id.
    pub fn parse(akid: &str) -> Option<Principal> {
        let rest = akid.strip_prefix(PREFIX)?;
        let parts: Vec<&str> = rest.split('.').collect();
        let name = |s: &str| check_name("", s).ok().map(|_| s.to_owned());
        let serial = |s: &str| {
            // Canonical decimal only: one id, one spelling.
            s.parse::<u32>().ok().filter(|n| n.to_string() == s)
        };
        match parts.as_slice() {
            ["agent", a, s, n] => Some(Principal::Agent {
                agency: name(a)?,
                server: name(s)?,
                serial: serial(n)?,
            }),
            ["reader", a, n] => Some(Principal::Reader {
                agency: name(a)?,
                serial: serial(n)?,
            }),
            ["executor", t, n] => Some(Principal::Executor {
                target: name(t)?,
                serial: serial(n)?,
            }),
            _ => None,
        }
    }

    /// The access key id of an issued credential (None for maintenance).
    pub fn access_key_id(&self) -> Option<String> {
        Some(match self {
            Principal::Agent {
                agency,
                server,
                serial,
            } => format!("{PREFIX}agent.{agency}.{server}.{serial}"),
            Principal::Reader { agency, serial } => format!("{PREFIX}reader.{agency}.{serial}"),
            Principal::Executor { target, serial } => {
                format!("{PREFIX}executor.{target}.{serial}")
            }
            Principal::Maintenance => return None,
        })
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Agent { agency, server, .. } => write!(f, "agent {agency}/{server}"),
            Principal::Reader { agency, .. } => write!(f, "reader of {agency}"),
            Principal::Executor { target, .. } => write!(f, "executor of {target}"),
            Principal::Maintenance => write!(f, "maintenance"),
        }
    }
}

/// The gateway key every issued secret is derived from.
pub struct GatewayKey(hmac::Key);

impl GatewayKey {
    /// Reads a key file: 64 hex digits, readable by its owner only.
    pub fn load(path: &std::path::Path) -> crate::Result<GatewayKey> {
        let text = crate::storage::read_secret_file(path)?;
        let bytes = Zeroizing::new(
            hex::decode(text.trim())
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| {
                    crate::Error::Invalid(format!(
                        "{}: a gateway key is 64 hex digits (make one with `pulih drc gateway-key`)",
                        path.display()
                    ))
                })?,
        );
        Ok(GatewayKey(hmac::Key::new(hmac::HMAC_SHA256, &bytes)))
    }

    /// A new random key, as 64 hex digits.
    pub fn generate() -> String {
        use rand::RngCore;
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        hex::encode(k)
    }

    /// The secret of an issued access key id.
    pub fn secret(&self, akid: &str) -> String {
        hex::encode(hmac::sign(&self.0, akid.as_bytes()).as_ref())
    }

    /// Whether `presented` is `akid`'s secret (constant time).
    pub fn is_secret(&self, akid: &str, presented: &str) -> bool {
        hex::decode(presented.trim())
            .is_ok_and(|tag| hmac::verify(&self.0, akid.as_bytes(), &tag).is_ok())
    }
}

/// The id whose secret the gateway shows the controller to read the
/// revocation feed (`GET /api/v1/gateway/revocations`): both hold the
/// gateway key, so no other secret is handed out for it.
pub const FEED_ID: &str = "PLH.feed";

/// The key of a principal in the revocation feed: `agent:<server>`,
/// `executor:<target>` (None for readers and maintenance, which the
/// controller does not issue).
pub fn feed_key(p: &Principal) -> Option<String> {
    match p {
        Principal::Agent { server, .. } => Some(format!("agent:{server}")),
        Principal::Executor { target, .. } => Some(format!("executor:{target}")),
        _ => None,
    }
}

/// The serial of an issued principal.
pub fn serial(p: &Principal) -> Option<u32> {
    match p {
        Principal::Agent { serial, .. }
        | Principal::Reader { serial, .. }
        | Principal::Executor { serial, .. } => Some(*serial),
        Principal::Maintenance => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_odd_ids_name_no_one() {
        for p in [
            Principal::Agent {
                agency: "dinkes".into(),
                server: "srv-1".into(),
                serial: 3,
            },
            Principal::Reader {
                agency: "dinkes".into(),
                serial: 1,
            },
            Principal::Executor {
                target: "drc-bontang".into(),
                serial: 0,
            },
        ] {
            let id = p.access_key_id().unwrap();
            assert_eq!(Principal::parse(&id), Some(p));
        }
        for bad in [
            "PLH.agent.dinkes.srv.01",
            "PLH.agent.Dinkes.srv.1",
            "PLH.agent.dinkes.srv",
            "PLH.maintenance.x.1",
            "PLH.reader.dinkes.1.2",
            "plh.reader.dinkes.1",
            "PLH.reader..1",
            "AKIAEXAMPLE",
        ] {
            assert_eq!(Principal::parse(bad), None, "{bad}");
        }
    }
}
