//! Where the CLI keeps the server's URL and the session token between runs:
//! `$XDG_CONFIG_HOME/corral/config.toml`, else `~/.config/corral/config.toml`, mode 0600.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use anyhow::Context;
use serde::Deserialize;

/// The URL a client talks to when nothing else says otherwise (the server's default).
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// What `login` saved.
#[derive(Debug, Default, Deserialize)]
pub struct Saved {
    /// The server the token belongs to.
    pub url: Option<String>,
    /// The bearer token for `url`.
    pub token: Option<String>,
}

/// The config file's path.
pub fn path() -> anyhow::Result<PathBuf> {
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    // The XDG spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
    let dir = match absolute("XDG_CONFIG_HOME") {
        Some(dir) => dir,
        None => absolute("HOME")
            .context("cannot find a config directory: set HOME or XDG_CONFIG_HOME")?
            .join(".config"),
    };
    Ok(dir.join("corral").join("config.toml"))
}

/// What was saved, or nothing when there is no file yet.
pub fn load() -> anyhow::Result<Saved> {
    let path = path()?;
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            toml::from_str(&text).with_context(|| format!("cannot read {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Saved::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Replaces the saved settings; the file is readable by its owner only.
pub fn save(saved: &Saved) -> anyhow::Result<PathBuf> {
    let path = path()?;
    let dir = path.parent().context("config path has no directory")?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let mut text = String::from("# Written by `corral login`; holds a secret.\n");
    for (key, value) in [("url", &saved.url), ("token", &saved.token)] {
        if let Some(value) = value {
            text.push_str(&format!("{key} = {}\n", toml_string(value)));
        }
    }
    // Write a fresh 0600 file and rename it over the old one, so the secret is never
    // in a file with wider permissions, and a crash never leaves half a file.
    let tmp = dir.join(".config.toml.tmp");
    let _ = std::fs::remove_file(&tmp);
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&tmp, &path)
    };
    write().with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// A TOML basic string: JSON's escapes are a subset of TOML's.
fn toml_string(value: &str) -> String {
    serde_json::to_string(value).expect("a string always serializes")
}

/// The same URL written with or without a trailing slash is the same server.
pub fn normalize_url(url: &str) -> String {
    url.trim().trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_through_toml() {
        let odd = "a\"b\\c\nd\te\u{1}é";
        let text = format!("token = {}\n", toml_string(odd));
        let saved: Saved = toml::from_str(&text).unwrap();
        assert_eq!(saved.token.as_deref(), Some(odd));
    }
}
