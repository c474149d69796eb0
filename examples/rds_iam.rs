//! `rds_iam --config FILE [--region REGION] [--print-token]` (feature `rds-iam`): connects
//! to Amazon RDS or Aurora PostgreSQL with IAM database authentication. The password is a
//! token that the AWS SDK's own signer (`aws_sdk_rds::auth_token::AuthTokenGenerator`)
//! makes from the instance's host, port 5432, the Access Point's user and AWS credentials;
//! it is valid for 15 minutes, so it is handed to pgdap as a `CredentialProvider` with
//! that expiry, and every new connection (a pool's too) gets a fresh token ahead of it.
//!
//! RDS accepts IAM tokens only over SSL: PGMODE must be `require` or stricter
//! (`verify-full` with the RDS CA bundle as PGROOTCA is what AWS recommends); a weaker
//! mode is refused before any token is made. The Access Point's password is not used.
//!
//! AWS credentials come from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
//! `AWS_SESSION_TOKEN` here, to keep the example free of an HTTPS client; a service would
//! load the SDK's default chain (`aws_config::load_defaults`: profiles, ECS/EKS roles,
//! instance metadata) and pass that `SdkConfig` instead. Token generation is offline
//! signing: `--print-token` prints one without connecting.
//!
//! The last line of stdout is `{"user": ..., "ssl": true, "token_expires_in_s": ...}`.
//! Exit status: 0 connected (or printed), 1 a bad setting or a failed connection, 2 a bad
//! command line.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use aws_sdk_rds::auth_token::{AuthTokenGenerator, Config as TokenConfig};
use aws_types::region::Region;
use aws_types::SdkConfig;
use pgdap::credentials::{BoxError, Credential, CredentialFuture, CredentialProvider};

/// RDS IAM tokens are valid for 15 minutes.
const TOKEN_LIFETIME: Duration = Duration::from_secs(900);

/// A credential provider making RDS IAM auth tokens with the AWS SDK.
struct RdsIamProvider {
    generator: AuthTokenGenerator,
    sdk: SdkConfig,
}

impl RdsIamProvider {
    fn new(host: &str, user: &str, region: &str, sdk: SdkConfig) -> Result<Self, BoxError> {
        let config = TokenConfig::builder()
            .hostname(host)
            .port(5432)
            .username(user)
            .region(Region::new(region.to_string()))
            .expires_in(TOKEN_LIFETIME.as_secs())
            .build()?;
        Ok(RdsIamProvider {
            generator: AuthTokenGenerator::new(config),
            sdk,
        })
    }
}

impl CredentialProvider for RdsIamProvider {
    fn name(&self) -> &str {
        "rds-iam"
    }

    fn fetch(&self) -> CredentialFuture<'_> {
        Box::pin(async move {
            let issued = SystemTime::now();
            let token = self.generator.auth_token(&self.sdk).await?;
            Ok(Credential::new(pgdap::Password::new(token.to_string()))
                .expiring_at(issued + TOKEN_LIFETIME))
        })
    }
}

/// The SDK configuration: credentials from the environment and the system clock.
fn sdk_config(region: &str) -> Result<SdkConfig, BoxError> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let credentials = aws_credential_types::Credentials::new(
        var("AWS_ACCESS_KEY_ID")?,
        var("AWS_SECRET_ACCESS_KEY")?,
        std::env::var("AWS_SESSION_TOKEN").ok(),
        None,
        "environment",
    );
    Ok(SdkConfig::builder()
        .region(Region::new(region.to_string()))
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
        )
        .time_source(aws_types::sdk_config::SharedTimeSource::default())
        .build())
}

struct Args {
    config: std::path::PathBuf,
    region: String,
    print_token: bool,
}

const USAGE: &str = "usage: rds_iam --config FILE [--region REGION] [--print-token]\n\
\n\
Connects with an RDS IAM auth token (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,\n\
AWS_SESSION_TOKEN; region from --region, else AWS_REGION, else us-east-1) as the password;\n\
PGMODE must be require, verify-ca or verify-full. --print-token prints a token and exits.";

fn parse() -> Result<Args, ExitCode> {
    let mut args = Args {
        config: Default::default(),
        region: std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
        print_token: false,
    };
    let mut config = None;
    let mut argv = std::env::args().skip(1);
    let bad = |why: String| {
        eprintln!("rds_iam: {why}\n{USAGE}");
        Err(ExitCode::from(2))
    };
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Err(ExitCode::SUCCESS);
            }
            "--print-token" => args.print_token = true,
            "--config" | "--region" => {
                let Some(value) = argv.next() else {
                    return bad(format!("{arg} needs a value"));
                };
                if arg == "--config" {
                    config = Some(value.into());
                } else {
                    args.region = value;
                }
            }
            other => return bad(format!("unexpected argument {other:?}")),
        }
    }
    match config {
        Some(c) => {
            args.config = c;
            Ok(args)
        }
        None => bad("--config FILE is required".into()),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(code) => return code,
    };
    match run(&args).await {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rds_iam: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<String, pgdap::error::Report> {
    let ap = pgdap::AccessPoint::from_file(&args.config)?;
    let config = pgdap::Config::new(ap.clone(), &pgdap::Environment::from_process_env())?;
    let mode = config.settings().mode.value;
    if !matches!(
        mode,
        pgdap::SslMode::Require | pgdap::SslMode::VerifyCa | pgdap::SslMode::VerifyFull
    ) {
        return Err(std::io::Error::other(format!(
            "PGMODE={mode}: RDS IAM authentication needs SSL; set PGMODE to require, verify-ca or verify-full (verify-full with the RDS CA bundle as PGROOTCA)"
        ))
        .into());
    }
    let sdk = sdk_config(&args.region).map_err(std::io::Error::other)?;
    let provider = RdsIamProvider::new(ap.server(), ap.username(), &args.region, sdk)
        .map_err(std::io::Error::other)?;
    if args.print_token {
        let credential = provider.fetch().await.map_err(std::io::Error::other)?;
        return Ok(credential.secret.expose().to_string());
    }
    let connector = pgdap::Connector::new(config)?.with_credential_provider(provider);
    let session = connector.connect_spawned().await?;
    let user: String = session
        .client
        .query_one("select current_user::text", &[])
        .await
        .map_err(pgdap::Error::Query)?
        .get(0);
    let expires_in = connector
        .credential_status()
        .and_then(|s| s.expires_at)
        .and_then(|at| at.duration_since(SystemTime::now()).ok())
        .map_or(0, |d| d.as_secs());
    Ok(serde_json::json!({
        "user": user,
        "ssl": session.tls.is_some(),
        "token_expires_in_s": expires_in,
    })
    .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The token's shape, offline: what RDS checks is signed into it.
    #[tokio::test]
    async fn the_token_names_the_instance_the_user_and_a_15_minute_signature() {
        let credentials = aws_credential_types::Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        );
        let sdk = SdkConfig::builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
            )
            .time_source(aws_types::sdk_config::SharedTimeSource::default())
            .build();
        let host = "app-db.abc123.eu-west-1.rds.amazonaws.com";
        let provider = RdsIamProvider::new(host, "app_user", "eu-west-1", sdk).unwrap();
        let before = SystemTime::now();
        let credential = provider.fetch().await.unwrap();
        let token = credential.secret.expose();
        assert!(
            token.starts_with(&format!("{host}:5432/?Action=connect&DBUser=app_user&")),
            "{token}"
        );
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F",
            "%2Feu-west-1%2Frds-db%2Faws4_request",
            "X-Amz-Expires=900",
            "X-Amz-SignedHeaders=host",
            "X-Amz-Signature=",
        ] {
            assert!(token.contains(part), "{part} missing from {token}");
        }
        let expires = credential.expires_at.unwrap();
        let lifetime = expires.duration_since(before).unwrap();
        assert!(lifetime >= TOKEN_LIFETIME && lifetime < TOKEN_LIFETIME + Duration::from_secs(5));
        assert_eq!(provider.name(), "rds-iam");
        // Never printed whole through Debug.
        assert_eq!(format!("{:?}", credential.secret), "***");
    }
}
