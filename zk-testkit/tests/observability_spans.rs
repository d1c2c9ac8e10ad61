//! Observability against a real ZooKeeper 3.9 server: every request leaves a `tracing` span with
//! its op, path and outcome.
//!
//! This test has a binary of its own and installs its subscriber as the process's global default:
//! tracing caches each callsite's interest process-wide, computed against the default subscriber
//! of whichever thread reaches the callsite first, so a scoped (`with_default`) subscriber next to
//! another test that runs the client without one can find its spans disabled (tokio-rs/tracing
//! #3611; it happened here in CI).

mod observed;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

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

#[test]
fn a_request_leaves_a_span_with_op_path_and_result() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let ens = observed::server();
    observed::current_thread().block_on(observed::two_requests(&ens.connect_string()));
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
