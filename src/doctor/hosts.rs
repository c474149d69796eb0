//! Each member of `dbserver`: its addresses, whether it takes a session, and its role.

use serde::Serialize;

use crate::access_point::{AccessPoint, Host};
use crate::connect::{Config, ConnectOptions, Connector};
use crate::env::{LoadBalanceHosts, Setting, Settings, Source, TargetSessionAttrs};

/// One member of `dbserver`, tried on its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostReport {
    /// The member as written.
    pub host: String,
    /// What it resolved to (a socket directory: its socket file).
    pub addresses: Vec<String>,
    /// `SSL TLSv1.3`, `plaintext`, or the error.
    pub outcome: String,
    /// Whether a session was established.
    pub connected: bool,
    /// `primary`, `primary (read-only)` or `standby`, when connected.
    pub role: Option<String>,
}

/// Connects to every member alone (PGTARGETSESSIONATTRS=any, the list's order), one
/// after another, and reports each.
pub(crate) async fn host_reports(
    ap: &AccessPoint,
    settings: &Settings,
    options: &ConnectOptions,
) -> Vec<HostReport> {
    let mut reports = Vec::new();
    for host in ap.hosts() {
        reports.push(host_report(ap, &host, settings, options).await);
    }
    reports
}

async fn host_report(
    ap: &AccessPoint,
    host: &Host,
    settings: &Settings,
    options: &ConnectOptions,
) -> HostReport {
    let addresses = match crate::connect::socket::resolve(host).await {
        Ok(peers) => peers.iter().map(ToString::to_string).collect(),
        Err(e) => vec![format!("(none: {e})")],
    };
    let mut report = HostReport {
        host: host.to_string(),
        addresses,
        outcome: String::new(),
        connected: false,
        role: None,
    };
    let one = AccessPoint::new(
        host.to_string(),
        ap.dbname(),
        ap.username(),
        ap.password().clone(),
    );
    let mut alone = settings.clone();
    alone.target_session_attrs = Setting {
        value: TargetSessionAttrs::Any,
        source: Source::Default,
    };
    alone.load_balance_hosts = Setting {
        value: LoadBalanceHosts::Disable,
        source: Source::Default,
    };
    let connector = match Connector::new(Config::from_parts(one, alone, options.clone())) {
        Ok(c) => c,
        Err(e) => {
            report.outcome = e.to_string();
            return report;
        }
    };
    match connector.connect_spawned().await {
        Err(e) => report.outcome = e.to_string(),
        Ok(session) => {
            report.connected = true;
            report.outcome = match &session.tls {
                Some(tls) => format!("SSL {}", tls.version),
                None => "plaintext".to_string(),
            };
            let role = session
                .client
                .query_one(
                    "select pg_catalog.pg_is_in_recovery(), current_setting('default_transaction_read_only')",
                    &[],
                )
                .await
                .ok()
                .map(|row| (row.get::<_, bool>(0), row.get::<_, String>(1)));
            report.role = role.map(|(standby, read_only)| {
                match (standby, read_only == "on") {
                    (true, _) => "standby",
                    (false, true) => "primary (read-only)",
                    (false, false) => "primary",
                }
                .to_string()
            });
        }
    }
    report
}
