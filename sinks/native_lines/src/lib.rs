//! The sink's hot loop: indicator-update records, as the indicator stage writes them, straight
//! to InfluxDB line protocol, byte-identical to `sinks.line_protocol.indicator_line`.
//!
//! In Python, parsing a record and formatting its line cost about 2.5 µs per point, half the
//! sink's CPU. Here a whole batch is one call. A record is taken only when its line is certain
//! to be the model's: anything unusual (an escaped string, a big integer, an instant outside
//! the common RFC 3339 subset...) stops the call at that record, and Python decides it, so the
//! order of the points and the dead letters stay those of the Python path.

use std::collections::{BTreeMap, HashMap};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Past this many windows the bucket-prefix cache starts again (never wrong, only slower).
const HEAD_CACHE_BOUND: usize = 1 << 10;
/// Integers beyond this are not all exact as floats: Python's fast path leaves them to the model.
const EXACT_FLOAT_INTS: i64 = 1 << 53;
/// A longer number is Python's to judge: jiter refuses over 4 300 digits, serde_json has no limit.
const MAX_NUMBER_TEXT: usize = 64;

/// Every field of `IndicatorUpdate.model_dump_json(by_alias=True)`, strings without escapes
/// (borrowed: a string with an escape fails here and goes to Python).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Update<'a> {
    schema: &'a str,
    #[serde(borrow)]
    schema_version: &'a RawValue,
    indicator: &'a str,
    unit: &'a str,
    window: &'a str,
    window_start: &'a str,
    window_end: &'a str,
    #[serde(borrow)]
    dimensions: BTreeMap<&'a str, &'a str>,
    #[serde(borrow)]
    value: &'a RawValue,
    #[serde(rename = "final")]
    is_final: bool,
    #[serde(borrow)]
    revision: &'a RawValue,
    updated_at: &'a str,
}

fn is_integer_text(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The value as Python's fast path reads it: a finite float, or an integer exact as a float.
fn value_of(raw: &RawValue) -> Option<f64> {
    let text = raw.get();
    if text.len() > MAX_NUMBER_TEXT {
        return None;
    }
    if is_integer_text(text) {
        let n: i64 = text.parse().ok()?;
        return (-EXACT_FLOAT_INTS..=EXACT_FLOAT_INTS).contains(&n).then_some(n as f64);
    }
    let first = text.as_bytes().first()?;
    if !(first.is_ascii_digit() || *first == b'-') {
        return None; // a string, a boolean, null, an array or an object
    }
    let value: f64 = text.parse().ok()?; // correctly rounded, like CPython and jiter
    value.is_finite().then_some(value)
}

/// CPython's `repr(float)`: the shortest digits that read back to the same float (the even
/// one of two equally close: Ryu, like CPython's dtoa; `format!("{:e}")` rounds such ties
/// up), in fixed notation when the decimal point falls within 16 places, else `d.ddde±XX`.
pub fn python_float_repr(value: f64) -> String {
    if value == 0.0 {
        return if value.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    let mut buffer = ryu::Buffer::new();
    let shortest = buffer.format_finite(value); // "1.5e-5", "123.45", "1e16"...
    let (sign, unsigned) = match shortest.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", shortest),
    };
    let (mantissa, exponent) = match unsigned.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().expect("ryu writes an integer exponent")),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // value = 0.DIGITS x 10^point, DIGITS without leading or trailing zeros
    let mut point = whole.len() as i32 + exponent;
    let all = format!("{whole}{fraction}");
    let leading = all.len() - all.trim_start_matches('0').len();
    point -= leading as i32;
    let digits = all.trim_start_matches('0').trim_end_matches('0');
    let exponent = point - 1; // of the first digit
    let mut out = String::with_capacity(digits.len() + 8);
    out.push_str(sign);
    if !(-4 < point && point <= 16) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push_str(if exponent < 0 { "e-" } else { "e+" });
        out.push_str(&format!("{:02}", exponent.unsigned_abs()));
    } else if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', point.unsigned_abs() as usize));
        out.push_str(digits);
    } else if point as usize >= digits.len() {
        out.push_str(digits);
        out.extend(std::iter::repeat_n('0', point as usize - digits.len()));
        out.push_str(".0");
    } else {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    }
    out
}

fn two_digits(b: &[u8]) -> Option<i64> {
    match b {
        [a, c] if a.is_ascii_digit() && c.is_ascii_digit() => Some(((a - b'0') * 10 + (c - b'0')) as i64),
        _ => None,
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

const MIN_MICROS: i64 = -62_135_596_800 * 1_000_000; // 0001-01-01T00:00:00Z
const MAX_MICROS: i64 = 253_402_300_800 * 1_000_000 - 1; // 9999-12-31T23:59:59.999999Z

/// Microseconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|±HH:MM)`, the subset
/// `sinks.line_protocol._epoch_seconds` takes (ASCII digits only), valid as
/// `datetime.fromisoformat` reads it and convertible to UTC; None otherwise.
fn instant_micros(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = two_digits(&b[0..2])? * 100 + two_digits(&b[2..4])?;
    let (month, day) = (two_digits(&b[5..7])?, two_digits(&b[8..10])?);
    let (hour, minute, second) = (two_digits(&b[11..13])?, two_digits(&b[14..16])?, two_digits(&b[17..19])?);
    if year < 1 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut micros = 0i64;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let count = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=6).contains(&count) {
            return None;
        }
        for digit in &fraction[..count] {
            micros = micros * 10 + (digit - b'0') as i64;
        }
        micros *= 10i64.pow(6 - count as u32);
        rest = &fraction[count..];
    }
    let offset_minutes = match rest {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (two_digits(&[*h1, *h2])?, two_digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            if *sign == b'-' { -(h * 60 + m) } else { h * 60 + m }
        }
        _ => return None,
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second
        - offset_minutes * 60;
    let total = seconds * 1_000_000 + micros;
    (MIN_MICROS..=MAX_MICROS).contains(&total).then_some(total)
}

/// `int(datetime.timestamp())`: the float of the exact seconds, truncated toward zero.
fn epoch_seconds(micros: i64) -> Option<i64> {
    if micros % 1_000_000 == 0 {
        return Some(micros / 1_000_000);
    }
    // Exact as a float, then one correctly rounded division: CPython's int / int.
    (micros.abs() <= EXACT_FLOAT_INTS).then(|| (micros as f64 / 1e6).trunc() as i64)
}

fn push_escaped(out: &mut String, text: &str, tag: bool) {
    if !text.bytes().any(|b| matches!(b, b',' | b' ' | b'\n') || (tag && b == b'=')) {
        out.push_str(text); // the usual case: nothing to escape
        return;
    }
    for c in text.chars() {
        match c {
            ',' => out.push_str("\\,"),
            ' ' => out.push_str("\\ "),
            '\n' => out.push_str("\\n"),
            '=' if tag => out.push_str("\\="),
            _ => out.push(c),
        }
    }
}

fn push_string_field(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            _ => out.push(c),
        }
    }
    out.push('"');
}

/// A record the fast path takes, with what its line needs beyond the update itself.
struct Checked<'a> {
    update: Update<'a>,
    value: f64,
    start: i64,
}

/// The record read and checked; None: Python decides this record.
fn checked(raw: &[u8]) -> Option<Checked<'_>> {
    let update: Update = serde_json::from_slice(raw).ok()?;
    let version = update.schema_version.get();
    if update.schema != "indicator.update" || !is_integer_text(version) || version.parse::<i64>().is_err() {
        return None;
    }
    if update.indicator.is_empty() {
        return None;
    }
    let value = value_of(update.value)?;
    let revision = update.revision.get();
    if !is_integer_text(revision) || revision.starts_with('-') || revision.parse::<u64>().is_err() {
        return None;
    }
    let start = epoch_seconds(instant_micros(update.window_start)?)?;
    instant_micros(update.window_end)?;
    instant_micros(update.updated_at)?;
    Some(Checked { update, value, start })
}

/// (key, line) of a checked record, each starting with ``head``.
fn point_of(head: &str, record: &Checked<'_>) -> (String, String) {
    let (update, start) = (&record.update, record.start);
    let mut series = String::with_capacity(head.len() + 96);
    series.push_str(head);
    push_escaped(&mut series, update.indicator, false);
    series.push_str(",window=");
    push_escaped(&mut series, update.window, true);
    for (name, value) in &update.dimensions {
        if !value.is_empty() {
            series.push(',');
            push_escaped(&mut series, name, true);
            series.push('=');
            push_escaped(&mut series, value, true);
        }
    }
    let time = format!(" {start}");
    let mut line = String::with_capacity(series.len() + 64);
    line.push_str(&series);
    line.push_str(" value=");
    line.push_str(&python_float_repr(record.value));
    line.push_str(if update.is_final { ",final=true,revision=" } else { ",final=false,revision=" });
    line.push_str(update.revision.get());
    line.push_str("i,unit=");
    push_string_field(&mut line, update.unit);
    line.push_str(&time);
    series.push_str(&time);
    (series, line)
}

/// Lines from indicator-update records, with ``head(window)`` (the bucket) in front of each
/// key and line, as ``IndicatorLineFormatter`` writes them.
#[pyclass(module = "zerocarbon_native_lines")]
struct IndicatorLineBatcher {
    head: Py<PyAny>,
    heads: HashMap<String, String>,
}

#[pymethods]
impl IndicatorLineBatcher {
    #[new]
    fn new(head: Py<PyAny>) -> Self {
        Self { head, heads: HashMap::new() }
    }

    /// Put the points of ``values[start:]`` (record values: bytes, or None for a tombstone) in
    /// ``points`` (key -> line, a later line of a key replaces it) and append each key to
    /// ``keys``; stop at the first record Python must decide and return its index
    /// (``len(values)`` when all were taken).
    fn into(
        &mut self,
        values: &Bound<'_, PyList>,
        start: usize,
        points: &Bound<'_, PyDict>,
        keys: &Bound<'_, PyList>,
    ) -> PyResult<usize> {
        let py = values.py();
        let count = values.len();
        for index in start..count {
            let item = values.get_item(index)?;
            let Ok(bytes) = item.cast::<PyBytes>() else {
                return Ok(index);
            };
            let Some(record) = checked(bytes.as_bytes()) else {
                return Ok(index);
            };
            let window = record.update.window;
            if !self.heads.contains_key(window) {
                // A head that fails (or is not text) is the Python formatter's case, as there.
                let Ok(head) = self.head.bind(py).call1((window,)).and_then(|h| h.extract::<String>()) else {
                    return Ok(index);
                };
                if self.heads.len() >= HEAD_CACHE_BOUND {
                    self.heads.clear();
                }
                self.heads.insert(window.to_owned(), head);
            }
            let (key, line) = point_of(&self.heads[window], &record);
            let key = PyString::new(py, &key);
            points.set_item(&key, PyString::new(py, &line))?;
            keys.append(key)?;
        }
        Ok(count)
    }
}

/// ``repr(float)`` as this module writes it (tested against CPython's).
#[pyfunction]
fn float_repr(value: f64) -> String {
    python_float_repr(value)
}

#[pymodule]
fn zerocarbon_native_lines(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<IndicatorLineBatcher>()?;
    module.add_function(wrap_pyfunction!(float_repr, module)?)?;
    Ok(())
}
