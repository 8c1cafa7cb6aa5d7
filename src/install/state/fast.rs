//! A parser for exactly what [`State::render`](super::State::render)
//! writes; `None` on anything else (the caller then falls back to the
//! `toml` crate).
//!
//! Two readings of one grammar: [`split`] borrows the text (a
//! [`PackageView`] per package, its file lines parsed only when asked, for
//! the no-op check, which needs no copy of anything), and [`parse`] builds
//! a [`State`] from those views. So both accept exactly the same texts.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use super::{FileStat, HEADER, InstalledFile, InstalledPackage, STATE_VERSION, State};

struct Cursor<'a> {
    s: &'a str,
}

impl<'a> Cursor<'a> {
    // Inlined: the literal's length is then known, and the compare is a
    // few word loads instead of a `memcmp` call.
    #[inline(always)]
    fn lit(&mut self, l: &str) -> Option<()> {
        self.s = self.s.strip_prefix(l)?;
        Some(())
    }

    /// A TOML basic string as `quote` writes it; borrowed unless it holds
    /// an escape.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let rest = self.s.strip_prefix('"')?;
        // The common case: no escape before the closing quote (found with
        // the memchr crate, whose search beats `str::find`'s on these short
        // strings; the bytes before it checked in one branch-free pass).
        let end = memchr::memchr(b'"', rest.as_bytes())?;
        let head = &rest.as_bytes()[..end];
        if !has_special(head) {
            self.s = &rest[end + 1..];
            return Some(Cow::Borrowed(&rest[..end]));
        }
        if head.iter().any(|&b| b != b'\\' && (b < 0x20 || b == 0x7f)) {
            return None;
        }
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.s = &rest[i + 1..];
                    return Some(Cow::Owned(out));
                }
                '\\' => match chars.next()?.1 {
                    '"' => out.push('"'),
                    '\\' => out.push('\\'),
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'u' => {
                        let hex: String = (0..4).filter_map(|_| chars.next().map(|c| c.1)).collect();
                        out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    _ => return None,
                },
                c if (c as u32) < 0x20 || c == '\u{7f}' => return None,
                c => out.push(c),
            }
        }
        None
    }

    /// A file's digest: read without a search when it is 64 bytes needing
    /// no escape, as fm writes it; any other string as [`Cursor::string`]
    /// reads it (the same result either way).
    fn digest(&mut self) -> Option<Cow<'a, str>> {
        let b = self.s.as_bytes();
        if b.len() > 65 && b[0] == b'"' && b[65] == b'"' && !has_special_or_quote(&b[1..65]) {
            let digest = &self.s[1..65];
            self.s = &self.s[66..];
            return Some(Cow::Borrowed(digest));
        }
        self.string()
    }

    /// A string that must need no escape (names, versions, digests).
    fn plain(&mut self) -> Option<&'a str> {
        match self.string()? {
            Cow::Borrowed(s) => Some(s),
            Cow::Owned(_) => None,
        }
    }

    /// A decimal integer: `0`, or digits not starting with `0`, optionally
    /// after a `-` (what `write!` gives an `i64`).
    fn int(&mut self) -> Option<i64> {
        let b = self.s.as_bytes();
        let neg = b.first() == Some(&b'-');
        let digits = &b[neg as usize..];
        // Eight digits at a time while there are (times have 19; a state
        // has four integers a file), then one at a time. At most 19 digits
        // (checked): no overflow.
        let (mut n, mut magnitude) = (0, 0u64);
        while n < 16
            && let Some(word) = digits.get(n..n + 8)
            && let Some(v) = eight_digits(word)
        {
            magnitude = magnitude * 100_000_000 + v;
            n += 8;
        }
        while let Some(&d) = digits.get(n)
            && d.is_ascii_digit()
        {
            if n == 19 {
                return None;
            }
            magnitude = magnitude * 10 + u64::from(d - b'0');
            n += 1;
        }
        if n == 0 || (n > 1 && digits[0] == b'0') {
            return None;
        }
        let v = if neg {
            0i64.checked_sub_unsigned(magnitude)?
        } else {
            i64::try_from(magnitude).ok()?
        };
        self.s = &self.s[neg as usize + n..];
        Some(v)
    }

    fn list(&mut self) -> Option<Vec<Cow<'a, str>>> {
        self.lit("[")?;
        let mut out = Vec::new();
        if self.lit("]").is_some() {
            return Some(out);
        }
        loop {
            out.push(self.string()?);
            if self.lit("]").is_some() {
                return Some(out);
            }
            self.lit(", ")?;
        }
    }

    fn end(&self) -> Option<()> {
        self.s.is_empty().then_some(())
    }
}

/// Whether `bytes` hold a `\\` or a control character (a string needing
/// escapes, or one that must not be read as is). No early exit, so the
/// loop is vectorized: a file line's path and digest are ~100 bytes.
fn has_special(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .fold(false, |acc, &b| acc | (b == b'\\') | (b < 0x20) | (b == 0x7f))
}

/// The value of eight bytes if they are all ASCII digits, in three
/// multiplications instead of eight (read as one little-endian word, the
/// first digit in its lowest byte).
fn eight_digits(bytes: &[u8]) -> Option<u64> {
    const HIGH: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    let mut word = [0u8; 8];
    word.copy_from_slice(bytes);
    let w = u64::from_le_bytes(word);
    // A byte is a digit when it is 0x3_ and adding 6 keeps it 0x3_ (a
    // carry out of a byte of 0xfa or more only spoils a word refused
    // for that byte anyway).
    if w & HIGH != ZEROS || w.wrapping_add(0x0606_0606_0606_0606) & HIGH != ZEROS {
        return None;
    }
    let mut x = w - ZEROS;
    x = (x * 10 + (x >> 8)) & 0x00ff_00ff_00ff_00ff;
    x = (x * 100 + (x >> 16)) & 0x0000_ffff_0000_ffff;
    Some((x * 10_000 + (x >> 32)) & 0xffff_ffff)
}

/// [`has_special`], or a `"`.
fn has_special_or_quote(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |acc, &b| {
        acc | (b == b'"') | (b == b'\\') | (b < 0x20) | (b == 0x7f)
    })
}

fn line_value<'a, T>(line: &'a str, key: &str, f: impl FnOnce(&mut Cursor<'a>) -> Option<T>) -> Option<T> {
    let mut c = Cursor {
        s: line.strip_prefix(key)?.strip_prefix(" = ")?,
    };
    let v = f(&mut c)?;
    c.end()?;
    Some(v)
}

/// Lines of `text`, each without its `\n`; the last is what follows the
/// last `\n` (empty for a text ending in one).
struct Lines<'a> {
    rest: Option<&'a str>,
}

impl<'a> Lines<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        match memchr::memchr(b'\n', s.as_bytes()) {
            Some(i) => {
                self.rest = Some(&s[i + 1..]);
                Some(&s[..i])
            }
            None => {
                self.rest = None;
                Some(s)
            }
        }
    }

    fn peek(&self) -> Option<&'a str> {
        let s = self.rest?;
        Some(memchr::memchr(b'\n', s.as_bytes()).map_or(s, |i| &s[..i]))
    }

    /// The remaining text up to (not including) the next empty line (or
    /// to the end of a text that ends in `\n`), each line with its `\n`.
    fn block(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        // A blank line is a `\n` at the start or a `\n\n` (the memchr
        // crate's SIMD search: a package's file lines are one block); a
        // last line without its `\n` is not what fm writes.
        let b = s.as_bytes();
        let at = if b.first() == Some(&b'\n') {
            0
        } else if let Some(i) = memchr::memmem::find(b, b"\n\n") {
            i + 1
        } else if b.last() == Some(&b'\n') {
            b.len()
        } else if b.is_empty() {
            0
        } else {
            return None;
        };
        self.rest = Some(&s[at..]);
        Some(&s[..at])
    }
}

/// One package of a state text, borrowed from it.
#[derive(Debug, Clone)]
pub(crate) struct PackageView<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub sha256: &'a str,
    pub executable: Vec<Cow<'a, str>>,
    /// The file lines, each ending in `\n`.
    files: &'a str,
}

/// One file line of a [`PackageView`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileView<'a> {
    pub path: Cow<'a, str>,
    pub sha256: Cow<'a, str>,
    pub stat: Option<FileStat>,
}

impl<'a> PackageView<'a> {
    /// Its files, in the file's order; `None` for a line that is not what
    /// fm writes.
    pub fn files(&self) -> impl Iterator<Item = Option<FileView<'a>>> + 'a {
        let mut rest = self.files;
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let (line, tail) = match memchr::memchr(b'\n', rest.as_bytes()) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, ""),
            };
            rest = tail;
            Some(file_line(line))
        })
    }
}

/// The `owned` names and the packages of a state text, in the file's
/// order, without copying (file lines are not parsed).
pub(crate) fn split(text: &str) -> Option<(Vec<Cow<'_, str>>, Vec<PackageView<'_>>)> {
    let mut lines = Lines { rest: Some(text) };
    if lines.next()? != HEADER || lines.next()? != format!("version = {STATE_VERSION}") {
        return None;
    }
    line_value(lines.next()?, "set", Cursor::string)?;
    let mut owned = Vec::new();
    if lines.peek()?.starts_with("owned = ") {
        owned = line_value(lines.next()?, "owned", Cursor::list)?;
    }
    let mut packages = Vec::new();
    loop {
        match lines.next()? {
            "" if lines.rest.is_none() => return Some((owned, packages)),
            "" => {}
            _ => return None,
        }
        if lines.next()? != "[[package]]" {
            return None;
        }
        let name = line_value(lines.next()?, "name", Cursor::plain)?;
        let version = line_value(lines.next()?, "version", Cursor::plain)?;
        let sha256 = line_value(lines.next()?, "sha256", Cursor::plain)?;
        let mut executable = Vec::new();
        let mut next = lines.next()?;
        if next.starts_with("executable = ") {
            executable = line_value(next, "executable", Cursor::list)?;
            next = lines.next()?;
        }
        if !next.is_empty() || lines.next()? != "[package.files]" {
            return None;
        }
        let files = lines.block()?;
        packages.push(PackageView {
            name,
            version,
            sha256,
            executable,
            files,
        });
    }
}

/// The whole state, owned.
pub(super) fn parse(text: &str) -> Option<State> {
    let (owned, views) = split(text)?;
    let mut state = State {
        packages: BTreeMap::new(),
        owned: owned.into_iter().map(Cow::into_owned).collect::<BTreeSet<_>>(),
    };
    for v in views {
        let mut files = BTreeMap::new();
        for f in v.files() {
            let f = f?;
            files.insert(
                f.path.into_owned(),
                InstalledFile {
                    sha256: f.sha256.into_owned(),
                    stat: f.stat,
                },
            );
        }
        let pkg = InstalledPackage {
            name: v.name.to_owned(),
            version: v.version.to_owned(),
            sha256: v.sha256.to_owned(),
            executable: v.executable.into_iter().map(Cow::into_owned).collect(),
            files,
        };
        if state.packages.insert(v.name.to_owned(), pkg).is_some() {
            return None;
        }
    }
    Some(state)
}

fn file_line(line: &str) -> Option<FileView<'_>> {
    let mut c = Cursor { s: line };
    let path = c.string()?;
    c.lit(" = { sha256 = ")?;
    let sha256 = c.digest()?;
    let stat = if c.lit(" }").is_some() {
        None
    } else {
        c.lit(", size = ")?;
        let size = c.int()?;
        c.lit(", mtime = ")?;
        let before = c.s;
        let mtime = c.int()?;
        let mtime_text = &before[..before.len() - c.s.len()];
        c.lit(", ctime = ")?;
        // Most files' ctime is their mtime, written the same: not read
        // twice (the same text, not followed by a digit, is the same
        // integer).
        let ctime = match c.s.strip_prefix(mtime_text) {
            Some(rest) if !rest.starts_with(|d: char| d.is_ascii_digit()) => {
                c.s = rest;
                mtime
            }
            _ => c.int()?,
        };
        c.lit(", ino = ")?;
        let ino = c.int()?;
        c.lit(" }")?;
        Some(FileStat {
            size: u64::try_from(size).ok()?,
            mtime,
            ctime,
            ino: ino as u64,
        })
    };
    c.end()?;
    Some(FileView { path, sha256, stat })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(s: &str) -> Option<(i64, &str)> {
        let mut c = Cursor { s };
        let v = c.int()?;
        Some((v, c.s))
    }

    #[test]
    fn integers_read_as_write_gives_them() {
        let mut values = vec![0, 1, -1, 7, 10, 99, i64::MAX, i64::MIN, 1_764_612_345_123_456_789, -5];
        let mut p = 1i64;
        for _ in 0..18 {
            p *= 10;
            values.extend([p - 1, p, p + 1, -p, 12_345_678 % p + p]);
        }
        for v in values {
            for tail in ["", " }", ", x", "a"] {
                let text = format!("{v}{tail}");
                assert_eq!(int(&text), Some((v, tail)), "{text:?}");
            }
        }
    }

    #[test]
    fn integers_write_does_not_give_are_refused() {
        for text in [
            "",
            "-",
            "+1",
            "01",
            "-01",
            "00000000",
            "012345678",
            "9223372036854775808",
            "-9223372036854775809",
            "99999999999999999999",
            "12345678901234567890",
            " 1",
            "a1",
        ] {
            assert_eq!(int(text), None, "{text:?}");
        }
        // A 19-digit number followed by another digit is not one.
        assert_eq!(int("1000000000000000000"), Some((1_000_000_000_000_000_000, "")));
        assert_eq!(int("10000000000000000000"), None);
    }

    #[test]
    fn digests_read_as_any_string_is() {
        let hex = "0123456789abcdef".repeat(4);
        for digest in [
            format!("\"{hex}\""),
            format!("\"{}\"", &hex[1..]),
            format!("\"{hex}0\""),
            format!("\"{}\\\"\"", &hex[2..]),
            format!("\"{}\"\"", &hex[1..]),
            format!("\"{}\t\"", &hex[1..]),
            "\"\"".to_owned(),
            format!("\"{hex}"),
        ] {
            for tail in ["", " }", &"x".repeat(70)] {
                let text = format!("{digest}{tail}");
                let mut fast = Cursor { s: &text };
                let mut any = Cursor { s: &text };
                assert_eq!(fast.digest(), any.string(), "{text:?}");
                assert_eq!(fast.s, any.s, "{text:?}");
            }
        }
    }

    #[test]
    fn a_ctime_written_as_the_mtime_is_read_as_any_integer_is() {
        let hex = "a".repeat(64);
        for (mtime, ctime) in [
            ("12", "12"),
            ("12", "123"),
            ("123", "12"),
            ("-5", "-5"),
            ("0", "0"),
            ("0", "01"),
            ("1796185813291703277", "1796185813291703277"),
            ("1796185813291703277", "17961858132917032770"),
        ] {
            let line = format!("\"f\" = {{ sha256 = \"{hex}\", size = 1, mtime = {mtime}, ctime = {ctime}, ino = 2 }}");
            let want = match (mtime.parse::<i64>(), ctime.parse::<i64>()) {
                (Ok(m), Ok(c)) if !ctime.starts_with("01") && ctime.len() < 20 => Some((m, c)),
                _ => None,
            };
            let got = file_line(&line).and_then(|f| f.stat).map(|s| (s.mtime, s.ctime));
            assert_eq!(got, want, "{line}");
        }
    }

    #[test]
    fn blocks_end_at_a_blank_line_or_the_text_end() {
        for (text, block, rest) in [
            ("a\nb\n\nc", Some("a\nb\n"), Some("\nc")),
            ("\nc", Some(""), Some("\nc")),
            ("a\nb\n", Some("a\nb\n"), Some("")),
            ("", Some(""), Some("")),
            ("a\nb", None, Some("a\nb")),
        ] {
            let mut lines = Lines { rest: Some(text) };
            assert_eq!(lines.block(), block, "{text:?}");
            assert_eq!(lines.rest, rest, "{text:?}");
        }
    }
}
