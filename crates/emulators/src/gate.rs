//! A listener that can refuse connections for a while, then listen again on the same port:
//! "the server is unreachable", with the emulator's state kept.
//!
//! When a window opens the listening socket is closed, so the kernel answers a connect with a
//! reset: the client gets "connection refused" (reqwest: `is_connect()`), and knows for sure
//! that its request never reached the server. Meanwhile the port stays reserved by a bound
//! socket that does not listen (Linux does not hand out a bound port as an ephemeral one), and
//! that socket starts listening when the window is over. The connections accepted before the
//! window are cut when it opens: their reads and writes fail, so hyper drops them, and neither
//! an in-flight request nor an idle keep-alive connection lives through the window.

use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// The standard library's backlog, which `TcpListener::bind` uses too.
const BACKLOG: u32 = 1024;

/// The pause before retrying a failed accept or listen, so that a lasting error does not spin.
const RETRY: Duration = Duration::from_millis(50);

/// The switch shared by the server's handle (which opens windows) and its accept loop.
#[derive(Debug)]
pub(crate) struct Gate {
    addr: SocketAddr,
    state: Mutex<GateState>,
    /// Woken when a window opens or grows, so that the accept loop looks at the new end.
    changed: Notify,
}

#[derive(Debug)]
struct GateState {
    /// `None` during a window.
    listener: Option<TcpListener>,
    /// During a window: the port, bound but not listening.
    reserved: Option<TcpSocket>,
    refused_until: Option<Instant>,
    /// The accept loop waiting on `listener`: closing the listener under it does not wake it.
    accept_waker: Option<Waker>,
    /// Held by every accepted connection; cancelled when a window opens, which cuts them.
    connections: CancellationToken,
}

impl Gate {
    pub(crate) fn new(listener: TcpListener) -> io::Result<Arc<Gate>> {
        Ok(Arc::new(Gate {
            addr: listener.local_addr()?,
            state: Mutex::new(GateState {
                listener: Some(listener),
                reserved: None,
                refused_until: None,
                accept_waker: None,
                connections: CancellationToken::new(),
            }),
            changed: Notify::new(),
        }))
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Poisoning is ignored: every critical section leaves the state consistent.
    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Refuses connections from now until `duration` has passed (a window already open is
    /// extended, never shortened). Synchronous, so that a connect made right after the call
    /// is already refused.
    pub(crate) fn refuse_for(&self, duration: Duration) {
        let until = Instant::now() + duration;
        let mut st = self.lock();
        st.refused_until = Some(st.refused_until.map_or(until, |end| end.max(until)));
        if let Some(listener) = st.listener.take() {
            // Closing the listening socket is what makes the kernel refuse connects.
            drop(listener);
            st.reserved = match reserve(self.addr) {
                Ok(socket) => Some(socket),
                Err(error) => {
                    // Connects are refused all the same; the port is bound again at the end.
                    tracing::warn!(%error, addr = %self.addr, "cannot hold the port during the window");
                    None
                }
            };
        }
        st.connections.cancel();
        st.connections = CancellationToken::new();
        if let Some(waker) = st.accept_waker.take() {
            waker.wake();
        }
        drop(st);
        // Stores a permit when the accept loop is not waiting yet, so it is never missed.
        self.changed.notify_one();
    }

    /// Listens again once the window is over; returns the time to wait till otherwise.
    fn reopen_if_due(&self) -> Option<Instant> {
        let mut st = self.lock();
        let now = Instant::now();
        if let Some(until) = st.refused_until.filter(|until| *until > now) {
            return Some(until);
        }
        if st.listener.is_none() {
            let socket = match st.reserved.take() {
                Some(socket) => Ok(socket),
                None => reserve(self.addr),
            };
            match socket.and_then(|socket| socket.listen(BACKLOG)) {
                Ok(listener) => st.listener = Some(listener),
                Err(error) => {
                    tracing::warn!(%error, addr = %self.addr, "cannot listen again; retrying");
                    return Some(now + RETRY);
                }
            }
        }
        st.refused_until = None;
        None
    }

    /// `None` when a window opened meanwhile (the listener is gone).
    fn poll_accept(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<(GatedStream, SocketAddr)>>> {
        let mut st = self.lock();
        let Some(listener) = &st.listener else {
            return Poll::Ready(None);
        };
        match listener.poll_accept(cx) {
            Poll::Ready(accepted) => {
                let cut = st.connections.clone();
                Poll::Ready(Some(
                    accepted.map(|(stream, addr)| (GatedStream::new(stream, cut), addr)),
                ))
            }
            Poll::Pending => {
                st.accept_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// The port, bound as the first listener was (with SO_REUSEADDR, so that connections still
/// closing on it do not get in the way) but not listening.
fn reserve(addr: SocketAddr) -> io::Result<TcpSocket> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket)
}

/// What `axum::serve` accepts from.
#[derive(Debug)]
pub(crate) struct GatedListener {
    gate: Arc<Gate>,
}

impl GatedListener {
    pub(crate) fn new(gate: Arc<Gate>) -> GatedListener {
        GatedListener { gate }
    }
}

impl Listener for GatedListener {
    type Io = GatedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (GatedStream, SocketAddr) {
        loop {
            if let Some(until) = self.gate.reopen_if_due() {
                tokio::select! {
                    () = tokio::time::sleep_until(until) => {}
                    () = self.gate.changed.notified() => {}
                }
                continue;
            }
            match poll_fn(|cx| self.gate.poll_accept(cx)).await {
                Some(Ok(accepted)) => return accepted,
                // A client that gave up before being accepted: nothing to serve.
                Some(Err(error)) if is_connection_error(&error) => {}
                Some(Err(error)) => {
                    // E.g. out of file descriptors: wait for some to be closed.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(RETRY).await;
                }
                None => {}
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.gate.addr)
    }
}

fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// An accepted connection that fails once a window opens.
#[derive(Debug)]
pub(crate) struct GatedStream {
    stream: TcpStream,
    /// Boxed, as the future is not `Unpin` and the stream must be.
    cut: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl GatedStream {
    fn new(stream: TcpStream, cut: CancellationToken) -> GatedStream {
        GatedStream {
            stream,
            cut: Box::pin(cut.cancelled_owned()),
        }
    }

    /// Polling the future also registers the task, so a connection idle in a read wakes up
    /// and fails when the window opens.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.cut.as_mut().poll(cx).is_ready() {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the emulator refuses connections for a while",
            ));
        }
        Ok(())
    }
}

impl AsyncRead for GatedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(error) = this.check(cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for GatedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(error) = this.check(cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(error) = this.check(cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
