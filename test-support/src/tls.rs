//! A private CA (as DKIS runs its own) and a certificate it signed for
//! 127.0.0.1, for the tests of the controller's and the gateway's HTTPS.

use std::path::{Path, PathBuf};

use crate::secret::write_secret;

/// Writes `DIR/dkis-ca.pem`, `DIR/<name>.pem` (a certificate for
/// 127.0.0.1 signed by that CA) and `DIR/<name>.key` (its key, 0600);
/// returns the three paths in that order.
pub fn dkis_ca(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let (ca_file, cert_file, key_file) = (
        dir.join("dkis-ca.pem"),
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&ca_file, ca.pem()).unwrap();
    std::fs::write(&cert_file, cert.pem()).unwrap();
    write_secret(&key_file, &key.serialize_pem());
    (ca_file, cert_file, key_file)
}

/// Connects to `addr` over TLS trusting the CA in `ca_file`, offering the
/// ALPN protocols `offer`; returns the one the server agreed to, if any.
pub fn alpn_agreed(addr: &str, ca_file: &Path, offer: &[&[u8]]) -> Option<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca_file).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = offer.iter().map(|p| p.to_vec()).collect();
    let host = addr.rsplit_once(':').unwrap().0.to_string();
    let mut conn = rustls::ClientConnection::new(
        std::sync::Arc::new(config),
        ServerName::try_from(host).unwrap(),
    )
    .unwrap();
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).unwrap();
    }
    conn.alpn_protocol().map(<[u8]>::to_vec)
}
