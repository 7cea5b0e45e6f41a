//! Counters and histograms kept in memory as things happen, and the Prometheus text exposition
//! format (version 0.0.4) they are scraped in. Shared by the server's `/metrics` and the agent's.
//! No I/O: the caller serves the text.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the histograms' buckets: from a fast API call to a slow hook.
pub const BUCKETS: [f64; 14] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 300.0];

/// Label names and values of one series, in the order they are written.
pub type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A metric family: its name, type and help text.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Histogram {
    /// Cumulative: observations at most each bound.
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// Counters and histograms by family name and labels.
#[derive(Debug, Default)]
pub struct Registry {
    counters: Mutex<BTreeMap<(&'static str, Labels), u64>>,
    histograms: Mutex<BTreeMap<(&'static str, Labels), Histogram>>,
}

impl Registry {
    /// Adds one to a counter.
    pub fn count(&self, name: &'static str, labels: Labels) {
        let mut counters = self.counters.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *counters.entry((name, labels)).or_default() += 1;
    }

    /// Records one observation in a histogram.
    pub fn observe(&self, name: &'static str, labels: Labels, elapsed: Duration) {
        let mut histograms = self.histograms.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        histograms.entry((name, labels)).or_default().observe(elapsed.as_secs_f64());
    }

    /// The exposition of `families` (in their order), with the registry's counters and
    /// histograms and the `gauges` read now.
    pub fn render(&self, families: &[Family], gauges: &[(&'static str, Labels, f64)]) -> String {
        let mut samples: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (name, labels, value) in gauges {
            samples.entry(name).or_default().push(format!("{name}{} {}", label_text(labels, None), number(*value)));
        }
        {
            let counters = self.counters.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for ((name, labels), value) in counters.iter() {
                samples.entry(name).or_default().push(format!("{name}{} {value}", label_text(labels, None)));
            }
        }
        {
            let histograms = self.histograms.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for ((name, labels), histogram) in histograms.iter() {
                let lines = samples.entry(name).or_default();
                for (bound, count) in BUCKETS.iter().zip(histogram.counts) {
                    lines.push(format!("{name}_bucket{} {count}", label_text(labels, Some(number(*bound)))));
                }
                lines.push(format!("{name}_bucket{} {}", label_text(labels, Some("+Inf".into())), histogram.count));
                lines.push(format!("{name}_sum{} {}", label_text(labels, None), number(histogram.sum)));
                lines.push(format!("{name}_count{} {}", label_text(labels, None), histogram.count));
            }
        }
        let mut text = String::new();
        for family in families {
            let _ = writeln!(
                text,
                "# HELP {} {}\n# TYPE {} {}",
                family.name,
                family.help,
                family.name,
                family.kind.as_str()
            );
            for line in samples.get(family.name).into_iter().flatten() {
                let _ = writeln!(text, "{line}");
            }
        }
        text
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escaped(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `{a="1",b="2"}`, with a histogram bucket's `le` last; nothing for no labels.
fn label_text(labels: &[(&str, String)], le: Option<String>) -> String {
    let all: Vec<String> = labels
        .iter()
        .map(|(key, value)| format!("{key}=\"{}\"", escaped(value)))
        .chain(le.map(|bound| format!("le=\"{bound}\"")))
        .collect();
    if all.is_empty() { String::new() } else { format!("{{{}}}", all.join(",")) }
}

/// A number as Prometheus writes it.
fn number(value: f64) -> String {
    if value.is_infinite() { if value > 0.0 { "+Inf".into() } else { "-Inf".into() } } else { format!("{value}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAMILIES: [Family; 3] = [
        Family { name: "up", kind: Kind::Gauge, help: "Up." },
        Family { name: "calls_total", kind: Kind::Counter, help: "Calls." },
        Family { name: "call_seconds", kind: Kind::Histogram, help: "Call time." },
    ];

    #[test]
    fn the_exposition_has_help_type_and_cumulative_buckets() {
        let registry = Registry::default();
        registry.count("calls_total", vec![("op", "a\"b".into())]);
        registry.count("calls_total", vec![("op", "a\"b".into())]);
        registry.observe("call_seconds", vec![], Duration::from_millis(3));
        registry.observe("call_seconds", vec![], Duration::from_secs(2));
        let text = registry.render(&FAMILIES, &[("up", vec![], 1.0)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[..3], ["# HELP up Up.", "# TYPE up gauge", "up 1"]);
        assert!(text.contains("calls_total{op=\"a\\\"b\"} 2\n"));
        assert!(text.contains("call_seconds_bucket{le=\"0.001\"} 0\n"));
        assert!(text.contains("call_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(text.contains("call_seconds_bucket{le=\"2.5\"} 2\n"));
        assert!(text.contains("call_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("call_seconds_sum 2.003\ncall_seconds_count 2\n"));
    }

    #[test]
    fn families_without_samples_still_say_what_they_are() {
        let text = Registry::default().render(&FAMILIES, &[]);
        assert_eq!(text.lines().count(), 6);
    }
}
