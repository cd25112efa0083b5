//! Delta debugging over a fault schedule: drop faults (ddmin), shorten fault windows, move
//! the faults early and shorten the test, keeping the same anomaly class. Reproduction is
//! probabilistic, so a candidate counts as reproducing when at least half of `tries` attempts
//! do (what the result must keep doing). Pure: running a candidate is the caller's
//! [`Reproducer`].

use std::time::Duration;

use nemesis::Schedule;

/// One thing to try: a schedule and the test length it runs in.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub schedule: Schedule,
    pub time_limit_ms: u64,
}

impl Candidate {
    pub fn faults(&self) -> usize {
        self.schedule.faults.len()
    }
}

/// Runs a candidate once and says whether the anomaly came back.
pub trait Reproducer {
    /// Why an attempt could not be made (the shrink stops with it).
    type Error;
    fn attempt(&mut self, candidate: &Candidate) -> Result<bool, Self::Error>;
    /// Time spent so far (the budget is checked against it before every attempt).
    fn elapsed(&self) -> Duration;
}

#[derive(Debug, Clone)]
pub struct Options {
    pub tries: u32,
    pub budget: Duration,
    /// Fault windows are not shortened below this.
    pub min_window_ms: u64,
    /// Quiet time kept before the first fault and after the last one.
    pub margin_ms: u64,
}

/// One candidate tried, for the report of how the shrink got where it did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    pub what: String,
    pub faults: usize,
    pub time_limit_ms: u64,
    pub attempts: u32,
    pub reproduced: bool,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub best: Candidate,
    pub steps: Vec<Step>,
    pub attempts: u32,
    pub budget_exhausted: bool,
}

struct Shrinker<'a, R: Reproducer> {
    opts: &'a Options,
    repro: &'a mut R,
    steps: Vec<Step>,
    attempts: u32,
    out_of_budget: bool,
}

impl<R: Reproducer> Shrinker<'_, R> {
    /// A candidate reproduces when at least half of `tries` attempts show the anomaly; the
    /// attempts stop as soon as that is decided either way.
    fn try_candidate(&mut self, what: String, c: &Candidate) -> Result<bool, R::Error> {
        let needed = self.opts.tries.div_ceil(2);
        let (mut n, mut hits) = (0, 0);
        while hits < needed && n - hits <= self.opts.tries - needed {
            if self.repro.elapsed() >= self.opts.budget {
                self.out_of_budget = true;
                break;
            }
            n += 1;
            self.attempts += 1;
            if self.repro.attempt(c)? {
                hits += 1;
            }
        }
        let ok = hits >= needed;
        self.steps.push(Step {
            what,
            faults: c.faults(),
            time_limit_ms: c.time_limit_ms,
            attempts: n,
            reproduced: ok,
        });
        Ok(ok)
    }

    fn with_faults(best: &Candidate, keep: &[usize]) -> Candidate {
        let mut c = best.clone();
        c.schedule.faults = keep
            .iter()
            .map(|&i| best.schedule.faults[i].clone())
            .collect();
        c
    }

    /// ddmin: try each chunk alone, then each complement, refining the split.
    fn drop_faults(&mut self, best: &mut Candidate) -> Result<(), R::Error> {
        let mut n = 2usize;
        while best.faults() >= 2 && !self.out_of_budget {
            let len = best.faults();
            let chunks: Vec<Vec<usize>> = (0..n)
                .map(|k| (k * len / n..(k + 1) * len / n).collect())
                .filter(|c: &Vec<usize>| !c.is_empty())
                .collect();
            let mut reduced = false;
            for chunk in &chunks {
                let c = Self::with_faults(best, chunk);
                if self.try_candidate(format!("keep faults {chunk:?} of {len}"), &c)? {
                    *best = c;
                    n = 2;
                    reduced = true;
                    break;
                }
            }
            if !reduced && chunks.len() > 2 {
                for chunk in &chunks {
                    let rest: Vec<usize> = (0..len).filter(|i| !chunk.contains(i)).collect();
                    let c = Self::with_faults(best, &rest);
                    if self.try_candidate(format!("drop faults {chunk:?} of {len}"), &c)? {
                        *best = c;
                        n = (n - 1).max(2);
                        reduced = true;
                        break;
                    }
                }
            }
            if !reduced {
                if n >= len {
                    break;
                }
                n = (2 * n).min(len);
            }
        }
        Ok(())
    }

    fn shorten_windows(&mut self, best: &mut Candidate) -> Result<(), R::Error> {
        for i in 0..best.faults() {
            loop {
                let f = &best.schedule.faults[i];
                let len = f.end_ms - f.start_ms;
                if len / 2 < self.opts.min_window_ms || self.out_of_budget {
                    break;
                }
                let mut c = best.clone();
                c.schedule.faults[i].end_ms = f.start_ms + len / 2;
                if !self.try_candidate(format!("fault {i}: {} ms window", len / 2), &c)? {
                    break;
                }
                *best = c;
            }
        }
        Ok(())
    }

    /// Moves the faults to start right after the margin and ends the test soon after.
    fn shorten_test(&mut self, best: &mut Candidate) -> Result<(), R::Error> {
        let Some(first) = best.schedule.faults.iter().map(|f| f.start_ms).min() else {
            return Ok(());
        };
        let mut c = best.clone();
        let shift = first.saturating_sub(self.opts.margin_ms);
        for f in &mut c.schedule.faults {
            f.start_ms -= shift;
            f.end_ms -= shift;
        }
        let last = c
            .schedule
            .faults
            .iter()
            .map(|f| f.end_ms)
            .max()
            .unwrap_or(0);
        c.time_limit_ms = (last + self.opts.margin_ms).min(best.time_limit_ms);
        if c != *best && !self.out_of_budget {
            let what = format!(
                "faults from {} ms, test {} ms",
                self.opts.margin_ms, c.time_limit_ms
            );
            if self.try_candidate(what, &c)? {
                *best = c;
            }
        }
        Ok(())
    }
}

/// Shrinks `start`, which is known to reproduce.
pub fn shrink<R: Reproducer>(
    start: Candidate,
    opts: &Options,
    repro: &mut R,
) -> Result<Report, R::Error> {
    let mut s = Shrinker {
        opts,
        repro,
        steps: Vec::new(),
        attempts: 0,
        out_of_budget: false,
    };
    let mut best = start;
    s.drop_faults(&mut best)?;
    s.shorten_windows(&mut best)?;
    s.shorten_test(&mut best)?;
    Ok(Report {
        best,
        steps: s.steps,
        attempts: s.attempts,
        budget_exhausted: s.out_of_budget,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nemesis::{Fault, ScheduledFault, Target};

    fn schedule(n: usize) -> Schedule {
        let faults = (0..n)
            .map(|i| ScheduledFault {
                start_ms: 2_000 + 6_000 * i as u64,
                end_ms: 6_000 + 6_000 * i as u64,
                fault: Fault::Pause {
                    target: Target::Nodes(vec![format!("n{}", i % 3 + 1)]),
                },
                episode: None,
            })
            .collect();
        Schedule {
            seed: Some(1),
            nodes: vec!["n1".into(), "n2".into(), "n3".into()],
            faults,
        }
    }

    /// Reproduces when some fault pauses n2 and some fault pauses n3, each for at least 1 s,
    /// with at most 6 faults, and then on two attempts of three (a flaky bug).
    struct Fake {
        calls: u32,
        spent: Duration,
    }

    impl Reproducer for Fake {
        type Error = String;
        fn attempt(&mut self, c: &Candidate) -> Result<bool, String> {
            self.calls += 1;
            self.spent += Duration::from_millis(c.time_limit_ms);
            let has = |node: &str, window_ok: bool| {
                c.schedule.faults.iter().any(|f| {
                    f.fault.target() == Some(&Target::Nodes(vec![node.into()]))
                        && (!window_ok || f.end_ms - f.start_ms >= 1_000)
                })
            };
            let needed = has("n3", true) && has("n2", true) && c.faults() <= 6;
            Ok(needed && self.calls % 3 != 0)
        }
        fn elapsed(&self) -> Duration {
            self.spent
        }
    }

    #[test]
    fn finds_a_two_fault_schedule_despite_flakiness() {
        let start = Candidate {
            schedule: schedule(6),
            time_limit_ms: 40_000,
        };
        let opts = Options {
            tries: 3,
            budget: Duration::from_secs(3600),
            min_window_ms: 500,
            margin_ms: 2_000,
        };
        let mut fake = Fake {
            calls: 0,
            spent: Duration::ZERO,
        };
        let r = shrink(start, &opts, &mut fake).unwrap();
        assert_eq!(r.best.faults(), 2, "{:#?}", r.steps);
        let nodes: Vec<_> = r
            .best
            .schedule
            .faults
            .iter()
            .map(|f| f.fault.target().cloned())
            .collect();
        assert!(nodes.contains(&Some(Target::Nodes(vec!["n2".into()]))));
        assert!(nodes.contains(&Some(Target::Nodes(vec!["n3".into()]))));
        // Windows were shortened to the minimum that still reproduces (>= 1 s), and the test.
        assert!(
            r.best
                .schedule
                .faults
                .iter()
                .all(|f| f.end_ms - f.start_ms < 4_000)
        );
        assert!(r.best.time_limit_ms < 40_000);
        assert!(!r.budget_exhausted);
    }

    #[test]
    fn stops_at_the_budget_with_the_best_so_far() {
        let start = Candidate {
            schedule: schedule(6),
            time_limit_ms: 40_000,
        };
        let opts = Options {
            tries: 3,
            budget: Duration::from_secs(100),
            min_window_ms: 500,
            margin_ms: 2_000,
        };
        let mut fake = Fake {
            calls: 0,
            spent: Duration::ZERO,
        };
        let r = shrink(start.clone(), &opts, &mut fake).unwrap();
        assert!(r.budget_exhausted);
        assert!(r.attempts <= 3, "{}", r.attempts);
        assert!(r.best.faults() <= start.faults());
    }
}
