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
    fn lit(&mut self, l: &str) -> Option<()> {
        self.s = self.s.strip_prefix(l)?;
        Some(())
    }

    /// A TOML basic string as `quote` writes it; borrowed unless it holds
    /// an escape.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let rest = self.s.strip_prefix('"')?;
        // The common case: no escape before the closing quote (found with
        // memchr; the bytes before it checked in one branch-free pass).
        let end = rest.find('"')?;
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
        let (mut n, mut magnitude) = (0, 0u64);
        while n < digits.len() && digits[n].is_ascii_digit() {
            // At most 19 digits (checked below): no overflow.
            magnitude = magnitude.wrapping_mul(10).wrapping_add(u64::from(digits[n] - b'0'));
            n += 1;
        }
        if n == 0 || n > 19 || (n > 1 && digits[0] == b'0') {
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
        match s.find('\n') {
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
        Some(s.find('\n').map_or(s, |i| &s[..i]))
    }

    /// The remaining text up to (not including) the next empty line (or
    /// to the end of a text that ends in `\n`), each line with its `\n`.
    fn block(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        // Line by line with memchr: a blank line is found where a `\n` is
        // followed by another (a two-byte `find` is slower here).
        let b = s.as_bytes();
        let mut at = 0;
        while at < b.len() && b[at] != b'\n' {
            at += s[at..].find('\n')? + 1;
        }
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
        let files = self.files;
        files.split_terminator('\n').map(file_line)
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
    let sha256 = c.string()?;
    let stat = if c.lit(" }").is_some() {
        None
    } else {
        c.lit(", size = ")?;
        let size = c.int()?;
        c.lit(", mtime = ")?;
        let mtime = c.int()?;
        c.lit(", ctime = ")?;
        let ctime = c.int()?;
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
