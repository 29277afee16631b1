//! Serde helpers: PATCH bodies, where an absent field and `null` mean different things, and
//! query flags.

use serde::{Deserialize, Deserializer};

/// For `Option<Option<T>>` fields: absent → `None`, `null` → `Some(None)`, value → `Some(Some(v))`.
/// Use with `#[serde(default, deserialize_with = "double_option")]`.
pub fn double_option<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A query flag: present alone (`?list`), `true`/`1`/`yes` turn it on; `false`/`0`/`no` off.
/// Use with `#[serde(default, deserialize_with = "flag")]`.
pub fn flag<'de, D>(deserializer: D) -> Result<bool, D::Error>
where
    D: Deserializer<'de>,
{
    struct Flag;

    impl serde::de::Visitor<'_> for Flag {
        type Value = bool;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("nothing, true or false")
        }

        fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<bool, E> {
            Ok(value)
        }

        fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<bool, E> {
            match value {
                "" | "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                other => Err(E::custom(format!(
                    "`{other}` is not a flag: leave it empty, or give true or false"
                ))),
            }
        }
    }

    deserializer.deserialize_any(Flag)
}
