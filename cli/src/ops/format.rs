//! Tables and times for people (WITA).

pub fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r);
    }
}

/// RFC 3339 UTC → local WITA (UTC+8) for people.
pub fn wita(t: &Option<String>) -> String {
    let Some(t) = t else { return "-".into() };
    match time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339) {
        Ok(dt) => {
            let w = dt.to_offset(time::macros::offset!(+8));
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02} WITA",
                w.year(),
                w.month() as u8,
                w.day(),
                w.hour(),
                w.minute()
            )
        }
        Err(_) => t.clone(),
    }
}
