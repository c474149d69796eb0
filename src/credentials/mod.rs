//! Credentials that move (docs/design.md §12): a provider the service supplies (a cloud
//! IAM token, a secret store), and the Access Point file read again for new connections
//! when it changes ([`reload`]).
//!
//! A [`CredentialProvider`] is called for new connections only, never under
//! `PGAUTH=cert`. Its secret is cached until shortly before its expiry (a jittered margin
//! of a tenth of its lifetime, between 1 s and 5 min, so that a fleet does not refresh in
//! step); callers that find it due while another is fetching wait for that one fetch
//! (concurrent refreshes collapse into one call). After the server refuses a cached
//! secret (SQLSTATE 28P01 or 28000), the connector fetches a fresh one once and retries
//! that attempt once. Precedence: the provider over the Access Point's password,
//! PGPASSWORD, a service's password and the password file.

pub(crate) mod reload;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tracing::{debug, warn};

use crate::error::{Error, Result};
use crate::secret::Password;

/// The error type a provider returns.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The future a provider returns.
pub type CredentialFuture<'a> =
    Pin<Box<dyn Future<Output = std::result::Result<Credential, BoxError>> + Send + 'a>>;

/// A secret to log in with (a password or a token) and, when it has one, its expiry.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// let token = pgdap::credentials::Credential::new(pgdap::Password::new("t0ken"))
///     .expiring_at(SystemTime::now() + Duration::from_secs(900));
/// assert!(token.expires_at.is_some());
/// assert_eq!(format!("{:?}", token.secret), "***");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Credential {
    /// The secret: sent as the password.
    pub secret: Password,
    /// When the server stops accepting it (`None`: until it is refused).
    pub expires_at: Option<SystemTime>,
}

impl Credential {
    /// A secret without an expiry.
    pub fn new(secret: Password) -> Credential {
        Credential {
            secret,
            expires_at: None,
        }
    }

    /// The same secret, expiring at `at`.
    pub fn expiring_at(mut self, at: SystemTime) -> Credential {
        self.expires_at = Some(at);
        self
    }
}

/// Supplies the password or token for new connections. Implement it, or wrap an async
/// closure with [`provider_fn`].
///
/// ```
/// use pgdap::credentials::{BoxError, Credential, CredentialFuture, CredentialProvider};
/// struct Vault;
/// impl CredentialProvider for Vault {
///     fn name(&self) -> &str { "vault" }
///     fn fetch(&self) -> CredentialFuture<'_> {
///         Box::pin(async { Ok::<_, BoxError>(Credential::new(pgdap::Password::new("from vault"))) })
///     }
/// }
/// ```
pub trait CredentialProvider: Send + Sync + 'static {
    /// A name for errors, logs and `doctor` (e.g. `"rds-iam"`).
    fn name(&self) -> &str;
    /// Fetches a secret. Called for new connections only, at most once at a time per
    /// connector.
    fn fetch(&self) -> CredentialFuture<'_>;
}

/// A provider from an async closure.
///
/// ```no_run
/// # async fn run(config: pgdap::Config) -> Result<(), pgdap::Error> {
/// use std::time::{Duration, SystemTime};
/// use pgdap::credentials::{provider_fn, Credential};
/// let provider = provider_fn("token-service", || async {
///     let token = String::from("..."); // ask the token service
///     Ok(Credential::new(pgdap::Password::new(token))
///         .expiring_at(SystemTime::now() + Duration::from_secs(900)))
/// });
/// let connector = pgdap::Connector::new(config)?.with_credential_provider(provider);
/// # Ok(()) }
/// ```
pub fn provider_fn<F, Fut>(name: impl Into<String>, fetch: F) -> impl CredentialProvider
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<Credential, BoxError>> + Send + 'static,
{
    FnProvider {
        name: name.into(),
        fetch,
    }
}

struct FnProvider<F> {
    name: String,
    fetch: F,
}

impl<F, Fut> CredentialProvider for FnProvider<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<Credential, BoxError>> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn fetch(&self) -> CredentialFuture<'_> {
        Box::pin((self.fetch)())
    }
}

/// What a connector knows of its provider, for `doctor` and metrics.
///
/// ```no_run
/// # fn f(connector: &pgdap::Connector) {
/// if let Some(status) = connector.credential_status() {
///     println!("{}: {} calls, expires {:?}", status.provider, status.calls, status.expires_at);
/// }
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CredentialStatus {
    /// The provider's name.
    pub provider: String,
    /// How many times it was called.
    pub calls: u64,
    /// The cached secret's expiry, if one is cached and has one.
    pub expires_at: Option<SystemTime>,
    /// When the cached secret will be replaced (before its expiry).
    pub refresh_at: Option<SystemTime>,
}

struct Cached {
    credential: Credential,
    refresh_at: Option<SystemTime>,
}

/// A provider and its cached secret.
pub(crate) struct CredentialCache {
    provider: Arc<dyn CredentialProvider>,
    /// Held across a fetch: callers that find the secret due wait for the one fetch.
    state: tokio::sync::Mutex<Option<Cached>>,
    calls: AtomicU64,
    /// A copy of the status for readers that must not wait on a fetch.
    status: std::sync::Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

/// The secret for one connection, and whether it was fetched for it.
pub(crate) struct Secret {
    pub(crate) password: Password,
    pub(crate) fresh: bool,
}

impl CredentialCache {
    pub(crate) fn new(provider: Arc<dyn CredentialProvider>) -> CredentialCache {
        CredentialCache {
            provider,
            state: tokio::sync::Mutex::new(None),
            calls: AtomicU64::new(0),
            status: std::sync::Mutex::new((None, None)),
        }
    }

    pub(crate) fn name(&self) -> &str {
        self.provider.name()
    }

    /// The cached secret while it is not due, else a fresh one.
    pub(crate) async fn get(&self) -> Result<Secret> {
        let mut state = self.state.lock().await;
        if let Some(cached) = state.as_ref() {
            let due = cached.refresh_at.is_some_and(|at| SystemTime::now() >= at);
            if !due {
                return Ok(Secret {
                    password: cached.credential.secret.clone(),
                    fresh: false,
                });
            }
            debug!(provider = self.name(), "credential due for refresh");
        }
        self.fetch_into(&mut state).await
    }

    /// After the server refused `refused`: a fresh secret, unless another connection
    /// already replaced it (then that one).
    pub(crate) async fn refresh_after_refusal(&self, refused: &Password) -> Result<Secret> {
        let mut state = self.state.lock().await;
        if let Some(cached) = state.as_ref() {
            if cached.credential.secret != *refused {
                return Ok(Secret {
                    password: cached.credential.secret.clone(),
                    fresh: true,
                });
            }
        }
        warn!(
            provider = self.name(),
            "the server refused the cached credential; fetching a fresh one"
        );
        self.fetch_into(&mut state).await
    }

    async fn fetch_into(&self, state: &mut Option<Cached>) -> Result<Secret> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let credential =
            self.provider
                .fetch()
                .await
                .map_err(|source| Error::CredentialProvider {
                    provider: self.name().to_string(),
                    source,
                })?;
        let now = SystemTime::now();
        let refresh_at = credential
            .expires_at
            .map(|expiry| refresh_time(now, expiry));
        if let Some(expiry) = credential.expires_at {
            if expiry <= now {
                warn!(
                    provider = self.name(),
                    "the provider returned a credential that has already expired"
                );
            }
        }
        if let Ok(mut status) = self.status.lock() {
            *status = (credential.expires_at, refresh_at);
        }
        let password = credential.secret.clone();
        *state = Some(Cached {
            credential,
            refresh_at,
        });
        Ok(Secret {
            password,
            fresh: true,
        })
    }

    /// The cached secret, if one is cached and not due, without waiting.
    pub(crate) fn peek(&self) -> Option<Password> {
        let state = self.state.try_lock().ok()?;
        let cached = state.as_ref()?;
        match cached.refresh_at {
            Some(at) if SystemTime::now() >= at => None,
            _ => Some(cached.credential.secret.clone()),
        }
    }

    pub(crate) fn status(&self) -> CredentialStatus {
        let (expires_at, refresh_at) = self.status.lock().map(|s| *s).unwrap_or((None, None));
        CredentialStatus {
            provider: self.name().to_string(),
            calls: self.calls.load(Ordering::Relaxed),
            expires_at,
            refresh_at,
        }
    }
}

/// When a secret fetched at `now` and expiring at `expiry` is replaced: a margin of a
/// tenth of its lifetime (between 1 s and 5 min) before the expiry, stretched by up to
/// half again at random so that connectors started together refresh apart.
fn refresh_time(now: SystemTime, expiry: SystemTime) -> SystemTime {
    let lifetime = expiry.duration_since(now).unwrap_or(Duration::ZERO);
    let margin = (lifetime / 10).clamp(Duration::from_secs(1), Duration::from_secs(300));
    let margin = margin.mul_f64(1.0 + fastrand::f64() / 2.0);
    expiry.checked_sub(margin).unwrap_or(now).max(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counting(expires_in: Option<Duration>) -> (Arc<AtomicU64>, Arc<dyn CredentialProvider>) {
        let calls = Arc::new(AtomicU64::new(0));
        let counter = calls.clone();
        let provider = provider_fn("test", move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let credential = Credential::new(Password::new(format!("token-{n}")));
                Ok(match expires_in {
                    Some(d) => credential.expiring_at(SystemTime::now() + d),
                    None => credential,
                })
            }
        });
        (calls, Arc::new(provider))
    }

    #[tokio::test]
    async fn concurrent_gets_collapse_into_one_call() {
        let (calls, provider) = counting(None);
        let cache = Arc::new(CredentialCache::new(provider));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.get().await.map(|s| s.password) })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().expose(), "token-1");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(cache.status().calls, 1);
    }

    #[tokio::test]
    async fn a_secret_is_replaced_before_its_expiry() {
        // Lifetime 2 s: margin 1-1.5 s, so it is due after at most 1 s.
        let (calls, provider) = counting(Some(Duration::from_secs(2)));
        let cache = CredentialCache::new(provider);
        assert_eq!(cache.get().await.unwrap().password.expose(), "token-1");
        assert_eq!(cache.get().await.unwrap().password.expose(), "token-1");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(cache.peek().is_none());
        assert_eq!(cache.get().await.unwrap().password.expose(), "token-2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_refused_secret_is_fetched_again_once() {
        let (calls, provider) = counting(None);
        let cache = CredentialCache::new(provider);
        let first = cache.get().await.unwrap().password;
        let second = cache.refresh_after_refusal(&first).await.unwrap();
        assert_eq!(second.password.expose(), "token-2");
        // Another connection refused with the old one: it gets the new one, no call.
        let again = cache.refresh_after_refusal(&first).await.unwrap();
        assert_eq!(again.password.expose(), "token-2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_providers_error_names_it() {
        let provider = provider_fn("broken-iam", || async {
            Err::<Credential, BoxError>("no instance profile".into())
        });
        let cache = CredentialCache::new(Arc::new(provider));
        let err = cache.get().await.err().unwrap();
        assert!(
            matches!(err, Error::CredentialProvider { ref provider, .. } if provider == "broken-iam")
        );
        assert!(err.to_string().contains("broken-iam"), "{err}");
    }

    #[test]
    fn refresh_margin_is_a_jittered_tenth() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for _ in 0..100 {
            let at = refresh_time(now, now + Duration::from_secs(900));
            let before = (now + Duration::from_secs(900)).duration_since(at).unwrap();
            assert!(
                before >= Duration::from_secs(90) && before <= Duration::from_secs(135),
                "{before:?}"
            );
        }
        // Long lifetimes: at most 7.5 min early; already expired: now.
        let at = refresh_time(now, now + Duration::from_secs(86400));
        assert!(
            (now + Duration::from_secs(86400))
                .duration_since(at)
                .unwrap()
                <= Duration::from_secs(450)
        );
        assert_eq!(refresh_time(now, now - Duration::from_secs(5)), now);
    }
}
