//! Who may open a private sprite's URL: a token of the sprite's tenant with the
//! `sprites:http` scope (as a Bearer header), or a cookie set by opening a signed,
//! short-lived link. The cookie is bound to one sprite and set without a Domain, so the
//! browser sends it to that sprite's host alone. Corral's credentials are taken off a
//! request before it reaches the sprite.

use axum::http::{header, HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};

use crate::tokens::auth::Keys;

/// The cookie that opens one sprite's URL.
pub const COOKIE: &str = "corral_sprite";
/// The path on a sprite's host that turns a link into the cookie.
pub const LOGIN_PATH: &str = "/.corral/login";
/// How long a link may wait to be opened.
pub const LINK_TTL_S: i64 = 120;
/// How long the cookie a link sets is good for.
pub const COOKIE_TTL_S: i64 = 12 * 3600;

const LINK_AUDIENCE: &str = "corral:sprite-link";
const COOKIE_AUDIENCE: &str = "corral:sprite-cookie";

/// What a link and a cookie carry, signed.
#[derive(Serialize, Deserialize)]
struct Pass {
    aud: String,
    /// The sprite's id.
    spr: i64,
    /// Its tenant.
    ten: String,
    exp: i64,
}

fn sign(keys: &Keys, aud: &str, sprite_id: i64, tenant: &str, ttl_s: i64) -> String {
    keys.sign_for(&Pass {
        aud: aud.into(),
        spr: sprite_id,
        ten: tenant.into(),
        exp: crate::db::now_s() + ttl_s,
    })
}

fn opens(keys: &Keys, token: &str, aud: &str, sprite_id: i64, tenant: &str) -> bool {
    keys.verify_for::<Pass>(token, aud)
        .is_some_and(|p| p.spr == sprite_id && p.ten == tenant)
}

/// A link's pass for the sprite, good for [`LINK_TTL_S`].
pub fn link_pass(keys: &Keys, sprite_id: i64, tenant: &str) -> String {
    sign(keys, LINK_AUDIENCE, sprite_id, tenant, LINK_TTL_S)
}

/// The `Set-Cookie` for a valid link pass of this sprite, or `None`.
pub fn cookie_for_link(
    keys: &Keys,
    pass: &str,
    sprite_id: i64,
    tenant: &str,
    secure: bool,
) -> Option<HeaderValue> {
    if !opens(keys, pass, LINK_AUDIENCE, sprite_id, tenant) {
        return None;
    }
    let value = sign(keys, COOKIE_AUDIENCE, sprite_id, tenant, COOKIE_TTL_S);
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; Max-Age={COOKIE_TTL_S}; HttpOnly; SameSite=Lax{secure}"
    ))
    .ok()
}

/// Whether the request carries a cookie that opens this sprite.
pub fn has_cookie(keys: &Keys, headers: &HeaderMap, sprite_id: i64, tenant: &str) -> bool {
    cookies(headers)
        .filter(|(name, _)| *name == COOKIE)
        .any(|(_, value)| opens(keys, value, COOKIE_AUDIENCE, sprite_id, tenant))
}

/// The request's bearer token, if it has one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            Some((name.trim(), value.trim()))
        })
}

/// Takes Corral's cookie (and, when it was Corral's token, the Authorization header)
/// off a request bound for a sprite.
pub fn strip(headers: &mut HeaderMap, authorization: bool) {
    if authorization {
        headers.remove(header::AUTHORIZATION);
    }
    let kept: Vec<String> = cookies(headers)
        .filter(|(name, _)| *name != COOKIE)
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    headers.remove(header::COOKIE);
    if !kept.is_empty() {
        if let Ok(value) = HeaderValue::from_str(&kept.join("; ")) {
            headers.insert(header::COOKIE, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_opens_its_own_sprite_only_and_never_passes_as_a_bearer() {
        let keys = Keys::from_secret(b"k");
        let pass = link_pass(&keys, 7, "t1");
        assert!(cookie_for_link(&keys, &pass, 7, "t1", false).is_some());
        assert!(cookie_for_link(&keys, &pass, 8, "t1", false).is_none());
        assert!(cookie_for_link(&keys, &pass, 7, "t2", false).is_none());
        assert!(keys.verify(&pass).is_none(), "a link is not a bearer token");
        let set = cookie_for_link(&keys, &pass, 7, "t1", false).unwrap();
        let value = set.to_str().unwrap().split(';').next().unwrap().to_string();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("theme=dark; {value}; a=b")).unwrap(),
        );
        assert!(has_cookie(&keys, &headers, 7, "t1"));
        assert!(!has_cookie(&keys, &headers, 8, "t1"));
        // A link is not a cookie: its audience differs.
        let mut forged = HeaderMap::new();
        forged.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{COOKIE}={pass}")).unwrap(),
        );
        assert!(!has_cookie(&keys, &forged, 7, "t1"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        strip(&mut headers, true);
        assert_eq!(headers.get(header::COOKIE).unwrap(), "theme=dark; a=b");
        assert!(headers.get(header::AUTHORIZATION).is_none());
    }
}
