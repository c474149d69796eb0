//! Server notices (NoticeResponse): at start-up (a login WARNING, PostgreSQL 19's md5
//! deprecation warning) and during the session (`RAISE NOTICE`, "there is no transaction
//! in progress", ...).
//!
//! tokio-postgres keeps the notices of the start-up and yields them, with the later ones,
//! from `Connection::poll_message`; left to its `Future` implementation it hands them to
//! the `log` crate, which pgdap does not use. pgdap drives every connection it spawns
//! with `poll_message` ([`spawn_connection`]) and gives each notice
//!
//! - to `tracing`, at the level of its severity ([`Notice::level`]), in the
//!   `pgdap::notice` target;
//! - to the [`NoticeCallback`] of the [`Connector`](crate::Connector), if one is set
//!   ([`Connector::with_notice_callback`](crate::Connector::with_notice_callback)): it
//!   sees the start-up notices of every connection, pooled ones included;
//! - to the session's [`Notices`] queue, which code can drain or await.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tokio_postgres::error::{DbError, Severity};
use tokio_postgres::{AsyncMessage, Connection};
use tracing::{debug, error, info, warn};

/// One NoticeResponse of the server.
///
/// ```
/// let n = pgdap::connect::Notice::new("WARNING", "01000", "something to know");
/// assert_eq!(n.level(), tracing::Level::WARN);
/// assert_eq!(n.to_string(), "WARNING:  something to know");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Notice {
    /// WARNING, NOTICE, INFO, LOG or DEBUG (the server's non-localized severity).
    pub severity: String,
    /// SQLSTATE, e.g. `01000` for a warning.
    pub code: String,
    /// The message, unchanged.
    pub message: String,
    /// The server's detail, if any.
    pub detail: Option<String>,
    /// The server's hint, if any.
    pub hint: Option<String>,
}

impl Notice {
    /// A notice with no detail and no hint (for tests and callbacks fed by hand).
    ///
    /// ```
    /// let n = pgdap::connect::Notice::new("NOTICE", "00000", "hello");
    /// assert!(n.detail.is_none());
    /// ```
    pub fn new(severity: &str, code: &str, message: &str) -> Notice {
        Notice {
            severity: severity.to_string(),
            code: code.to_string(),
            message: message.to_string(),
            detail: None,
            hint: None,
        }
    }

    /// The notice of a tokio-postgres `DbError` (what `AsyncMessage::Notice` and the
    /// `postgres` crate's notice callback carry).
    ///
    /// ```no_run
    /// # fn f(e: &pgdap::tokio_postgres::error::DbError) {
    /// let notice = pgdap::connect::Notice::from_db_error(e);
    /// # }
    /// ```
    pub fn from_db_error(e: &DbError) -> Notice {
        // The non-localized severity (field V, PostgreSQL 9.6+) when the server sent it.
        let severity = match e.parsed_severity() {
            Some(Severity::Panic) => "PANIC",
            Some(Severity::Fatal) => "FATAL",
            Some(Severity::Error) => "ERROR",
            Some(Severity::Warning) => "WARNING",
            Some(Severity::Notice) => "NOTICE",
            Some(Severity::Debug) => "DEBUG",
            Some(Severity::Info) => "INFO",
            Some(Severity::Log) => "LOG",
            _ => e.severity(),
        };
        Notice {
            severity: severity.to_string(),
            code: e.code().code().to_string(),
            message: e.message().to_string(),
            detail: e.detail().map(str::to_string),
            hint: e.hint().map(str::to_string),
        }
    }

    /// The `tracing` level of the severity: WARNING (and anything worse) is `WARN`
    /// (`ERROR` for ERROR/FATAL/PANIC), NOTICE/INFO/LOG are `INFO`, DEBUG is `DEBUG`.
    ///
    /// ```
    /// use pgdap::connect::Notice;
    /// assert_eq!(Notice::new("NOTICE", "00000", "x").level(), tracing::Level::INFO);
    /// assert_eq!(Notice::new("DEBUG", "00000", "x").level(), tracing::Level::DEBUG);
    /// ```
    pub fn level(&self) -> tracing::Level {
        match self.severity.as_str() {
            "PANIC" | "FATAL" | "ERROR" => tracing::Level::ERROR,
            "WARNING" => tracing::Level::WARN,
            "NOTICE" | "INFO" | "LOG" => tracing::Level::INFO,
            s if s.starts_with("DEBUG") => tracing::Level::DEBUG,
            _ => tracing::Level::INFO,
        }
    }

    /// Logs the notice through `tracing` (target `pgdap::notice`) at [`Notice::level`].
    ///
    /// ```
    /// pgdap::connect::Notice::new("WARNING", "01000", "careful").log("db1");
    /// ```
    pub fn log(&self, host: &str) {
        let (severity, code, detail, hint) = (
            self.severity.as_str(),
            self.code.as_str(),
            self.detail.as_deref(),
            self.hint.as_deref(),
        );
        let message = self.message.as_str();
        match self.level() {
            tracing::Level::ERROR => {
                error!(target: "pgdap::notice", host, severity, code, detail, hint, "{message}")
            }
            tracing::Level::WARN => {
                warn!(target: "pgdap::notice", host, severity, code, detail, hint, "{message}")
            }
            tracing::Level::INFO => {
                info!(target: "pgdap::notice", host, severity, code, detail, hint, "{message}")
            }
            _ => debug!(target: "pgdap::notice", host, severity, code, detail, hint, "{message}"),
        }
    }
}

impl Notice {
    /// The bytes of text the notice holds: severity, code, message, detail and hint
    /// (what [`NOTICE_QUEUE_BYTES`] counts).
    ///
    /// ```
    /// let n = pgdap::connect::Notice::new("NOTICE", "00000", "hello");
    /// assert_eq!(n.text_len(), 6 + 5 + 5);
    /// ```
    pub fn text_len(&self) -> usize {
        self.severity.len()
            + self.code.len()
            + self.message.len()
            + self.detail.as_ref().map_or(0, String::len)
            + self.hint.as_ref().map_or(0, String::len)
    }
}

impl std::fmt::Display for Notice {
    /// `SEVERITY:  message` as psql prints it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:  {}", self.severity, self.message)
    }
}

/// A function called with every notice of every connection of a
/// [`Connector`](crate::Connector), from the connection's task (keep it short).
pub type NoticeCallback = Arc<dyn Fn(&Notice) + Send + Sync>;

/// How many unread notices a session keeps; older ones are dropped first (they were
/// logged and passed to the callback all the same). See also [`NOTICE_QUEUE_BYTES`].
pub const NOTICE_QUEUE_LIMIT: usize = 256;

/// How many bytes of unread notice text ([`Notice::text_len`]) a session keeps: 1 MiB.
/// Older notices are dropped first to make room; a notice larger than this on its own is
/// not queued (it was logged and passed to the callback all the same). Without it a
/// server could make a session hold [`NOTICE_QUEUE_LIMIT`] notices of a megabyte each.
pub const NOTICE_QUEUE_BYTES: usize = 1024 * 1024;

#[derive(Default)]
struct Queue {
    notices: VecDeque<Notice>,
    /// The text bytes of `notices`.
    bytes: usize,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    notify: Notify,
    closed: AtomicBool,
    dropped: AtomicU64,
    dropped_bytes: AtomicU64,
}

/// The notices of one session, in arrival order, from the start-up on: drain them, or
/// await them one by one. Cheap to clone (clones share the queue). At most
/// [`NOTICE_QUEUE_LIMIT`] unread notices, of at most [`NOTICE_QUEUE_BYTES`] of text in
/// all, are kept; [`dropped`](Notices::dropped) and
/// [`dropped_bytes`](Notices::dropped_bytes) count the others.
///
/// ```no_run
/// # async fn run(session: pgdap::Session) -> Result<(), pgdap::Error> {
/// session.client.batch_execute("do $$ begin raise notice 'hi'; end $$").await?;
/// for notice in session.notices.drain() {
///     println!("{}: {}", notice.severity, notice.message);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct Notices {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Notices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notices")
            .field("unread", &self.len())
            .field("dropped", &self.dropped())
            .field("dropped_bytes", &self.dropped_bytes())
            .field("closed", &self.shared.closed.load(Ordering::Acquire))
            .finish()
    }
}

impl Notices {
    /// An empty queue (for sessions made by hand; pgdap's own sessions come with theirs).
    ///
    /// ```
    /// let notices = pgdap::connect::Notices::new();
    /// assert!(notices.drain().is_empty());
    /// ```
    pub fn new() -> Notices {
        Notices::default()
    }

    /// Appends a notice (what the connection task does), dropping the oldest unread ones
    /// beyond [`NOTICE_QUEUE_LIMIT`] notices or [`NOTICE_QUEUE_BYTES`] bytes of text (or
    /// this one, when it is larger than that on its own).
    ///
    /// ```
    /// let notices = pgdap::connect::Notices::new();
    /// notices.push(pgdap::connect::Notice::new("NOTICE", "00000", "a"));
    /// assert_eq!(notices.len(), 1);
    /// ```
    pub fn push(&self, notice: Notice) {
        self.push_counting(notice);
    }

    /// [`push`](Notices::push); returns whether this was the first time the queue dropped
    /// a notice.
    fn push_counting(&self, notice: Notice) -> bool {
        let size = notice.text_len();
        let (mut count, mut bytes) = (0u64, 0u64);
        if let Ok(mut queue) = self.shared.queue.lock() {
            if size > NOTICE_QUEUE_BYTES {
                (count, bytes) = (1, size as u64);
            } else {
                while queue.notices.len() >= NOTICE_QUEUE_LIMIT
                    || queue.bytes + size > NOTICE_QUEUE_BYTES
                {
                    let Some(old) = queue.notices.pop_front() else {
                        break;
                    };
                    let len = old.text_len();
                    queue.bytes -= len;
                    count += 1;
                    bytes += len as u64;
                }
                queue.bytes += size;
                queue.notices.push_back(notice);
            }
        }
        let first = count > 0 && self.shared.dropped.fetch_add(count, Ordering::Relaxed) == 0;
        self.shared
            .dropped_bytes
            .fetch_add(bytes, Ordering::Relaxed);
        self.shared.notify.notify_one();
        first
    }

    /// Takes every unread notice.
    ///
    /// ```
    /// let notices = pgdap::connect::Notices::new();
    /// notices.push(pgdap::connect::Notice::new("NOTICE", "00000", "a"));
    /// assert_eq!(notices.drain().len(), 1);
    /// assert!(notices.is_empty());
    /// ```
    pub fn drain(&self) -> Vec<Notice> {
        match self.shared.queue.lock() {
            Ok(mut queue) => {
                queue.bytes = 0;
                queue.notices.drain(..).collect()
            }
            Err(_) => Vec::new(),
        }
    }

    /// Takes the oldest unread notice, if any.
    ///
    /// ```
    /// let notices = pgdap::connect::Notices::new();
    /// assert!(notices.try_recv().is_none());
    /// ```
    pub fn try_recv(&self) -> Option<Notice> {
        let mut queue = self.shared.queue.lock().ok()?;
        let notice = queue.notices.pop_front()?;
        queue.bytes -= notice.text_len();
        Some(notice)
    }

    /// Waits for the next notice; `None` once the connection has closed and every notice
    /// was read.
    ///
    /// ```no_run
    /// # async fn run(session: pgdap::Session) {
    /// let notices = session.notices.clone();
    /// tokio::spawn(async move {
    ///     while let Some(n) = notices.recv().await {
    ///         eprintln!("server says {n}");
    ///     }
    /// });
    /// # }
    /// ```
    pub async fn recv(&self) -> Option<Notice> {
        loop {
            let notified = self.shared.notify.notified();
            if let Some(notice) = self.try_recv() {
                return Some(notice);
            }
            if self.shared.closed.load(Ordering::Acquire) {
                return self.try_recv();
            }
            notified.await;
        }
    }

    /// Unread notices.
    ///
    /// ```
    /// assert_eq!(pgdap::connect::Notices::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.shared
            .queue
            .lock()
            .map(|q| q.notices.len())
            .unwrap_or(0)
    }

    /// No unread notice.
    ///
    /// ```
    /// assert!(pgdap::connect::Notices::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Notices dropped unread: more than [`NOTICE_QUEUE_LIMIT`] notices or
    /// [`NOTICE_QUEUE_BYTES`] bytes of text were waiting.
    ///
    /// ```
    /// assert_eq!(pgdap::connect::Notices::new().dropped(), 0);
    /// ```
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// The text bytes ([`Notice::text_len`]) of the notices dropped unread.
    ///
    /// ```
    /// use pgdap::connect::{Notice, Notices, NOTICE_QUEUE_BYTES};
    /// let notices = Notices::new();
    /// let big = Notice::new("NOTICE", "00000", &"x".repeat(NOTICE_QUEUE_BYTES));
    /// let size = big.text_len() as u64;
    /// notices.push(big); // larger than the whole queue: not kept
    /// assert_eq!((notices.len(), notices.dropped(), notices.dropped_bytes()), (0, 1, size));
    /// ```
    pub fn dropped_bytes(&self) -> u64 {
        self.shared.dropped_bytes.load(Ordering::Relaxed)
    }

    /// The text bytes ([`Notice::text_len`]) of the unread notices.
    ///
    /// ```
    /// let notices = pgdap::connect::Notices::new();
    /// notices.push(pgdap::connect::Notice::new("NOTICE", "00000", "a"));
    /// assert_eq!(notices.unread_bytes(), 6 + 5 + 1);
    /// ```
    pub fn unread_bytes(&self) -> usize {
        self.shared.queue.lock().map(|q| q.bytes).unwrap_or(0)
    }

    /// Marks the queue closed (the connection ended): [`recv`](Notices::recv) returns
    /// `None` once it is empty.
    ///
    /// ```
    /// let notices = pgdap::connect::Notices::new();
    /// notices.close();
    /// ```
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.notify.notify_waiters();
        self.shared.notify.notify_one();
    }
}

/// Where the notices of one connection go: the log, the callback, the queue.
#[derive(Clone)]
pub(crate) struct NoticeSink {
    pub(crate) host: String,
    pub(crate) callback: Option<NoticeCallback>,
    pub(crate) queue: Notices,
}

impl NoticeSink {
    /// Delivers one notice everywhere. The first time the session's queue drops unread
    /// notices, a warning says so (once: [`Notices::dropped`] counts them all).
    pub(crate) fn deliver(&self, notice: Notice) {
        notice.log(&self.host);
        if let Some(callback) = &self.callback {
            callback(&notice);
        }
        if self.queue.push_counting(notice) {
            warn!(
                target: "pgdap::notice",
                host = self.host.as_str(),
                limit = NOTICE_QUEUE_LIMIT,
                limit_bytes = NOTICE_QUEUE_BYTES,
                "unread notices dropped: a session keeps at most {NOTICE_QUEUE_LIMIT} notices and {NOTICE_QUEUE_BYTES} bytes of notice text (Notices::dropped and Notices::dropped_bytes count what is dropped)"
            );
        }
    }
}

/// Spawns the task that drives a connection with `Connection::poll_message`, so every
/// notice (those queued during start-up first) reaches the log, `callback` and the
/// returned queue. Notifications (`LISTEN`/`NOTIFY`) are logged at debug level and
/// dropped, as the connection's `Future` implementation drops them.
///
/// [`Connector::connect_spawned`](crate::Connector::connect_spawned) does this; call it
/// yourself for a [`Connected`](crate::Connected) from [`Connector::connect`](crate::Connector::connect).
///
/// ```no_run
/// # async fn run(connector: pgdap::Connector) -> Result<(), pgdap::Error> {
/// let connected = connector.connect().await?;
/// let (notices, task) = pgdap::connect::spawn_connection(connected.connection, "db1", None);
/// connected.client.batch_execute("select 1").await?;
/// # Ok(()) }
/// ```
pub fn spawn_connection<S, T>(
    connection: Connection<S, T>,
    host: &str,
    callback: Option<NoticeCallback>,
) -> (Notices, tokio::task::JoinHandle<()>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (queue, task, _) = spawn_watched(connection, host, callback);
    (queue, task)
}

/// [`spawn_connection`], keeping the server's reported role current
/// ([`ServerRole`](super::target::ServerRole)).
pub(crate) fn spawn_watched<S, T>(
    connection: Connection<S, T>,
    host: &str,
    callback: Option<NoticeCallback>,
) -> (
    Notices,
    tokio::task::JoinHandle<()>,
    std::sync::Arc<super::target::ServerRole>,
)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let queue = Notices::new();
    let sink = NoticeSink {
        host: host.to_string(),
        callback,
        queue: queue.clone(),
    };
    let role = std::sync::Arc::new(super::target::ServerRole::default());
    role.update(
        connection.parameter("in_hot_standby"),
        connection.parameter("default_transaction_read_only"),
    );
    let task = tokio::spawn(drive(connection, sink, role.clone()));
    (queue, task, role)
}

async fn drive<S, T>(
    mut connection: Connection<S, T>,
    sink: NoticeSink,
    role: std::sync::Arc<super::target::ServerRole>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let message = poll_fn(|cx| {
            let polled = connection.poll_message(cx);
            // A ParameterStatus is taken in by the poll without a message for us.
            role.update(
                connection.parameter("in_hot_standby"),
                connection.parameter("default_transaction_read_only"),
            );
            polled
        })
        .await;
        match message {
            Some(Ok(AsyncMessage::Notice(e))) => sink.deliver(Notice::from_db_error(&e)),
            Some(Ok(AsyncMessage::Notification(n))) => {
                debug!(
                    channel = n.channel(),
                    "notification dropped (not listened for)"
                )
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                debug!(error = %e, "connection closed with an error");
                break;
            }
            None => break,
        }
    }
    sink.queue.close();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_keeps_the_newest_notices() {
        let q = Notices::new();
        for i in 0..NOTICE_QUEUE_LIMIT + 3 {
            q.push(Notice::new("NOTICE", "00000", &i.to_string()));
        }
        assert_eq!(q.len(), NOTICE_QUEUE_LIMIT);
        assert_eq!(q.dropped(), 3);
        assert_eq!(q.try_recv().map(|n| n.message), Some("3".to_string()));
    }

    #[test]
    fn queue_keeps_at_most_the_byte_cap_newest_first() {
        let q = Notices::new();
        // 100 KiB notices: ten fit under 1 MiB (with their 12 bytes of severity and code).
        let text = "x".repeat(100 * 1024);
        let size = Notice::new("NOTICE", "00000", &text).text_len();
        for i in 0..25 {
            q.push(Notice::new("NOTICE", "00000", &format!("{text}{i:02}")));
        }
        let kept = NOTICE_QUEUE_BYTES / (size + 2);
        assert_eq!(q.len(), kept);
        assert_eq!(q.unread_bytes(), kept * (size + 2));
        assert!(q.unread_bytes() <= NOTICE_QUEUE_BYTES);
        assert_eq!(q.dropped(), (25 - kept) as u64);
        assert_eq!(q.dropped_bytes(), ((25 - kept) * (size + 2)) as u64);
        let first = q.try_recv().unwrap();
        assert!(first.message.ends_with(&format!("{:02}", 25 - kept)));
        assert_eq!(q.unread_bytes(), (kept - 1) * (size + 2));
        q.drain();
        assert_eq!(q.unread_bytes(), 0);

        // One notice larger than the cap is dropped whole; the queue keeps the others.
        q.push(Notice::new("NOTICE", "00000", "small"));
        let dropped = q.dropped();
        let mut huge = Notice::new("WARNING", "01000", "m");
        huge.detail = Some("d".repeat(NOTICE_QUEUE_BYTES));
        q.push(huge);
        assert_eq!(q.len(), 1);
        assert_eq!(q.dropped(), dropped + 1);
    }

    #[test]
    fn the_sink_warns_once_when_it_starts_dropping() {
        let q = Notices::new();
        let sink = NoticeSink {
            host: "db1".into(),
            callback: None,
            queue: q.clone(),
        };
        let mut firsts = 0;
        for i in 0..NOTICE_QUEUE_LIMIT + 5 {
            if q.push_counting(Notice::new("NOTICE", "00000", &i.to_string())) {
                firsts += 1;
            }
        }
        assert_eq!(firsts, 1);
        sink.deliver(Notice::new("NOTICE", "00000", "more"));
        assert_eq!(q.dropped(), 6);
    }

    #[tokio::test]
    async fn recv_waits_and_ends_after_close() {
        let q = Notices::new();
        let reader = q.clone();
        let task = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(n) = reader.recv().await {
                got.push(n.message);
            }
            got
        });
        tokio::task::yield_now().await;
        q.push(Notice::new("WARNING", "01000", "a"));
        q.push(Notice::new("NOTICE", "00000", "b"));
        q.close();
        assert_eq!(task.await.unwrap(), vec!["a", "b"]);
    }

    #[test]
    fn levels_follow_severity() {
        assert_eq!(
            Notice::new("WARNING", "01000", "").level(),
            tracing::Level::WARN
        );
        assert_eq!(
            Notice::new("DEBUG", "00000", "").level(),
            tracing::Level::DEBUG
        );
        assert_eq!(
            Notice::new("LOG", "00000", "").level(),
            tracing::Level::INFO
        );
    }
}
