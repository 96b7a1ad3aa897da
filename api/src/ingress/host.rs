//! Sprite host names: `{sprite}--{handle}.{domain}`, where the handle is the first
//! eight characters of the tenant's id (random, and checked unique at signup), so two
//! tenants' sprites of the same name never share a host.

use crate::names::TenantId;

/// Characters of the tenant id in a sprite's host name.
pub const HANDLE_LEN: usize = 8;

/// The tenant's handle in its sprites' host names.
pub fn handle(tenant_id: &TenantId) -> &str {
    let id = tenant_id.as_str();
    &id[..id.len().min(HANDLE_LEN)]
}

/// The first label of a sprite's host name.
pub fn label(sprite: &str, tenant_id: &TenantId) -> String {
    format!("{sprite}--{}", handle(tenant_id))
}

/// The sprite name and tenant handle a `Host` names under `domain`, if it is a
/// sprite's host (any port; case-insensitive).
pub fn parse(host: &str, domain: &str) -> Option<(String, String)> {
    let host = host.trim().to_ascii_lowercase();
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host.as_str(),
    };
    let first = host
        .trim_end_matches('.')
        .strip_suffix(domain.trim_matches('.'))?
        .strip_suffix('.')?;
    if first.contains('.') {
        return None;
    }
    // The handle never holds '-', so the last "--" splits even a name with "--".
    let (sprite, handle) = first.rsplit_once("--")?;
    let handle_ok = handle.len() == HANDLE_LEN && handle.bytes().all(|b| b.is_ascii_hexdigit());
    (handle_ok && !sprite.is_empty()).then(|| (sprite.to_string(), handle.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_round_trip_and_strangers_are_not_sprites() {
        let tenant = TenantId("0a1b2c3d4e5f60718293a4b5c6d7e8f9".into());
        let label = label("web--app", &tenant);
        assert_eq!(label, "web--app--0a1b2c3d");
        let host = format!("{label}.sprites.localhost:8080");
        assert_eq!(
            parse(&host, "sprites.localhost"),
            Some(("web--app".into(), "0a1b2c3d".into()))
        );
        assert_eq!(
            parse("DEV--0A1B2C3D.Sprites.Localhost", "sprites.localhost"),
            Some(("dev".into(), "0a1b2c3d".into()))
        );
        for stranger in [
            "127.0.0.1:8080",
            "sprites.localhost",
            "dev.sprites.localhost",
            "dev--0a1b2c3d.evil.sprites.localhost",
            "dev--0a1b2c3dx.sprites.localhost",
            "dev--0a1b2c3d.sprites.localhost.evil.com",
            "--0a1b2c3d.sprites.localhost",
            "dev--0a1b2c3d.notsprites.localhost",
        ] {
            assert_eq!(parse(stranger, "sprites.localhost"), None, "{stranger}");
        }
    }
}
