//! End-to-end tests of `pulih repo …` with the real binary on a real
//! filesystem repository: round trips, incrementals, bad input, corruption,
//! crashes and concurrent agents.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use pulih_test_support::repo::Fixture;
use pulih_test_support::tree::{assert_same_tree, change_one_percent, make_tree, restored, walk};
use pulih_test_support::{Pulih, last_json, run_ok};
use rand::{Rng, SeedableRng};

const PULIH: Pulih = Pulih::new(env!("CARGO_BIN_EXE_pulih"));

fn snapshot_id(v: &serde_json::Value) -> String {
    v["snapshot_id"].as_str().unwrap().to_owned()
}

fn pack_files(repo: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = walk(&Path::new(repo).join("data"))
        .into_iter()
        .filter(|(_, m)| m.is_file())
        .map(|(p, _)| p)
        .collect();
    v.sort();
    v
}

#[test]
fn backup_change_one_percent_restore_both_snapshots_byte_for_byte() {
    // Small chunks, so a small corpus still has many chunks per changed file.
    let fx = Fixture::with_options(PULIH, None, &["--chunk-size-kib", "64"]);
    let src = fx.path("src");
    make_tree(&src, 6_000_000, 1);
    let first = fx.backup(&src);
    assert!(first["files"].as_u64().unwrap() > 300);
    assert_eq!(
        first["bytes_read"], first["bytes_new"],
        "a first backup has every byte new (no duplicates in the corpus)"
    );
    // Keep an exact copy of the first state for comparison.
    let orig = fx.path("orig");
    assert!(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(&src)
            .arg(&orig)
            .status()
            .unwrap()
            .success()
    );

    change_one_percent(&src, 2);
    let second = fx.backup(&src);
    let total = first["bytes_read"].as_u64().unwrap();
    let new = second["bytes_new"].as_u64().unwrap();
    assert!(new > 0, "the change must upload something");
    assert!(
        new < total / 4,
        "a 1% change uploaded {new} of {total} bytes: dedup is not working"
    );
    assert!(
        second["bytes_read"].as_u64().unwrap() < total,
        "unchanged files must not be read again"
    );

    for (snap, expected) in [(snapshot_id(&first), &orig), (snapshot_id(&second), &src)] {
        let target = fx.path(&format!("restore-{snap}"));
        run_ok(&mut fx.restore_cmd(&snap, &target));
        assert_same_tree(expected, &restored(&target, &src));
    }
    let v = fx.verify(true);
    assert!(
        v.status.success(),
        "verify: {}",
        String::from_utf8_lossy(&v.stdout)
    );
}

#[test]
fn no_change_backup_reads_nothing_and_a_lost_cache_uploads_nothing_new() {
    let fx = Fixture::new(PULIH);
    let src = fx.path("src");
    make_tree(&src, 1_000_000, 3);
    let first = fx.backup(&src);
    let again = fx.backup(&src);
    assert_eq!(again["bytes_read"], 0);
    assert_eq!(again["bytes_new"], 0);
    // Lose the cache: everything is read, nothing new is uploaded.
    std::fs::remove_dir_all(fx.path("cache")).unwrap();
    let cold = fx.backup(&src);
    assert_eq!(cold["bytes_read"], first["bytes_read"]);
    assert_eq!(cold["bytes_new"], 0);
    // --include restores one path only.
    let target = fx.path("partial");
    let inc = format!("{}/dokumen", src.display());
    run_ok(fx.restore_cmd("latest", &target).arg("--include").arg(&inc));
    assert!(
        restored(&target, &src)
            .join("dokumen/laporan.txt")
            .is_file()
    );
    assert!(!restored(&target, &src).join("db").exists());
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_input_gets_a_clear_error_and_loses_nothing() {
    let fx = Fixture::new(PULIH);
    let src = fx.path("src");
    make_tree(&src, 200_000, 4);
    fx.backup(&src);

    // Wrong passphrase.
    let wrong = fx.path("wrong");
    std::fs::write(&wrong, "salah").unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = PULIH
        .cmd()
        .args(["repo", "snapshots", "--repo", &fx.repo, "--passphrase-file"])
        .arg(&wrong)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("wrong passphrase for key slot `walidata`"),
        "{}",
        stderr_of(&out)
    );

    // A world-readable passphrase file is refused.
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = PULIH
        .cmd()
        .args(["repo", "snapshots", "--repo", &fx.repo, "--passphrase-file"])
        .arg(&wrong)
        .output()
        .unwrap();
    assert!(
        stderr_of(&out).contains("readable by every user"),
        "{}",
        stderr_of(&out)
    );

    // A repository URL that does not exist, and a directory that is not a repository.
    let missing = fx.path("no-such-repo");
    let out = PULIH
        .cmd()
        .args(["repo", "snapshots", "--passphrase-file"])
        .arg(&fx.pass)
        .arg("--repo")
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("is not a Pulih repository"),
        "{}",
        stderr_of(&out)
    );
    let out = PULIH
        .cmd()
        .args(["repo", "backup", "--agent-key"])
        .arg(&fx.key)
        .arg("--repo")
        .arg(&src)
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        stderr_of(&out).contains("is not a Pulih repository"),
        "{}",
        stderr_of(&out)
    );
    let out = PULIH
        .cmd()
        .args([
            "repo",
            "snapshots",
            "--repo",
            "ftp://x/y",
            "--passphrase-file",
        ])
        .arg(&fx.pass)
        .output()
        .unwrap();
    assert!(
        stderr_of(&out).contains("unknown scheme"),
        "{}",
        stderr_of(&out)
    );

    // An agent key from another repository.
    let other = Fixture::new(PULIH);
    let before = std::fs::read_dir(Path::new(&fx.repo).join("snapshots"))
        .unwrap()
        .count();
    let out = fx.backup_cmd(&other.key, "cache", &src).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("the agent key is for repository"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(
        std::fs::read_dir(Path::new(&fx.repo).join("snapshots"))
            .unwrap()
            .count(),
        before,
        "nothing written"
    );

    // A source path that does not exist.
    let out = fx
        .backup_cmd(&fx.key, "cache", &fx.path("tidak-ada"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("does not exist"),
        "{}",
        stderr_of(&out)
    );

    // A snapshot that does not exist.
    let out = fx.restore_cmd("abcdef", &fx.path("t")).output().unwrap();
    assert!(
        stderr_of(&out).contains("snapshot `abcdef` not found"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn unreadable_source_file_is_reported_and_the_rest_is_backed_up_with_exit_code_3() {
    let fx = Fixture::new(PULIH);
    let src = fx.path("src");
    make_tree(&src, 200_000, 5);
    let secret = src.join("dokumen/rahasia.txt");
    std::fs::write(&secret, "tidak boleh dibaca").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    // An unreadable directory, listed first: the walk goes on past it.
    let closed = src.join("aa-tertutup");
    std::fs::create_dir(&closed).unwrap();
    std::fs::write(closed.join("isi.txt"), "tertutup").unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o000)).unwrap();
    // Root reads anything: run the backup as an unprivileged user then.
    let mut cmd = if is_root() {
        std::fs::set_permissions(fx.dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
        chown_tree(fx.dir.path(), 65534);
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o000)).unwrap();
        let mut c = std::process::Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_pulih"),
        ]);
        c
    } else {
        PULIH.cmd()
    };
    let out = cmd
        .args([
            "repo",
            "backup",
            "--json",
            "--repo",
            &fx.repo,
            "--agent-key",
        ])
        .arg(&fx.key)
        .arg("--cache-dir")
        .arg(fx.path("cache"))
        .arg(&src)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr_of(&out));
    for name in ["rahasia.txt", "aa-tertutup"] {
        assert!(
            stderr_of(&out).contains(name),
            "{name}: {}",
            stderr_of(&out)
        );
    }
    let v = last_json(&out);
    assert_eq!(v["errors"].as_array().unwrap().len(), 2, "{v}");
    let target = fx.path("r");
    run_ok(&mut fx.restore_cmd(&snapshot_id(&v), &target));
    assert!(
        restored(&target, &src)
            .join("dokumen/laporan.txt")
            .is_file()
    );
    assert!(!restored(&target, &src).join("dokumen/rahasia.txt").exists());
    assert!(!restored(&target, &src).join("aa-tertutup").exists());
    // Let the fixture's directory be removed.
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

fn chown_tree(p: &Path, uid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(uid)).unwrap();
    for (q, _) in walk(p) {
        std::os::unix::fs::lchown(&q, Some(uid), Some(uid)).unwrap();
    }
}

/// One damaged copy of a healthy repository per case.
fn damaged_copy(fx: &Fixture, name: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join(name);
    assert!(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(&fx.repo)
            .arg(&repo)
            .status()
            .unwrap()
            .success()
    );
    let pass = dir.path().join("pass");
    std::fs::copy(&fx.pass, &pass).unwrap();
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
    Fixture {
        pulih: PULIH,
        repo: repo.to_string_lossy().into_owned(),
        pass,
        key: fx.key.clone(),
        dir,
    }
}

fn assert_restore_fails(fx: &Fixture) {
    let out = fx.restore_cmd("latest", &fx.path("r")).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "restore of a damaged repository must fail: {}",
        stderr_of(&out)
    );
}

fn verify_problems(fx: &Fixture) -> String {
    let out = fx.verify(true);
    assert_eq!(
        out.status.code(),
        Some(4),
        "verify must fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn corruption_is_detected_named_and_never_restored_silently() {
    let fx = Fixture::new(PULIH);
    let src = fx.path("src");
    make_tree(&src, 3_000_000, 6);
    run_ok(
        fx.backup_cmd(&fx.key, "cache", &src)
            .args(["--pack-size-mib", "1"]),
    );
    let v = fx.verify(true);
    assert!(v.status.success());
    let packs = pack_files(&fx.repo);
    assert!(packs.len() >= 3);
    let pack_name = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();

    // A flipped byte inside a data blob.
    let d = damaged_copy(&fx, "flip");
    let victim = pack_files(&d.repo)
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut b = std::fs::read(&victim).unwrap();
    b[100] ^= 0x01;
    std::fs::write(&victim, &b).unwrap();
    let problems = verify_problems(&d);
    assert!(
        problems.contains(&format!("pack {}", pack_name(&victim)))
            && problems.contains("does not authenticate"),
        "{problems}"
    );
    assert!(problems.contains("data blob"), "names the blob: {problems}");
    let out = d.restore_cmd("latest", &d.path("r")).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "restore of damaged data must fail"
    );
    assert!(
        stderr_of(&out).contains("does not authenticate"),
        "{}",
        stderr_of(&out)
    );

    // A truncated pack.
    let d = damaged_copy(&fx, "trunc");
    let victim = pack_files(&d.repo)
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let len = std::fs::metadata(&victim).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&victim)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let problems = verify_problems(&d);
    assert!(
        problems.contains(&format!("pack {}: truncated", pack_name(&victim))),
        "{problems}"
    );
    assert_restore_fails(&d);

    // A deleted pack.
    let d = damaged_copy(&fx, "gone");
    let victim = pack_files(&d.repo).into_iter().next().unwrap();
    std::fs::remove_file(&victim).unwrap();
    let problems = verify_problems(&d);
    assert!(
        problems.contains(&format!("pack {}: missing", pack_name(&victim))),
        "{problems}"
    );
    assert_restore_fails(&d);

    // A deleted index: verify names the unindexed blobs; repair-index recovers.
    let d = damaged_copy(&fx, "noindex");
    for e in std::fs::read_dir(Path::new(&d.repo).join("index")).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    let problems = verify_problems(&d);
    assert!(problems.contains("is in no index"), "{problems}");
    run_ok(
        PULIH
            .cmd()
            .args([
                "repo",
                "repair-index",
                "--repo",
                &d.repo,
                "--passphrase-file",
            ])
            .arg(&d.pass),
    );
    let v = d.verify(true);
    assert!(
        v.status.success(),
        "after repair: {}",
        String::from_utf8_lossy(&v.stdout)
    );
    d.assert_latest_restores(&src);
}

#[test]
fn crash_kill_9_at_random_points_leaves_a_verifying_repository_and_the_backup_resumes() {
    let fx = Fixture::new(PULIH);
    let src = fx.path("src");
    make_tree(&src, 40_000_000, 7);
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    // Time one whole run of the same data (elsewhere), so kills land inside runs.
    let probe = Fixture::new(PULIH);
    let t = std::time::Instant::now();
    run_ok(
        probe
            .backup_cmd(&probe.key, "cache", &src)
            .args(["--pack-size-mib", "1"]),
    );
    // A run's length moves with the machine's load: every run that ends
    // before its kill shortens the estimate, so later kills land inside.
    let mut run_ms = t.elapsed().as_millis() as u64;
    let mut killed_mid_run = 0;
    let fresh = |name: String, rng: &mut rand::rngs::StdRng| {
        // New data each round, so every run has packs to upload.
        let mut b = vec![0u8; 8_000_000];
        rand::RngCore::fill_bytes(rng, &mut b);
        std::fs::write(src.join(name), b).unwrap();
    };
    let mut round = 0;
    while round < 8 || (killed_mid_run < 2 && round < 40) {
        fresh(format!("round{round}.bin"), &mut rng);
        let count = || {
            std::fs::read_dir(Path::new(&fx.repo).join("snapshots"))
                .map(|d| d.count())
                .unwrap_or(0)
        };
        let snaps_before = count();
        let started = std::time::Instant::now();
        let mut child = fx
            .backup_cmd(&fx.key, &format!("cache{round}"), &src)
            .args(["--pack-size-mib", "1"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let kill_at = started + Duration::from_millis(rng.gen_range(run_ms / 10..run_ms * 9 / 10));
        while std::time::Instant::now() < kill_at && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        if child.try_wait().unwrap().is_some() {
            run_ms = run_ms.min(started.elapsed().as_millis() as u64).max(20);
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        if count() == snaps_before {
            killed_mid_run += 1;
        }
        let v = fx.verify(false);
        assert!(
            v.status.success(),
            "round {round}: repository does not verify after kill -9: {}",
            String::from_utf8_lossy(&v.stdout)
        );
        round += 1;
    }
    assert!(
        killed_mid_run > 0,
        "no kill landed inside a run in {round} rounds (a run takes about {run_ms} ms)"
    );
    // Later runs adopt what earlier killed runs left. End on a kill that
    // leaves packs behind — kill -9 as soon as the run has stored a new pack
    // (polled), so the kill lands after an upload however loaded the
    // machine is — and check the next run reuses every one of them.
    let stored_packs = || {
        pack_files(&fx.repo)
            .iter()
            .filter(|p| !p.to_string_lossy().contains('#')) // not a file being written
            .count()
    };
    let unindexed = |fx: &Fixture| -> u64 {
        let out = fx.verify(false);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        stdout
            .split(" unindexed packs")
            .next()
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let mut left = 0;
    for attempt in 0..20 {
        fresh(format!("last{attempt}.bin"), &mut rng);
        let packs_before = stored_packs();
        let mut child = fx
            .backup_cmd(&fx.key, &format!("cache-last{attempt}"), &src)
            .args(["--pack-size-mib", "1"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while stored_packs() == packs_before
            && child.try_wait().unwrap().is_none()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = child.kill();
        let _ = child.wait();
        left = unindexed(&fx);
        if left > 0 {
            break;
        }
    }
    assert!(left > 0, "no kill left uploaded packs behind");
    let out = fx.backup(&src);
    assert_eq!(
        out["resumed_packs"].as_u64().unwrap(),
        left,
        "every pack of the killed runs is reused: {out}"
    );
    assert!(
        out["bytes_new"].as_u64().unwrap() < out["bytes_read"].as_u64().unwrap(),
        "resumed backup must not upload everything again: {out}"
    );
    let v = fx.verify(true);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    assert!(
        String::from_utf8_lossy(&v.stdout).contains(" 0 unindexed packs"),
        "{}",
        String::from_utf8_lossy(&v.stdout)
    );
    fx.assert_latest_restores(&src);
}

#[test]
fn several_agents_back_up_into_one_repository_at_once_and_all_verify() {
    let fx = Fixture::new(PULIH);
    let mut children = Vec::new();
    for n in 0..3 {
        let key = fx.path(&format!("agent{n}.key"));
        run_ok(
            PULIH
                .cmd()
                .args([
                    "repo",
                    "add-agent-key",
                    "--repo",
                    &fx.repo,
                    "--passphrase-file",
                ])
                .arg(&fx.pass)
                .arg("--out")
                .arg(&key),
        );
        let src = fx.path(&format!("server{n}"));
        make_tree(&src, 2_000_000, 10 + n);
        let child = fx
            .backup_cmd(&key, &format!("cache{n}"), &src)
            .arg("--host")
            .arg(format!("server{n}"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        children.push((child, src, key));
    }
    let mut ids = Vec::new();
    for (child, src, key) in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        ids.push((snapshot_id(&last_json(&out)), src, key));
    }
    let v = fx.verify(true);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    for (id, src, key) in &ids {
        let target = fx.path(&format!("r-{id}"));
        run_ok(&mut fx.restore_cmd(id, &target));
        assert_same_tree(src, &restored(&target, src));
        // Each agent key lists its own snapshot only.
        let out = run_ok(
            PULIH
                .cmd()
                .args([
                    "repo",
                    "snapshots",
                    "--json",
                    "--repo",
                    &fx.repo,
                    "--agent-key",
                ])
                .arg(key),
        );
        let list = last_json(&out);
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert_eq!(list[0]["id"].as_str().unwrap(), id);
    }
}

/// Finding 1 of issue 20 for repositories from before bindings: the
/// walidata binds the existing keys' spaces from their tags (after a
/// dry run), and from then on another key's snapshot tagged as the
/// server is neither listed nor restored as that server's.
#[test]
fn provenance_an_existing_repository_binds_its_keys_from_tags_and_then_ignores_forged_tags() {
    let fx = Fixture::new(PULIH);
    let other = fx.path("other.key");
    run_ok(
        PULIH
            .cmd()
            .args([
                "repo",
                "add-agent-key",
                "--repo",
                &fx.repo,
                "--passphrase-file",
            ])
            .arg(&fx.pass)
            .arg("--out")
            .arg(&other),
    );
    let backup = |key: &Path, cache: &str, server: &str, text: &str| {
        let src = fx.path(&format!("src-{cache}"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("data.txt"), text).unwrap();
        let out = run_ok(
            fx.backup_cmd(key, cache, &src)
                .args(["--tag", &format!("server={server}")]),
        );
        (snapshot_id(&last_json(&out)), src)
    };
    let (real, real_src) = backup(&fx.key, "a", "simpus", "rekam medis asli");
    backup(&other, "b", "sipkd", "anggaran");
    let simpus_space = space_of_listed(&fx, &real);
    let bind = |args: &[&str]| {
        PULIH
            .cmd()
            .args(["repo", "bind", "--repo", &fx.repo, "--passphrase-file"])
            .arg(&fx.pass)
            .args(args)
            .output()
            .unwrap()
    };
    let dry = bind(&["--from-tags", "--dry-run"]);
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(dry.status.success(), "{text}");
    assert!(
        text.contains(&format!("would bind space {simpus_space} to simpus")),
        "{text}"
    );
    assert!(text.contains("to sipkd"), "{text}");
    assert!(
        !fx.path("repo/bindings").exists(),
        "a dry run binds nothing"
    );
    let done = bind(&["--from-tags"]);
    assert!(done.status.success(), "{}", stderr_of(&done));
    assert!(
        String::from_utf8_lossy(&done.stdout)
            .contains(&format!("bound space {simpus_space} to simpus"))
    );

    // The other key now writes a snapshot tagged as simpus, received last.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (forged, _) = backup(&other, "c", "simpus", "palsu");
    let out = run_ok(
        PULIH
            .cmd()
            .args([
                "repo",
                "snapshots",
                "--json",
                "--server",
                "simpus",
                "--repo",
                &fx.repo,
            ])
            .arg("--passphrase-file")
            .arg(&fx.pass),
    );
    let listed = last_json(&out);
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [real.as_str()], "not {forged}");
    assert_eq!(listed[0]["bound_server"], "simpus");
    let target = fx.path("r");
    run_ok(
        fx.restore_cmd("latest", &target)
            .args(["--server", "simpus"]),
    );
    assert_eq!(
        std::fs::read_to_string(restored(&target, &real_src).join("data.txt")).unwrap(),
        "rekam medis asli"
    );

    // A binding is never changed: the other key's space stays sipkd's.
    let other_space = space_of_listed(&fx, &forged);
    let refused = bind(&["--server", "simpus", "--space", &other_space]);
    assert!(!refused.status.success());
    assert!(
        stderr_of(&refused).contains("bound to sipkd already"),
        "{}",
        stderr_of(&refused)
    );
    // A new key for a named server is bound as it is made.
    let out = run_ok(
        PULIH
            .cmd()
            .args([
                "repo",
                "add-agent-key",
                "--server",
                "arsip",
                "--repo",
                &fx.repo,
                "--passphrase-file",
            ])
            .arg(&fx.pass)
            .arg("--out")
            .arg(fx.path("arsip.key")),
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("bound to server arsip"));
}

/// The space of snapshot `id`, as the walidata lists it.
fn space_of_listed(fx: &Fixture, id: &str) -> String {
    let list = pulih_test_support::repo::snapshots(&PULIH, Path::new(&fx.repo), &fx.pass);
    list.as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap()["space"]
        .as_str()
        .unwrap()
        .to_string()
}
