//! A TCP proxy in front of PostgreSQL that a test can cut: every open connection is dropped
//! and new ones are closed at once, as when the server restarts or the network fails.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct TcpProxy {
    addr: SocketAddr,
    cut_until: Arc<Mutex<Option<Instant>>>,
    cuts: watch::Sender<u64>,
    accepting: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("an address");
        let cut_until: Arc<Mutex<Option<Instant>>> = Arc::default();
        let (cuts, _) = watch::channel(0u64);
        let accepting = tokio::spawn({
            let cut_until = Arc::clone(&cut_until);
            let cuts = cuts.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let down = cut_until
                        .lock()
                        .expect("the proxy's lock")
                        .is_some_and(|until| Instant::now() < until);
                    if down {
                        drop(client);
                        continue;
                    }
                    let mut cut = cuts.subscribe();
                    tokio::spawn(async move {
                        let Ok(mut server) = TcpStream::connect(target).await else {
                            return;
                        };
                        let mut client = client;
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = cut.changed() => {}
                        }
                    });
                }
            }
        });
        TcpProxy {
            addr,
            cut_until,
            cuts,
            accepting,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every connection now and refuses service for `duration`.
    pub fn cut_for(&self, duration: Duration) {
        *self.cut_until.lock().expect("the proxy's lock") = Some(Instant::now() + duration);
        self.cuts.send_modify(|generation| *generation += 1);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}
