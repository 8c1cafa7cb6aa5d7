//! A package's versions as resolution reads them: [`VersionList`].
//!
//! The solver looks at every version's number and yanked flag (to count
//! and choose candidates), but at the full record (checksum, size,
//! dependencies) of only the few versions it tries. A directory
//! registry's document is therefore read in two steps
//! ([`VersionList::parse`]): the document's `name` and, for each entry of
//! `versions`, its `version` and `yanked` fields and where its JSON text
//! is (by `scan`, one pass over the bytes; by serde when the scan gives
//! up); the whole [`VersionRecord`] of a version is parsed (and checked:
//! checksum, dependency names, every field's type, as a full read of the
//! document checks it) the first time [`VersionList::record`] is asked for
//! it, then kept.
//!
//! What is never checked: the top-level descriptive fields and the records
//! of versions the solver never tries. Nothing downstream of resolution
//! sees them: a lock holds only records that [`VersionList::record`]
//! returned. A record that fails its check is reported as a full read of
//! the document reports it (serde's message, the file's line and column).

use std::borrow::Cow;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::RegistryError;
use super::document::{PackageDocument, VersionRecord};

mod scan;

/// A package's versions: number and yanked flag of each, the full record
/// on demand.
#[derive(Debug)]
pub struct VersionList {
    registry: String,
    package: String,
    form: Form,
}

#[derive(Debug)]
enum Form {
    /// A document already parsed whole (an HTTP registry, a user's
    /// [`super::Registry`]).
    Parsed(Arc<PackageDocument>),
    /// A document's text, read in part.
    Text {
        text: String,
        /// Where the text came from, as the error messages name it.
        origin: String,
        entries: Vec<Entry>,
    },
}

/// One entry of a document's `versions`, read in part.
#[derive(Debug)]
struct Entry {
    version: Box<str>,
    yanked: bool,
    /// Its JSON text within [`Form::Text`]'s `text`.
    span: Range<usize>,
    record: OnceLock<VersionRecord>,
}

impl From<scan::Scanned> for Entry {
    fn from(s: scan::Scanned) -> Entry {
        Entry {
            version: s.version.into(),
            yanked: s.yanked,
            span: s.span,
            record: OnceLock::new(),
        }
    }
}

/// The fields of a document read up front. Every other field is skipped
/// (still scanned as JSON: a document that is not JSON is refused).
#[derive(Deserialize)]
struct Outline<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(default)]
    versions: Option<Vec<Head>>,
}

/// What is read up front of one entry of `versions`, in one pass over its
/// text: `version` and `yanked`, and where the entry's text is (as
/// addresses within the document's text; [`outline`] makes them offsets).
struct Head {
    version: String,
    yanked: bool,
    /// Address of the first key's first character, and just past the last
    /// value.
    first_key: usize,
    end: usize,
}

impl<'de> Deserialize<'de> for Head {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Head, D::Error> {
        d.deserialize_map(HeadVisitor)
    }
}

struct HeadVisitor;

impl<'de> serde::de::Visitor<'de> for HeadVisitor {
    type Value = Head;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a version record")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Head, A::Error> {
        use serde::de::Error;
        let (mut version, mut yanked) = (None, None);
        let (mut first_key, mut end) = (None, 0);
        // Borrowed keys and raw values: both are slices of the document's
        // text, which is how the entry's extent is known. A key with an
        // escape is not borrowed: this fails and the full read decides.
        while let Some(key) = map.next_key::<&'de str>()? {
            first_key.get_or_insert(key.as_ptr() as usize);
            let raw: &'de RawValue = map.next_value()?;
            end = raw.get().as_ptr() as usize + raw.get().len();
            match key {
                "version" if version.is_some() => return Err(A::Error::duplicate_field("version")),
                "version" => version = Some(serde_json::from_str::<String>(raw.get()).map_err(A::Error::custom)?),
                "yanked" if yanked.is_some() => return Err(A::Error::duplicate_field("yanked")),
                "yanked" => yanked = Some(serde_json::from_str::<bool>(raw.get()).map_err(A::Error::custom)?),
                _ => {}
            }
        }
        Ok(Head {
            version: version.ok_or_else(|| A::Error::missing_field("version"))?,
            yanked: yanked.unwrap_or(false),
            first_key: first_key.ok_or_else(|| A::Error::missing_field("version"))?,
            end,
        })
    }
}

impl VersionList {
    /// A list over a document parsed whole.
    pub fn from_document(registry: &str, package: &str, doc: Arc<PackageDocument>) -> VersionList {
        VersionList {
            registry: registry.to_owned(),
            package: package.to_owned(),
            form: Form::Parsed(doc),
        }
    }

    /// Reads the document `text` of `package` (from `origin`, a path or a
    /// URL that error messages name) in part. Refused, with the message a
    /// full read gives, when it is not a document or names another package.
    pub fn parse(registry: &str, package: &str, origin: String, text: String) -> Result<VersionList, RegistryError> {
        let corrupt = |reason: String| RegistryError::Corrupt {
            registry: registry.to_owned(),
            package: package.to_owned(),
            reason,
        };
        let read = match scan::document(&text) {
            Some((name, scanned)) => Ok((name, scanned.into_iter().map(Entry::from).collect())),
            None => outline(&text),
        };
        let entries = match read {
            Ok((name, entries)) if name == package => entries,
            Ok((name, _)) => return Err(corrupt(format!("{origin} names package {name:?}"))),
            // Refused in part: the full read decides, and names the fault.
            Err(()) => {
                let doc: PackageDocument =
                    serde_json::from_str(&text).map_err(|e| corrupt(format!("{origin}: {e}")))?;
                if doc.info.name != package {
                    return Err(corrupt(format!("{origin} names package {:?}", doc.info.name)));
                }
                return Ok(VersionList::from_document(registry, package, Arc::new(doc)));
            }
        };
        Ok(VersionList {
            registry: registry.to_owned(),
            package: package.to_owned(),
            form: Form::Text { text, origin, entries },
        })
    }

    /// The package's name.
    pub fn package(&self) -> &str {
        &self.package
    }

    /// Every entry of the document's `versions`, in the document's order:
    /// its version as written and whether it is yanked.
    pub fn entries(&self) -> Vec<(&str, bool)> {
        match &self.form {
            Form::Parsed(doc) => doc
                .versions
                .iter()
                .flatten()
                .map(|r| (r.version.as_str(), r.yanked))
                .collect(),
            Form::Text { entries, .. } => entries.iter().map(|e| (&*e.version, e.yanked)).collect(),
        }
    }

    /// The full record of entry `i` (of [`entries`](Self::entries)),
    /// checked as a full read of the document checks it; `Ok(None)` past
    /// the end.
    pub fn record(&self, i: usize) -> Result<Option<&VersionRecord>, RegistryError> {
        let (text, origin, entries) = match &self.form {
            Form::Parsed(doc) => return Ok(doc.versions.as_ref().and_then(|v| v.get(i))),
            Form::Text { text, origin, entries } => (text, origin, entries),
        };
        let Some(entry) = entries.get(i) else {
            return Ok(None);
        };
        if let Some(r) = entry.record.get() {
            return Ok(Some(r));
        }
        let parsed = serde_json::from_str::<VersionRecord>(&text[entry.span.clone()]).and_then(|r| {
            // The partial read said this much; the whole record must agree.
            if r.version != *entry.version || r.yanked != entry.yanked {
                return Err(serde::de::Error::custom(format!(
                    "the record of version {:?} does not say what the document's outline does",
                    entry.version
                )));
            }
            Ok(r)
        });
        match parsed {
            Ok(r) => Ok(Some(entry.record.get_or_init(|| r))),
            Err(e) => Err(RegistryError::Corrupt {
                registry: self.registry.clone(),
                package: self.package.clone(),
                reason: format!("{origin}: {}", in_document(text, entry.span.start, &e)),
            }),
        }
    }
}

/// serde's message for an error at a record that starts at byte `start` of
/// `text`, with the line and column in `text` (as a full read of the
/// document would say them).
fn in_document(text: &str, start: usize, e: &serde_json::Error) -> String {
    let message = e.to_string();
    let Some(bare) = message.strip_suffix(&format!(" at line {} column {}", e.line(), e.column())) else {
        return message;
    };
    let before = &text[..start];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let column = start - before.rfind('\n').map_or(0, |i| i + 1);
    let (line, column) = match e.line() {
        1 => (line, column + e.column()),
        n => (line + n - 1, e.column()),
    };
    format!("{bare} at line {line} column {column}")
}

/// The name and the entries of a document, read in part; `Err` when this
/// reading refuses it.
fn outline(text: &str) -> Result<(String, Vec<Entry>), ()> {
    let outline = serde_json::from_str::<Outline>(text).map_err(|_| ())?;
    let base = text.as_ptr() as usize;
    let bytes = text.as_bytes();
    let mut entries = Vec::with_capacity(outline.versions.as_ref().map_or(0, Vec::len));
    for head in outline.versions.into_iter().flatten() {
        // From the first key's opening quote back to the `{`, and from the
        // last value on to the `}`: only JSON whitespace lies between.
        let quote = head.first_key.checked_sub(base + 1).ok_or(())?;
        let start = bytes[..quote]
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .ok_or(())?;
        let end = head.end.checked_sub(base).ok_or(())?;
        let close = end
            + bytes
                .get(end..)
                .ok_or(())?
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .ok_or(())?;
        if bytes[start] != b'{' || bytes[close] != b'}' || bytes.get(quote) != Some(&b'"') {
            return Err(());
        }
        entries.push(Entry {
            version: head.version.into(),
            yanked: head.yanked,
            span: start..close + 1,
            record: OnceLock::new(),
        });
    }
    Ok((outline.name.into_owned(), entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/registries");

    fn full(text: &str) -> Result<PackageDocument, String> {
        serde_json::from_str(text).map_err(|e| format!("f: {e}"))
    }

    fn list(package: &str, text: &str) -> Result<VersionList, String> {
        VersionList::parse("r", package, "f".to_owned(), text.to_owned()).map_err(|e| match e {
            RegistryError::Corrupt { reason, .. } => reason,
            other => other.to_string(),
        })
    }

    /// Every record read on demand is the record a full read gives.
    #[test]
    fn a_list_read_in_part_gives_the_records_a_full_read_gives() {
        let mut records = 0;
        for dir in ["company", "main"] {
            let Ok(files) = std::fs::read_dir(format!("{FIXTURES}/{dir}/index")) else {
                continue;
            };
            for f in files {
                let path = f.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap();
                let doc = full(&text).unwrap();
                let list = list(&doc.info.name, &text).unwrap();
                assert!(matches!(list.form, Form::Text { .. }), "{}", path.display());
                let versions = doc.versions.as_deref().unwrap_or_default();
                let entries = list.entries();
                assert_eq!(entries.len(), versions.len());
                for (i, r) in versions.iter().enumerate() {
                    assert_eq!(entries[i], (r.version.as_str(), r.yanked));
                    assert_eq!(list.record(i).unwrap(), Some(r));
                    records += 1;
                }
            }
        }
        assert!(records > 4, "{records}");
    }

    // A full read parsed every field of every record of every document the
    // solver touched; now a record is parsed when it is asked for, and a
    // bad one is refused then, with the message a full read gives.
    #[test]
    fn a_record_is_checked_when_asked_for_with_the_full_reads_message() {
        let text = r#"{"name": "p", "version": "2.0.0",
            "versions": [
              {"version": "1.0.0", "checksum": "not-a-digest", "size_bytes": 1},
              { "size_bytes" : 2 , "version":"2.0.0", "yanked": true,
                "checksum": "1e5a69bd916ffd77819afb02ef17483d89dac919df0f6c108acf99df9d449acf",
                "dependencies": {"q": "^1"} }
            ]}"#;
        let list = list("p", text).unwrap();
        assert_eq!(list.entries(), [("1.0.0", false), ("2.0.0", true)]);
        let good = list.record(1).unwrap().unwrap();
        assert_eq!((good.size_bytes, good.dependencies["q"].as_str()), (2, "^1"));
        let Err(RegistryError::Corrupt { reason, .. }) = list.record(0) else {
            panic!("a bad checksum was accepted");
        };
        assert_eq!(reason, full(text).unwrap_err());
        assert!(reason.contains("not-a-digest"), "{reason}");
        assert!(list.record(2).unwrap().is_none());
        // A later record's fault is named, not the first one in the file.
        let later = text.replace(r#""q": "^1""#, r#""../q": "^1""#);
        let Err(RegistryError::Corrupt { reason, .. }) = self::list("p", &later).unwrap().record(1) else {
            panic!("a bad dependency name was accepted");
        };
        let fixed = later.replace(
            "not-a-digest",
            "1e5a69bd916ffd77819afb02ef17483d89dac919df0f6c108acf99df9d449acf",
        );
        assert_eq!(reason, full(&fixed).unwrap_err());
        assert!(reason.contains("../q") && reason.contains("line 6 column"), "{reason}");
    }

    /// The one-pass scan finds what serde finds, whatever the spacing, and
    /// whatever braces, brackets, quotes and escapes the skipped strings
    /// hold; what it skips without checking is checked when the record is
    /// asked for.
    #[test]
    fn the_scan_reads_what_serde_reads() {
        let digest = "1e5a69bd916ffd77819afb02ef17483d89dac919df0f6c108acf99df9d449acf";
        let text = format!(
            "\n {{ \"description\" : \"a {{ [ \\\" \\\\ \\u00e9 }}\" ,\"name\":\"p\",\"versions\"\t:\r\n[ \
             {{\"components\": [\"x}}\", \"]\"], \"extra\": {{\"a\": [1, 2.5e3, null, {{}}]}}, \"version\": \"1.0.0\", \"checksum\": \"{digest}\", \"size_bytes\": 7}} ,\
             {{\"version\":\"2.0.0-rc.1\",\"yanked\":true,\"checksum\":\"{digest}\",\"size_bytes\":1x}}\
             ], \"version\": \"1.0.0\", \"tags\": {{}} }} \n"
        );
        let (name, scanned) = scan::document(&text).expect("scanned");
        assert_eq!(name, "p");
        let seen: Vec<(&str, bool)> = scanned.iter().map(|s| (s.version.as_str(), s.yanked)).collect();
        assert_eq!(seen, [("1.0.0", false), ("2.0.0-rc.1", true)]);
        let (_, by_serde) = outline(&text.replace("1x", "1")).unwrap();
        assert_eq!(
            by_serde.iter().map(|e| (&*e.version, e.yanked)).collect::<Vec<_>>(),
            seen
        );
        let list = list("p", &text).unwrap();
        assert_eq!(list.record(0).unwrap().unwrap().size_bytes, 7);
        // `1x` was skipped, not checked: it is refused when asked for.
        let Err(RegistryError::Corrupt { reason, .. }) = list.record(1) else {
            panic!("1x was accepted as a size");
        };
        assert!(reason.contains("line 3 column"), "{reason}");
        assert_eq!(reason, full(&text).unwrap_err());
        for odd in [
            r#"{"name": "p", "name": "p"}"#,
            r#"{"name": "p\u0070"}"#,
            "{\"name\": \"p\tq\"}",
            "{\"name\": \"p\", \"versions\": [{\"version\": \"1\u{1}\"}]}",
            r#"{"name": "p"} x"#,
            r#"{"name": "p", "versions": [{"version": "1", "yanked": 1}]}"#,
        ] {
            assert!(scan::document(odd).is_none(), "{odd}");
        }
    }

    /// What the partial read does not handle goes to the full read, which
    /// accepts or refuses exactly as before.
    #[test]
    fn documents_the_partial_read_refuses_are_read_in_full() {
        let record =
            r#""checksum": "1e5a69bd916ffd77819afb02ef17483d89dac919df0f6c108acf99df9d449acf", "size_bytes": 1"#;
        let cases = [
            // An escaped key: not borrowed, read in full.
            format!(r#"{{"name": "p", "version": "1.0.0", "versions": [{{"vers\u0069on": "1.0.0", {record}}}]}}"#),
            // Not a document at all.
            "[1, 2]".to_owned(),
            format!(r#"{{"name": "p", "version": "1.0.0", "versions": [{{"version": 1, {record}}}]}}"#),
            format!(
                r#"{{"name": "p", "version": "1.0.0", "versions": [{{"version": "1.0.0", "version": "2.0.0", {record}}}]}}"#
            ),
            format!(r#"{{"name": "p", "versions": [{{"version": "1.0.0", {record}}}], "versions": []}}"#),
            format!(r#"{{"name": "q", "version": "1.0.0", "versions": [{{"version": "1.0.0", {record}}}]}}"#),
            r#"{"name": "p", "version": "1.0.0", "versions": ["1.0.0"]}"#.to_owned(),
            r#"{"name": "p", "version": "1.0.0", "versions": [{}]}"#.to_owned(),
        ];
        for text in &cases {
            match (full(text), list("p", text)) {
                (Ok(doc), Ok(list)) => {
                    let versions = doc.versions.as_deref().unwrap_or_default();
                    assert_eq!(list.entries().len(), versions.len(), "{text}");
                    for (i, r) in versions.iter().enumerate() {
                        assert_eq!(list.record(i).unwrap(), Some(r), "{text}");
                    }
                }
                (Err(full), Err(part)) => assert_eq!(part, full, "{text}"),
                (Ok(doc), Err(part)) if doc.info.name != "p" => assert!(part.contains("names package"), "{part}"),
                (full, part) => panic!("{text}: full {full:?}, in part {:?}", part.map(|l| l.entries().len())),
            }
        }
    }
}
