//! Errors and debug lines, on stderr and in `--log`, as runc writes them (conmon and
//! containerd read them).
//!
//! An error goes to stderr (`ns-runtime: MESSAGE`) and, with `--log FILE`, to the end of
//! that file as one line: `--log-format json` gives `{"level":"error","msg":"…","time":"…"}`,
//! `text` gives `time="…" level=error msg="…"`; conmon reports the last error line of the
//! file as the runtime's error. `--debug` adds debug lines, to the log file or, without
//! one, to stderr.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use super::Global;

/// The formats `--log-format` takes.
pub(crate) const FORMATS: [&str; 2] = ["text", "json"];

/// Writes an error where runc would: stderr, and the `--log` file in its format.
pub(crate) fn error(global: &Global, message: &str) {
    eprintln!("ns-runtime: {message}");
    if global.log.is_some() {
        append(global, "error", message);
    }
}

/// A debug line, with `--debug`: in the log file, or on stderr without one.
pub(crate) fn debug(global: &Global, message: &str) {
    if !global.debug {
        return;
    }
    if global.log.is_some() {
        append(global, "debug", message);
    } else {
        eprintln!("ns-runtime: debug: {message}");
    }
}

/// One line at the end of the log file. A log that can't be written is said on stderr
/// once; the error itself is on stderr already.
fn append(global: &Global, level: &str, message: &str) {
    let Some(path) = &global.log else { return };
    let line = line(&global.log_format, level, message, SystemTime::now());
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(error) = written {
        eprintln!("ns-runtime: --log {}: {error}", path.display());
    }
}

/// The line for `format` (`json`, else text), with its newline.
fn line(format: &str, level: &str, message: &str, time: SystemTime) -> String {
    let time = rfc3339(time);
    if format == "json" {
        // serde_json's map is sorted: level, msg, time, the order runc writes.
        let object = serde_json::json!({ "level": level, "msg": message, "time": time });
        format!("{object}\n")
    } else {
        let quoted = serde_json::Value::from(message).to_string();
        format!("time=\"{time}\" level={level} msg={quoted}\n")
    }
}

/// `time` in RFC 3339, UTC, with nanoseconds: `2026-11-30T14:57:13.123456789Z`.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs();
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since.subsec_nanos()
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's algorithm,
/// counting in 400-year eras of 146 097 days from 0000-03-01).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_are_the_calendars() {
        let at = |seconds| rfc3339(UNIX_EPOCH + Duration::from_secs(seconds));
        assert_eq!(at(0), "1970-01-01T00:00:00.000000000Z");
        // A leap day, and the last second of a century that is not a leap year.
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00.000000000Z");
        assert_eq!(at(4_107_542_399), "2100-02-28T23:59:59.000000000Z");
        assert_eq!(at(1_798_675_200), "2026-12-31T00:00:00.000000000Z");
    }

    #[test]
    fn json_lines_are_runcs() {
        let line = line("json", "error", "a \"quoted\" word", UNIX_EPOCH);
        assert_eq!(
            line,
            "{\"level\":\"error\",\"msg\":\"a \\\"quoted\\\" word\",\"time\":\"1970-01-01T00:00:00.000000000Z\"}\n"
        );
        let text = super::line("text", "debug", "x", UNIX_EPOCH);
        assert_eq!(
            text,
            "time=\"1970-01-01T00:00:00.000000000Z\" level=debug msg=\"x\"\n"
        );
    }
}
