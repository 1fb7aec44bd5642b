//! Counters as plain snapshots: per leg, per port range and per SBC, with
//! a Prometheus text rendering for whatever serves `/metrics`.

use std::fmt::Write as _;

use proto::snapshot::RangeId;

use crate::drops::DropCounts;

/// Traffic through one leg (or summed over many). Input counts packets
/// accepted from the leg's endpoint; output counts packets sent to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    pub packets_in: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
    pub rtcp_in: u64,
    pub rtcp_out: u64,
    pub drops: DropCounts,
}

impl Traffic {
    pub fn add(&mut self, o: &Traffic) {
        self.packets_in += o.packets_in;
        self.bytes_in += o.bytes_in;
        self.packets_out += o.packets_out;
        self.bytes_out += o.bytes_out;
        self.rtcp_in += o.rtcp_in;
        self.rtcp_out += o.rtcp_out;
        self.drops.add(&o.drops);
    }
}

/// One port range's share: live streams, and traffic of live and released legs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeCounters {
    pub range_id: RangeId,
    pub streams: u32,
    pub traffic: Traffic,
}

/// The whole SBC at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SbcCounters {
    pub calls: u32,
    pub streams: u32,
    /// Includes drops on ports no stream owns.
    pub traffic: Traffic,
    /// Datagrams the core forwarded that the socket refused.
    pub send_errors: u64,
    /// Media events lost because the queue to the brain was full.
    pub events_dropped: u64,
    pub ranges: Vec<RangeCounters>,
}

impl SbcCounters {
    /// Adds a worker's share (ranges merged by id).
    pub fn merge(&mut self, o: &SbcCounters) {
        self.calls += o.calls;
        self.streams += o.streams;
        self.traffic.add(&o.traffic);
        self.send_errors += o.send_errors;
        self.events_dropped += o.events_dropped;
        for r in &o.ranges {
            match self.ranges.iter_mut().find(|x| x.range_id == r.range_id) {
                Some(x) => {
                    x.streams += r.streams;
                    x.traffic.add(&r.traffic);
                }
                None => self.ranges.push(*r),
            }
        }
        self.ranges.sort_by_key(|r| r.range_id);
    }

    /// Prometheus text exposition (counters and gauges, `sbc_` prefix).
    pub fn to_prometheus(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# TYPE sbc_calls gauge\nsbc_calls {}", self.calls);
        let _ = writeln!(s, "# TYPE sbc_streams gauge\nsbc_streams {}", self.streams);
        let _ = writeln!(
            s,
            "# TYPE sbc_send_errors_total counter\nsbc_send_errors_total {}",
            self.send_errors
        );
        let _ = writeln!(
            s,
            "# TYPE sbc_events_dropped_total counter\nsbc_events_dropped_total {}",
            self.events_dropped
        );
        traffic_lines(&mut s, "sbc", &[(String::new(), &self.traffic)]);
        if !self.ranges.is_empty() {
            let _ = writeln!(s, "# TYPE sbc_range_streams gauge");
            for r in &self.ranges {
                let _ = writeln!(
                    s,
                    "sbc_range_streams{{range=\"{}\"}} {}",
                    r.range_id.0, r.streams
                );
            }
            let ranges: Vec<(String, &Traffic)> = self
                .ranges
                .iter()
                .map(|r| (format!("range=\"{}\"", r.range_id.0), &r.traffic))
                .collect();
            traffic_lines(&mut s, "sbc_range", &ranges);
        }
        s
    }
}

/// One family at a time, every labelled series of it together, as the
/// text format requires.
fn traffic_lines(s: &mut String, prefix: &str, series: &[(String, &Traffic)]) {
    type Field = fn(&Traffic) -> u64;
    let fields: [(&str, Field); 6] = [
        ("packets_in_total", |t| t.packets_in),
        ("bytes_in_total", |t| t.bytes_in),
        ("packets_out_total", |t| t.packets_out),
        ("bytes_out_total", |t| t.bytes_out),
        ("rtcp_in_total", |t| t.rtcp_in),
        ("rtcp_out_total", |t| t.rtcp_out),
    ];
    for (name, get) in fields {
        let _ = writeln!(s, "# TYPE {prefix}_{name} counter");
        for (label, t) in series {
            if label.is_empty() {
                let _ = writeln!(s, "{prefix}_{name} {}", get(t));
            } else {
                let _ = writeln!(s, "{prefix}_{name}{{{label}}} {}", get(t));
            }
        }
    }
    let _ = writeln!(s, "# TYPE {prefix}_drops_total counter");
    for (label, t) in series {
        let sep = if label.is_empty() { "" } else { "," };
        for (reason, n) in t.drops.iter() {
            let _ = writeln!(
                s,
                "{prefix}_drops_total{{{label}{sep}reason=\"{}\"}} {n}",
                reason.as_str()
            );
        }
    }
}
