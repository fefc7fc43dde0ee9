//! Turns the growing decoded text into safe-to-emit deltas, cutting at the first stop sequence.

/// What one more token did to the visible text.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Text that can be shown now (possibly empty while a stop sequence might be starting).
    Emit(String),
    /// A stop sequence appeared: the last delta to show, and the final text length in bytes.
    Stopped { delta: String, text_len: usize },
}

/// Tracks how much of the decoded text was emitted and watches for stop sequences.
#[derive(Debug)]
pub(crate) struct StopScanner {
    stops: Vec<String>,
    emitted: usize,
}

impl StopScanner {
    /// Watches for the given stop sequences (empty ones are ignored).
    pub(crate) fn new(stops: &[String]) -> Self {
        let stops = stops.iter().filter(|s| !s.is_empty()).cloned().collect();
        StopScanner { stops, emitted: 0 }
    }

    /// Consumes the full decoded text so far and says what to emit.
    pub(crate) fn advance(&mut self, full: &str) -> Step {
        if let Some(cut) = self.first_stop(full) {
            let delta = full.get(self.emitted..cut).unwrap_or("").to_string();
            self.emitted = cut.max(self.emitted);
            return Step::Stopped {
                delta,
                text_len: cut,
            };
        }
        let safe = self.safe_len(full);
        match full.get(self.emitted..safe) {
            Some(delta) if safe > self.emitted => {
                self.emitted = safe;
                Step::Emit(delta.to_string())
            }
            _ => Step::Emit(String::new()),
        }
    }

    /// Everything not emitted yet, once generation ended without a stop sequence.
    pub(crate) fn finish(&mut self, full: &str) -> String {
        let rest = full.get(self.emitted..).unwrap_or("").to_string();
        self.emitted = full.len();
        rest
    }

    /// Byte offset of the earliest stop sequence in the text.
    fn first_stop(&self, full: &str) -> Option<usize> {
        self.stops
            .iter()
            .filter_map(|s| full.find(s.as_str()))
            .min()
    }

    /// Length of the prefix that can no longer become part of a stop sequence or an unfinished UTF-8 character.
    fn safe_len(&self, full: &str) -> usize {
        // The byte-level decoder shows a split multi-byte character as U+FFFD until its last byte arrives.
        let mut end = full.trim_end_matches('\u{FFFD}').len();
        let held = self
            .stops
            .iter()
            .flat_map(|stop| {
                (1..stop.len())
                    .rev()
                    .filter(|&k| stop.is_char_boundary(k))
                    .find(|&k| full[..end].ends_with(&stop[..k]))
            })
            .max()
            .unwrap_or(0);
        end -= held;
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanner(stops: &[&str]) -> StopScanner {
        StopScanner::new(&stops.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn emits_growing_text_without_stops() {
        let mut s = scanner(&[]);
        assert_eq!(s.advance("Hel"), Step::Emit("Hel".into()));
        assert_eq!(s.advance("Hello"), Step::Emit("lo".into()));
        assert_eq!(s.finish("Hello!"), "!");
    }

    #[test]
    fn holds_back_a_possible_stop_prefix_then_cuts_at_the_stop() {
        let mut s = scanner(&["END"]);
        assert_eq!(s.advance("one E"), Step::Emit("one ".into()));
        assert_eq!(s.advance("one EN"), Step::Emit(String::new()));
        assert_eq!(
            s.advance("one END two"),
            Step::Stopped {
                delta: String::new(),
                text_len: 4
            }
        );
    }

    #[test]
    fn releases_held_text_that_turned_out_not_to_be_a_stop() {
        let mut s = scanner(&["END"]);
        assert_eq!(s.advance("E"), Step::Emit(String::new()));
        assert_eq!(s.advance("Ex"), Step::Emit("Ex".into()));
        assert_eq!(s.finish("Ex"), "");
    }

    #[test]
    fn waits_for_the_rest_of_a_split_character() {
        let mut s = scanner(&[]);
        assert_eq!(s.advance("caf\u{FFFD}"), Step::Emit("caf".into()));
        assert_eq!(s.advance("café"), Step::Emit("é".into()));
    }

    #[test]
    fn picks_the_earliest_of_several_stops() {
        let mut s = scanner(&["b", "a"]);
        assert_eq!(
            s.advance("xxab"),
            Step::Stopped {
                delta: "xx".into(),
                text_len: 2
            }
        );
    }
}
