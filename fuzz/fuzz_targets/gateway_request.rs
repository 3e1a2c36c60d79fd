//! The gateway's request path (pulih-gateway): an arbitrary HTTP request
//! (method, path, query, headers, body) through s3s's parsing, the
//! gateway's authentication (a fuzzed Authorization header against its
//! issued-credential ids) and access checks; and the gateway's own
//! parsers of client-chosen strings (access key ids, object keys).
//! Nothing may panic. Correctly signed requests are covered by the
//! end-to-end tests (gateway/tests/append_only.rs), not reachable here.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use pulih_gateway::keys::check_key;
use pulih_gateway::state::Gateway;
use pulih_gateway::creds::Principal;

struct Harness {
    _dir: tempfile::TempDir,
    gw: Arc<Gateway>,
    rt: tokio::runtime::Runtime,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let key = d.join("key");
        std::fs::write(&key, "11".repeat(32)).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = d.join("gateway.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\nstate_dir = \"{d}/state\"\nkey_file = \"{k}\"\nupstream = \"{d}/up\"\n\
                 [[agency]]\nname = \"dinkes\"\nquota_bytes = 1000\n",
                d = d.display(),
                k = key.display()
            ),
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let gw = pulih_gateway::serve::open(&config).unwrap();
        Harness { _dir: dir, gw, rt }
    })
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let text = String::from_utf8_lossy(data);
    // The gateway's own parsers.
    let _ = Principal::parse(&text);
    let _ = check_key(&text);
    let _ = h.gw.principal(&text);

    // A request: first line "METHOD PATH?QUERY", header lines, a blank
    // line, the body.
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let first = lines.next().unwrap_or("");
    let (method, target) = first.split_once(' ').unwrap_or(("GET", first));
    let Ok(method) = http::Method::from_bytes(method.as_bytes()) else {
        return;
    };
    let target = if target.starts_with('/') {
        target.to_owned()
    } else {
        format!("/{target}")
    };
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1{target}"));
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            req = req.header(k.trim(), v.trim());
        }
    }
    let Ok(req) = req.body(s3s::Body::from(bytes::Bytes::copy_from_slice(body))) else {
        return;
    };
    let svc = pulih_gateway::serve::service(&h.gw);
    h.rt.block_on(async {
        let _ = svc.call(req).await;
    });
});
