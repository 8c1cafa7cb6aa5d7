//! Where packages are installed, and opening that place without following
//! a link.
//!
//! A layout is an *anchor* (a folder the user named: the project root, the
//! current directory for a relative `--dir`, the parent of an absolute
//! one), which is opened as the user's path, and a *chain* of folders below
//! it (`.fm`, `packages`; or the parts of a relative `--dir`), each opened
//! with [`Dir::open_dir`], so none of them may be a link. The state and lock
//! files are checked the same way. Whatever is found a link is refused
//! before anything is read, fetched or written.

use std::path::{Component, Path, PathBuf};

use super::InstallError;
use super::nofollow::{Dir, Kind};

/// Where packages are installed, and fm's files beside them.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The folder holding one folder per package.
    pub packages: PathBuf,
    /// The state file.
    pub state: PathBuf,
    /// The lock file held while installing.
    pub lock: PathBuf,
    /// Whether fm owns `packages` unconditionally (`.fm/packages`).
    pub owned: bool,
    anchor: PathBuf,
    /// Folder names from the anchor down to `packages`.
    chain: Vec<String>,
    /// How many of `chain` lead to the folder of the state and lock files.
    meta_depth: usize,
    state_name: &'static str,
    lock_name: &'static str,
}

/// A layout opened: handles on the folder of the state and lock files and
/// on the packages folder.
#[derive(Debug)]
pub struct Opened {
    pub meta: Dir,
    pub packages: Dir,
    /// Folders of the chain this run created (parent, name), outermost
    /// first: removed again if the run fails and they are still empty.
    created: Vec<(Dir, String)>,
}

impl Layout {
    /// A project's layout: `{root}/.fm/packages`, `.fm/state.toml`,
    /// `.fm/.lock`. `.fm` and `.fm/packages` must not be links.
    pub fn project(root: &Path) -> Layout {
        let fm = root.join(".fm");
        Layout {
            packages: fm.join("packages"),
            state: fm.join("state.toml"),
            lock: fm.join(".lock"),
            owned: true,
            anchor: root.to_owned(),
            chain: vec![".fm".to_owned(), "packages".to_owned()],
            meta_depth: 1,
            state_name: "state.toml",
            lock_name: ".lock",
        }
    }

    /// A `--dir D` layout: packages in `D`, with `D/.fm-state.toml` and
    /// `D/.fm-lock`. `D` itself must not be a link (the folders above it
    /// are the user's path).
    pub fn dir(dir: &Path) -> Layout {
        match (dir.parent(), dir.file_name().and_then(|n| n.to_str())) {
            (Some(parent), Some(name)) => Layout::dir_chain(parent, vec![name.to_owned()]),
            _ => Layout::dir_chain(dir, Vec::new()),
        }
    }

    /// `--dir D` as typed, relative to `cwd`: when `D` is relative, none of
    /// its folders below `cwd` (after its last `..`) may be a link, since a
    /// script naming `--dir vendor/fm` may come from the repository.
    pub fn dir_in(cwd: &Path, dir: &Path) -> Layout {
        if dir.is_absolute() {
            return Layout::dir(dir);
        }
        let comps: Vec<Component<'_>> = dir.components().collect();
        let split = comps
            .iter()
            .rposition(|c| !matches!(c, Component::Normal(_)))
            .map_or(0, |i| i + 1);
        let mut anchor = cwd.to_owned();
        for c in &comps[..split] {
            anchor.push(c.as_os_str());
        }
        let mut chain = Vec::new();
        for c in &comps[split..] {
            match c.as_os_str().to_str() {
                Some(s) => chain.push(s.to_owned()),
                // Not UTF-8: fall back to the whole path as the user's.
                None => return Layout::dir(&cwd.join(dir)),
            }
        }
        Layout::dir_chain(&anchor, chain)
    }

    fn dir_chain(anchor: &Path, chain: Vec<String>) -> Layout {
        let mut packages = anchor.to_owned();
        packages.extend(&chain);
        Layout {
            state: packages.join(".fm-state.toml"),
            lock: packages.join(".fm-lock"),
            packages,
            owned: false,
            anchor: anchor.to_owned(),
            meta_depth: chain.len(),
            chain,
            state_name: ".fm-state.toml",
            lock_name: ".fm-lock",
        }
    }

    /// The state file's name in [`Opened::meta`].
    pub fn state_name(&self) -> &'static str {
        self.state_name
    }

    /// The lock file's name in [`Opened::meta`].
    pub fn lock_name(&self) -> &'static str {
        self.lock_name
    }

    /// Whether an entry of the packages folder is fm's own bookkeeping (a
    /// package name never starts with a dot).
    pub fn is_own_entry(name: &str) -> bool {
        name.starts_with('.')
    }

    /// Opens the layout without following a link anywhere in the chain;
    /// `create` creates missing folders, otherwise `Ok(None)` means
    /// nothing is installed. A link (or a file) where a folder, the state
    /// file or the lock file belongs is an error naming it.
    pub fn open(&self, create: bool) -> Result<Option<Opened>, InstallError> {
        let mut created = Vec::new();
        let mut dir = if create {
            let (d, _) = Dir::create_path(&self.anchor)?;
            d
        } else {
            match Dir::open_path(&self.anchor)? {
                Some(d) => d,
                None => return Ok(None),
            }
        };
        let mut meta = None;
        for (i, name) in self.chain.iter().enumerate() {
            if i == self.meta_depth {
                meta = Some(dir.try_clone()?);
            }
            let next = if create {
                let (next, made) = dir.create_dir(name)?;
                if made {
                    created.push((dir.try_clone()?, name.clone()));
                }
                next
            } else {
                match dir.open_dir(name)? {
                    Some(d) => d,
                    None => {
                        // Even with nothing installed, the state and lock
                        // files must not be links (`.fm/.lock` is created
                        // first thing).
                        if let Some(m) = meta.as_ref() {
                            self.check_files(m)?;
                        }
                        return Ok(None);
                    }
                }
            };
            dir = next;
        }
        let meta = match meta {
            Some(m) => m,
            None => dir.try_clone()?,
        };
        self.check_files(&meta)?;
        Ok(Some(Opened {
            meta,
            packages: dir,
            created,
        }))
    }

    fn check_files(&self, meta: &Dir) -> Result<(), InstallError> {
        for name in [self.state_name, self.lock_name] {
            match meta.meta(name)? {
                Some(m) if m.kind == Kind::Link => {
                    return Err(InstallError::Link {
                        path: meta.join(name).display().to_string(),
                    });
                }
                Some(m) if m.kind != Kind::File => {
                    return Err(InstallError::Io {
                        what: meta.join(name).display().to_string(),
                        source: std::io::Error::other("not a regular file"),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl Opened {
    /// After a failed run: removes the folders this run created, if they
    /// are empty but for the lock file (innermost first). Best effort.
    pub fn undo_created(&self, lock_name: &str) {
        for (parent, name) in self.created.iter().rev() {
            if let Ok(Some(d)) = parent.open_dir(name) {
                let _ = d.remove_file(lock_name);
            }
            let _ = parent.remove_dir(name);
        }
    }
}
