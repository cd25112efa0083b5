//! Peer transport. Clients and peers share one port: a peer connection starts with the magic
//! bytes `00 'L' 'K' 'V'`, the sender's index (u16 LE) and the cluster id (u32 LE, a checksum of
//! the member list: connections from another cluster are refused), then carries frames
//! `[len u32 LE][message]`. Each node keeps one outbound connection per peer and only writes
//! on it; messages are one-way, answers travel on the other node's outbound connection.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::{Instrument, debug, warn};

use crate::codec::{Dec, Enc, Msg};
use crate::config::Bug;
use crate::node::Shared;
use crate::replication::IncomingSnapshot;
use crate::state::Store;
use crate::storage::{self, SnapshotFile};

pub const MAGIC: [u8; 4] = [0, b'L', b'K', b'V'];
const MAX_FRAME: usize = 1 << 30;

/// Keep a connection to peer `to` and write every queued message to it.
pub async fn sender(shared: Arc<Shared>, to: usize, mut rx: mpsc::Receiver<Msg>) {
    let addr = shared.cfg.peers[to].addr;
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        let conn = tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)).await;
        let mut stream = match conn {
            Ok(Ok(s)) => s,
            _ => {
                // Unreachable: drop what is queued (the protocol resends) and retry.
                while rx.try_recv().is_ok() {}
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        give_up_unacknowledged_after(&stream, shared.cfg.election_timeout);
        let mut hello = MAGIC.to_vec();
        hello.extend_from_slice(&(shared.cfg.me as u16).to_le_bytes());
        hello.extend_from_slice(&shared.cfg.cluster_id().to_le_bytes());
        if stream.write_all(&hello).await.is_err() {
            continue;
        }
        debug!(peer = %shared.cfg.peers[to].id, "connected");
        loop {
            let Some(m) = rx.recv().await else { return };
            buf.clear();
            frame(&mut buf, &m);
            while buf.len() < 1 << 20 {
                match rx.try_recv() {
                    Ok(m) => frame(&mut buf, &m),
                    Err(_) => break,
                }
            }
            let w = tokio::time::timeout(Duration::from_secs(2), stream.write_all(&buf)).await;
            if !matches!(w, Ok(Ok(()))) {
                warn!(peer = %shared.cfg.peers[to].id, "peer connection lost");
                break;
            }
        }
    }
}

/// Makes the kernel close the connection once sent data has gone unacknowledged for `limit`
/// (`TCP_USER_TIMEOUT`). Without it, a connection that lived through a partition keeps its
/// queued messages waiting for TCP's next retransmission, whose interval doubled with every
/// loss during the partition: after a heal the peer may hear nothing for many seconds while
/// every write still succeeds into the send buffer (seen: a follower stuck behind a new leader
/// for over 10 s after the last fault was healed). A closed connection is reopened at once.
fn give_up_unacknowledged_after(stream: &TcpStream, limit: Duration) {
    use std::os::fd::AsRawFd;
    let ms = limit.as_millis().clamp(1, u128::from(u32::MAX)) as libc::c_uint;
    // SAFETY: a valid socket descriptor, and an option value of the type and size the kernel
    // reads for TCP_USER_TIMEOUT.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_USER_TIMEOUT,
            (&ms as *const libc::c_uint).cast(),
            std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        debug!(
            "TCP_USER_TIMEOUT not set: {}",
            std::io::Error::last_os_error()
        );
    }
}

fn frame(buf: &mut Vec<u8>, m: &Msg) {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    Enc(buf).msg(m);
    let len = (buf.len() - start - 4) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// Read messages from a peer connection (after the magic bytes) and hand them to the core.
pub async fn receiver(shared: Arc<Shared>, mut sock: TcpStream, mut buf: BytesMut) {
    while buf.len() < 10 {
        match sock.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
    buf.advance(4);
    let from = buf.get_u16_le() as usize;
    let cluster = buf.get_u32_le();
    if from >= shared.cfg.peers.len() || from == shared.cfg.me || cluster != shared.cfg.cluster_id()
    {
        warn!(
            from,
            cluster, "peer connection from another cluster (different --peers); closing"
        );
        return;
    }
    loop {
        let mut msgs = Vec::new();
        loop {
            if buf.len() < 4 {
                break;
            }
            let len = u32::from_le_bytes(buf[..4].try_into().expect("4 bytes")) as usize;
            if len > MAX_FRAME {
                warn!(from, "oversized frame; closing");
                return;
            }
            if buf.len() < 4 + len {
                buf.reserve(4 + len - buf.len());
                break;
            }
            buf.advance(4);
            let body: Bytes = buf.split_to(len).freeze();
            match Dec::new(body).msg() {
                Ok(m) => msgs.push(m),
                Err(e) => {
                    warn!(from, "bad peer message: {e}");
                    return;
                }
            }
        }
        if !msgs.is_empty() {
            let mut rest = Vec::new();
            {
                let mut core = shared.core();
                for m in msgs {
                    match m {
                        Msg::Snapshot { .. } => rest.push(m),
                        m => core.on_msg(from, m),
                    }
                }
            }
            for m in rest {
                // Installed off the reader, so heartbeats keep flowing meanwhile; one at a time.
                if !shared
                    .installing
                    .swap(true, std::sync::atomic::Ordering::SeqCst)
                {
                    let s = shared.clone();
                    let h = tokio::spawn(
                        async move {
                            install_snapshot(&s, from, m).await;
                            s.installing
                                .store(false, std::sync::atomic::Ordering::SeqCst);
                        }
                        .in_current_span(),
                    );
                    shared.track(h.abort_handle());
                }
            }
        }
        match sock.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

async fn install_snapshot(shared: &Arc<Shared>, from: usize, m: Msg) {
    let Msg::Snapshot {
        term,
        lsn,
        last_term,
        commit,
        echo,
        data,
    } = m
    else {
        return;
    };
    {
        let core = shared.core();
        let acceptable = term >= core.term || core.bug(Bug::NoFencing);
        if !acceptable || core.blocked.contains(&from) {
            drop(core);
            // Let the normal path answer with our term.
            shared.core().on_msg(
                from,
                Msg::Append {
                    term,
                    prev_lsn: u64::MAX,
                    prev_term: 0,
                    commit: 0,
                    echo,
                    resume: false,
                    entries: vec![],
                },
            );
            return;
        }
    }
    let dir = shared.cfg.data_dir.clone();
    let res = tokio::task::spawn_blocking(move || {
        let store = Store::decode(data.clone())?;
        storage::save_snapshot(
            &dir,
            &SnapshotFile {
                lsn,
                term: last_term,
                data,
            },
        )?;
        Ok::<_, crate::Error>(store)
    })
    .await;
    match res {
        Ok(Ok(store)) => shared.core().on_snapshot(
            from,
            IncomingSnapshot {
                term,
                lsn,
                last_term,
                commit,
                echo,
                store,
            },
        ),
        Ok(Err(e)) => warn!("failed to install snapshot: {e}"),
        Err(e) => warn!("failed to install snapshot: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn peer_connections_give_up_on_data_unacknowledged_past_the_limit() {
        use std::os::fd::AsRawFd;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        give_up_unacknowledged_after(&stream, Duration::from_millis(1500));
        let mut ms: libc::c_uint = 0;
        let mut len = std::mem::size_of::<libc::c_uint>() as libc::socklen_t;
        // SAFETY: a valid socket, and a buffer of the option's size.
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_USER_TIMEOUT,
                (&mut ms as *mut libc::c_uint).cast(),
                &mut len,
            )
        };
        assert_eq!((rc, ms), (0, 1500));
    }
}
