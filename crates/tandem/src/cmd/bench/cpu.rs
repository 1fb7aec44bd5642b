//! CPU time of the thing being measured, from /proc: the threads of this
//! process with a given name prefix (the SBC's media workers), or a whole
//! other process (rtpengine). Host-wide counters undercount on shared
//! machines; per-thread and per-process counters do not.

use std::path::Path;

/// Clock ticks per second for /proc times (USER_HZ).
fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// utime + stime of one /proc/.../stat, in seconds.
fn stat_seconds(stat: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(stat).ok()?;
    // The command name is in parentheses and may hold spaces: fields
    // after the last ')' start at field 3 (state).
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 overall: 12 and 13 here.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_sec())
}

/// What to measure.
#[derive(Debug, Clone)]
pub enum Probe {
    /// Threads of this process whose name starts with this.
    Threads(String),
    Process(u32),
}

impl Probe {
    /// CPU seconds used so far.
    pub fn seconds(&self) -> f64 {
        match self {
            Probe::Process(pid) => {
                stat_seconds(Path::new(&format!("/proc/{pid}/stat"))).unwrap_or(0.0)
            }
            Probe::Threads(prefix) => {
                let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
                    return 0.0;
                };
                tasks
                    .filter_map(|t| t.ok())
                    .filter(|t| {
                        std::fs::read_to_string(t.path().join("comm"))
                            .is_ok_and(|c| c.trim_end().starts_with(prefix.as_str()))
                    })
                    .filter_map(|t| stat_seconds(&t.path().join("stat")))
                    .sum()
            }
        }
    }
}
