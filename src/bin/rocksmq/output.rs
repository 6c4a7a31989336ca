//! How the tool prints messages and statistics.

use std::io::{self, Write};
use std::time::SystemTime;

use base64::Engine;
use rocksmq::{
    CheckReport, MissingShardStats, RepairReport, RetentionReport, StoreStats, StoredMessage,
};
use serde_json::json;

/// One message on one line: its payload as text, or with `json` an object
/// `{"id", "timestamp", "properties", "payload" | "payload_base64"}`.
pub fn message(message: &StoredMessage, json: bool, out: &mut impl Write) -> io::Result<()> {
    if !json {
        out.write_all(&message.payload)?;
        return out.write_all(b"\n");
    }
    let mut object = json!({
        "id": message.id,
        "timestamp": rfc3339(message.timestamp),
        "properties": message.properties,
    });
    match std::str::from_utf8(&message.payload) {
        Ok(text) => object["payload"] = text.into(),
        Err(_) => {
            object["payload_base64"] = base64::engine::general_purpose::STANDARD
                .encode(&message.payload)
                .into();
        }
    }
    serde_json::to_writer(&mut *out, &object)?;
    out.write_all(b"\n")
}

/// A time as RFC 3339 in UTC, to the nanosecond: what `--from @TIME` reads.
pub fn rfc3339(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A byte count with its binary unit, for people.
#[allow(clippy::cast_precision_loss)]
pub fn bytes(count: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = count as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{count} B")
    } else {
        format!("{value:.1} {} ({count} B)", UNITS[unit])
    }
}

/// What a retention pass deleted, per topic, and the disk before and after.
pub fn retention_report(report: &RetentionReport, out: &mut impl Write) -> io::Result<()> {
    if report.topics.is_empty() {
        writeln!(out, "nothing to delete")?;
    } else {
        writeln!(
            out,
            "{:<24} {:>7} {:>12} {:>14} {:>12} {:>10}",
            "topic", "pages", "messages", "bytes", "first id", "skipped"
        )?;
        for topic in &report.topics {
            writeln!(
                out,
                "{:<24} {:>7} {:>12} {:>14} {:>12} {:>10}",
                topic.name, topic.pages, topic.messages, topic.bytes, topic.first_id, topic.skipped
            )?;
        }
        writeln!(
            out,
            "deleted {} pages, {} messages, {}",
            report.pages(),
            report.messages(),
            bytes(report.bytes())
        )?;
    }
    writeln!(
        out,
        "disk {} -> {} in {:.3} s",
        bytes(report.disk_bytes_before),
        bytes(report.disk_bytes_after),
        report.duration.as_secs_f64()
    )
}

/// A table of topics, and of each topic's groups; `disk_stats`: whether
/// the engine counts its disk (the embedded store does, NATS does not).
pub fn stats_table(stats: &StoreStats, disk_stats: bool, out: &mut impl Write) -> io::Result<()> {
    if disk_stats {
        writeln!(out, "store directory: {}", bytes(stats.disk_bytes))?;
        writeln!(
            out,
            "file system: {} free; produce leaves {} free (diskReserveInMB)",
            bytes(stats.disk_free_bytes),
            bytes(stats.disk_reserve_bytes)
        )?;
        if stats.read_only {
            writeln!(
                out,
                "opened read-only: the file system was too full to open the store for writing; free or add space, then open it again"
            )?;
        }
    }
    missing_shards(&stats.missing_shards, out)?;
    if stats.topics.is_empty() {
        return writeln!(out, "no topics");
    }
    writeln!(
        out,
        "{:<24} {:>12} {:>14} {:>7} {:>12} {:>12} {:>14}",
        "topic", "messages", "bytes", "pages", "first id", "last id", "disk bytes"
    )?;
    for topic in &stats.topics {
        writeln!(
            out,
            "{:<24} {:>12} {:>14} {:>7} {:>12} {:>12} {:>14}",
            topic.name,
            topic.messages,
            topic.bytes,
            topic.pages,
            topic.first_id,
            topic.last_id,
            topic.disk_bytes
        )?;
        if topic.deleted_pages > 0 {
            writeln!(
                out,
                "  retention deleted {} pages, {} messages, {}",
                topic.deleted_pages,
                topic.deleted_messages,
                bytes(topic.deleted_bytes)
            )?;
        }
        for group in &topic.groups {
            writeln!(
                out,
                "  group {:<16} acked id {:>12}   lag {:>10} messages {:>14} bytes{}",
                group.name,
                group.acked_id,
                group.lag,
                group.lag_bytes,
                if group.skipped > 0 {
                    format!("   skipped {}", group.skipped)
                } else {
                    String::new()
                }
            )?;
        }
    }
    Ok(())
}

/// One line per shard the store opened without, and what that means.
pub fn missing_shards(missing: &[MissingShardStats], out: &mut impl Write) -> io::Result<()> {
    for shard in missing {
        writeln!(
            out,
            "MISSING  shard {} ({}): {}; its topics are absent and no topic can be created until it is restored",
            shard.shard,
            shard.path.display(),
            shard.reason
        )?;
    }
    Ok(())
}

/// One line per topic: intact with its message count, or what is damaged.
pub fn check_report(report: &CheckReport, out: &mut impl Write) -> io::Result<()> {
    for topic in &report.topics {
        let lost = if topic.lost > 0 {
            format!(" ({} recorded lost by a repair)", topic.lost)
        } else {
            String::new()
        };
        if topic.damage.is_empty() {
            writeln!(
                out,
                "ok       {}: {} messages intact{lost}",
                topic.name, topic.messages
            )?;
            continue;
        }
        writeln!(
            out,
            "DAMAGED  {}: {} messages intact{lost}, {} problem(s)",
            topic.name,
            topic.messages,
            topic.damage.len()
        )?;
        for damage in &topic.damage {
            match damage.id {
                Some(id) => writeln!(out, "           message {id}: {}", damage.reason)?,
                None => writeln!(out, "           {}", damage.reason)?,
            }
        }
    }
    let damaged = report
        .topics
        .iter()
        .filter(|topic| !topic.damage.is_empty())
        .count();
    writeln!(
        out,
        "{} topic(s) checked, {damaged} damaged",
        report.topics.len()
    )
}

/// What a repair found, kept and recorded as lost.
pub fn repair_report(report: &RepairReport, out: &mut impl Write) -> io::Result<()> {
    if !report.changed() {
        writeln!(out, "topic {}: nothing to repair", report.name)?;
    } else {
        writeln!(out, "repaired topic {}", report.name)?;
    }
    for reason in &report.reasons {
        writeln!(out, "  found: {reason}")?;
    }
    match report.kept {
        Some((first, last)) => writeln!(
            out,
            "  kept messages {first}..={last} ({} read intact)",
            report.intact
        )?,
        None => writeln!(out, "  no message retained")?,
    }
    if report.lost_messages > 0 {
        let runs: Vec<String> = report
            .lost
            .iter()
            .take(20)
            .map(|&(first, last)| {
                if first == last {
                    first.to_string()
                } else {
                    format!("{first}..={last}")
                }
            })
            .collect();
        let more = if report.lost.len() > 20 { ", ..." } else { "" };
        writeln!(
            out,
            "  recorded as lost: {} message(s), ids {}{more}; they are never delivered and their ids are not reused",
            report.lost_messages,
            runs.join(", ")
        )?;
    }
    if report.removed_keys > 0 {
        writeln!(
            out,
            "  removed {} key(s) that were no record of the topic",
            report.removed_keys
        )?;
    }
    for (first, last) in &report.pages_rebuilt {
        writeln!(out, "  page {first}..={last}: record rebuilt")?;
    }
    for (group, acked) in &report.groups_moved {
        writeln!(
            out,
            "  group {group}: acknowledged position moved back from {acked} to the last message"
        )?;
    }
    for group in &report.groups_reset {
        writeln!(
            out,
            "  group {group}: its record was damaged; it starts again from the first retained message"
        )?;
    }
    for group in &report.groups_dropped {
        writeln!(out, "  group key {group:?}: names no group; removed")?;
    }
    Ok(())
}
