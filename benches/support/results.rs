//! Criterion's settings, and what it measured, read back from its output
//! directory: below the report and every benchmark that reads its own
//! results.

use std::path::Path;
use std::time::Duration;

/// Criterion's settings for every group.
#[derive(Debug, Clone, Copy)]
pub struct CriterionSettings {
    /// Samples per benchmark.
    pub sample_size: usize,
    /// Warm-up time.
    pub warm_up: Duration,
    /// Target measurement time.
    pub measurement: Duration,
}

/// Criterion's median time per iteration of the benchmark whose output
/// directory is `benchmark_dir`, in ns.
pub fn median_at(benchmark_dir: &Path) -> f64 {
    let path = benchmark_dir.join("new/estimates.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("read Criterion's {}: {error}", path.display()));
    let estimates: serde_json::Value = serde_json::from_str(&text).expect("Criterion's JSON");
    estimates["median"]["point_estimate"]
        .as_f64()
        .unwrap_or_else(|| panic!("no median in {}", path.display()))
}
