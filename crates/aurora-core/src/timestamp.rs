//! [`Timestamp`]: a UTC instant with microsecond precision.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A UTC instant, stored as microseconds since the Unix epoch.
///
/// ```
/// use aurora_core::Timestamp;
/// let t = Timestamp::from_micros(1_500_000);
/// assert_eq!(t.as_micros(), 1_500_000);
/// assert!(Timestamp::now() > t);
/// ```
///
/// Its serde form is a newtype struct over the microsecond count, under a
/// reserved name that Aurora's serde bridge turns into `Value::Timestamp`
/// (so a `Timestamp` field of a struct is a timestamp in the document);
/// other formats see the plain integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_struct(crate::serde_bridge::TIMESTAMP_TOKEN, &self.0)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Micros;
        impl<'de> serde::de::Visitor<'de> for Micros {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a timestamp (microseconds since the Unix epoch)")
            }
            fn visit_newtype_struct<D: serde::Deserializer<'de>>(self, d: D) -> Result<Timestamp, D::Error> {
                i64::deserialize(d).map(Timestamp)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Timestamp, E> {
                i64::try_from(v).map(Timestamp).map_err(|_| E::custom("timestamp out of range"))
            }
        }
        deserializer.deserialize_newtype_struct(crate::serde_bridge::TIMESTAMP_TOKEN, Micros)
    }
}

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// A timestamp from microseconds since the Unix epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// A timestamp from milliseconds since the Unix epoch (saturating).
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis.saturating_mul(1000))
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// This timestamp moved forward by `d` (saturating).
    pub fn saturating_add(self, d: Duration) -> Self {
        let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(micros))
    }

    /// This timestamp moved back by `d` (saturating).
    pub fn saturating_sub(self, d: Duration) -> Self {
        let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(micros))
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Self(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
            Err(e) => Self(-i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX)),
        }
    }
}

impl From<Timestamp> for SystemTime {
    fn from(t: Timestamp) -> Self {
        let abs = Duration::from_micros(t.0.unsigned_abs());
        if t.0 >= 0 {
            UNIX_EPOCH + abs
        } else {
            UNIX_EPOCH - abs
        }
    }
}

impl fmt::Display for Timestamp {
    /// Formats as RFC 3339 in UTC with microseconds, e.g. `2024-01-02T03:04:05.000006Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(f, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z", sod / 3600, (sod % 3600) / 60, sod % 60)
    }
}

impl Timestamp {
    /// Parses RFC 3339 (`2024-01-02T03:04:05Z`, `…05.123456Z`,
    /// `…05+02:00`; `t`/`z` and a space for `T` are accepted): years
    /// 0000–9999, at most six fraction digits (Aurora keeps microseconds and
    /// never rounds), a `Z` or `±hh:mm` offset.
    ///
    /// # Errors
    /// A message saying which part is malformed.
    ///
    /// ```
    /// use aurora_core::Timestamp;
    /// let t = Timestamp::parse_rfc3339("2024-01-02T05:04:05.000006+02:00").unwrap();
    /// assert_eq!(t.to_string(), "2024-01-02T03:04:05.000006Z");
    /// ```
    pub fn parse_rfc3339(s: &str) -> Result<Timestamp, String> {
        let b = s.as_bytes();
        let digits = |from: usize, n: usize| -> Result<i64, String> {
            let part = b.get(from..from + n).ok_or_else(|| format!("{s:?} is too short for RFC 3339"))?;
            part.iter().try_fold(0i64, |acc, c| {
                c.is_ascii_digit()
                    .then(|| acc * 10 + i64::from(c - b'0'))
                    .ok_or_else(|| format!("{s:?}: expected a digit at byte {from}"))
            })
        };
        let sep = |at: usize, allowed: &[u8]| -> Result<(), String> {
            match b.get(at) {
                Some(c) if allowed.contains(c) => Ok(()),
                _ => Err(format!("{s:?} is not RFC 3339 (at byte {at})")),
            }
        };
        let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
        sep(4, b"-")?;
        sep(7, b"-")?;
        sep(10, b"Tt ")?;
        let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
        sep(13, b":")?;
        sep(16, b":")?;
        let mut at = 19;
        let mut micros = 0i64;
        if b.get(at) == Some(&b'.') {
            let start = at + 1;
            let len = b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
            if len == 0 || len > 6 {
                return Err(format!("{s:?}: 1 to 6 fraction digits (microseconds), got {len}"));
            }
            micros = digits(start, len)? * 10i64.pow(6 - len as u32);
            at = start + len;
        }
        let offset_minutes = match b.get(at) {
            Some(b'Z' | b'z') if at + 1 == b.len() => 0,
            Some(&sign @ (b'+' | b'-')) if at + 6 == b.len() => {
                sep(at + 3, b":")?;
                let (h, m) = (digits(at + 1, 2)?, digits(at + 4, 2)?);
                if h > 23 || m > 59 {
                    return Err(format!("{s:?}: offset out of range"));
                }
                let minutes = h * 60 + m;
                if sign == b'-' {
                    -minutes
                } else {
                    minutes
                }
            }
            _ => return Err(format!("{s:?}: expected `Z` or an offset `±hh:mm` at the end")),
        };
        let month_days = [31, if is_leap(year) { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        if !(1..=12).contains(&month) || day < 1 || day > month_days[(month - 1) as usize] {
            return Err(format!("{s:?}: no such date"));
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err(format!("{s:?}: no such time of day (leap seconds are not kept)"));
        }
        let days = days_from_civil(year, month as u32, day as u32);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
        Ok(Timestamp(secs * 1_000_000 + micros))
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Howard Hinnant's civil-to-days algorithm (proleptic Gregorian calendar).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_formats() {
        for micros in
            [0, -1, 1, 1_704_164_645_000_006, -62_135_596_800_000_000, 253_402_300_799_999_999, 951_782_400_000_000]
        {
            let t = Timestamp::from_micros(micros);
            assert_eq!(Timestamp::parse_rfc3339(&t.to_string()), Ok(t), "{t}");
        }
        assert_eq!(Timestamp::parse_rfc3339("1970-01-01T02:00:00.5+02:00"), Ok(Timestamp::from_micros(500_000)));
        for bad in [
            "",
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00.1234567Z",
            "2024-01-01T00:00:00+2:00",
            "2024-01-01T00:00:00Zjunk",
            "２０２４-01-01T00:00:00Z",
        ] {
            assert!(Timestamp::parse_rfc3339(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(Timestamp::from_micros(0).to_string(), "1970-01-01T00:00:00.000000Z");
        assert_eq!(Timestamp::from_micros(1_704_164_645_000_006).to_string(), "2024-01-02T03:04:05.000006Z");
        assert_eq!(Timestamp::from_micros(-1).to_string(), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn system_time_round_trip() {
        for micros in [-5_000_000i64, 0, 1, 1_704_164_645_000_006] {
            let t = Timestamp::from_micros(micros);
            assert_eq!(Timestamp::from(SystemTime::from(t)), t);
        }
    }
}
