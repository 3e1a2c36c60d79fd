//! `pulih-netem`: a WAN link on loopback for the benchmark scripts, the
//! [`pulih_test_support::netem::Link`] of the tests as a process. It
//! prints the address it listens on as its first line and runs until
//! killed.

use std::io::Write;
use std::process::ExitCode;

use pulih_test_support::netem::{Link, LinkSpec, parse_duration, parse_rate};

const USAGE: &str = "\
usage: pulih-netem --to HOST:PORT [--listen HOST:PORT] [--rtt TIME] [--rate RATE]

A TCP proxy that adds a round-trip time and caps the bandwidth of each
direction (shared by all its connections), between a client and HOST:PORT.

  --to HOST:PORT       where connections go (e.g. Garage, 127.0.0.1:3900)
  --listen HOST:PORT   where it listens (default 127.0.0.1:0, a free port)
  --rtt TIME           round-trip time added, half each way: 50ms, 0.2s
                       (default 0ms)
  --rate RATE          cap per direction in bits per second: 500kbit,
                       100mbit, 1gbit (default: no cap)

Prints the address it listens on as its first line; runs until killed.";

struct Args {
    listen: String,
    to: String,
    spec: LinkSpec,
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("pulih-netem: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let link = match Link::bind(&args.listen as &str, &args.to as &str, args.spec) {
        Ok(link) => link,
        Err(e) => {
            eprintln!("pulih-netem: {} to {}: {e}", args.listen, args.to);
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{}", link.addr());
    let _ = out.flush();
    loop {
        std::thread::park();
    }
}

/// The flags (`--flag value` or `--flag=value`); None for `--help`.
fn parse(args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut listen = "127.0.0.1:0".to_string();
    let mut to = None;
    let mut spec = LinkSpec::default();
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg, None),
        };
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let value = match inline.or_else(|| args.next()) {
            Some(v) => v,
            None => return Err(format!("{flag} needs a value")),
        };
        match flag.as_str() {
            "--listen" => listen = value,
            "--to" => to = Some(value),
            "--rtt" => spec.rtt = parse_duration(&value)?,
            "--rate" => spec.rate_bps = Some(parse_rate(&value)?),
            _ => return Err(format!("unknown flag `{flag}`")),
        }
    }
    let to = to.ok_or("--to HOST:PORT is required")?;
    Ok(Some(Args { listen, to, spec }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Result<Option<Args>, String> {
        parse(line.split_whitespace().map(String::from))
    }

    #[test]
    fn flags_as_the_bench_scripts_give_them() {
        let a = args("--listen 127.0.0.1:9000 --to 127.0.0.1:3900 --rtt 50ms --rate=100mbit")
            .unwrap()
            .unwrap();
        assert_eq!(a.listen, "127.0.0.1:9000");
        assert_eq!(a.to, "127.0.0.1:3900");
        assert_eq!(a.spec.rtt, std::time::Duration::from_millis(50));
        assert_eq!(a.spec.rate_bps, Some(100_000_000));
        let a = args("--to=127.0.0.1:3900").unwrap().unwrap();
        assert_eq!(a.listen, "127.0.0.1:0");
        assert_eq!(a.spec, LinkSpec::default());
    }

    #[test]
    fn mistakes_are_refused_with_what_is_wrong() {
        assert!(args("--help").unwrap().is_none());
        assert!(args("--rtt 50ms").err().unwrap().contains("--to"));
        assert!(
            args("--to x --rtt")
                .err()
                .unwrap()
                .contains("needs a value")
        );
        assert!(
            args("--to x --delay 5ms")
                .err()
                .unwrap()
                .contains("unknown flag")
        );
        assert!(
            args("--to x --rate 10mbps")
                .err()
                .unwrap()
                .contains("unknown unit")
        );
    }
}
