//! Checks of user input shared by every service; messages say what is wanted.

/// Usernames and space names: `^[a-z][a-z0-9-]{1,31}$`.
pub fn username(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !(2..=32).contains(&name.len()) || !first_ok || !rest_ok {
        return Err(format!(
            "`{name}` is not a valid name: use 2 to 32 characters, lowercase letters, digits and \
             '-', starting with a letter"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        for good in ["ab", "admin", "dev-1", "a234567890123456789012345678901"] {
            assert!(username(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a",
            "1abc",
            "Admin",
            "ab_c",
            "ab c",
            "a2345678901234567890123456789012x",
        ] {
            assert!(username(bad).is_err(), "{bad}");
        }
    }
}
