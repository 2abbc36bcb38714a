//! Human durations in the config file: `500ms`, `10s`, `2m`, `1h`, `1d`, or a bare integer of seconds.

use std::fmt;
use std::time::Duration;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// A `Duration` written the way people write it in a config file.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DurationStr(pub Duration);

impl DurationStr {
    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl fmt::Debug for DurationStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for DurationStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms % 1000 != 0 || ms == 0 {
            write!(f, "{ms}ms")
        } else {
            write!(f, "{}s", ms / 1000)
        }
    }
}

/// Parses `500ms`, `10s`, `2m`, `1h`, `1d`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (write e.g. 500ms, 10s, 2m, 1h)"))?;
    let ms = match unit.trim() {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        other => {
            return Err(format!(
                "unknown duration unit `{other}` in `{text}` (use ms, s, m, h or d)"
            ))
        }
    };
    ms.map(Duration::from_millis)
        .ok_or_else(|| format!("duration `{text}` is too large"))
}

impl<'de> Deserialize<'de> for DurationStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = DurationStr;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as 500ms, 10s, 2m or 1h")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationStr, E> {
                v.checked_mul(1000)
                    .map(|ms| DurationStr(Duration::from_millis(ms)))
                    .ok_or_else(|| E::custom("duration is too large"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationStr, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom("a duration cannot be negative"))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationStr, E> {
                parse_duration(v).map(DurationStr).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for DurationStr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
