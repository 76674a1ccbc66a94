//! Sending due deliveries: claim a batch, POST them in parallel, record each attempt.

use crate::error::NotifyError;
use crate::outbox::DeliveryId;
use crate::retry::{random_unit, RetryPolicy};
use crate::signature::sign;
use crate::target::{TargetPolicy, TargetRefused};
use parking_lot::Mutex;
use rusqlite::{params, Connection, TransactionBehavior};
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the dispatcher works, beyond the retry policy.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatcherOptions {
    pub retry: RetryPolicy,
    /// Deliveries claimed per round.
    pub batch_size: usize,
    /// Deliveries sent at once; a slow receiver holds up only its own worker.
    pub workers: usize,
    /// Longest sleep of the background thread between rounds; it also wakes when a delivery
    /// falls due and on `DispatcherHandle::wake`. Catches deliveries queued by other processes.
    pub idle_poll: Duration,
    /// Hosts allowed over http and on private addresses; every other target must be https to
    /// a public address, checked on the resolved address at each send.
    pub targets: TargetPolicy,
}

impl Default for DispatcherOptions {
    fn default() -> Self {
        DispatcherOptions {
            retry: RetryPolicy::default(),
            batch_size: 32,
            workers: 4,
            idle_poll: Duration::from_secs(5),
            targets: TargetPolicy::default(),
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundReport {
    /// Attempts made (HTTP requests sent or tried).
    pub attempted: usize,
    pub delivered: usize,
    /// Failed attempts with another one scheduled.
    pub retrying: usize,
    /// Deliveries given up this round, with or without an attempt (too old, too many tries).
    pub failed: usize,
}

/// Sends the outbox. Owns its own connection to the database (a second connection to the
/// store's WAL file), so sending never holds the store's lock. Pending deliveries live in the
/// database, so a restarted dispatcher resumes them.
pub struct Dispatcher {
    connection: Mutex<Connection>,
    agent: ureq::Agent,
    options: DispatcherOptions,
}

/// A claimed delivery with what is needed to send it.
struct Job {
    id: DeliveryId,
    event_kind: String,
    payload: String,
    attempts_made: u32,
    created_at_ms: i64,
    url: String,
    secret: String,
}

struct AttemptResult {
    status_code: Option<u16>,
    error: Option<String>,
    duration_ms: i64,
}

impl Dispatcher {
    /// A dispatcher on `connection`, whose database already holds the `notify_` tables.
    pub fn new(connection: Connection, options: DispatcherOptions) -> Result<Self, NotifyError> {
        connection.busy_timeout(Duration::from_secs(5))?;
        let targets = options.targets.clone();
        let agent = ureq::AgentBuilder::new()
            // Every connection goes to addresses the policy checked, resolved once: no second
            // lookup between the check and the connection for a rebinding name to exploit.
            .resolver(move |netloc: &str| targets.resolve(netloc))
            .timeout(options.retry.timeout)
            // A redirected POST is ambiguous; receivers must answer at the configured URL.
            .redirects(0)
            .user_agent(concat!("vigil-notify/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Dispatcher {
            connection: Mutex::new(connection),
            agent,
            options,
        })
    }

    /// Opens a connection of its own to the database file at `path`.
    pub fn open(path: &Path, options: DispatcherOptions) -> Result<Self, NotifyError> {
        Self::new(Connection::open(path)?, options)
    }

    /// One round at time `now_ms` (unix ms; injectable so tests need not sleep): fails
    /// deliveries past their limits, claims up to `batch_size` due ones, sends them, and
    /// records each attempt and the delivery's new state.
    pub fn deliver_due(&self, now_ms: i64) -> Result<RoundReport, NotifyError> {
        let (jobs, expired) = self.claim(now_ms)?;
        let mut report = RoundReport {
            failed: expired,
            ..RoundReport::default()
        };
        if jobs.is_empty() {
            return Ok(report);
        }
        let results = self.send_all(&jobs, now_ms);
        self.record(&jobs, &results, now_ms, &mut report)?;
        Ok(report)
    }

    /// When the next delivery falls due (unix ms), if any is pending for an enabled
    /// subscription.
    pub fn next_due_at_ms(&self) -> Result<Option<i64>, NotifyError> {
        let connection = self.connection.lock();
        let next = connection
            .prepare_cached(
                "SELECT min(d.next_attempt_at_ms) FROM notify_deliveries d \
                 JOIN notify_subscriptions s ON s.id = d.subscription_id \
                 WHERE d.state = 'pending' AND s.enabled = 1",
            )?
            .query_row([], |row| row.get(0))?;
        Ok(next)
    }

    /// Runs rounds on a background thread until the handle is stopped or dropped.
    pub fn spawn(self) -> Result<DispatcherHandle, NotifyError> {
        let (sender, receiver) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("vigil-notify".to_owned())
            .spawn(move || self.run(&receiver))
            .map_err(|error| {
                NotifyError::Invalid(format!("cannot start the webhook thread: {error}"))
            })?;
        Ok(DispatcherHandle {
            sender,
            thread: Some(thread),
        })
    }

    fn run(&self, signals: &mpsc::Receiver<Signal>) {
        loop {
            let now = system_now_ms();
            let mut wait = self.options.idle_poll;
            match self.deliver_due(now) {
                // A full batch: more may be due right away.
                Ok(report) if report.attempted >= self.options.batch_size => {
                    wait = Duration::ZERO;
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "webhook delivery round failed"),
            }
            if !wait.is_zero() {
                if let Ok(Some(next_ms)) = self.next_due_at_ms() {
                    let until_next =
                        u64::try_from(next_ms.saturating_sub(system_now_ms())).unwrap_or(0);
                    wait = wait.min(Duration::from_millis(until_next));
                }
            }
            match signals.recv_timeout(wait) {
                Ok(Signal::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
                Ok(Signal::Wake) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Fails what is past its limits and leases a batch of due deliveries, in one write
    /// transaction so two dispatchers never claim the same delivery. The lease (the next
    /// attempt time pushed past the request timeout) makes a delivery whose attempt was cut
    /// short by a crash due again later: at-least-once delivery.
    fn claim(&self, now_ms: i64) -> Result<(Vec<Job>, usize), NotifyError> {
        let retry = &self.options.retry;
        let max_age_ms = duration_ms(retry.max_age);
        let lease_ms = duration_ms(retry.timeout)
            .saturating_mul(2)
            .saturating_add(10_000);
        let connection = self.connection.lock();
        let transaction =
            rusqlite::Transaction::new_unchecked(&connection, TransactionBehavior::Immediate)?;
        let expired = transaction
            .prepare_cached(
                "UPDATE notify_deliveries SET state = 'failed', next_attempt_at_ms = NULL, \
                 finished_at_ms = ?1, \
                 last_error = coalesce(last_error || '; ', '') || 'gave up: ' || \
                    CASE WHEN attempts >= ?3 THEN attempts || ' attempts made' \
                    ELSE 'not delivered within the retry window' END \
                 WHERE state = 'pending' AND next_attempt_at_ms <= ?1 \
                   AND (created_at_ms + ?2 <= ?1 OR attempts >= ?3)",
            )?
            .execute(params![now_ms, max_age_ms, retry.max_attempts])?;
        let jobs = {
            let mut select = transaction.prepare_cached(
                "SELECT d.id, d.event_kind, d.payload, d.attempts, d.created_at_ms, s.url, \
                 s.secret FROM notify_deliveries d \
                 JOIN notify_subscriptions s ON s.id = d.subscription_id \
                 WHERE d.state = 'pending' AND d.next_attempt_at_ms <= ?1 AND s.enabled = 1 \
                 ORDER BY d.next_attempt_at_ms, d.id LIMIT ?2",
            )?;
            let rows = select
                .query_map(
                    params![
                        now_ms,
                        i64::try_from(self.options.batch_size).unwrap_or(i64::MAX)
                    ],
                    |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, i64>(3)?,
                            row.get::<_, i64>(4)?,
                            row.get::<_, String>(5)?,
                            row.get::<_, String>(6)?,
                        ))
                    },
                )?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(
                    |(id, event_kind, payload, attempts, created_at_ms, url, secret)| {
                        Ok(Job {
                            id: DeliveryId(id),
                            event_kind,
                            payload,
                            attempts_made: u32::try_from(attempts).map_err(|_| {
                                NotifyError::Corrupt(format!(
                                    "delivery {id}: attempt count {attempts}"
                                ))
                            })?,
                            created_at_ms,
                            url,
                            secret,
                        })
                    },
                )
                .collect::<Result<Vec<_>, NotifyError>>()?
        };
        {
            let mut lease = transaction.prepare_cached(
                "UPDATE notify_deliveries SET next_attempt_at_ms = ?2 WHERE id = ?1",
            )?;
            for job in &jobs {
                lease.execute(params![job.id.0, now_ms.saturating_add(lease_ms)])?;
            }
        }
        transaction.commit()?;
        Ok((jobs, expired))
    }

    /// Sends every job, `workers` at a time, without holding the database lock.
    fn send_all(&self, jobs: &[Job], now_ms: i64) -> Vec<AttemptResult> {
        let workers = self.options.workers.clamp(1, jobs.len().max(1));
        let mut results: Vec<Option<AttemptResult>> = jobs.iter().map(|_| None).collect();
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|worker| {
                    scope.spawn(move || {
                        jobs.iter()
                            .enumerate()
                            .skip(worker)
                            .step_by(workers)
                            .map(|(index, job)| (index, self.send(job, now_ms)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for handle in handles {
                // A panicking worker leaves its jobs unrecorded; their lease makes them due again.
                if let Ok(sent) = handle.join() {
                    for (index, result) in sent {
                        results[index] = Some(result);
                    }
                }
            }
        });
        results
            .into_iter()
            .map(|result| {
                result.unwrap_or(AttemptResult {
                    status_code: None,
                    error: Some("the sending worker panicked".to_owned()),
                    duration_ms: 0,
                })
            })
            .collect()
    }

    fn send(&self, job: &Job, now_ms: i64) -> AttemptResult {
        // The subscription may predate the policy, or the policy may have narrowed since.
        if let Err(refusal) = self.options.targets.check_url(&job.url) {
            return AttemptResult {
                status_code: None,
                error: Some(refusal.to_string()),
                duration_ms: 0,
            };
        }
        let timestamp = now_ms.div_euclid(1000).to_string();
        let signature = sign(&job.secret, &timestamp, job.payload.as_bytes());
        let started = Instant::now();
        let response = self
            .agent
            .post(&job.url)
            .set("Content-Type", "application/json")
            .set("X-Vigil-Event", &job.event_kind)
            .set("X-Vigil-Delivery", &job.id.to_string())
            .set("X-Vigil-Attempt", &(job.attempts_made + 1).to_string())
            .set("X-Vigil-Timestamp", &timestamp)
            .set("X-Vigil-Signature", &signature)
            .send_string(&job.payload);
        let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let (status_code, error) = match response {
            Ok(response) if (200..300).contains(&response.status()) => {
                (Some(response.status()), None)
            }
            Ok(response) => {
                let status = response.status();
                (Some(status), Some(format!("HTTP {status}")))
            }
            // The receiver's body is neither read nor kept: it could echo anything (an
            // internal page, a secret) into a log that admins read back over the API.
            Err(ureq::Error::Status(status, _response)) => {
                (Some(status), Some(format!("HTTP {status}")))
            }
            Err(ureq::Error::Transport(transport)) => {
                (None, Some(transport_error_class(&transport)))
            }
        };
        AttemptResult {
            status_code,
            error,
            duration_ms,
        }
    }

    fn record(
        &self,
        jobs: &[Job],
        results: &[AttemptResult],
        now_ms: i64,
        report: &mut RoundReport,
    ) -> Result<(), NotifyError> {
        let retry = &self.options.retry;
        let connection = self.connection.lock();
        let transaction =
            rusqlite::Transaction::new_unchecked(&connection, TransactionBehavior::Immediate)?;
        {
            // Both statements check the delivery is still the one claimed: one deleted or
            // redelivered meanwhile is left alone.
            let mut log = transaction.prepare_cached(
                "INSERT INTO notify_attempts (delivery_id, attempt, started_at_ms, duration_ms, \
                 status_code, error) SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM \
                 notify_deliveries WHERE id = ?1 AND state = 'pending' AND attempts = ?2 - 1)",
            )?;
            let mut update = transaction.prepare_cached(
                "UPDATE notify_deliveries SET state = ?3, attempts = ?2, \
                 next_attempt_at_ms = ?4, finished_at_ms = ?5, last_error = ?6 \
                 WHERE id = ?1 AND state = 'pending' AND attempts = ?2 - 1",
            )?;
            for (job, result) in jobs.iter().zip(results) {
                let attempt = job.attempts_made.saturating_add(1);
                let finished_ms = now_ms.saturating_add(result.duration_ms);
                log.execute(params![
                    job.id.0,
                    attempt,
                    now_ms,
                    result.duration_ms,
                    result.status_code,
                    result.error,
                ])?;
                report.attempted += 1;
                let (state, next_ms, finished_at_ms) = if result.error.is_none() {
                    report.delivered += 1;
                    // From the change that queued it (an alert, a review) to its receipt.
                    metrics::histogram!("vigil_webhook_delivery_latency_seconds").record(
                        finished_ms.saturating_sub(job.created_at_ms).max(0) as f64 / 1000.0,
                    );
                    ("delivered", None, Some(finished_ms))
                } else {
                    let delay_ms = duration_ms(retry.delay_after(attempt, random_unit()));
                    let next_ms = finished_ms.saturating_add(delay_ms);
                    let deadline_ms = job.created_at_ms.saturating_add(duration_ms(retry.max_age));
                    if attempt >= retry.max_attempts || next_ms > deadline_ms {
                        report.failed += 1;
                        tracing::info!(
                            delivery = job.id.0,
                            attempts = attempt,
                            url = %job.url,
                            "webhook delivery failed for good"
                        );
                        ("failed", None, Some(finished_ms))
                    } else {
                        report.retrying += 1;
                        ("pending", Some(next_ms), None)
                    }
                };
                update.execute(params![
                    job.id.0,
                    attempt,
                    state,
                    next_ms,
                    finished_at_ms,
                    result.error,
                ])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }
}

enum Signal {
    Wake,
    Stop,
}

/// The running background dispatcher. Dropping it stops the thread (after the round in
/// progress, at most one request timeout later).
pub struct DispatcherHandle {
    sender: mpsc::Sender<Signal>,
    thread: Option<JoinHandle<()>>,
}

/// Wakes a running dispatcher from anywhere (it is cheap to clone).
#[derive(Clone)]
pub struct DispatcherWaker {
    sender: mpsc::Sender<Signal>,
}

impl DispatcherWaker {
    /// Starts a round now, e.g. right after a transaction that queued deliveries committed.
    pub fn wake(&self) {
        // Fails only when the thread is gone, and then there is nobody to wake.
        let _ = self.sender.send(Signal::Wake);
    }
}

impl DispatcherHandle {
    /// Starts a round now, e.g. right after a transaction that queued deliveries committed.
    pub fn wake(&self) {
        // Fails only when the thread is gone, and then there is nobody to wake.
        let _ = self.sender.send(Signal::Wake);
    }

    /// A waker for code that queues deliveries elsewhere (the alert path), so they go out at
    /// once instead of at the next idle poll.
    pub fn waker(&self) -> DispatcherWaker {
        DispatcherWaker {
            sender: self.sender.clone(),
        }
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        let _ = self.sender.send(Signal::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for DispatcherHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// What went wrong without a response, in a form fit for the delivery log: a target refusal
/// says why; other failures give their kind and message, without the URL (it may hold
/// credentials).
fn transport_error_class(transport: &ureq::Transport) -> String {
    let mut source = std::error::Error::source(transport);
    while let Some(error) = source {
        if let Some(refused) = error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<TargetRefused>())
        {
            return refused.to_string();
        }
        source = error.source();
    }
    let mut class = transport.kind().to_string();
    if let Some(message) = transport.message() {
        class.push_str(": ");
        class.push_str(message);
    }
    if let Some(source) = std::error::Error::source(transport) {
        class.push_str(": ");
        class.push_str(&source.to_string());
    }
    class
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Unix time in ms from the system clock.
pub fn system_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since_epoch| i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
