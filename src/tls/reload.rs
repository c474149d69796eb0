//! Certificate rotation: the TLS context is rebuilt when its files change on disk.
//!
//! The files (root CA, CRL, client certificate, key) are compared by a cheap fingerprint
//! (existence, size, modification and change times, inode, owner and mode), at most once
//! per [`ConnectOptions::reload_interval`](crate::ConnectOptions::reload_interval), never by reading
//! them. A changed file that no longer loads leaves the previous context in service and
//! the error is reported (tracing warning and [`TlsReloader::last_error`]); while the last
//! rebuild failed, every interval tries again even when nothing changed, so a fix that no
//! fingerprint sees (a directory permission, an ACL) is still picked up.
//!
//! A file the context in service was built from (root CA, CRL, client certificate or
//! key) that disappears is such a broken file too ([`Error::FileVanished`]), not a new
//! configuration: under `PGMODE=require` a vanished root CA would otherwise turn server
//! verification off, and a vanished CRL revocation checking, until the file came back.
//! The previous context stays in service and the error is reported the same way; when
//! the file is back, the next check reloads as usual. A file absent when the connector
//! was built stays optional (libpq's rule: without a root CA file, `require` verifies
//! nothing). To stop using a file on purpose, build a new connector (restart the
//! service).
//!
//! Connections never wait on the disk: [`TlsReloader::current`] hands out the context in
//! service and, when a check is due, starts it on tokio's blocking pool (a thread of its
//! own outside a runtime); the new context serves the connections that start after it is
//! built. The one exception is an interval of zero ("check before every connection", for
//! tests and tools): the connection that asks then checks first, on its own thread. The
//! lock a check holds over file I/O is never taken on the connect path (a connection that
//! finds a check running does not wait for it); the one connections take only guards two
//! pointers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::{TlsContext, TlsPolicy};
use crate::env::variables::{PGCERT, PGCRL, PGKEY, PGROOTCA};
use crate::env::{Settings, SslMode, SYSTEM_ROOTS};
use crate::error::{Error, Result};
use crate::file::FileStamp;

/// The fingerprint of the files a TLS context is built from (root CA, CRL, certificate,
/// key) and of the CRL directory (its own entry: changes when a CRL is added, removed or
/// renamed in it, as `openssl rehash` does).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Fingerprint([Option<FileStamp>; 5]);

impl Fingerprint {
    fn of(settings: &Settings) -> Fingerprint {
        let stamp = FileStamp::of;
        Fingerprint([
            stamp(&settings.root_ca.value),
            stamp(&settings.crl.value),
            stamp(&settings.cert.value),
            stamp(&settings.key.value),
            settings.crl_dir.as_ref().and_then(|d| stamp(&d.value)),
        ])
    }
}

/// What connections read: held only to clone or swap pointers, never over I/O.
struct Current {
    ctx: Option<Arc<TlsContext>>,
    last_error: Option<Arc<Error>>,
    /// When the next check is due.
    due: Instant,
    /// A check is running (on the blocking pool or a thread).
    checking: bool,
}

/// What a check compares with: held by the check, over its file I/O.
struct Checked {
    fingerprint: Fingerprint,
    /// The last rebuild failed: retry at the next check whatever the fingerprint says.
    failed: bool,
}

struct Inner {
    settings: Settings,
    interval: Duration,
    current: Mutex<Current>,
    checked: Mutex<Checked>,
}

/// The current TLS context of a connector, rebuilt when its files change.
pub struct TlsReloader {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TlsReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsReloader")
            .field("interval", &self.inner.interval)
            .finish_non_exhaustive()
    }
}

impl TlsReloader {
    /// Builds the first context; its errors are the caller's.
    pub(crate) fn new(settings: &Settings, interval: Duration) -> Result<TlsReloader> {
        let fingerprint = Fingerprint::of(settings);
        let ctx = TlsContext::build(settings)?.map(Arc::new);
        Ok(TlsReloader {
            inner: Arc::new(Inner {
                settings: settings.clone(),
                interval,
                current: Mutex::new(Current {
                    ctx,
                    last_error: None,
                    due: Instant::now() + interval,
                    checking: false,
                }),
                checked: Mutex::new(Checked {
                    fingerprint,
                    failed: false,
                }),
            }),
        })
    }

    /// The context to use for the next connection. `None` under `PGMODE=disable`.
    ///
    /// When the interval has passed, a check of the files starts in the background and
    /// this connection gets the context in service (see the module documentation; an
    /// interval of zero checks first).
    pub(crate) fn current(&self) -> Option<Arc<TlsContext>> {
        if self.inner.settings.mode.value == SslMode::Disable {
            return None;
        }
        let start = {
            let Ok(mut current) = self.inner.current.lock() else {
                return None;
            };
            let start = !current.checking && Instant::now() >= current.due;
            if start {
                current.checking = true;
            }
            start
        };
        if start {
            if self.inner.interval.is_zero() {
                // Interval zero: "check before every connection", on this thread.
                self.inner.check();
            } else {
                let inner = self.inner.clone();
                check_in_background(move || inner.check());
            }
        }
        self.inner.current.lock().ok().and_then(|c| c.ctx.clone())
    }

    /// Checks the files now, on the caller's thread, whatever the interval.
    ///
    /// ```no_run
    /// # fn run(connector: &pgdap::Connector) {
    /// connector.tls_reloader().reload_now();
    /// if let Some(error) = connector.tls_reloader().last_error() {
    ///     eprintln!("new certificate files do not load: {error}");
    /// }
    /// # }
    /// ```
    pub fn reload_now(&self) {
        if let Ok(mut current) = self.inner.current.lock() {
            current.checking = true;
        }
        self.inner.check();
    }

    /// The error of the last reload, while the previous context stays in service.
    pub fn last_error(&self) -> Option<Arc<Error>> {
        self.inner
            .current
            .lock()
            .ok()
            .and_then(|c| c.last_error.clone())
    }
}

/// Runs a due check off the connect path.
fn check_in_background(check: impl FnOnce() + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn_blocking(check);
        }
        Err(_) => {
            let spawned = std::thread::Builder::new()
                .name("pgdap-tls-reload".into())
                .spawn(check);
            if let Err(e) = spawned {
                warn!(error = %e, "could not start the certificate file check");
            }
        }
    }
}

/// Marks the check finished (and schedules the next) however it ends, panics included.
struct Finish<'a>(&'a Inner);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        if let Ok(mut current) = self.0.current.lock() {
            current.checking = false;
            current.due = Instant::now() + self.0.interval;
        }
    }
}

impl Inner {
    /// Compares the fingerprint and rebuilds the context when it changed or the last
    /// rebuild failed. Holds `checked` over the file I/O; `current` only to publish.
    fn check(&self) {
        let _finish = Finish(self);
        let Ok(mut checked) = self.checked.lock() else {
            return;
        };
        let fingerprint = Fingerprint::of(&self.settings);
        if fingerprint == checked.fingerprint && !checked.failed {
            return;
        }
        let retry = fingerprint == checked.fingerprint;
        checked.fingerprint = fingerprint;
        let in_service = self.current.lock().ok().and_then(|c| c.ctx.clone());
        let built = match TlsContext::build(&self.settings) {
            // A file the context in service uses and the new one does not has
            // disappeared (the new policy is what the build found, so no race with
            // the file system): a broken file, not a new configuration.
            Ok(ctx) => match (&in_service, &ctx) {
                (Some(old), Some(new)) => match vanished(old.policy(), new.policy()) {
                    Some(e) => Err(e),
                    None => Ok(ctx),
                },
                _ => Ok(ctx),
            },
            // The build failed (under verify-ca/verify-full a missing root CA is an
            // error of its own): a vanished file is still what to report.
            Err(e) => Err(in_service
                .as_deref()
                .and_then(|old| vanished(old.policy(), &still_present(old.policy())))
                .unwrap_or(e)),
        };
        checked.failed = built.is_err();
        let Ok(mut current) = self.current.lock() else {
            return;
        };
        match built {
            Ok(ctx) => {
                if retry {
                    info!("certificate files load again: TLS context reloaded");
                } else {
                    info!("certificate files changed on disk: TLS context reloaded");
                }
                current.ctx = ctx.map(Arc::new);
                current.last_error = None;
            }
            Err(e) => {
                // Reported once per change; retried quietly at every interval.
                if !retry {
                    if matches!(e, Error::FileVanished { .. }) {
                        warn!(error = %e, "a certificate file in use has disappeared: keeping the previous TLS context");
                    } else {
                        warn!(error = %e, "certificate files changed on disk but no longer load: keeping the previous TLS context");
                    }
                }
                current.last_error = Some(Arc::new(e));
            }
        }
    }
}

/// `policy` without the files that no longer exist (libpq's test: `stat` fails).
fn still_present(policy: &TlsPolicy) -> TlsPolicy {
    let present =
        |path: &Option<std::path::PathBuf>| path.clone().filter(|p| super::files::exists(p));
    TlsPolicy {
        // `system` (the operating system's roots) is no file of ours.
        root_ca: if policy.root_ca.as_deref() == Some(std::path::Path::new(SYSTEM_ROOTS)) {
            policy.root_ca.clone()
        } else {
            present(&policy.root_ca)
        },
        crl: present(&policy.crl),
        crl_dir: present(&policy.crl_dir),
        client_cert: present(&policy.client_cert),
        client_key: present(&policy.client_key),
        verify_host: policy.verify_host,
    }
}

/// The first file the context in service (`old`) was built from that the newly built
/// one (`new`) lacks, as [`Error::FileVanished`]. Both come from the same settings, so a
/// file leaves the policy only when it no longer exists (removed, renamed away, a
/// dangling symlink, or a directory that can no longer be searched).
fn vanished(old: &TlsPolicy, new: &TlsPolicy) -> Option<Error> {
    [
        (
            &old.root_ca,
            &new.root_ca,
            "root certificate",
            PGROOTCA.name,
        ),
        (
            &old.crl,
            &new.crl,
            "certificate revocation list",
            PGCRL.name,
        ),
        (
            &old.client_cert,
            &new.client_cert,
            "certificate",
            PGCERT.name,
        ),
        (&old.client_key, &new.client_key, "private key", PGKEY.name),
    ]
    .into_iter()
    .find_map(|(old, new, what, var)| match (old, new) {
        (Some(path), None) => Some(Error::FileVanished {
            what,
            var,
            path: path.clone(),
        }),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &std::path::Path, mode: &str) -> Settings {
        let env = crate::env::Environment::from_pairs([("PGMODE", mode)]).with_default_dir(dir);
        Settings::resolve(&env, env.default_dir()).unwrap()
    }

    #[test]
    fn connects_do_not_wait_for_a_check_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        let reloader =
            TlsReloader::new(&settings(dir.path(), "require"), Duration::from_millis(1)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        // A check that is stuck on the disk holds `checked`.
        let stuck = reloader.inner.checked.lock().unwrap();
        let started = Instant::now();
        for _ in 0..3 {
            assert!(reloader.current().is_some());
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "current() waited for the file check"
        );
        drop(stuck);
    }

    #[test]
    fn a_failed_rebuild_is_retried_without_any_change() {
        let dir = tempfile::tempdir().unwrap();
        let reloader = TlsReloader::new(&settings(dir.path(), "require"), Duration::ZERO).unwrap();
        std::fs::write(dir.path().join("root.crt"), "garbage").unwrap();
        reloader.reload_now();
        let first = reloader
            .last_error()
            .expect("the broken root CA is reported");
        // Nothing changes on disk, yet the next check builds again (a new error value).
        reloader.reload_now();
        let second = reloader.last_error().expect("still broken");
        assert!(!Arc::ptr_eq(&first, &second), "the rebuild was retried");
        // A working state is not rebuilt on every check.
        std::fs::remove_file(dir.path().join("root.crt")).unwrap();
        reloader.reload_now();
        assert!(reloader.last_error().is_none());
        let ctx = reloader.current().unwrap();
        reloader.reload_now();
        assert!(Arc::ptr_eq(&ctx, &reloader.current().unwrap()));
    }

    /// A self-signed CA certificate in PEM.
    fn ca_pem() -> Vec<u8> {
        let key = openssl::pkey::PKey::from_ec_key(
            openssl::ec::EcKey::generate(
                &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                    .unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        let mut b = openssl::x509::X509Builder::new().unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(&key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        b.build().to_pem().unwrap()
    }

    #[test]
    fn a_root_ca_in_use_that_vanishes_keeps_the_context_until_it_is_back() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root.crt");
        std::fs::write(&root, ca_pem()).unwrap();
        let reloader = TlsReloader::new(&settings(dir.path(), "require"), Duration::ZERO).unwrap();
        let verifying = reloader.current().unwrap();
        assert_eq!(verifying.policy().root_ca.as_deref(), Some(root.as_path()));

        std::fs::remove_file(&root).unwrap();
        for _ in 0..2 {
            reloader.reload_now();
            let error = reloader
                .last_error()
                .expect("the vanished root CA is reported");
            assert!(
                matches!(&*error, Error::FileVanished { var: "PGROOTCA", path, .. } if *path == root),
                "{error}"
            );
            assert!(
                Arc::ptr_eq(&verifying, &reloader.current().unwrap()),
                "the verifying context stays in service"
            );
        }

        std::fs::write(&root, ca_pem()).unwrap();
        reloader.reload_now();
        assert!(reloader.last_error().is_none());
        let reloaded = reloader.current().unwrap();
        assert!(
            !Arc::ptr_eq(&verifying, &reloaded),
            "the returned file is loaded"
        );
        assert_eq!(reloaded.policy().root_ca.as_deref(), Some(root.as_path()));

        // A connector built while the file is absent does without it (libpq's rule).
        std::fs::remove_file(&root).unwrap();
        let fresh = TlsReloader::new(&settings(dir.path(), "require"), Duration::ZERO).unwrap();
        assert!(fresh.current().unwrap().policy().root_ca.is_none());
    }

    #[test]
    fn under_verify_full_a_vanished_root_ca_is_reported_as_vanished_too() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root.crt");
        std::fs::write(&root, ca_pem()).unwrap();
        let reloader =
            TlsReloader::new(&settings(dir.path(), "verify-full"), Duration::ZERO).unwrap();
        let verifying = reloader.current().unwrap();
        std::fs::remove_file(&root).unwrap();
        reloader.reload_now();
        let error = reloader.last_error().expect("reported");
        assert!(
            matches!(
                &*error,
                Error::FileVanished {
                    var: "PGROOTCA",
                    ..
                }
            ),
            "{error}"
        );
        assert!(Arc::ptr_eq(&verifying, &reloader.current().unwrap()));
        // A broken (not vanished) file is still reported as what is wrong with it.
        std::fs::write(&root, "garbage").unwrap();
        reloader.reload_now();
        let error = reloader.last_error().expect("reported");
        assert!(matches!(&*error, Error::BadFile { .. }), "{error}");
    }

    #[test]
    fn every_file_of_the_policy_counts_and_the_first_is_named() {
        let full = TlsPolicy {
            root_ca: Some("/c/root.crt".into()),
            crl: Some("/c/postgresql.crl".into()),
            crl_dir: None,
            client_cert: Some("/c/postgresql.crt".into()),
            client_key: Some("/c/postgresql.key".into()),
            verify_host: false,
        };
        assert!(vanished(&full, &full).is_none());
        let var = |new: TlsPolicy| match vanished(&full, &new) {
            Some(Error::FileVanished { var, .. }) => var,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            var(TlsPolicy {
                crl: None,
                ..full.clone()
            }),
            "PGCRL"
        );
        assert_eq!(
            var(TlsPolicy {
                root_ca: None,
                crl: None,
                ..full.clone()
            }),
            "PGROOTCA"
        );
        assert_eq!(
            var(TlsPolicy {
                client_cert: None,
                client_key: None,
                ..full.clone()
            }),
            "PGCERT"
        );
        // A file that appears is a change like any other.
        let bare = TlsPolicy {
            root_ca: None,
            crl: None,
            crl_dir: None,
            client_cert: None,
            client_key: None,
            verify_host: false,
        };
        assert!(vanished(&bare, &full).is_none());
    }

    #[cfg(unix)]
    #[test]
    fn chmod_and_chown_alone_change_the_fingerprint() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path(), "require");
        std::fs::write(&s.key.value, "key").unwrap();
        std::fs::set_permissions(&s.key.value, std::fs::Permissions::from_mode(0o644)).unwrap();
        let before = Fingerprint::of(&s);
        std::fs::set_permissions(&s.key.value, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_ne!(before, Fingerprint::of(&s));
    }
}
