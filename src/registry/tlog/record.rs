//! One log record: what a registry did, as a small, deterministic,
//! line-based text (SPEC §9). The bytes are the leaf: its hash is RFC 6962's
//! `record_hash(bytes)`.
//!
//! ```text
//! fm-log v1
//! publish summarizer 1.4.2
//! sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//! size 48213
//! time 2026-12-01T20:00:00Z
//! ```
//!
//! `yank` and `unyank` records name the version and its sha256 and have no
//! `size` line. Parsing is strict: a record parses only if writing it back
//! gives the same bytes, so one record has exactly one encoding.

use std::fmt;

/// Largest record fm writes or reads (an entry bundle stores lengths as
/// 16-bit numbers; real records are ~200 bytes).
pub const MAX_RECORD_BYTES: usize = 4096;

/// What happened to a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Publish,
    Yank,
    Unyank,
}

impl Action {
    fn word(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Yank => "yank",
            Action::Unyank => "unyank",
        }
    }
}

/// A parsed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub action: Action,
    pub name: String,
    pub version: String,
    /// Lowercase hex SHA-256 of the archive.
    pub sha256: String,
    /// The archive's size in bytes (publish records only).
    pub size: Option<u64>,
    /// RFC 3339, UTC.
    pub time: String,
}

/// Why bytes are not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an fm log record: {0}")]
pub struct RecordError(pub String);

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 200 && s.bytes().all(|b| b.is_ascii_graphic())
}

impl Record {
    /// A publish record.
    pub fn publish(name: &str, version: &str, sha256: &str, size: u64, time: &str) -> Record {
        Record {
            action: Action::Publish,
            name: name.to_owned(),
            version: version.to_owned(),
            sha256: sha256.to_ascii_lowercase(),
            size: Some(size),
            time: time.to_owned(),
        }
    }

    /// A yank (`yanked`) or un-yank record.
    pub fn yank(name: &str, version: &str, sha256: &str, yanked: bool, time: &str) -> Record {
        Record {
            action: if yanked { Action::Yank } else { Action::Unyank },
            name: name.to_owned(),
            version: version.to_owned(),
            sha256: sha256.to_ascii_lowercase(),
            size: None,
            time: time.to_owned(),
        }
    }

    /// The record's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = format!(
            "fm-log v1\n{} {} {}\nsha256 {}\n",
            self.action.word(),
            self.name,
            self.version,
            self.sha256
        );
        if let Some(size) = self.size {
            s.push_str(&format!("size {size}\n"));
        }
        s.push_str(&format!("time {}\n", self.time));
        s.into_bytes()
    }

    /// Parses a record; refuses anything [`Record::to_bytes`] would not
    /// write byte for byte.
    pub fn parse(bytes: &[u8]) -> Result<Record, RecordError> {
        let bad = |why: &str| RecordError(why.to_owned());
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(bad("longer than 4096 bytes"));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
        let mut lines = text.split('\n');
        if lines.next() != Some("fm-log v1") {
            return Err(bad("the first line is not `fm-log v1`"));
        }
        let head: Vec<&str> = lines.next().unwrap_or("").split(' ').collect();
        let [word, name, version] = head[..] else {
            return Err(bad("the second line is not `ACTION NAME VERSION`"));
        };
        let action = match word {
            "publish" => Action::Publish,
            "yank" => Action::Yank,
            "unyank" => Action::Unyank,
            _ => return Err(bad("unknown action")),
        };
        if !is_token(name) || !is_token(version) {
            return Err(bad("bad package name or version"));
        }
        semver::Version::parse(version).map_err(|_| bad("the version is not semver"))?;
        let field = |line: Option<&str>, key: &str| -> Result<String, RecordError> {
            line.and_then(|l| l.strip_prefix(key))
                .and_then(|l| l.strip_prefix(' '))
                .map(str::to_owned)
                .ok_or_else(|| RecordError(format!("missing `{key}` line")))
        };
        let sha256 = field(lines.next(), "sha256")?;
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(bad("sha256 is not 64 lowercase hex digits"));
        }
        let size = if action == Action::Publish {
            let s = field(lines.next(), "size")?;
            Some(s.parse::<u64>().map_err(|_| bad("size is not a number"))?)
        } else {
            None
        };
        let time = field(lines.next(), "time")?;
        if !is_token(&time) || time.parse::<jiff::Timestamp>().is_err() {
            return Err(bad("time is not an RFC 3339 timestamp"));
        }
        let record = Record {
            action,
            name: name.to_owned(),
            version: version.to_owned(),
            sha256,
            size,
            time,
        };
        if record.to_bytes() != bytes {
            return Err(bad("not in canonical form"));
        }
        Ok(record)
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}@{} (sha256 {})",
            self.action.word(),
            self.name,
            self.version,
            self.sha256
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn round_trip() {
        for r in [
            Record::publish("summarizer", "1.4.2", SHA, 48213, "2026-12-01T20:00:00Z"),
            Record::yank("summarizer", "1.4.2", SHA, true, "2026-12-01T20:00:01Z"),
            Record::yank("summarizer", "1.4.2-beta.1", SHA, false, "2026-12-01T20:00:02Z"),
        ] {
            assert_eq!(Record::parse(&r.to_bytes()), Ok(r.clone()));
        }
        insta::assert_snapshot!(
            String::from_utf8(Record::publish("summarizer", "1.4.2", SHA, 48213, "2026-12-01T20:00:00Z").to_bytes()).unwrap(),
            @r"
        fm-log v1
        publish summarizer 1.4.2
        sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
        size 48213
        time 2026-12-01T20:00:00Z
        "
        );
    }

    #[test]
    fn non_canonical_is_refused() {
        let good = Record::publish("a", "1.0.0", SHA, 1, "2026-12-01T20:00:00Z").to_bytes();
        let text = String::from_utf8(good).unwrap();
        for bad in [
            text.replace("fm-log v1", "fm-log v2"),
            text.replace("size 1", "size 01"),
            text.replace(SHA, &SHA.to_uppercase()),
            text.replace("1.0.0", "1.0"),
            text.trim_end().to_owned(),
            format!("{text}extra\n"),
            text.replace("publish", "yank"),
            text.replace("time 2026-12-01T20:00:00Z", "time yesterday"),
        ] {
            assert!(Record::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }
}
