//! Personal API tokens (only their SHA-256 is stored; the secret is shown once) and SSH keys.

use app::api::page::PageQuery;
use app::api::users::{
    ssr::CredentialsApi, CreateSshKey, CreateToken, SshKeyDto, TokenCreated, TokenDto, TokenScope,
};
use app::ids::{SshKeyId, TokenId, UserId};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set,
    TransactionTrait,
};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::access::{Caller, Credential};
use super::audit::{record, Outcome};
use super::paging::Keyset;
use super::quota::lock_owner;
use super::{conflict_on_duplicate, new_id, Services};
use crate::entities::{api_token, ssh_key, user};
use crate::error::{ApiError, ApiResult};

/// Every token starts with this, so leaked tokens are easy to recognise.
const TOKEN_PREFIX: &str = "hgr_";
const DEFAULT_TOKEN_DAYS: i64 = 90;
/// Most API tokens, and most SSH keys, one user may have.
pub const MAX_TOKENS_PER_USER: u64 = 50;
pub const MAX_SSH_KEYS_PER_USER: u64 = 50;
/// Longest SSH key name (a longer key comment is cut to it).
const MAX_KEY_NAME: usize = 100;
/// Scopes of tokens that did not ask for any.
const DEFAULT_SCOPES: [TokenScope; 2] = [TokenScope::Read, TokenScope::Write];

/// Scopes as stored: names separated by commas.
fn scopes_text(scopes: &[TokenScope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Stored scopes, read back; names this version does not know grant nothing.
fn scopes_of(text: &str) -> Vec<TokenScope> {
    text.split(',').filter_map(TokenScope::parse).collect()
}

/// The SHA-256 of a secret in hex: what is stored of tokens, tunnel links and app sessions.
pub fn hash_token(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// `bytes` random bytes, in hex.
pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buffer = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buffer);
    buffer.iter().map(|b| format!("{b:02x}")).collect()
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

fn token_dto(t: api_token::Model, max_days: i64) -> TokenDto {
    TokenDto {
        scopes: scopes_of(&t.scopes),
        expires_at: Some(ends_at(&t, max_days).into()),
        id: t.id,
        name: t.name,
        prefix: t.prefix,
        created_at: t.created_at.into(),
        last_used_at: t.last_used_at.map(Into::into),
    }
}

fn key_dto(k: ssh_key::Model) -> SshKeyDto {
    SshKeyDto {
        id: k.id,
        name: k.name,
        public_key: k.public_key,
        fingerprint: k.fingerprint,
        created_at: k.created_at.into(),
    }
}

/// When a token stops working: its own expiry, or once it is `--token-max-days` old,
/// whichever comes first (so lowering the setting also shortens older tokens).
pub fn ends_at(token: &api_token::Model, max_days: i64) -> DateTime<Utc> {
    let oldest_allowed = token.created_at + Duration::days(max_days);
    token
        .expires_at
        .map_or(oldest_allowed, |at| at.min(oldest_allowed))
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
    /// The active user a valid, unexpired token belongs to, and what the caller proves with
    /// it.
    pub async fn user_for_token(
        &self,
        secret: &str,
    ) -> ApiResult<Option<(user::Model, Credential)>> {
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
        if ends_at(&token, self.config.token_max_days) <= now {
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
        let credential = Credential::Token(token.id, scopes_of(&token.scopes));
        Ok(owner.filter(|u| u.active).map(|u| (u, credential)))
    }

    /// Whether the token with this id still works now.
    pub async fn token_alive(&self, id: &TokenId) -> ApiResult<bool> {
        let now = Utc::now();
        Ok(api_token::Entity::find_by_id(id.clone())
            .one(&self.db)
            .await?
            .is_some_and(|t| ends_at(&t, self.config.token_max_days) > now))
    }

    /// The scopes and expiry a new token may have: what it asks within the server's limits,
    /// and when a token creates it, no more than that token's own: a lifetime it asked for
    /// beyond its creator's is refused, the default one is cut to its creator's (with a note
    /// saying so).
    async fn grant(
        &self,
        caller: &Caller,
        input: &CreateToken,
    ) -> ApiResult<(Vec<TokenScope>, DateTime<Utc>, Option<String>)> {
        let max_days = self.config.token_max_days;
        let days = input
            .expires_in_days
            .unwrap_or(DEFAULT_TOKEN_DAYS.min(max_days));
        if !(1..=max_days).contains(&days) {
            return Err(ApiError::invalid(
                "expires_in_days",
                format!(
                    "expires_in_days is a whole number from 1 to {max_days} (the server's limit)"
                ),
            ));
        }
        let asked = input.scopes.clone().unwrap_or(DEFAULT_SCOPES.to_vec());
        if asked.is_empty() || asked.len() > TokenScope::ALL.len() {
            return Err(ApiError::invalid(
                "scopes",
                "scopes lists 1 to 3 of `read`, `write` and `credentials`",
            ));
        }
        let scopes = TokenScope::closure(&asked);
        let mut expires = Utc::now() + Duration::days(days);
        let mut note = None;
        if let Credential::Token(id, own) = &caller.credential {
            if let Some(beyond) = scopes.iter().find(|s| !own.contains(s)) {
                return Err(ApiError::forbidden(format!(
                    "this API token cannot create a token with the `{}` scope it lacks itself",
                    beyond.as_str()
                )));
            }
            let creator = api_token::Entity::find_by_id(id.clone())
                .one(&self.db)
                .await?
                .ok_or_else(ApiError::unauthorized)?;
            let creator_ends = ends_at(&creator, max_days);
            if expires > creator_ends && input.expires_in_days.is_none() {
                note = Some(format!(
                    "this token expires at {}, with the API token that created it (a token \
                     cannot outlive the token that creates it), sooner than the default {days} \
                     days",
                    app::time::Timestamp::from(creator_ends)
                ));
            } else if expires > creator_ends {
                return Err(ApiError::invalid(
                    "expires_in_days",
                    format!(
                        "a token cannot outlive the token that creates it (which expires at {})",
                        app::time::Timestamp::from(creator_ends)
                    ),
                ));
            }
            expires = expires.min(creator_ends);
        }
        Ok((scopes, expires, note))
    }
}

/// The 409 for a key that is registered already: by the caller, or by another account (never
/// said which: a public key says nothing of who holds it).
fn key_taken(mine: bool) -> ApiError {
    if mine {
        ApiError::conflict("you registered this key already")
            .with_detail("reason", "registered_by_you")
    } else {
        ApiError::conflict(
            "this key is registered to another account: an SSH key signs in as one account \
             only, so generate a new key (`ssh-keygen -t ed25519`) and add its .pub; if this \
             key is yours and you did not register it elsewhere, tell an admin",
        )
        .with_detail("reason", "registered_to_another_account")
    }
}

/// 409 when the user already has `max` of what `column` of `entity` counts; takes the user's
/// lock first, so that parallel requests cannot all slip under the limit.
async fn check_room<E, C>(
    txn: &C,
    user_id: &UserId,
    column: E::Column,
    max: u64,
    what: &str,
) -> ApiResult<()>
where
    E: EntityTrait,
    E::Model: Sync,
    C: ConnectionTrait,
{
    lock_owner(txn, user_id).await?;
    let held = E::find()
        .filter(column.eq(user_id.clone()))
        .count(txn)
        .await?;
    if held >= max {
        return Err(ApiError::conflict(format!(
            "you have {held} {what}, the most allowed: remove one first"
        ))
        .with_detail("limit", max));
    }
    Ok(())
}

#[async_trait::async_trait]
impl CredentialsApi for Services {
    async fn list_tokens(&self, caller: &Caller, page: PageQuery) -> ApiResult<Vec<TokenDto>> {
        let mine = api_token::Column::UserId.eq(caller.id().clone());
        let tokens = Keyset::new([api_token::Column::CreatedAt, api_token::Column::Id])
            .page(&self.db, api_token::Entity::find().filter(mine), &page)
            .await?;
        let max_days = self.config.token_max_days;
        Ok(tokens.into_iter().map(|t| token_dto(t, max_days)).collect())
    }

    /// A new token of the caller, within `--token-max-days`, and at most
    /// [`MAX_TOKENS_PER_USER`]. Only a caller whose credential has the `credentials` scope
    /// may (a token made without it cannot mint others).
    async fn create_token(&self, caller: &Caller, input: CreateToken) -> ApiResult<TokenCreated> {
        caller.require_scope(TokenScope::Credentials)?;
        let name = crate::validate::name("name", &input.name, 64)?.to_owned();
        let (scopes, expires_at, note) = self.grant(caller, &input).await?;
        let secret = new_secret();
        let now = Utc::now();
        let txn = self.db.begin().await?;
        check_room::<api_token::Entity, _>(
            &txn,
            caller.id(),
            api_token::Column::UserId,
            MAX_TOKENS_PER_USER,
            "API tokens",
        )
        .await?;
        let token = api_token::ActiveModel {
            id: Set(new_id()),
            user_id: Set(caller.id().clone()),
            name: Set(name.clone()),
            token_hash: Set(hash_token(&secret)),
            prefix: Set(secret.chars().take(TOKEN_PREFIX.len() + 6).collect()),
            created_at: Set(now),
            expires_at: Set(Some(expires_at)),
            last_used_at: Set(None),
            scopes: Set(scopes_text(&scopes)),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        record(
            &self.db,
            Some(caller),
            "token.create",
            &format!("token:{name}"),
            Outcome::Success,
            json!({"expires_at": app::time::Timestamp::from(expires_at), "scopes": scopes_text(&scopes)}),
        )
        .await;
        Ok(TokenCreated {
            token: token_dto(token, self.config.token_max_days),
            secret,
            note,
        })
    }

    /// Revokes one of the caller's tokens: with the `credentials` scope any, else only the
    /// token the caller is using (ending oneself gives no power).
    async fn revoke_token(&self, caller: &Caller, id: &TokenId) -> ApiResult<()> {
        if !matches!(&caller.credential, Credential::Token(own, _) if own == id) {
            caller.require_scope(TokenScope::Credentials)?;
        }
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

    async fn list_ssh_keys(&self, caller: &Caller, page: PageQuery) -> ApiResult<Vec<SshKeyDto>> {
        let mine = ssh_key::Column::UserId.eq(caller.id().clone());
        let keys = Keyset::new([ssh_key::Column::CreatedAt, ssh_key::Column::Id])
            .page(&self.db, ssh_key::Entity::find().filter(mine), &page)
            .await?;
        Ok(keys.into_iter().map(key_dto).collect())
    }

    /// A new SSH key of the caller, at most [`MAX_SSH_KEYS_PER_USER`]. A key belongs to one
    /// account (the SSH gateway knows who connects by the key alone): one registered already
    /// is a conflict, saying whether it is the caller's own or another account's (never
    /// whose).
    async fn add_ssh_key(&self, caller: &Caller, input: CreateSshKey) -> ApiResult<SshKeyDto> {
        caller.require_scope(TokenScope::Credentials)?;
        crate::validate::at_most("public_key", &input.public_key, 16384)?;
        let (public_key, fingerprint, comment) = parse_public_key(&input.public_key)?;
        let name = match input.name {
            Some(name) => {
                crate::validate::at_most("name", &name, MAX_KEY_NAME)?;
                name
            }
            None => comment
                .map(|c| c.chars().take(MAX_KEY_NAME).collect())
                .unwrap_or_else(|| fingerprint.clone()),
        };
        let txn = self.db.begin().await?;
        check_room::<ssh_key::Entity, _>(
            &txn,
            caller.id(),
            ssh_key::Column::UserId,
            MAX_SSH_KEYS_PER_USER,
            "SSH keys",
        )
        .await?;
        let holder = ssh_key::Entity::find()
            .filter(ssh_key::Column::Fingerprint.eq(fingerprint.clone()))
            .one(&txn)
            .await?;
        if let Some(holder) = holder {
            txn.rollback().await?;
            let mine = &holder.user_id == caller.id();
            if !mine {
                record(
                    &self.db,
                    Some(caller),
                    "ssh_key.add",
                    &format!("ssh_key:{fingerprint}"),
                    Outcome::Refused,
                    json!({"reason": "registered to another account"}),
                )
                .await;
            }
            return Err(key_taken(mine));
        }
        let key = ssh_key::ActiveModel {
            id: Set(new_id()),
            user_id: Set(caller.id().clone()),
            name: Set(name),
            public_key: Set(public_key),
            fingerprint: Set(fingerprint),
            created_at: Set(Utc::now()),
        }
        .insert(&txn)
        .await
        // Someone registered it meanwhile.
        .map_err(|e| conflict_on_duplicate(e, || key_taken(false).message))?;
        txn.commit().await?;
        record(
            &self.db,
            Some(caller),
            "ssh_key.add",
            &format!("ssh_key:{}", key.fingerprint),
            Outcome::Success,
            json!({}),
        )
        .await;
        Ok(key_dto(key))
    }

    async fn remove_ssh_key(&self, caller: &Caller, id: &SshKeyId) -> ApiResult<()> {
        caller.require_scope(TokenScope::Credentials)?;
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
