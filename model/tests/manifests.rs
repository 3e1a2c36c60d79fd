//! Manifest validation against the committed corpus of malformed manifests,
//! the example manifests, the committed JSON Schema, and random input.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use pulih_model::manifest::{self, ManifestSet};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every file of the invalid corpus is rejected with the diagnostic its
/// first line announces: `# expect: LINE:COL: MESSAGE-SUBSTRING`.
#[test]
fn every_malformed_manifest_is_rejected_at_the_right_place() {
    let dir = root().join("manifests/testdata/invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 30,
        "the corpus has only {} files",
        files.len()
    );
    for f in files {
        let name = format!(
            "manifests/testdata/invalid/{}",
            f.file_name().unwrap().to_string_lossy()
        );
        let bytes = std::fs::read(&f).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{name}: first line must be `# expect: LINE:COL: MESSAGE`"));
        let mut parts = expect.splitn(3, ':');
        let line: usize = parts.next().unwrap().parse().unwrap();
        let col: usize = parts.next().unwrap().parse().unwrap();
        let msg = parts.next().unwrap().trim();
        let diags = match ManifestSet::from_sources(&[(name.clone(), bytes.clone())]) {
            Ok(_) => panic!("{name} was accepted"),
            Err(d) => d,
        };
        assert!(
            diags.iter().any(|d| d.file == name
                && d.line == line
                && d.column == col
                && d.message.contains(msg)),
            "{name}: expected {line}:{col}: {msg}\ngot:\n{}",
            diags
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn the_examples_are_valid() {
    let set = ManifestSet::load(&[root().join("manifests/examples")]).unwrap_or_else(|d| {
        panic!(
            "{}",
            d.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    assert!(set.perangkat_daerah.len() >= 5);
    assert!(set.servers.len() >= 12);
    assert!(set.recovery_plans.len() >= 2);
    assert!(!set.drc_targets.is_empty());
}

#[test]
fn all_problems_of_a_run_are_reported_together() {
    let a = "apiVersion: pulih.io/v1alpha1\nkind: DrcTarget\nmetadata: {name: drc}\nspec: {url: relative/path}\n---\napiVersion: pulih.io/v1alpha1\nkind: PerangkatDaerah\nmetadata: {name: pd}\nspec:\n  code: PD\n  name: P\n  walidata: {name: W, contact: c}\n  drcTarget: nowhere\n";
    let b = "apiVersion: pulih.io/v1alpha1\nkind: Server\nmetadata: {name: s}\nspec:\n  perangkatDaerah: pd\n  location: pusat-data\n  centralization: {status: centralized}\n  sources: [{path: /x}]\n  rpo: soon\n";
    let d = ManifestSet::from_sources(&[("a.yaml".into(), a.into()), ("b.yaml".into(), b.into())])
        .unwrap_err();
    let at: Vec<(String, usize, usize)> = d
        .iter()
        .map(|d| (d.file.clone(), d.line, d.column))
        .collect();
    assert_eq!(
        at,
        vec![
            ("a.yaml".into(), 4, 13),
            ("a.yaml".into(), 13, 14),
            ("b.yaml".into(), 9, 8)
        ],
        "{d:?}"
    );
}

#[test]
fn the_committed_schema_is_current() {
    let path = root().join("manifests/schema/pulih.io_v1alpha1.json");
    let committed = std::fs::read_to_string(&path).unwrap();
    let current = serde_json::to_string_pretty(&manifest::json_schema()).unwrap() + "\n";
    assert!(
        committed == current,
        "{} is out of date with the manifest types; regenerate it with\n  cargo run -p pulih -- manifests schema > manifests/schema/pulih.io_v1alpha1.json",
        path.display()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_text_never_panics(text in ".{0,400}") {
        let _ = ManifestSet::from_sources(&[("f.yaml".into(), text.into_bytes())]);
    }

    #[test]
    fn mutated_examples_never_panic(pos in 0usize..20_000, len in 0usize..40, junk in prop::collection::vec(any::<u8>(), 0..20)) {
        let mut bytes = std::fs::read(root().join("manifests/examples/20-dinkes.yaml")).unwrap();
        let at = pos.min(bytes.len());
        let end = (at + len).min(bytes.len());
        bytes.splice(at..end, junk);
        let _ = ManifestSet::from_sources(&[("f.yaml".into(), bytes)]);
    }
}
