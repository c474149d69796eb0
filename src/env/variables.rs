//! The table of the environment variables: each one described once (name, kind, libpq
//! twin, what an empty value means, default, what pgdap does with it, what `doctor`
//! prints).
//!
//! Everything else is derived from [`ALL`]: the public lists ([`VARIABLES`],
//! [`LIBPQ_VARIABLES`], [`OVERRIDDEN_BY_ACCESS_POINT`], [`UNSUPPORTED`], [`TWINS`]), the
//! variables [`Environment::from_process_env`](super::Environment::from_process_env)
//! reads, how [`Settings::resolve`] reads each value, the variable lines and warnings of
//! `doctor`, and the variable tables of docs/environment.md and README.md (a unit test
//! renders them and compares). Adding a variable is one entry here, plus its semantics:
//! a field of [`Settings`] and the line of [`Settings::resolve`] that parses it.
//!
//! The order of [`ALL`] is `doctor`'s order.

use std::fmt::Display;

use super::{Environment, Setting, Settings, Source};

/// One environment variable.
pub(crate) struct Variable {
    /// Its name.
    pub(crate) name: &'static str,
    /// libpq's connection parameter for it (`sslmode` for PGSSLMODE): the key a service
    /// file sets it with. The vendor's variables with a twin have none (the twin's is
    /// theirs).
    pub(crate) keyword: Option<&'static str>,
    /// Who defines it and what pgdap does with it.
    pub(crate) kind: Kind,
    /// What a variable set to the empty string means.
    pub(crate) empty: Empty,
    /// Its default, as the docs show it.
    pub(crate) default: DefaultIs,
    /// What pgdap does with it: its row in the docs (Markdown), and the reason a service
    /// file's key for an unsupported variable is refused.
    pub(crate) doc: &'static str,
    /// What `doctor` prints for it.
    pub(crate) show: Show,
}

/// Who defines a variable and what pgdap does with it.
pub(crate) enum Kind {
    /// The vendor's. `twin`: its libpq twin, read when the vendor's variable is unset or
    /// empty.
    Vendor { twin: Option<&'static Variable> },
    /// libpq's, honoured with libpq's semantics; `since`: the libpq version that has it.
    Libpq {
        #[cfg_attr(
            not(test),
            expect(dead_code, reason = "read to render the docs' tables (tests)")
        )]
        since: &'static str,
    },
    /// libpq's, ignored: the Access Point wins (`doctor` warns when it is set).
    OverriddenByAccessPoint,
    /// libpq's, not supported: ignored, with a warning (log and `doctor`) when set.
    Unsupported,
}

/// What a variable set to the empty string means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Empty {
    /// Unset: the vendor's variables, and the libpq variables libpq itself reads so.
    Unset,
    /// A value, as libpq reads its variables (`PGSSLMODE=""` is invalid).
    Value,
}

/// A default, as the docs show it.
pub(crate) enum DefaultIs {
    /// No default.
    None,
    /// This text (Markdown).
    Text(
        #[cfg_attr(
            not(test),
            expect(dead_code, reason = "read to render the docs' tables (tests)")
        )]
        &'static str,
    ),
    /// This file in the per-user directory; [`Settings::resolve`] reads the name here.
    File(&'static str),
}

/// What `doctor` prints for a variable.
pub(crate) enum Show {
    /// No line: a twin (its value is on the vendor variable's line, whose source says
    /// `env PGSSLMODE`), or a variable that `doctor` reports only when set.
    Nothing,
    /// The line `password in use`: the password actually used and where from, never the
    /// value (it depends on the Access Point, so `doctor` computes it).
    PasswordInUse,
    /// A line: the resolved value and its source (`None`: no line).
    Value(fn(&Settings) -> Option<(String, Source)>),
}

impl Variable {
    /// The value as pgdap reads it: `None` when unset, or when empty if empty means unset.
    pub(crate) fn value<'e>(&self, env: &'e Environment) -> Option<&'e str> {
        match self.empty {
            Empty::Unset => env.get(self.name),
            Empty::Value => env.get_raw(self.name),
        }
    }

    /// The default file of a path variable (PGROOTCA, PGCERT, PGKEY, PGCRL), in the
    /// per-user directory.
    pub(crate) fn default_file(&self) -> &'static str {
        match self.default {
            DefaultIs::File(file) => file,
            _ => unreachable!("{} has no default file", self.name),
        }
    }

    /// The libpq twin of a vendor variable.
    pub(crate) fn twin(&self) -> Option<&'static Variable> {
        match self.kind {
            Kind::Vendor { twin } => twin,
            _ => None,
        }
    }
}

/// Variables are the same when their names are.
impl Eq for Variable {}

impl PartialEq for Variable {
    fn eq(&self, other: &Variable) -> bool {
        self.name == other.name
    }
}

impl std::fmt::Debug for Variable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

// ----- doctor's values -------------------------------------------------------------------

fn shown<T: Display>(s: &Setting<T>) -> Option<(String, Source)> {
    Some((s.value.to_string(), s.source))
}

fn shown_path(s: &Setting<std::path::PathBuf>) -> Option<(String, Source)> {
    Some((s.value.display().to_string(), s.source))
}

fn shown_or_unset<T: Display>(s: &Option<Setting<T>>) -> Option<(String, Source)> {
    Some(match s {
        Some(s) => (s.value.to_string(), s.source),
        None => ("(unset)".to_string(), Source::Default),
    })
}

fn shown_path_or_unset(s: &Option<Setting<std::path::PathBuf>>) -> Option<(String, Source)> {
    match s {
        Some(s) => shown_path(s),
        None => Some(("(unset)".to_string(), Source::Default)),
    }
}

fn shown_version(s: &Setting<Option<super::TlsVersion>>) -> Option<(String, Source)> {
    let text = s.value.map(|v| v.as_str()).unwrap_or("(none)");
    Some((text.to_string(), s.source))
}

// ----- the vendor's variables ------------------------------------------------------------

/// The sslmode.
pub(crate) const PGMODE: Variable = Variable {
    name: "PGMODE",
    keyword: None,
    kind: Kind::Vendor {
        twin: Some(&PGSSLMODE),
    },
    empty: Empty::Unset,
    default: DefaultIs::Text("`prefer`"),
    doc: "`disable`, `allow`, `prefer`, `require`, `verify-ca`, `verify-full` (case-sensitive)",
    show: Show::Value(|s| shown(&s.mode)),
};

/// The authentication method.
pub(crate) const PGAUTH: Variable = Variable {
    name: "PGAUTH",
    keyword: None,
    kind: Kind::Vendor { twin: None },
    empty: Empty::Unset,
    default: DefaultIs::Text("`password`"),
    doc: "`password` (scram-sha-256, md5, password) or `cert` (certificate authentication, SSL only, no password ever sent)",
    show: Show::Value(|s| shown(&s.auth)),
};

/// The root CA file.
pub(crate) const PGROOTCA: Variable = Variable {
    name: "PGROOTCA",
    keyword: None,
    kind: Kind::Vendor {
        twin: Some(&PGSSLROOTCERT),
    },
    empty: Empty::Unset,
    default: DefaultIs::File("root.crt"),
    doc:
        "trusted CA certificates (PEM, several allowed); only these are trusted, never the OS store unless `PGSSLROOTCERT=system` asks for it with `PGROOTCA` unset (`PGROOTCA=system` is refused: it names a file)",
    show: Show::Value(|s| shown_path(&s.root_ca)),
};

/// The client certificate.
pub(crate) const PGCERT: Variable = Variable {
    name: "PGCERT",
    keyword: None,
    kind: Kind::Vendor {
        twin: Some(&PGSSLCERT),
    },
    empty: Empty::Unset,
    default: DefaultIs::File("postgresql.crt"),
    doc: "client certificate (chain), sent when the file exists",
    show: Show::Value(|s| shown_path(&s.cert)),
};

/// The client key.
pub(crate) const PGKEY: Variable = Variable {
    name: "PGKEY",
    keyword: None,
    kind: Kind::Vendor {
        twin: Some(&PGSSLKEY),
    },
    empty: Empty::Unset,
    default: DefaultIs::File("postgresql.key"),
    doc: "its key: PKCS#8, PKCS#1 or SEC1, RSA or EC; mode 0600 (0640 if owned by root)",
    show: Show::Value(|s| shown_path(&s.key)),
};

/// The certificate revocation list.
pub(crate) const PGCRL: Variable = Variable {
    name: "PGCRL",
    keyword: None,
    kind: Kind::Vendor {
        twin: Some(&PGSSLCRL),
    },
    empty: Empty::Unset,
    default: DefaultIs::File("postgresql.crl"),
    doc: "CRL checked against the server certificate when a root CA is in use",
    show: Show::Value(|s| shown_path(&s.crl)),
};

/// The client encoding.
pub(crate) const PGCLIENTENCODING: Variable = Variable {
    name: "PGCLIENTENCODING",
    keyword: Some("client_encoding"),
    kind: Kind::Vendor { twin: None },
    empty: Empty::Unset,
    default: DefaultIs::Text("`UTF8`"),
    doc: "an encoding name or alias as PostgreSQL knows it",
    show: Show::Value(|s| Some((s.encoding.value.name().to_string(), s.encoding.source))),
};

// ----- libpq's: the twins ----------------------------------------------------------------

pub(crate) const PGSSLMODE: Variable = Variable {
    name: "PGSSLMODE",
    keyword: Some("sslmode"),
    kind: Kind::Libpq { since: "15" },
    empty: Empty::Value,
    default: DefaultIs::None,
    doc: "twin of `PGMODE`, read when `PGMODE` is unset or empty; `\"\"` is invalid (libpq's `invalid sslmode value`)",
    show: Show::Nothing,
};

pub(crate) const PGSSLROOTCERT: Variable = Variable {
    name: "PGSSLROOTCERT",
    keyword: Some("sslrootcert"),
    kind: Kind::Libpq { since: "15" },
    empty: Empty::Unset,
    default: DefaultIs::None,
    doc: "twin of `PGROOTCA`, read when `PGROOTCA` is unset or empty; `\"\"` means the default; a relative path is relative to the working directory, as in libpq; `system` is the operating system's trusted roots (OpenSSL's default paths, which honour `SSL_CERT_FILE` and `SSL_CERT_DIR`), as in libpq 16+: the default sslmode becomes verify-full, a weaker mode is libpq's `weak sslmode \"...\" may not be used with sslrootcert=system (use \"verify-full\")`, and no CRL is read",
    show: Show::Nothing,
};

pub(crate) const PGSSLCERT: Variable = Variable {
    name: "PGSSLCERT",
    keyword: Some("sslcert"),
    kind: Kind::Libpq { since: "15" },
    empty: Empty::Unset,
    default: DefaultIs::None,
    doc: "twin of `PGCERT`, read when `PGCERT` is unset or empty; `\"\"` means the default; a relative path is relative to the working directory, as in libpq",
    show: Show::Nothing,
};

pub(crate) const PGSSLKEY: Variable = Variable {
    name: "PGSSLKEY",
    keyword: Some("sslkey"),
    kind: Kind::Libpq { since: "15" },
    empty: Empty::Unset,
    default: DefaultIs::None,
    doc: "twin of `PGKEY`, read when `PGKEY` is unset or empty; `\"\"` means the default; a relative path is relative to the working directory, as in libpq",
    show: Show::Nothing,
};

pub(crate) const PGSSLCRL: Variable = Variable {
    name: "PGSSLCRL",
    keyword: Some("sslcrl"),
    kind: Kind::Libpq { since: "15" },
    empty: Empty::Unset,
    default: DefaultIs::None,
    doc: "twin of `PGCRL`, read when `PGCRL` is unset or empty; `\"\"` means the default; a relative path is relative to the working directory, as in libpq",
    show: Show::Nothing,
};

// ----- libpq's: honoured -----------------------------------------------------------------

pub(crate) const PGPASSWORD: Variable = Variable {
    name: "PGPASSWORD",
    keyword: Some("password"),
    kind: Kind::Libpq { since: "15" },
    empty: Empty::Unset,
    default: DefaultIs::None,
    doc:
        "the password when the Access Point has none; never under `PGAUTH=cert`; `\"\"` means none",
    show: Show::PasswordInUse,
};

pub(crate) const PGPASSFILE: Variable = Variable {
    name: "PGPASSFILE",
    keyword: Some("passfile"),
    kind: Kind::Libpq { since: "15" },
    empty: Empty::Unset,
    default: DefaultIs::Text("`~/.pgpass`; `%APPDATA%\\postgresql\\pgpass.conf`"),
    doc: "`host:port:database:username:password` lines, `*` matches a whole field, `\\:` and `\\\\` escape, `#` comment lines, first match wins (a wrong first match is sent), the password ends at the first unescaped `:`; on Unix a file with any group/other permission bit (0640, 0644) or not a plain file is ignored with libpq's warning (`WARNING: password file \"...\" has group or world access; permissions should be u=rw (0600) or less`); 0700 is accepted; the checks are made on the open file (`fstat`) and the file is read through the same handle, and a file that cannot be opened is ignored silently, as libpq does. Read at each connection, as libpq does; its bytes and the password are wiped from memory after use. Never under `PGAUTH=cert`. `\"\"` means the default.",
    show: Show::Value(|s| s.passfile.as_ref().and_then(shown_path)),
};

pub(crate) const PGAPPNAME: Variable = Variable {
    name: "PGAPPNAME",
    keyword: Some("application_name"),
    kind: Kind::Libpq { since: "15" },
    empty: Empty::Value,
    default: DefaultIs::None,
    doc: "`application_name`; `\"\"` sends no name",
    show: Show::Value(|s| shown_or_unset(&s.application_name)),
};

pub(crate) const PGOPTIONS: Variable = Variable {
    name: "PGOPTIONS",
    keyword: Some("options"),
    kind: Kind::Libpq { since: "15" },
    empty: Empty::Value,
    default: DefaultIs::None,
    doc: "sent unchanged as the `options` start-up parameter; the server splits it (white space; `\\ ` is a literal space)",
    show: Show::Value(|s| shown_or_unset(&s.options)),
};

pub(crate) const PGTZ: Variable = Variable {
    name: "PGTZ",
    keyword: None,
    kind: Kind::Libpq { since: "15" },
    empty: Empty::Value,
    default: DefaultIs::None,
    doc: "`timezone`; `default` (any case) is not sent; sent as a `-c` setting appended to `options` (tokio-postgres cannot send other start-up parameters), which the server applies with the same result",
    show: Show::Value(|s| shown_or_unset(&s.timezone)),
};

pub(crate) const PGDATESTYLE: Variable = Variable {
    name: "PGDATESTYLE",
    keyword: None,
    kind: Kind::Libpq { since: "15" },
    empty: Empty::Value,
    default: DefaultIs::None,
    doc: "`datestyle`; sent as `PGTZ` is",
    show: Show::Value(|s| shown_or_unset(&s.datestyle)),
};

pub(crate) const PGCONNECT_TIMEOUT: Variable = Variable {
    name: "PGCONNECT_TIMEOUT",
    keyword: Some("connect_timeout"),
    kind: Kind::Libpq { since: "15" },
    empty: Empty::Value,
    default: DefaultIs::Text("10 s (`ConnectOptions`)"),
    doc: "seconds, a decimal integer (`0.5`, `2s`, `\"\"` are libpq's `invalid integer value`), 1 means 2, 0 or negative waits forever; bounds each attempt; a timeout is not retried in plaintext by prefer",
    show: Show::Value(|s| {
        Some(match &s.connect_timeout {
            Some(s) => (
                s.value
                    .map(|d| format!("{}s", d.as_secs()))
                    .unwrap_or_else(|| "no limit".to_string()),
                s.source,
            ),
            None => (
                "(unset: ConnectOptions::connect_timeout)".to_string(),
                Source::Default,
            ),
        })
    }),
};

pub(crate) const PGCHANNELBINDING: Variable = Variable {
    name: "PGCHANNELBINDING",
    keyword: Some("channel_binding"),
    kind: Kind::Libpq { since: "13" },
    empty: Empty::Value,
    default: DefaultIs::Text("`prefer`"),
    doc: "disable, prefer, require; under require libpq's refusals before anything is answered: `channel binding required but not supported by server's authentication request` (password/md5), `channel binding required, but SSL not in use` (SCRAM without `-PLUS`), `channel binding required, but server authenticated client without channel binding` (trust, cert)",
    show: Show::Value(|s| shown(&s.channel_binding)),
};

pub(crate) const PGREQUIREAUTH: Variable = Variable {
    name: "PGREQUIREAUTH",
    keyword: Some("require_auth"),
    kind: Kind::Libpq {
        since: "16 (oauth: 18)",
    },
    empty: Empty::Value,
    default: DefaultIs::Text("any"),
    doc: "comma list of password, md5, scram-sha-256, gss, sspi, none, oauth, all with `!` or none with it; case-sensitive, no spaces, duplicates refused; checked on every authentication request before tokio-postgres answers it, with libpq 18's messages (`authentication method requirement \"...\" failed: server requested a hashed password`, `... server did not complete authentication`, ...); `\"\"` allows only connections without authentication (as `none`)",
    show: Show::Value(|s| shown_or_unset(&s.require_auth)),
};

pub(crate) const PGSSLNEGOTIATION: Variable = Variable {
    name: "PGSSLNEGOTIATION",
    keyword: Some("sslnegotiation"),
    kind: Kind::Libpq { since: "17" },
    empty: Empty::Value,
    default: DefaultIs::Text("`postgres`"),
    doc: "`direct`: the TLS handshake starts at once with ALPN `postgresql` (PostgreSQL 17+), one round trip less; refused with disable/allow/prefer (`weak sslmode \"prefer\" may not be used with sslnegotiation=direct ...`); against an older server the connection fails, with no fallback",
    show: Show::Value(|s| shown(&s.ssl_negotiation)),
};

pub(crate) const PGSSLMINPROTOCOLVERSION: Variable = Variable {
    name: "PGSSLMINPROTOCOLVERSION",
    keyword: Some("ssl_min_protocol_version"),
    kind: Kind::Libpq { since: "13" },
    empty: Empty::Value,
    default: DefaultIs::Text("`TLSv1.2`"),
    doc: "TLSv1, TLSv1.1, TLSv1.2, TLSv1.3 (case-insensitive); `\"\"` means no bound; pgdap never negotiates below TLS 1.2: a minimum of TLSv1 or TLSv1.1 is raised to TLSv1.2, logged at debug level when the TLS context is built and shown by `doctor`; under prefer a handshake that fails on the range falls back to plaintext",
    show: Show::Value(|s| shown_version(&s.ssl_min_protocol)),
};

pub(crate) const PGSSLMAXPROTOCOLVERSION: Variable = Variable {
    name: "PGSSLMAXPROTOCOLVERSION",
    keyword: Some("ssl_max_protocol_version"),
    kind: Kind::Libpq { since: "13" },
    empty: Empty::Value,
    default: DefaultIs::Text("none"),
    doc: "the same names; `\"\"` means no bound; a minimum above the maximum is `invalid SSL protocol version range` (so `PGSSLMAXPROTOCOLVERSION=TLSv1.1` alone is invalid)",
    show: Show::Value(|s| shown_version(&s.ssl_max_protocol)),
};

pub(crate) const PGSSLCERTMODE: Variable = Variable {
    name: "PGSSLCERTMODE",
    keyword: Some("sslcertmode"),
    kind: Kind::Libpq { since: "16" },
    empty: Empty::Value,
    default: DefaultIs::Text("`allow`"),
    doc: "disable: the client certificate is never sent (an error with `PGAUTH=cert`); require: `server did not request an SSL certificate` / `server accepted connection without a valid SSL certificate` after authentication, not retried (allow does not retry with SSL)",
    show: Show::Value(|s| shown(&s.ssl_cert_mode)),
};

pub(crate) const PGSSLSNI: Variable = Variable {
    name: "PGSSLSNI",
    keyword: Some("sslsni"),
    kind: Kind::Libpq { since: "14" },
    empty: Empty::Value,
    default: DefaultIs::Text("`1`"),
    doc: "SNI for host names (never for IP addresses) only when the value starts with `1`; `\"\"` turns SNI off",
    show: Show::Value(|s| {
        let on = if s.ssl_sni.value { "1" } else { "0" };
        Some((on.to_string(), s.ssl_sni.source))
    }),
};

pub(crate) const PGGSSENCMODE: Variable = Variable {
    name: "PGGSSENCMODE",
    keyword: Some("gssencmode"),
    kind: Kind::Libpq { since: "12" },
    empty: Empty::Value,
    default: DefaultIs::Text("`prefer`"),
    doc: "pgdap has no GSSAPI: `require` is libpq's `gssencmode value \"require\" invalid when GSSAPI support is not compiled in`; disable and prefer connect without GSSAPI",
    show: Show::Value(|s| shown(&s.gss_enc_mode)),
};

pub(crate) const PGTARGETSESSIONATTRS: Variable = Variable {
    name: "PGTARGETSESSIONATTRS",
    keyword: Some("target_session_attrs"),
    kind: Kind::Libpq {
        since: "14 values",
    },
    empty: Empty::Value,
    default: DefaultIs::Text("`any`"),
    doc: "any, read-write, read-only, primary, standby, prefer-standby; checked after start-up from the ParameterStatus `default_transaction_read_only` / `in_hot_standby` (PostgreSQL 14+; older servers: `SHOW transaction_read_only` or `pg_is_in_recovery()`); refused with libpq's `session is read-only`, `session is not read-only`, `server is in hot standby mode`, `server is not in hot standby mode`. A primary with `default_transaction_read_only=on` is primary and read-only, not read-write. With one server prefer-standby accepts any.",
    show: Show::Value(|s| shown(&s.target_session_attrs)),
};

pub(crate) const PGLOADBALANCEHOSTS: Variable = Variable {
    name: "PGLOADBALANCEHOSTS",
    keyword: Some("load_balance_hosts"),
    kind: Kind::Libpq { since: "16" },
    empty: Empty::Value,
    default: DefaultIs::Text("`disable`"),
    doc: "`disable` tries `dbserver`'s members in the list's order; `random` shuffles the members for every connection, then each member's addresses, as libpq 16 does",
    show: Show::Value(|s| shown(&s.load_balance_hosts)),
};

pub(crate) const PGREQUIREPEER: Variable = Variable {
    name: "PGREQUIREPEER",
    keyword: Some("requirepeer"),
    kind: Kind::Libpq { since: "9.1" },
    empty: Empty::Value,
    default: DefaultIs::None,
    doc: "on a Unix-socket member of `dbserver`, the operating-system user the server must run as (checked with the socket's peer credentials before anything is sent), else libpq's `requirepeer specifies \"X\", but actual peer user name is \"Y\"`; ignored over TCP",
    show: Show::Value(|s| shown_or_unset(&s.require_peer)),
};

pub(crate) const PGSERVICE: Variable = Variable {
    name: "PGSERVICE",
    keyword: Some("service"),
    kind: Kind::Libpq { since: "15" },
    empty: Empty::Value,
    default: DefaultIs::None,
    doc: "a group of a connection service file, found as libpq finds it (`PGSERVICEFILE`, else `~/.pg_service.conf`, then `PGSYSCONFDIR/pg_service.conf`); its keys sit below the vendor's variables and above libpq's variables; `host`, `hostaddr`, `port`, `dbname`, `user` are ignored (the Access Point wins; logged and shown by `doctor`), `sslpassword` is the client key's passphrase, another libpq parameter pgdap does not support is an error naming it; libpq's errors (`definition of service \"x\" not found`, `syntax error in service file \"f\", line N`, `nested service specifications not supported ...`); `\"\"` is a service named `\"\"`",
    show: Show::Value(|s| {
        Some(match &s.service {
            Some(service) => (
                format!("{} (file {})", service.name, service.file.display()),
                Source::Env,
            ),
            None => ("(unset)".to_string(), Source::Default),
        })
    }),
};

pub(crate) const PGSERVICEFILE: Variable = Variable {
    name: "PGSERVICEFILE",
    keyword: None,
    kind: Kind::Libpq { since: "15" },
    empty: Empty::Value,
    default: DefaultIs::Text("`~/.pg_service.conf`; `%APPDATA%\\postgresql\\.pg_service.conf`"),
    doc: "the per-user service file; when set it must exist (libpq's `service file \"...\" not found`), the default is skipped when absent",
    show: Show::Value(|s| shown_path_or_unset(&s.service_file)),
};

pub(crate) const PGSYSCONFDIR: Variable = Variable {
    name: "PGSYSCONFDIR",
    keyword: None,
    kind: Kind::Libpq { since: "15" },
    empty: Empty::Value,
    default: DefaultIs::Text("`/etc/postgresql-common` (Debian's libpq); none on Windows"),
    doc: "the directory of the system-wide `pg_service.conf`, searched when the per-user file has no such service; skipped when absent",
    show: Show::Value(|s| shown_path_or_unset(&s.sysconf_file)),
};

pub(crate) const PGSSLCRLDIR: Variable = Variable {
    name: "PGSSLCRLDIR",
    keyword: Some("sslcrldir"),
    kind: Kind::Libpq { since: "14" },
    empty: Empty::Unset,
    default: DefaultIs::None,
    doc: "a directory of CRLs named by hash (`openssl rehash`), checked with the CRL file when both are set; when set and `PGCRL`/`PGSSLCRL` are not, the default CRL file is not read (libpq); used only with a root CA file; a directory that does not exist is an error (libpq fails every verification with `unable to get certificate CRL`); `\"\"` means unset",
    show: Show::Value(|s| shown_path_or_unset(&s.crl_dir)),
};

pub(crate) const PGMINPROTOCOLVERSION: Variable = Variable {
    name: "PGMINPROTOCOLVERSION",
    keyword: Some("min_protocol_version"),
    kind: Kind::Libpq { since: "18" },
    empty: Empty::Value,
    default: DefaultIs::Text("`3.0`"),
    doc: "`3.0`, `3.2` or `latest` (libpq's `invalid min_protocol_version value`); pgdap speaks protocol 3.0 (tokio-postgres), so a minimum of `3.2` or `latest` is refused with an error saying so, where libpq 18 would connect to a PostgreSQL 18 server and fail with `server only supports protocol version 3.0` against older ones",
    show: Show::Value(|s| shown(&s.min_protocol)),
};

pub(crate) const PGMAXPROTOCOLVERSION: Variable = Variable {
    name: "PGMAXPROTOCOLVERSION",
    keyword: Some("max_protocol_version"),
    kind: Kind::Libpq { since: "18" },
    empty: Empty::Value,
    default: DefaultIs::Text("`3.0`"),
    doc: "`3.0`, `3.2` or `latest`; a minimum above it is libpq's `\"min_protocol_version\" is greater than \"max_protocol_version\"`; pgdap asks for 3.0 whatever the maximum",
    show: Show::Value(|s| shown(&s.max_protocol)),
};

// ----- libpq's: ignored, the Access Point wins --------------------------------------------

pub(crate) const PGHOST: Variable = Variable {
    name: "PGHOST",
    keyword: Some("host"),
    kind: Kind::OverriddenByAccessPoint,
    empty: Empty::Value,
    default: DefaultIs::None,
    doc: "ignored: the Access Point's `dbserver` wins",
    show: Show::Nothing,
};

pub(crate) const PGHOSTADDR: Variable = Variable {
    name: "PGHOSTADDR",
    keyword: Some("hostaddr"),
    kind: Kind::OverriddenByAccessPoint,
    empty: Empty::Value,
    default: DefaultIs::None,
    doc: "ignored: the Access Point's `dbserver` wins",
    show: Show::Nothing,
};

pub(crate) const PGPORT: Variable = Variable {
    name: "PGPORT",
    keyword: Some("port"),
    kind: Kind::OverriddenByAccessPoint,
    empty: Empty::Value,
    default: DefaultIs::None,
    doc: "ignored: the port is always 5432",
    show: Show::Nothing,
};

pub(crate) const PGDATABASE: Variable = Variable {
    name: "PGDATABASE",
    keyword: Some("dbname"),
    kind: Kind::OverriddenByAccessPoint,
    empty: Empty::Value,
    default: DefaultIs::None,
    doc: "ignored: the Access Point's `dbname` wins",
    show: Show::Nothing,
};

pub(crate) const PGUSER: Variable = Variable {
    name: "PGUSER",
    keyword: Some("user"),
    kind: Kind::OverriddenByAccessPoint,
    empty: Empty::Value,
    default: DefaultIs::None,
    doc: "ignored: the Access Point's `username` wins",
    show: Show::Nothing,
};

// ----- libpq's: not supported ------------------------------------------------------------

pub(crate) const PGSSLCOMPRESSION: Variable = Variable {
    name: "PGSSLCOMPRESSION",
    keyword: Some("sslcompression"),
    kind: Kind::Unsupported,
    empty: Empty::Value,
    default: DefaultIs::None,
    doc: "not supported: no SSL compression",
    show: Show::Nothing,
};

/// Every variable pgdap reads, in `doctor`'s order.
pub(crate) const ALL: &[Variable] = &[
    PGMODE,
    PGAUTH,
    PGROOTCA,
    PGCERT,
    PGKEY,
    PGCRL,
    PGCLIENTENCODING,
    PGSSLMODE,
    PGSSLROOTCERT,
    PGSSLCERT,
    PGSSLKEY,
    PGSSLCRL,
    PGPASSWORD,
    PGPASSFILE,
    PGAPPNAME,
    PGOPTIONS,
    PGTZ,
    PGDATESTYLE,
    PGCONNECT_TIMEOUT,
    PGCHANNELBINDING,
    PGREQUIREAUTH,
    PGSSLNEGOTIATION,
    PGSSLMINPROTOCOLVERSION,
    PGSSLMAXPROTOCOLVERSION,
    PGSSLCERTMODE,
    PGSSLSNI,
    PGGSSENCMODE,
    PGTARGETSESSIONATTRS,
    PGLOADBALANCEHOSTS,
    PGREQUIREPEER,
    PGSSLCRLDIR,
    PGMINPROTOCOLVERSION,
    PGMAXPROTOCOLVERSION,
    PGSERVICE,
    PGSERVICEFILE,
    PGSYSCONFDIR,
    PGHOST,
    PGHOSTADDR,
    PGPORT,
    PGDATABASE,
    PGUSER,
    PGSSLCOMPRESSION,
];

// ----- the public lists, derived ---------------------------------------------------------

/// Which variables a derived list holds.
#[derive(Clone, Copy)]
enum List {
    /// The vendor's with a twin, then the vendor's without one.
    Vendor,
    /// Every variable that is not the vendor's.
    Libpq,
    Overridden,
    Unsupported,
}

const fn in_list(variable: &Variable, list: List, pass: u8) -> bool {
    match (list, &variable.kind) {
        (List::Vendor, Kind::Vendor { twin }) => twin.is_some() == (pass == 0),
        (List::Libpq, Kind::Vendor { .. }) => false,
        (List::Libpq, _) => pass == 0,
        (List::Overridden, Kind::OverriddenByAccessPoint) => pass == 0,
        (List::Unsupported, Kind::Unsupported) => pass == 0,
        _ => false,
    }
}

/// The names of `list`, in table order (for [`List::Vendor`], the twinned ones first);
/// `N` must be their number (checked at compile time).
const fn names<const N: usize>(list: List) -> [&'static str; N] {
    let mut out = [""; N];
    let mut n = 0;
    let mut pass = 0;
    while pass < 2 {
        let mut i = 0;
        while i < ALL.len() {
            if in_list(&ALL[i], list, pass) {
                assert!(n < N, "the list is longer than its declared length");
                out[n] = ALL[i].name;
                n += 1;
            }
            i += 1;
        }
        pass += 1;
    }
    assert!(n == N, "the list is shorter than its declared length");
    out
}

const fn twins<const N: usize>() -> [(&'static str, &'static str); N] {
    let mut out = [("", ""); N];
    let mut n = 0;
    let mut i = 0;
    while i < ALL.len() {
        if let Kind::Vendor { twin: Some(twin) } = &ALL[i].kind {
            assert!(n < N, "more twins than declared");
            out[n] = (ALL[i].name, twin.name);
            n += 1;
        }
        i += 1;
    }
    assert!(n == N, "fewer twins than declared");
    out
}

/// The variables pgdap reads: the vendor's (the five with a libpq twin, then PGAUTH and
/// PGCLIENTENCODING; the fuzz target picks them by this order).
pub const VARIABLES: [&str; 7] = names(List::Vendor);

/// libpq's variables pgdap reads as well (docs/design.md §9): the ones it honours, and
/// the ones `doctor` reports as ignored (the Access Point wins) or unsupported.
pub const LIBPQ_VARIABLES: [&str; 35] = names(List::Libpq);

/// The libpq variables that the Access Point overrides (docs/design.md §9).
pub const OVERRIDDEN_BY_ACCESS_POINT: [&str; 5] = names(List::Overridden);

/// The libpq variables pgdap does not support (docs/design.md §9); `doctor` says so when
/// set.
pub const UNSUPPORTED: [&str; 1] = names(List::Unsupported);

/// The vendor's variables and their libpq twins.
pub const TWINS: [(&str, &str); 5] = twins();

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    impl DefaultIs {
        fn text(&self) -> String {
            match self {
                DefaultIs::None => "-".to_string(),
                DefaultIs::Text(text) => text.to_string(),
                DefaultIs::File(file) => format!("`<dir>/{file}`"),
            }
        }
    }

    /// The table of docs/environment.md: every variable, in [`ALL`]'s order.
    fn environment_table() -> String {
        let mut out =
            String::from("| variable | from | default | what pgdap does |\n|---|---|---|---|\n");
        for v in ALL {
            let from = match v.kind {
                Kind::Vendor { .. } => "the vendor".to_string(),
                Kind::Libpq { since } => format!("libpq {since}"),
                Kind::OverriddenByAccessPoint | Kind::Unsupported => "libpq".to_string(),
            };
            out.push_str(&format!(
                "| `{}` | {from} | {} | {} |\n",
                v.name,
                v.default.text(),
                v.doc
            ));
        }
        out
    }

    /// The table of README.md: the vendor's variables.
    fn readme_table() -> String {
        let mut out = String::from("| variable | default | values |\n|---|---|---|\n");
        for v in ALL {
            if let Kind::Vendor { .. } = v.kind {
                out.push_str(&format!(
                    "| `{}` | {} | {} |\n",
                    v.name,
                    v.default.text(),
                    v.doc
                ));
            }
        }
        out
    }

    /// The table in `file` that starts with the header line of `rendered`.
    fn table_in(file: &str, rendered: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let header = rendered.lines().next().unwrap();
        let start = text
            .find(&format!("\n{header}\n"))
            .unwrap_or_else(|| panic!("no table starting with {header:?} in {file}"))
            + 1;
        text[start..]
            .lines()
            .take_while(|l| l.starts_with('|'))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[test]
    fn the_docs_tables_are_the_table() {
        let mut differ = String::new();
        for (file, rendered) in [
            ("docs/environment.md", environment_table()),
            ("README.md", readme_table()),
        ] {
            if table_in(file, &rendered) != rendered {
                differ.push_str(&format!(
                    "\n{file}'s table differs from src/env/variables.rs; it should read:\n\n{rendered}"
                ));
            }
        }
        assert!(differ.is_empty(), "{differ}");
    }

    #[test]
    fn names_are_unique_and_libpq_like() {
        for (i, v) in ALL.iter().enumerate() {
            assert!(
                v.name.starts_with("PG")
                    && v.name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{v:?}"
            );
            assert!(!ALL[..i].contains(v), "{v:?} twice");
        }
    }

    #[test]
    fn twins_are_libpq_variables_read_as_their_vendor_variable() {
        for v in ALL {
            if let Some(twin) = v.twin() {
                assert!(ALL.contains(twin), "{twin:?}");
                assert!(matches!(twin.kind, Kind::Libpq { .. }), "{twin:?}");
                assert!(matches!(twin.show, Show::Nothing), "{twin:?}");
                assert_eq!(v.empty, Empty::Unset, "{v:?}");
            }
        }
        assert_eq!(TWINS.len(), 5);
    }

    #[test]
    fn the_lists_partition_the_table() {
        let mut all: Vec<&str> = VARIABLES.iter().chain(&LIBPQ_VARIABLES).copied().collect();
        assert_eq!(all.len(), ALL.len());
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), ALL.len());
        for name in OVERRIDDEN_BY_ACCESS_POINT.iter().chain(&UNSUPPORTED) {
            assert!(LIBPQ_VARIABLES.contains(name), "{name}");
        }
        // The fuzz target's seeds pick the vendor's variables by this order.
        assert_eq!(VARIABLES[0], PGMODE.name);
        assert_eq!(VARIABLES[5], PGAUTH.name);
        assert_eq!(VARIABLES[6], PGCLIENTENCODING.name);
    }

    #[test]
    fn documented_defaults_are_doctors_defaults() {
        let dir = Path::new("/home/op/.postgresql");
        let settings = Settings::resolve(&Environment::default(), Some(dir)).unwrap();
        for v in ALL {
            let Show::Value(show) = v.show else { continue };
            let Some((value, source)) = show(&settings) else {
                continue;
            };
            let expected = match v.default {
                DefaultIs::File(file) => dir.join(file).display().to_string(),
                DefaultIs::Text(text) => {
                    match text.strip_prefix('`').and_then(|t| t.strip_suffix('`')) {
                        Some(code) if !code.contains('`') => code.to_string(),
                        _ => continue,
                    }
                }
                DefaultIs::None => continue,
            };
            assert_eq!((value, source), (expected, Source::Default), "{v:?}");
        }
    }
}
