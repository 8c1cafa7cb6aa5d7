//! A persistent memo of what the yank check ([`super::yanked::check`])
//! found in a directory registry's documents, so that a plain `fm sync`
//! of an unchanged registry reads no document at all.
//!
//! ```text
//! {cache}/yank-memo/{sha256(registry folder)[..32]}.txt
//!
//! fm-yank-memo 1
//! registry /srv/fm-registry
//! {name} {dev} {ino} {size} {mtime_ns} {ctime_ns} {yanked versions, comma-separated, or -}
//! ```
//!
//! One line a document: the stat data of `index/{name}.json` when it was
//! read, and the versions it marked yanked. A document whose stat data is
//! unchanged is not read again; one that changed (a publish, a yank, an
//! un-yank: each rewrites the document) is read and its line replaced.
//!
//! Rules kept here:
//! - the memo is cache content, so untrusted (shared by every project of
//!   the user, and restorable from a CI cache): a memo that does not parse
//!   in full, or that names another registry folder, is ignored as a whole;
//!   a poisoned memo can at worst hide a yank *warning* — it never takes
//!   part in what is installed (that is decided by fm.lock and verified by
//!   SHA-256);
//! - it is read and written through folder handles that never follow a
//!   link ([`crate::install::nofollow`]): written atomically (a new file
//!   renamed over the old one, so a hard link to elsewhere is never
//!   written through), and a link planted at its place is refused, not
//!   followed;
//! - a document changed within [`RACY`] of the check is not memoized (its
//!   file system's clock tick may hide a second change of the same size,
//!   as git's "racily clean" index entries);
//! - best effort: any failure to read or write it only costs reads.

use std::collections::HashMap;
use std::path::Path;

use sha2::Digest as _;

use crate::install::nofollow::Dir;
use crate::registry::PackageDocument;

const HEADER: &str = "fm-yank-memo 1";
const FOLDER: &str = "yank-memo";
/// A memo larger than this is not read (a registry of 100,000 packages
/// gives about 8 MB).
const MAX_BYTES: u64 = 32 << 20;
/// Documents changed this recently are read again next time.
const RACY: i64 = 100_000_000;

/// The stat data of one document file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Stat {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
}

#[derive(Debug, Clone)]
struct Entry {
    stat: Stat,
    yanked: Vec<semver::Version>,
}

/// The memo of one directory registry, as loaded, and what this run
/// learned.
#[derive(Debug)]
pub(crate) struct Memo {
    /// The registry folder's `index/` (a directory registry), else `None`:
    /// entries are then vouched for by [`Memo::checkpoint`].
    index: Option<Index>,
    /// What the memo is of: the folder's path, or the registry's URL.
    subject: String,
    /// The log checkpoint (size, root hash) the entries are true at (an
    /// HTTP registry with a transparency log).
    checkpoint: Option<(u64, String)>,
    file: String,
    entries: HashMap<String, Entry>,
    changed: bool,
    /// When this run started, ns since the epoch (for [`RACY`]).
    started_ns: i64,
}

impl Memo {
    /// The memo for the registry folder `root` from the cache `cache`;
    /// empty when there is none or it is not to be trusted. `None` when
    /// the registry cannot have one (a path that does not fit a line).
    pub(crate) fn load(cache: &Path, root: &Path) -> Option<Memo> {
        let shown = root.to_str()?;
        let index = Index::open(root)?;
        let mut memo = Memo::load_of(cache, shown)?;
        memo.index = Some(index);
        Some(memo)
    }

    /// The memo of the logged registry at `url` (its canonical URL without
    /// credentials), valid at the log checkpoint `now` (size, root hash):
    /// entries of packages that the log's records from the memo's
    /// checkpoint up to `now` name are dropped by [`Memo::advance`].
    pub(crate) fn load_logged(cache: &Path, url: &str) -> Option<Memo> {
        Memo::load_of(cache, url)
    }

    fn load_of(cache: &Path, subject: &str) -> Option<Memo> {
        if subject.contains(['\n', '\r']) {
            return None;
        }
        let key = hex(&sha2::Sha256::digest(subject.as_bytes()));
        let mut memo = Memo {
            index: None,
            subject: subject.to_owned(),
            checkpoint: None,
            file: format!("{}.txt", &key[..32]),
            entries: HashMap::new(),
            changed: false,
            started_ns: now_ns(),
        };
        if let Some(text) = read(cache, &memo.file)
            && let Some((checkpoint, entries)) = parse(&text, subject)
        {
            memo.checkpoint = checkpoint;
            memo.entries = entries;
        }
        Some(memo)
    }

    /// Whether this is a logged registry's memo, at a checkpoint.
    pub(crate) fn is_logged(&self) -> bool {
        self.index.is_none() && self.checkpoint.is_some()
    }

    /// The log checkpoint this memo's entries are true at.
    pub(crate) fn checkpoint(&self) -> Option<&(u64, String)> {
        self.checkpoint.as_ref()
    }

    /// Moves a logged registry's memo to checkpoint `now`: `changed` names
    /// the packages the log recorded since the memo's checkpoint (their
    /// entries are dropped); `None` (unknown, or the log is not an
    /// extension of the memo's) drops every entry.
    pub(crate) fn advance(&mut self, now: (u64, String), changed: Option<&std::collections::HashSet<String>>) {
        if self.checkpoint.as_ref() == Some(&now) {
            return;
        }
        match changed {
            Some(names) => self.entries.retain(|n, _| !names.contains(n)),
            None => self.entries.clear(),
        }
        self.checkpoint = Some(now);
        self.changed = true;
    }

    /// A logged registry's memoized yanked versions of `name` (true at
    /// [`Memo::checkpoint`]).
    pub(crate) fn logged_yanked(&self, name: &str) -> Option<&[semver::Version]> {
        if !self.is_logged() {
            return None;
        }
        self.entries.get(name).map(|e| e.yanked.as_slice())
    }

    /// Notes what `doc`, read after the memo's checkpoint, marks yanked.
    pub(crate) fn record_logged(&mut self, name: &str, doc: &PackageDocument) {
        let yanked = yanked_in(doc);
        self.entries.insert(
            name.to_owned(),
            Entry {
                stat: Stat::default(),
                yanked,
            },
        );
        self.changed = true;
    }

    /// The current stat data of `name`'s document (`None`: none, or not
    /// readable; the document is then read as before).
    pub(crate) fn stat(&self, name: &str) -> Option<Stat> {
        self.index.as_ref()?.stat(name)
    }

    /// The yanked versions memoized for `name`, if its document still has
    /// the stat data `now`.
    pub(crate) fn yanked(&self, name: &str, now: &Stat) -> Option<&[semver::Version]> {
        self.entries
            .get(name)
            .filter(|e| e.stat == *now)
            .map(|e| e.yanked.as_slice())
    }

    /// Notes what `doc`, read after its file had the stat data `stat`,
    /// marks yanked.
    pub(crate) fn record(&mut self, name: &str, stat: Stat, doc: &PackageDocument) {
        let racy = self.started_ns.saturating_sub(RACY);
        if stat.mtime_ns >= racy || stat.ctime_ns >= racy {
            // Too recent to vouch for: read again next time.
            self.changed |= self.entries.remove(name).is_some();
            return;
        }
        let yanked = yanked_in(doc);
        self.entries.insert(name.to_owned(), Entry { stat, yanked });
        self.changed = true;
    }

    /// Writes the memo back if this run changed it (best effort).
    pub(crate) fn save(&self, cache: &Path) {
        if !self.changed {
            return;
        }
        let mut names: Vec<&String> = self.entries.keys().collect();
        names.sort();
        let mut out = String::with_capacity(64 + names.len() * 64);
        out.push_str(HEADER);
        out.push_str("\nregistry ");
        out.push_str(&self.subject);
        out.push('\n');
        if let Some((size, hash)) = &self.checkpoint {
            out.push_str(&format!("checkpoint {size} {hash}\n"));
        }
        for name in names {
            let e = &self.entries[name];
            let s = &e.stat;
            let versions = if e.yanked.is_empty() {
                "-".to_owned()
            } else {
                e.yanked.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
            };
            out.push_str(&format!(
                "{name} {} {} {} {} {} {versions}\n",
                s.dev, s.ino, s.size, s.mtime_ns, s.ctime_ns
            ));
        }
        let write = || -> Result<(), crate::install::nofollow::DirError> {
            let (root, _) = Dir::create_path(cache)?;
            let (dir, _) = root.create_dir(FOLDER)?;
            dir.write_atomic(&self.file, out.as_bytes())
        };
        let _ = write();
    }
}

/// The memo file's text, read without following a link; `None` if it is
/// absent, a link, too large or not text.
fn read(cache: &Path, file: &str) -> Option<String> {
    let root = Dir::open_path(cache).ok()??;
    let dir = root.open_dir(FOLDER).ok()??;
    let meta = dir.meta(file).ok()??;
    if meta.size > MAX_BYTES {
        return None;
    }
    let (bytes, _) = dir.read_file(file).ok()??;
    String::from_utf8(bytes).ok()
}

/// What `doc` marks yanked, sorted.
fn yanked_in(doc: &PackageDocument) -> Vec<semver::Version> {
    let mut yanked: Vec<semver::Version> = doc
        .versions
        .iter()
        .flatten()
        .filter(|r| r.yanked)
        .filter_map(|r| r.semver())
        .collect();
    yanked.sort();
    yanked.dedup();
    yanked
}

type Parsed = (Option<(u64, String)>, HashMap<String, Entry>);

/// The checkpoint and entries of a memo's text, if it is a whole, valid
/// memo of `subject` (a registry folder or URL).
fn parse(text: &str, subject: &str) -> Option<Parsed> {
    let mut lines = text.split_terminator('\n').peekable();
    if lines.next()? != HEADER || lines.next()?.strip_prefix("registry ")? != subject {
        return None;
    }
    let checkpoint = match lines.next_if(|l| l.starts_with("checkpoint ")) {
        Some(l) => {
            let mut f = l.split(' ').skip(1);
            let size = f.next()?.parse().ok()?;
            let hash = f.next()?;
            if hash.is_empty() || !hash.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)) {
                return None;
            }
            if f.next().is_some() {
                return None;
            }
            Some((size, hash.to_owned()))
        }
        None => None,
    };
    let mut entries = HashMap::new();
    for line in lines {
        let mut f = line.split(' ');
        let name = f.next()?;
        // Only looked up by (valid) locked names; this keeps the file's
        // lines whole when written back.
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_".contains(&b))
        {
            return None;
        }
        let stat = Stat {
            dev: f.next()?.parse().ok()?,
            ino: f.next()?.parse().ok()?,
            size: f.next()?.parse().ok()?,
            mtime_ns: f.next()?.parse().ok()?,
            ctime_ns: f.next()?.parse().ok()?,
        };
        let yanked = match f.next()? {
            "-" => Vec::new(),
            list => list
                .split(',')
                .map(|v| semver::Version::parse(v).ok())
                .collect::<Option<Vec<_>>>()?,
        };
        if f.next().is_some() || entries.insert(name.to_owned(), Entry { stat, yanked }).is_some() {
            return None;
        }
    }
    Some((checkpoint, entries))
}

/// A directory registry's `index/` folder, open: each document is
/// stat'ed relative to it (one path component for the kernel to walk,
/// not the whole registry path). Links are followed, as the registry's
/// own reads follow them.
#[derive(Debug)]
struct Index {
    #[cfg(unix)]
    fd: std::os::fd::OwnedFd,
}

impl Index {
    #[cfg(unix)]
    fn open(root: &Path) -> Option<Index> {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(root.join("index"), flags, Mode::empty()).ok()?;
        Some(Index { fd })
    }

    /// Without inode and status-change time a changed document could look
    /// unchanged: no memo.
    #[cfg(not(unix))]
    fn open(_: &Path) -> Option<Index> {
        None
    }

    /// The stat data of `index/{name}.json`.
    #[cfg(unix)]
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    fn stat(&self, name: &str) -> Option<Stat> {
        let mut file = String::with_capacity(name.len() + 5);
        file.push_str(name);
        file.push_str(".json");
        let st = rustix::fs::statat(&self.fd, file.as_str(), rustix::fs::AtFlags::empty()).ok()?;
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        Some(Stat {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            size: st.st_size as u64,
            mtime_ns: ns(st.st_mtime as i64, st.st_mtime_nsec as i64),
            ctime_ns: ns(st.st_ctime as i64, st.st_ctime_nsec as i64),
        })
    }

    #[cfg(not(unix))]
    fn stat(&self, _: &str) -> Option<Stat> {
        None
    }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memo_is_read_only_whole_and_only_for_its_own_registry() {
        let good = "fm-yank-memo 1\nregistry /r\nutil 1 2 3 4 5 1.1.0,1.2.0\nother 1 3 3 4 5 -\n";
        let (cp, e) = parse(good, "/r").expect("valid");
        assert!(cp.is_none());
        assert_eq!(e["util"].yanked.len(), 2);
        assert!(e["other"].yanked.is_empty());
        assert!(parse(good, "/elsewhere").is_none());
        for bad in [
            "",
            "garbage",
            "fm-yank-memo 2\nregistry /r\n",
            "fm-yank-memo 1\nregistry /r\nutil 1 2 3 4 5\n",
            "fm-yank-memo 1\nregistry /r\nutil 1 2 3 4 5 - extra\n",
            "fm-yank-memo 1\nregistry /r\nutil 1 2 x 4 5 -\n",
            "fm-yank-memo 1\nregistry /r\nutil 1 2 3 4 5 not-a-version\n",
            "fm-yank-memo 1\nregistry /r\n../x 1 2 3 4 5 -\n",
            "fm-yank-memo 1\nregistry /r\nutil 1 2 3 4 5 -\nutil 1 2 3 4 5 -\n",
            "fm-yank-memo 1\nregistry /r\ncheckpoint 12\n",
            "fm-yank-memo 1\nregistry /r\ncheckpoint 12 a\\nb\n",
            "fm-yank-memo 1\nregistry /r\ncheckpoint x abc=\n",
        ] {
            assert!(parse(bad, "/r").is_none(), "{bad:?}");
        }
    }
}
