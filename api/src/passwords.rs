//! The minimum strength of a password: long enough, not one of the passwords every
//! guessing list starts with, and not one character or one short run repeated.

/// The most common passwords in public breach lists (lower case): a guesser tries
/// these first, so they are refused whatever their length.
const COMMON: &[&str] = &[
    "password",
    "password1",
    "password12",
    "password123",
    "password1234",
    "passw0rd",
    "12345678",
    "123456789",
    "1234567890",
    "12345678910",
    "87654321",
    "11111111",
    "00000000",
    "qwertyui",
    "qwertyuiop",
    "qwerty123",
    "qwerty12345",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "1qaz2wsx",
    "zaq12wsx",
    "asdfghjk",
    "asdfghjkl",
    "zxcvbnm1",
    "iloveyou",
    "iloveyou1",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "welcome1",
    "welcome123",
    "letmein1",
    "letmein123",
    "trustno1",
    "whatever",
    "superman",
    "starwars",
    "dragon12",
    "master12",
    "michael1",
    "jennifer",
    "computer",
    "internet",
    "charlie1",
    "abcd1234",
    "abc12345",
    "abcdefgh",
    "changeme",
    "changeme1",
    "admin123",
    "administrator",
    "secret12",
    "monkey12",
    "shadow12",
    "freedom1",
    "mustang1",
    "corvette",
    "maverick",
    "chocolate",
    "butterfly",
    "liverpool",
    "arsenal1",
    "chelsea1",
    "samsung1",
    "pokemon1",
    "minecraft",
    "fuckyou1",
    "qazwsxedc",
    "p@ssw0rd",
    "p@ssword",
    "passpass",
    "testtest",
    "test1234",
    "letmeinnow",
    "corral123",
    "sandbox1",
    "sprite123",
];

/// Why `password` is too weak, in words for the person choosing it; `None` if it will do.
pub fn weakness(password: &str) -> Option<String> {
    let chars: Vec<char> = password.chars().collect();
    if chars.len() < 8 {
        return Some("the password must have at least 8 characters".into());
    }
    if chars.len() > 256 {
        return Some("the password must have at most 256 characters".into());
    }
    if COMMON.contains(&password.to_lowercase().as_str()) {
        return Some(
            "this password is on every list of common passwords: choose another, for example a few unrelated words"
                .into(),
        );
    }
    // "aaaaaaaa", "abababab", "abcabcabc": a run of at most 3 characters repeated.
    let repeated =
        (1..=3).any(|n| chars.len().is_multiple_of(n) && chars.chunks(n).all(|c| c == &chars[..n]));
    if repeated {
        return Some(
            "the password repeats the same few characters: choose one harder to guess".into(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::weakness;

    #[test]
    fn common_short_and_repeated_passwords_are_refused() {
        assert!(weakness("short").unwrap().contains("at least 8"));
        assert!(weakness("Password123").unwrap().contains("common"));
        assert!(weakness("abababab").unwrap().contains("repeats"));
        assert!(weakness("aaaaaaaaa").unwrap().contains("repeats"));
        assert_eq!(weakness("correct horse battery"), None);
    }
}
