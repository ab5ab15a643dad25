//! Prometheus text-format metrics, kept in a few mutex-guarded maps: requests,
//! tool calls by tool and outcome, call latency, sandbox stops and plugin loads.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];
/// Tool-call outcomes that mean the sandbox stopped the call (deadline, memory,
/// output cap, crash).
const SANDBOX_STOPS: [&str; 5] = ["timeout", "memory_limit", "crashed", "output_too_large", "http_limit"];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(&'static str, u16), u64>,
    request_latency: BTreeMap<&'static str, Histogram>,
    tool_calls: BTreeMap<String, BTreeMap<&'static str, u64>>,
    tool_latency: BTreeMap<String, Histogram>,
    plugin_loads: BTreeMap<&'static str, u64>,
    plugins_loaded: u64,
    plugins_failed: u64,
    /// Rescans by trigger and result.
    reloads: BTreeMap<(&'static str, &'static str), u64>,
    reload_latency: BTreeMap<&'static str, Histogram>,
    last_reload_unix_s: f64,
    /// Outbound HTTP requests by plugin and outcome, their latency, and bytes
    /// by plugin and direction.
    egress: BTreeMap<(String, &'static str), u64>,
    egress_latency: BTreeMap<String, Histogram>,
    egress_bytes: BTreeMap<(String, &'static str), u64>,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// A Prometheus label value, escaped.
pub fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn request(&self, path: &'static str, status: u16, took: Duration) {
        self.with(|m| {
            *m.requests.entry((path, status)).or_default() += 1;
            m.request_latency.entry(path).or_default().observe(took.as_secs_f64());
        });
    }

    /// `outcome`: ok, tool_error, timeout, memory_limit, crashed, ...
    pub fn tool_call(&self, tool: &str, outcome: &'static str, took: Duration) {
        self.with(|m| {
            // Look up by &str first: no allocation once a tool has been seen.
            match m.tool_calls.get_mut(tool) {
                Some(by_outcome) => *by_outcome.entry(outcome).or_default() += 1,
                None => {
                    m.tool_calls.entry(tool.to_owned()).or_default().insert(outcome, 1);
                }
            }
            match m.tool_latency.get_mut(tool) {
                Some(h) => h.observe(took.as_secs_f64()),
                None => m.tool_latency.entry(tool.to_owned()).or_default().observe(took.as_secs_f64()),
            }
        });
    }

    /// Counts load attempts (a rescan loads only what changed).
    pub fn plugin_loads(&self, loaded: usize, failed: usize) {
        self.with(|m| {
            *m.plugin_loads.entry("ok").or_default() += loaded as u64;
            *m.plugin_loads.entry("failed").or_default() += failed as u64;
        });
    }

    /// Plugins serving now, and files that failed.
    pub fn plugins(&self, loaded: usize, failed: usize) {
        self.with(|m| {
            m.plugins_loaded = loaded as u64;
            m.plugins_failed = failed as u64;
        });
    }

    /// A rescan of the plugins folder (`trigger`: start, watch, signal, admin).
    pub fn reload(&self, trigger: &'static str, ok: bool, took: Duration) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        self.with(|m| {
            *m.reloads.entry((trigger, if ok { "ok" } else { "error" })).or_default() += 1;
            m.reload_latency.entry(trigger).or_default().observe(took.as_secs_f64());
            m.last_reload_unix_s = now.as_secs_f64();
        });
    }

    /// Rescans so far and when the last one ran (Unix seconds).
    pub fn reload_summary(&self) -> (u64, f64) {
        self.with(|m| (m.reloads.values().sum(), m.last_reload_unix_s))
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let _ = writeln!(out, "# HELP moat_http_requests_total HTTP requests by path and status.");
        let _ = writeln!(out, "# TYPE moat_http_requests_total counter");
        for ((path, status), n) in &m.requests {
            let _ = writeln!(out, "moat_http_requests_total{{path=\"{}\",status=\"{status}\"}} {n}", escape(path));
        }
        histogram(&mut out, "moat_http_request_duration_seconds", "HTTP request latency.", "path", &m.request_latency);
        let _ = writeln!(out, "# HELP moat_tool_calls_total Tool calls by tool and outcome.");
        let _ = writeln!(out, "# TYPE moat_tool_calls_total counter");
        for (tool, by_outcome) in &m.tool_calls {
            for (outcome, n) in by_outcome {
                let _ = writeln!(out, "moat_tool_calls_total{{tool=\"{}\",outcome=\"{outcome}\"}} {n}", escape(tool));
            }
        }
        histogram(&mut out, "moat_tool_call_duration_seconds", "Tool call latency.", "tool", &m.tool_latency);
        let _ = writeln!(out, "# HELP moat_sandbox_stops_total Calls ended by the sandbox, by reason.");
        let _ = writeln!(out, "# TYPE moat_sandbox_stops_total counter");
        let mut stops: BTreeMap<&str, u64> = BTreeMap::new();
        for (outcome, n) in m.tool_calls.values().flatten() {
            if SANDBOX_STOPS.contains(outcome) {
                *stops.entry(outcome).or_default() += n;
            }
        }
        for reason in SANDBOX_STOPS {
            let _ =
                writeln!(out, "moat_sandbox_stops_total{{reason=\"{reason}\"}} {}", stops.get(reason).unwrap_or(&0));
        }
        let _ = writeln!(out, "# HELP moat_egress_requests_total Outbound HTTP requests of plugins by outcome.");
        let _ = writeln!(out, "# TYPE moat_egress_requests_total counter");
        for ((plugin, outcome), n) in &m.egress {
            let _ =
                writeln!(out, "moat_egress_requests_total{{plugin=\"{}\",outcome=\"{outcome}\"}} {n}", escape(plugin));
        }
        histogram(
            &mut out,
            "moat_egress_request_duration_seconds",
            "Outbound HTTP request time, from the request to the end of its response.",
            "plugin",
            &m.egress_latency,
        );
        let _ = writeln!(out, "# HELP moat_egress_bytes_total Outbound HTTP body bytes by plugin and direction.");
        let _ = writeln!(out, "# TYPE moat_egress_bytes_total counter");
        for ((plugin, direction), n) in &m.egress_bytes {
            let _ =
                writeln!(out, "moat_egress_bytes_total{{plugin=\"{}\",direction=\"{direction}\"}} {n}", escape(plugin));
        }
        let _ = writeln!(out, "# HELP moat_plugin_loads_total Plugin loads by outcome.");
        let _ = writeln!(out, "# TYPE moat_plugin_loads_total counter");
        for outcome in ["ok", "failed"] {
            let n = m.plugin_loads.get(outcome).unwrap_or(&0);
            let _ = writeln!(out, "moat_plugin_loads_total{{outcome=\"{outcome}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP moat_plugins Plugins by state.");
        let _ = writeln!(out, "# TYPE moat_plugins gauge");
        let _ = writeln!(out, "moat_plugins{{state=\"loaded\"}} {}", m.plugins_loaded);
        let _ = writeln!(out, "moat_plugins{{state=\"failed\"}} {}", m.plugins_failed);
        let _ = writeln!(
            out,
            "# HELP moat_plugin_versions_alive Loaded plugin versions in memory (serving, or held by calls in flight)."
        );
        let _ = writeln!(out, "# TYPE moat_plugin_versions_alive gauge");
        let _ = writeln!(out, "moat_plugin_versions_alive {}", crate::runtime::versions_alive());
        let _ = writeln!(out, "# HELP moat_reloads_total Rescans of the plugins folder by trigger and result.");
        let _ = writeln!(out, "# TYPE moat_reloads_total counter");
        for ((trigger, result), n) in &m.reloads {
            let _ = writeln!(out, "moat_reloads_total{{trigger=\"{trigger}\",result=\"{result}\"}} {n}");
        }
        histogram(
            &mut out,
            "moat_reload_duration_seconds",
            "Rescan time (reading, compiling, swapping).",
            "trigger",
            &m.reload_latency,
        );
        let _ = writeln!(out, "# HELP moat_last_reload_timestamp_seconds When the plugins folder was last rescanned.");
        let _ = writeln!(out, "# TYPE moat_last_reload_timestamp_seconds gauge");
        let _ = writeln!(out, "moat_last_reload_timestamp_seconds {}", m.last_reload_unix_s);
        out
    }
}

impl crate::runtime::EgressMetrics for Metrics {
    fn egress(&self, plugin: &str, outcome: &'static str, took: Duration, sent: u64, received: u64) {
        self.with(|m| {
            *m.egress.entry((plugin.to_owned(), outcome)).or_default() += 1;
            m.egress_latency.entry(plugin.to_owned()).or_default().observe(took.as_secs_f64());
            *m.egress_bytes.entry((plugin.to_owned(), "sent")).or_default() += sent;
            *m.egress_bytes.entry((plugin.to_owned(), "received")).or_default() += received;
        });
    }
}

fn histogram<K: AsRef<str>>(out: &mut String, name: &str, help: &str, label: &str, series: &BTreeMap<K, Histogram>) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (key, h) in series {
        let key = escape(key.as_ref());
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{{label}=\"{key}\",le=\"{b}\"}} {}", h.counts[i]);
        }
        let _ = writeln!(out, "{name}_bucket{{{label}=\"{key}\",le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "{name}_sum{{{label}=\"{key}\"}} {}", h.sum);
        let _ = writeln!(out, "{name}_count{{{label}=\"{key}\"}} {}", h.count);
    }
}
