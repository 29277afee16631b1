//! OpenAPI schemas of values whose limits the derive cannot state on a field: items of lists
//! and entries of maps. Fields name them with `schema(value_type = ...)` or `schema_with`.

use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// One word of a template's command: at most 4096 characters.
pub struct CommandWord;

impl PartialSchema for CommandWord {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(4096))
            .into()
    }
}

impl ToSchema for CommandWord {}

/// A TCP port, 1 to 65535.
pub struct Port;

impl PartialSchema for Port {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(65535))
            .into()
    }
}

impl ToSchema for Port {}

/// Longest environment variable name and value, and most variables.
pub const ENV_NAME_MAX: usize = 128;
pub const ENV_VALUE_MAX: usize = 4096;
pub const ENV_MAX: usize = 100;

fn env_object(nullable: bool) -> ObjectBuilder {
    let kind = if nullable {
        SchemaType::from_iter([Type::Object, Type::Null])
    } else {
        SchemaType::new(Type::Object)
    };
    ObjectBuilder::new()
        .schema_type(kind)
        .description(Some(
            "Environment variables: names of letters, digits and `_` not starting with a digit \
             (at most 128 characters), values of at most 4096 characters; at most 100.",
        ))
        .max_properties(Some(ENV_MAX))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(ENV_NAME_MAX))
                .pattern(Some("^[A-Za-z_][A-Za-z0-9_]*$")),
        ))
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(ENV_VALUE_MAX)),
        ))
}

/// A template's environment.
pub fn env() -> Schema {
    env_object(false).into()
}

/// A template's environment in a change: null or absent leaves it as it is.
pub fn env_change() -> Schema {
    env_object(true).into()
}
