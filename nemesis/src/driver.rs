//! [`run_schedule`]: plays a [`Schedule`] against a [`Nemesis`], reporting every start and
//! stop as [`NemesisEvent`]s (the runner writes them into the history as `info` ops of the
//! `nemesis` process), and heals everything at the end of the fault window, when `cancel`
//! fires (Ctrl-C, time limit, a failed workload) and on the first nemesis error.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use serde_json::{Value, json};

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
    format!("start-{}", f.kind().name())
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
    for (at, is_start, i) in timeline {
        let deadline = t0 + Duration::from_millis(at);
        let cancelled = tokio::select! {
            _ = tokio::time::sleep_until(deadline) => false,
            _ = &mut cancel => true,
        };
        if cancelled {
            break;
        }
        let sf = &schedule.faults[i];
        let (op, f, value) = if is_start == 1 {
            (
                NemesisOp::Start(sf.fault.clone()),
                start_f(&sf.fault),
                json!(sf.fault),
            )
        } else {
            let Some(id) = ids.remove(&i) else { continue };
            let f = format!("stop-{}", sf.fault.kind().name());
            (NemesisOp::Stop(id), f, json!({ "id": id }))
        };
        on_event(NemesisEvent::Invoke {
            f: f.clone(),
            value: value.clone(),
        });
        match nemesis.invoke(op).await {
            Ok(rec) => {
                if is_start == 1 {
                    ids.insert(i, rec.id);
                }
                on_event(NemesisEvent::Complete {
                    f: rec.f(),
                    value: rec.value(),
                    records: vec![rec.clone()],
                });
                records.push(rec);
            }
            Err(e) => {
                on_event(NemesisEvent::Fail {
                    f,
                    value,
                    error: e.to_string(),
                });
                first_error = Some(e);
                break;
            }
        }
    }
    on_event(NemesisEvent::Invoke {
        f: "heal-all".into(),
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
                f: "heal-all".into(),
                value,
                records: healed.clone(),
            });
            records.extend(healed);
        }
        Err(e) => {
            on_event(NemesisEvent::Fail {
                f: "heal-all".into(),
                value: Value::Null,
                error: e.to_string(),
            });
            return Err(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(records),
    }
}
