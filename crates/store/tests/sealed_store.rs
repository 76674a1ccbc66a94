//! Encryption at rest through the store (docs/design/011): what reaches the disk, what opening
//! without the key does, row binding, and rotation.

use rusqlite::Connection;
use sha2::{Digest, Sha256};
use std::path::Path;
use vigil_base::{CameraConfig, CameraId, Embedding, ModelId};
use vigil_seal::{SealKey, Sealer};
use vigil_store::conformance::{embedding, template};
use vigil_store::{
    Enrolment, FaceStore, NewSighting, SightingId, SqliteStore, StoreError, SubjectRef,
    TrajectoryPoint, VideoStore,
};

fn key(byte: u8) -> SealKey {
    SealKey::from_bytes([byte; 32])
}

fn sealer(active: u8, older: &[u8]) -> Sealer {
    Sealer::new(key(active), older.iter().map(|byte| key(*byte))).unwrap()
}

/// A fake JPEG long and distinctive enough that finding it in a file cannot be chance.
fn jpeg(tag: u8) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend((0..4096u32).map(|i| (i.wrapping_mul(31) as u8) ^ tag));
    bytes.extend([0xFF, 0xD9]);
    bytes
}

/// What `populate` wrote, to look for on disk and compare on read-back.
struct Written {
    templates: Vec<(vigil_base::TemplateId, Embedding, Vec<u8>)>,
    sightings: Vec<(SightingId, Vec<u8>, Vec<Embedding>)>,
    probe: Vec<u8>,
    probe_sha256: String,
    camera: CameraConfig,
    /// The passwords in the camera's two URLs.
    camera_passwords: [String; 2],
}

impl Written {
    /// Every plaintext that must not appear on disk under encryption.
    fn secrets(&self) -> Vec<(String, Vec<u8>)> {
        let mut secrets = Vec::new();
        for (id, embedding, thumbnail) in &self.templates {
            secrets.push((format!("template {id} embedding"), embedding.to_le_bytes()));
            secrets.push((format!("template {id} thumbnail"), thumbnail.clone()));
        }
        for (id, crop, embeddings) in &self.sightings {
            secrets.push((format!("sighting {id} crop"), crop.clone()));
            for (rank, embedding) in embeddings.iter().enumerate() {
                secrets.push((
                    format!("sighting {id} embedding {rank}"),
                    embedding.to_le_bytes(),
                ));
            }
        }
        secrets.push(("probe image".to_owned(), self.probe.clone()));
        for password in &self.camera_passwords {
            secrets.push((
                format!("camera {} password", self.camera.id),
                password.clone().into_bytes(),
            ));
        }
        secrets
    }
}

fn sighting(seed: u64, crop: Vec<u8>) -> (NewSighting, Vec<Embedding>) {
    let embeddings = vec![
        embedding("m", 100 + seed, 128),
        embedding("m", 200 + seed, 128),
    ];
    let started = 1_000 * seed as i64;
    let new = NewSighting {
        camera: CameraId::parse("gate").unwrap(),
        track: seed,
        started_at_ms: started,
        ended_at_ms: started + 500,
        best_at_ms: started,
        observations: 3,
        end_reason: "lost".into(),
        quality: 0.8,
        detector_score: 0.9,
        bbox: [1.0, 2.0, 30.0, 40.0],
        frame_width: 640,
        frame_height: 360,
        crop_jpeg: crop,
        embeddings: embeddings.iter().map(|e| (e.clone(), 0.8)).collect(),
        trajectory: vec![TrajectoryPoint {
            at_ms: started,
            center_x: 10.0,
            center_y: 20.0,
            width: 29.0,
            height: 38.0,
        }],
        candidates: Vec::new(),
    };
    (new, embeddings)
}

/// A camera whose main and sub stream URLs carry passwords (32 bytes and more, so that
/// `contains` can look for them).
fn camera_with_passwords(seed: u8) -> (CameraConfig, [String; 2]) {
    let passwords = [
        format!("Main-Stream-Password-{seed:03}-0123456789abcdef"),
        format!("Sub-Stream-Password-{seed:03}-fedcba9876543210"),
    ];
    let camera = CameraConfig {
        id: CameraId::parse(&format!("gate-{seed}")).unwrap(),
        name: Some(format!("Gate {seed}")),
        url: format!("rtsp://admin:{}@192.0.2.10:554/main", passwords[0]),
        substream_url: Some(format!("rtsp://viewer:{}@192.0.2.10:554/sub", passwords[1])),
        ..CameraConfig::default()
    };
    (camera, passwords)
}

/// Enrols two templates, stores two sightings, adds a camera with passwords in its URLs and
/// appends an audit entry with a probe image.
fn populate(store: &SqliteStore, seed: u8) -> Written {
    let mut new_templates = vec![template("m", 1, 128), template("m", 2, 128)];
    for (index, new) in new_templates.iter_mut().enumerate() {
        new.thumbnail_jpeg = jpeg(seed.wrapping_add(index as u8));
        new.source_sha256 = format!("{:064x}", u64::from(seed) * 10 + index as u64);
    }
    let receipt = store
        .enroll(Enrolment {
            subject: SubjectRef::ByName(format!("Ada {seed}")),
            notes: None,
            templates: new_templates.clone(),
            audit: None,
        })
        .unwrap();
    let templates = receipt
        .template_ids
        .iter()
        .zip(new_templates)
        .map(|(id, new)| (*id, new.embedding, new.thumbnail_jpeg))
        .collect();
    let mut sightings = Vec::new();
    for index in 0..2u8 {
        let crop = jpeg(seed.wrapping_add(50 + index));
        let (new, embeddings) = sighting(u64::from(seed) * 10 + u64::from(index), crop.clone());
        let id = store.insert_sighting(&new).unwrap();
        sightings.push((id, crop, embeddings));
    }
    let probe = jpeg(seed.wrapping_add(100));
    store
        .audit(&vigil_audit::NewAuditEntry {
            actor: vigil_audit::Actor {
                user_id: None,
                user_name: "investigator".into(),
            },
            action: vigil_audit::AuditAction::Search,
            target: vigil_audit::Target {
                kind: "gallery".into(),
                id: "m".into(),
            },
            case_ref: None,
            reason: "test".into(),
            request: serde_json::json!({}),
            probe_image: Some(probe.clone()),
            outcome: vigil_audit::Outcome::success(""),
        })
        .unwrap();
    let probe_sha256 = hex::encode(Sha256::digest(&probe));
    let (camera, camera_passwords) = camera_with_passwords(seed);
    store.save_camera_audited(&camera, None).unwrap();
    Written {
        templates,
        sightings,
        probe,
        probe_sha256,
        camera,
        camera_passwords,
    }
}

/// Every byte of every file in `directory`: the database, its write-ahead log, anything else.
fn disk_bytes(directory: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(directory).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            bytes.extend(std::fs::read(path).unwrap());
        }
    }
    bytes
}

/// Whether any 32-byte piece of `secret` is in `disk`: a blob larger than a page is split over
/// overflow pages, so looking for it whole would miss it.
fn contains(disk: &[u8], secret: &[u8]) -> bool {
    secret
        .chunks_exact(32)
        .any(|piece| disk.windows(piece.len()).any(|window| window == piece))
}

/// Reads back everything `populate` wrote and checks it is identical.
fn assert_reads_back(store: &SqliteStore, written: &Written) {
    let loaded = store.templates_for_model(&ModelId::new("m")).unwrap();
    for (id, embedding, thumbnail) in &written.templates {
        let (_, _, found) = loaded.iter().find(|(found, _, _)| found == id).unwrap();
        assert_eq!(found, embedding);
        assert_eq!(&store.template(*id).unwrap().unwrap().embedding, embedding);
        assert_eq!(&store.thumbnail(*id).unwrap().unwrap(), thumbnail);
    }
    let by_model = store
        .sighting_embeddings_for_model(&ModelId::new("m"))
        .unwrap();
    for (id, crop, embeddings) in &written.sightings {
        assert_eq!(&store.sighting_crop(*id).unwrap().unwrap(), crop);
        let stored: Vec<Embedding> = store
            .sighting_embeddings(*id)
            .unwrap()
            .into_iter()
            .map(|(embedding, _)| embedding)
            .collect();
        assert_eq!(&stored, embeddings);
        let listed: Vec<&Embedding> = by_model
            .iter()
            .filter(|entry| entry.sighting == *id)
            .map(|entry| &entry.embedding)
            .collect();
        assert_eq!(listed, embeddings.iter().collect::<Vec<_>>());
    }
    let probe = store
        .with_connection(|c| vigil_audit::probe_image(c, &written.probe_sha256, store.sealer()))
        .unwrap();
    assert_eq!(probe.as_deref(), Some(written.probe.as_slice()));
    let cameras = store.cameras().unwrap();
    let camera = cameras.iter().find(|c| c.id == written.camera.id);
    assert_eq!(camera, Some(&written.camera), "camera settings read back");
    let report = store
        .with_connection(|c| vigil_audit::verify_sealed(c, &[], store.sealer()))
        .unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
}

fn missing_key(result: Result<SqliteStore, StoreError>) -> String {
    match result {
        Err(StoreError::MissingKey { key_id, .. }) => key_id,
        Err(other) => panic!("expected a missing key, got {other}"),
        Ok(_) => panic!("expected a missing key, the store opened"),
    }
}

#[test]
fn encrypted_store_unreadable_without_the_key() {
    // Control: without keys the same plaintexts are found on disk, so the search below works.
    let plain_directory = tempfile::tempdir().unwrap();
    let plain_store = SqliteStore::open(plain_directory.path().join("vigil.db")).unwrap();
    let plain = populate(&plain_store, 1);
    let plain_disk = disk_bytes(plain_directory.path());
    for (what, bytes) in plain.secrets() {
        assert!(contains(&plain_disk, &bytes), "control: {what} not found");
    }
    drop(plain_store);

    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("vigil.db");
    let store = SqliteStore::open_sealed(&path, Some(sealer(7, &[]))).unwrap();
    let written = populate(&store, 1);
    let disk = disk_bytes(directory.path());
    for (what, bytes) in written.secrets() {
        assert!(!contains(&disk, &bytes), "{what} is on disk in plaintext");
    }
    drop(store);
    let disk = disk_bytes(directory.path());
    for (what, bytes) in written.secrets() {
        assert!(!contains(&disk, &bytes), "{what} is on disk after close");
    }

    let needed = key(7).id().to_string();
    assert_eq!(missing_key(SqliteStore::open(&path)), needed);
    assert_eq!(
        missing_key(SqliteStore::open_sealed(&path, Some(sealer(8, &[])))),
        needed
    );
    let refusal = SqliteStore::open(&path).err().unwrap().to_string();
    assert!(refusal.contains(&needed), "{refusal}");

    let store = SqliteStore::open_sealed(&path, Some(sealer(7, &[]))).unwrap();
    assert_reads_back(&store, &written);
}

#[test]
fn sealed_blob_copied_into_another_row_does_not_open() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("vigil.db");
    let store = SqliteStore::open_sealed(&path, Some(sealer(7, &[]))).unwrap();
    let written = populate(&store, 1);
    let second_probe = populate(&store, 2);
    drop(store);
    let (first, second) = (written.templates[0].0, written.templates[1].0);
    let (sighting_a, sighting_b) = (written.sightings[0].0, written.sightings[1].0);
    {
        let raw = Connection::open(&path).unwrap();
        let copy = |table: &str, column: &str, key: &str, from: String, to: String| {
            let sql = format!(
                "UPDATE {table} SET {column} = (SELECT {column} FROM {table} WHERE {key} = {from}) \
                 WHERE {key} = {to}"
            );
            assert_eq!(raw.execute(&sql, []).unwrap(), 1, "{sql}");
        };
        copy(
            "templates",
            "embedding",
            "id",
            first.0.to_string(),
            second.0.to_string(),
        );
        copy(
            "template_thumbnails",
            "jpeg",
            "template_id",
            first.0.to_string(),
            second.0.to_string(),
        );
        copy(
            "sightings",
            "crop_jpeg",
            "id",
            sighting_a.0.to_string(),
            sighting_b.0.to_string(),
        );
        // Rank 0 of sighting b takes rank 1's blob: same sighting, other rank.
        raw.execute(
            "UPDATE sighting_embeddings SET embedding = (SELECT embedding FROM sighting_embeddings \
             WHERE sighting = ?1 AND rank = 1) WHERE sighting = ?1 AND rank = 0",
            [sighting_b.0],
        )
        .unwrap();
        copy(
            "audit_probes",
            "image",
            "sha256",
            format!("'{}'", written.probe_sha256),
            format!("'{}'", second_probe.probe_sha256),
        );
        copy(
            "cameras",
            "config",
            "id",
            format!("'{}'", written.camera.id),
            format!("'{}'", second_probe.camera.id),
        );
    }
    let store = SqliteStore::open_sealed(&path, Some(sealer(7, &[]))).unwrap();
    let refused = |result: Result<(), StoreError>, what: &str| match result {
        Err(StoreError::Seal(_)) => {}
        other => panic!("{what}: expected an authentication failure, got {other:?}"),
    };
    refused(store.template(second).map(|_| ()), "template embedding");
    refused(store.thumbnail(second).map(|_| ()), "thumbnail");
    refused(
        store.templates_for_model(&ModelId::new("m")).map(|_| ()),
        "gallery load",
    );
    refused(store.sighting_crop(sighting_b).map(|_| ()), "crop");
    refused(
        store.sighting_embeddings(sighting_b).map(|_| ()),
        "sighting embedding",
    );
    refused(store.cameras().map(|_| ()), "camera settings");
    // The originals still open.
    assert_eq!(
        store.thumbnail(first).unwrap().unwrap(),
        written.templates[0].2
    );
    assert_eq!(
        store.sighting_crop(sighting_a).unwrap().unwrap(),
        written.sightings[0].1
    );
    assert!(store
        .with_connection(|c| {
            vigil_audit::probe_image(c, &second_probe.probe_sha256, store.sealer())
        })
        .is_err());
    let report = store
        .with_connection(|c| vigil_audit::verify_sealed(c, &[], store.sealer()))
        .unwrap();
    assert_eq!(
        report.problems,
        vec![vigil_audit::Problem::ProbeUnreadable {
            sha256: second_probe.probe_sha256.clone(),
            reason: "sealed probe image: the sealed data failed authentication \
                     (altered, or bound to another row)"
                .to_owned(),
        }]
    );
}

#[test]
fn rotation_reseals_old_and_plaintext_blobs_and_the_old_key_can_then_go() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("vigil.db");
    // Written before encryption was turned on: plaintext, still readable with keys.
    let legacy = populate(&SqliteStore::open(&path).unwrap(), 1);
    let old = populate(
        &SqliteStore::open_sealed(&path, Some(sealer(7, &[]))).unwrap(),
        2,
    );

    // Key 8 appended: it seals what is new, key 7 still opens the old.
    let store = SqliteStore::open_sealed(&path, Some(sealer(8, &[7]))).unwrap();
    let new = populate(&store, 3);
    for written in [&legacy, &old, &new] {
        assert_reads_back(&store, written);
    }
    let before = store.sealing_status().unwrap();
    let old_id = key(7).id().to_string();
    let new_id = key(8).id().to_string();
    for column in &before {
        assert!(column.plaintext > 0, "{}: {column:?}", column.place);
        assert!(column.by_key.contains_key(&old_id), "{column:?}");
        assert!(column.by_key.contains_key(&new_id), "{column:?}");
    }

    let mut reports = 0;
    let after = store.reseal_all(&mut |_| reports += 1).unwrap();
    assert!(reports >= after.len());
    for column in &after {
        assert_eq!(column.plaintext, 0, "{column:?}");
        assert_eq!(column.by_key.keys().collect::<Vec<_>>(), vec![&new_id]);
    }
    // Idempotent: a second run rewrites nothing.
    let mut rewritten = 0;
    store
        .reseal_all(&mut |progress| rewritten += progress.rewritten)
        .unwrap();
    assert_eq!(rewritten, 0);
    drop(store);

    let disk = disk_bytes(directory.path());
    for written in [&legacy, &old, &new] {
        for (what, bytes) in written.secrets() {
            assert!(!contains(&disk, &bytes), "{what} on disk after reseal");
        }
    }
    // The old key can go; the new one is now needed.
    let store = SqliteStore::open_sealed(&path, Some(sealer(8, &[]))).unwrap();
    for written in [&legacy, &old, &new] {
        assert_reads_back(&store, written);
    }
    drop(store);
    assert_eq!(
        missing_key(SqliteStore::open_sealed(&path, Some(sealer(7, &[])))),
        new_id
    );
}

#[test]
fn a_store_without_keys_writes_plaintext_and_reports_no_keys() {
    let store = SqliteStore::open_in_memory().unwrap();
    let written = populate(&store, 4);
    assert!(store.sealer().is_none());
    for column in store.sealing_status().unwrap() {
        assert!(column.by_key.is_empty(), "{column:?}");
        assert!(column.plaintext > 0, "{column:?}");
    }
    assert_reads_back(&store, &written);
    assert!(matches!(
        store.reseal_all(&mut |_| {}),
        Err(StoreError::Invalid(_))
    ));
}

/// Issue 13 §2.3: a camera's URLs carry its password; with keys the row holds no trace of it,
/// the store refuses to open without the key, and with it the camera's settings are whole.
#[test]
fn camera_credentials_are_sealed_at_rest_and_the_camera_still_reads_back() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("vigil.db");
    let store = SqliteStore::open_sealed(&path, Some(sealer(7, &[]))).unwrap();
    let (camera, passwords) = camera_with_passwords(9);
    store.save_camera_audited(&camera, None).unwrap();
    // Saving again (an edit through PUT /v1/cameras/{id}) seals the new settings as well.
    let mut edited = camera.clone();
    edited.analysis_fps = 4.0;
    store.save_camera_audited(&edited, None).unwrap();
    drop(store);

    let raw = Connection::open(&path).unwrap();
    let (kind, stored): (String, Vec<u8>) = raw
        .query_row(
            "SELECT typeof(config), CAST(config AS BLOB) FROM cameras WHERE id = 'gate-9'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!(kind, "blob");
    assert!(vigil_seal::is_sealed(&stored));
    for secret in passwords.iter().map(String::as_bytes).chain([
        b"rtsp://".as_slice(),
        b"admin".as_slice(),
        b"192.0.2.10".as_slice(),
    ]) {
        assert!(
            !stored.windows(secret.len()).any(|window| window == secret),
            "{} in the stored row",
            String::from_utf8_lossy(secret)
        );
    }
    drop(raw);
    for (what, password) in ["main", "sub"].iter().zip(&passwords) {
        assert!(
            !contains(&disk_bytes(directory.path()), password.as_bytes()),
            "{what} stream password on disk"
        );
    }

    let needed = key(7).id().to_string();
    assert_eq!(missing_key(SqliteStore::open(&path)), needed);
    let store = SqliteStore::open_sealed(&path, Some(sealer(7, &[]))).unwrap();
    assert_eq!(store.cameras().unwrap(), vec![edited]);
    let status = store.sealing_status().unwrap();
    let cameras = status
        .iter()
        .find(|column| column.place == "cameras.config")
        .expect("keys status counts camera settings");
    assert_eq!(cameras.plaintext, 0);
    assert_eq!(cameras.by_key.get(&needed), Some(&1));
}
