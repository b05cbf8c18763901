//! A TCP proxy that can be cut: every open connection is dropped and new ones are closed at
//! once, as when a database server restarts or the network between two machines fails. Put
//! in front of PostgreSQL, it is how tests and `neurocards chaos` take the database away.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
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
    /// Listens on a free port of 127.0.0.1 and forwards every connection to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let cut_until: Arc<Mutex<Option<Instant>>> = Arc::default();
        let (cuts, _) = watch::channel(0u64);
        let accepting = tokio::spawn({
            let cut_until = Arc::clone(&cut_until);
            let cuts = cuts.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let down = cut_until
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
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
        Ok(TcpProxy {
            addr,
            cut_until,
            cuts,
            accepting,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every connection now and refuses service for `duration`.
    pub fn cut_for(&self, duration: Duration) {
        *self
            .cut_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + duration);
        self.cuts.send_modify(|generation| *generation += 1);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}
