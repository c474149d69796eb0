//! Secrets (the Access Point password) that never print.

use std::fmt;

/// A password. Its `Debug` and `Display` print `***`, so it cannot leak through logs,
/// `{:?}` of a containing struct, or error text.
///
/// ```
/// let p = pgdap::Password::new("s3cret");
/// assert_eq!(format!("{p} {p:?}"), "*** ***");
/// assert_eq!(p.expose(), "s3cret");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(value: impl Into<String>) -> Password {
        Password(value.into())
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
}
