//! A recovery container's published port (`ports:` in a Server's recovery
//! spec), parsed once here and used as the same typed value by validation
//! and by the DRC executor that publishes it.
//!
//! The forms Docker users write are accepted: `HOST:CONTAINER`,
//! `IP:HOST:CONTAINER` (publish on one address only), `[IPv6]:HOST:CONTAINER`,
//! each with an optional `/tcp` or `/udp`. Port ranges (`8000-8010:8000-8010`)
//! and a bare `CONTAINER` (a random host port, which no DNS switch could
//! follow) are refused with a message that says so.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// One published port: `[IP:]HOST:CONTAINER[/PROTOCOL]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortMapping {
    /// Publish on this address only (all addresses when `None`).
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
    /// Whether the text named the protocol (kept so it prints back as written).
    explicit_protocol: bool,
}

impl PortMapping {
    /// The engine's key for the container side: `8080/tcp`.
    pub fn container_key(&self) -> String {
        format!("{}/{}", self.container_port, self.protocol.as_str())
    }
}

fn port(text: &str, what: &str, whole: &str) -> Result<u16, String> {
    if text.contains('-') {
        return Err(format!(
            "port `{whole}`: port ranges are not supported; list each port on its own"
        ));
    }
    match text.parse::<u16>() {
        Ok(0) => Err(format!("port `{whole}`: the {what} port must be 1-65535")),
        Ok(p) => Ok(p),
        Err(_) => Err(format!(
            "port `{whole}`: the {what} port `{text}` is not a number 1-65535"
        )),
    }
}

impl FromStr for PortMapping {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let form = "write HOST:CONTAINER, IP:HOST:CONTAINER or [IPv6]:HOST:CONTAINER, optionally with /tcp or /udp";
        let (mapping, protocol, explicit_protocol) = match s.rsplit_once('/') {
            Some((m, "tcp")) => (m, Protocol::Tcp, true),
            Some((m, "udp")) => (m, Protocol::Udp, true),
            Some((_, other)) => {
                return Err(format!(
                    "port `{s}`: unknown protocol `{other}` (tcp or udp)"
                ));
            }
            None => (s, Protocol::Tcp, false),
        };
        // The address, if any, ends at the second-to-last colon; an IPv6
        // address is written in brackets.
        let (ip_text, ports) = if let Some(rest) = mapping.strip_prefix('[') {
            let Some((ip, after)) = rest.split_once(']') else {
                return Err(format!(
                    "port `{s}`: unclosed `[` around the address; {form}"
                ));
            };
            let Some(ports) = after.strip_prefix(':') else {
                return Err(format!("port `{s}`: {form}"));
            };
            (Some(ip), ports)
        } else {
            match mapping.matches(':').count() {
                0 => {
                    return Err(format!(
                        "port `{s}`: give the host port too (a random host port cannot be failed over to); {form}"
                    ));
                }
                1 => (None, mapping),
                2 => {
                    let (ip, ports) = mapping.split_once(':').expect("two colons");
                    (Some(ip), ports)
                }
                _ => {
                    return Err(format!(
                        "port `{s}`: write an IPv6 address in brackets, e.g. `[::1]:8080:80`"
                    ));
                }
            }
        };
        let host_ip = match ip_text {
            None => None,
            Some(ip) => Some(
                ip.parse::<IpAddr>()
                    .map_err(|_| format!("port `{s}`: `{ip}` is not an IP address; {form}"))?,
            ),
        };
        let Some((host, container)) = ports.split_once(':') else {
            return Err(format!("port `{s}`: {form}"));
        };
        if container.contains(':') {
            return Err(format!("port `{s}`: {form}"));
        }
        Ok(PortMapping {
            host_ip,
            host_port: port(host, "host", s)?,
            container_port: port(container, "container", s)?,
            protocol,
            explicit_protocol,
        })
    }
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:")?,
            Some(IpAddr::V4(ip)) => write!(f, "{ip}:")?,
            None => {}
        }
        write!(f, "{}:{}", self.host_port, self.container_port)?;
        if self.explicit_protocol {
            write!(f, "/{}", self.protocol.as_str())?;
        }
        Ok(())
    }
}

impl Serialize for PortMapping {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for PortMapping {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for PortMapping {
    fn schema_name() -> Cow<'static, str> {
        "PortMapping".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A published port: HOST:CONTAINER, IP:HOST:CONTAINER or [IPv6]:HOST:CONTAINER, optionally with /tcp or /udp (e.g. `8443:8443`, `127.0.0.1:16379:6379/tcp`). Used on failover, not in drills.",
            "pattern": "^(([0-9.]+|\\[[0-9A-Fa-f:.]+\\]):)?[0-9]+:[0-9]+(/(tcp|udp))?$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> PortMapping {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn docker_forms_parse_and_print_back() {
        for (text, ip, host, container, proto) in [
            ("8443:8443", None, 8443, 8443, Protocol::Tcp),
            ("80:8080", None, 80, 8080, Protocol::Tcp),
            (
                "127.0.0.1:16379:6379",
                Some("127.0.0.1"),
                16379,
                6379,
                Protocol::Tcp,
            ),
            ("53:53/udp", None, 53, 53, Protocol::Udp),
            (
                "10.0.0.5:443:8443/tcp",
                Some("10.0.0.5"),
                443,
                8443,
                Protocol::Tcp,
            ),
            ("[::1]:8080:80", Some("::1"), 8080, 80, Protocol::Tcp),
            (
                "[fd00::5]:53:53/udp",
                Some("fd00::5"),
                53,
                53,
                Protocol::Udp,
            ),
        ] {
            let p = ok(text);
            assert_eq!(p.host_ip, ip.map(|i| i.parse().unwrap()), "{text}");
            assert_eq!(
                (p.host_port, p.container_port, p.protocol),
                (host, container, proto),
                "{text}"
            );
            assert_eq!(p.to_string(), text);
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<PortMapping>(&json).unwrap(), p);
        }
        assert_eq!(ok("127.0.0.1:16379:6379").container_key(), "6379/tcp");
        assert_eq!(ok("53:53/udp").container_key(), "53/udp");
    }

    #[test]
    fn what_cannot_run_is_refused_with_the_reason() {
        for (text, want) in [
            ("8080", "give the host port too"),
            ("8000-8010:8000-8010", "port ranges are not supported"),
            ("127.0.0.1:8000-8001:80", "port ranges are not supported"),
            ("0:80", "the host port must be 1-65535"),
            ("80:70000", "the container port `70000` is not a number"),
            ("http:80", "the host port `http` is not a number"),
            ("80:80/sctp", "unknown protocol `sctp`"),
            ("::1:8080:80", "IPv6 address in brackets"),
            ("[::1:8080:80", "unclosed `[`"),
            ("nohost:8080:80", "`nohost` is not an IP address"),
            ("[127.0.0.1:80:80", "unclosed"),
            ("1.2.3.4:5:6:7", "IPv6 address in brackets"),
            ("", "give the host port too"),
        ] {
            let e = text.parse::<PortMapping>().unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
