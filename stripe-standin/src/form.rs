//! Stripe's request bodies: `application/x-www-form-urlencoded` with bracketed keys
//! (`line_items[0][price_data][currency]=usd`) read into nested JSON.

use serde_json::{Map, Value};

/// Parses a form body (or a query string) into an object; `a[0]`, `a[1]` become an
/// array, `a[b]` an object.
pub fn parse(body: &[u8]) -> Value {
    let mut root = Value::Object(Map::new());
    for (key, value) in form_urlencoded::parse(body) {
        let mut path: Vec<String> = Vec::new();
        let (head, mut rest) = key
            .split_once('[')
            .map_or((key.as_ref(), ""), |(h, r)| (h, r));
        path.push(head.to_owned());
        while let Some((segment, tail)) = rest.split_once(']') {
            path.push(segment.to_owned());
            rest = tail.strip_prefix('[').unwrap_or(tail);
        }
        insert(&mut root, &path, Value::String(value.into_owned()));
    }
    arrays(root)
}

fn insert(node: &mut Value, path: &[String], value: Value) {
    let Value::Object(map) = node else { return };
    match path {
        [] => {}
        [last] => {
            map.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let child = map
                .entry(first.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            insert(child, rest, value);
        }
    }
}

/// Objects whose keys are all indices become arrays, in index order.
fn arrays(node: Value) -> Value {
    match node {
        Value::Object(map) => {
            let indexed = !map.is_empty() && map.keys().all(|k| k.parse::<usize>().is_ok());
            let mut items: Vec<(String, Value)> =
                map.into_iter().map(|(k, v)| (k, arrays(v))).collect();
            if indexed {
                items.sort_by_key(|(k, _)| k.parse::<usize>().unwrap_or(0));
                Value::Array(items.into_iter().map(|(_, v)| v).collect())
            } else {
                Value::Object(items.into_iter().collect())
            }
        }
        other => other,
    }
}

/// A string field, or an integer field's text.
pub fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_nest_and_indices_are_arrays() {
        let v = parse(
            b"mode=payment&line_items[0][price_data][currency]=usd&line_items[0][quantity]=1\
              &line_items[1][price]=price_x&metadata[corral_tenant]=t%201",
        );
        assert_eq!(v["mode"], "payment");
        assert_eq!(v["line_items"][0]["price_data"]["currency"], "usd");
        assert_eq!(v["line_items"][1]["price"], "price_x");
        assert_eq!(v["metadata"]["corral_tenant"], "t 1");
    }
}
