//! `wildcard` values: `*` stands for any run of characters (none included),
//! `\*` for an asterisk and `\\` for a backslash; any other escape and two
//! `*` in a row are refused, as event-ruler's `WildcardParser` does.
//! <https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html#eb-filtering-wildcard-matching>

/// A wildcard value split at its `*`s.
#[derive(Debug, Clone)]
pub(crate) struct Wildcard {
    /// The literal runs between the `*`s, unescaped. Invariant: there is
    /// one more piece than there are `*`s (pieces may be empty).
    pieces: Vec<String>,
}

impl Wildcard {
    /// Parses a wildcard value; the error is event-ruler's message
    /// (positions are byte offsets into the value).
    pub(crate) fn parse(value: &str) -> Result<Wildcard, String> {
        let bytes = value.as_bytes();
        let mut pieces = vec![String::new()];
        let mut i = 0;
        let mut run_start = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'*' => {
                    if bytes.get(i + 1) == Some(&b'*') {
                        return Err(format!("Consecutive wildcard characters at pos {i}"));
                    }
                    push_run(&mut pieces, &value[run_start..i]);
                    pieces.push(String::new());
                    i += 1;
                    run_start = i;
                }
                b'\\' => match bytes.get(i + 1) {
                    Some(b'*' | b'\\') => {
                        push_run(&mut pieces, &value[run_start..i]);
                        push_run(&mut pieces, &value[i + 1..i + 2]);
                        i += 2;
                        run_start = i;
                    }
                    _ => return Err(format!("Invalid escape character at pos {i}")),
                },
                _ => i += 1,
            }
        }
        push_run(&mut pieces, &value[run_start..]);
        Ok(Wildcard { pieces })
    }

    pub(crate) fn matches(&self, s: &str) -> bool {
        let (first, rest) = match self.pieces.split_first() {
            Some(split) => split,
            None => return s.is_empty(),
        };
        let Some(mut s) = s.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            return s.is_empty(); // No `*`: an exact match.
        };
        // Leftmost placement of each middle piece is never worse than a
        // later one, so a greedy scan decides `*`-only globs.
        for piece in middle {
            match s.find(piece.as_str()) {
                Some(at) => s = &s[at + piece.len()..],
                None => return false,
            }
        }
        s.len() >= last.len() && s.ends_with(last.as_str())
    }
}

fn push_run(pieces: &mut [String], run: &str) {
    if let Some(current) = pieces.last_mut() {
        current.push_str(run);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, s: &str) -> bool {
        Wildcard::parse(pattern).expect(pattern).matches(s)
    }

    #[test]
    fn stars_match_any_run_escapes_match_themselves() {
        assert!(matches("Simple*Service", "SimpleNotificationService"));
        assert!(matches("Simple*Service", "SimpleService"));
        assert!(!matches("Simple*Service", "SimpleServiceX"));
        assert!(matches("*.png", "dir/file.png"));
        assert!(matches("dir/*/file*", "dir/a/b/file.txt"));
        assert!(matches("*", ""));
        assert!(matches("a*a", "aa"));
        assert!(!matches("a*a", "a"));
        assert!(matches("*ab*ab*", "xabyab"));
        assert!(matches(r"a\*b", "a*b"));
        assert!(!matches(r"a\*b", "axb"));
        assert!(matches(r"a\\*", r"a\anything"));
        assert!(matches("exact", "exact"));
        assert!(!matches("exact", "exactly"));
    }

    #[test]
    fn consecutive_stars_and_bad_escapes_are_refused() {
        assert_eq!(
            Wildcard::parse("a**b").err().as_deref(),
            Some("Consecutive wildcard characters at pos 1")
        );
        assert_eq!(
            Wildcard::parse(r"a\b").err().as_deref(),
            Some("Invalid escape character at pos 1")
        );
        assert!(Wildcard::parse("a\\").is_err());
        assert!(Wildcard::parse(r"a\**").is_ok(), "escaped star then a star");
    }
}
