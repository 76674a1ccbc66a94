use vigil_seal::{
    is_sealed, parse_keyring, row_binding, sealed_key_id, SealError, SealKey, Sealer, OVERHEAD,
};

const CROP: &[u8] =
    b"\xff\xd8\xff\xe0 pretend this is the JPEG of a face crop, long enough to spot";

fn sealer_with(keys: &[&SealKey]) -> Sealer {
    let (active, older) = keys.split_last().expect("at least one key");
    Sealer::new(
        (*active).clone(),
        older.iter().rev().map(|key| (*key).clone()),
    )
    .expect("sealer")
}

#[test]
fn sealed_blob_round_trips_and_hides_the_plaintext() {
    let key = SealKey::generate().unwrap();
    let sealer = sealer_with(&[&key]);
    let binding = row_binding("sighting", 123, "crop");
    let sealed = sealer.seal(CROP, &binding).unwrap();

    assert!(is_sealed(&sealed));
    assert!(!is_sealed(CROP));
    assert_eq!(sealed.len(), CROP.len() + OVERHEAD);
    assert_eq!(sealed_key_id(&sealed), Some(key.id()));
    assert!(
        !sealed
            .windows(16)
            .any(|window| CROP.windows(16).any(|c| c == window)),
        "sealed output contains a run of the plaintext"
    );
    assert_eq!(sealer.open(&sealed, &binding).unwrap(), CROP);
    // Random nonces: sealing twice gives different blobs.
    assert_ne!(sealer.seal(CROP, &binding).unwrap(), sealed);
}

#[test]
fn encrypted_store_unreadable_without_the_key() {
    let sealer = sealer_with(&[&SealKey::generate().unwrap()]);
    let stranger = sealer_with(&[&SealKey::generate().unwrap()]);
    let binding = row_binding("template", 7, "embedding");
    let sealed = sealer.seal(CROP, &binding).unwrap();

    assert!(matches!(
        stranger.open(&sealed, &binding),
        Err(SealError::UnknownKey(id)) if id == sealer.active_key_id()
    ));
    // A different key presented under the sealing key's id (forged header) still fails.
    let mut forged = stranger.seal(CROP, &binding).unwrap();
    forged[4..12].copy_from_slice(&sealer.active_key_id().0);
    assert!(matches!(
        sealer.open(&forged, &binding),
        Err(SealError::Unauthentic)
    ));
}

#[test]
fn any_tampered_byte_is_refused() {
    let sealer = sealer_with(&[&SealKey::generate().unwrap()]);
    let binding = row_binding("probe", 1, "image");
    let sealed = sealer.seal(CROP, &binding).unwrap();
    for position in 12..sealed.len() {
        let mut tampered = sealed.clone();
        tampered[position] ^= 0x01;
        assert!(
            matches!(
                sealer.open(&tampered, &binding),
                Err(SealError::Unauthentic)
            ),
            "byte {position} flipped yet the blob opened"
        );
    }
    let truncated = &sealed[..OVERHEAD - 1];
    assert!(matches!(
        sealer.open(truncated, &binding),
        Err(SealError::Truncated { .. })
    ));
    assert!(matches!(
        sealer.open(CROP, &binding),
        Err(SealError::NotSealed)
    ));
}

#[test]
fn blob_bound_to_one_row_does_not_open_in_another() {
    let sealer = sealer_with(&[&SealKey::generate().unwrap()]);
    let sealed = sealer
        .seal(CROP, &row_binding("sighting", 1, "crop"))
        .unwrap();
    for other in [
        row_binding("sighting", 2, "crop"),
        row_binding("sighting", 1, "embedding"),
        Vec::new(),
    ] {
        assert!(matches!(
            sealer.open(&sealed, &other),
            Err(SealError::Unauthentic)
        ));
    }
}

#[test]
fn rotation_opens_old_blobs_and_reseals_them_with_the_new_key() {
    let old_key = SealKey::generate().unwrap();
    let new_key = SealKey::generate().unwrap();
    let binding = row_binding("template", 42, "embedding");
    let sealed_before = sealer_with(&[&old_key]).seal(CROP, &binding).unwrap();

    let rotated = sealer_with(&[&old_key, &new_key]);
    assert_eq!(rotated.active_key_id(), new_key.id());
    assert_eq!(rotated.key_ids(), vec![new_key.id(), old_key.id()]);
    assert!(rotated.needs_reseal(&sealed_before));
    assert_eq!(rotated.open(&sealed_before, &binding).unwrap(), CROP);

    let resealed = rotated.reseal(&sealed_before, &binding).unwrap();
    assert_eq!(sealed_key_id(&resealed), Some(new_key.id()));
    assert!(!rotated.needs_reseal(&resealed));

    // Once every blob is resealed the old key can go.
    let new_only = sealer_with(&[&new_key]);
    assert_eq!(new_only.open(&resealed, &binding).unwrap(), CROP);
    assert!(matches!(
        new_only.open(&sealed_before, &binding),
        Err(SealError::UnknownKey(id)) if id == old_key.id()
    ));
}

#[test]
fn keyring_file_makes_the_last_key_active() {
    let old_key = SealKey::generate().unwrap();
    // The newest key written as hex, the older as base64: both forms are accepted.
    let new_key = SealKey::from_bytes([0xa7; 32]);
    let text = format!(
        "# vigil keys\n\n{}   # retired 2024-01\n{}\n",
        old_key.to_base64().as_str(),
        "A7".repeat(32)
    );
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("keys");
    std::fs::write(&path, text).unwrap();
    let sealer = Sealer::from_key_file(&path).unwrap();
    assert_eq!(sealer.key_ids(), vec![new_key.id(), old_key.id()]);

    let generated = Sealer::generate_key().unwrap();
    let parsed = parse_keyring(&generated, "generated").unwrap();
    assert_eq!(parsed.len(), 1);
}

#[test]
fn keyring_with_bad_lines_is_refused_with_its_line_number() {
    let good = SealKey::generate().unwrap().to_base64();
    let good = good.as_str();
    let cases: Vec<(String, usize, &str)> = vec![
        (
            format!("{good}\nnot-a-key!\n"),
            2,
            "not a base64 or hex key",
        ),
        (format!("# c\n{good}\nAAAA\n"), 3, "must be 32 bytes"),
        (format!("{good} {good}\n"), 1, "one key per line"),
        (format!("{good}\n\n{good}\n"), 3, "listed twice"),
    ];
    for (text, line, reason) in cases {
        let error = Sealer::from_keyring_text(&text, "keys.txt").unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, SealError::Keyring { line: l, .. } if l == line),
            "{message}"
        );
        assert!(message.contains(reason), "{message}");
        assert!(message.contains("keys.txt"), "{message}");
        assert!(!message.contains(good), "error message leaks the key");
    }
    assert!(matches!(
        Sealer::from_keyring_text("# only a comment\n\n", "keys.txt"),
        Err(SealError::NoKeys { .. })
    ));
    let missing = Sealer::from_key_file(std::path::Path::new("/nonexistent/vigil/keys"));
    assert!(matches!(missing, Err(SealError::KeyFile { .. })));
}

#[test]
fn environment_style_keyring_accepts_commas() {
    let first = SealKey::generate().unwrap();
    let second = SealKey::generate().unwrap();
    let text = format!(
        "{}, {}",
        first.to_base64().as_str(),
        second.to_base64().as_str()
    );
    let sealer = Sealer::from_keyring_text(&text, "$VIGIL_SEAL_KEYS").unwrap();
    assert_eq!(sealer.active_key_id(), second.id());
}

#[test]
fn debug_output_shows_key_ids_not_keys() {
    let key = SealKey::generate().unwrap();
    let base64 = key.to_base64();
    let sealer = sealer_with(&[&key]);
    for text in [format!("{key:?}"), format!("{sealer:?}")] {
        assert!(text.contains(&key.id().to_string()), "{text}");
        assert!(!text.contains(base64.as_str()), "{text}");
    }
}
