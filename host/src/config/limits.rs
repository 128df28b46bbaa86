//! The meaningful range of every number in the configuration and in restore requests: one table
//! that the validator enforces and the OpenAPI document publishes as `minimum`/`maximum`, so the
//! two cannot drift apart.

/// Longest duration any timeout or delay may have, in ms (7 days). Longer values are typos
/// (a scan that may hang for years, a retry delay of 2066540437521813504 ms) and are refused.
pub const MAX_MS: i64 = 7 * 24 * 3600 * 1000;
/// Largest part or block size of cloud uploads, bytes (5 GiB, S3's largest part).
const MAX_PART: i64 = 5 * 1024 * 1024 * 1024;
/// 1 TiB in MiB: bandwidth in MiB/s, file and log sizes in MB.
const TIB_IN_MIB: i64 = 1024 * 1024;
/// Aerospike has 4096 partitions; more workers than that have nothing to do.
const PARTITIONS: i64 = 4096;

/// One number's range, inclusive, as `(OpenAPI component, property)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub schema: &'static str,
    pub field: &'static str,
    pub min: i64,
    pub max: i64,
}

const fn r(schema: &'static str, field: &'static str, min: i64, max: i64) -> Range {
    Range {
        schema,
        field,
        min,
        max,
    }
}

/// Every bounded number. Lists of numbers (rack ids) bound each element.
pub const RANGES: &[Range] = &[
    r("HttpServerConfig", "port", 1, 65535),
    r("HttpServerConfig", "timeout", 1, MAX_MS),
    r("HttpServerConfig", "read-timeout", 1, MAX_MS),
    r("HttpServerConfig", "write-timeout", 1, MAX_MS),
    r("HttpServerConfig", "idle-timeout", 1, MAX_MS),
    r("RateLimiterConfig", "tps", 1, 1_000_000),
    r("RateLimiterConfig", "size", 1, 1_000_000),
    r("FileLoggerConfig", "maxsize", 1, TIB_IN_MIB),
    r("FileLoggerConfig", "maxage", 0, 36_500),
    r("FileLoggerConfig", "maxbackups", 0, 100_000),
    r("AerospikeCluster", "conn-timeout", 1, MAX_MS),
    r("AerospikeCluster", "max-parallel-scans", 1, PARTITIONS),
    r("AerospikeCluster", "prefer-racks", 0, 1_000_000),
    r("SeedNode", "port", 1, 65535),
    r("S3Storage", "min-part-size", 1, MAX_PART),
    r("S3Storage", "max-async-connections", 1, 1024),
    r("AzureStorage", "min-part-size", 1, MAX_PART),
    r("GcpStorage", "min-part-size", 1, MAX_PART),
    r("BackupPolicy", "parallel", 1, PARTITIONS),
    r("BackupPolicy", "parallel-write", 1, PARTITIONS),
    r("BackupPolicy", "socket-timeout", 0, MAX_MS),
    r("BackupPolicy", "total-timeout", 0, MAX_MS),
    r("BackupPolicy", "records-per-second", 0, 1_000_000_000),
    r("BackupPolicy", "bandwidth", 0, TIB_IN_MIB),
    r("BackupPolicy", "file-limit", 1, TIB_IN_MIB),
    r("BackupPolicy", "max-concurrent-nodes", 1, 256),
    r("BackupPolicy", "max-retries", 0, 1000),
    r("BackupPolicy", "retry-delay", 0, MAX_MS),
    // A backup resumed a year after it started would no longer be the snapshot it claims.
    r("BackupPolicy", "resume-max-age", 0, 366 * 24 * 3600 * 1000),
    r("RetryPolicy", "base-timeout", 1, MAX_MS),
    r("RetryPolicy", "multiplier", 1, 100),
    r("RetryPolicy", "max-retries", 0, 1000),
    r("RetentionPolicy", "full", 1, 100_000),
    r("RetentionPolicy", "incremental", 0, 100_000),
    r("CompressionPolicy", "level", -1, 22),
    r("BackupRoutine", "rack-list", 0, 1_000_000),
    r("BackupRoutine", "prefer-racks", 0, 1_000_000),
    r("SecretAgent", "port", 1, 65535),
    r("SecretAgent", "timeout", 1, MAX_MS),
    r("NotificationsConfig", "queue-size", 1, 1_000_000),
    r("WebhookConfig", "timeout-seconds", 1, 3600),
    r("RestorePolicy", "parallel", 1, PARTITIONS),
    r("RestorePolicy", "socket-timeout", 0, MAX_MS),
    r("RestorePolicy", "total-timeout", 0, MAX_MS),
    r("RestorePolicy", "max-async-batches", 1, 1024),
    r("RestorePolicy", "batch-size", 1, 1_000_000),
    r("RestorePolicy", "bandwidth", 0, TIB_IN_MIB),
    r("RestorePolicy", "tps", 0, 1_000_000_000),
    r("RestorePolicy", "extra-ttl", 0, u32::MAX as i64),
];

/// The range of `schema.field`. Panics on a pair missing from [`RANGES`]: a programming error
/// that every validation test reaches.
pub fn range(schema: &str, field: &str) -> Range {
    *RANGES
        .iter()
        .find(|r| r.schema == schema && r.field == field)
        .unwrap_or_else(|| panic!("no range for {schema}.{field}"))
}

impl Range {
    /// `None` when `v` is inside, else the message for the 400.
    pub fn check(&self, v: impl Into<f64>) -> Option<String> {
        let v = v.into();
        let inside = v.is_finite() && v >= self.min as f64 && v <= self.max as f64;
        (!inside).then(|| format!("must be between {} and {}", self.min, self.max))
    }

    /// `check` for the integer types the config uses (u64 does not convert into f64 losslessly,
    /// but every bound is far below 2^53, so a comparison in i128 is exact).
    pub fn check_int(&self, v: impl Into<i128>) -> Option<String> {
        let v = v.into();
        let inside = v >= self.min as i128 && v <= self.max as i128;
        (!inside).then(|| format!("must be between {} and {}", self.min, self.max))
    }
}

/// Writes every range into the OpenAPI document's component schemas as `minimum`/`maximum`
/// (on the items of a list of numbers).
pub fn publish(components: &mut serde_json::Value) {
    for r in RANGES {
        let Some(prop) = components
            .get_mut(r.schema)
            .and_then(|s| s.get_mut("properties"))
            .and_then(|p| p.get_mut(r.field))
        else {
            panic!("OpenAPI has no property {}.{}", r.schema, r.field);
        };
        let is_list = match prop.get("type") {
            Some(serde_json::Value::String(t)) => t == "array",
            Some(serde_json::Value::Array(ts)) => ts.iter().any(|t| t == "array"),
            _ => false,
        };
        let target = if is_list {
            prop.get_mut("items").expect("a list schema has items")
        } else {
            prop
        };
        if let Some(obj) = target.as_object_mut() {
            obj.insert("minimum".into(), r.min.into());
            obj.insert("maximum".into(), r.max.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_ordered_and_unique() {
        for (i, a) in RANGES.iter().enumerate() {
            assert!(a.min <= a.max, "{a:?}");
            assert!(
                RANGES[i + 1..]
                    .iter()
                    .all(|b| (b.schema, b.field) != (a.schema, a.field)),
                "{a:?} twice"
            );
        }
    }

    #[test]
    fn bounds_are_inclusive() {
        let r = range("SeedNode", "port");
        assert_eq!(r.check_int(1u32), None);
        assert_eq!(r.check_int(65535u32), None);
        assert_eq!(
            r.check_int(0u32).as_deref(),
            Some("must be between 1 and 65535")
        );
        assert!(r.check_int(65536u32).is_some());
        let m = range("RetryPolicy", "multiplier");
        assert_eq!(m.check(1.5), None);
        assert!(m.check(f64::NAN).is_some());
        assert!(m.check(0.5).is_some());
        assert!(
            range("BackupPolicy", "retry-delay")
                .check_int(2_066_540_437_521_813_504u64)
                .is_some()
        );
    }
}
