//! Schemas of the multipart forms and query strings, for the OpenAPI document. The handlers
//! read the multipart bodies through `UploadForm`; these types only describe them.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// One image, as the multipart field `image`.
#[derive(Debug, ToSchema)]
pub struct ImageForm {
    /// JPEG, PNG, WebP, GIF, BMP or TIFF bytes.
    #[schema(value_type = String, format = Binary)]
    pub image: Vec<u8>,
}

/// Two images to compare, as the multipart fields `a` and `b`.
#[derive(Debug, ToSchema)]
pub struct VerifyForm {
    #[schema(value_type = String, format = Binary)]
    pub a: Vec<u8>,
    #[schema(value_type = String, format = Binary)]
    pub b: Vec<u8>,
}

/// A new subject: a name, optional notes and one or more `image` fields. All images must
/// hold one dominant usable face, or nothing is stored.
#[derive(Debug, ToSchema)]
pub struct EnrolmentForm {
    pub name: String,
    pub notes: Option<String>,
    /// Repeat the field for several photos.
    #[schema(value_type = Vec<String>, format = Binary)]
    pub image: Vec<Vec<u8>>,
}

/// More photos of an existing subject, as repeated `image` fields.
#[derive(Debug, ToSchema)]
pub struct TemplatesForm {
    #[schema(value_type = Vec<String>, format = Binary)]
    pub image: Vec<Vec<u8>>,
}

/// A person put on a watchlist: their name, the photos that become the entry's own subject,
/// and what makes the entry lawful and accountable.
#[derive(Debug, ToSchema)]
pub struct WatchEntryForm {
    pub name: String,
    /// Repeat the field for several photos; each must hold one dominant usable face.
    #[schema(value_type = Vec<String>, format = Binary)]
    pub image: Vec<Vec<u8>>,
    /// The law or warrant the entry rests on.
    pub legal_basis: String,
    /// The person answerable for the entry.
    pub responsible: String,
    /// When the entry stops matching (unix ms); required, an entry never lives forever.
    pub expires_at_ms: i64,
}

#[derive(Debug, Default, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IdentifyQuery {
    /// Candidates per face (1–100); the configured default when absent.
    pub top_k: Option<usize>,
    /// Report only candidates at or below this false-match rate; the configured default when
    /// absent.
    pub false_match_rate: Option<f64>,
}

#[derive(Debug, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    #[serde(default)]
    pub offset: usize,
    /// At most 1000.
    #[serde(default = "default_page_limit")]
    pub limit: usize,
}

fn default_page_limit() -> usize {
    100
}
