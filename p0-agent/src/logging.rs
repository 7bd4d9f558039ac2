//! Log lines as the platform reads them: plain text by default; on Cloud Run, one JSON object
//! per line in the shape Cloud Logging reads (`severity`, `message`, `time`, and
//! `logging.googleapis.com/trace` for the call that logged it, from Cloud Run's
//! `X-Cloud-Trace-Context` header), the event's other fields beside them.

use serde_json::{Map, Value};
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The span field that carries a call's trace (`projects/P/traces/T`).
pub const TRACE_FIELD: &str = "trace";

/// Installs the process's logger: INFO and up unless `RUST_LOG` says otherwise; JSON for
/// Cloud Logging when `cloud_logging`.
pub fn init(cloud_logging: bool) {
    let filter = EnvFilter::builder()
        .with_default_directive(tracing_subscriber::filter::LevelFilter::INFO.into())
        .from_env_lossy();
    if cloud_logging {
        let _ = tracing_subscriber::registry()
            .with(TraceLayer)
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(CloudLogging)
                    .with_writer(std::io::stdout)
                    .with_filter(filter),
            )
            .try_init();
    } else {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
    }
}

/// Cloud Logging's severity for a level.
fn severity(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        _ => "DEBUG",
    }
}

/// A span's trace, kept where the formatter finds it.
struct Trace(String);

/// Keeps the [`TRACE_FIELD`] of each new span.
struct TraceLayer;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for TraceLayer {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut fields = Map::new();
        attrs.record(&mut Fields(&mut fields));
        if let (Some(Value::String(trace)), Some(span)) = (fields.remove(TRACE_FIELD), ctx.span(id))
        {
            span.extensions_mut().insert(Trace(trace));
        }
    }
}

/// One JSON object per event, in Cloud Logging's shape.
struct CloudLogging;

impl<S, N> FormatEvent<S, N> for CloudLogging
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Map::new();
        event.record(&mut Fields(&mut fields));
        let mut line = Map::new();
        line.insert("severity".into(), severity(event.metadata().level()).into());
        line.insert(
            "message".into(),
            fields
                .remove("message")
                .unwrap_or(Value::String(String::new())),
        );
        line.insert("time".into(), chrono::Utc::now().to_rfc3339().into());
        line.insert("target".into(), event.metadata().target().into());
        if let Some(scope) = ctx.event_scope() {
            if let Some(trace) = scope
                .from_root()
                .filter_map(|span| span.extensions().get::<Trace>().map(|t| t.0.clone()))
                .last()
            {
                line.insert("logging.googleapis.com/trace".into(), trace.into());
            }
        }
        for (k, v) in fields {
            line.entry(k).or_insert(v);
        }
        let text = serde_json::to_string(&Value::Object(line)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// Records an event's or a span's fields as JSON values.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

/// The trace of a call as Cloud Logging names it, from Cloud Run's
/// `X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=1` (or W3C `traceparent: 00-TRACE_ID-…`).
pub fn trace_of(
    project: &str,
    cloud_trace: Option<&str>,
    traceparent: Option<&str>,
) -> Option<String> {
    let id = cloud_trace
        .and_then(|h| h.split('/').next())
        .or_else(|| traceparent.and_then(|h| h.split('-').nth(1)))
        .filter(|id| {
            !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
        })?;
    Some(format!("projects/{project}/traces/{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_come_from_either_header_and_nothing_else() {
        assert_eq!(
            trace_of("proj", Some("105445aa7843bc8bf206b12000100000/1;o=1"), None).as_deref(),
            Some("projects/proj/traces/105445aa7843bc8bf206b12000100000")
        );
        assert_eq!(
            trace_of(
                "proj",
                None,
                Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            )
            .as_deref(),
            Some("projects/proj/traces/4bf92f3577b34da6a3ce929d0e0e4736")
        );
        // A header that is not a trace id is not copied into the logs.
        assert_eq!(trace_of("proj", Some("\"x\":1}/1"), None), None);
        assert_eq!(trace_of("proj", None, None), None);
    }
}
