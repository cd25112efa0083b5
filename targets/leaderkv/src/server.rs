//! Client connections: pipelined RESP. Writes are appended as soon as they are parsed and their
//! replies released in order once committed; a read first waits for the connection's earlier
//! writes, so a client reads its own writes.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::commands::{Class, Outcome, classify};
use crate::core::Progress;
use crate::node::Shared;
use crate::resp::{Reply, parse_command};

enum Slot {
    Ready(Reply),
    Wait {
        lsn: u64,
        term: u64,
        reply: Reply,
        deadline: Instant,
    },
}

pub async fn serve(shared: Arc<Shared>, mut sock: TcpStream, mut buf: BytesMut) {
    let _ = sock.set_nodelay(true);
    let mut rx = shared.progress.clone();
    let mut slots: Vec<Slot> = Vec::new();
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    loop {
        loop {
            let args = match parse_command(&mut buf) {
                Ok(Some(a)) => a,
                Ok(None) => break,
                Err(e) => {
                    resolve(&mut slots, &mut out, &mut rx).await;
                    Reply::err(format!("ERR protocol error: {e}")).encode(&mut out);
                    let _ = sock.write_all(&out).await;
                    return;
                }
            };
            if args.is_empty() {
                continue;
            }
            let quit = args[0].eq_ignore_ascii_case(b"QUIT");
            let class = classify(&args);
            if class != Class::Write {
                resolve(&mut slots, &mut out, &mut rx).await;
            }
            let slot = match class {
                Class::Read => Slot::Ready(read(&shared, &args).await),
                _ => match shared.core().execute(&args) {
                    Outcome::Now(r) => Slot::Ready(r),
                    Outcome::Wait { lsn, term, reply } => Slot::Wait {
                        lsn,
                        term,
                        reply,
                        deadline: Instant::now() + shared.cfg.write_timeout,
                    },
                    Outcome::Retry(why) => Slot::Ready(Reply::err(why)),
                },
            };
            slots.push(slot);
            if quit {
                resolve(&mut slots, &mut out, &mut rx).await;
                let _ = sock.write_all(&out).await;
                return;
            }
        }
        resolve(&mut slots, &mut out, &mut rx).await;
        if !out.is_empty() {
            if sock.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        match sock.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// A read: on the leader, wait (bounded) until leadership is confirmed; with a session
/// position, until this node has applied it.
async fn read(shared: &Arc<Shared>, args: &[bytes::Bytes]) -> Reply {
    let deadline = Instant::now() + shared.cfg.write_timeout;
    loop {
        let why = match shared.core().execute(args) {
            Outcome::Now(r) => return r,
            Outcome::Wait { reply, .. } => return reply,
            Outcome::Retry(why) => why,
        };
        if Instant::now() >= deadline {
            return Reply::err(why);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Release the replies of queued commands, in order.
async fn resolve(slots: &mut Vec<Slot>, out: &mut Vec<u8>, rx: &mut watch::Receiver<Progress>) {
    for slot in slots.drain(..) {
        match slot {
            Slot::Ready(r) => r.encode(out),
            Slot::Wait {
                lsn,
                term,
                reply,
                deadline,
            } => wait_commit(lsn, term, reply, deadline, rx)
                .await
                .encode(out),
        }
    }
}

async fn wait_commit(
    lsn: u64,
    term: u64,
    reply: Reply,
    deadline: Instant,
    rx: &mut watch::Receiver<Progress>,
) -> Reply {
    loop {
        let p = *rx.borrow_and_update();
        if p.term == term && p.commit >= lsn {
            return reply;
        }
        if p.term != term || !p.leader {
            return Reply::err(format!(
                "UNCERTAIN lost leadership before the write at lsn {lsn} was confirmed"
            ));
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Reply::err("UNCERTAIN node shutting down"),
            Err(_) => {
                return Reply::err(format!(
                    "UNCERTAIN timed out waiting for replication of lsn {lsn}"
                ));
            }
        }
    }
}
