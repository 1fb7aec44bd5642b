//! Per-source abuse guard: a source that keeps sending what tandem must
//! reject (garbage, malformed requests, wrong passwords) spends a small
//! budget, and once it is spent the source is ignored for a while. Checking
//! a banned source costs one hash lookup, so a flood from one address costs
//! little and leaves the CPU to everyone else; a real peer that sends one bad
//! message now and then is never affected.
//!
//! Pure logic: the caller passes the clock in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// Offences a source may commit per second on average before it is banned.
    pub offences_per_sec: f64,
    /// Offences a source may commit at once.
    pub burst: f64,
    /// How long a source is ignored once banned.
    pub ban: Duration,
    /// Most sources tracked at once (bounds memory under a spoofed flood).
    pub max_sources: usize,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            offences_per_sec: 10.0,
            burst: 50.0,
            ban: Duration::from_secs(60),
            max_sources: 100_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within budget: answer the offence as usual (a 400, a 401).
    Answer,
    /// The source was just banned by this offence, or is banned: send nothing.
    Ignore,
}

#[derive(Debug, Clone, Copy)]
struct Source {
    budget: f64,
    last: Instant,
    banned_until: Option<Instant>,
}

#[derive(Debug)]
pub struct SourceGuard {
    cfg: GuardConfig,
    sources: HashMap<IpAddr, Source>,
    bans: u64,
}

impl SourceGuard {
    pub fn new(cfg: GuardConfig) -> SourceGuard {
        SourceGuard {
            cfg,
            sources: HashMap::new(),
            bans: 0,
        }
    }

    /// Whether traffic from `ip` should be dropped unread.
    pub fn is_banned(&mut self, ip: IpAddr, now: Instant) -> bool {
        match self.sources.get_mut(&ip) {
            Some(s) => match s.banned_until {
                Some(until) if now < until => true,
                Some(_) => {
                    s.banned_until = None;
                    s.budget = self.cfg.burst;
                    s.last = now;
                    false
                }
                None => false,
            },
            None => false,
        }
    }

    /// Records one offence by `ip` and says whether to answer it.
    pub fn offence(&mut self, ip: IpAddr, now: Instant) -> Verdict {
        if !self.sources.contains_key(&ip) && self.sources.len() >= self.cfg.max_sources {
            self.sweep(now);
            if self.sources.len() >= self.cfg.max_sources {
                // Fail open rather than grow without bound: an untracked
                // source is treated as a first offender, but not answered,
                // since a table this full means a flood is under way.
                return Verdict::Ignore;
            }
        }
        let cfg = &self.cfg;
        let s = self.sources.entry(ip).or_insert(Source {
            budget: cfg.burst,
            last: now,
            banned_until: None,
        });
        if s.banned_until.is_some_and(|until| now < until) {
            return Verdict::Ignore;
        }
        let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
        s.budget = (s.budget + elapsed * cfg.offences_per_sec).min(cfg.burst);
        s.last = now;
        s.budget -= 1.0;
        if s.budget < 0.0 {
            s.banned_until = Some(now + cfg.ban);
            self.bans += 1;
            Verdict::Ignore
        } else {
            Verdict::Answer
        }
    }

    /// Forgets sources whose budget has refilled and that are not banned.
    pub fn sweep(&mut self, now: Instant) {
        let cfg = &self.cfg;
        self.sources.retain(|_, s| match s.banned_until {
            Some(until) => now < until,
            None => {
                let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
                s.budget + elapsed * cfg.offences_per_sec < cfg.burst
            }
        });
    }

    /// Sources banned since start.
    pub fn bans(&self) -> u64 {
        self.bans
    }

    /// Sources currently tracked.
    pub fn tracked(&self) -> usize {
        self.sources.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn guard() -> SourceGuard {
        SourceGuard::new(GuardConfig {
            offences_per_sec: 1.0,
            burst: 3.0,
            ban: Duration::from_secs(10),
            max_sources: 4,
        })
    }

    #[test]
    fn burst_then_ban_then_release() {
        let mut g = guard();
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            assert_eq!(g.offence(a, t0), Verdict::Answer);
        }
        assert_eq!(g.offence(a, t0), Verdict::Ignore);
        assert!(g.is_banned(a, t0 + Duration::from_secs(9)));
        assert!(!g.is_banned(a, t0 + Duration::from_secs(10)));
        assert_eq!(g.offence(a, t0 + Duration::from_secs(10)), Verdict::Answer);
        assert_eq!(g.bans(), 1);
    }

    #[test]
    fn one_bad_source_does_not_touch_another() {
        let mut g = guard();
        let t0 = Instant::now();
        for _ in 0..100 {
            g.offence(ip("192.0.2.1"), t0);
        }
        assert!(g.is_banned(ip("192.0.2.1"), t0));
        assert!(!g.is_banned(ip("192.0.2.2"), t0));
        assert_eq!(g.offence(ip("192.0.2.2"), t0), Verdict::Answer);
    }

    #[test]
    fn occasional_offences_never_ban() {
        let mut g = guard();
        let t0 = Instant::now();
        for i in 0..1000 {
            assert_eq!(
                g.offence(ip("192.0.2.3"), t0 + Duration::from_secs(i)),
                Verdict::Answer
            );
        }
    }

    #[test]
    fn table_is_bounded() {
        let mut g = guard();
        let t0 = Instant::now();
        for i in 0..4u8 {
            for _ in 0..10 {
                g.offence(IpAddr::from([198, 51, 100, i]), t0);
            }
        }
        assert_eq!(g.tracked(), 4);
        assert_eq!(g.offence(ip("203.0.113.9"), t0), Verdict::Ignore);
        assert_eq!(g.tracked(), 4);
        // Once the bans lapse the table makes room again.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(g.offence(ip("203.0.113.9"), later), Verdict::Answer);
        assert!(g.tracked() <= 4);
    }
}
