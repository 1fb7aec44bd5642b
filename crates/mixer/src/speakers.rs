//! Active-speaker selection: the loudest N lines the VAD calls speech, with
//! hysteresis so the set does not flap. A talker keeps its place while its
//! VAD (with hangover) says speech; a newcomer takes a full set's place
//! only by being clearly louder than the quietest member.

/// A newcomer must be this much louder (power ratio, ~3 dB) than the
/// quietest current speaker to displace it.
pub const SWITCH_RATIO: f32 = 2.0;

/// Speaker set of at most `max` participant indices; allocation-free after
/// construction.
#[derive(Debug, Clone)]
pub struct Selector {
    max: usize,
    current: Vec<usize>,
    /// Scratch: the loudest active non-speakers this tick, loudest first.
    candidates: Vec<(f32, usize)>,
}

impl Selector {
    pub fn new(max: usize) -> Self {
        Selector {
            max,
            current: Vec::with_capacity(max),
            candidates: Vec::with_capacity(max + 1),
        }
    }

    pub fn speakers(&self) -> &[usize] {
        &self.current
    }

    pub fn is_speaker(&self, idx: usize) -> bool {
        self.current.contains(&idx)
    }

    /// Drops a participant that left.
    pub fn remove(&mut self, idx: usize) {
        self.current.retain(|&i| i != idx);
    }

    /// Updates the set. `active` yields `(index, level)` for every line
    /// whose VAD says speech; `level_if_active(index)` answers the same for
    /// one line in O(1).
    pub fn update(
        &mut self,
        active: impl Iterator<Item = (usize, f32)>,
        level_if_active: impl Fn(usize) -> Option<f32>,
    ) {
        // Whoever went quiet leaves.
        self.current.retain(|&i| level_if_active(i).is_some());

        // The `max` loudest active lines not already speaking, kept sorted
        // in a small fixed buffer.
        self.candidates.clear();
        for (i, level) in active {
            if self.current.contains(&i) {
                continue;
            }
            let pos = self
                .candidates
                .iter()
                .position(|&(l, _)| level > l)
                .unwrap_or(self.candidates.len());
            if pos < self.max {
                if self.candidates.len() == self.max {
                    self.candidates.pop();
                }
                self.candidates.insert(pos, (level, i));
            }
        }

        for k in 0..self.candidates.len() {
            let (level, idx) = self.candidates[k];
            if self.current.len() < self.max {
                self.current.push(idx);
                continue;
            }
            let (weakest_pos, weakest_level) = self
                .current
                .iter()
                .enumerate()
                .map(|(p, &i)| (p, level_if_active(i).unwrap_or(0.0)))
                .fold((0, f32::MAX), |best, x| if x.1 < best.1 { x } else { best });
            if level > weakest_level * SWITCH_RATIO {
                self.current[weakest_pos] = idx;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(sel: &mut Selector, lines: &[(usize, bool, f32)]) -> Vec<usize> {
        let state = |idx: usize| lines.iter().find(|l| l.0 == idx && l.1).map(|l| l.2);
        sel.update(lines.iter().filter(|l| l.1).map(|l| (l.0, l.2)), state);
        let mut s = sel.speakers().to_vec();
        s.sort();
        s
    }

    #[test]
    fn loudest_active_lines_win() {
        let mut sel = Selector::new(2);
        let lines = [
            (0, true, 1.0),
            (1, true, 5.0),
            (2, false, 100.0),
            (3, true, 3.0),
        ];
        assert_eq!(run(&mut sel, &lines), vec![1, 3]);
    }

    #[test]
    fn a_slightly_louder_newcomer_does_not_displace_a_talker() {
        let mut sel = Selector::new(1);
        assert_eq!(run(&mut sel, &[(0, true, 10.0), (1, false, 0.0)]), vec![0]);
        assert_eq!(run(&mut sel, &[(0, true, 10.0), (1, true, 15.0)]), vec![0]);
        assert_eq!(run(&mut sel, &[(0, true, 10.0), (1, true, 25.0)]), vec![1]);
        assert_eq!(
            run(&mut sel, &[(0, false, 10.0), (1, false, 25.0)]),
            Vec::<usize>::new()
        );
    }
}
