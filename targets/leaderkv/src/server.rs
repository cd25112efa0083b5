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

use bytes::Bytes;

use crate::commands::{Class, Outcome, classify, position};
use crate::core::{Core, Progress};
use crate::node::Shared;
use crate::resp::{Reply, parse_command};
use crate::txn::Queue;

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
    // Between MULTI and EXEC/DISCARD: the queued commands.
    let mut queue: Option<Queue> = None;
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
            if let Some(slot) =
                transaction(&shared, &mut queue, &args, &mut slots, &mut out, &mut rx).await
            {
                slots.push(slot);
                continue;
            }
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

/// The transaction commands: `MULTI` starts a queue, commands are queued while it is open,
/// `DISCARD` drops it, `EXEC` (or `SESSION <lsn> EXEC`) runs it. `None`: not a transaction
/// command and no queue open.
async fn transaction(
    shared: &Arc<Shared>,
    queue: &mut Option<Queue>,
    args: &[Bytes],
    slots: &mut Vec<Slot>,
    out: &mut Vec<u8>,
    rx: &mut watch::Receiver<Progress>,
) -> Option<Slot> {
    let word = |i: usize| args.get(i).map(|a| a.to_ascii_uppercase());
    let session = match (word(0).as_deref(), args.len()) {
        (Some(b"SESSION"), 3) if word(2).as_deref() == Some(b"EXEC") => match position(&args[1]) {
            Some(p) => Some(p),
            None => return Some(Slot::Ready(Reply::err("ERR SESSION takes a log position"))),
        },
        _ => None,
    };
    let exec = session.is_some() || word(0).as_deref() == Some(b"EXEC");
    match (queue.is_some(), word(0).as_deref()) {
        (false, Some(b"MULTI")) => {
            *queue = Some(Queue::default());
            Some(Slot::Ready(Reply::ok()))
        }
        (true, Some(b"MULTI")) => {
            Some(Slot::Ready(Reply::err("ERR MULTI calls can not be nested")))
        }
        (true, Some(b"DISCARD")) => {
            *queue = None;
            Some(Slot::Ready(Reply::ok()))
        }
        (false, Some(b"EXEC" | b"DISCARD")) => Some(Slot::Ready(Reply::err(format!(
            "ERR {} without MULTI",
            String::from_utf8_lossy(&args[0]).to_ascii_uppercase()
        )))),
        (true, _) if exec => {
            let q = queue.take().expect("open");
            if q.class() == Class::Write {
                return Some(match shared.core().exec(&q, session) {
                    Outcome::Now(r) => Slot::Ready(r),
                    Outcome::Wait { lsn, term, reply } => Slot::Wait {
                        lsn,
                        term,
                        reply,
                        deadline: Instant::now() + shared.cfg.write_timeout,
                    },
                    Outcome::Retry(why) => Slot::Ready(Reply::err(why)),
                });
            }
            // Read-only: after the connection's earlier writes, waiting like a read.
            resolve(slots, out, rx).await;
            Some(Slot::Ready(
                retrying(shared, |core| core.exec(&q, session)).await,
            ))
        }
        (true, _) => Some(Slot::Ready(
            queue.as_mut().expect("open").push(args.to_vec()),
        )),
        (false, _) => None,
    }
}

/// A read: on the leader, wait (bounded) until leadership is confirmed; with a session
/// position, until this node has applied it.
async fn read(shared: &Arc<Shared>, args: &[bytes::Bytes]) -> Reply {
    retrying(shared, |core| core.execute(args)).await
}

/// Runs `f` until it answers, or answers its reason to wait once the write timeout passed.
/// A read-only transaction waits for commit like a read that waits for nothing else: it is
/// answered when its records are.
async fn retrying(shared: &Arc<Shared>, mut f: impl FnMut(&mut Core) -> Outcome) -> Reply {
    let deadline = Instant::now() + shared.cfg.write_timeout;
    let mut rx = shared.progress.clone();
    loop {
        let outcome = f(&mut shared.core());
        let why = match outcome {
            Outcome::Now(r) => return r,
            Outcome::Wait { lsn, term, reply } => {
                return wait_commit(lsn, term, reply, deadline, &mut rx).await;
            }
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
