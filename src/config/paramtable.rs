//! How Milvus reads a value of `milvus.yaml`, so that rocksmq reads it alike.
//!
//! Milvus parses the file with yaml.v2 (YAML 1.1 typing), prints every scalar
//! back to a string (`cast.ToString`), and each key's accessor parses that
//! string with Go's `strconv`: `GetAsInt64` (`ParseInt`), `GetAsFloat`
//! (`ParseFloat`), `GetAsDuration` (`ParseInt`, else `ParseFloat`) and
//! `GetAsBool` (`ParseBool`). Key names are compared in lower case with `_`,
//! `.` and `/` removed.
//!
//! Milvus turns a string its accessor cannot parse into 0 or `false` without
//! a word; rocksmq refuses it instead, and the caller names the key.

use serde_yaml_ng::{Number, Value};

/// A scalar as Milvus may see it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Scalar {
    /// The string Milvus's accessor parses when the value is quoted (or is
    /// not a string at all).
    pub(super) text: String,
    /// For a string that yaml.v2 would type if it was written unquoted
    /// (`010`, `1_000`, `yes`), that typed value printed back (`8`, `1000`,
    /// `true`). The YAML parser rocksmq uses does not say whether a string
    /// was quoted, so the caller considers both.
    pub(super) unquoted: Option<String>,
}

impl Scalar {
    /// A piece of a string, read as it is (an item of `"0,0,7"`).
    pub(super) fn text(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            unquoted: None,
        }
    }
}

/// The scalar `value` is, or `None` for null, a list or a mapping.
pub(super) fn scalar(value: &Value) -> Option<Scalar> {
    match value {
        Value::Bool(flag) => Some(Scalar::text(if *flag { "true" } else { "false" })),
        Value::Number(number) => Some(Scalar::text(&number_text(number))),
        Value::String(text) => Some(Scalar {
            unquoted: unquoted_reading(text).filter(|reading| reading != text),
            text: text.clone(),
        }),
        Value::Tagged(tagged) => scalar(&tagged.value),
        Value::Null | Value::Sequence(_) | Value::Mapping(_) => None,
    }
}

/// A key as Milvus's config manager compares keys (`formatKey`).
pub(super) fn format_key(key: &str) -> String {
    key.chars()
        .filter(|c| !matches!(c, '_' | '.' | '/'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// `GetAsInt64` (and `strconv.Atoi`): an optional sign and decimal digits.
pub(super) fn parse_int(text: &str) -> Option<i64> {
    // Rust's grammar for i64 is Go's `ParseInt(text, 10, 64)`.
    text.parse().ok()
}

/// `GetAsFloat`: Go's `strconv.ParseFloat(text, 64)`. Decimal or hexadecimal
/// (`0x1.8p3`), `_` between digits, `inf`, `infinity` and `nan` in any case;
/// a value out of range is an error, as in Go.
pub(super) fn parse_float(text: &str) -> Option<f64> {
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let signed = |value: f64| if negative { -value } else { value };
    if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        return Some(signed(f64::INFINITY));
    }
    if body.eq_ignore_ascii_case("nan") {
        return (body.len() == text.len()).then_some(f64::NAN);
    }
    if text.contains('_') && !underscores_ok(text) {
        return None;
    }
    let body = body.replace('_', "");
    let value = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        hex_float(hex)?
    } else if body
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        // On this alphabet Rust's grammar for f64 is Go's decimal one.
        body.parse().ok()?
    } else {
        return None;
    };
    value.is_finite().then(|| signed(value))
}

/// `GetAsDuration(time.Second)`, in seconds: `ParseInt`, else `ParseFloat`.
pub(super) fn parse_seconds(text: &str) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)]
    parse_int(text)
        .map(|seconds| seconds as f64)
        .or_else(|| parse_float(text))
}

/// `GetAsBool`: Go's `strconv.ParseBool`.
pub(super) fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A number as `cast.ToString` prints it: integers in decimal, floats with
/// `FormatFloat(f, 'f', -1, 64)` (the shortest digits, never an exponent).
fn number_text(number: &Number) -> String {
    if let Some(int) = number.as_i64() {
        int.to_string()
    } else if let Some(uint) = number.as_u64() {
        uint.to_string()
    } else {
        float_text(number.as_f64().unwrap_or(f64::NAN))
    }
}

fn float_text(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        // Rust's Display is Go's 'f' format with the shortest digits.
        value.to_string()
    }
}

/// What yaml.v2 makes of `text` written unquoted, printed back; `None` if it
/// stays a string (or is a timestamp, which Milvus cannot use either).
fn unquoted_reading(text: &str) -> Option<String> {
    match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Some("true".to_owned());
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Some("false".to_owned());
        }
        "" | "~" | "null" | "Null" | "NULL" => return Some(String::new()),
        ".nan" | ".NaN" | ".NAN" => return Some(float_text(f64::NAN)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Some(float_text(f64::INFINITY));
        }
        "-.inf" | "-.Inf" | "-.INF" => return Some(float_text(f64::NEG_INFINITY)),
        _ => {}
    }
    match text.as_bytes().first()? {
        b'.' => parse_float(text).map(float_text),
        b'+' | b'-' | b'0'..=b'9' => {
            let plain = text.replace('_', "");
            if let Some(int) = go_int_any_base(&plain) {
                return Some(int);
            }
            yaml_style_float(&plain)
                .then(|| parse_float(&plain))
                .flatten()
                .map(float_text)
        }
        _ => None,
    }
}

/// yaml.v2's integers: Go's `ParseInt(text, 0, 64)`, else
/// `ParseUint(text, 0, 64)` (`0x`, `0o`, `0b` and a leading `0` for octal),
/// printed in decimal.
fn go_int_any_base(text: &str) -> Option<String> {
    let sign = text.as_bytes().first().copied();
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let lower = unsigned.to_ascii_lowercase();
    let (radix, digits) = if let Some(hex) = lower.strip_prefix("0x") {
        (16, hex)
    } else if let Some(octal) = lower.strip_prefix("0o") {
        (8, octal)
    } else if let Some(binary) = lower.strip_prefix("0b") {
        (2, binary)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    match sign {
        // -9223372036854775808 is the one magnitude past i64::MAX allowed.
        Some(b'-') => 0_i64
            .checked_sub_unsigned(magnitude)
            .map(|int| int.to_string()),
        // `ParseUint` takes no sign: past i64::MAX a `+` makes it a float.
        Some(b'+') => i64::try_from(magnitude).ok().map(|int| int.to_string()),
        _ => Some(magnitude.to_string()),
    }
}

/// yaml.v2's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn yaml_style_float(text: &str) -> bool {
    fn digits(bytes: &[u8], at: &mut usize) -> usize {
        let start = *at;
        while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
            *at += 1;
        }
        *at - start
    }
    let bytes = text.as_bytes();
    let mut at = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        if digits(bytes, &mut at) == 0 {
            return false;
        }
    } else {
        if digits(bytes, &mut at) == 0 {
            return false;
        }
        if bytes.get(at) == Some(&b'.') {
            at += 1;
            digits(bytes, &mut at);
        }
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        at += usize::from(matches!(bytes.get(at), Some(b'+' | b'-')));
        if digits(bytes, &mut at) == 0 {
            return false;
        }
    }
    at == bytes.len()
}

/// Go's `underscoreOK`: every `_` sits between two digits, or between a base
/// prefix and a digit.
fn underscores_ok(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut at = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    let mut saw = b'^';
    let mut hex = false;
    if bytes.len() >= at + 2
        && bytes[at] == b'0'
        && matches!(bytes[at + 1].to_ascii_lowercase(), b'b' | b'o' | b'x')
    {
        hex = bytes[at + 1].eq_ignore_ascii_case(&b'x');
        at += 2;
        saw = b'0';
    }
    for &byte in &bytes[at..] {
        if byte.is_ascii_digit() || (hex && byte.is_ascii_hexdigit()) {
            saw = b'0';
        } else if byte == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
    }
    saw != b'_'
}

/// A hexadecimal float after its `0x`: hex digits with an optional point,
/// then a binary exponent `p` that Go requires. Rounded to nearest, ties to
/// even, as Go does.
fn hex_float(text: &str) -> Option<f64> {
    let (mantissa, exponent) = text.split_once(['p', 'P'])?;
    let exponent_digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    if exponent_digits.is_empty() || !exponent_digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Past ±100000 the value is infinite or zero whatever the mantissa.
    let mut exponent: i64 = exponent.parse().unwrap_or(if exponent.starts_with('-') {
        -100_000
    } else {
        100_000
    });
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut bits: u64 = 0;
    let mut sticky = false;
    for (index, digit) in whole.chars().chain(fraction.chars()).enumerate() {
        let value = u64::from(digit.to_digit(16)?);
        let in_fraction = index >= whole.len();
        if bits >> 60 == 0 {
            bits = bits << 4 | value;
            exponent -= if in_fraction { 4 } else { 0 };
        } else {
            sticky |= value != 0;
            exponent += if in_fraction { 0 } else { 4 };
        }
    }
    if bits == 0 {
        return Some(0.0);
    }
    let width = 64 - bits.leading_zeros();
    if width > 53 {
        let shift = width - 53;
        let rest = bits & ((1 << shift) - 1);
        let half = 1 << (shift - 1);
        bits >>= shift;
        exponent += i64::from(shift);
        if rest > half || (rest == half && (sticky || bits & 1 == 1)) {
            bits += 1;
        }
    }
    #[allow(clippy::cast_precision_loss)] // At most 53 significant bits.
    let mut value = bits as f64;
    let exponent = exponent.clamp(-2_000, 2_000);
    #[allow(clippy::cast_possible_truncation)] // Clamped just above.
    let mut exponent = exponent as i32;
    while exponent != 0 {
        let step = exponent.clamp(-1000, 1000);
        value *= 2_f64.powi(step);
        exponent -= step;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(yaml: &str) -> Scalar {
        scalar(&serde_yaml_ng::from_str::<Value>(yaml).unwrap()).unwrap()
    }

    #[test]
    fn parse_int_is_go_parse_int_base_10() {
        for (text, expected) in [
            ("0", Some(0)),
            ("-1", Some(-1)),
            ("+42", Some(42)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("1e3", None),
            ("10.0", None),
            (" 10", None),
            ("10 ", None),
            ("1_000", None),
            ("0x10", None),
            ("", None),
            ("+", None),
        ] {
            assert_eq!(parse_int(text), expected, "{text:?}");
        }
    }

    #[test]
    fn parse_float_is_go_parse_float() {
        for (text, expected) in [
            ("0.017", Some(0.017)),
            ("1e3", Some(1000.0)),
            ("1E+3", Some(1000.0)),
            (".5", Some(0.5)),
            ("5.", Some(5.0)),
            ("-1", Some(-1.0)),
            ("+2.5", Some(2.5)),
            ("1_000.5", Some(1000.5)),
            ("0x1p-2", Some(0.25)),
            ("0X1.8P3", Some(12.0)),
            ("-0x10p0", Some(-16.0)),
            ("0x_1p4", Some(16.0)),
            ("0x1", None),
            ("1__0", None),
            ("_1", None),
            ("1_", None),
            ("1e400", None),
            ("1e", None),
            (".", None),
            ("", None),
            (" 1", None),
            ("1,5", None),
            (".inf", None),
        ] {
            assert_eq!(parse_float(text), expected, "{text:?}");
        }
        for text in ["inf", "+Inf", "INFINITY", "-infinity"] {
            assert!(parse_float(text).unwrap().is_infinite(), "{text:?}");
        }
        assert!(parse_float("NaN").unwrap().is_nan());
        assert!(parse_float("nan").unwrap().is_nan());
        assert_eq!(parse_float("+nan"), None, "Go reads no sign before nan");
        assert_eq!(parse_float("infin"), None);
    }

    #[test]
    fn hex_floats_round_to_nearest_even() {
        // 2^53 + 1 is a tie between 2^53 and 2^53 + 2: even wins.
        assert_eq!(
            parse_float("0x20000000000001p0"),
            Some(9_007_199_254_740_992.0)
        );
        // Any bit past the tie rounds up.
        assert_eq!(
            parse_float("0x200000000000011p-4"),
            Some(9_007_199_254_740_994.0)
        );
        assert_eq!(parse_float("0x1p-1074"), Some(f64::from_bits(1)));
        assert_eq!(parse_float("0x1p1024"), None, "out of range");
        assert_eq!(parse_float("0x0p99999999999999999999"), Some(0.0));
    }

    #[test]
    fn parse_seconds_is_get_as_duration() {
        assert_eq!(parse_seconds("86400"), Some(86_400.0));
        assert_eq!(parse_seconds("0.5"), Some(0.5));
        assert_eq!(parse_seconds("1e3"), Some(1000.0));
        assert_eq!(parse_seconds("1s"), None, "no Go duration strings");
    }

    #[test]
    fn parse_bool_is_go_parse_bool() {
        for text in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(text), Some(true), "{text}");
        }
        for text in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(text), Some(false), "{text}");
        }
        for text in ["yes", "on", "tRUE", " true", ""] {
            assert_eq!(parse_bool(text), None, "{text}");
        }
    }

    #[test]
    fn scalars_read_as_milvus_prints_them() {
        let cases = [
            ("42", "42", None),
            ("-1", "-1", None),
            ("18446744073709551615", "18446744073709551615", None),
            ("0.017", "0.017", None),
            ("1e3", "1000", None),
            ("10.0", "10", None),
            ("1e20", "100000000000000000000", None),
            (".inf", "+Inf", None),
            ("true", "true", None),
            ("\"10\"", "10", None),
            ("\"0.017\"", "0.017", None),
            ("010", "010", Some("8")),
            ("\"010\"", "010", Some("8")),
            ("09", "09", Some("9")),
            (
                "\"+18446744073709551615\"",
                "+18446744073709551615",
                Some("18446744073709552000"),
            ),
            ("1_000", "1_000", Some("1000")),
            ("0X1F", "0X1F", Some("31")),
            ("-0x_10", "-0x_10", Some("-16")),
            ("1_000.5", "1_000.5", Some("1000.5")),
            ("yes", "yes", Some("true")),
            ("Off", "Off", Some("false")),
            ("\".inf\"", ".inf", Some("+Inf")),
            ("\"null\"", "null", Some("")),
            ("2024-01-01", "2024-01-01", None),
            ("~/data", "~/data", None),
            ("big", "big", None),
        ];
        for (yaml, text, unquoted) in cases {
            let scalar = reading(yaml);
            assert_eq!(scalar.text, text, "{yaml}");
            assert_eq!(scalar.unquoted.as_deref(), unquoted, "{yaml}");
        }
    }

    #[test]
    fn keys_compare_as_milvus_compares_them() {
        assert_eq!(format_key("rocksmqPageSize"), "rocksmqpagesize");
        assert_eq!(format_key("rocksmq_page_size"), "rocksmqpagesize");
        assert_eq!(
            format_key("RetentionTimeInMinutes"),
            "retentiontimeinminutes"
        );
    }
}
