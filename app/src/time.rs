//! The one timestamp format on the wire: RFC 3339 in UTC with milliseconds
//! (`2026-12-01T15:13:28.123Z`), so that timestamps compare as text and parse anywhere.

use serde::{Deserialize, Serialize};

/// A point in time as the API and the pages carry it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
pub struct Timestamp(String);

impl Timestamp {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(feature = "ssr")]
impl From<chrono::DateTime<chrono::Utc>> for Timestamp {
    fn from(at: chrono::DateTime<chrono::Utc>) -> Self {
        Timestamp(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    }
}
