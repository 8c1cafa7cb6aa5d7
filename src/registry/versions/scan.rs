//! The fast partial read of a document: one pass over its bytes that finds
//! `name`, and for each entry of `versions` its `version`, its `yanked`
//! flag and where its text is, skipping everything else without parsing it
//! (strings by `memchr`, containers by depth; whitespace, keys and the
//! bytes between a container's strings by a table of byte classes, one
//! lookup a byte).
//!
//! It is lax on purpose about what it skips (a number or a literal is not
//! checked) and strict about what it returns; anything it does not expect
//! (an escape in a key, the name or a version, a repeated key, a `yanked`
//! that is not `true` or `false`, a byte out of place) makes it give up,
//! and the caller reads the document with serde instead. What it returns is
//! checked again where it matters: a record the solver uses is parsed
//! whole by serde from the span found here, and must say the same version
//! and yanked flag (see [`super::VersionList::record`]).

use std::ops::Range;

/// One entry of `versions` as the scan saw it.
pub(super) struct Scanned {
    pub version: String,
    pub yanked: bool,
    pub span: Range<usize>,
}

/// The document's `name` and entries; `None` when the scan gives up.
pub(super) fn document(text: &str) -> Option<(String, Vec<Scanned>)> {
    let mut s = Scanner {
        s: text,
        b: text.as_bytes(),
        i: 0,
    };
    let (mut name, mut versions) = (None, None);
    s.expect(b'{')?;
    if !s.eat(b'}') {
        loop {
            let key = s.plain_string()?;
            s.expect(b':')?;
            match key {
                "name" if name.is_some() => return None,
                "name" => name = Some(s.plain_string()?),
                "versions" if versions.is_some() => return None,
                "versions" => versions = Some(s.entries()?),
                _ => s.skip_value()?,
            }
            if s.eat(b'}') {
                break;
            }
            s.expect(b',')?;
        }
    }
    s.ws();
    if s.i != s.b.len() {
        return None;
    }
    Some((name?.to_owned(), versions.unwrap_or_default()))
}

/// Byte classes, looked up once a byte instead of compared several times.
const WS: u8 = 1;
/// Ends the plain reading of a string: a quote, an escape, a control byte.
const STR_STOP: u8 = 2;
/// Matters when skipping a container: a quote or a bracket.
const NEST: u8 = 4;
/// Ends a number or a literal.
const DELIM: u8 = 8;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = STR_STOP;
        c += 1;
    }
    t[b' ' as usize] |= WS | DELIM;
    t[b'\t' as usize] |= WS | DELIM;
    t[b'\n' as usize] |= WS | DELIM;
    t[b'\r' as usize] |= WS | DELIM;
    t[b'"' as usize] |= STR_STOP | NEST;
    t[b'\\' as usize] |= STR_STOP;
    t[b'{' as usize] |= NEST;
    t[b'[' as usize] |= NEST;
    t[b'}' as usize] |= NEST | DELIM;
    t[b']' as usize] |= NEST | DELIM;
    t[b',' as usize] |= DELIM;
    t
};

struct Scanner<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn ws(&mut self) {
        self.i = self.next_not(WS);
    }

    /// The index of the first byte from `self.i` on whose class has no bit
    /// of `class`, or the end.
    fn next_not(&self, class: u8) -> usize {
        let rest = self.b.get(self.i..).unwrap_or_default();
        self.i
            + rest
                .iter()
                .position(|&c| CLASS[c as usize] & class == 0)
                .unwrap_or(rest.len())
    }

    /// The index of the first byte from `self.i` on whose class has a bit
    /// of `class`, or the end.
    fn next_of(&self, class: u8) -> usize {
        let rest = self.b.get(self.i..).unwrap_or_default();
        self.i
            + rest
                .iter()
                .position(|&c| CLASS[c as usize] & class != 0)
                .unwrap_or(rest.len())
    }

    /// Skips whitespace; consumes `c` if it is next.
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        self.eat(c).then_some(())
    }

    /// A string without escapes or control characters, its contents
    /// borrowed. (Keys, names and versions are short: a table lookup a
    /// byte beats `memchr`'s set-up here.)
    fn plain_string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.i;
        self.i = self.next_of(STR_STOP);
        if *self.b.get(self.i)? != b'"' {
            return None;
        }
        self.i += 1;
        // Between two ASCII quotes: on char boundaries.
        self.s.get(start..self.i - 1)
    }

    /// Past the string whose opening quote is at `self.i`.
    fn skip_string(&mut self) -> Option<()> {
        self.i += 1;
        loop {
            let at = self.i + memchr::memchr2(b'"', b'\\', &self.b[self.i..])?;
            if self.b[at] == b'"' {
                self.i = at + 1;
                return Some(());
            }
            // An escape: the next byte is never the end of the string.
            self.i = at + 2;
        }
    }

    /// Past one value of any kind.
    fn skip_value(&mut self) -> Option<()> {
        self.ws();
        match *self.b.get(self.i)? {
            b'"' => self.skip_string(),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    self.i = self.next_of(NEST);
                    match *self.b.get(self.i)? {
                        b'"' => {
                            self.skip_string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            // A number or a literal: up to the next delimiter.
            _ => {
                let start = self.i;
                self.i = self.next_of(DELIM);
                (self.i > start).then_some(())
            }
        }
    }

    /// The entries of `versions` (or none for `null`).
    fn entries(&mut self) -> Option<Vec<Scanned>> {
        self.ws();
        if self.b[self.i..].starts_with(b"null") {
            self.i += 4;
            return Some(Vec::new());
        }
        self.expect(b'[')?;
        let mut out = Vec::new();
        if self.eat(b']') {
            return Some(out);
        }
        loop {
            out.push(self.entry()?);
            if self.eat(b']') {
                return Some(out);
            }
            self.expect(b',')?;
        }
    }

    fn entry(&mut self) -> Option<Scanned> {
        self.ws();
        let start = self.i;
        self.expect(b'{')?;
        let (mut version, mut yanked) = (None, None);
        if !self.eat(b'}') {
            loop {
                let key = self.plain_string()?;
                self.expect(b':')?;
                match key {
                    "version" if version.is_some() => return None,
                    "version" => version = Some(self.plain_string()?),
                    "yanked" if yanked.is_some() => return None,
                    "yanked" => {
                        self.ws();
                        let rest = &self.b[self.i..];
                        let (value, len) = if rest.starts_with(b"true") {
                            (true, 4)
                        } else if rest.starts_with(b"false") {
                            (false, 5)
                        } else {
                            return None;
                        };
                        self.i += len;
                        yanked = Some(value);
                    }
                    _ => self.skip_value()?,
                }
                if self.eat(b'}') {
                    break;
                }
                self.expect(b',')?;
            }
        }
        Some(Scanned {
            version: version?.to_owned(),
            yanked: yanked.unwrap_or(false),
            span: start..self.i,
        })
    }
}
