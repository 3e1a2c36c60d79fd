//! The test images, made on this machine by `tests/images/*.sh` (`docker
//! import` of local files): no registry is used. Each script reuses an
//! image it already made.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::run_ok;

/// A static busybox (httpd, wget, sh): the app of most drill tests.
pub const BUSYBOX: &str = "pulih-test/busybox:1";
/// PostgreSQL 15 from Debian's packages, and busybox for a web app.
pub const POSTGRES: &str = "pulih-test/postgres:15";

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/images")
        .join(name)
}

fn build(name: &str, args: &[&str]) -> String {
    let out = run_ok(Command::new("bash").arg(script(name)).args(args));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Builds [`BUSYBOX`] (tests/images/busybox-app.sh) and returns its name.
pub fn busybox() -> &'static str {
    build("busybox-app.sh", &[BUSYBOX]);
    BUSYBOX
}

/// Builds [`POSTGRES`] (tests/images/debian-postgres.sh, debootstrap:
/// about a minute the first time) and returns its name.
pub fn postgres() -> &'static str {
    build("debian-postgres.sh", &[POSTGRES]);
    POSTGRES
}

/// Builds `pulih-test/garage:VERSION` from the garage binary `bin`.
pub fn garage(bin: &str, version: &str) -> String {
    let image = format!("pulih-test/garage:{version}");
    build("garage-image.sh", &[&image, bin]);
    image
}

/// Builds an image holding the `pulih` binary `bin`; returns its name.
pub fn pulih(bin: &str) -> String {
    build("pulih-image.sh", &[bin])
}
