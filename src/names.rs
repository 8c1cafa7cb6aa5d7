//! Package, project and registry names: `[a-z0-9][a-z0-9-_]{0,63}` (SPEC §1).
//!
//! Names become folder and file names (`.fm/packages/{name}/`,
//! `index/{name}.json`), so this one check is also what keeps a hostile
//! name (`../x`, `CON`, upper case, look-alike unicode) from reaching the
//! file system: everything that takes a name from a user, a manifest, an
//! archive or the network passes through [`validate`].

/// What to tell a user whose name was refused.
pub const HELP: &str = "names are 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit";

/// Names that Windows reserves for devices, refused everywhere so a registry
/// copied to a Windows host still works.
const RESERVED: &[&str] = &[
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8", "com9", "lpt1", "lpt2",
    "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// Whether Windows reserves `stem` (a file name before its first `.`) for a
/// device, in any case: the names above, `COM`/`LPT` with a superscript
/// digit, and the console's `CONIN$`/`CONOUT$`.
pub fn is_windows_device(stem: &str) -> bool {
    let lower = stem.to_lowercase();
    RESERVED.contains(&lower.as_str())
        || matches!(lower.as_str(), "conin$" | "conout$")
        || ["com", "lpt"].iter().any(|p| {
            lower
                .strip_prefix(p)
                .is_some_and(|d| matches!(d, "\u{b9}" | "\u{b2}" | "\u{b3}"))
        })
}

/// Why a name was refused; its `Display` is the reason, to follow
/// "invalid package name …: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// An upper-case ASCII letter (names are lower case).
    #[error("it contains the upper-case letter {0:?} (names are lower case)")]
    UpperCase(char),
    /// The empty name.
    #[error("it is empty")]
    Empty,
    /// A first character that is neither a letter nor a digit.
    #[error("it starts with {0:?}")]
    Start(char),
    /// Over 64 bytes (the count shown is in characters).
    #[error("it is {0} characters long (at most 64)")]
    TooLong(usize),
    /// A character outside `a-z0-9-_`.
    #[error("it contains {0:?}")]
    Character(char),
    /// A device name Windows reserves (`con`, `lpt1`, …).
    #[error("it is a reserved device name on Windows")]
    Reserved,
}

/// Checks a name; the error says why it was refused.
pub fn validate(name: &str) -> Result<(), NameError> {
    let bytes = name.as_bytes();
    if let Some(upper) = name.chars().find(char::is_ascii_uppercase) {
        return Err(NameError::UpperCase(upper));
    }
    match bytes.first() {
        None => return Err(NameError::Empty),
        Some(c) if !(c.is_ascii_lowercase() || c.is_ascii_digit()) => {
            return Err(NameError::Start(name.chars().next().unwrap_or(' ')));
        }
        Some(_) => {}
    }
    if bytes.len() > 64 {
        return Err(NameError::TooLong(name.chars().count()));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        return Err(NameError::Character(bad));
    }
    if RESERVED.contains(&name) {
        return Err(NameError::Reserved);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn accepts_and_refuses() {
        for ok in ["a", "text-utils", "x_1", "0abc"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "A", "../x", "a/b", "con", "tеxt", &"a".repeat(65)] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }
}
