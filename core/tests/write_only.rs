//! The key split of DESIGN.md §4: an agent key writes and deduplicates but
//! cannot read back file contents or names, and one agent cannot plant a
//! blob that another agent will trust.

#[path = "support/repo.rs"]
mod support;

use std::path::Path;
use std::sync::Arc;

use pulih_core::backup::{BackupOptions, Progress, backup};
use pulih_core::crypto::Key;
use pulih_core::id::{IndexId, SessionId};
use pulih_core::index::{IndexFile, IndexPack, index_key_name};
use pulih_core::keys::{AgentKey, SessionKey, SpaceKeys};
use pulih_core::pack::{self, BlobType, PackWriter, pack_key_name};
use pulih_core::repo::{LoadedIndexes, Reader, Repo, list_snapshots};
use pulih_core::storage::Store;

const SECRET_NAME: &str = "rekam-medis-pasien-6474012345.txt";
const SECRET_TEXT: &str = "NIK 6474012345678901 diagnosa: rahasia; ";

async fn setup(name: &str) -> (Store, Repo, pulih_core::keys::ReaderKeys, tempfile::TempDir) {
    let store = Store::open(&format!("memory://{name}-{}", rand::random::<u64>()), true).unwrap();
    let (repo, reader) = support::init(&store, "sandi").await;
    (store, repo, reader, tempfile::tempdir().unwrap())
}

fn opts(dir: &Path, cache: &str) -> BackupOptions {
    BackupOptions::new("srv".into(), dir.join(cache))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_key_cannot_read_back_file_contents_or_names() {
    let (store, repo, reader_keys, dir) = setup("wo").await;
    let (agent, agent_file) = AgentKey::new(&reader_keys.master, &repo.config);
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join(SECRET_NAME), SECRET_TEXT.repeat(1000)).unwrap();
    let out = backup(
        store.clone(),
        &agent,
        std::slice::from_ref(&src),
        &opts(dir.path(), "c"),
        Arc::new(Progress::default()),
    )
    .await
    .unwrap();

    // The agent key file holds no reader identity and no master secret.
    assert!(!agent_file.contains("AGE-SECRET-KEY"));
    assert!(!agent_file.contains(&reader_keys.master.0.to_hex()));

    // Nothing in the store shows the name or the content in clear.
    for o in store.list("").await.unwrap() {
        let b = store.get(&o.key).await.unwrap();
        for needle in [SECRET_NAME.as_bytes(), &SECRET_TEXT.as_bytes()[..24]] {
            assert!(
                !b.windows(needle.len()).any(|w| w == needle),
                "{} holds plaintext",
                o.key
            );
        }
    }

    // What the agent can open: its own index and snapshot metadata.
    let sp = agent.space.clone();
    let loaded = LoadedIndexes::load(&repo, |s| (s == sp.space).then(|| sp.clone()))
        .await
        .unwrap();
    let snaps = list_snapshots(&repo, |s| (s == sp.space).then(|| sp.clone()))
        .await
        .unwrap();
    assert_eq!(snaps[0].id, out.snapshot_id);
    let session_id: SessionId = snaps[0].snapshot.session;
    let index = &loaded.spaces[&agent.space.space];

    // What it cannot: any blob (trees hold the names, data the contents).
    // Try every key the agent key holds or can derive as the session secret.
    let candidates: Vec<Key> = vec![
        agent.chunker_key.clone(),
        agent.space.blob_id_key.clone(),
        agent.space.meta_key.clone(),
    ];
    let mut tried = 0;
    for (pack_id, _) in index.packs() {
        let bytes = store.get(&pack_key_name(pack_id)).await.unwrap();
        let t = pack::parse_trailer(pack_id, &bytes).unwrap();
        let hend = bytes.len() - pack::TRAILER_LEN;
        let header = pack::decrypt_header(
            &agent.space,
            pack_id,
            &bytes[hend - t.header_len as usize..hend],
        )
        .unwrap();
        for e in &header.entries {
            let ct = &bytes[e.offset as usize..(e.offset + e.stored_len) as usize];
            for k in &candidates {
                let guess = SessionKey {
                    id: session_id,
                    secret: k.clone(),
                };
                assert!(
                    pack::open_blob(&guess.pack_key(pack_id), pack_id, e, ct, &agent.space)
                        .is_err()
                );
                tried += 1;
            }
        }
    }
    assert!(tried >= 6, "tree and data blobs were tried");
    // The session key is wrapped to reader identities the agent does not hold.
    let wrapped = store
        .get(&format!("keys/sessions/{session_id}"))
        .await
        .unwrap();
    assert!(SessionKey::unwrap(session_id, &wrapped, &age::x25519::Identity::generate()).is_err());

    // A reader can read it all.
    let reader = Reader::open(store.clone(), "sandi").await.unwrap();
    let snap = reader.find_snapshot("latest").await.unwrap();
    let target = dir.path().join("r");
    support::restore_all(&reader, &snap, &target).await;
    let back = std::fs::read_to_string(
        target
            .join(src.strip_prefix("/").unwrap())
            .join(SECRET_NAME),
    )
    .unwrap();
    assert_eq!(back, SECRET_TEXT.repeat(1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_planted_by_one_agent_under_anothers_id_is_never_used() {
    let (store, repo, reader_keys, dir) = setup("plant").await;
    let (mallory, _) = AgentKey::new(&reader_keys.master, &repo.config);
    let (victim, _) = AgentKey::new(&reader_keys.master, &repo.config);
    let content = SECRET_TEXT.repeat(500).into_bytes();
    // Worst case: the attacker knows the victim's future blob id.
    let planted_id = victim.space.blob_id(&content);

    let garbage = b"ransomware was here".repeat(100);
    let session = SessionKey::generate();
    store
        .put(
            &format!("keys/sessions/{}", session.id),
            session.wrap(&mallory.recipients).unwrap().into(),
        )
        .await
        .unwrap();
    let plant = |space_keys: &SpaceKeys, index_too: bool| {
        let mut w = PackWriter::new(&session, BlobType::Data, 0);
        w.add(planted_id, &garbage, 0, garbage.len() as u32);
        let p = w.finish(space_keys);
        let idx = index_too.then(|| {
            let id = IndexId::random();
            (
                id,
                IndexFile {
                    space: space_keys.space,
                    packs: vec![IndexPack {
                        pack: p.id,
                        header: p.header.clone(),
                    }],
                }
                .encode(space_keys, &id),
            )
        });
        (p.id, p.bytes, idx)
    };
    // 1. A pack and index in the attacker's own space, under the victim's id.
    let own = plant(&mallory.space, true);
    // 2. A forged index that claims the victim's space (the attacker does
    //    not have the victim's keys, so it uses its own).
    let forged_keys = SpaceKeys {
        space: victim.space.space,
        ..mallory.space.clone()
    };
    let forged_index = plant(&forged_keys, true);
    // 3. An unindexed pack whose trailer claims the victim's space, as if an
    //    interrupted backup of the victim had left it (resume bait).
    let forged_orphan = plant(&forged_keys, false);
    for (id, bytes, idx) in [own, forged_index, forged_orphan] {
        store.put(&pack_key_name(&id), bytes.into()).await.unwrap();
        if let Some((iid, ib)) = idx {
            store.put(&index_key_name(&iid), ib.into()).await.unwrap();
        }
    }

    // The victim backs up the content: it must upload it, not trust the plant.
    let src = dir.path().join("victim");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("data.txt"), &content).unwrap();
    let out = backup(
        store.clone(),
        &victim,
        std::slice::from_ref(&src),
        &opts(dir.path(), "vc"),
        Arc::new(Progress::default()),
    )
    .await
    .unwrap();
    assert_eq!(
        out.snapshot.summary.bytes_new,
        content.len() as u64,
        "the victim deduplicated against a planted blob"
    );
    assert_eq!(out.resumed_packs, 0, "the victim adopted a forged pack");

    let reader = Reader::open(store.clone(), "sandi").await.unwrap();
    let snap = reader
        .snapshots()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.id == out.snapshot_id)
        .unwrap();
    let target = dir.path().join("r");
    support::restore_all(&reader, &snap, &target).await;
    assert_eq!(
        std::fs::read(target.join(src.strip_prefix("/").unwrap()).join("data.txt")).unwrap(),
        content
    );
    // The forged index is reported as damaged to a reader, not silently used.
    assert!(
        reader
            .indexes
            .damaged
            .iter()
            .any(|(_, e)| e.to_string().contains("does not authenticate"))
    );
}

/// An agent key checks its own space's structure (no reader key needed):
/// a clean space passes, another agent's damage is not its concern, and a
/// deleted or truncated pack of its own is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_key_checks_its_own_space_and_names_a_missing_or_truncated_pack() {
    let (store, repo, reader_keys, dir) = setup("check").await;
    let (a, _) = AgentKey::new(&reader_keys.master, &repo.config);
    let (b, _) = AgentKey::new(&reader_keys.master, &repo.config);
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..3 {
        std::fs::write(src.join(format!("f{i}")), vec![i as u8 + 1; 3 << 20]).unwrap();
    }
    for (k, cache) in [(&a, "a"), (&b, "b")] {
        backup(
            store.clone(),
            k,
            std::slice::from_ref(&src),
            &opts(dir.path(), cache),
            Arc::new(Progress::default()),
        )
        .await
        .unwrap();
    }
    let clean = pulih_core::verify::check_space(&repo, &a).await.unwrap();
    assert!(clean.ok(), "{:?}", clean.problems);
    assert_eq!(clean.snapshots, 1);
    assert!(clean.packs >= 2, "a data and a tree pack: {clean:?}");

    // Packs of each space, by the trailer's clear space id.
    let mut own = Vec::new();
    let mut other = Vec::new();
    for o in store.list("data/").await.unwrap() {
        let bytes = store.get(&o.key).await.unwrap();
        let id: pulih_core::id::PackId = o.key.rsplit('/').next().unwrap().parse().unwrap();
        let t = pack::parse_trailer(&id, &bytes[bytes.len() - pack::TRAILER_LEN..]).unwrap();
        if t.space == a.space.space {
            own.push((o.key, bytes));
        } else {
            other.push(o.key);
        }
    }
    // Damage to b's space is b's (and the walidata's) finding, not a's.
    store.delete(&other[0]).await.unwrap();
    let still = pulih_core::verify::check_space(&repo, &a).await.unwrap();
    assert!(still.ok(), "{:?}", still.problems);

    let (gone, _) = &own[0];
    let (cut, cut_bytes) = &own[1];
    store.delete(gone).await.unwrap();
    store
        .put(cut, cut_bytes.slice(..cut_bytes.len() / 2))
        .await
        .unwrap();
    let report = pulih_core::verify::check_space(&repo, &a).await.unwrap();
    let gone_id = gone.rsplit('/').next().unwrap();
    let cut_id = cut.rsplit('/').next().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(gone_id) && p.contains("missing")),
        "{:?}",
        report.problems
    );
    assert!(
        report.problems.iter().any(|p| p.contains(cut_id)),
        "{:?}",
        report.problems
    );
    assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
}

/// Review finding (issue 20, 8): the agent daemon loaded an agent key
/// every user of its host could read (only the CLI refused it). Loading
/// a key file refuses it, whoever loads it.
#[tokio::test]
async fn an_agent_key_other_users_can_read_is_refused_by_every_loader() {
    use std::os::unix::fs::PermissionsExt;
    let (_store, repo, reader, dir) = setup("keymode").await;
    let (_, text) = AgentKey::new(&reader.master, &repo.config);
    let path = dir.path().join("agent.key");
    std::fs::write(&path, &text).unwrap();
    let (_, maint_text) =
        pulih_core::keys::MaintenanceKeyFile::new(repo.config.repo_id, &reader.master);
    let maint = dir.path().join("maintenance.key");
    std::fs::write(&maint, &maint_text).unwrap();
    // Readable by every user, by the group (issue 20's hardening: a
    // service group is still other people), or both.
    for (mode, who) in [
        (0o644, "every user"),
        (0o604, "every user"),
        (0o640, "its group"),
    ] {
        for p in [&path, &maint] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let err = AgentKey::load(&path).unwrap_err().to_string();
        assert!(
            err.contains(&format!("readable by {who}")),
            "{mode:o}: {err}"
        );
        let Err(err) = pulih_core::keys::MaintenanceKeyFile::load(&maint) else {
            panic!("{mode:o}: a maintenance key others can read was loaded");
        };
        let err = err.to_string();
        assert!(
            err.contains(&format!("readable by {who}")),
            "{mode:o}: {err}"
        );
    }
    for p in [&path, &maint] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    AgentKey::load(&path).unwrap();
    pulih_core::keys::MaintenanceKeyFile::load(&maint).unwrap();
}

/// Review finding (issue 20, 3): one junk object under `snapshots/` (any
/// agent of the agency can write one) stopped `snapshots` and every
/// restore of every server. A reader skips what does not authenticate
/// and goes on; `verify` names it.
#[tokio::test]
async fn a_junk_snapshot_object_does_not_stop_another_servers_restore() {
    let (store, repo, reader_keys, dir) = setup("junk-snapshot").await;
    let (agent, _) = AgentKey::new(&reader_keys.master, &repo.config);
    let src = dir.path().join("srv");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("data.txt"), SECRET_TEXT).unwrap();
    let out = backup(
        store.clone(),
        &agent,
        std::slice::from_ref(&src),
        &opts(dir.path(), "cache"),
        Arc::new(Progress::default()),
    )
    .await
    .unwrap();

    // Another agent's junk: a bad magic, and a snapshot-shaped object of
    // the victim's space that does not authenticate.
    let junk_name = |id: pulih_core::id::SnapshotId| pulih_core::snapshot::snapshot_key_name(&id);
    let garbage = junk_name(pulih_core::id::SnapshotId::random());
    store
        .put(
            &garbage,
            bytes::Bytes::from_static(b"not a snapshot at all"),
        )
        .await
        .unwrap();
    let real = store
        .get(&pulih_core::snapshot::snapshot_key_name(&out.snapshot_id))
        .await
        .unwrap();
    let mut forged = real.to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let forged_name = junk_name(pulih_core::id::SnapshotId::random());
    store
        .put(&forged_name, bytes::Bytes::from(forged))
        .await
        .unwrap();

    let reader = Reader::open(store.clone(), "sandi").await.unwrap();
    let snaps = reader.snapshots().await.unwrap();
    assert_eq!(snaps.len(), 1, "only the real snapshot");
    let latest = reader.find_snapshot("latest").await.unwrap();
    assert_eq!(latest.id, out.snapshot_id);
    let target = dir.path().join("restore");
    support::restore_all(&reader, &latest, &target).await;
    assert_eq!(
        std::fs::read(target.join(src.join("data.txt").strip_prefix("/").unwrap())).unwrap(),
        SECRET_TEXT.as_bytes()
    );

    let report = pulih_core::verify::verify(&reader, None).await.unwrap();
    for name in [&garbage, &forged_name] {
        let id = name.rsplit('/').next().unwrap();
        assert!(
            report.problems.iter().any(|p| p.contains(id)),
            "verify names {name}: {:?}",
            report.problems
        );
    }
}

/// Finding 2 of issue 20, reduced: an agent key still confirms a guessed
/// content by its id (inherent to deduplication, FORMAT.md §10), but the
/// index, the pack lengths and its snapshots' summaries no longer give a
/// small file's exact size (tree lengths still move with it: §4.2). A PIN
/// (4 bytes) and a password (15 bytes) take the same slot in the index; two
/// runs that each add one small file of very different sizes write data
/// packs of the same length; every framed entry gives a padded slot, never
/// a length; and the reader gets every byte back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_key_learns_no_small_files_exact_size_only_its_padded_bucket() {
    let (store, repo, reader_keys, dir) = setup("pad").await;
    let (agent, _) = AgentKey::new(&reader_keys.master, &repo.config);
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let run = |cache: &'static str| {
        let (store, agent, src, o) = (
            store.clone(),
            agent.clone(),
            src.clone(),
            opts(dir.path(), cache),
        );
        async move {
            backup(
                store,
                &agent,
                std::slice::from_ref(&src),
                &o,
                Arc::new(Progress::default()),
            )
            .await
            .unwrap()
        }
    };
    let sp = agent.space.clone();
    let data_packs = || async {
        let loaded = LoadedIndexes::load(&repo, |s| (s == sp.space).then(|| sp.clone()))
            .await
            .unwrap();
        let mut out = std::collections::BTreeMap::new();
        for (pack_id, _) in loaded.spaces[&sp.space].packs() {
            let bytes = store.get(&pack_key_name(pack_id)).await.unwrap();
            let t = pack::parse_trailer(pack_id, &bytes).unwrap();
            let hend = bytes.len() - pack::TRAILER_LEN;
            let header =
                pack::decrypt_header(&sp, pack_id, &bytes[hend - t.header_len as usize..hend])
                    .unwrap();
            if header.entries[0].kind == BlobType::Data {
                out.insert(*pack_id, (bytes.len(), header.entries));
            }
        }
        out
    };

    // Night 1: a PIN, a password and files of 300 different small sizes.
    std::fs::write(src.join("pin.txt"), "4821").unwrap();
    std::fs::write(src.join("sandi.txt"), "Bontang#2024!ok").unwrap();
    let sizes: Vec<usize> = (0..300).map(|i| 1 + i * 37).collect();
    for (i, n) in sizes.iter().enumerate() {
        let body: Vec<u8> = (0..*n).map(|j| (i * 7 + j * 13 % 251) as u8).collect();
        std::fs::write(src.join(format!("f{i:03}")), body).unwrap();
    }
    run("c").await;
    let night1 = data_packs().await;
    let entries: Vec<&pack::PackEntry> = night1.values().flat_map(|(_, es)| es).collect();
    let framed: Vec<&&pack::PackEntry> = entries.iter().filter(|e| e.is_framed()).collect();
    assert_eq!(framed.len(), 302, "every small file is framed");
    let lens: std::collections::BTreeSet<u32> = framed.iter().map(|e| e.raw_len).collect();
    for e in &framed {
        assert_eq!(e.flags & pack::FLAG_PADDED, pack::FLAG_PADDED);
        assert!(e.raw_len >= 256);
        // A bucket: the slot of its own largest content, nothing finer.
        assert_eq!(pack::slot_len(e.raw_len as usize - 4), e.raw_len as usize);
    }
    assert!(
        lens.len() * 3 < sizes.len(),
        "{} slot lengths for {} sizes",
        lens.len(),
        sizes.len()
    );
    let id_of = |text: &[u8]| sp.blob_id(text);
    let slot_of = |text: &[u8]| {
        let id = id_of(text);
        framed.iter().find(|e| e.id == id).unwrap().raw_len
    };
    assert_eq!(slot_of(b"4821"), slot_of(b"Bontang#2024!ok"));

    // Nights 2 and 3: one new small file each, 9 and 3000 bytes.
    std::fs::write(src.join("rahasia.txt"), "PIN: 0417").unwrap();
    run("c").await;
    let night2 = data_packs().await;
    std::fs::write(src.join("laporan.csv"), "x,".repeat(1500)).unwrap();
    run("c").await;
    let night3 = data_packs().await;
    let new_pack = |after: &std::collections::BTreeMap<_, (usize, Vec<pack::PackEntry>)>,
                    before: &std::collections::BTreeMap<_, _>| {
        let added: Vec<_> = after
            .iter()
            .filter(|(k, _)| !before.contains_key(*k))
            .map(|(_, v)| v.clone())
            .collect();
        assert_eq!(added.len(), 1, "one data pack a night");
        added.into_iter().next().unwrap()
    };
    let (len2, es2) = new_pack(&night2, &night1);
    let (len3, es3) = new_pack(&night3, &night2);
    assert_eq!((es2.len(), es3.len()), (1, 1));
    assert_eq!(
        len2, len3,
        "a 9-byte and a 3000-byte file make data packs of one length"
    );
    assert_eq!(es2[0].stored_len, es3[0].stored_len);
    assert!(es2[0].raw_len != 9 + 4 && es3[0].raw_len != 3000 + 4);
    // Nor do the nights' snapshots, which the agent key reads back: their
    // byte counts are in buckets (the 9 and the 3000 bytes alike).
    let mut snaps = list_snapshots(&repo, |s| (s == sp.space).then(|| sp.clone()))
        .await
        .unwrap();
    snaps.sort_by(|a, b| a.snapshot.time.cmp(&b.snapshot.time));
    let (s2, s3) = (&snaps[1].snapshot.summary, &snaps[2].snapshot.summary);
    assert_eq!((s2.bytes_new, s2.bytes_read), (4096, 4096), "{s2:?}");
    assert_eq!((s3.bytes_new, s3.bytes_read), (4096, 4096), "{s3:?}");
    for s in [s2, s3] {
        assert_eq!(
            pulih_core::pack::summary_bucket(s.total_bytes),
            s.total_bytes
        );
    }

    // Whoever writes the store sets `config` back to version 2 (an agent
    // cannot check its MAC): the agent key remembers version 3, and the
    // next night's small file is padded all the same.
    let bytes = support::set_config_version(&store, 2).await;
    std::fs::write(src.join("pin-baru.txt"), "7305").unwrap();
    run("c").await;
    let night4 = data_packs().await;
    let (_, es4) = new_pack(&night4, &night3);
    assert_eq!(es4[0].flags & pack::FLAG_PADDED, pack::FLAG_PADDED);
    assert_eq!(es4[0].raw_len, 256);
    store.put(pulih_core::layout::CONFIG, bytes).await.unwrap();

    // The reader gets every byte back.
    let reader = Reader::open(store.clone(), "sandi").await.unwrap();
    let snap = reader.find_snapshot("latest").await.unwrap();
    let target = dir.path().join("r");
    support::restore_all(&reader, &snap, &target).await;
    let back = target.join(src.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(back.join("pin.txt")).unwrap(), b"4821");
    assert_eq!(
        std::fs::read(back.join("rahasia.txt")).unwrap(),
        b"PIN: 0417"
    );
    for (i, n) in sizes.iter().enumerate() {
        assert_eq!(
            std::fs::metadata(back.join(format!("f{i:03}")))
                .unwrap()
                .len() as usize,
            *n
        );
    }
}
