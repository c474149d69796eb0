//! Secrets (the Access Point password) that never print, and are wiped from memory when
//! dropped.
//!
//! What is wiped: every copy pgdap makes: the [`Password`] itself (its clones too), the
//! Access Point file's bytes read by [`AccessPoint::from_file`](crate::AccessPoint::from_file)
//! and the values parsed from them. What is not, because it lives in tokio-postgres
//! (0.7): the copy handed to `tokio_postgres::Config::password` for each connection
//! attempt (a `Vec<u8>` dropped when the attempt ends), the SCRAM state during the
//! exchange (the SASLprep-normalised password and the salted password) and the protocol
//! write buffer of a cleartext/md5 password message; their memory is freed, not
//! overwritten. Strings the application itself held before [`Password::new`] are its own.

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
    fn clones_are_independent_and_wiped_on_drop() {
        // The wiping itself is zeroize's (tested there); here: every clone owns its own
        // zeroizing buffer, so dropping one leaves the other intact.
        let p = Password::new(String::from("hunter2"));
        let q = p.clone();
        drop(p);
        assert_eq!(q.expose(), "hunter2");
    }
}
