//! `vigil serve`: the HTTP API, the cameras and their analysis.

use crate::cli::ServeArgs;
use crate::context::Context;
use anyhow::Context as _;
use std::sync::Arc;
use vigil_ingest::CameraManager;
use vigil_pipeline::video::VideoAnalysis;
use vigil_store::VideoStore;

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
    let analysis = VideoAnalysis::new(
        service.clone(),
        video_store.clone(),
        tracking,
        video_config.motion_gating,
    )?;
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
            .with_audit_anchors(context.audit_anchors_path());
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        vigil_api::serve(listener, state, shutdown).await?;
        anyhow::Ok(())
    });
    // Stop the ffmpeg processes and flush open tracks into sightings before exiting.
    cameras.shutdown();
    // Publish the audit head on the way out, so a later truncation is detectable.
    if let Err(error) = store.with_connection(|connection| {
        vigil_audit::publish_head(connection, &context.audit_anchors_path())
    }) {
        tracing::warn!(%error, "cannot publish the audit head");
    }
    served
}
