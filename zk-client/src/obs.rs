//! Observability: a `tracing` span per request and, with the `metrics` feature, counters, gauges
//! and a latency histogram through the `metrics` facade.
//!
//! Both must cost next to nothing when nobody listens, because they sit on the engine's hot path
//! (submit and reply dispatch run once per request). So:
//! - the request span is created through `tracing`'s callsite check, which is one relaxed atomic
//!   load when no subscriber wants it; its fields (op, path) are evaluated only when it is
//!   enabled, and it is boxed (the only allocation) only then;
//! - metric keys are `static`s built at compile time (the op label comes from a table of static
//!   labels, not a formatted string), so recording into the default no-op recorder allocates
//!   nothing; without the feature every call here compiles to nothing.
//!
//! Names (all prefixed `zk_client_`): `requests_total{op}` (every resolved request),
//! `request_errors_total{op}`, `request_duration_seconds{op}` (submit to reply), `connects_total`,
//! `connect_failures_total`, `session_state_changes_total{state}`, `watches` (local watchers
//! registered), `requests_in_flight` (sent, not answered), `requests_queued` (submitted, not yet
//! sent).

use std::time::Instant;

use tracing::Span;
use zk_core::proto::{OpCode, Request, Response};
use zk_core::{Error, RequestId};

/// Per-request observability state kept with the reply's mailbox. Without the `metrics` feature
/// and without an interested subscriber this is one `None` pointer.
pub(crate) struct RequestObs {
    trace: Option<Box<Trace>>,
    /// The op and submit time, for the metrics (none for a mailbox opened without a request).
    #[cfg(feature = "metrics")]
    timing: Option<(OpCode, Instant)>,
}

/// A live request span and when the request was submitted.
struct Trace {
    span: Span,
    start: Instant,
}

/// The span of one request, or a disabled span when no subscriber wants it (nothing is evaluated
/// or allocated then). Target `zk_client::request`, level DEBUG, name `request`; fields `op`,
/// `path` (the client path, `""` if none), `id` (the client's request number), and once the
/// reply is in: `result` (`"ok"` or `"error"`), `error` (the error, Debug), `elapsed_us`.
#[inline]
pub(crate) fn request_span(request: &Request) -> Span {
    tracing::debug_span!(
        target: "zk_client::request",
        "request",
        op = ?request.op_code(),
        path = request.path(),
        id = tracing::field::Empty,
        result = tracing::field::Empty,
        error = tracing::field::Empty,
        elapsed_us = tracing::field::Empty,
    )
}

impl RequestObs {
    /// Starts observing request `id`, submitted at `now` with `span` (from [`request_span`]).
    #[inline]
    pub(crate) fn start(span: Span, id: RequestId, op: OpCode, now: Instant) -> Self {
        let _ = op;
        let trace = if span.is_disabled() {
            None
        } else {
            span.record("id", id.0);
            Some(Box::new(Trace { span, start: now }))
        };
        RequestObs {
            trace,
            #[cfg(feature = "metrics")]
            timing: Some((op, now)),
        }
    }

    /// Nothing to observe: a mailbox opened for a request this engine did not submit.
    pub(crate) fn untracked() -> Self {
        RequestObs {
            trace: None,
            #[cfg(feature = "metrics")]
            timing: None,
        }
    }

    /// The request resolved at `now` with `result`: closes its span with the outcome and records
    /// its metrics.
    #[inline]
    pub(crate) fn finish(self, result: &Result<Response, Error>, now: Instant) {
        if let Some(trace) = self.trace {
            // Saturating: a mailbox may be ended by a clock other than the one that started it.
            let elapsed = now.saturating_duration_since(trace.start);
            finish_span(&trace.span, result.as_ref().err(), elapsed);
        }
        #[cfg(feature = "metrics")]
        if let Some((op, start)) = self.timing {
            metrics_impl::request_done(op, result.is_err(), now.saturating_duration_since(start));
        }
        let _ = (result, now);
    }
}

/// Records the outcome on a live span (out of line: only runs with a subscriber).
#[cold]
fn finish_span(span: &Span, error: Option<&Error>, elapsed: std::time::Duration) {
    match error {
        None => span.record("result", "ok"),
        Some(e) => span
            .record("result", "error")
            .record("error", tracing::field::debug(e)),
    };
    span.record(
        "elapsed_us",
        u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
    );
}

/// A request was refused before it was sent (the session is over, a bad path...): its span, if
/// live, ends with the error; it counts as a request and an error.
#[inline]
pub(crate) fn refused(span: &Span, op: OpCode, error: &Error) {
    if !span.is_disabled() {
        finish_span(span, Some(error), std::time::Duration::ZERO);
    }
    #[cfg(feature = "metrics")]
    metrics_impl::request_done(op, true, std::time::Duration::ZERO);
    let _ = op;
}

/// A connection attempt to `host` (connection `conn`) began.
pub(crate) fn connecting(conn: u64, host: &zk_core::HostAddr) {
    tracing::debug!(target: "zk_client::connection", conn, host = %host, "connecting");
}

/// Connection `conn` is up.
pub(crate) fn connected(conn: u64) {
    tracing::debug!(target: "zk_client::connection", conn, "connected");
    #[cfg(feature = "metrics")]
    metrics::counter!("zk_client_connects_total").increment(1);
}

/// Connection `conn` could not be made, or ended, for `reason`.
pub(crate) fn connection_failed(conn: u64, reason: &dyn std::fmt::Display, established: bool) {
    if established {
        tracing::debug!(target: "zk_client::connection", conn, reason = %reason, "connection closed");
    } else {
        tracing::debug!(target: "zk_client::connection", conn, reason = %reason, "connect failed");
        #[cfg(feature = "metrics")]
        metrics::counter!("zk_client_connect_failures_total").increment(1);
    }
}

/// A task waiting for request `id`, the session's one reply in flight, took the reader's place:
/// it will read the socket itself (`task_reads`: async-std and smol). TRACE under
/// `zk_client::reads`.
#[inline]
pub(crate) fn task_reads(id: RequestId) {
    tracing::trace!(target: "zk_client::reads", id = id.0, "a waiting task took the reader's place");
}

/// The reader's place went back to the driver from the task waiting for `holder`: another
/// request is in flight too (`task_reads`). TRACE under `zk_client::reads`, with a `holder`
/// field.
#[inline]
pub(crate) fn reads_handed_back(holder: RequestId) {
    tracing::trace!(
        target: "zk_client::reads",
        holder = holder.0,
        "the reader's place went back to the driver: more than one reply in flight"
    );
}

/// The driver took the reader's place back from a task woken to read that did not (its future is
/// not being polled): the session's bytes waited for it for two to three of the driver's 10 ms
/// looks. DEBUG under `zk_client::reads`: a program that keeps reply futures aside unpolled sees
/// why its other calls were slower.
pub(crate) fn reads_taken_back() {
    tracing::debug!(
        target: "zk_client::reads",
        "the driver took the reader's place back from a task that did not read"
    );
}

/// The session's state changed to `state`.
#[inline]
pub(crate) fn state_changed(state: zk_core::SessionState) {
    tracing::debug!(target: "zk_client::session", state = ?state, "session state");
    #[cfg(feature = "metrics")]
    metrics_impl::state_changed(state);
    let _ = state;
}

/// The gauges after a change: local watchers registered, requests in flight and queued.
#[inline]
pub(crate) fn gauges(watches: usize, in_flight: usize, queued: usize) {
    #[cfg(feature = "metrics")]
    {
        metrics::gauge!("zk_client_watches").set(watches as f64);
        metrics::gauge!("zk_client_requests_in_flight").set(in_flight as f64);
        metrics::gauge!("zk_client_requests_queued").set(queued as f64);
    }
    let _ = (watches, in_flight, queued);
}

#[cfg(feature = "metrics")]
mod metrics_impl {
    use std::time::Duration;

    use metrics::{Key, Label, Level, Metadata};
    use zk_core::proto::OpCode;
    use zk_core::SessionState;

    static META: Metadata<'static> =
        Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

    /// One static key per op and metric: labels must be 'static for recording to allocate nothing.
    macro_rules! op_keys {
        ($($op:ident => $name:literal),* $(,)?) => {
            /// The (requests, errors, duration) keys of `op`.
            fn keys(op: OpCode) -> (&'static Key, &'static Key, &'static Key) {
                match op {
                    $(OpCode::$op => {
                        static L: [Label; 1] = [Label::from_static_parts("op", $name)];
                        static R: Key = Key::from_static_parts("zk_client_requests_total", &L);
                        static E: Key = Key::from_static_parts("zk_client_request_errors_total", &L);
                        static D: Key = Key::from_static_parts("zk_client_request_duration_seconds", &L);
                        (&R, &E, &D)
                    })*
                    _ => {
                        static L: [Label; 1] = [Label::from_static_parts("op", "other")];
                        static R: Key = Key::from_static_parts("zk_client_requests_total", &L);
                        static E: Key = Key::from_static_parts("zk_client_request_errors_total", &L);
                        static D: Key = Key::from_static_parts("zk_client_request_duration_seconds", &L);
                        (&R, &E, &D)
                    }
                }
            }
        };
    }

    op_keys! {
        Create => "create", Create2 => "create2", CreateContainer => "createContainer",
        CreateTtl => "createTTL", Delete => "delete", Exists => "exists", GetData => "getData",
        SetData => "setData", GetAcl => "getACL", SetAcl => "setACL",
        GetChildren => "getChildren", GetChildren2 => "getChildren2", Sync => "sync",
        Ping => "ping", Check => "check", Multi => "multi", MultiRead => "multiRead",
        Reconfig => "reconfig", CheckWatches => "checkWatches", RemoveWatches => "removeWatches",
        Auth => "auth", SetWatches => "setWatches", SetWatches2 => "setWatches2", Sasl => "sasl",
        GetEphemerals => "getEphemerals", GetAllChildrenNumber => "getAllChildrenNumber",
        AddWatch => "addWatch", WhoAmI => "whoAmI", CloseSession => "closeSession",
    }

    pub(super) fn request_done(op: OpCode, error: bool, elapsed: Duration) {
        let (r, e, d) = keys(op);
        metrics::with_recorder(|rec| {
            rec.register_counter(r, &META).increment(1);
            if error {
                rec.register_counter(e, &META).increment(1);
            }
            rec.register_histogram(d, &META)
                .record(elapsed.as_secs_f64());
        });
    }

    pub(super) fn state_changed(state: SessionState) {
        let name = match state {
            SessionState::Connecting => "connecting",
            SessionState::Connected => "connected",
            SessionState::ConnectedReadOnly => "connectedReadOnly",
            SessionState::Suspended => "suspended",
            SessionState::Lost(_) => "lost",
            #[allow(unreachable_patterns)]
            _ => "other",
        };
        metrics::counter!("zk_client_session_state_changes_total", "state" => name).increment(1);
    }
}
