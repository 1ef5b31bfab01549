//! Value types with their own syntax: Kubernetes quantities, durations and KubeRay versions.
//! Parsers return a plain message on failure; the caller adds file, line and key.

use std::fmt;
use std::time::Duration;

/// A Kubernetes resource quantity (`8Gi`, `500m`, `1`), kept as written plus its value in
/// thousandths, so that sizes can be compared (a PVC must never shrink).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantity {
    text: String,
    millis: u128,
}

impl Quantity {
    /// Parses the canonical Kubernetes quantity forms: a decimal number with an optional binary
    /// (`Ki`..`Ei`) or decimal (`m`, `k`, `M`..`E`) suffix. Exponent forms (`1e3`) are rejected
    /// to keep stack files readable.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("is empty".into());
        }
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, suffix) = s.split_at(split);
        if num.is_empty()
            || num.starts_with('.')
            || num.ends_with('.')
            || num.matches('.').count() > 1
        {
            return Err(format!("`{s}` does not start with a number"));
        }
        let (mul_num, mul_den): (u128, u128) = match suffix {
            "" => (1000, 1),
            "m" => (1, 1),
            "k" => (1000 * 1000, 1),
            "M" => (1000 * 1000u128.pow(2), 1),
            "G" => (1000 * 1000u128.pow(3), 1),
            "T" => (1000 * 1000u128.pow(4), 1),
            "P" => (1000 * 1000u128.pow(5), 1),
            "E" => (1000 * 1000u128.pow(6), 1),
            "Ki" => (1000 << 10, 1),
            "Mi" => (1000 << 20, 1),
            "Gi" => (1000 << 30, 1),
            "Ti" => (1000 << 40, 1),
            "Pi" => (1000 << 50, 1),
            "Ei" => (1000 << 60, 1),
            other => {
                let hint = match other.to_ascii_lowercase().as_str() {
                    "kb" | "kib" => " (use `Ki` for kibibytes or `k` for kilobytes)",
                    "mb" | "mib" => " (use `Mi` for mebibytes or `M` for megabytes)",
                    "gb" | "gib" => " (use `Gi` for gibibytes or `G` for gigabytes)",
                    "tb" | "tib" => " (use `Ti` for tebibytes or `T` for terabytes)",
                    _ => "",
                };
                return Err(format!(
                    "`{other}` is not a Kubernetes quantity suffix{hint}; valid suffixes are m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei"
                ));
            }
        };
        let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
        if int_part.len() > 18 || frac_part.len() > 9 {
            return Err(format!("`{s}` is too large or too precise"));
        }
        let int: u128 = int_part
            .parse()
            .map_err(|_| format!("`{s}` is not a number"))?;
        let frac_den = 10u128.pow(frac_part.len() as u32);
        let frac: u128 = if frac_part.is_empty() {
            0
        } else {
            frac_part
                .parse()
                .map_err(|_| format!("`{s}` is not a number"))?
        };
        let total = (int * frac_den + frac)
            .checked_mul(mul_num)
            .ok_or_else(|| format!("`{s}` is too large"))?
            / (frac_den * mul_den);
        Ok(Quantity {
            text: s.to_string(),
            millis: total,
        })
    }

    /// The quantity as written in the stack file.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value in thousandths of a unit (`500m` → 500, `1` → 1000, `1Ki` → 1_024_000).
    pub fn millis(&self) -> u128 {
        self.millis
    }

    /// Whole units, rounded down (bytes for memory and storage).
    pub fn units(&self) -> u128 {
        self.millis / 1000
    }

    /// True when the quantity has a fractional part below one unit, e.g. `500m` bytes.
    pub fn has_fraction(&self) -> bool {
        !self.millis.is_multiple_of(1000)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Parses a duration written as whole hours, minutes and seconds: `0s`, `1s`, `90s`, `5m`,
/// `1h30m`. Sub-second units are rejected: Redis schedules persistence in whole seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("is empty; write a duration such as \"1s\", \"30s\" or \"5m\"".into());
    }
    let mut total: u64 = 0;
    let mut rest = t;
    let mut seen_any = false;
    let mut last_rank = 4; // h=3, m=2, s=1: units must appear in decreasing order, once
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if n == 0 {
            return Err(format!(
                "`{t}` is not a duration; write it as \"1s\", \"30s\", \"5m\" or \"1h30m\""
            ));
        }
        let value: u64 = rest[..n]
            .parse()
            .map_err(|_| format!("`{t}` is too large"))?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..u];
        rest = &rest[u..];
        let (rank, secs) = match unit {
            "h" => (3, 3600),
            "m" => (2, 60),
            "s" => (1, 1),
            "ms" | "us" | "µs" | "ns" => {
                return Err(format!(
                    "`{t}` uses `{unit}`; durations are whole seconds at the finest (\"1s\")"
                ));
            }
            "" => return Err(format!("`{t}` has no unit; write \"{value}s\" for seconds")),
            other => {
                return Err(format!(
                    "`{t}` has an unknown unit `{other}`; use h, m or s (e.g. \"30s\", \"5m\")"
                ));
            }
        };
        if rank >= last_rank {
            return Err(format!(
                "`{t}` repeats or reorders units; write hours, then minutes, then seconds (e.g. \"1h30m\")"
            ));
        }
        last_rank = rank;
        total = value
            .checked_mul(secs)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("`{t}` is too large"))?;
        seen_any = true;
    }
    debug_assert!(seen_any);
    Ok(Duration::from_secs(total))
}

/// Formats whole seconds the way stack files write them: `0s`, `45s`, `5m`, `1h30m`.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        return "0s".into();
    }
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if sec > 0 {
        out.push_str(&format!("{sec}s"));
    }
    out
}

/// A KubeRay operator version `MAJOR.MINOR.PATCH` (a leading `v` is accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubeRayVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl KubeRayVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim().trim_start_matches('v');
        let parts: Vec<&str> = t.split('.').collect();
        let bad = || format!("`{s}` is not a version; write MAJOR.MINOR.PATCH, e.g. \"1.3.0\"");
        if parts.len() != 3 {
            return Err(bad());
        }
        let n = |p: &str| -> Result<u32, String> {
            if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            p.parse().map_err(|_| bad())
        };
        Ok(Self {
            major: n(parts[0])?,
            minor: n(parts[1])?,
            patch: n(parts[2])?,
        })
    }

    /// KubeRay 1.3 introduced `spec.gcsFaultToleranceOptions`; older operators need the
    /// `ray.io/ft-enabled` annotation form.
    pub fn has_gcs_ft_options(self) -> bool {
        self >= KubeRayVersion::new(1, 3, 0)
    }

    /// KubeRay 1.6 introduced `spec.upgradeStrategy` (`Recreate` | `None`): without it the
    /// operator never restarts running pods when the RayCluster spec changes.
    pub fn has_upgrade_strategy(self) -> bool {
        self >= KubeRayVersion::new(1, 6, 0)
    }

    /// KubeRay 1.7 introduced `gcsFaultToleranceOptions.backend: rocksdb` and its `storage`
    /// block (behind the alpha feature gate `GCSFaultToleranceEmbeddedStorage`).
    pub fn has_embedded_gcs(self) -> bool {
        self >= KubeRayVersion::new(1, 7, 0)
    }
}

impl fmt::Display for KubeRayVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_like_kubernetes() {
        assert_eq!(Quantity::parse("8Gi").unwrap().units(), 8 << 30);
        assert_eq!(Quantity::parse("500m").unwrap().millis(), 500);
        assert_eq!(Quantity::parse("1.5").unwrap().millis(), 1500);
        assert_eq!(Quantity::parse("2G").unwrap().units(), 2_000_000_000);
        assert!(Quantity::parse("8Gb").unwrap_err().contains("use `Gi`"));
        assert!(Quantity::parse("Gi").is_err());
        assert!(Quantity::parse("1..2").is_err());
        assert!(Quantity::parse("").is_err());
        assert!(Quantity::parse("99999999999999999999Ei").is_err());
    }

    #[test]
    fn durations_are_whole_seconds() {
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("1h30m").unwrap().as_secs(), 5400);
        assert!(
            parse_duration("500ms")
                .unwrap_err()
                .contains("whole seconds")
        );
        assert!(parse_duration("10").unwrap_err().contains("no unit"));
        assert!(parse_duration("1s1m").is_err());
        assert!(parse_duration("1d").is_err());
        assert!(parse_duration("99999999999999999999s").is_err());
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(45)), "45s");
    }

    #[test]
    fn kuberay_versions_select_the_ft_shape() {
        assert!(!KubeRayVersion::parse("1.2.2").unwrap().has_gcs_ft_options());
        assert!(
            KubeRayVersion::parse("v1.3.0")
                .unwrap()
                .has_gcs_ft_options()
        );
        assert!(KubeRayVersion::parse("1.7.0").unwrap().has_gcs_ft_options());
        assert!(KubeRayVersion::parse("1.3").is_err());
        let v = |s: &str| KubeRayVersion::parse(s).unwrap();
        assert!(!v("1.5.2").has_upgrade_strategy() && v("1.6.0").has_upgrade_strategy());
        assert!(!v("1.6.2").has_embedded_gcs() && v("1.7.0").has_embedded_gcs());
    }
}
