//! Holds a JSON body to the schema the API document publishes for it, before it is read into
//! its Rust type: serde alone lets through shapes the document forbids (a struct from an
//! array such as `[null, null]`, numbers and strings beyond the stated limits), and a document
//! that says one thing while the server does another is a lie to every client generated from
//! it. The limits are declared once, on the wire types (`#[schema(...)]`), and both published
//! and enforced from there.
//!
//! This is the part of JSON Schema (2020-12, as OpenAPI 3.1 uses it) that the document's
//! schemas use: `$ref` to components, `type` (one or a list), `enum`, `const`, `oneOf`,
//! `anyOf`, `allOf`, string lengths (in characters) and `pattern` (a search, as in ECMAScript),
//! number bounds, array sizes, `items` and `uniqueItems`, object `properties`, `required`,
//! `additionalProperties`, `propertyNames` and sizes.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use regex::Regex;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::error::ApiError;

/// A body type's schema, with the components it refers to.
struct Compiled {
    root: Value,
    components: HashMap<String, Value>,
}

fn compiled<T: ToSchema + 'static>() -> Arc<Compiled> {
    static CACHE: LazyLock<Mutex<HashMap<TypeId, Arc<Compiled>>>> = LazyLock::new(Mutex::default);
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    cache
        .entry(TypeId::of::<T>())
        .or_insert_with(|| {
            let mut schemas = Vec::new();
            T::schemas(&mut schemas);
            let mut components: HashMap<String, Value> = schemas
                .into_iter()
                .map(|(name, schema)| (name, serde_json::to_value(schema).unwrap_or(Value::Null)))
                .collect();
            let root = serde_json::to_value(T::schema()).unwrap_or(Value::Null);
            components
                .entry(T::name().into_owned())
                .or_insert_with(|| root.clone());
            Arc::new(Compiled { root, components })
        })
        .clone()
}

/// Checks `value` against the schema of `T`; the error names the top-level field at fault
/// and says what the document wants there.
pub fn check<T: ToSchema + 'static>(value: &Value) -> Result<(), ApiError> {
    let compiled = compiled::<T>();
    let checker = Checker {
        components: &compiled.components,
    };
    checker
        .check(&compiled.root, value, &mut Vec::new())
        .map_err(Violation::into_error)
}

/// Where in the body, and what is wrong.
#[derive(Debug)]
struct Violation {
    path: Vec<String>,
    message: String,
    hint: Option<String>,
}

impl Violation {
    fn into_error(self) -> ApiError {
        let place = if self.path.is_empty() {
            "the body".to_owned()
        } else {
            let mut place = String::new();
            for step in &self.path {
                if step.starts_with('[') {
                    place.push_str(step);
                } else {
                    if !place.is_empty() {
                        place.push('.');
                    }
                    place.push_str(step);
                }
            }
            format!("`{place}`")
        };
        let mut message = format!("{place} {}", self.message);
        if let Some(hint) = self.hint {
            message.push_str(": ");
            message.push_str(hint.trim_end_matches('.'));
        }
        match self.path.first() {
            Some(field) if !field.starts_with('[') => ApiError::invalid(field, message),
            _ => ApiError::bad_request(message),
        }
    }
}

struct Checker<'a> {
    components: &'a HashMap<String, Value>,
}

fn pattern(source: &str) -> Option<Regex> {
    static CACHE: LazyLock<Mutex<HashMap<String, Option<Regex>>>> = LazyLock::new(Mutex::default);
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    cache
        .entry(source.to_owned())
        .or_insert_with(|| match Regex::new(source) {
            Ok(regex) => Some(regex),
            Err(e) => {
                tracing::error!(pattern = source, error = %e, "a pattern of the API document does not compile");
                None
            }
        })
        .clone()
}

/// The whole number a JSON number stands for, if it is one: JSON Schema counts `2.0` as the
/// integer 2, and so does Hangar.
fn whole(number: &serde_json::Number) -> Option<i64> {
    if let Some(n) = number.as_i64() {
        return Some(n);
    }
    let float = number.as_f64()?;
    // Exactly representable, and within i64 (2^63 itself is not).
    (float.fract() == 0.0 && float.abs() < 9.223_372_036_854_776e18).then_some(float as i64)
}

/// Writes whole numbers written as floats (`2.0`) as integers, so that they read into the
/// integer fields the document allows them for.
pub fn integral_floats_as_integers(value: &mut Value) {
    match value {
        Value::Number(number) if !number.is_i64() && !number.is_u64() => {
            if let Some(n) = whole(number) {
                *value = Value::from(n);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || whole(n).is_some() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_type(value: &Value, wanted: &str) -> bool {
    let actual = type_name(value);
    actual == wanted || (wanted == "number" && actual == "integer")
}

fn described(schema: &Value) -> Option<String> {
    schema
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

impl Checker<'_> {
    fn resolve<'s>(&'s self, schema: &'s Value) -> &'s Value {
        let mut current = schema;
        // A chain of references ends somewhere (a loop would be a broken document).
        for _ in 0..16 {
            let Some(reference) = current.get("$ref").and_then(Value::as_str) else {
                break;
            };
            let name = reference.rsplit('/').next().unwrap_or(reference);
            match self.components.get(name) {
                Some(target) => current = target,
                None => break,
            }
        }
        current
    }

    fn fail(&self, path: &[String], schema: &Value, message: String) -> Result<(), Violation> {
        Err(Violation {
            path: path.to_vec(),
            message,
            hint: described(schema),
        })
    }

    fn check(
        &self,
        schema: &Value,
        value: &Value,
        path: &mut Vec<String>,
    ) -> Result<(), Violation> {
        let schema = self.resolve(schema);
        let Some(rules) = schema.as_object() else {
            // `true` (or anything unreadable) allows everything; `false` nothing.
            return match schema {
                Value::Bool(false) => self.fail(path, schema, "is not allowed here".into()),
                _ => Ok(()),
            };
        };
        if let Some(types) = rules.get("type") {
            let wanted: Vec<&str> = match types {
                Value::String(one) => vec![one.as_str()],
                Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !wanted.is_empty() && !wanted.iter().any(|t| is_type(value, t)) {
                return self.fail(
                    path,
                    schema,
                    format!("must be {}, not {}", wanted.join(" or "), type_name(value)),
                );
            }
        }
        if let Some(allowed) = rules.get("enum").and_then(Value::as_array) {
            if !allowed.contains(value) {
                let names: Vec<String> = allowed.iter().map(Value::to_string).collect();
                return self.fail(path, schema, format!("must be one of {}", names.join(", ")));
            }
        }
        if let Some(constant) = rules.get("const") {
            if constant != value {
                return self.fail(path, schema, format!("must be {constant}"));
            }
        }
        if let Some(all) = rules.get("allOf").and_then(Value::as_array) {
            for part in all {
                self.check(part, value, path)?;
            }
        }
        if let Some(any) = rules.get("anyOf").and_then(Value::as_array) {
            self.one_or_more(any, value, path, false)?;
        }
        if let Some(one) = rules.get("oneOf").and_then(Value::as_array) {
            self.one_or_more(one, value, path, true)?;
        }
        match value {
            Value::String(text) => self.check_string(rules, schema, text, path),
            Value::Number(number) => self.check_number(rules, schema, number, path),
            Value::Array(items) => self.check_array(rules, schema, items, path),
            Value::Object(fields) => self.check_object(rules, schema, fields, path),
            Value::Null | Value::Bool(_) => Ok(()),
        }
    }

    /// `anyOf` (at least one) or `oneOf` (exactly one).
    fn one_or_more(
        &self,
        choices: &[Value],
        value: &Value,
        path: &mut Vec<String>,
        exactly_one: bool,
    ) -> Result<(), Violation> {
        let mut first_error = None;
        let mut matched = 0;
        for choice in choices {
            match self.check(choice, value, path) {
                Ok(()) => matched += 1,
                // The most telling failure is that of a choice of the value's own type.
                Err(e) => {
                    let own_type = self.resolve(choice).get("type").is_none_or(|t| match t {
                        Value::String(one) => is_type(value, one),
                        Value::Array(many) => many
                            .iter()
                            .filter_map(Value::as_str)
                            .any(|t| is_type(value, t)),
                        _ => true,
                    });
                    if first_error.is_none() || own_type {
                        first_error = Some(e);
                    }
                }
            }
        }
        if matched == 0 {
            return Err(first_error.unwrap_or(Violation {
                path: path.clone(),
                message: "matches none of the allowed forms".into(),
                hint: None,
            }));
        }
        if exactly_one && matched > 1 {
            return Err(Violation {
                path: path.clone(),
                message: "matches more than one of the allowed forms".into(),
                hint: None,
            });
        }
        Ok(())
    }

    fn check_string(
        &self,
        rules: &Map<String, Value>,
        schema: &Value,
        text: &str,
        path: &[String],
    ) -> Result<(), Violation> {
        let length = text.chars().count() as u64;
        if let Some(min) = rules.get("minLength").and_then(Value::as_u64) {
            if length < min {
                return self.fail(path, schema, format!("must have at least {min} characters"));
            }
        }
        if let Some(max) = rules.get("maxLength").and_then(Value::as_u64) {
            if length > max {
                return self.fail(path, schema, format!("must have at most {max} characters"));
            }
        }
        if let Some(source) = rules.get("pattern").and_then(Value::as_str) {
            if pattern(source).is_some_and(|regex| !regex.is_match(text)) {
                return self.fail(path, schema, format!("must match the pattern {source}"));
            }
        }
        Ok(())
    }

    fn check_number(
        &self,
        rules: &Map<String, Value>,
        schema: &Value,
        number: &serde_json::Number,
        path: &[String],
    ) -> Result<(), Violation> {
        let Some(value) = number.as_f64() else {
            return Ok(());
        };
        let bound = |key: &str| rules.get(key).and_then(Value::as_f64);
        if let Some(min) = bound("minimum") {
            if value < min {
                return self.fail(path, schema, format!("must be at least {min}"));
            }
        }
        if let Some(max) = bound("maximum") {
            if value > max {
                return self.fail(path, schema, format!("must be at most {max}"));
            }
        }
        if let Some(min) = bound("exclusiveMinimum") {
            if value <= min {
                return self.fail(path, schema, format!("must be more than {min}"));
            }
        }
        if let Some(max) = bound("exclusiveMaximum") {
            if value >= max {
                return self.fail(path, schema, format!("must be less than {max}"));
            }
        }
        Ok(())
    }

    fn check_array(
        &self,
        rules: &Map<String, Value>,
        schema: &Value,
        items: &[Value],
        path: &mut Vec<String>,
    ) -> Result<(), Violation> {
        let count = items.len() as u64;
        if let Some(min) = rules.get("minItems").and_then(Value::as_u64) {
            if count < min {
                return self.fail(path, schema, format!("must have at least {min} items"));
            }
        }
        if let Some(max) = rules.get("maxItems").and_then(Value::as_u64) {
            if count > max {
                return self.fail(path, schema, format!("must have at most {max} items"));
            }
        }
        if rules.get("uniqueItems") == Some(&Value::Bool(true)) {
            for (i, item) in items.iter().enumerate() {
                if items[..i].contains(item) {
                    return self.fail(path, schema, "must not list an item twice".into());
                }
            }
        }
        if let Some(item_schema) = rules.get("items") {
            for (i, item) in items.iter().enumerate() {
                path.push(format!("[{i}]"));
                self.check(item_schema, item, path)?;
                path.pop();
            }
        }
        Ok(())
    }

    fn check_object(
        &self,
        rules: &Map<String, Value>,
        schema: &Value,
        fields: &Map<String, Value>,
        path: &mut Vec<String>,
    ) -> Result<(), Violation> {
        let count = fields.len() as u64;
        if let Some(max) = rules.get("maxProperties").and_then(Value::as_u64) {
            if count > max {
                return self.fail(path, schema, format!("must have at most {max} entries"));
            }
        }
        if let Some(min) = rules.get("minProperties").and_then(Value::as_u64) {
            if count < min {
                return self.fail(path, schema, format!("must have at least {min} entries"));
            }
        }
        for required in rules
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !fields.contains_key(required) {
                path.push(required.to_owned());
                let missing = self.fail(path, &Value::Null, "is missing".into());
                path.pop();
                missing?;
            }
        }
        let properties = rules.get("properties").and_then(Value::as_object);
        for (name, field) in fields {
            if let Some(names) = rules.get("propertyNames") {
                let as_value = Value::String(name.clone());
                path.push(name.clone());
                let named = self.check(names, &as_value, path).map_err(|mut v| {
                    v.message = format!("is not an allowed name here: it {}", v.message);
                    v
                });
                path.pop();
                named?;
            }
            path.push(name.clone());
            let checked = match properties.and_then(|p| p.get(name)) {
                Some(property) => self.check(property, field, path),
                None => match rules.get("additionalProperties") {
                    Some(Value::Bool(false)) => Err(self.unknown_field(path, properties)),
                    Some(extra) => self.check(extra, field, path),
                    None => Ok(()),
                },
            };
            path.pop();
            checked?;
        }
        Ok(())
    }

    fn unknown_field(&self, path: &[String], properties: Option<&Map<String, Value>>) -> Violation {
        let known: Vec<&str> = properties
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        Violation {
            path: path.to_vec(),
            message: if known.is_empty() {
                "is not a field of this body".into()
            } else {
                format!("is not a field of this body (known: {})", known.join(", "))
            },
            hint: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use app::api::templates::{CreateTemplate, UpdateTemplate};
    use app::api::users::CreateUser;
    use serde_json::json;

    use super::*;

    fn field_of(result: Result<(), ApiError>) -> Option<String> {
        result
            .err()
            .map(|e| e.field.unwrap_or_else(|| format!("<{}>", e.message)))
    }

    #[test]
    fn an_array_is_not_an_object() {
        let refused = check::<UpdateTemplate>(&json!([null, null])).unwrap_err();
        assert!(
            refused.message.contains("must be object"),
            "{}",
            refused.message
        );
        check::<UpdateTemplate>(&json!({})).unwrap();
    }

    #[test]
    fn limits_of_fields_items_and_entries_hold() {
        let ok = json!({"name": "box", "image": "busybox:1", "compute_units": 1,
            "volumes": [{"name": "home", "mount_path": "/home/dev", "size_gib": 1}],
            "env": {"A_1": "x"}, "ports": [8080], "command": ["sh", "-c", "true"]});
        check::<CreateTemplate>(&ok).unwrap();
        let with = |key: &str, value: Value| {
            let mut body = ok.clone();
            body[key] = value;
            check::<CreateTemplate>(&body)
        };
        assert_eq!(
            field_of(with("name", json!("x".repeat(65)))).as_deref(),
            Some("name")
        );
        assert_eq!(
            field_of(with("name", json!("   "))).as_deref(),
            Some("name")
        );
        assert_eq!(
            field_of(with("compute_units", json!(1025))).as_deref(),
            Some("compute_units")
        );
        assert_eq!(
            field_of(with("compute_units", json!(1.5))).as_deref(),
            Some("compute_units")
        );
        assert_eq!(
            field_of(with("image", json!("a b"))).as_deref(),
            Some("image")
        );
        assert_eq!(
            field_of(with("ports", json!([0]))).as_deref(),
            Some("ports")
        );
        assert_eq!(
            field_of(with("command", json!([]))).as_deref(),
            Some("command")
        );
        assert_eq!(
            field_of(with("env", json!({"1A": "x"}))).as_deref(),
            Some("env")
        );
        assert_eq!(
            field_of(with("shell", json!("sh"))).as_deref(),
            Some("shell")
        );
        assert_eq!(field_of(with("shell", json!(null))), None);
        assert_eq!(
            field_of(with("surprise", json!(1))).as_deref(),
            Some("surprise")
        );
        for bad_path in ["relative", "/", "/a/../b", "/a/.."] {
            let volumes = json!([{"name": "home", "mount_path": bad_path, "size_gib": 1}]);
            assert_eq!(
                field_of(with("volumes", volumes)).as_deref(),
                Some("volumes"),
                "{bad_path}"
            );
        }
        for good_path in ["/a.b/c.", "/.x", "//"] {
            let volumes = json!([{"name": "home", "mount_path": good_path, "size_gib": 1}]);
            assert_eq!(field_of(with("volumes", volumes)), None, "{good_path}");
        }
        let missing = check::<CreateTemplate>(&json!({"name": "x", "image": "y"})).unwrap_err();
        assert_eq!(missing.field.as_deref(), Some("compute_units"));
    }

    #[test]
    fn nullable_quotas_and_optional_enums() {
        check::<CreateUser>(&json!({"username": "ann", "password": "12345678",
            "max_spaces": null, "role": "admin", "email": ""}))
        .unwrap();
        let refused = |body: Value| field_of(check::<CreateUser>(&body));
        assert_eq!(
            refused(json!({"username": "ann", "password": "12345678", "max_spaces": -1}))
                .as_deref(),
            Some("max_spaces")
        );
        assert_eq!(
            refused(json!({"username": "ann", "password": "12345678", "role": "root"})).as_deref(),
            Some("role")
        );
        assert_eq!(
            refused(json!({"username": "Ann", "password": "12345678"})).as_deref(),
            Some("username")
        );
        assert_eq!(
            refused(json!({"username": "ann", "password": "12345678", "email": "x"})).as_deref(),
            Some("email")
        );
    }
}
