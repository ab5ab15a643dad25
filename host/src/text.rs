//! Plugin- and client-provided text on its way into messages and logs: cut to a
//! size, and shown escaped.

/// Cuts `text` to at most `max` bytes, on a character boundary, marking the cut
/// with `…`.
pub fn cut(text: &mut String, max: usize) {
    if text.len() > max {
        let mut at = max;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
        text.push('…');
    }
}

/// `text` as it may appear in an error message or a log: escaped (no control
/// character survives) and cut after 64 characters.
pub fn shown(text: &str) -> String {
    let mut s: String = text.chars().take(64).flat_map(char::escape_debug).collect();
    if text.chars().nth(64).is_some() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_on_character_boundaries_and_escapes() {
        let mut s = "héllo".to_owned();
        cut(&mut s, 2);
        assert_eq!(s, "h…");
        assert_eq!(shown("a\u{1b}[31m\n"), "a\\u{1b}[31m\\n");
        assert!(shown(&"x".repeat(100)).ends_with('…'));
    }
}
