//! Personal API tokens (only their SHA-256 is stored; the secret is shown once) and SSH keys.

use app::api::users::{
    ssr::CredentialsApi, CreateSshKey, CreateToken, SshKeyDto, TokenCreated, TokenDto,
};
use app::ids::{SshKeyId, TokenId};
use base64::Engine;
use chrono::{Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::access::Caller;
use super::audit::{record, Outcome};
use super::{conflict_on_duplicate, new_id, Services};
use crate::entities::{api_token, ssh_key, user};
use crate::error::{ApiError, ApiResult};

/// Every token starts with this, so leaked tokens are easy to recognise.
const TOKEN_PREFIX: &str = "hgr_";
const DEFAULT_TOKEN_DAYS: i64 = 90;

/// The SHA-256 of a secret in hex: what is stored of tokens, tunnel links and app sessions.
pub fn hash_token(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn new_secret() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::thread_rng();
    let body: String = (0..40)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{TOKEN_PREFIX}{body}")
}

fn token_dto(t: api_token::Model) -> TokenDto {
    TokenDto {
        id: t.id,
        name: t.name,
        prefix: t.prefix,
        created_at: t.created_at.into(),
        expires_at: t.expires_at.map(Into::into),
        last_used_at: t.last_used_at.map(Into::into),
    }
}

/// Checks an OpenSSH public key line; returns it normalised and its SHA256 fingerprint.
pub fn parse_public_key(line: &str) -> ApiResult<(String, String, Option<String>)> {
    const TYPES: [&str; 6] = [
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
    ];
    let bad = || {
        ApiError::invalid(
            "public_key",
            "paste one OpenSSH public key line, such as the content of ~/.ssh/id_ed25519.pub",
        )
    };
    let mut words = line.split_whitespace();
    let kind = words.next().ok_or_else(bad)?;
    let data = words.next().ok_or_else(bad)?;
    let comment = words.collect::<Vec<_>>().join(" ");
    if !TYPES.contains(&kind) {
        return Err(ApiError::invalid(
            "public_key",
            format!("`{kind}` is not a supported key type: use ssh-ed25519, ssh-rsa or ecdsa"),
        ));
    }
    let blob = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| bad())?;
    // The blob starts with its own type name, length-prefixed.
    let declared = blob
        .get(4..)
        .and_then(|rest| {
            let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
            rest.get(..len)
        })
        .ok_or_else(bad)?;
    if declared != kind.as_bytes() {
        return Err(bad());
    }
    let fingerprint = format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(&blob))
    );
    Ok((
        format!("{kind} {data}"),
        fingerprint,
        (!comment.is_empty()).then_some(comment),
    ))
}

impl Services {
    /// The user a bearer token belongs to, if it is valid, unexpired and the user active.
    /// The active user a valid token belongs to, with the token's id.
    pub async fn user_for_token(&self, secret: &str) -> ApiResult<Option<(user::Model, TokenId)>> {
        if !secret.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let Some(token) = api_token::Entity::find()
            .filter(api_token::Column::TokenHash.eq(hash_token(secret)))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let now = Utc::now();
        if token.expires_at.is_some_and(|at| at <= now) {
            return Ok(None);
        }
        // Recording the use is best effort; it must not fail the request.
        let _ = api_token::Entity::update_many()
            .col_expr(api_token::Column::LastUsedAt, Expr::value(now))
            .filter(api_token::Column::Id.eq(token.id.clone()))
            .exec(&self.db)
            .await;
        let owner = user::Entity::find_by_id(token.user_id)
            .one(&self.db)
            .await?;
        Ok(owner.filter(|u| u.active).map(|u| (u, token.id)))
    }
}

#[async_trait::async_trait]
impl CredentialsApi for Services {
    async fn list_tokens(&self, caller: &Caller) -> ApiResult<Vec<TokenDto>> {
        let tokens = api_token::Entity::find()
            .filter(api_token::Column::UserId.eq(caller.id().clone()))
            .order_by_asc(api_token::Column::CreatedAt)
            .all(&self.db)
            .await?;
        Ok(tokens.into_iter().map(token_dto).collect())
    }

    async fn create_token(&self, caller: &Caller, input: CreateToken) -> ApiResult<TokenCreated> {
        let name = input.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(ApiError::invalid(
                "name",
                "a token name has 1 to 64 characters",
            ));
        }
        let days = input.expires_in_days.unwrap_or(DEFAULT_TOKEN_DAYS);
        if !(1..=3650).contains(&days) {
            return Err(ApiError::invalid(
                "expires_in_days",
                "expires_in_days is a whole number from 1 to 3650",
            ));
        }
        let secret = new_secret();
        let now = Utc::now();
        let token = api_token::ActiveModel {
            id: Set(new_id()),
            user_id: Set(caller.id().clone()),
            name: Set(name.clone()),
            token_hash: Set(hash_token(&secret)),
            prefix: Set(secret.chars().take(TOKEN_PREFIX.len() + 6).collect()),
            created_at: Set(now),
            expires_at: Set(Some(now + Duration::days(days))),
            last_used_at: Set(None),
        }
        .insert(&self.db)
        .await?;
        record(
            &self.db,
            Some(caller),
            "token.create",
            &format!("token:{name}"),
            Outcome::Success,
            json!({"expires_in_days": days}),
        )
        .await;
        Ok(TokenCreated {
            token: token_dto(token),
            secret,
        })
    }

    async fn revoke_token(&self, caller: &Caller, id: &TokenId) -> ApiResult<()> {
        let token = api_token::Entity::find_by_id(id.clone())
            .filter(api_token::Column::UserId.eq(caller.id().clone()))
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found("token"))?;
        api_token::Entity::delete_by_id(token.id)
            .exec(&self.db)
            .await?;
        // Channels opened with it close.
        self.users_changed(vec![caller.id().clone()]);
        record(
            &self.db,
            Some(caller),
            "token.revoke",
            &format!("token:{}", token.name),
            Outcome::Success,
            json!({}),
        )
        .await;
        Ok(())
    }

    async fn list_ssh_keys(&self, caller: &Caller) -> ApiResult<Vec<SshKeyDto>> {
        let keys = ssh_key::Entity::find()
            .filter(ssh_key::Column::UserId.eq(caller.id().clone()))
            .order_by_asc(ssh_key::Column::CreatedAt)
            .all(&self.db)
            .await?;
        Ok(keys
            .into_iter()
            .map(|k| SshKeyDto {
                id: k.id,
                name: k.name,
                public_key: k.public_key,
                fingerprint: k.fingerprint,
                created_at: k.created_at.into(),
            })
            .collect())
    }

    async fn add_ssh_key(&self, caller: &Caller, input: CreateSshKey) -> ApiResult<SshKeyDto> {
        let (public_key, fingerprint, comment) = parse_public_key(&input.public_key)?;
        let name = input
            .name
            .or(comment)
            .unwrap_or_else(|| fingerprint.clone());
        if name.chars().count() > 100 {
            return Err(ApiError::invalid(
                "name",
                "a key name has at most 100 characters",
            ));
        }
        let key = ssh_key::ActiveModel {
            id: Set(new_id()),
            user_id: Set(caller.id().clone()),
            name: Set(name),
            public_key: Set(public_key),
            fingerprint: Set(fingerprint),
            created_at: Set(Utc::now()),
        }
        .insert(&self.db)
        .await
        .map_err(|e| {
            conflict_on_duplicate(e, || {
                "this key is registered already (keys are unique across users)".into()
            })
        })?;
        record(
            &self.db,
            Some(caller),
            "ssh_key.add",
            &format!("ssh_key:{}", key.fingerprint),
            Outcome::Success,
            json!({}),
        )
        .await;
        Ok(SshKeyDto {
            id: key.id,
            name: key.name,
            public_key: key.public_key,
            fingerprint: key.fingerprint,
            created_at: key.created_at.into(),
        })
    }

    async fn remove_ssh_key(&self, caller: &Caller, id: &SshKeyId) -> ApiResult<()> {
        let key = ssh_key::Entity::find_by_id(id.clone())
            .filter(ssh_key::Column::UserId.eq(caller.id().clone()))
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found("SSH key"))?;
        ssh_key::Entity::delete_by_id(key.id).exec(&self.db).await?;
        // SSH sessions opened with it close.
        self.users_changed(vec![caller.id().clone()]);
        record(
            &self.db,
            Some(caller),
            "ssh_key.remove",
            &format!("ssh_key:{}", key.fingerprint),
            Outcome::Success,
            json!({}),
        )
        .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_ed25519_key_and_fingerprints_it() {
        let line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ann@laptop";
        let Ok((key, fingerprint, comment)) = parse_public_key(line) else {
            panic!("a valid ed25519 key was refused");
        };
        assert!(key.starts_with("ssh-ed25519 AAAA"));
        assert!(fingerprint.starts_with("SHA256:"));
        assert_eq!(comment.as_deref(), Some("ann@laptop"));
        assert!(parse_public_key("ssh-ed25519 notbase64!").is_err());
        assert!(parse_public_key("ssh-dss AAAA").is_err());
        // The blob must declare the same type as the line.
        assert!(parse_public_key(
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
        )
        .is_err());
    }

    #[test]
    fn token_hashes_are_stable_hex() {
        assert_eq!(hash_token("abc").len(), 64);
        assert_eq!(hash_token("abc"), hash_token("abc"));
        assert!(new_secret().starts_with("hgr_"));
    }
}
