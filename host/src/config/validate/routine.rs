//! `backup-routines.<name>`: references to other sections, schedules, and the selectors of
//! what to back up.

use super::{Errors, check_racks, check_timezone};
use crate::config::cron::CronSchedule;
use crate::config::model::*;

pub(super) fn routine(e: &mut Errors, cfg: &Config, path: &str, r: &BackupRoutine) {
    let cluster = cfg.aerospike_clusters.get(&r.source_cluster);
    if r.source_cluster.is_empty() {
        e.push(format!("{path}.source-cluster"), "is required");
    } else if cluster.is_none() {
        e.push(
            format!("{path}.source-cluster"),
            format!("unknown cluster \"{}\"", r.source_cluster),
        );
    }
    if r.storage.is_empty() {
        e.push(format!("{path}.storage"), "is required");
    } else if !cfg.storage.contains_key(&r.storage) {
        e.push(
            format!("{path}.storage"),
            format!("unknown storage \"{}\"", r.storage),
        );
    }
    if let Some(p) = &r.backup_policy
        && !cfg.backup_policies.contains_key(p)
    {
        e.push(
            format!("{path}.backup-policy"),
            format!("unknown backup policy \"{p}\""),
        );
    }
    if let Some(a) = &r.secret_agent
        && !cfg.secret_agents.contains_key(a)
    {
        e.push(
            format!("{path}.secret-agent"),
            format!("unknown secret agent \"{a}\""),
        );
    }
    if r.interval_cron.trim().is_empty() {
        e.push(format!("{path}.interval-cron"), "is required");
    } else if let Err(m) = r.interval_cron.parse::<CronSchedule>() {
        e.push(format!("{path}.interval-cron"), m);
    }
    if let Some(c) = r.incr_cron()
        && let Err(m) = c.parse::<CronSchedule>()
    {
        e.push(format!("{path}.incr-interval-cron"), m);
    }
    if let Some(c) = r.verify_cron()
        && let Err(m) = c.parse::<CronSchedule>()
    {
        e.push(format!("{path}.verify-cron"), m);
    }
    for (i, name) in r.copy_to.iter().flatten().enumerate() {
        let at = format!("{path}.copy-to[{i}]");
        if !cfg.storage.contains_key(name) {
            e.push(at, format!("unknown storage \"{name}\""));
        } else if *name == r.storage {
            e.push(at, format!("\"{name}\" is the routine's own storage"));
        } else if r.copy_to.iter().flatten().take(i).any(|n| n == name) {
            e.push(at, format!("\"{name}\" is named twice"));
        }
    }
    if let Some(tz) = &r.schedule_timezone {
        check_timezone(e, &format!("{path}.schedule-timezone"), tz);
    }
    for (field, list) in [
        ("namespaces", &r.namespaces),
        ("set-list", &r.set_list),
        ("bin-list", &r.bin_list),
        ("node-list", &r.node_list),
    ] {
        for (i, v) in list.iter().enumerate() {
            if v.trim().is_empty() {
                e.push(format!("{path}.{field}[{i}]"), "must not be empty");
            }
        }
    }
    if let Some(pl) = &r.partition_list
        && let Err(m) = parse_partition_list(pl)
    {
        e.push(format!("{path}.partition-list"), m);
    }
    if let Some(racks) = &r.rack_list {
        check_racks(
            e,
            &format!("{path}.rack-list"),
            "BackupRoutine",
            "rack-list",
            racks,
        );
    }
    if let Some(racks) = &r.prefer_racks {
        check_racks(
            e,
            &format!("{path}.prefer-racks"),
            "BackupRoutine",
            "prefer-racks",
            racks,
        );
    }
    let cluster_racks =
        cluster.is_some_and(|c| c.prefer_racks.as_ref().is_some_and(|r| !r.is_empty()));
    let selectors = [
        ("partition-list", r.partition_list.is_some()),
        ("node-list", !r.node_list.is_empty()),
        (
            "rack-list",
            r.rack_list.as_ref().is_some_and(|v| !v.is_empty()),
        ),
        (
            "prefer-racks",
            r.prefer_racks.as_ref().is_some_and(|v| !v.is_empty()) || cluster_racks,
        ),
    ];
    let set: Vec<&str> = selectors.iter().filter(|s| s.1).map(|s| s.0).collect();
    if set.len() > 1 {
        e.push(
            path,
            format!("{} are mutually exclusive", set.join(" and ")),
        );
    }
    if let Some(max) = cluster.and_then(|c| c.max_parallel_scans)
        && r.set_list.len() > max as usize
    {
        e.push(
            format!("{path}.set-list"),
            format!(
                "has {} sets, more than the cluster's max-parallel-scans ({max})",
                r.set_list.len()
            ),
        );
    }
}

/// One element of a routine's `partition-list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionSpec {
    /// Partitions `begin .. begin + count`.
    Range { begin: u16, count: u16 },
    /// Records after this digest, within its partition.
    AfterDigest([u8; 20]),
}

/// Parses `partition-list`: comma-separated `N`, `begin-count`, or a base64 record digest.
pub fn parse_partition_list(s: &str) -> Result<Vec<PartitionSpec>, String> {
    use base64::Engine as _;
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim) {
        if part.is_empty() {
            return Err("empty element".into());
        }
        if let Some((b, c)) = part.split_once('-') {
            let begin: u16 = b
                .parse()
                .map_err(|_| format!("\"{part}\": begin is not a number"))?;
            let count: u16 = c
                .parse()
                .map_err(|_| format!("\"{part}\": count is not a number"))?;
            if begin > 4095 || count == 0 || begin as u32 + count as u32 > 4096 {
                return Err(format!(
                    "\"{part}\": partitions must lie within 0-4095 and count must be positive"
                ));
            }
            out.push(PartitionSpec::Range { begin, count });
        } else if let Ok(n) = part.parse::<u16>() {
            if n > 4095 {
                return Err(format!("\"{part}\": partition ids are 0-4095"));
            }
            out.push(PartitionSpec::Range { begin: n, count: 1 });
        } else {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(part)
                .map_err(|_| format!("\"{part}\" is neither a partition, a range nor a digest"))?;
            let digest: [u8; 20] = bytes
                .try_into()
                .map_err(|_| format!("\"{part}\": a digest is 20 bytes"))?;
            out.push(PartitionSpec::AfterDigest(digest));
        }
    }
    Ok(out)
}
