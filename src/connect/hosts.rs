//! Several servers: libpq's walk over `dbserver`'s members (`PQconnectPoll`'s
//! `try_next_host` / `try_next_addr`), independent of how one address is tried, so the
//! async connect and the blocking adapter walk alike.
//!
//! - The members are tried in the list's order, or shuffled for every connection under
//!   `PGLOADBALANCEHOSTS=random`, and so are each member's addresses.
//! - Each address gets the whole sslmode plan ([`Plan`](super::Plan)); a Unix socket gets
//!   one plaintext attempt.
//! - After a failure, [`MoveOn`] decides: the next address (the socket could not be
//!   connected, the timeout expired), the next host (SQLSTATE 57P03, the session does not
//!   fit PGTARGETSESSIONATTRS, the name does not resolve), or the end (anything else:
//!   libpq does not try another host after an authentication or TLS failure).
//! - `prefer-standby` walks twice: first accepting standbys only, then any server.
//! - When nothing gives a session, every attempt's error is kept, one line each
//!   ([`Error::AllHostsFailed`]); a single attempt's error is returned as it is.

use std::collections::{HashSet, VecDeque};
use std::future::Future;

use super::sequence::{Failure, MoveOn};
use super::socket::Peer;
use crate::access_point::Host;
use crate::env::{LoadBalanceHosts, TargetSessionAttrs};
use crate::error::{Error, HostFailure};

/// One pass over the hosts: what the session must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pass {
    /// PGTARGETSESSIONATTRS as set (for messages).
    pub(crate) attrs: TargetSessionAttrs,
    /// What this pass checks: `prefer-standby` checks `standby` first, then `any`.
    pub(crate) check: TargetSessionAttrs,
}

impl Pass {
    /// libpq's passes for `attrs`.
    fn all(attrs: TargetSessionAttrs) -> Vec<Pass> {
        match attrs {
            TargetSessionAttrs::PreferStandby => vec![
                Pass {
                    attrs,
                    check: TargetSessionAttrs::Standby,
                },
                Pass {
                    attrs,
                    check: TargetSessionAttrs::Any,
                },
            ],
            _ => vec![Pass {
                attrs,
                check: attrs,
            }],
        }
    }
}

/// The members in the order of this connection.
fn order<T>(mut items: Vec<T>, balance: LoadBalanceHosts) -> Vec<T> {
    if balance == LoadBalanceHosts::Random {
        fastrand::shuffle(&mut items);
    }
    items
}

/// libpq's walk as a state machine, independent of how a name is resolved and an address
/// tried (async, blocking, staggered): it hands out what to do next and takes the
/// outcomes in.
struct Walk {
    hosts: Vec<Host>,
    balance: LoadBalanceHosts,
    passes: Vec<Pass>,
    pass: usize,
    /// The next member to resolve in this pass.
    next_host: usize,
    /// Addresses resolved and not yet tried, with their member's index.
    queued: VecDeque<(usize, Peer)>,
    /// Members whose remaining addresses are skipped (libpq's next host).
    skipped: HashSet<usize>,
    failures: Vec<HostFailure>,
    /// A member or address could have been another (the error then names each address).
    choice: bool,
}

/// What the walk wants done next.
enum Step {
    /// Resolve member `.0`.
    Resolve(usize, Host),
    /// Try this address of member `.0` in this pass.
    Try(usize, Host, Peer, Pass),
    /// Nothing more in this pass.
    PassOver,
}

impl Walk {
    fn new(hosts: Vec<Host>, attrs: TargetSessionAttrs, balance: LoadBalanceHosts) -> Walk {
        let hosts = order(hosts, balance);
        Walk {
            choice: hosts.len() > 1,
            hosts,
            balance,
            passes: Pass::all(attrs),
            pass: 0,
            next_host: 0,
            queued: VecDeque::new(),
            skipped: HashSet::new(),
            failures: Vec::new(),
        }
    }

    /// The next address to try, else the next member to resolve, else the pass is over.
    fn step(&mut self) -> Step {
        while let Some((i, peer)) = self.queued.pop_front() {
            if !self.skipped.contains(&i) {
                return Step::Try(i, self.hosts[i].clone(), peer, self.passes[self.pass]);
            }
        }
        self.resolution()
            .map_or(Step::PassOver, |(i, host)| Step::Resolve(i, host))
    }

    /// The member to resolve when no address is queued.
    fn resolution(&mut self) -> Option<(usize, Host)> {
        if !self.queued.is_empty() || self.next_host >= self.hosts.len() {
            return None;
        }
        let i = self.next_host;
        self.next_host += 1;
        Some((i, self.hosts[i].clone()))
    }

    /// Whether an address is queued for [`Walk::step`].
    fn has_candidate(&self) -> bool {
        self.queued.iter().any(|(i, _)| !self.skipped.contains(i))
    }

    /// A member's addresses; a name that did not resolve is a line of the error and the
    /// walk goes on to the next member, as libpq's.
    fn resolved(&mut self, i: usize, peers: std::io::Result<Vec<Peer>>) {
        match peers {
            Ok(peers) => {
                self.choice |= peers.len() > 1;
                let peers = order(peers, self.balance);
                self.queued.extend(peers.into_iter().map(|p| (i, p)));
            }
            Err(e) => self.failures.push(HostFailure {
                addr: None,
                error: Error::HostNotFound {
                    host: self.hosts[i].to_string(),
                    reason: e.to_string(),
                },
            }),
        }
    }

    /// An address's failure: kept as a line; `Err` (the walk's error) when it ends the
    /// walk ([`MoveOn::Stop`]).
    fn failed(&mut self, i: usize, peer: &Peer, failure: Failure) -> Result<(), Error> {
        let move_on = failure.move_on;
        self.failures.push(HostFailure {
            addr: peer.ip(),
            error: failure.error,
        });
        match move_on {
            MoveOn::NextAddress => Ok(()),
            MoveOn::NextHost => {
                self.skipped.insert(i);
                Ok(())
            }
            MoveOn::Stop => Err(self.take_error()),
        }
    }

    /// The next pass (`prefer-standby`'s second); `false` when there is none.
    fn next_pass(&mut self) -> bool {
        if self.pass + 1 >= self.passes.len() {
            return false;
        }
        self.pass += 1;
        self.next_host = 0;
        self.queued.clear();
        self.skipped.clear();
        true
    }

    /// The failures so far, as one error: the attempt's own error when there was no choice
    /// (one member with one address), else [`Error::AllHostsFailed`], whose lines name each
    /// address libpq's way.
    fn take_error(&mut self) -> Error {
        let mut failures = std::mem::take(&mut self.failures);
        if failures.len() == 1 && !self.choice {
            if let Some(only) = failures.pop() {
                return only.error;
            }
        }
        Error::AllHostsFailed { failures }
    }
}

/// Walks the hosts one address at a time; `attempt` tries one address with the sslmode
/// plan.
pub(crate) async fn walk<T, R, RF, A, AF>(
    hosts: Vec<Host>,
    attrs: TargetSessionAttrs,
    balance: LoadBalanceHosts,
    mut resolve: R,
    mut attempt: A,
) -> Result<T, Error>
where
    R: FnMut(Host) -> RF,
    RF: Future<Output = std::io::Result<Vec<Peer>>>,
    A: FnMut(Host, Peer, Pass) -> AF,
    AF: Future<Output = Result<T, Failure>>,
{
    let mut walk = Walk::new(hosts, attrs, balance);
    loop {
        match walk.step() {
            Step::Resolve(i, host) => walk.resolved(i, resolve(host).await),
            Step::Try(i, host, peer, pass) => match attempt(host, peer.clone(), pass).await {
                Ok(connected) => return Ok(connected),
                Err(failure) => walk.failed(i, &peer, failure)?,
            },
            Step::PassOver if walk.next_pass() => {}
            Step::PassOver => return Err(walk.take_error()),
        }
    }
}

/// [`walk`] for blocking attempts (the blocking adapter).
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn walk_blocking<T>(
    hosts: Vec<Host>,
    attrs: TargetSessionAttrs,
    balance: LoadBalanceHosts,
    mut resolve: impl FnMut(&Host) -> std::io::Result<Vec<Peer>>,
    mut attempt: impl FnMut(&Host, &Peer, Pass) -> Result<T, Failure>,
) -> Result<T, Error> {
    let mut walk = Walk::new(hosts, attrs, balance);
    loop {
        match walk.step() {
            Step::Resolve(i, host) => walk.resolved(i, resolve(&host)),
            Step::Try(i, host, peer, pass) => match attempt(&host, &peer, pass) {
                Ok(connected) => return Ok(connected),
                Err(failure) => walk.failed(i, &peer, failure)?,
            },
            Step::PassOver if walk.next_pass() => {}
            Step::PassOver => return Err(walk.take_error()),
        }
    }
}

/// [`walk`] with attempts in parallel, staggered by `delay` (`ConnectOptions::host_stagger`):
/// within each pass the next address (or member) starts when the running ones have not
/// finished within `delay`, or at once after one fails; the first session wins and the
/// attempts still running are dropped (their sockets closed). A failure that ends libpq's
/// walk ([`MoveOn::Stop`]) ends this one too.
pub(crate) async fn walk_staggered<T, R, RF, A, AF>(
    hosts: Vec<Host>,
    attrs: TargetSessionAttrs,
    balance: LoadBalanceHosts,
    delay: std::time::Duration,
    mut resolve: R,
    mut attempt: A,
) -> Result<T, Error>
where
    R: FnMut(Host) -> RF,
    RF: Future<Output = std::io::Result<Vec<Peer>>>,
    A: FnMut(Host, Peer, Pass) -> AF,
    AF: Future<Output = Result<T, Failure>>,
{
    use futures_util::stream::{FuturesUnordered, StreamExt};

    let mut walk = Walk::new(hosts, attrs, balance);
    walk.choice = true;
    let mut running = FuturesUnordered::new();
    // Every turn of the loop follows the start, a failure, or the delay: each starts the
    // next attempt.
    loop {
        loop {
            match walk.step() {
                Step::Resolve(i, host) => walk.resolved(i, resolve(host).await),
                Step::Try(i, host, peer, pass) => {
                    let fut = attempt(host, peer.clone(), pass);
                    running.push(async move { (i, peer, fut.await) });
                    break;
                }
                Step::PassOver => break,
            }
        }
        if running.is_empty() {
            // This pass is over: the next, or the end.
            if walk.next_pass() {
                continue;
            }
            return Err(walk.take_error());
        }
        // Resolve the next member now, so the delay knows whether there is one.
        while !walk.has_candidate() {
            let Some((i, host)) = walk.resolution() else {
                break;
            };
            walk.resolved(i, resolve(host).await);
        }
        let more = walk.has_candidate();
        let finished = tokio::select! {
            done = running.next() => done,
            () = tokio::time::sleep(delay), if more => None,
        };
        match finished {
            Some((_, _, Ok(connected))) => return Ok(connected),
            Some((i, peer, Err(failure))) => walk.failed(i, &peer, failure)?,
            // The delay passed: one more attempt alongside.
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    fn peer(last: u8) -> Peer {
        Peer::Tcp(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)),
            5432,
        ))
    }

    fn refused(host: &Host) -> Error {
        Error::Connect {
            host: host.to_string(),
            source: std::io::ErrorKind::ConnectionRefused.into(),
        }
    }

    /// The walk over scripted outcomes: which (host, address, pass) were tried.
    fn run(
        hosts: &str,
        attrs: TargetSessionAttrs,
        outcome: impl Fn(&Host, &Peer, Pass) -> Result<(), Failure>,
    ) -> (Result<(), Error>, Vec<String>) {
        let mut tried = Vec::new();
        let result = walk_blocking(
            hosts.split(',').map(Host::parse).collect(),
            attrs,
            LoadBalanceHosts::Disable,
            |h| match h.as_str().as_ref() {
                "two" => Ok(vec![peer(1), peer(2)]),
                "nowhere" => Err(std::io::Error::other("no such host")),
                _ => Ok(vec![peer(9)]),
            },
            |h, p, pass| {
                tried.push(format!("{h}@{p}:{}", pass.check));
                outcome(h, p, pass)
            },
        );
        (result, tried)
    }

    #[test]
    fn a_refused_address_moves_to_the_next_address_then_host() {
        let (result, tried) = run("two,b", TargetSessionAttrs::Any, |h, p, _| {
            if h.as_str() == "two" {
                Err(Failure::next_address(refused(h)))
            } else {
                let _ = p;
                Ok(())
            }
        });
        assert!(result.is_ok());
        assert_eq!(
            tried,
            ["two@127.0.0.1:any", "two@127.0.0.2:any", "b@127.0.0.9:any"]
        );
    }

    #[test]
    fn a_stop_failure_ends_the_walk_with_every_line_kept() {
        let (result, tried) = run("a,b,c", TargetSessionAttrs::Any, |h, _, _| {
            match h.as_str().as_ref() {
                "a" => Err(Failure::next_address(refused(h))),
                _ => Err(Failure::fatal(Error::Timeout {
                    host: h.to_string(),
                    after: std::time::Duration::from_secs(1),
                })),
            }
        });
        assert_eq!(tried.len(), 2, "c is not tried after b's stop: {tried:?}");
        let text = result.unwrap_err().to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("connection to server at \"a\" (127.0.0.9), port 5432 failed"));
        assert!(lines[1].starts_with("connection to server at \"b\" (127.0.0.9), port 5432 failed"));
    }

    #[test]
    fn next_host_skips_the_other_addresses_and_one_failure_is_returned_as_is() {
        let refuse = |h: &Host, _: &Peer, pass: Pass| {
            Err(Failure::next_host(Error::TargetSessionAttrs {
                host: h.to_string(),
                attrs: pass.attrs.as_str(),
                reason: "session is read-only",
            }))
        };
        // A name with two addresses: the second is skipped, and the line names the
        // address that was tried, as libpq's does.
        let (result, tried) = run("two", TargetSessionAttrs::ReadWrite, refuse);
        assert_eq!(tried, ["two@127.0.0.1:read-write"]);
        let text = result.unwrap_err().to_string();
        assert!(
            text.starts_with(
                "connection to server at \"two\" (127.0.0.1), port 5432 failed: session is read-only"
            ),
            "{text}"
        );
        // No choice (one member, one address): the attempt's own error.
        let (result, _) = run("one", TargetSessionAttrs::ReadWrite, refuse);
        assert!(matches!(result, Err(Error::TargetSessionAttrs { .. })));
    }

    #[test]
    fn prefer_standby_walks_twice_and_unresolved_names_are_lines() {
        let (result, tried) = run(
            "nowhere,a,b",
            TargetSessionAttrs::PreferStandby,
            |h, _, pass| {
                if pass.check == TargetSessionAttrs::Standby {
                    Err(Failure::next_host(Error::TargetSessionAttrs {
                        host: h.to_string(),
                        attrs: pass.attrs.as_str(),
                        reason: "server is not in hot standby mode",
                    }))
                } else {
                    Ok(())
                }
            },
        );
        assert!(result.is_ok());
        assert_eq!(
            tried,
            [
                "a@127.0.0.9:standby",
                "b@127.0.0.9:standby",
                "a@127.0.0.9:any"
            ]
        );
        let (result, _) = run("nowhere", TargetSessionAttrs::Any, |_, _, _| Ok(()));
        assert!(result
            .unwrap_err()
            .to_string()
            .contains("could not translate host name"));
    }

    #[tokio::test]
    async fn a_silent_member_costs_the_stagger_delay_and_a_stop_ends_the_race() {
        let started = std::time::Instant::now();
        let result = walk_staggered(
            vec![Host::parse("silent"), Host::parse("b")],
            TargetSessionAttrs::Any,
            LoadBalanceHosts::Disable,
            std::time::Duration::from_millis(50),
            |_| async { Ok(vec![peer(9)]) },
            |h, _, _| async move {
                if h.as_str() == "silent" {
                    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                }
                Ok::<_, Failure>(h.to_string())
            },
        )
        .await;
        assert_eq!(result.unwrap(), "b");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // A refusal that ends libpq's walk ends the race, the silent attempt dropped.
        let started = std::time::Instant::now();
        let result: Result<(), Error> = walk_staggered(
            vec![Host::parse("silent"), Host::parse("b")],
            TargetSessionAttrs::Any,
            LoadBalanceHosts::Disable,
            std::time::Duration::from_millis(50),
            |_| async { Ok(vec![peer(9)]) },
            |h, _, _| async move {
                if h.as_str() == "silent" {
                    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                }
                Err(Failure::fatal(refused(&h)))
            },
        )
        .await;
        assert!(result.is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
