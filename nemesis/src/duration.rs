//! The one duration syntax of the command line, schedule files and gate files: `30s`,
//! `500ms`, `2m`, `1h`, `1.5s`, `250us`; a bare number is seconds. What a [`Duration`]
//! cannot hold (negative, not finite, over 10^9 s) is an error, never a panic.

use std::time::Duration;

/// The most a duration may be, in seconds: about 31 years, far above any test and far below
/// what `Duration::from_secs_f64` panics on.
const MAX_S: f64 = 1e9;

/// A duration that could not be read; says what was given and what would do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad duration {given:?}: {why} (examples: 30s, 500ms, 2m, 1h)")]
pub struct BadDuration {
    pub given: String,
    pub why: &'static str,
}

/// Parses a duration; see the module docs for the syntax.
pub fn parse_duration(s: &str) -> Result<Duration, BadDuration> {
    let bad = |why| BadDuration {
        given: s.to_owned(),
        why,
    };
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(bad(if t.starts_with('-') {
            "negative"
        } else {
            "no number"
        }));
    }
    let value: f64 = num.parse().map_err(|_| bad("not a number"))?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "ns" => value / 1e9,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(bad("unknown unit (use ns, us, ms, s, m or h)")),
    };
    if !secs.is_finite() || secs > MAX_S {
        return Err(bad("too long (at most 10^9 s)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A duration in the syntax [`parse_duration`] reads back exactly: whole seconds as `30s`,
/// else whole milliseconds as `1500ms`, else nanoseconds as `1500ns`.
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos() % 1_000_000 == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}ns", d.as_nanos())
    }
}

/// Serde as text (`"30s"`), for files a user reads and edits: `#[serde(with = "text")]`.
pub mod text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let t = String::deserialize(d)?;
        super::parse_duration(&t).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_bare_seconds() {
        let d = |s| parse_duration(s).unwrap();
        assert_eq!(d("5s"), Duration::from_secs(5));
        assert_eq!(d(" 500ms "), Duration::from_millis(500));
        assert_eq!(d("2m"), Duration::from_secs(120));
        assert_eq!(d("2min"), Duration::from_secs(120));
        assert_eq!(d("1h"), Duration::from_secs(3600));
        assert_eq!(d("1.5"), Duration::from_millis(1500));
        assert_eq!(d("250us"), Duration::from_micros(250));
        assert_eq!(d("0"), Duration::ZERO);
    }

    #[test]
    fn rejects_what_it_cannot_represent_without_panicking() {
        for s in [
            "",
            "s",
            "-1s",
            "5 parsecs",
            "1..2s",
            "1e5",
            "inf",
            "NaN",
            "99999999999999999999h",
            "1000000001",
        ] {
            let e = parse_duration(s).unwrap_err();
            assert_eq!(e.given, s);
            assert!(e.to_string().contains("examples"), "{e}");
        }
        let huge = "9".repeat(400);
        assert!(parse_duration(&huge).is_err());
        assert_eq!(parse_duration("-1s").unwrap_err().why, "negative");
    }

    #[test]
    fn formatted_durations_read_back_exactly() {
        for d in [
            Duration::ZERO,
            Duration::from_secs(30),
            Duration::from_millis(1500),
            Duration::from_nanos(1_000_000_001),
            Duration::from_secs(86_400 * 365),
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{d:?}");
        }
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
    }
}
