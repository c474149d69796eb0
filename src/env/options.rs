//! `PGOPTIONS`, `PGTZ` and `PGDATESTYLE`: what the server is told at start-up.
//!
//! libpq sends `PGOPTIONS` as the `options` start-up parameter unchanged and the server
//! splits it (`pg_split_opts`: white space separates, a backslash makes the next
//! character literal). libpq sends `PGTZ` and `PGDATESTYLE` as the start-up parameters
//! `timezone` and `datestyle` unless the value is `default` (any case). tokio-postgres
//! has no way to send arbitrary start-up parameters, so pgdap appends them to `options`
//! as `-c timezone=...` / `-c datestyle=...` (escaped): the server applies `options`
//! before the other parameters and a later `-c` wins, so the result is libpq's.

/// Splits an `options` string as the server does (`pg_split_opts`).
///
/// ```
/// assert_eq!(pgdap::env::options::split(r"-c search_path=a\ b  -c x=1"),
///            vec!["-c", "search_path=a b", "-c", "x=1"]);
/// ```
pub fn split(options: &str) -> Vec<String> {
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

/// The `name=value` settings an options string makes with `-c name=value`,
/// `-cname=value` or `--name=value` (what doctor shows).
///
/// ```
/// assert_eq!(pgdap::env::options::settings("-c geqo=off --work_mem=64MB"),
///            vec![("geqo".to_string(), "off".to_string()), ("work_mem".to_string(), "64MB".to_string())]);
/// ```
pub fn settings(options: &str) -> Vec<(String, String)> {
    let words = split(options);
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let word = &words[i];
        let setting = if word == "-c" {
            i += 1;
            words.get(i).cloned()
        } else {
            word.strip_prefix("--")
                .or_else(|| word.strip_prefix("-c"))
                .map(str::to_string)
        };
        if let Some((name, value)) = setting.as_deref().and_then(|s| s.split_once('=')) {
            out.push((name.replace('-', "_"), value.to_string()));
        }
        i += 1;
    }
    out
}

/// Escapes a value for one word of an options string (backslash before white space and
/// backslashes).
///
/// ```
/// assert_eq!(pgdap::env::options::escape(r"ISO, M\DY"), r"ISO,\ M\\DY");
/// ```
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
///
/// ```
/// let o = pgdap::env::options::startup_options(Some("-c geqo=off"), Some("Europe/Paris"), Some("ISO, DMY"));
/// assert_eq!(o.as_deref(), Some(r"-c geqo=off -c timezone=Europe/Paris -c datestyle=ISO,\ DMY"));
/// assert_eq!(pgdap::env::options::startup_options(Some(""), None, None), None);
/// ```
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

    #[test]
    fn settings_forms() {
        assert_eq!(
            settings(r"-c application_name=a\ b -cgeqo=off --search-path=x -d 1"),
            vec![
                ("application_name".to_string(), "a b".to_string()),
                ("geqo".to_string(), "off".to_string()),
                ("search_path".to_string(), "x".to_string())
            ]
        );
    }
}
