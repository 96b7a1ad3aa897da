//! Validated values parsed at the edge: e-mails, passwords, names, times.

use crate::error::ApiError;

/// A lower-cased e-mail address of plausible shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(pub String);

impl Email {
    /// Parses an address: one `@`, something either side, a dot in the domain.
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let email = raw.trim().to_lowercase();
        let ok = email.len() <= 254
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && matches!(email.split_once('@'), Some((local, domain))
                if !local.is_empty() && domain.contains('.') && !domain.contains('@')
                    && !domain.starts_with('.') && !domain.ends_with('.'));
        if ok {
            Ok(Self(email))
        } else {
            Err(ApiError::Validation(format!(
                "{raw:?} is not an e-mail address"
            )))
        }
    }
}

/// A password long enough to be worth hashing.
pub struct Password(pub String);

impl Password {
    /// At least 8 and at most 256 characters, and not a common or repetitive one
    /// (`crate::passwords`).
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        match crate::passwords::weakness(raw) {
            Some(why) => Err(ApiError::Validation(why)),
            None => Ok(Self(raw.to_string())),
        }
    }
}

/// A display name (organisation, token): 1 to 100 printable characters.
pub fn display_name(field: &str, raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::Validation(format!(
            "{field} must be 1 to 100 printable characters"
        )));
    }
    Ok(name.to_string())
}

/// A sprite's name: 1 to 63 of `a-z 0-9 -`, starting with a letter or digit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpriteName(pub String);

impl SpriteName {
    /// Parses a name as it appears in paths.
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let ok = (1..=63).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !raw.starts_with('-');
        if ok {
            Ok(Self(raw.to_string()))
        } else {
            Err(ApiError::Validation(format!(
                "sprite name {raw:?} must be 1 to 63 of a-z, 0-9 and '-', not starting with '-'"
            )))
        }
    }
}

/// RFC 3339 (UTC, seconds) for unix seconds.
pub fn rfc3339(unix_s: i64) -> String {
    chrono::DateTime::from_timestamp(unix_s, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Unix seconds for an RFC 3339 time.
pub fn parse_rfc3339(field: &str, raw: &str) -> Result<i64, ApiError> {
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| t.timestamp())
        .map_err(|_| ApiError::Validation(format!("{field} must be an RFC 3339 time, got {raw:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(Email::parse(" A@B.io ").unwrap().0, "a@b.io");
        for bad in ["", "a", "a@b", "@b.io", "a@.io", "a b@c.io", "a@b@c.io"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sprite_names() {
        assert!(SpriteName::parse("dev-1").is_ok());
        for bad in ["", "-x", "Dev", "a/b", "a.b", &"x".repeat(64)] {
            assert!(SpriteName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_round_trip() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            parse_rfc3339("t", &rfc3339(1_790_000_000)).unwrap(),
            1_790_000_000
        );
    }
}
