//! The link's numbers as `tc` writes them: a rate in bits per second
//! (`500kbit`, `100mbit`, `1gbit`) and a time (`50ms`, `0.2s`).

use std::time::Duration;

/// A rate in bits per second: a number (decimals allowed) and one of
/// `bit`, `kbit`, `mbit`, `gbit` (powers of 1000, as `tc` counts); a bare
/// number is bits per second. `kbps`-style units are refused: `tc` reads
/// them as bytes, most people as bits.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let (number, unit) = split_unit(&t);
    let scale = match unit {
        "" | "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        _ => {
            return Err(format!(
                "rate `{text}`: unknown unit `{unit}` (write bits per second: 500kbit, 100mbit, 1gbit)"
            ));
        }
    };
    let bits = number_of(number, text, "rate")? * scale;
    if bits < 1.0 || bits > u64::MAX as f64 {
        return Err(format!(
            "rate `{text}`: out of range (at least 1 bit per second)"
        ));
    }
    Ok(bits.round() as u64)
}

/// A time: a number (decimals allowed) and one of `us`, `ms`, `s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim().to_ascii_lowercase();
    let (number, unit) = split_unit(&t);
    let scale = match unit {
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "" => return Err(format!("time `{text}`: give a unit (50ms, 0.2s)")),
        _ => {
            return Err(format!(
                "time `{text}`: unknown unit `{unit}` (us, ms or s)"
            ));
        }
    };
    let seconds = number_of(number, text, "time")? * scale;
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("time `{text}`: {e}"))
}

fn split_unit(t: &str) -> (&str, &str) {
    let at = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    (&t[..at], t[at..].trim())
}

fn number_of(number: &str, text: &str, what: &str) -> Result<f64, String> {
    number
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| format!("{what} `{text}`: not a number followed by a unit"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_in_bits_per_second() {
        assert_eq!(parse_rate("100mbit"), Ok(100_000_000));
        assert_eq!(parse_rate("1gbit"), Ok(1_000_000_000));
        assert_eq!(parse_rate("500kbit"), Ok(500_000));
        assert_eq!(parse_rate("1.5Mbit"), Ok(1_500_000));
        assert_eq!(parse_rate("8000"), Ok(8000));
        assert!(parse_rate("100mbps").unwrap_err().contains("unknown unit"));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("0mbit").is_err());
    }

    #[test]
    fn times() {
        assert_eq!(parse_duration("50ms"), Ok(Duration::from_millis(50)));
        assert_eq!(parse_duration("0.2s"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
        assert!(parse_duration("50").unwrap_err().contains("give a unit"));
        assert!(parse_duration("1min").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
