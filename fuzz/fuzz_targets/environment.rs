//! Environment resolution on arbitrary variable values: never panics, resolves to
//! absolute paths, and every refusal names the variable at fault.
//!
//! Input format (so that seeds stay readable): records separated by 0xFF; the first byte
//! of a record picks the variable (`PGMODE`, `PGROOTCA`, ... or, past the seven, a name
//! taken from the record itself), the rest is the value (bytes that are not UTF-8 are
//! replaced, as `Environment::from_process_env` does).

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pgdap::{Environment, Error, Settings, Source};

const VARS: [&str; 7] = pgdap::env::VARIABLES;

fuzz_target!(|data: &[u8]| {
    let mut pairs = Vec::new();
    for record in data.split(|b| *b == 0xff) {
        let Some((&selector, value)) = record.split_first() else {
            continue;
        };
        let value = String::from_utf8_lossy(value).into_owned();
        match VARS.get(usize::from(selector % 8)) {
            Some(name) => pairs.push((name.to_string(), value)),
            // An unrelated variable: name=value inside the record.
            None => match value.split_once('=') {
                Some((name, value)) => pairs.push((name.to_string(), value.to_string())),
                None => pairs.push((value, String::new())),
            },
        }
    }
    let env = Environment::from_pairs(pairs.clone());
    for dir in [Some(Path::new("/home/fuzz/.postgresql")), None] {
        match Settings::resolve(&env, dir) {
            Ok(s) => check(&env, &s, dir),
            Err(e) => {
                let text = e.to_string();
                let _ = format!("{e:?}");
                let named = match &e {
                    Error::InvalidEnv { var, .. } | Error::InvalidPath { var, .. } => {
                        text.contains(var)
                    }
                    // libpq's own variables (PGSSLMODE, PGCONNECT_TIMEOUT, ...), refused
                    // with libpq's message.
                    Error::LibpqSetting { var, .. } => text.contains(var),
                    Error::UnknownEncoding { .. } => text.contains("PGCLIENTENCODING"),
                    Error::CertAuthWithoutSsl => text.contains("PGAUTH") && text.contains("PGMODE"),
                    Error::NoDefaultDirectory => dir.is_none(),
                    other => panic!("unexpected error from resolve: {other:?}"),
                };
                assert!(named, "error does not name its variable: {text}");
            }
        }
    }
});

fn check(env: &Environment, s: &Settings, dir: Option<&Path>) {
    // Values that came from the environment are the variable's exact spelling.
    if s.mode.source == Source::Env {
        assert_eq!(Some(s.mode.value.as_str()), env.get("PGMODE"));
    } else {
        assert_eq!(env.get("PGMODE"), None);
    }
    if s.auth.source == Source::Env {
        assert_eq!(Some(s.auth.value.as_str()), env.get("PGAUTH"));
    }
    for (var, setting) in [
        ("PGROOTCA", &s.root_ca),
        ("PGCERT", &s.cert),
        ("PGKEY", &s.key),
        ("PGCRL", &s.crl),
    ] {
        let path = &setting.value;
        assert!(path.is_absolute(), "{var}: {path:?}");
        let text = path.to_string_lossy();
        assert!(!text.contains(['\0', '\n', '\r']), "{var}: {path:?}");
        if let (Some(value), Some(dir)) = (env.get(var), dir) {
            assert_eq!(setting.source, Source::Env);
            if Path::new(value).is_relative() {
                assert!(path.starts_with(dir), "{var}: {path:?}");
            }
        }
    }
    if s.encoding.source == Source::Env {
        let name = env.get("PGCLIENTENCODING").unwrap();
        assert_eq!(
            pgdap::encoding::ClientEncoding::from_name(name),
            Some(s.encoding.value)
        );
    }
}
