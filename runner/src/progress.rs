//! The progress reporter: an indicatif line on a terminal (elapsed/limit, ok/fail/info,
//! current fault, leader), plain log lines every few seconds otherwise. Log lines of the run
//! go through [`Progress::println`] so they never tear the bar.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::recorder::Counters;

/// Where progress and log lines go.
#[derive(Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
    /// Nothing shown (`-q`): the run log still goes to its file.
    silent: bool,
}

impl Progress {
    /// A bar when stderr is a terminal (and `NO_COLOR`/`TERM=dumb` do not say otherwise).
    pub fn on_stderr() -> Progress {
        let tty = std::io::IsTerminal::is_terminal(&std::io::stderr())
            && std::env::var("TERM").map(|t| t != "dumb").unwrap_or(true);
        if !tty {
            return Progress {
                bar: None,
                silent: false,
            };
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(5));
        let style = ProgressStyle::with_template("{spinner} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        Progress {
            bar: Some(bar),
            silent: false,
        }
    }

    /// Shows nothing: neither the bar nor progress and log lines.
    pub fn silent() -> Progress {
        Progress {
            bar: None,
            silent: true,
        }
    }

    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(b) => b.println(line),
            None if self.silent => {}
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }

    /// Updates the display until `stop` fires: every 200 ms on a terminal, every 5 s as a
    /// log line otherwise.
    pub async fn run(
        self,
        counters: Arc<Counters>,
        leader: nemesis::LeaderView,
        start: Instant,
        limit: Duration,
        phase: tokio::sync::watch::Receiver<&'static str>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let every = if self.bar.is_some() {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(5)
        };
        if self.silent {
            return;
        }
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            let text = format!(
                "{} {:>5.1}s/{}s  ok {} fail {} info {}  fault: {}  leader: {}",
                *phase.borrow(),
                start.elapsed().as_secs_f64(),
                limit.as_secs(),
                counters.ok.load(Ordering::Relaxed),
                counters.fail.load(Ordering::Relaxed),
                counters.info.load(Ordering::Relaxed),
                counters.fault_text(),
                leader.leader().as_deref().unwrap_or("?"),
            );
            match &self.bar {
                Some(b) => {
                    b.set_message(text);
                    b.tick();
                }
                None => eprintln!("faultline: {text}"),
            }
        }
    }
}
