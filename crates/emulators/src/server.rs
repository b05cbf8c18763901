//! Binding, stopping and briefly refusing connections to an axum server; shared by both
//! emulators.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::gate::{Gate, GatedListener};

/// A running server. Dropping it stops the server: tests never have to remember to.
#[derive(Debug)]
pub(crate) struct Server {
    gate: Arc<Gate>,
    cancel: CancellationToken,
}

impl Server {
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.gate.addr())
    }

    /// Refuses connections for `duration`, then serves again on the same port; see `gate`.
    pub(crate) fn refuse_connections_for(&self, duration: Duration) {
        self.gate.refuse_for(duration);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Binds first so that the caller learns the port (and so the base URL its state needs)
/// before anything is served.
pub(crate) async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    // These fakes have no authentication worth the name: never expose them beyond loopback.
    if !addr.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the emulators only bind to loopback addresses, not {addr}"),
        ));
    }
    TcpListener::bind(addr).await
}

/// Serves `router` until `cancel` fires. Handlers that wait (long polls, `#hang`) must watch
/// the same token, or graceful shutdown would wait for them forever.
pub(crate) fn spawn(
    listener: TcpListener,
    router: Router,
    cancel: CancellationToken,
) -> io::Result<Server> {
    let gate = Gate::new(listener)?;
    let listener = GatedListener::new(Arc::clone(&gate));
    let signal = cancel.clone().cancelled_owned();
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router)
            .with_graceful_shutdown(signal)
            .await
        {
            tracing::warn!(%error, "emulator server stopped with an error");
        }
    });
    Ok(Server { gate, cancel })
}
