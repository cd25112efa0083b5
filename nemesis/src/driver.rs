//! [`run_schedule`]: plays a [`Schedule`] against a [`Nemesis`], reporting every start and
//! stop as [`NemesisEvent`]s (the runner writes them into the history as `info` ops of the
//! `nemesis` process), and heals everything at the end of the fault window, when `cancel`
//! fires (Ctrl-C, time limit, a failed workload) and on the first nemesis error.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use serde_json::{Value, json};

use history::vocab::{self, Phase};

use crate::error::Result;
use crate::fault::FaultRecord;
use crate::nemesis::{Nemesis, NemesisOp};
use crate::schedule::Schedule;

/// One end of a nemesis op, for the history.
#[derive(Debug, Clone, PartialEq)]
pub enum NemesisEvent {
    /// About to start or stop a fault: write `{"type":"info","f":f,"value":value}`.
    Invoke { f: String, value: Value },
    /// Done: write `{"type":"info","f":f,"value":value}`; `records` says exactly what was
    /// done (the grudge, the nodes, the offset).
    Complete {
        f: String,
        value: Value,
        records: Vec<FaultRecord>,
    },
    /// Failed (everything gets healed next): write an `info` op with the error.
    Fail {
        f: String,
        value: Value,
        error: String,
    },
}

fn start_f(f: &crate::fault::Fault) -> String {
    vocab::nemesis_f(Phase::Start, f.kind().name())
}

/// Runs `schedule` (times relative to now) against `nemesis`. Returns every record; errors
/// with the first failure (after healing). Always ends with every fault healed, unless
/// healing itself fails (then the state file keeps what is left, and the error says so).
pub async fn run_schedule<C>(
    nemesis: &dyn Nemesis,
    schedule: &Schedule,
    cancel: C,
    on_event: &mut (dyn FnMut(NemesisEvent) + Send),
) -> Result<Vec<FaultRecord>>
where
    C: Future<Output = ()> + Send,
{
    // (time, stops before starts at the same instant, index)
    let mut timeline: Vec<(u64, u8, usize)> = Vec::new();
    for (i, f) in schedule.faults.iter().enumerate() {
        timeline.push((f.start_ms, 1, i));
        timeline.push((f.end_ms, 0, i));
    }
    timeline.sort();
    let t0 = tokio::time::Instant::now();
    tokio::pin!(cancel);
    let mut ids: BTreeMap<usize, u64> = BTreeMap::new();
    let mut records = Vec::new();
    let mut first_error = None;
    let mut cancelled = false;
    for (at, is_start, i) in timeline {
        let deadline = t0 + Duration::from_millis(at);
        cancelled = tokio::select! {
            _ = tokio::time::sleep_until(deadline) => false,
            _ = &mut cancel => true,
        };
        if cancelled {
            break;
        }
        let sf = &schedule.faults[i];
        let (op, f, value) = if is_start == 1 {
            start_op(&sf.fault)
        } else {
            let Some(id) = ids.remove(&i) else { continue };
            stop_op(sf.fault.kind(), id)
        };
        match invoke_reported(nemesis, op, f, value, on_event).await {
            Ok(rec) => {
                if is_start == 1 {
                    ids.insert(i, rec.id);
                }
                records.push(rec);
            }
            Err(e) => {
                first_error = Some(e);
                break;
            }
        }
    }
    // A schedule that ran out before the run ends heals when the run's fault window does,
    // as the failover-aware nemesis does: a replay of its schedule then ends as it did.
    if !cancelled && first_error.is_none() {
        cancel.await;
    }
    records.extend(heal_reported(nemesis, on_event).await?);
    match first_error {
        Some(e) => Err(e),
        None => Ok(records),
    }
}

/// Invokes `op`, reporting its invocation (as `f`, `value`) and its completion or failure.
pub(crate) async fn invoke_reported(
    nemesis: &dyn Nemesis,
    op: NemesisOp,
    f: String,
    value: Value,
    on_event: &mut (dyn FnMut(NemesisEvent) + Send),
) -> Result<FaultRecord> {
    on_event(NemesisEvent::Invoke {
        f: f.clone(),
        value: value.clone(),
    });
    match nemesis.invoke(op).await {
        Ok(rec) => {
            on_event(NemesisEvent::Complete {
                f: rec.f(),
                value: rec.value(),
                records: vec![rec.clone()],
            });
            Ok(rec)
        }
        Err(e) => {
            on_event(NemesisEvent::Fail {
                f,
                value,
                error: e.to_string(),
            });
            Err(e)
        }
    }
}

/// The op that starts `fault`, as the history shows it before it is applied.
pub(crate) fn start_op(fault: &crate::fault::Fault) -> (NemesisOp, String, Value) {
    (
        NemesisOp::Start(fault.clone()),
        start_f(fault),
        json!(fault),
    )
}

/// The op that stops fault instance `id` of `kind`.
pub(crate) fn stop_op(kind: crate::fault::FaultKind, id: u64) -> (NemesisOp, String, Value) {
    (
        NemesisOp::Stop(id),
        vocab::nemesis_f(Phase::Stop, kind.name()),
        json!({ "id": id }),
    )
}

/// Heals everything, reported as one `heal-all` op listing what it stopped.
pub(crate) async fn heal_reported(
    nemesis: &dyn Nemesis,
    on_event: &mut (dyn FnMut(NemesisEvent) + Send),
) -> Result<Vec<FaultRecord>> {
    on_event(NemesisEvent::Invoke {
        f: vocab::HEAL_ALL.into(),
        value: Value::Null,
    });
    match nemesis.heal_all().await {
        Ok(healed) => {
            let value = Value::Array(
                healed
                    .iter()
                    .map(|r| json!({ "f": r.f(), "value": r.value() }))
                    .collect(),
            );
            on_event(NemesisEvent::Complete {
                f: vocab::HEAL_ALL.into(),
                value,
                records: healed.clone(),
            });
            Ok(healed)
        }
        Err(e) => {
            on_event(NemesisEvent::Fail {
                f: vocab::HEAL_ALL.into(),
                value: Value::Null,
                error: e.to_string(),
            });
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::fault::{Fault, FaultKind, Phase, Target};
    use crate::schedule::ScheduledFault;
    use std::sync::Mutex;

    /// Records what it is asked; fails a start of `Kill`.
    #[derive(Default)]
    struct Mock {
        log: Mutex<Vec<String>>,
        active: Mutex<BTreeMap<u64, FaultRecord>>,
        next: Mutex<u64>,
    }

    fn rec(id: u64, fault: &Fault, phase: Phase) -> FaultRecord {
        FaultRecord {
            id,
            kind: fault.kind(),
            phase,
            nodes: vec!["n1".into()],
            grudge: None,
            clock_offset_ms: None,
            fault: fault.clone(),
            errors: vec![],
        }
    }

    #[async_trait::async_trait]
    impl Nemesis for Mock {
        async fn setup(&self) -> Result<()> {
            Ok(())
        }
        async fn invoke(&self, op: NemesisOp) -> Result<FaultRecord> {
            match op {
                NemesisOp::Start(f) => {
                    if f.kind() == FaultKind::Kill {
                        return Err(Error::other("kill", "refused"));
                    }
                    let mut n = self.next.lock().unwrap();
                    *n += 1;
                    self.log.lock().unwrap().push(format!("start {}", *n));
                    let r = rec(*n, &f, Phase::Start);
                    self.active.lock().unwrap().insert(*n, r.clone());
                    Ok(r)
                }
                NemesisOp::Stop(id) => {
                    self.log.lock().unwrap().push(format!("stop {id}"));
                    let r = self.active.lock().unwrap().remove(&id).unwrap();
                    Ok(FaultRecord {
                        phase: Phase::Stop,
                        ..r
                    })
                }
            }
        }
        async fn heal_all(&self) -> Result<Vec<FaultRecord>> {
            self.log.lock().unwrap().push("heal-all".into());
            let all = std::mem::take(&mut *self.active.lock().unwrap());
            Ok(all
                .into_values()
                .map(|r| FaultRecord {
                    phase: Phase::Stop,
                    ..r
                })
                .collect())
        }
        async fn teardown(&self) -> Result<()> {
            Ok(())
        }
    }

    fn pause(start_ms: u64, end_ms: u64) -> ScheduledFault {
        ScheduledFault {
            start_ms,
            end_ms,
            fault: Fault::Pause {
                target: Target::One,
            },
            episode: None,
        }
    }

    fn fs(events: &[NemesisEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                NemesisEvent::Invoke { f, .. } => format!("invoke {f}"),
                NemesisEvent::Complete { f, .. } => format!("complete {f}"),
                NemesisEvent::Fail { f, .. } => format!("fail {f}"),
            })
            .collect()
    }

    #[tokio::test]
    async fn plays_overlapping_faults_in_time_order_then_heals() {
        let m = Mock::default();
        let s = Schedule {
            seed: None,
            nodes: vec![],
            faults: vec![pause(10, 40), pause(20, 30)],
        };
        let mut events = Vec::new();
        // The heal waits for the end of the fault window, after the schedule ran out.
        let started = tokio::time::Instant::now();
        let window = tokio::time::sleep(Duration::from_millis(120));
        let recs = run_schedule(&m, &s, window, &mut |e| events.push(e))
            .await
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(120));
        assert_eq!(
            *m.log.lock().unwrap(),
            ["start 1", "start 2", "stop 2", "stop 1", "heal-all"]
        );
        assert_eq!(recs.len(), 4);
        assert_eq!(
            fs(&events)[..2],
            ["invoke start-pause", "complete start-pause"]
        );
        assert_eq!(fs(&events).last().unwrap(), "complete heal-all");
    }

    #[tokio::test]
    async fn cancel_stops_early_and_heals_what_is_active() {
        let m = Mock::default();
        let s = Schedule {
            seed: None,
            nodes: vec![],
            faults: vec![pause(5, 10_000), pause(20_000, 30_000)],
        };
        let mut events = Vec::new();
        let cancel = tokio::time::sleep(Duration::from_millis(100));
        let recs = run_schedule(&m, &s, cancel, &mut |e| events.push(e))
            .await
            .unwrap();
        assert_eq!(*m.log.lock().unwrap(), ["start 1", "heal-all"]);
        assert_eq!(recs.last().unwrap().phase, Phase::Stop);
        match events.last().unwrap() {
            NemesisEvent::Complete { records, .. } => assert_eq!(records.len(), 1),
            e => panic!("{e:?}"),
        }
    }

    #[tokio::test]
    async fn an_error_heals_everything_and_is_returned() {
        let m = Mock::default();
        let kill = ScheduledFault {
            start_ms: 10,
            end_ms: 20,
            fault: Fault::Kill {
                target: Target::All,
            },
            episode: None,
        };
        let s = Schedule {
            seed: None,
            nodes: vec![],
            faults: vec![pause(0, 100), kill, pause(30, 40)],
        };
        let mut events = Vec::new();
        let err = run_schedule(&m, &s, std::future::pending(), &mut |e| events.push(e))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("refused"));
        assert_eq!(*m.log.lock().unwrap(), ["start 1", "heal-all"]);
        assert!(fs(&events).contains(&"fail start-kill".to_string()));
    }
}
