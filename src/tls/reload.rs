//! Certificate rotation: the TLS context is rebuilt when its files change on disk.
//!
//! The files (root CA, CRL, client certificate, key) are compared by a cheap fingerprint
//! (existence, size, modification time, inode), at most once per
//! [`Options::reload_interval`](crate::Options::reload_interval), never by reading them.
//! A changed file that no longer loads leaves the previous context in service and the
//! error is reported (tracing warning and [`TlsReloader::last_error`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tracing::{info, warn};

use super::TlsContext;
use crate::env::{Settings, SslMode};
use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

/// The fingerprint of the four files a TLS context is built from.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Fingerprint([Option<FileStamp>; 4]);

impl Fingerprint {
    fn of(settings: &Settings) -> Fingerprint {
        let stamp = |path: &std::path::Path| {
            std::fs::metadata(path).ok().map(|m| FileStamp {
                len: m.len(),
                modified: m.modified().ok(),
                inode: inode(&m),
            })
        };
        Fingerprint([
            stamp(&settings.root_ca.value),
            stamp(&settings.crl.value),
            stamp(&settings.cert.value),
            stamp(&settings.key.value),
        ])
    }
}

#[cfg(unix)]
fn inode(m: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(m)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}

struct State {
    ctx: Option<Arc<TlsContext>>,
    fingerprint: Fingerprint,
    checked: Instant,
    last_error: Option<Arc<Error>>,
}

/// The current TLS context of a connector, rebuilt when its files change.
pub struct TlsReloader {
    settings: Settings,
    interval: Duration,
    state: Mutex<State>,
}

impl std::fmt::Debug for TlsReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsReloader")
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl TlsReloader {
    /// Builds the first context; its errors are the caller's.
    pub(crate) fn new(settings: &Settings, interval: Duration) -> Result<TlsReloader> {
        let fingerprint = Fingerprint::of(settings);
        let ctx = TlsContext::build(settings)?.map(Arc::new);
        Ok(TlsReloader {
            settings: settings.clone(),
            interval,
            state: Mutex::new(State {
                ctx,
                fingerprint,
                checked: Instant::now(),
                last_error: None,
            }),
        })
    }

    /// The context to use for the next connection (checking the files first when the
    /// interval has passed). `None` under `PGMODE=disable`.
    pub(crate) fn current(&self) -> Option<Arc<TlsContext>> {
        if self.settings.mode.value == SslMode::Disable {
            return None;
        }
        let Ok(mut state) = self.state.lock() else {
            return None;
        };
        if state.checked.elapsed() >= self.interval {
            state.checked = Instant::now();
            self.refresh(&mut state);
        }
        state.ctx.clone()
    }

    /// Checks the files now, whatever the interval.
    pub fn reload_now(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.checked = Instant::now();
            self.refresh(&mut state);
        }
    }

    fn refresh(&self, state: &mut State) {
        let fingerprint = Fingerprint::of(&self.settings);
        if fingerprint == state.fingerprint {
            return;
        }
        // Remember the new fingerprint either way: a broken file is reported once, and
        // retried when it changes again.
        state.fingerprint = fingerprint;
        match TlsContext::build(&self.settings) {
            Ok(ctx) => {
                info!("certificate files changed on disk: TLS context reloaded");
                state.ctx = ctx.map(Arc::new);
                state.last_error = None;
            }
            Err(e) => {
                warn!(error = %e, "certificate files changed on disk but no longer load: keeping the previous TLS context");
                state.last_error = Some(Arc::new(e));
            }
        }
    }

    /// The error of the last reload, while the previous context stays in service.
    pub fn last_error(&self) -> Option<Arc<Error>> {
        self.state.lock().ok().and_then(|s| s.last_error.clone())
    }
}
