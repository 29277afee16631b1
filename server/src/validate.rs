//! Checks of user input shared by every service; messages say what is wanted. They are the
//! rules the API document states on each field (lengths count characters, blanks are ASCII
//! ones), so that what the document allows the services accept.

use crate::error::{ApiError, ApiResult};

/// A text of at most `max` characters.
pub fn at_most(field: &str, value: &str, max: usize) -> ApiResult<()> {
    if value.chars().count() > max {
        return Err(ApiError::invalid(
            field,
            format!("{field} is too long: at most {max} characters"),
        ));
    }
    Ok(())
}

/// A name of 1 to `max` characters, not all blank; returns it without surrounding blanks.
pub fn name<'a>(field: &str, value: &'a str, max: usize) -> ApiResult<&'a str> {
    let trimmed = value.trim_ascii();
    if trimmed.is_empty() || value.chars().count() > max {
        return Err(ApiError::invalid(
            field,
            format!("{field} has 1 to {max} characters, not all blank"),
        ));
    }
    Ok(trimmed)
}

/// A whole number from `min` to `max`.
pub fn within(field: &str, value: i64, min: i64, max: i64) -> ApiResult<()> {
    if !(min..=max).contains(&value) {
        return Err(ApiError::invalid(
            field,
            format!("{field} is a whole number from {min} to {max}, not {value}"),
        ));
    }
    Ok(())
}

/// A list of at most `max` items.
pub fn at_most_items<T>(field: &str, items: &[T], max: usize) -> ApiResult<()> {
    if items.len() > max {
        return Err(ApiError::invalid(
            field,
            format!("{field} has at most {max} items"),
        ));
    }
    Ok(())
}

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
