//! `vigil serve`: the HTTP API, the cameras and their analysis.

use crate::cli::ServeArgs;
use crate::context::Context;
use anyhow::Context as _;
use std::sync::Arc;
use vigil_ingest::CameraManager;
use vigil_pipeline::video::VideoAnalysis;
use vigil_store::VideoStore;

/// How long requests in flight may take to finish once a stop is requested.
const REQUEST_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

pub fn run(context: &Context, args: ServeArgs) -> anyhow::Result<()> {
    let store = context.open_sqlite()?;
    let service = Arc::new(context.service_on(store.clone())?);
    let mut server = context.config.server.clone();
    if let Some(bind) = args.bind {
        server.bind = bind;
    }
    let video_config = &context.config.video;
    let tracking = VideoAnalysis::tracking_from_table(&video_config.tracking)?;
    let video_store: Arc<dyn VideoStore> = store.clone();
    let index_dir = context.config.data_dir.join("index").join("sightings");
    // With encryption at rest the index lives in memory only, rebuilt from the sealed
    // embeddings at start, so no plaintext embedding reaches the disk (design 011); an index
    // written before encryption was turned on is deleted.
    let index_dir = if store.sealer().is_some() {
        if index_dir.exists() {
            std::fs::remove_dir_all(&index_dir).with_context(|| {
                format!(
                    "deleting the plaintext sightings index {}",
                    index_dir.display()
                )
            })?;
            tracing::info!(target: "vigil", "deleted the on-disk sightings index: encryption at rest keeps it in memory");
        }
        None
    } else {
        Some(index_dir)
    };
    let analysis = VideoAnalysis::new(
        service.clone(),
        video_store.clone(),
        tracking,
        video_config.motion_gating,
        index_dir.as_deref(),
    )
    .context("opening the sightings index")?;
    service
        .warm_up(1280, 720)
        .context("running the models once before the cameras start")?;
    let recordings_dir = context.recordings_dir();
    let cameras = Arc::new(
        CameraManager::new(
            video_config.clone(),
            recordings_dir.clone(),
            video_store,
            Arc::new(analysis.as_ref().clone()),
        )
        .context("starting the camera manager")?,
    );
    cameras
        .start_configured(&context.config.cameras)
        .context("starting the configured cameras")?;
    let access = vigil_api::access::Access::new(store.clone(), vigil_auth::AuthOptions::default())
        .context("setting up the user directory")?;
    // First start: an admin with a generated password, shown once. The admin manages users and
    // cameras; searching faces needs an investigator (separation of duties, docs/design/009).
    let bootstrap = store
        .with_connection(|connection| access.directory.ensure_admin(connection, "admin", None))?;
    if let vigil_auth::Bootstrap::Created {
        user,
        generated_password: Some(password),
    } = bootstrap
    {
        eprintln!(
            "first start: created user {} with password {password} (shown once; change it)",
            user.name
        );
    }
    let video = vigil_api::VideoState {
        cameras: cameras.clone(),
        analysis: analysis.as_ref().clone(),
        ffmpeg: video_config.ffmpeg.clone(),
        recordings_dir,
    };
    let sighting_retention = spawn_sighting_retention(
        analysis.as_ref().clone(),
        store.clone(),
        context.config.video.clone(),
    );
    let misuse_scan = spawn_misuse_scan(store.clone(), context.config.misuse.clone());
    // Webhook deliveries queued with alerts are sent (signed, retried) by their own thread,
    // on its own connection to the database.
    // Creation (the API) and sending (the dispatcher) apply the same `[webhooks]` allowance.
    let webhook_targets =
        vigil_notify::TargetPolicy::allowing(&context.config.webhooks.allowed_hosts);
    store.set_webhook_targets(webhook_targets.clone());
    let webhooks = vigil_notify::Dispatcher::open(
        &context.database_path(),
        vigil_notify::DispatcherOptions {
            targets: webhook_targets,
            ..vigil_notify::DispatcherOptions::default()
        },
    )
    .and_then(|dispatcher| dispatcher.spawn())
    .context("starting the webhook dispatcher")?;
    spawn_webhook_waker(&analysis, webhooks.waker());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&server.bind)
            .await
            .with_context(|| format!("binding {}", server.bind))?;
        let address = listener.local_addr()?;
        tracing::info!(%address, model = %service.model(), templates = service.gallery_templates(), "vigil serving");
        eprintln!("vigil listening on http://{address}");
        let state = vigil_api::AppState::new(service, &server, access)
            .with_video(video)
            .with_audit_anchors(context.audit_anchors_path())
            .with_misuse_policy(context.config.misuse.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let mut serving = tokio::spawn(vigil_api::serve(listener, state, async {
            let _ = stopped.await;
        }));
        tokio::select! {
            finished = &mut serving => return Ok(finished??),
            () = stop_requested() => {}
        }
        let _ = stop.send(());
        // Requests in flight get a moment to finish; an open SSE stream never would, and a
        // service manager's stop timeout must not be spent waiting on it.
        match tokio::time::timeout(REQUEST_DRAIN, &mut serving).await {
            Ok(finished) => finished??,
            Err(_) => {
                tracing::warn!("requests still open after {REQUEST_DRAIN:?}: closing them");
                serving.abort();
            }
        }
        anyhow::Ok(())
    });
    // Stop the ffmpeg processes and flush open tracks into sightings before exiting.
    cameras.shutdown();
    sighting_retention.stop();
    misuse_scan.stop();
    drop(webhooks);
    // Publish the audit head on the way out, so a later truncation is detectable.
    if let Err(error) = store.with_connection(|connection| {
        vigil_audit::publish_head(connection, &context.audit_anchors_path())
    }) {
        tracing::warn!(%error, "cannot publish the audit head");
    }
    served
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (how systemd, Docker and Kubernetes stop a
/// service): both drain the same way, open tracks flushed into sightings and the audit head
/// published. Without a SIGTERM handler the default action killed the process mid-write.
async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
                tracing::info!("stop requested: draining");
                return;
            }
            Err(error) => tracing::warn!(%error, "cannot listen for SIGTERM; Ctrl-C still stops"),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("stop requested: draining");
}

/// A background job's thread, woken every interval until stopped on shutdown.
struct PeriodicJob {
    stop: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeriodicJob {
    /// Runs `work` now and then every `interval` on a thread named `name`.
    fn spawn(
        name: &str,
        interval: std::time::Duration,
        mut work: impl FnMut() + Send + 'static,
    ) -> Self {
        let stop = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let signal = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || loop {
                work();
                let (lock, wake) = &*signal;
                let Ok(stopped) = lock.lock() else { return };
                let Ok((stopped, _)) = wake.wait_timeout_while(stopped, interval, |s| !*s) else {
                    return;
                };
                if *stopped {
                    return;
                }
            })
            .ok();
        Self { stop, thread }
    }

    fn stop(mut self) {
        let (lock, wake) = &*self.stop;
        if let Ok(mut stopped) = lock.lock() {
            *stopped = true;
        }
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Deletes expired sightings (unmatched and matched limits; case evidence is held by the store)
/// every retention interval, from the store and from search, and writes one audit entry per
/// pass that deleted anything.
fn spawn_sighting_retention(
    analysis: VideoAnalysis,
    store: Arc<vigil_store::SqliteStore>,
    video: vigil_base::camera::VideoConfig,
) -> PeriodicJob {
    let interval = std::time::Duration::from_secs_f32(video.retention_interval_secs);
    PeriodicJob::spawn("sighting-retention", interval, move || {
        let now = now_ms();
        let hours = |h: f64| (h * 3_600_000.0) as i64;
        let unmatched = analysis.purge_sightings_before(
            now - hours(video.unmatched_sighting_retention_hours),
            Some(false),
            now,
        );
        let matched = analysis.purge_sightings_before(
            now - hours(video.matched_sighting_retention_hours),
            Some(true),
            now,
        );
        // Delivered webhook payloads describe alerts: they go with matched sightings.
        let cutoff = now - hours(video.matched_sighting_retention_hours);
        if let Err(error) = store.purge_finished_webhook_deliveries(cutoff) {
            tracing::warn!(%error, "purging delivered webhooks failed");
        }
        match (unmatched, matched) {
            (Ok(0), Ok(0)) => {}
            (Ok(unmatched), Ok(matched)) => {
                let entry = vigil_audit::NewAuditEntry {
                    actor: vigil_audit::Actor {
                        user_id: None,
                        user_name: "retention".into(),
                    },
                    action: vigil_audit::AuditAction::RetentionPurge,
                    target: vigil_audit::Target {
                        kind: "sightings".into(),
                        id: String::new(),
                    },
                    case_ref: None,
                    reason: "retention policy".into(),
                    request: serde_json::json!({
                        "unmatched_deleted": unmatched,
                        "matched_deleted": matched,
                    }),
                    probe_image: None,
                    outcome: vigil_audit::Outcome::success(""),
                };
                if let Err(error) = store.audit(&entry) {
                    tracing::warn!(%error, "cannot audit a retention pass");
                }
            }
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(%error, "sighting retention failed")
            }
        }
    })
}

/// Scans the audit log for misuse every `misuse.scan_interval_secs`; each new alert is logged
/// for the operators' log collection and listed for auditors at `/v1/misuse/alerts`.
fn spawn_misuse_scan(
    store: Arc<vigil_store::SqliteStore>,
    policy: vigil_base::config::MisuseConfig,
) -> PeriodicJob {
    let interval = std::time::Duration::from_secs_f32(policy.scan_interval_secs);
    PeriodicJob::spawn("misuse-scan", interval, move || {
        match store.scan_for_misuse(&policy, now_ms()) {
            Ok(raised) => {
                for alert in raised {
                    tracing::warn!(
                        target: "vigil::misuse",
                        user = %alert.user_name,
                        rule = alert.rule.as_str(),
                        detail = %alert.detail,
                        "misuse alert raised for auditors"
                    );
                }
            }
            Err(error) => tracing::warn!(%error, "misuse scan failed"),
        }
    })
}

/// Wakes the webhook dispatcher on every alert and review (both pass through the alert
/// broadcast), so their deliveries go out at once rather than at the next idle poll.
pub(crate) fn spawn_webhook_waker(analysis: &VideoAnalysis, waker: vigil_notify::DispatcherWaker) {
    let mut alerts = analysis.subscribe_alerts();
    let spawned = std::thread::Builder::new()
        .name("webhook-waker".into())
        .spawn(move || loop {
            match alerts.blocking_recv() {
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => waker.wake(),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "cannot start the webhook waker; deliveries wait for the poll");
    }
}
