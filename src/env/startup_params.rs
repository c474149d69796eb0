//! `PGOPTIONS`, `PGTZ` and `PGDATESTYLE`: what the server is told at start-up.
//!
//! libpq sends `PGOPTIONS` as the `options` start-up parameter unchanged and the server
//! splits it (`pg_split_opts`: white space separates, a backslash makes the next
//! character literal). libpq sends `PGTZ` and `PGDATESTYLE` as the start-up parameters
//! `timezone` and `datestyle` unless the value is `default` (any case). tokio-postgres
//! has no way to send arbitrary start-up parameters, so pgdap appends them to `options`
//! as `-c timezone=...` / `-c datestyle=...` (escaped): the server applies `options`
//! before the other parameters and a later `-c` wins, so the result is libpq's.

/// Escapes a value for one word of an options string (backslash before white space and
/// backslashes).
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c == '\\' || c.is_ascii_whitespace() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The `options` start-up parameter to send: `PGOPTIONS`, then `PGTZ` and `PGDATESTYLE`
/// as `-c` settings. `None` when there is nothing to send.
pub fn startup_options(
    options: Option<&str>,
    timezone: Option<&str>,
    datestyle: Option<&str>,
) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    if let Some(o) = options.filter(|o| !o.is_empty()) {
        parts.push(o.to_string());
    }
    if let Some(tz) = timezone {
        parts.push(format!("-c timezone={}", escape(tz)));
    }
    if let Some(ds) = datestyle {
        parts.push(format!("-c datestyle={}", escape(ds)));
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How the server splits an `options` string (`pg_split_opts`: white space
    /// separates, a backslash makes the next character literal): the oracle of `escape`.
    fn split(options: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut chars = options.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                chars.next();
            }
            if chars.peek().is_none() {
                return out;
            }
            let mut word = String::new();
            while let Some(c) = chars.next() {
                if c.is_ascii_whitespace() {
                    break;
                }
                if c == '\\' {
                    if let Some(next) = chars.next() {
                        word.push(next);
                    }
                    continue;
                }
                word.push(c);
            }
            out.push(word);
        }
    }

    #[test]
    fn split_like_the_server() {
        assert_eq!(split(""), Vec::<String>::new());
        assert_eq!(split("  a\tb  "), vec!["a", "b"]);
        assert_eq!(split(r"a\\b"), vec![r"a\b"]);
        assert_eq!(split(r"-c x=a\ b\ c"), vec!["-c", "x=a b c"]);
    }

    #[test]
    fn escape_round_trips_through_split() {
        for v in ["ISO, MDY", r"a\b", "x  y\tz", ""] {
            let word = format!("-c x={}", escape(v));
            assert_eq!(split(&word)[1], format!("x={v}"));
        }
    }
}

/// The examples that were doc tests while this module was public.
#[cfg(test)]
mod examples {
    #[test]
    fn escape_backslashes_and_spaces() -> Result<(), Box<dyn std::error::Error>> {
        assert_eq!(
            crate::env::startup_params::escape(r"ISO, M\DY"),
            r"ISO,\ M\\DY"
        );
        Ok(())
    }

    #[test]
    fn timezone_and_datestyle_follow_pgoptions() -> Result<(), Box<dyn std::error::Error>> {
        let o = crate::env::startup_params::startup_options(
            Some("-c geqo=off"),
            Some("Europe/Paris"),
            Some("ISO, DMY"),
        );
        assert_eq!(
            o.as_deref(),
            Some(r"-c geqo=off -c timezone=Europe/Paris -c datestyle=ISO,\ DMY")
        );
        assert_eq!(
            crate::env::startup_params::startup_options(Some(""), None, None),
            None
        );
        Ok(())
    }
}
