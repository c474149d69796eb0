//! The Access Point file read again for new connections, with the rules certificate
//! rotation follows (`tls::reload`): the file is compared by its [`FileStamp`] (size,
//! times, inode, owner, mode; an atomic rename and an in-place rewrite both show) at most
//! once per [`ConnectOptions::reload_interval`](crate::ConnectOptions::reload_interval);
//! a changed file is parsed again before the next connection; a file that no longer
//! parses (half written, removed) keeps the last good Access Point in service, is logged
//! at WARN and reported by [`AccessPointWatch::last_error`] until it parses again.
//! Sessions already open are not touched.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::access_point::AccessPoint;
use crate::error::Error;
use crate::file::FileStamp;

/// The Access Point in service, and the file it is read from again.
pub(crate) struct AccessPointWatch {
    file: Option<PathBuf>,
    interval: Duration,
    state: Mutex<State>,
}

struct State {
    current: Arc<AccessPoint>,
    /// The stamp of the file the Access Point in service was read from.
    stamp: Option<FileStamp>,
    due: Instant,
    last_error: Option<Arc<Error>>,
}

impl AccessPointWatch {
    /// Watches the file `ap` was read from ([`AccessPoint::file`]); an Access Point
    /// built in code stays as it is.
    pub(crate) fn new(ap: AccessPoint, interval: Duration) -> AccessPointWatch {
        let file = ap.file().map(|p| p.to_path_buf());
        let stamp = file.as_deref().and_then(FileStamp::of);
        AccessPointWatch {
            file,
            interval,
            state: Mutex::new(State {
                current: Arc::new(ap),
                stamp,
                due: Instant::now() + interval,
                last_error: None,
            }),
        }
    }

    /// The Access Point for a new connection: the file is checked when a check is due,
    /// and read again when it changed.
    pub(crate) fn current(&self) -> Arc<AccessPoint> {
        let Ok(mut state) = self.state.lock() else {
            // A panic while the lock was held: keep serving what there is.
            return self.snapshot();
        };
        if self.file.is_some() && Instant::now() >= state.due {
            self.check(&mut state);
        }
        state.current.clone()
    }

    /// After the server refused the login made with `used`: when the file changed since
    /// `used` was read, it is read now (whatever the interval) and the new Access Point
    /// returned, for one retry.
    pub(crate) fn changed_since(&self, used: &Arc<AccessPoint>) -> Option<Arc<AccessPoint>> {
        self.file.as_ref()?;
        let mut state = self.state.lock().ok()?;
        if !Arc::ptr_eq(&state.current, used) {
            return Some(state.current.clone());
        }
        self.check(&mut state);
        (!Arc::ptr_eq(&state.current, used)).then(|| state.current.clone())
    }

    /// Why the file in service could not be read again, while it cannot.
    pub(crate) fn last_error(&self) -> Option<Arc<Error>> {
        self.state.lock().ok().and_then(|s| s.last_error.clone())
    }

    fn snapshot(&self) -> Arc<AccessPoint> {
        match self.state.lock() {
            Ok(s) => s.current.clone(),
            Err(poisoned) => poisoned.into_inner().current.clone(),
        }
    }

    fn check(&self, state: &mut State) {
        state.due = Instant::now() + self.interval;
        let Some(file) = &self.file else { return };
        let stamp = FileStamp::of(file);
        if stamp.is_some() && stamp == state.stamp && state.last_error.is_none() {
            return;
        }
        match AccessPoint::from_file(file) {
            Ok(ap) => {
                if state.stamp.is_some() || state.last_error.is_some() {
                    info!(
                        path = %file.display(),
                        "the Access Point file changed; new connections use it"
                    );
                }
                state.current = Arc::new(ap);
                state.stamp = stamp;
                state.last_error = None;
            }
            Err(e) => {
                let repeated = state
                    .last_error
                    .as_ref()
                    .is_some_and(|last| last.to_string() == e.to_string());
                if !repeated {
                    warn!(
                        path = %file.display(),
                        "the Access Point file changed but cannot be used ({e}); new connections keep the last good one"
                    );
                }
                state.last_error = Some(Arc::new(e));
            }
        }
    }
}

impl std::fmt::Debug for AccessPointWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessPointWatch")
            .field("file", &self.file)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &std::path::Path, password: &str) {
        // Written beside and renamed into place, as operators (and Kubernetes) do.
        let tmp = path.with_extension("tmp");
        std::fs::write(
            &tmp,
            format!("dbengine=postgre\ndbserver=db1\ndbname=d\nusername=u\npassword={password}\n"),
        )
        .unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    #[test]
    fn a_changed_file_is_read_again_and_a_broken_one_keeps_the_last_good() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dap.cfg");
        write(&path, "one");
        let watch = AccessPointWatch::new(AccessPoint::from_file(&path).unwrap(), Duration::ZERO);
        assert_eq!(watch.current().password().expose(), "one");
        write(&path, "two");
        assert_eq!(watch.current().password().expose(), "two");
        // Half written: the last good one stays, the error is kept.
        std::fs::write(&path, "dbengine=postgre\ndbserver=db1\n").unwrap();
        assert_eq!(watch.current().password().expose(), "two");
        assert!(matches!(
            watch.last_error().as_deref(),
            Some(Error::MissingKey { .. })
        ));
        // Removed: the same.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(watch.current().password().expose(), "two");
        write(&path, "three");
        assert_eq!(watch.current().password().expose(), "three");
        assert!(watch.last_error().is_none());
    }

    #[test]
    fn the_interval_bounds_the_checks_but_not_a_refused_login() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dap.cfg");
        write(&path, "one");
        let watch = AccessPointWatch::new(
            AccessPoint::from_file(&path).unwrap(),
            Duration::from_secs(3600),
        );
        let used = watch.current();
        write(&path, "two");
        assert_eq!(watch.current().password().expose(), "one");
        let newer = watch.changed_since(&used).unwrap();
        assert_eq!(newer.password().expose(), "two");
        assert!(watch.changed_since(&newer).is_none());
        // An Access Point built in code is never re-read.
        let fixed = AccessPointWatch::new(
            AccessPoint::parse("dbengine=postgre\ndbserver=h\ndbname=d\nusername=u\n").unwrap(),
            Duration::ZERO,
        );
        let used = fixed.current();
        assert!(fixed.changed_since(&used).is_none());
    }
}
