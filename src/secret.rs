//! Secrets (the Access Point password) that never print, and are wiped from memory when
//! dropped.
//!
//! What is wiped: the copies pgdap makes: the [`Password`] itself (its clones too); the
//! Access Point file's bytes read by [`AccessPoint::from_file`](crate::AccessPoint::from_file)
//! and the values parsed from them; the password file's bytes and the unescaped password
//! (`src/env/passfile.rs`); the values of an
//! [`Environment`](crate::Environment), PGPASSWORD's among them; the bytes of the client
//! key file. What is not, because it lives in tokio-postgres (0.7): the copy handed to
//! `tokio_postgres::Config::password` for each connection attempt (a `Vec<u8>` dropped
//! when the attempt ends), the SCRAM state during the exchange (the SASLprep-normalised
//! password and the salted password) and the protocol write buffer of a cleartext/md5
//! password message; their memory is freed, not overwritten. Nor, outside pgdap: the
//! process environment itself (the C library's copy of PGPASSWORD, which
//! [`Environment::from_process_env`](crate::Environment::from_process_env) reads), the
//! page cache of the files, OpenSSL's own copies of the client key (decoded and held by
//! OpenSSL, which manages their memory),
//! and strings the application itself held before [`Password::new`].

use std::fmt;

use zeroize::Zeroizing;

/// A password. Its `Debug` and `Display` print `***`, so it cannot leak through logs,
/// `{:?}` of a containing struct, or error text; its memory is overwritten with zeros
/// when it (or any clone) is dropped (`zeroize`).
///
/// ```
/// let p = pgdap::Password::new("s3cret");
/// assert_eq!(format!("{p} {p:?}"), "*** ***");
/// assert_eq!(p.expose(), "s3cret");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps a password (a `String` is taken over without a copy; a `&str` is copied).
    pub fn new(value: impl Into<String>) -> Password {
        Password(Zeroizing::new(value.into()))
    }

    /// The password itself, for handing to the authentication exchange only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the password is empty (certificate authentication needs none).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The password in `bytes`, moved (not copied) when it is UTF-8; otherwise its invalid
    /// sequences are replaced by U+FFFD (as `String::from_utf8_lossy`) in an exactly sized
    /// new string, and `bytes` is wiped.
    pub(crate) fn from_wiped_bytes(mut bytes: Zeroizing<Vec<u8>>) -> Password {
        match String::from_utf8(std::mem::take(&mut *bytes)) {
            Ok(text) => Password::new(text),
            Err(e) => {
                let bytes = Zeroizing::new(e.into_bytes());
                Password::new(utf8_lossy(&bytes))
            }
        }
    }
}

/// `String::from_utf8_lossy(bytes).into_owned()` in a string allocated once at its final
/// size, so that no reallocation leaves a copy of a secret behind.
pub(crate) fn utf8_lossy(bytes: &[u8]) -> String {
    let size: usize = bytes
        .utf8_chunks()
        .map(|c| c.valid().len() + if c.invalid().is_empty() { 0 } else { 3 })
        .sum();
    let mut text = String::with_capacity(size);
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            text.push(char::REPLACEMENT_CHARACTER);
        }
    }
    text
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let p = Password::new("hunter2");
        assert!(!format!("{p}").contains("hunter2"));
        assert!(!format!("{p:?}").contains("hunter2"));
        assert!(!format!("{p:#?}").contains("hunter2"));
        assert_eq!(p.expose(), "hunter2");
    }

    #[test]
    fn bytes_are_taken_over_or_decoded_as_from_utf8_lossy() {
        let utf8 = Zeroizing::new("pässword".as_bytes().to_vec());
        let at = utf8.as_ptr();
        let p = Password::from_wiped_bytes(utf8);
        assert_eq!(p.expose(), "pässword");
        assert_eq!(p.expose().as_ptr(), at, "moved, not copied");
        for bytes in [
            &b"a\xffb\xe2\x82c\xed\xa0\x80d\xf0\x9f\x98"[..],
            b"\xc3",
            b"",
        ] {
            let expected = String::from_utf8_lossy(bytes);
            let got = utf8_lossy(bytes);
            assert_eq!(got, expected);
            assert_eq!(got.capacity(), got.len(), "sized once");
            assert_eq!(
                Password::from_wiped_bytes(Zeroizing::new(bytes.to_vec())).expose(),
                expected
            );
        }
    }

    #[test]
    fn clones_are_independent_and_wiped_on_drop() {
        // The wiping itself is zeroize's (tested there); here: every clone owns its own
        // zeroizing buffer, so dropping one leaves the other intact.
        let p = Password::new(String::from("hunter2"));
        let q = p.clone();
        drop(p);
        assert_eq!(q.expose(), "hunter2");
    }
}
