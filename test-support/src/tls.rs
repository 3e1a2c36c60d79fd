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
