//! Observability against a real ZooKeeper 3.9 server: with the `metrics` feature the request,
//! error and connection counters move and the latency histogram fills, as seen by metrics-util's
//! debugging recorder (thread-local, around a current-thread runtime).

mod observed;

use std::collections::HashMap;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;

#[test]
fn metrics_count_requests_errors_and_connects() {
    let ens = observed::server();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        observed::current_thread().block_on(observed::two_requests(&ens.connect_string()));
    });
    let mut counters: HashMap<String, u64> = HashMap::new();
    let mut histograms: HashMap<String, usize> = HashMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let (kind, key) = key.into_parts();
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        match (kind, value) {
            (MetricKind::Counter, DebugValue::Counter(n)) => {
                counters.insert(name, n);
            }
            (MetricKind::Histogram, DebugValue::Histogram(v)) => {
                histograms.insert(name, v.len());
            }
            _ => {}
        }
    }
    let counter = |name: &str| counters.get(name).copied().unwrap_or(0);
    assert_eq!(
        counter("zk_client_requests_total{op=create}"),
        1,
        "{counters:?}"
    );
    assert_eq!(
        counter("zk_client_requests_total{op=getData}"),
        1,
        "{counters:?}"
    );
    assert_eq!(
        counter("zk_client_request_errors_total{op=getData}"),
        1,
        "{counters:?}"
    );
    assert_eq!(
        counter("zk_client_request_errors_total{op=create}"),
        0,
        "{counters:?}"
    );
    assert_eq!(counter("zk_client_connects_total{}"), 1, "{counters:?}");
    assert!(
        counter("zk_client_session_state_changes_total{state=connected}") >= 1,
        "{counters:?}"
    );
    assert_eq!(
        histograms.get("zk_client_request_duration_seconds{op=create}"),
        Some(&1),
        "{histograms:?}"
    );
}
