//! Runs one ffmpeg process for as long as a camera is enabled, restarting it with exponential
//! backoff when it exits, stalls or sends garbage.
//!
//! Each supervised process has three threads: the supervisor (spawns, watches, backs off), a
//! stdout reader (the job's own: frames or progress lines) and a stderr reader (keeps the last
//! error line). A process that misbehaves only ever costs its own threads; nothing here can
//! block another camera or the server.

use crate::status::{CameraState, ProcessStatus};
use crate::{now_ms, IngestError};
use parking_lot::{Condvar, Mutex};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A stream that ran this long without failing resets the backoff to its initial value.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// Before the first frame the watchdog also allows for connection set-up (RTSP DESCRIBE/SETUP,
/// HLS playlist fetch).
const CONNECT_GRACE: Duration = Duration::from_secs(5);
const WATCH_INTERVAL: Duration = Duration::from_millis(100);

/// How a finished run of the process should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Start again after the backoff.
    Restart,
    /// The source is finished (a file played to its end): stop supervising.
    Finished,
}

/// What a supervised process does: its command line and how to read its output.
pub trait Job: Send + Sync + 'static {
    /// Arguments for this run; an error other than a transient one puts the process in
    /// `Failed` (still retried, at the maximum backoff, in case the cause goes away).
    fn arguments(&self, run: u64) -> Result<Vec<String>, IngestError>;
    /// Reads stdout until it ends, calling `heartbeat` for each unit of progress.
    fn consume(&self, stdout: ChildStdout, heartbeat: &Heartbeat) -> Result<(), IngestError>;
    /// Called every watch interval while the process runs, and once after it ended.
    fn tick(&self) {}
    /// Decides what a run that ended by itself means (`exit_ok`: ffmpeg's exit status was 0).
    fn ended(&self, exit_ok: bool, heartbeats_this_run: u64) -> RunEnd {
        let _ = (exit_ok, heartbeats_this_run);
        RunEnd::Restart
    }
}

/// Progress signal from the stdout reader to the watchdog.
pub struct Heartbeat {
    started: Instant,
    /// Milliseconds since `started` of the last beat; -1 = none yet this run.
    last_ms: AtomicI64,
    this_run: AtomicU64,
    shared: Arc<Shared>,
}

impl Heartbeat {
    pub fn beat(&self) {
        let elapsed = self.started.elapsed().as_millis() as i64;
        self.last_ms.store(elapsed, Ordering::Relaxed);
        self.this_run.fetch_add(1, Ordering::Relaxed);
        let mut status = self.shared.status.lock();
        status.heartbeats += 1;
        status.last_heartbeat_ms = Some(now_ms());
        if status.state != CameraState::Streaming {
            status.state = CameraState::Streaming;
            status.state_since_ms = now_ms();
        }
    }

    fn silent_for(&self) -> Duration {
        let last = self.last_ms.load(Ordering::Relaxed);
        let since = if last < 0 { 0 } else { last as u64 };
        self.started
            .elapsed()
            .saturating_sub(Duration::from_millis(since))
    }

    fn any(&self) -> bool {
        self.last_ms.load(Ordering::Relaxed) >= 0
    }
}

pub struct SupervisorSettings {
    pub ffmpeg: PathBuf,
    pub label: String,
    pub stall_timeout: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

struct Shared {
    status: Mutex<ProcessStatus>,
    stop: AtomicBool,
    wake: Condvar,
    wake_lock: Mutex<()>,
    child: Mutex<Option<Child>>,
}

/// A running supervisor; stops (killing its process) when `stop` is called or it is dropped.
pub struct Supervisor {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Supervisor {
    pub fn start(settings: SupervisorSettings, job: Arc<dyn Job>) -> Self {
        let shared = Arc::new(Shared {
            status: Mutex::new(ProcessStatus {
                state: CameraState::Starting,
                state_since_ms: now_ms(),
                heartbeats: 0,
                restarts: 0,
                last_heartbeat_ms: None,
                last_error: None,
            }),
            stop: AtomicBool::new(false),
            wake: Condvar::new(),
            wake_lock: Mutex::new(()),
            child: Mutex::new(None),
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("supervise-{}", settings.label))
            .spawn(move || supervise(settings, job, thread_shared))
            .ok();
        if thread.is_none() {
            let mut status = shared.status.lock();
            status.state = CameraState::Failed;
            status.last_error = Some("cannot start the supervisor thread".into());
        }
        Self { shared, thread }
    }

    pub fn status(&self) -> ProcessStatus {
        self.shared.status.lock().clone()
    }

    /// Kills the process and waits for the supervisor to finish.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(child) = self.shared.child.lock().as_mut() {
            let _ = child.kill();
        }
        {
            let _guard = self.shared.wake_lock.lock();
            self.shared.wake.notify_all();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop();
    }
}

fn set_state(shared: &Shared, state: CameraState, error: Option<String>) {
    let mut status = shared.status.lock();
    if status.state != state {
        status.state = state;
        status.state_since_ms = now_ms();
    }
    if error.is_some() {
        status.last_error = error;
    }
}

/// Sleeps up to `duration`, returning early (true) when asked to stop.
fn sleep_unless_stopped(shared: &Shared, duration: Duration) -> bool {
    let deadline = Instant::now() + duration;
    let mut guard = shared.wake_lock.lock();
    while !shared.stop.load(Ordering::SeqCst) {
        if shared.wake.wait_until(&mut guard, deadline).timed_out() {
            break;
        }
    }
    shared.stop.load(Ordering::SeqCst)
}

fn supervise(settings: SupervisorSettings, job: Arc<dyn Job>, shared: Arc<Shared>) {
    let mut backoff = settings.backoff_initial;
    let mut run: u64 = 0;
    while !shared.stop.load(Ordering::SeqCst) {
        set_state(&shared, CameraState::Starting, None);
        let started = Instant::now();
        let outcome = run_once(&settings, job.as_ref(), &shared, run);
        run += 1;
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let wait = match outcome {
            Ok(RunEnd::Finished) => {
                set_state(&shared, CameraState::Ended, None);
                tracing::info!(target: "vigil::ingest", camera = %settings.label, "stream ended");
                return;
            }
            Ok(RunEnd::Restart) => {
                if started.elapsed() >= STABLE_AFTER {
                    backoff = settings.backoff_initial;
                }
                set_state(&shared, CameraState::Reconnecting, None);
                let wait = backoff;
                backoff = (backoff * 2).min(settings.backoff_max);
                wait
            }
            Err(error) => {
                let permanent = error.is_permanent();
                tracing::warn!(target: "vigil::ingest", camera = %settings.label, %error, "stream failed");
                if permanent {
                    set_state(&shared, CameraState::Failed, Some(error.to_string()));
                    settings.backoff_max
                } else {
                    set_state(&shared, CameraState::Reconnecting, Some(error.to_string()));
                    let wait = backoff;
                    backoff = (backoff * 2).min(settings.backoff_max);
                    wait
                }
            }
        };
        shared.status.lock().restarts += 1;
        metrics::counter!("vigil_camera_restarts_total", "camera" => settings.label.clone())
            .increment(1);
        if sleep_unless_stopped(&shared, wait) {
            break;
        }
    }
}

/// The pipe size asked for on a child's stdout: Linux's default ceiling for unprivileged
/// processes (`/proc/sys/fs/pipe-max-size`).
const PIPE_BYTES: i32 = 1 << 20;

/// Frames are megabytes: through the default 64 KiB pipe ffmpeg and the reader hand a 720p frame
/// over in about 40 pieces, each a context switch on both sides (a profile of 16 cameras had the
/// pipe's reads and the task switches at about 10 % of vigil's samples). A 1 MiB pipe cuts that
/// sixteenfold. Where the kernel refuses, the default pipe still works.
pub fn widen_pipe(stdout: &std::process::ChildStdout) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: F_SETPIPE_SZ on a pipe descriptor we own; it reads no memory of ours.
        unsafe {
            libc::fcntl(stdout.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BYTES);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = stdout;
}

fn run_once(
    settings: &SupervisorSettings,
    job: &dyn Job,
    shared: &Arc<Shared>,
    run: u64,
) -> Result<RunEnd, IngestError> {
    let arguments = job.arguments(run)?;
    let mut child = crate::process::ffmpeg_command(&settings.ffmpeg)
        .args(&arguments)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| IngestError::Spawn {
            program: settings.ffmpeg.display().to_string(),
            source,
        })?;
    let stdout = child.stdout.take();
    if let Some(stdout) = &stdout {
        widen_pipe(stdout);
    }
    let stderr = child.stderr.take();
    *shared.child.lock() = Some(child);

    let heartbeat = Arc::new(Heartbeat {
        started: Instant::now(),
        last_ms: AtomicI64::new(-1),
        this_run: AtomicU64::new(0),
        shared: shared.clone(),
    });
    let stderr_thread = stderr.map(|stderr| {
        let shared = shared.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let line = line.trim();
                if !line.is_empty() {
                    shared.status.lock().last_error = Some(line.chars().take(500).collect());
                }
            }
        })
    });
    let reader_result: Arc<Mutex<Option<Result<(), IngestError>>>> = Arc::new(Mutex::new(None));
    // The job is borrowed, so its reader runs in a scope that ends before this function does.
    let end = std::thread::scope(|scope| {
        let reader = stdout.map(|stdout| {
            let heartbeat = heartbeat.clone();
            let result = reader_result.clone();
            scope.spawn(move || {
                let outcome = job.consume(stdout, &heartbeat);
                *result.lock() = Some(outcome);
            })
        });
        let mut stalled = false;
        let exit_ok = loop {
            if shared.stop.load(Ordering::SeqCst) {
                kill(shared);
                break false;
            }
            job.tick();
            let exited = shared
                .child
                .lock()
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if let Some(status) = exited {
                break status.success();
            }
            let limit = if heartbeat.any() {
                settings.stall_timeout
            } else {
                settings.stall_timeout + CONNECT_GRACE
            };
            if heartbeat.silent_for() > limit {
                stalled = true;
                kill(shared);
                break false;
            }
            if reader.as_ref().is_some_and(|r| r.is_finished()) {
                // The reader stopped (garbage on the pipe, or stdout closed): give ffmpeg a
                // moment to exit by itself, then make sure it is gone.
                if let Some(Err(_)) = reader_result.lock().as_ref() {
                    kill(shared);
                    break false;
                }
            }
            std::thread::sleep(WATCH_INTERVAL);
        };
        if let Some(reader) = reader {
            let _ = reader.join();
        }
        (exit_ok, stalled)
    });
    if let Some(thread) = stderr_thread {
        let _ = thread.join();
    }
    *shared.child.lock() = None;
    job.tick();
    let (exit_ok, stalled) = end;
    if shared.stop.load(Ordering::SeqCst) {
        return Ok(RunEnd::Restart);
    }
    if stalled {
        return Err(IngestError::Stalled(settings.stall_timeout));
    }
    if let Some(Err(error)) = reader_result.lock().take() {
        return Err(error);
    }
    let beats = heartbeat.this_run.load(Ordering::Relaxed);
    let end = job.ended(exit_ok, beats);
    if end == RunEnd::Restart && !exit_ok {
        let detail = shared.status.lock().last_error.clone();
        return Err(IngestError::Exited(
            detail.unwrap_or_else(|| "ffmpeg exited with an error".into()),
        ));
    }
    Ok(end)
}

fn kill(shared: &Shared) {
    if let Some(child) = shared.child.lock().as_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
}
