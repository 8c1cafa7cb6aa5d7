//! A reader for exactly what [`Lockfile::render`](super::Lockfile::render)
//! writes, so that a no-op `fm sync` does not spend most of its time in the
//! `toml` crate. It returns the same [`RawLock`] that `toml` would, and
//! `None` on anything else: any other spelling (comments, other quoting,
//! escapes, reordered keys, a hand edit) goes to `toml`, whose errors and
//! rules stay the reference. Every value it takes is one `toml` would read
//! the same way: basic strings without escapes or control characters,
//! decimal integers without sign or leading zeros (beside `-` for a
//! priority), within `i64`.

use super::{HEADER, LOCK_VERSION, RawLock, RawPackage, RawRegistry, RawRoot};
use crate::values::{LockedDep, PackageName, Sha256};

/// One line at a time; `None` past the end.
struct Lines<'a> {
    rest: &'a str,
}

impl<'a> Lines<'a> {
    fn next(&mut self) -> Option<&'a str> {
        // The memchr crate's search (`str::find`'s costs twice as much here).
        let i = memchr::memchr(b'\n', self.rest.as_bytes())?;
        let line = &self.rest[..i];
        self.rest = &self.rest[i + 1..];
        Some(line)
    }

    /// `key = value` with the value read by `f`, which must take it whole.
    fn value<T>(&mut self, key: &str, f: impl FnOnce(&'a str) -> Option<T>) -> Option<T> {
        f(self.next()?.strip_prefix(key)?.strip_prefix(" = ")?)
    }
}

/// The content of a basic string that needs no escape. (No early exit:
/// the loop is vectorized.)
fn plain(inner: &str) -> Option<String> {
    let special = inner.bytes().fold(false, |acc, b| {
        acc | (b < 0x20) | (b == b'"') | (b == b'\\') | (b == 0x7f)
    });
    (!special).then(|| inner.to_owned())
}

fn string(s: &str) -> Option<String> {
    plain(s.strip_prefix('"')?.strip_suffix('"')?)
}

fn list(s: &str) -> Option<Vec<String>> {
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    if inner.is_empty() {
        return Some(Vec::new());
    }
    // Items hold no `"` (see `plain`), so the quotes split the list:
    // item, `, `, item, … (found with memchr).
    let inner = inner.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = Vec::new();
    for (i, part) in inner.split('"').enumerate() {
        if i % 2 == 0 {
            out.push(plain(part)?);
        } else if part != ", " {
            return None;
        }
    }
    Some(out)
}

fn int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let ok = !digits.is_empty()
        && digits.len() <= 19
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !ok || s == "-0" {
        return None;
    }
    s.parse().ok()
}

pub(super) fn parse(text: &str) -> Option<RawLock> {
    let mut lines = Lines { rest: text };
    if lines.next()? != HEADER || lines.next()? != format!("version = {LOCK_VERSION}") || !lines.next()?.is_empty() {
        return None;
    }
    if lines.next()? != "[root]" {
        return None;
    }
    let root = RawRoot {
        dependencies: lines.value("dependencies", list)?,
    };
    let mut registry = Vec::new();
    let mut package = Vec::new();
    while !lines.rest.is_empty() {
        if !lines.next()?.is_empty() {
            return None;
        }
        match lines.next()? {
            "[[registry]]" if package.is_empty() => {
                let name = lines.value("name", string)?;
                let url = lines.value("url", string)?;
                let mut priority = crate::location::DEFAULT_PRIORITY;
                let mut explicit = false;
                if let Some(p) = lines.rest.strip_prefix("priority = ") {
                    let end = p.find('\n')?;
                    priority = int(&p[..end]).filter(|&p| p != crate::location::DEFAULT_PRIORITY)?;
                    lines.next()?;
                }
                if lines.rest.starts_with("explicit = true\n") {
                    explicit = true;
                    lines.next()?;
                }
                let mut log_key = None;
                if lines.rest.starts_with("log-key = ") {
                    log_key = Some(lines.value("log-key", string)?);
                }
                registry.push(RawRegistry {
                    name,
                    url,
                    priority,
                    explicit,
                    log_key,
                });
            }
            "[[package]]" => {
                // A value its type refuses goes to `toml` too, which names
                // its line and column.
                let name = lines.value("name", |s| string(s).and_then(|t| PackageName::try_from(t).ok()))?;
                let version = lines.value("version", string)?;
                let registry = lines.value("registry", string)?;
                let sha256 = lines.value("sha256", |s| string(s).and_then(|t| Sha256::try_from(t).ok()))?;
                let size = lines.value("size", |s| int(s).and_then(|n| u64::try_from(n).ok()))?;
                let mut log_index = None;
                if lines.rest.starts_with("log-index = ") {
                    log_index = Some(lines.value("log-index", |s| int(s).and_then(|n| u64::try_from(n).ok()))?);
                }
                package.push(RawPackage {
                    name,
                    version,
                    registry,
                    sha256,
                    size,
                    log_index,
                    dependencies: lines.value("dependencies", |s| {
                        list(s)?.into_iter().map(|d| LockedDep::try_from(d).ok()).collect()
                    })?,
                });
            }
            _ => return None,
        }
    }
    Some(RawLock {
        version: LOCK_VERSION as u64,
        root,
        registry,
        package,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{LockedPackage, LockedRegistry, Lockfile, RawLock};

    fn flat(r: &RawLock) -> String {
        let mut out = format!("{} {:?}\n", r.version, r.root.dependencies);
        for g in &r.registry {
            out += &format!("{} {} {} {} {:?}\n", g.name, g.url, g.priority, g.explicit, g.log_key);
        }
        for p in &r.package {
            out += &format!(
                "{} {} {} {} {} {:?} {:?}\n",
                p.name, p.version, p.registry, p.sha256, p.size, p.log_index, p.dependencies
            );
        }
        out
    }

    fn lock(registries: Vec<LockedRegistry>, names: &[&str]) -> Lockfile {
        let log = super::super::LockLog {
            keys: registries
                .iter()
                .filter(|r| r.explicit)
                .map(|r| (r.name.clone(), format!("{}+0a1b2c3d+AAAA/+=", r.name)))
                .collect(),
            indexes: names
                .iter()
                .enumerate()
                .skip(1)
                .map(|(i, n)| ((*n).to_owned(), i as u64 * 7))
                .collect(),
        };
        Lockfile {
            root: names.iter().map(|n| format!("{n} ^1")).collect(),
            registries,
            packages: names
                .iter()
                .enumerate()
                .map(|(i, n)| LockedPackage {
                    name: n.parse().unwrap(),
                    version: semver::Version::parse(if i % 2 == 0 { "1.0.0" } else { "1.2.3-rc.1+b" }).unwrap(),
                    registry: "main".to_owned(),
                    sha256: format!("{i:064x}").parse().unwrap(),
                    size: if i == 0 { 0 } else { i as u64 * 1_000_000_007 },
                    dependencies: names[..i]
                        .iter()
                        .map(|d| format!("{d} >=1.0, <2").parse().unwrap())
                        .collect(),
                })
                .collect(),
            log,
        }
    }

    fn registry(name: &str, priority: i64, explicit: bool) -> LockedRegistry {
        LockedRegistry {
            name: name.to_owned(),
            url: format!("https://{name}.example/reg/"),
            priority,
            explicit,
        }
    }

    #[test]
    fn reads_what_render_writes_as_toml_does() {
        let main = || registry("main", crate::location::DEFAULT_PRIORITY, false);
        for l in [
            lock(Vec::new(), &[]),
            lock(vec![main()], &["a"]),
            lock(
                vec![registry("co", -5, true), main(), registry("z", 300, false)],
                &["a", "b-c", "d_e"],
            ),
        ] {
            let text = l.render();
            let fast = super::parse(&text).expect("fast reads what fm writes");
            let toml: RawLock = toml::from_str(&text).unwrap();
            assert_eq!(flat(&fast), flat(&toml), "{text}");
        }
    }

    #[test]
    fn leaves_anything_else_to_toml() {
        let text = lock(vec![registry("main", 100, false)], &["a", "b"]).render();
        let edits: [(&str, &str); 10] = [
            ("size = 0\n", "size = 00\n"),
            ("size = 0\n", "size = +0\n"),
            ("size = 0\n", "size = 0 # comment\n"),
            ("name = \"a\"", "name = 'a'"),
            ("name = \"a\"", "name = \"\\u0061\""),
            ("name = \"a\"", "name=\"a\""),
            ("[root]", "[root] "),
            ("version = 1\n", "version = 2\n"),
            ("\n\n[[package]]\nname = \"b\"", "\n[[package]]\nname = \"b\""),
            ("dependencies = []", "dependencies = [ ]"),
        ];
        for (from, to) in edits {
            assert!(text.contains(from), "{from}");
            let edited = text.replacen(from, to, 1);
            assert!(super::parse(&edited).is_none(), "{edited}");
        }
        assert!(super::parse(&text.replace('\n', "\r\n")).is_none());
        assert!(super::parse(text.trim_end()).is_none());
        assert!(super::parse(&format!("{text}\n")).is_none());
        assert!(super::parse(&format!("{text}x")).is_none());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// A hostile fm.lock is read the same by both readers, or not by
        /// this one at all: any edit of fm's own text (a byte replaced,
        /// inserted or removed, anywhere) either falls through to `toml`
        /// or yields exactly what `toml` yields for it.
        #[test]
        fn never_disagrees_with_toml(pos in 0usize..4096, byte in proptest::prelude::any::<u8>(), op in 0u8..3) {
            let main = registry("main", crate::location::DEFAULT_PRIORITY, false);
            let text = lock(vec![registry("co", -5, true), main], &["a", "b-c", "d_e"]).render();
            let mut bytes = text.into_bytes();
            let at = pos % bytes.len();
            let b = [b'"', b'\\', b'\n', b' ', b'=', b'[', b']', b',', b'0', b'9', b'-', b'#', b'a', byte][usize::from(byte) % 14];
            match op {
                0 => bytes[at] = b,
                1 => bytes.insert(at, b),
                _ => { bytes.remove(at); }
            }
            let Ok(edited) = String::from_utf8(bytes) else { return Ok(()); };
            if let Some(fast) = super::parse(&edited) {
                let toml: Result<RawLock, _> = toml::from_str(&edited);
                proptest::prop_assert!(toml.is_ok(), "fast read what toml refuses:\n{edited}");
                proptest::prop_assert_eq!(flat(&fast), flat(&toml.unwrap()), "{}", edited);
            }
        }
    }
}
