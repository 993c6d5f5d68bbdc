//! The top of the API: the router assembled from every feature's routes, and the application
//! built from settings and run until SIGTERM or Ctrl-C.

use crate::{
    config::Settings,
    error::error_body,
    state::{AppState, StartupError},
};
use axum::{
    extract::DefaultBodyLimit,
    http::StatusCode,
    middleware,
    response::{IntoResponse, Response},
    Router,
};
use std::{any::Any, future::Future, net::SocketAddr, sync::Arc};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::{catch_panic::CatchPanicLayer, timeout::TimeoutLayer, trace::TraceLayer};

/// The whole API: every feature's routes over [`AppState`], the fallbacks, and the layers every
/// request passes (body limit, timeout, panics, rate limits, security headers, metrics, tracing).
pub fn router(state: AppState) -> Router {
    let settings = state.settings.clone();
    Router::new()
        .merge(crate::health::router())
        .merge(crate::users::router())
        .merge(crate::sign_in::router())
        .merge(crate::products::router())
        .merge(crate::cart::router())
        .merge(crate::checkout::router())
        .merge(crate::orders::router())
        .merge(crate::sellers::router())
        .merge(crate::storefront::router())
        .fallback(|| async { error_body(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            error_body(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not accept that method",
            )
        })
        .with_state(state.clone())
        .merge(crate::openapi::router())
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            settings.request_timeout,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::limits::guard,
        ))
        .layer(middleware::from_fn(crate::security::headers))
        .layer(middleware::from_fn(crate::metrics::track_http))
        .layer(TraceLayer::new_for_http())
}

fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    error_body(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error",
    )
    .into_response()
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    shutting_down: CancellationToken,
    settings: Arc<Settings>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let listener = TcpListener::bind(settings.listen_addr).await?;
        let state = AppState::connect(settings).await?;
        shop_infra::metrics::handle();
        Ok(Self {
            listener,
            shutting_down: state.shutting_down.clone(),
            settings: state.settings.clone(),
            router: router(state),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until SIGTERM or Ctrl-C, then shuts down gracefully ([`Application::run_until`]).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shop_infra::shutdown::signal()).await
    }

    /// Serves until `stop` resolves. Then `/readyz` answers 503 for `SHUTDOWN_DRAIN_MS` while
    /// requests are still served; then the listener closes, SSE streams end, and requests in
    /// flight get up to `SHUTDOWN_TIMEOUT_SECS` to finish.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Self {
            listener,
            router,
            shutting_down,
            settings,
        } = self;
        let (drain, timeout) = (settings.shutdown_drain, settings.shutdown_timeout);
        let draining = shutting_down.clone();
        let close = async move {
            stop.await;
            draining.cancel();
            tracing::info!(?drain, "shutting down: unready, draining");
            tokio::time::sleep(drain).await;
            tracing::info!("shutting down: no longer accepting connections");
        };
        let limits = crate::serve::ConnectionLimits::from(&*settings);
        let serve = crate::serve::serve(listener, router, limits, close);
        let deadline = async move {
            shutting_down.cancelled().await;
            tokio::time::sleep(drain + timeout).await;
        };
        tokio::select! {
            () = serve => Ok(()),
            () = deadline => {
                tracing::warn!(?timeout, "requests still in flight at the shutdown deadline; exiting");
                Ok(())
            }
        }
    }
}
