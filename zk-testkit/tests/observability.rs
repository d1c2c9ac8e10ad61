//! Observability against a real ZooKeeper 3.9 server: every request leaves a `tracing` span with
//! its op, path and outcome; with the `metrics` feature the request, error and connection
//! counters move and the latency histogram fills, as seen by metrics-util's debugging recorder.
//!
//! Everything runs on a current-thread tokio runtime inside a thread-local subscriber and a
//! thread-local recorder, so the two tests (and other test binaries) cannot see each other's data.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;
use zk_testkit::real::{Ensemble, EnsembleOptions, ZkVersion};

/// A closed span: its name and every field it recorded, as text.
#[derive(Debug, Clone)]
struct Closed {
    name: &'static str,
    fields: HashMap<&'static str, String>,
}

/// Collects every span's fields and keeps each span once it closes.
#[derive(Clone, Default)]
struct Capture {
    open: Arc<Mutex<HashMap<u64, Closed>>>,
    closed: Arc<Mutex<Vec<Closed>>>,
}

struct Fields<'a>(&'a mut HashMap<&'static str, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut span = Closed {
            name: attrs.metadata().name(),
            fields: HashMap::new(),
        };
        attrs.record(&mut Fields(&mut span.fields));
        self.open.lock().unwrap().insert(id.into_u64(), span);
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some(span) = self.open.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Fields(&mut span.fields));
        }
    }
    fn on_close(&self, id: Id, _: Context<'_, S>) {
        if let Some(span) = self.open.lock().unwrap().remove(&id.into_u64()) {
            self.closed.lock().unwrap().push(span);
        }
    }
}

fn server() -> Ensemble {
    Ensemble::start(EnsembleOptions::standalone(ZkVersion::V3_9))
        .unwrap_or_else(|e| panic!("ZooKeeper 3.9 did not start: {e}"))
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// One create, one getData of a missing node; returns after the client closed.
async fn two_requests(connect: &str) {
    let c = zk_tokio::connect(connect).await.expect("connect");
    c.create("/obs", "x").await.expect("create /obs");
    let missing = c.get_data("/obs-missing").await;
    assert!(
        matches!(missing, Err(zk_client::Error::NoNode { .. })),
        "{missing:?}"
    );
    c.close().await;
}

#[test]
fn a_request_leaves_a_span_with_op_path_and_result() {
    let ens = server();
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, || {
        current_thread().block_on(two_requests(&ens.connect_string()));
    });
    let spans = capture.closed.lock().unwrap().clone();
    let requests: Vec<&Closed> = spans.iter().filter(|s| s.name == "request").collect();
    let find = |path: &str| {
        requests
            .iter()
            .find(|s| s.fields.get("path").map(String::as_str) == Some(path))
            .unwrap_or_else(|| panic!("no request span for {path}: {spans:?}"))
    };
    let create = find("/obs");
    assert_eq!(create.fields.get("op").map(String::as_str), Some("Create"));
    assert_eq!(create.fields.get("result").map(String::as_str), Some("ok"));
    assert!(create.fields.contains_key("id"), "{create:?}");
    assert!(create.fields.contains_key("elapsed_us"), "{create:?}");
    let get = find("/obs-missing");
    assert_eq!(get.fields.get("op").map(String::as_str), Some("GetData"));
    assert_eq!(get.fields.get("result").map(String::as_str), Some("error"));
    assert!(
        get.fields
            .get("error")
            .is_some_and(|e| e.contains("NoNode")),
        "{get:?}"
    );
}

#[test]
fn metrics_count_requests_errors_and_connects() {
    let ens = server();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        current_thread().block_on(two_requests(&ens.connect_string()));
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
