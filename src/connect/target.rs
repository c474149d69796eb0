//! `PGTARGETSESSIONATTRS` on each member tried: after start-up, the session is checked
//! as libpq 14+ checks it (`PQconnectPoll`, `CONNECTION_CHECK_TARGET`) and refused with
//! libpq's message when it does not fit, and the next member is tried, so a pool never
//! hands a read-only session to a read-write service after a failover.
//!
//! | value | refused when | libpq's message |
//! |---|---|---|
//! | read-write | `default_transaction_read_only` or `in_hot_standby` is on | session is read-only |
//! | read-only | neither is on | session is not read-only |
//! | primary | `in_hot_standby` is on | server is in hot standby mode |
//! | standby | `in_hot_standby` is off | server is not in hot standby mode |
//! | any | never | |
//! | prefer-standby | first pass over the members: as standby; second pass: never | |
//!
//! PostgreSQL 14+ reports both settings at start-up (ParameterStatus); for older
//! servers libpq asks, and so does pgdap: `SHOW transaction_read_only` or
//! `SELECT pg_catalog.pg_is_in_recovery()`.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use tokio_postgres::{Client, Connection, SimpleQueryMessage};

use super::hosts::Pass;
use super::sequence::Failure;
use crate::env::variables::PGSSLCERTMODE;
use crate::env::{Settings, SslCertMode, TargetSessionAttrs};
use crate::error::Error;

/// What the server said of the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SessionState {
    /// `default_transaction_read_only` (or `transaction_read_only` from a query).
    pub(crate) read_only: bool,
    /// `in_hot_standby` (or `pg_is_in_recovery()`).
    pub(crate) hot_standby: bool,
}

/// What a server reported of its role, kept current by the session's connection task:
/// PostgreSQL 14+ sends `in_hot_standby` and `default_transaction_read_only` at start-up
/// and again whenever they change (a promotion, `ALTER SYSTEM` + reload), so knowing the
/// role of a pooled connection costs no round trip. Unknown on older servers and for the
/// blocking adapter's sessions.
///
/// ```no_run
/// # async fn run(connector: pgdap::Connector) -> Result<(), pgdap::Error> {
/// let session = connector.connect_spawned().await?;
/// if session.server_role().hot_standby() == Some(true) {
///     println!("connected to a standby");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct ServerRole {
    /// 0 unknown, 1 off, 2 on.
    hot_standby: std::sync::atomic::AtomicU8,
    read_only: std::sync::atomic::AtomicU8,
}

fn tri(value: Option<&str>) -> u8 {
    match value {
        None => 0,
        Some("on") => 2,
        Some(_) => 1,
    }
}

fn untri(value: u8) -> Option<bool> {
    match value {
        0 => None,
        v => Some(v == 2),
    }
}

impl ServerRole {
    /// `in_hot_standby` as last reported (`None`: not reported).
    pub fn hot_standby(&self) -> Option<bool> {
        untri(self.hot_standby.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// `default_transaction_read_only` as last reported (`None`: not reported).
    pub fn read_only(&self) -> Option<bool> {
        untri(self.read_only.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Takes the values the connection holds now (called by the connection task on
    /// every wake-up: two map lookups).
    pub(crate) fn update(&self, hot_standby: Option<&str>, read_only: Option<&str>) {
        use std::sync::atomic::Ordering::Relaxed;
        self.hot_standby.store(tri(hot_standby), Relaxed);
        self.read_only.store(tri(read_only), Relaxed);
    }

    /// Whether a session on this server still fits `attrs` by what it reported; `None`
    /// when it did not report both values (a server before 14: ask it).
    pub fn fits(&self, attrs: TargetSessionAttrs) -> Option<bool> {
        if matches!(
            attrs,
            TargetSessionAttrs::Any | TargetSessionAttrs::PreferStandby
        ) {
            return Some(true);
        }
        let (hot_standby, read_only) = (self.hot_standby()?, self.read_only()?);
        Some(
            decide(
                attrs,
                SessionState {
                    read_only: read_only || hot_standby,
                    hot_standby,
                },
            )
            .is_ok(),
        )
    }
}

/// libpq's decision for one state: `Err` with libpq's message when refused.
pub(crate) fn decide(attrs: TargetSessionAttrs, state: SessionState) -> Result<(), &'static str> {
    match attrs {
        TargetSessionAttrs::ReadWrite if state.read_only => Err("session is read-only"),
        TargetSessionAttrs::ReadOnly if !state.read_only => Err("session is not read-only"),
        TargetSessionAttrs::Primary if state.hot_standby => Err("server is in hot standby mode"),
        TargetSessionAttrs::Standby if !state.hot_standby => {
            Err("server is not in hot standby mode")
        }
        _ => Ok(()),
    }
}

fn on(value: &str) -> bool {
    value == "on"
}

/// What TLS saw of client certificates in the attempt.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CertFacts {
    /// The server asked for a client certificate.
    pub(crate) requested: bool,
    /// A client certificate was available to send.
    pub(crate) loaded: bool,
}

/// libpq 16's `sslcertmode=require` (checked at AuthenticationOk in libpq; the outcome is
/// the same here, after start-up, and never retried).
pub(crate) fn cert_mode_check(
    settings: &Settings,
    facts: CertFacts,
    host: &str,
) -> Result<(), Error> {
    if settings.ssl_cert_mode.value != SslCertMode::Require {
        return Ok(());
    }
    let reason = if !facts.requested {
        "server did not request an SSL certificate"
    } else if !facts.loaded {
        "server accepted connection without a valid SSL certificate"
    } else {
        return Ok(());
    };
    Err(Error::LibpqSetting {
        var: PGSSLCERTMODE.name,
        reason: crate::error::attempt_failed(host, reason),
    })
}

/// Checks a freshly started session: PGSSLCERTMODE=require (a failure ends the walk),
/// then what this pass of PGTARGETSESSIONATTRS asks (a mismatch, or a failed query, sends
/// libpq to the next host). The connection is driven here while a query runs (servers
/// older than 14 only).
pub(crate) async fn check<S, T>(
    settings: &Settings,
    certs: CertFacts,
    host: &str,
    pass: Pass,
    client: &Client,
    connection: &mut Connection<S, T>,
) -> Result<(), Failure>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    cert_mode_check(settings, certs, host).map_err(Failure::fatal)?;
    let check = pass.check;
    if check == TargetSessionAttrs::Any {
        return Ok(());
    }
    let reported_ro = connection
        .parameter("default_transaction_read_only")
        .map(on);
    let reported_hs = connection.parameter("in_hot_standby").map(on);
    let state = match (reported_ro, reported_hs) {
        (Some(read_only), Some(hot_standby)) => SessionState {
            read_only: read_only || hot_standby,
            hot_standby,
        },
        // Servers before 14: ask, as libpq does.
        _ => {
            let Some(sql) = state_query(check) else {
                return Ok(());
            };
            let value = query_value(client, connection, sql).await.map_err(|e| {
                let reason = match e {
                    Some(e) => format!("\"{sql}\" failed: {e}"),
                    None => format!("\"{sql}\" failed: the server closed the connection"),
                };
                Failure::next_host(Error::LibpqSetting {
                    var: crate::env::variables::PGTARGETSESSIONATTRS.name,
                    reason: crate::error::attempt_failed(host, reason),
                })
            })?;
            state_from_answer(&value)
        }
    };
    refuse(pass, state, host).map_err(Failure::next_host)
}

/// The query libpq asks a server that did not report its state (before PostgreSQL 14),
/// `None` when `attrs` needs no state (any, prefer-standby for one server).
pub(crate) fn state_query(attrs: TargetSessionAttrs) -> Option<&'static str> {
    match attrs {
        TargetSessionAttrs::ReadWrite | TargetSessionAttrs::ReadOnly => {
            Some("SHOW transaction_read_only")
        }
        TargetSessionAttrs::Primary | TargetSessionAttrs::Standby => {
            Some("SELECT pg_catalog.pg_is_in_recovery()")
        }
        _ => None,
    }
}

/// The state from the answer to [`state_query`] (`on`/`off`, `t`/`f`).
pub(crate) fn state_from_answer(value: &str) -> SessionState {
    let yes = value == "on" || value == "t";
    SessionState {
        read_only: yes,
        hot_standby: yes,
    }
}

/// [`decide`] for this pass, as pgdap's error.
pub(crate) fn refuse(pass: Pass, state: SessionState, host: &str) -> Result<(), Error> {
    decide(pass.check, state).map_err(|reason| Error::TargetSessionAttrs {
        host: host.to_string(),
        attrs: pass.attrs.as_str(),
        reason,
    })
}

/// Runs one simple query while driving the (not yet spawned) connection; `Err(None)`
/// when the connection closed first.
async fn query_value<S, T>(
    client: &Client,
    connection: &mut Connection<S, T>,
    sql: &str,
) -> Result<String, Option<tokio_postgres::Error>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let query = client.simple_query(sql);
    tokio::pin!(query);
    let rows = std::future::poll_fn(|cx| {
        if let Poll::Ready(result) = query.as_mut().poll(cx) {
            return Poll::Ready(result.map_err(Some));
        }
        match Pin::new(&mut *connection).poll(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Err(None)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(Some(e))),
            Poll::Pending => Poll::Pending,
        }
    })
    .await?;
    Ok(first_value(&rows))
}

/// The first column of the first row of a simple query's answer (empty when none): the
/// answer to [`state_query`], whoever ran it (the attempt, the pool's health check, the
/// blocking adapter, whose `postgres::SimpleQueryMessage` is this type).
pub(crate) fn first_value(rows: &[SimpleQueryMessage]) -> String {
    rows.iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use TargetSessionAttrs as T;

    fn st((read_only, hot_standby): (bool, bool)) -> SessionState {
        SessionState {
            read_only,
            hot_standby,
        }
    }

    #[test]
    fn libpq_decisions() {
        // (read_only, hot_standby) -> attrs accepted
        let primary_ro = (true, false);
        assert_eq!(
            decide(T::ReadWrite, st(primary_ro)),
            Err("session is read-only")
        );
        assert_eq!(decide(T::ReadOnly, st(primary_ro)), Ok(()));
        assert_eq!(decide(T::Primary, st(primary_ro)), Ok(()));
        assert_eq!(
            decide(T::Standby, st(primary_ro)),
            Err("server is not in hot standby mode")
        );
        let standby = (true, true);
        assert_eq!(
            decide(T::Primary, st(standby)),
            Err("server is in hot standby mode")
        );
        assert_eq!(decide(T::Standby, st(standby)), Ok(()));
        let rw = (false, false);
        assert_eq!(decide(T::ReadOnly, st(rw)), Err("session is not read-only"));
        for attrs in [T::Any, T::PreferStandby] {
            for (ro, hs) in [primary_ro, standby, rw] {
                assert_eq!(decide(attrs, st((ro, hs))), Ok(()));
            }
        }
    }
}
