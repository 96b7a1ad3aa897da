//! The router serves every asset with its type and the policy, and the page holds
//! nothing the policy would block.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use tower::ServiceExt;

use super::{router, ASSETS, CONTENT_SECURITY_POLICY};

#[tokio::test]
async fn every_asset_is_served_with_its_type_and_the_policy() {
    for (path, content_type, body) in ASSETS {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = router::<()>().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers();
        assert_eq!(headers[header::CONTENT_TYPE], content_type, "{path}");
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(bytes, body.as_bytes(), "{path}");
    }
}

#[test]
fn the_page_has_no_inline_script_or_style() {
    let (_, _, html) = ASSETS[0];
    for (at, _) in html.match_indices("<script") {
        let tag = &html[at..at + html[at..].find('>').unwrap()];
        assert!(tag.contains(" src="), "inline script: {tag}");
    }
    assert!(!html.contains("<style"), "inline <style>");
    assert!(!html.contains(" style="), "inline style attribute");
    for (at, _) in html.match_indices(" on") {
        let name: String = html[at + 1..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase())
            .collect();
        let after = &html[at + 1 + name.len()..];
        assert!(!after.starts_with('='), "inline event handler {name}");
    }
}

#[test]
fn every_module_the_page_imports_is_served() {
    let served: Vec<&str> = ASSETS.iter().map(|(path, ..)| *path).collect();
    for (_, _, text) in ASSETS {
        for (at, _) in text.match_indices(" from \"./") {
            let rest = &text[at + " from \"./".len()..];
            let name = &rest[..rest.find('"').unwrap()];
            assert!(
                served.contains(&format!("/{name}").as_str()),
                "{name} not served"
            );
        }
    }
}
