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

/// Checks a name; the error says why it was refused.
pub fn validate(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    if let Some(upper) = name.chars().find(char::is_ascii_uppercase) {
        return Err(format!(
            "it contains the upper-case letter {upper:?} (names are lower case)"
        ));
    }
    match bytes.first() {
        None => return Err("it is empty".to_owned()),
        Some(c) if !(c.is_ascii_lowercase() || c.is_ascii_digit()) => {
            return Err(format!("it starts with {:?}", name.chars().next().unwrap_or(' ')));
        }
        Some(_) => {}
    }
    if bytes.len() > 64 {
        return Err(format!("it is {} characters long (at most 64)", name.chars().count()));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        return Err(format!("it contains {bad:?}"));
    }
    if RESERVED.contains(&name) {
        return Err("it is a reserved device name on Windows".to_owned());
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
