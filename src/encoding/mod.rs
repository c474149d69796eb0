//! Client encodings (PGCLIENTENCODING). STUB: being replaced by the full implementation.

/// A client encoding of the vendor's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientEncoding {
    /// UTF8 (alias Unicode): the default.
    Utf8,
}

impl ClientEncoding {
    /// Canonical PostgreSQL names of every supported encoding.
    pub const NAMES: &'static [&'static str] = &["UTF8"];

    /// Looks a name or alias up as PostgreSQL's `pg_char_to_encoding` does.
    pub fn from_name(name: &str) -> Option<ClientEncoding> {
        if name.eq_ignore_ascii_case("utf8") {
            Some(ClientEncoding::Utf8)
        } else {
            None
        }
    }

    /// The canonical PostgreSQL name (`"WIN1252"`).
    pub fn name(self) -> &'static str {
        "UTF8"
    }
}
