//! Encryption at rest (issue 5): embeddings, face crops and probe images are sealed with
//! XChaCha20-Poly1305 before they reach the disk or the database, so a copied disk or backup
//! is unreadable without the key. See docs/design/011-encryption-at-rest.md.
//!
//! The crate owns no storage: the store calls [`Sealer::seal`] on the way in and
//! [`Sealer::open`] on the way out, binding each blob to its row with [`row_binding`].

mod error;
mod key;
mod sealer;

pub use error::SealError;
pub use key::{parse_keyring, KeyId, SealKey, KEY_BYTES, KEY_ID_BYTES};
pub use sealer::{
    is_sealed, row_binding, sealed_key_id, Sealer, KEYS_ENV_VAR, MAGIC, NONCE_BYTES, OVERHEAD,
    TAG_BYTES,
};
