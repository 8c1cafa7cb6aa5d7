//! Text from outside made safe to print on a terminal.
//!
//! A registry controls every string it sends: descriptions, names in search
//! results, error messages. Printed as is, `ESC [ 2 J` clears the user's
//! screen, `ESC ] 8 ;;` forges a hyperlink, `ESC ] 52` writes their
//! clipboard on some terminals, a carriage return or a newline overwrites or
//! forges a line of fm's own output ("Updated a 1.0.0 -> 6.6.6"), and a
//! bidirectional override reorders what is shown. [`printable`] is applied
//! once, where such text enters fm (search results, registry error bodies,
//! parse errors that quote a document), not at every print.
//!
//! Rules: escape sequences are removed whole (CSI `ESC [ … final`, OSC
//! `ESC ] … BEL|ST`, DCS/SOS/PM/APC `ESC P|X|^|_ … ST`, two-byte `ESC x`, and
//! their one-character C1 forms); other C0 and C1 controls and DEL are
//! removed, except that tab, newline and carriage return become a space;
//! bidirectional embedding, override and isolate characters are removed.
//! Everything else, non-ASCII letters included, is kept.

use std::borrow::Cow;

/// `text` without control characters, terminal escape sequences or
/// bidirectional controls (see the module doc). Borrows when nothing had to
/// go.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_work) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates, up to a final byte.
                Some('[') => skip_csi(&mut chars),
                // OSC, DCS, SOS, PM, APC: a string up to ST (or BEL).
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                // Two-byte sequences (`ESC c`, `ESC 7`, …): both go.
                Some(_) | None => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            '\t' | '\n' | '\r' => out.push(' '),
            c if needs_work(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// [`printable`] as an owned `String`.
pub fn printable_owned(text: String) -> String {
    match printable(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(clean) => clean,
    }
}

/// Whether `c` is removed or replaced.
fn needs_work(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    // Parameter bytes 0x30–0x3F, intermediates 0x20–0x2F, then one final
    // byte 0x40–0x7E. Anything else ends the sequence where it stands.
    while let Some(&c) = chars.peek() {
        if ('\u{20}'..='\u{3f}').contains(&c) {
            chars.next();
        } else {
            if ('\u{40}'..='\u{7e}').contains(&c) {
                chars.next();
            }
            return;
        }
    }
}

fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    // Up to BEL, ST (`ESC \` or U+009C); an unterminated string runs to
    // the end, as a terminal would swallow it.
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                return;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let s = "Summarizes text — naïve café, 日本語, emoji 🦀";
        assert!(matches!(printable(s), std::borrow::Cow::Borrowed(_)));
        assert_eq!(printable(s), s);
    }

    #[test]
    fn escape_sequences_and_controls_are_removed() {
        let cases = [
            ("\u{1b}[31mred\u{1b}[0m", "red"),
            ("\u{1b}[2J\u{1b}[1;1Hclear", "clear"),
            ("\u{1b}]8;;http://evil.example/\u{7}link\u{1b}]8;;\u{7}", "link"),
            ("\u{1b}]52;c;ZXZpbA==\u{1b}\\clip", "clip"),
            ("\u{1b}]0;title", ""),
            ("\u{1b}Pq#0;2;0;0;0\u{1b}\\dcs", "dcs"),
            ("\u{9b}31mc1\u{9b}0m", "c1"),
            ("a\u{1b}cb", "ab"),
            ("bell\u{7}\u{8}\u{0}\u{7f}", "bell"),
            ("line\nUpdated a 1.0.0 -> 6.6.6\r", "line Updated a 1.0.0 -> 6.6.6 "),
            ("tab\there", "tab here"),
            ("abc\u{202e}fed\u{2066}x\u{2069}", "abcfedx"),
            ("trailing\u{1b}", "trailing"),
            ("\u{1b}[", ""),
        ];
        for (input, want) in cases {
            assert_eq!(printable(input), want, "{input:?}");
        }
    }

    #[test]
    fn output_never_holds_a_control_character() {
        // Every pair of characters from an alphabet rich in escapes.
        let alphabet = [
            '\u{1b}', '[', ']', 'P', '\\', '\u{7}', '\u{9b}', '\u{9c}', '\u{9d}', 'm', '1', ';', 'x', '\n',
        ];
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    let s: String = [a, b, c].iter().collect();
                    let out = printable(&s);
                    assert!(!out.chars().any(char::is_control), "{s:?} -> {out:?}");
                }
            }
        }
    }
}
