//! Typed ids, one per kind of record, shared from the database entities (as sea-orm value
//! types) through the services and the wire to the pages: a space id cannot be passed where
//! a user id is expected. On the wire each is an opaque string.

/// Declares an id newtype over `String`.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        #[cfg_attr(feature = "ssr", derive(sea_orm::DeriveValueType))]
        pub struct $name(pub String);

        // A string, never empty: an empty id names nothing (the API document says so, and the
        // body check that reads the document refuses one).
        #[cfg(feature = "ssr")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .min_length(Some(1))
                    .into()
            }
        }

        #[cfg(feature = "ssr")]
        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;

            fn from_str(id: &str) -> Result<Self, Self::Err> {
                Ok(Self(id.to_owned()))
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        // Primary keys must say how to read a database-generated integer id; ours are made
        // by Hangar, so this only serves sea-orm's generic insert path.
        #[cfg(feature = "ssr")]
        impl sea_orm::TryFromU64 for $name {
            fn try_from_u64(n: u64) -> Result<Self, sea_orm::DbErr> {
                Ok(Self(n.to_string()))
            }
        }
    };
}

string_id!(
    /// A user.
    UserId
);
string_id!(
    /// A group of users.
    GroupId
);
string_id!(
    /// A template.
    TemplateId
);
string_id!(
    /// A space.
    SpaceId
);
string_id!(
    /// A personal API token.
    TokenId
);
string_id!(
    /// A registered SSH public key.
    SshKeyId
);
string_id!(
    /// A tunnel: a public link to a port of a space.
    TunnelId
);
string_id!(
    /// A rule allowing or denying a feature to everyone, a group or a user.
    FeatureRuleId
);
