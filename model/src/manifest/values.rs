//! The small value types manifests are written in: durations, sizes, cron
//! expressions, time zones, dates, times of day. Each parses from a string,
//! says exactly what is wrong when it cannot, and serializes back to the
//! text it was written as.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The default time zone of schedules: WITA.
pub const DEFAULT_TIMEZONE: &str = "Asia/Makassar";

macro_rules! string_value {
    ($ty:ident, $name:literal, $schema:tt) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                $name.into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

/// A duration such as `24h`, `15m`, `1h30m`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationText(pub Duration);

impl FromStr for DurationText {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match humantime::parse_duration(s) {
            Ok(d) if d.is_zero() => Err(format!("duration `{s}` must be greater than zero")),
            Ok(d) => Ok(DurationText(d)),
            Err(e) => Err(format!(
                "invalid duration `{s}` ({e}); write e.g. `30m`, `4h`, `1h30m`, `7d`"
            )),
        }
    }
}

impl fmt::Display for DurationText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

string_value!(DurationText, "Duration", {
    "type": "string",
    "description": "A duration: a number and a unit (s, m, h, d), e.g. `30m`, `4h`, `1h30m`, `7d`.",
    "pattern": "^\\s*([0-9]+\\s*[a-zA-Zµ]+\\s*)+$"
});

/// A size in bytes such as `20MiB`, `1GB`, `512KiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid size `{s}`; write a number and a unit, e.g. `20MiB`, `1GB`");
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num.parse().map_err(|_| bad())?;
        let mult: u64 = match unit.trim() {
            "" | "B" => 1,
            "k" | "K" | "KB" | "kB" => 1000,
            "KiB" => 1 << 10,
            "M" | "MB" => 1_000_000,
            "MiB" => 1 << 20,
            "G" | "GB" => 1_000_000_000,
            "GiB" => 1 << 30,
            "T" | "TB" => 1_000_000_000_000,
            "TiB" => 1 << 40,
            _ => return Err(bad()),
        };
        let bytes = n
            .checked_mul(mult)
            .ok_or_else(|| format!("size `{s}` is too large"))?;
        if bytes == 0 {
            return Err(format!("size `{s}` must be greater than zero"));
        }
        Ok(ByteSize(bytes))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (unit, size) in [
            ("TiB", 1u64 << 40),
            ("GiB", 1 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
        ] {
            if n.is_multiple_of(size) {
                return write!(f, "{}{unit}", n / size);
            }
        }
        write!(f, "{n}B")
    }
}

string_value!(ByteSize, "ByteSize", {
    "type": "string",
    "description": "A size: a number and a unit (B, KB, KiB, MB, MiB, GB, GiB, TB, TiB), e.g. `20MiB`.",
    "pattern": "^\\s*[0-9]+\\s*(B|k|K|KB|kB|KiB|M|MB|MiB|G|GB|GiB|T|TB|TiB)?\\s*$"
});

/// A cron expression: five fields (`minute hour day-of-month month
/// day-of-week`, as in crontab) or six with seconds first.
#[derive(Debug, Clone)]
pub struct CronExpr {
    text: String,
    schedule: cron::Schedule,
}

impl CronExpr {
    pub fn schedule(&self) -> &cron::Schedule {
        &self.schedule
    }
}

impl PartialEq for CronExpr {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl FromStr for CronExpr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split_whitespace().collect();
        let full = match parts.len() {
            5 => format!(
                "0 {} {} {} {} {}",
                parts[0],
                parts[1],
                parts[2],
                parts[3],
                crontab_weekdays(parts[4])
                    .map_err(|e| format!("invalid cron expression `{s}`: {e}"))?
            ),
            6 => s.to_string(),
            n => {
                return Err(format!(
                    "invalid cron expression `{s}`: it has {n} fields; write five \
                     (`minute hour day month weekday`, e.g. `30 1 * * *`) or six with seconds first"
                ));
            }
        };
        let schedule = cron::Schedule::from_str(&full).map_err(|e| {
            // The cron crate's message repeats the expression with a caret
            // under it; keep only its last line, the reason.
            let text = e.to_string();
            let reason = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty() && !l.trim().starts_with('^'))
                .unwrap_or("")
                .trim()
                .to_string();
            format!("invalid cron expression `{s}`: {reason}")
        })?;
        Ok(CronExpr {
            text: s.to_string(),
            schedule,
        })
    }
}

/// Crontab's day-of-week field (0 or 7 = Sunday, 1 = Monday) in the
/// `cron` crate's numbering (1 = Sunday … 7 = Saturday). Names pass as they are.
fn crontab_weekdays(field: &str) -> Result<String, String> {
    let map = |d: &str| -> Result<u32, String> {
        let n: u32 = d.parse().map_err(|_| format!("bad day of week `{d}`"))?;
        if n > 7 {
            return Err(format!(
                "day of week {n} is out of range (0–7, 0 and 7 are Sunday)"
            ));
        }
        Ok(n % 7 + 1)
    };
    let numeric = |t: &str| t.bytes().all(|b| b.is_ascii_digit()) && !t.is_empty();
    let mut out = Vec::new();
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, st)) => (r, Some(st)),
            None => (part, None),
        };
        let step = step.map(|st| format!("/{st}")).unwrap_or_default();
        match range.split_once('-') {
            Some((a, b)) if numeric(a) && numeric(b) => {
                let (x, y) = (
                    map(a)?,
                    b.parse::<u32>()
                        .map_err(|_| format!("bad day of week `{b}`"))?,
                );
                if y == 7 && step.is_empty() {
                    // …through Sunday: Sunday is 1 in the crate's numbering.
                    out.push(format!("{x}-7"));
                    out.push("1".into());
                } else {
                    out.push(format!("{x}-{}{step}", map(b)?));
                }
            }
            _ if numeric(range) => out.push(format!("{}{step}", map(range)?)),
            _ => out.push(part.to_string()),
        }
    }
    Ok(out.join(","))
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

string_value!(CronExpr, "Cron", {
    "type": "string",
    "description": "A cron expression: `minute hour day-of-month month day-of-week` (e.g. `30 1 * * *`), or six fields with seconds first."
});

/// An IANA time zone name such as `Asia/Makassar` (WITA), `Asia/Jakarta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(pub chrono_tz::Tz);

impl Default for TimeZone {
    fn default() -> Self {
        TimeZone(chrono_tz::Asia::Makassar)
    }
}

impl FromStr for TimeZone {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse::<chrono_tz::Tz>().map(TimeZone).map_err(|_| {
            format!("unknown time zone `{s}`; use an IANA name such as `Asia/Makassar` (WITA)")
        })
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

string_value!(TimeZone, "TimeZone", {
    "type": "string",
    "description": "An IANA time zone, e.g. `Asia/Makassar` (WITA, the default), `Asia/Jakarta` (WIB)."
});

/// A calendar date `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(pub chrono::NaiveDate);

impl FromStr for Date {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Date)
            .map_err(|e| format!("invalid date `{s}` ({e}); write YYYY-MM-DD"))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

string_value!(Date, "Date", {
    "type": "string",
    "description": "A date, YYYY-MM-DD.",
    "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
});

/// A time of day `HH:MM` (24-hour).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeOfDay(pub chrono::NaiveTime);

impl FromStr for TimeOfDay {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        chrono::NaiveTime::parse_from_str(s, "%H:%M")
            .map(TimeOfDay)
            .map_err(|_| format!("invalid time of day `{s}`; write HH:MM (24-hour), e.g. `22:00`"))
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%H:%M"))
    }
}

string_value!(TimeOfDay, "TimeOfDay", {
    "type": "string",
    "description": "A time of day, HH:MM (24-hour).",
    "pattern": "^[0-9]{2}:[0-9]{2}$"
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_and_print_back() {
        assert_eq!(
            "1h30m".parse::<DurationText>().unwrap().0,
            Duration::from_secs(5400)
        );
        assert!("0s".parse::<DurationText>().is_err());
        assert!("5x".parse::<DurationText>().unwrap_err().contains("`5x`"));
        assert_eq!("20MiB".parse::<ByteSize>().unwrap().0, 20 << 20);
        assert_eq!("20MiB".parse::<ByteSize>().unwrap().to_string(), "20MiB");
        assert!("20 furlongs".parse::<ByteSize>().is_err());
        assert!(
            "99999999999TiB"
                .parse::<ByteSize>()
                .unwrap_err()
                .contains("too large")
        );
        assert!("30 1 * * *".parse::<CronExpr>().is_ok());
        assert!("0 30 1 * * *".parse::<CronExpr>().is_ok());
        assert!("61 1 * * *".parse::<CronExpr>().is_err());
        assert!("* *".parse::<CronExpr>().unwrap_err().contains("2 fields"));
        assert!(!"61 1 * * *".parse::<CronExpr>().unwrap_err().contains('\n'));
        // Crontab weekdays: 0 and 7 are Sunday, 1-5 Monday to Friday.
        assert_eq!(crontab_weekdays("0").unwrap(), "1");
        assert_eq!(crontab_weekdays("7").unwrap(), "1");
        assert_eq!(crontab_weekdays("1-5").unwrap(), "2-6");
        assert_eq!(crontab_weekdays("5-7").unwrap(), "6-7,1");
        assert_eq!(crontab_weekdays("MON-FRI").unwrap(), "MON-FRI");
        assert!(crontab_weekdays("8").is_err());
        let sunday = "0 3 * * 0".parse::<CronExpr>().unwrap();
        let next = sunday
            .schedule()
            .after(
                &chrono::DateTime::parse_from_rfc3339("2026-11-24T00:00:00Z")
                    .unwrap()
                    .with_timezone(&chrono::Utc),
            )
            .next()
            .unwrap();
        assert_eq!(next.to_rfc3339(), "2026-11-29T03:00:00+00:00"); // a Sunday
        let weekdays = "0 9 * * 1-5".parse::<CronExpr>().unwrap();
        let next = weekdays
            .schedule()
            .after(
                &chrono::DateTime::parse_from_rfc3339("2026-11-28T00:00:00Z")
                    .unwrap()
                    .with_timezone(&chrono::Utc),
            )
            .next()
            .unwrap();
        assert_eq!(next.to_rfc3339(), "2026-11-30T09:00:00+00:00"); // Saturday → Monday
        assert_eq!(TimeZone::default().to_string(), DEFAULT_TIMEZONE);
        assert!("Asia/Bontang".parse::<TimeZone>().is_err());
        assert!("2027-02-30".parse::<Date>().is_err());
        assert!("24:30".parse::<TimeOfDay>().is_err());
    }
}
