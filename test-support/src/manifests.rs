//! Manifests for the end-to-end tests: the DRC target and the agencies
//! that most tests declare before their own servers, and the directory
//! that `pulih apply -f` and `pulih drc drill -f` read.

use std::path::{Path, PathBuf};

/// An agency (Perangkat Daerah) as its manifest names it.
#[derive(Clone, Copy, Debug)]
pub struct Agency {
    /// Manifest name; its code is this upper-cased.
    pub name: &'static str,
    pub full_name: &'static str,
    /// The walidata's title.
    pub walidata: &'static str,
}

pub const DINKES: Agency = Agency {
    name: "dinkes",
    full_name: "Dinas Kesehatan",
    walidata: "Kepala Dinas",
};

pub const BPKAD: Agency = Agency {
    name: "bpkad",
    full_name: "Badan Pengelolaan Keuangan dan Aset Daerah",
    walidata: "Kepala Badan",
};

pub const DISDUKCAPIL: Agency = Agency {
    name: "disdukcapil",
    full_name: "Dinas Kependudukan dan Pencatatan Sipil",
    walidata: "Kepala Dinas",
};

pub const DISKOMINFO: Agency = Agency {
    name: "diskominfo",
    full_name: "Dinas Komunikasi dan Informatika",
    walidata: "Kepala Dinas",
};

/// The first document: DrcTarget `drc`, its store at `url`.
pub fn drc_target(url: &str) -> String {
    format!(
        "apiVersion: pulih.io/v1alpha1\nkind: DrcTarget\nmetadata: {{name: drc}}\nspec:\n  url: {url:?}\n"
    )
}

/// A further document: `agency`, replicating to DrcTarget `drc`, with its
/// consent to automated drills or without. More `spec` lines (two spaces
/// in) may follow it.
pub fn agency(agency: Agency, drill_consent: bool) -> String {
    let Agency {
        name,
        full_name,
        walidata,
    } = agency;
    let mut doc = format!(
        "---\napiVersion: pulih.io/v1alpha1\nkind: PerangkatDaerah\nmetadata: {{name: {name}}}\nspec:\n  code: {}\n  name: {full_name}\n  walidata: {{name: {walidata}, contact: walidata@{name}.example}}\n  drcTarget: drc\n",
        name.to_uppercase()
    );
    if drill_consent {
        doc.push_str("  drills: {consent: true}\n");
    }
    doc
}

/// Writes `text` as `DIR/all.yaml` (making DIR); returns DIR, what `-f`
/// takes.
pub fn write(dir: &Path, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("all.yaml"), text).unwrap();
    dir.to_owned()
}

/// The head of a further document: Server `name` of the agency named
/// `pd`, in the Pusat Data and centralized; its own `spec` lines (two
/// spaces in) follow.
pub fn server(name: &str, pd: &str) -> String {
    format!(
        "---\napiVersion: pulih.io/v1alpha1\nkind: Server\nmetadata: {{name: {name}}}\nspec:\n  perangkatDaerah: {pd}\n  location: pusat-data\n  centralization: {{status: centralized}}\n"
    )
}
