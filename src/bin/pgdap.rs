//! `pgdap`: the operator's command (feature `cli`).
//!
//! ```text
//! cargo install pgdap --features cli          # or: cargo install --path . --features cli
//! pgdap doctor --config /etc/app/dap.cfg      # what is configured, what is wrong, the fix
//! pgdap connect --config /etc/app/dap.cfg     # one connection, one JSON line
//! pgdap convert --encoding Win1252 --decode < in > out
//! pgdap bench --config /etc/app/dap.cfg --n 200
//! ```
//!
//! Every subcommand is a thin layer over the library: `pgdap::doctor::diagnose`,
//! `pgdap::session_info::SessionInfo`, `pgdap::encoding::ClientEncoding` and
//! `pgdap::Connector`/`pgdap::Pool`, so the command behaves exactly as a service using the
//! crate with the same Access Point and environment.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use pgdap::encoding::ClientEncoding;

/// The environment variables, as every subcommand's help lists them.
const ENVIRONMENT: &str = "\
Environment (empty means unset; <dir> is ~/.postgresql/, %APPDATA%\\postgresql\\ on Windows):
  PGMODE            disable | allow | prefer (default) | require | verify-ca | verify-full,
                    with libpq's sslmode semantics
  PGROOTCA          trusted CA certificates, PEM (default <dir>/root.crt); only these are
                    trusted, never the system store
  PGCERT            client certificate (chain), sent when the file exists
                    (default <dir>/postgresql.crt)
  PGKEY             its private key, mode 0600 or 0640 owned by root
                    (default <dir>/postgresql.key)
  PGCRL             certificate revocation list checked against the server certificate
                    (default <dir>/postgresql.crl)
  PGAUTH            password (default: scram-sha-256, md5 or password) | cert (certificate
                    authentication, no password is ever sent)
  PGCLIENTENCODING  the client encoding of the application's data (default UTF8)
Relative paths are relative to <dir>.";

/// The Access Point file format, for the subcommands that read one.
const ACCESS_POINT: &str = "\
The Access Point file (port is always 5432; '#' comments and blank lines are ignored):
  dbengine=postgre
  dbserver=<host name or IP address>
  dbname=<database>
  username=<user>
  password=<password, may be empty or absent>";

#[derive(Parser)]
#[command(
    name = "pgdap",
    version,
    about = "Connect to PostgreSQL as an operator configured it: an Access Point file plus the PG* variables, with libpq's sslmode semantics",
    after_help = ENVIRONMENT
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Diagnose an Access Point and the PG* variables: resolved settings and their source,
    /// certificate files, the connection, server settings and encodings, each OK/WARN/FAIL
    /// with the fix.
    #[command(after_help = format!("{ACCESS_POINT}\n\n{ENVIRONMENT}\n\nExit status: 0 when no check failed (warnings allowed), 1 when one failed, 2 on a usage error."))]
    Doctor(DoctorArgs),
    /// Connect once, run one query, print the session as one JSON object (ssl,
    /// tls_version, cipher, server_verified, server_version, user, database,
    /// server_encoding, client_encoding, wire_encoding).
    #[command(after_help = format!("{ACCESS_POINT}\n\n{ENVIRONMENT}\n\nExit status: 0 when connected, 1 with the whole cause chain on stderr when not, 2 on a usage error."))]
    Connect(ConfigArg),
    /// Convert stdin to stdout between UTF-8 and a client encoding, byte-exact with
    /// PostgreSQL's convert_to()/convert_from().
    #[command(after_help = "\
ENCODING is any name or alias PostgreSQL accepts (Win1252, LATIN1, SJIS, ...). Nothing but
the converted bytes is written to stdout.

Exit status: 0 on success, 1 when the input cannot be converted (stderr names the byte
sequence or character and its offset), 2 on a usage error or an unknown encoding.")]
    Convert(ConvertArgs),
    /// Measure connection latency: N connections one after another (connect, `select 1`,
    /// close) through one Connector, or N pool checkouts with --pool.
    #[command(after_help = format!("{ACCESS_POINT}\n\n{ENVIRONMENT}\n\nPrints one JSON object: n, median_ms, p90_ms, mean_ms, min_ms, max_ms, ssl, pool, build.\nTimings of a debug build are not representative: install with `cargo install` (release)."))]
    Bench(BenchArgs),
}

#[derive(Args)]
struct ConfigArg {
    /// The Access Point file.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

#[derive(Args)]
struct DoctorArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Print the report as one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Warn about certificates that expire within this many days.
    #[arg(long, value_name = "N", default_value_t = 30)]
    expiry_days: i64,
}

#[derive(Args)]
#[group(required = true, multiple = false, id = "direction")]
struct Direction {
    /// Read bytes in ENCODING on stdin, write UTF-8 text on stdout.
    #[arg(long)]
    decode: bool,
    /// Read UTF-8 text on stdin, write bytes in ENCODING on stdout.
    #[arg(long)]
    encode: bool,
}

#[derive(Args)]
struct ConvertArgs {
    /// The client encoding (a PostgreSQL name or alias).
    #[arg(long, value_name = "ENCODING")]
    encoding: String,
    #[command(flatten)]
    direction: Direction,
}

#[derive(Args)]
struct BenchArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Timed connections (or checkouts with --pool).
    #[arg(long, value_name = "N", default_value_t = 100)]
    n: usize,
    /// Untimed connections first.
    #[arg(long, value_name = "W", default_value_t = 5)]
    warmup: usize,
    /// Time checkouts from a pgdap::Pool of size 1 instead of new connections.
    #[arg(long)]
    pool: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pgdap: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Doctor(args) => runtime.block_on(doctor(args)),
        Command::Connect(args) => runtime.block_on(connect(args)),
        Command::Convert(args) => convert(args),
        Command::Bench(args) => runtime.block_on(bench(args)),
    }
}

async fn doctor(args: DoctorArgs) -> ExitCode {
    let ap = match pgdap::AccessPoint::from_file(&args.config.config) {
        Ok(ap) => ap,
        Err(e) => {
            eprintln!("pgdap doctor: {}", chain(&e));
            return ExitCode::FAILURE;
        }
    };
    let opts = pgdap::doctor::DoctorOptions {
        expiry_warning_days: args.expiry_days,
        ..Default::default()
    };
    let report = pgdap::doctor::diagnose(&ap, &pgdap::Environment::from_process_env(), &opts).await;
    if args.json {
        match serde_json::to_string(&report) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("pgdap doctor: cannot serialize the report: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{report}");
    }
    if report.status() == pgdap::doctor::Status::Fail {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn connect(args: ConfigArg) -> ExitCode {
    let result = async {
        let ap = pgdap::AccessPoint::from_file(&args.config)?;
        let config = pgdap::Config::new(ap, &pgdap::Environment::from_process_env())?;
        let session = connector(config)?.connect_spawned().await?;
        pgdap::session_info::SessionInfo::query(&session).await
    }
    .await;
    match result.map(|info| serde_json::to_string(&info)) {
        Ok(Ok(json)) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("pgdap connect: cannot serialize the session: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("pgdap connect: {}", chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn convert(args: ConvertArgs) -> ExitCode {
    let Some(encoding) = ClientEncoding::from_name(&args.encoding) else {
        eprintln!(
            "pgdap convert: unknown encoding {:?}; valid encodings: {}",
            args.encoding,
            ClientEncoding::NAMES.join(", ")
        );
        return ExitCode::from(2);
    };
    let mut input = Vec::new();
    if let Err(e) = io::stdin().lock().read_to_end(&mut input) {
        eprintln!("pgdap convert: cannot read stdin: {e}");
        return ExitCode::FAILURE;
    }
    let output = if args.direction.decode {
        encoding.decode(&input).map(String::into_bytes)
    } else {
        // The input must itself be UTF-8 (without NUL): checked as PostgreSQL would.
        ClientEncoding::Utf8
            .decode(&input)
            .and_then(|text| encoding.encode(&text))
    };
    match output {
        Ok(bytes) => {
            let mut stdout = io::stdout().lock();
            if let Err(e) = stdout.write_all(&bytes).and_then(|()| stdout.flush()) {
                eprintln!("pgdap convert: cannot write stdout: {e}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pgdap convert: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn bench(args: BenchArgs) -> ExitCode {
    if cfg!(debug_assertions) {
        eprintln!(
            "pgdap bench: this is a debug build; its timings are several times slower than a \
             release build's (cargo install, or cargo run --release)"
        );
    }
    match run_bench(&args).await {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pgdap bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_bench(args: &BenchArgs) -> Result<serde_json::Value, String> {
    if args.n == 0 {
        return Err("--n must be at least 1".into());
    }
    let ap = pgdap::AccessPoint::from_file(&args.config.config).map_err(|e| chain(&e))?;
    let config =
        pgdap::Config::new(ap, &pgdap::Environment::from_process_env()).map_err(|e| chain(&e))?;
    let mut times = Vec::with_capacity(args.n);
    let ssl;
    if args.pool {
        let options = pgdap::PoolOptions {
            max_size: 1,
            ..Default::default()
        };
        let pool = pgdap::Pool::from_config(config, options).map_err(|e| e.to_string())?;
        let first = pool.get().await.map_err(|e| e.to_string())?;
        ssl = first.tls.is_some();
        drop(first);
        for i in 0..args.warmup + args.n {
            let start = Instant::now();
            let session = pool.get().await.map_err(|e| e.to_string())?;
            drop(session);
            if i >= args.warmup {
                times.push(start.elapsed());
            }
        }
    } else {
        let connector = connector(config).map_err(|e| chain(&e))?;
        let mut encrypted = false;
        for i in 0..args.warmup + args.n {
            let start = Instant::now();
            let session = connector.connect_spawned().await.map_err(|e| chain(&e))?;
            session
                .client
                .simple_query("select 1")
                .await
                .map_err(|e| e.to_string())?;
            encrypted = session.tls.is_some();
            drop(session.client);
            let _ = session.task.await;
            if i >= args.warmup {
                times.push(start.elapsed());
            }
        }
        ssl = encrypted;
    }
    let mut summary = summarize(times);
    summary["ssl"] = ssl.into();
    summary["pool"] = args.pool.into();
    summary["build"] = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
    .into();
    Ok(summary)
}

/// n, median, p90, mean, min and max in milliseconds (three decimals).
fn summarize(mut times: Vec<Duration>) -> serde_json::Value {
    times.sort();
    let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    let at = |q: f64| {
        let i = ((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1;
        times.get(i).copied().map(ms).unwrap_or(0.0)
    };
    let total: Duration = times.iter().sum();
    let mean = if times.is_empty() {
        0.0
    } else {
        ms(total / times.len() as u32)
    };
    serde_json::json!({
        "n": times.len(),
        "median_ms": at(0.5),
        "p90_ms": at(0.9),
        "mean_ms": mean,
        "min_ms": times.first().copied().map(ms).unwrap_or(0.0),
        "max_ms": times.last().copied().map(ms).unwrap_or(0.0),
    })
}

/// The error and every source below it, on one line (pgdap's one formatter, as the
/// `connect` example prints it).
/// A connector for `config`; when the client key is encrypted and no passphrase was
/// given (a service file's `sslpassword`), asks for it on the terminal without echo, as
/// psql does (OpenSSL's prompt), and never when stdin is not a terminal.
fn connector(config: pgdap::Config) -> Result<pgdap::Connector, pgdap::Error> {
    use std::io::IsTerminal;
    match pgdap::Connector::new(config.clone()) {
        Err(pgdap::Error::ClientKeyEncrypted { path }) if std::io::stdin().is_terminal() => {
            let prompt = format!("Enter PEM pass phrase for \"{}\": ", path.display());
            let passphrase = rpassword::prompt_password(prompt)
                .map_err(|_| pgdap::Error::ClientKeyEncrypted { path: path.clone() })?;
            let options = pgdap::ConnectOptions {
                key_passphrase: Some(pgdap::Password::new(passphrase)),
                ..config.options().clone()
            };
            pgdap::Connector::new(config.with_options(options))
        }
        other => other,
    }
}

fn chain(e: &pgdap::Error) -> String {
    e.chain().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn convert_needs_exactly_one_direction() {
        assert!(Cli::try_parse_from(["pgdap", "convert", "--encoding", "LATIN1"]).is_err());
        assert!(Cli::try_parse_from([
            "pgdap",
            "convert",
            "--encoding",
            "LATIN1",
            "--decode",
            "--encode"
        ])
        .is_err());
        assert!(
            Cli::try_parse_from(["pgdap", "convert", "--encoding", "LATIN1", "--decode"]).is_ok()
        );
    }

    #[test]
    fn summary_quantiles() {
        let times = (1..=10).map(Duration::from_millis).collect();
        let s = summarize(times);
        assert_eq!(s["n"], 10);
        assert_eq!(s["median_ms"], 5.0);
        assert_eq!(s["p90_ms"], 9.0);
        assert_eq!(s["min_ms"], 1.0);
        assert_eq!(s["max_ms"], 10.0);
        assert_eq!(s["mean_ms"], 5.5);
    }
}
