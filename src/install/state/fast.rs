//! A parser for exactly what [`State::render`](super::State::render) writes; `None` on anything
//! else (the caller then falls back to the `toml` crate).

use std::collections::BTreeMap;

use super::{FileStat, HEADER, InstalledFile, InstalledPackage, STATE_VERSION, State};

struct Cursor<'a> {
    s: &'a str,
}

impl<'a> Cursor<'a> {
    fn lit(&mut self, l: &str) -> Option<()> {
        self.s = self.s.strip_prefix(l)?;
        Some(())
    }

    fn string(&mut self) -> Option<String> {
        let rest = self.s.strip_prefix('"')?;
        // The common case: no escapes.
        let end = rest.find(['"', '\\'])?;
        if rest.as_bytes()[end] == b'"' {
            self.s = &rest[end + 1..];
            return Some(rest[..end].to_owned());
        }
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.s = &rest[i + 1..];
                    return Some(out);
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
                c if (c as u32) < 0x20 => return None,
                c => out.push(c),
            }
        }
        None
    }

    fn int(&mut self) -> Option<i64> {
        let end = self
            .s
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
            .map_or(self.s.len(), |(i, _)| i);
        let v = self.s[..end].parse().ok()?;
        self.s = &self.s[end..];
        Some(v)
    }

    fn list(&mut self) -> Option<Vec<String>> {
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

fn line_value<'a, T>(line: &'a str, key: &str, f: impl FnOnce(&mut Cursor<'a>) -> Option<T>) -> Option<T> {
    let mut c = Cursor {
        s: line.strip_prefix(key)?.strip_prefix(" = ")?,
    };
    let v = f(&mut c)?;
    c.end()?;
    Some(v)
}

pub(super) fn parse(text: &str) -> Option<State> {
    let mut lines = text.split('\n').peekable();
    if lines.next()? != HEADER || lines.next()? != format!("version = {STATE_VERSION}") {
        return None;
    }
    line_value(lines.next()?, "set", Cursor::string)?;
    let mut state = State::default();
    if let Some(l) = lines.peek()
        && l.starts_with("owned = ")
    {
        state.owned = line_value(lines.next()?, "owned", Cursor::list)?.into_iter().collect();
    }
    loop {
        match lines.next()? {
            "" if lines.peek().is_none() => return Some(state),
            "" => {}
            _ => return None,
        }
        if lines.next()? != "[[package]]" {
            return None;
        }
        let name = line_value(lines.next()?, "name", Cursor::string)?;
        let version = line_value(lines.next()?, "version", Cursor::string)?;
        let sha256 = line_value(lines.next()?, "sha256", Cursor::string)?;
        let mut executable = Vec::new();
        let mut next = lines.next()?;
        if next.starts_with("executable = ") {
            executable = line_value(next, "executable", Cursor::list)?;
            next = lines.next()?;
        }
        if !next.is_empty() || lines.next()? != "[package.files]" {
            return None;
        }
        let mut files = BTreeMap::new();
        while let Some(l) = lines.peek()
            && !l.is_empty()
        {
            let (path, file) = file_line(lines.next()?)?;
            files.insert(path, file);
        }
        let pkg = InstalledPackage {
            name: name.clone(),
            version,
            sha256,
            executable,
            files,
        };
        if state.packages.insert(name, pkg).is_some() {
            return None;
        }
    }
}

fn file_line(line: &str) -> Option<(String, InstalledFile)> {
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
    Some((path, InstalledFile { sha256, stat }))
}
