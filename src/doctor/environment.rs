//! The report's variable lines, read from the table of variables (src/env/variables.rs,
//! in its order): each variable's resolved value and source, the password in use (never
//! its value), and the warnings for variables that are ignored (the Access Point wins),
//! unsupported, or in conflict with the vendor's variable (docs/design.md §9).

use std::path::Path;

use crate::access_point::{AccessPoint, PORT};
use crate::env::passfile::{self, Lookup};
use crate::env::variables::{
    Kind, Show, ALL, PGPASSFILE, PGPASSWORD, PGSERVICE, PGSSLMINPROTOCOLVERSION,
};
use crate::env::{AuthMethod, Environment, Settings, Source, TlsVersion};

use super::{check, line, Check, SettingLine, Status};

/// One line per variable the table shows, in the table's order; the warnings go to
/// `checks`.
pub(super) fn variable_lines(
    ap: &AccessPoint,
    env: &Environment,
    settings: &Settings,
    checks: &mut Vec<Check>,
) -> Vec<SettingLine> {
    let mut lines = Vec::new();
    for var in ALL {
        match var.show {
            Show::Nothing => {}
            Show::PasswordInUse => lines.push(password_in_use(ap, settings)),
            Show::Value(show) => {
                let Some((mut value, source)) = show(settings) else {
                    continue;
                };
                if *var == PGPASSFILE {
                    if let Some(file) = &settings.passfile {
                        let state = password_file_state(ap, &file.value, checks);
                        value = format!("{value} ({state})");
                    }
                } else if *var == PGSSLMINPROTOCOLVERSION {
                    if let Some(asked) = settings.raised_min_protocol() {
                        value = format!("{asked} (raised to TLSv1.2)");
                        checks.push(raised_minimum(asked, settings));
                    }
                }
                lines.push(line(var.name, &value, source));
            }
        }
    }
    ignored_and_conflicting(ap, env, settings, checks);
    lines
}

/// The password actually used, and where from (never the value).
fn password_in_use(ap: &AccessPoint, settings: &Settings) -> SettingLine {
    let (value, source) = match passfile::password_for(ap, settings) {
        Some((_, source)) => ("***", source),
        None if settings.auth.value == AuthMethod::Cert => ("(none: PGAUTH=cert)", Source::Default),
        None => ("(none)", Source::Default),
    };
    line("password in use", value, source)
}

/// What the password file holds for the Access Point; a file ignored for its
/// permissions is a warning.
fn password_file_state(ap: &AccessPoint, file: &Path, checks: &mut Vec<Check>) -> String {
    match passfile::lookup(file, ap.server(), PORT, ap.dbname(), ap.username()) {
        Lookup::Found { line, .. } => format!("matches at line {line}"),
        Lookup::NotFound => "no matching line (or no file)".to_string(),
        Lookup::Ignored(warning) => {
            checks.push(check(
                Status::Warn,
                "password file",
                warning.clone(),
                Some(format!("chmod 0600 \"{}\"", file.display())),
            ));
            "ignored".to_string()
        }
    }
}

/// A PGSSLMINPROTOCOLVERSION below TLS 1.2, raised.
fn raised_minimum(asked: TlsVersion, settings: &Settings) -> Check {
    let name = PGSSLMINPROTOCOLVERSION.name;
    let mut found =
        format!("{name}={asked} is raised to TLSv1.2: pgdap never negotiates below TLS 1.2");
    if let Some(max) = settings
        .ssl_max_protocol
        .value
        .filter(|max| *max < TlsVersion::Tls1_2)
    {
        found.push_str(&format!(
            "; with PGSSLMAXPROTOCOLVERSION={max} no version is left and every handshake fails"
        ));
    }
    check(
        Status::Warn,
        name,
        found,
        Some(format!("set {name}=TLSv1.2 or unset it (a server that speaks only TLSv1 or TLSv1.1 must be upgraded)")),
    )
}

/// Warnings: variables the Access Point overrides, PGPASSWORD beside an Access Point
/// password, unsupported variables, and vendor/twin pairs that disagree.
fn ignored_and_conflicting(
    ap: &AccessPoint,
    env: &Environment,
    settings: &Settings,
    checks: &mut Vec<Check>,
) {
    let set = |kind: fn(&Kind) -> bool| {
        ALL.iter()
            .filter(move |var| kind(&var.kind))
            .filter_map(|var| Some((var.name, env.get_raw(var.name)?)))
    };
    if let Some(service) = settings.service.as_ref() {
        if !service.ignored_keys.is_empty() {
            checks.push(check(
                Status::Warn,
                PGSERVICE.name,
                format!(
                    "service \"{}\" (file \"{}\") sets {}: ignored, the Access Point names the server, port, database and user",
                    service.name,
                    service.file.display(),
                    service.ignored_keys.join(", ")
                ),
                Some("remove them from the service's group, or change the Access Point".into()),
            ));
        }
    }
    for (name, value) in set(|kind| matches!(kind, Kind::OverriddenByAccessPoint)) {
        checks.push(check(
            Status::Warn,
            name,
            format!("{name}={value:?} is set but ignored: the Access Point wins"),
            Some(format!("unset {name}, or change the Access Point")),
        ));
    }
    let password = PGPASSWORD.name;
    if env.get_raw(password).is_some() && !ap.password().is_empty() {
        checks.push(check(
            Status::Warn,
            password,
            format!("{password} is set but ignored: the Access Point has a password"),
            Some(format!(
                "unset {password}, or empty the Access Point's password"
            )),
        ));
    }
    for (name, value) in set(|kind| matches!(kind, Kind::Unsupported)) {
        checks.push(check(
            Status::Warn,
            name,
            format!("{name}={value:?} is set but not supported by pgdap; it is ignored"),
            Some(format!("unset {name}; configure the setting through the Access Point and the PG* variables pgdap reads")),
        ));
    }
    for (vendor, twin) in &settings.conflicts {
        checks.push(check(
            Status::Warn,
            *twin,
            format!(
                "{vendor}={:?} and {twin}={:?} disagree; {vendor} wins",
                env.get(vendor).unwrap_or_default(),
                env.get_raw(twin).unwrap_or_default()
            ),
            Some(format!("unset {twin} or make it equal to {vendor}")),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::variables::{
        PGAPPNAME, PGAUTH, PGCONNECT_TIMEOUT, PGHOST, PGMODE, PGROOTCA, PGSSLCOMPRESSION,
        PGSSLMAXPROTOCOLVERSION, PGSSLMODE, PGSSLROOTCERT, PGSSLSNI,
    };

    fn lines_and_checks_with(
        pairs: &[(&str, &str)],
        password: &str,
    ) -> (Vec<SettingLine>, Vec<Check>) {
        let env = Environment::from_pairs(pairs.iter().copied())
            .with_default_dir("/nonexistent/.postgresql");
        let settings = Settings::resolve(&env, env.default_dir()).unwrap();
        let ap = AccessPoint::new("db1", "d", "u", crate::secret::Password::new(password));
        let mut checks = Vec::new();
        let lines = variable_lines(&ap, &env, &settings, &mut checks);
        (lines, checks)
    }

    fn lines_and_checks(pairs: &[(&str, &str)]) -> (Vec<SettingLine>, Vec<Check>) {
        lines_and_checks_with(pairs, "p")
    }

    #[test]
    fn every_line_by_default() {
        let (lines, checks) = lines_and_checks(&[]);
        let text: Vec<String> = lines
            .iter()
            .map(|l| format!("{} = {} ({})", l.name, l.value, l.source))
            .collect();
        assert_eq!(
            text,
            [
                "PGMODE = prefer (default)",
                "PGAUTH = password (default)",
                "PGROOTCA = /nonexistent/.postgresql/root.crt (default)",
                "PGCERT = /nonexistent/.postgresql/postgresql.crt (default)",
                "PGKEY = /nonexistent/.postgresql/postgresql.key (default)",
                "PGCRL = /nonexistent/.postgresql/postgresql.crl (default)",
                "PGCLIENTENCODING = UTF8 (default)",
                "password in use = *** (access point)",
                "PGPASSFILE = /nonexistent/.pgpass (no matching line (or no file)) (default)",
                "PGAPPNAME = (unset) (default)",
                "PGOPTIONS = (unset) (default)",
                "PGTZ = (unset) (default)",
                "PGDATESTYLE = (unset) (default)",
                "PGCONNECT_TIMEOUT = (unset: ConnectOptions::connect_timeout) (default)",
                "PGCHANNELBINDING = prefer (default)",
                "PGREQUIREAUTH = (unset) (default)",
                "PGSSLNEGOTIATION = postgres (default)",
                "PGSSLMINPROTOCOLVERSION = TLSv1.2 (default)",
                "PGSSLMAXPROTOCOLVERSION = (none) (default)",
                "PGSSLCERTMODE = allow (default)",
                "PGSSLSNI = 1 (default)",
                "PGGSSENCMODE = prefer (default)",
                "PGTARGETSESSIONATTRS = any (default)",
                "PGLOADBALANCEHOSTS = disable (default)",
                "PGREQUIREPEER = (unset) (default)",
                "PGSSLCRLDIR = (unset) (default)",
                "PGMINPROTOCOLVERSION = 3.0 (default)",
                "PGMAXPROTOCOLVERSION = 3.0 (default)",
                "PGSERVICE = (unset) (default)",
                "PGSERVICEFILE = /nonexistent/.pg_service.conf (default)",
                "PGSYSCONFDIR = /etc/postgresql-common/pg_service.conf (default)",
            ]
        );
        assert!(checks.is_empty(), "{checks:?}");
    }

    #[test]
    fn values_and_sources_from_the_environment() {
        let (lines, _) = lines_and_checks_with(
            &[
                (PGSSLMODE.name, "require"),
                (PGSSLROOTCERT.name, "ca.pem"),
                (PGAPPNAME.name, ""),
                (PGCONNECT_TIMEOUT.name, "0"),
                (PGSSLSNI.name, "0"),
                (PGAUTH.name, "cert"),
            ],
            "",
        );
        let find = |name: &str| {
            let l = lines.iter().find(|l| l.name == name).unwrap();
            (l.value.as_str(), l.source.as_str())
        };
        assert_eq!(find(PGMODE.name), ("require", "env PGSSLMODE"));
        assert_eq!(find(PGROOTCA.name), ("ca.pem", "env PGSSLROOTCERT"));
        assert_eq!(find(PGAPPNAME.name), ("", "env"));
        assert_eq!(find(PGCONNECT_TIMEOUT.name), ("no limit", "env"));
        assert_eq!(find(PGSSLSNI.name), ("0", "env"));
        assert_eq!(find("password in use"), ("(none: PGAUTH=cert)", "default"));
    }

    #[test]
    fn ignored_unsupported_and_conflicting_variables_are_warnings() {
        let (_, checks) = lines_and_checks(&[
            (PGHOST.name, "elsewhere"),
            (PGSSLCOMPRESSION.name, ""),
            (PGPASSWORD.name, "hunter2"),
            (PGMODE.name, "require"),
            (PGSSLMODE.name, "disable"),
        ]);
        let text: Vec<String> = checks
            .iter()
            .map(|c| {
                assert_eq!(c.status, Status::Warn);
                format!("{}: {} / {}", c.item, c.found, c.fix.as_deref().unwrap())
            })
            .collect();
        assert_eq!(
            text,
            [
                "PGHOST: PGHOST=\"elsewhere\" is set but ignored: the Access Point wins / unset PGHOST, or change the Access Point",
                "PGPASSWORD: PGPASSWORD is set but ignored: the Access Point has a password / unset PGPASSWORD, or empty the Access Point's password",
                "PGSSLCOMPRESSION: PGSSLCOMPRESSION=\"\" is set but not supported by pgdap; it is ignored / unset PGSSLCOMPRESSION; configure the setting through the Access Point and the PG* variables pgdap reads",
                "PGSSLMODE: PGMODE=\"require\" and PGSSLMODE=\"disable\" disagree; PGMODE wins / unset PGSSLMODE or make it equal to PGMODE",
            ]
        );
        assert!(!format!("{checks:?}").contains("hunter2"));
        // Without an Access Point password, PGPASSWORD is the one in use.
        let (lines, checks) = lines_and_checks_with(&[(PGPASSWORD.name, "hunter2")], "");
        assert!(checks.is_empty(), "{checks:?}");
        let in_use = lines.iter().find(|l| l.name == "password in use").unwrap();
        assert_eq!(
            (in_use.value.as_str(), in_use.source.as_str()),
            ("***", "env")
        );
    }

    #[test]
    fn a_minimum_below_tls_1_2_is_reported_as_raised() {
        let min = PGSSLMINPROTOCOLVERSION.name;
        let (lines, checks) = lines_and_checks(&[(min, "TLSv1")]);
        let line = lines.iter().find(|l| l.name == min).unwrap();
        assert_eq!(line.value, "TLSv1 (raised to TLSv1.2)");
        let c = checks.iter().find(|c| c.item == min).unwrap();
        assert_eq!(c.status, Status::Warn);
        assert!(c.found.contains("raised to TLSv1.2"), "{}", c.found);
        assert!(!c.found.contains("no version is left"), "{}", c.found);

        let (_, checks) =
            lines_and_checks(&[(min, "tlsv1.1"), (PGSSLMAXPROTOCOLVERSION.name, "TLSv1.1")]);
        let c = checks.iter().find(|c| c.item == min).unwrap();
        assert!(
            c.found
                .starts_with("PGSSLMINPROTOCOLVERSION=TLSv1.1 is raised")
                && c.found.contains("every handshake fails"),
            "{}",
            c.found
        );

        for quiet in [&[][..], &[(min, "TLSv1.2")][..], &[(min, "")][..]] {
            let (lines, checks) = lines_and_checks(quiet);
            assert!(checks.iter().all(|c| c.item != min), "{quiet:?}");
            assert!(
                lines.iter().all(|l| !l.value.contains("raised")),
                "{quiet:?}"
            );
        }
    }
}
