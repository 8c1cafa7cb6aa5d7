//! clap value parsers: a value that is not well formed is a usage error
//! (exit 2) before any command runs.

/// A [`parse_duration`] that is not zero.
pub(super) fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err(format!("{text:?}: a timeout must be longer than 0")),
        d => Ok(d),
    }
}

/// `PKG`: a valid package name (a usage error otherwise, exit 2).
pub(super) fn package_name(text: &str) -> Result<String, String> {
    crate::names::validate(text).map_err(|why| format!("invalid name {text:?}: {why}; {}", crate::names::HELP))?;
    Ok(text.to_owned())
}

/// `--version V`: a version or a requirement.
pub(super) fn requirement(text: &str) -> Result<String, String> {
    crate::req::Requirement::parse(text).map_err(|e| {
        format!("invalid version requirement {text:?}: {e}; use a version (1.2.0) or a requirement (^1.2, >=1.0, <2)")
    })?;
    Ok(text.to_owned())
}

/// `PKG[@REQ]`: a valid name and, if given, a requirement fm can parse.
pub(super) fn package_spec(text: &str) -> Result<String, String> {
    let (name, req) = match text.split_once('@') {
        Some((n, r)) => (n, Some(r)),
        None => (text, None),
    };
    package_name(name)?;
    if let Some(r) = req {
        crate::req::Requirement::parse(r).map_err(|e| {
            format!(
                "invalid version requirement {r:?} for {name}: {e}; for example `{name}@^1.2` or `{name}@>=1.0, <2`"
            )
        })?;
    }
    Ok(text.to_owned())
}

/// `PKG@VERSION`: a valid name and an exact version.
pub(super) fn package_at_version(text: &str) -> Result<String, String> {
    let Some((name, version)) = text.split_once('@') else {
        return Err(format!(
            "expected PKG@VERSION, for example summarizer@1.0.4, got {text:?}"
        ));
    };
    package_name(name)?;
    semver::Version::parse(version).map_err(|e| format!("invalid version {version:?}: {e}; give an exact version"))?;
    Ok(text.to_owned())
}

/// `--host`: an IP address or a host name.
pub(super) fn bind_host(text: &str) -> Result<String, String> {
    let bare = text.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(text);
    let ok = bare.parse::<std::net::IpAddr>().is_ok()
        || (!bare.is_empty()
            && bare.len() <= 253
            && bare
                .split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')));
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!("{text:?} is not an IP address or a host name"))
    }
}

/// `--bind HOST:PORT`, checked here so that a bad address is a usage error.
pub(super) fn bind_address(text: &str) -> Result<String, String> {
    let bad = || format!("{text:?} is not HOST:PORT (for example 127.0.0.1:8999, [::1]:8999, localhost:0)");
    if text.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(text.to_owned());
    }
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    port.parse::<u16>().map_err(|_| bad())?;
    if host.contains(':') && !host.starts_with('[') {
        return Err(bad());
    }
    bind_host(host).map_err(|_| bad())?;
    Ok(text.to_owned())
}

/// `0`, `250ms`, `2s`, `5m`, `1h` (a bare number is seconds).
pub(super) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{text:?}: expected a duration such as 500ms, 2s, 5m or 1h"))?;
    let ms = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    ms.map(std::time::Duration::from_millis)
        .ok_or_else(|| format!("{text:?}: too long"))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn bind_addresses() {
        use super::bind_address;
        for ok in ["127.0.0.1:8999", "[::1]:0", "localhost:0", "0.0.0.0:80"] {
            assert!(bind_address(ok).is_ok(), "{ok}");
        }
        for bad in [
            "nonsense",
            "127.0.0.1",
            "127.0.0.1:99999",
            ":80",
            "::1:80",
            "a b:80",
            "host:",
        ] {
            assert!(bind_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("2 days").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
    }
}
