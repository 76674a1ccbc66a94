//! `vigil serve`: the HTTP API.

use crate::cli::ServeArgs;
use crate::context::Context;
use anyhow::Context as _;
use std::sync::Arc;

pub fn run(context: &Context, args: ServeArgs) -> anyhow::Result<()> {
    let service = Arc::new(context.service()?);
    let mut server = context.config.server.clone();
    if let Some(bind) = args.bind {
        server.bind = bind;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&server.bind)
            .await
            .with_context(|| format!("binding {}", server.bind))?;
        let address = listener.local_addr()?;
        tracing::info!(%address, model = %service.model(), templates = service.gallery_templates(), "vigil serving");
        eprintln!("vigil listening on http://{address}");
        let state = vigil_api::AppState::new(service, &server);
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        vigil_api::serve(listener, state, shutdown).await?;
        anyhow::Ok(())
    })
}
