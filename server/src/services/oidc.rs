//! Sign-in through the identity provider (OpenID Connect), as rules: what a sign-in keeps in
//! the browser's session until the provider sends it back (single use), what the provider's
//! claims mean for an account (username, email and its domain, linking by subject and never
//! by email, creating it or not), its groups and role, who may still sign in with a password,
//! and the one-time grants that hand the command line a token. The provider itself is spoken
//! to by `crate::auth::oidc`; the doors are `crate::http::oidc`.

use std::collections::{BTreeSet, HashMap};

use app::api::auth::{PasswordSignIn, Role, SignInMethods, UserDto};
use app::api::ssr::{Caller, Credential, Presented};
use app::api::users::{ssr::CredentialsApi, CreateToken, TokenCreated};
use app::ids::{GroupId, UserId};
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::audit::{record, Outcome};
use super::tokens::{hash_token, random_hex};
use super::{new_id, Services};
use crate::auth::oidc::{OidcError, OidcErrorKind, VerifiedClaims};
use crate::auth::{password, SESSION_USER_ID};
use crate::config;
use crate::entities::{group, group_member, login_grant, user, user_identity};
use crate::error::{ApiError, ApiResult};

/// Session key of the sign-ins under way in this browser (a few tabs may each start one).
const PENDING: &str = "oidc_pending";
/// Session key of the notice the sign-in page shows once.
const NOTICE: &str = "sign_in_notice";
/// Session key saying the session was opened through the provider.
const THROUGH_PROVIDER: &str = "through_provider";
/// Sign-ins under way kept per browser (the oldest is dropped beyond).
const MAX_PENDING: usize = 5;
/// How long a sign-in may stay at the provider, in seconds.
const PENDING_SECS: i64 = 600;
/// How long the command line has to claim its token after the browser came back, in seconds.
const GRANT_SECS: i64 = 120;
/// How many values of the groups claim are read.
const MAX_GROUP_VALUES: usize = 200;
/// The longest groups claim value read (longer ones cannot name a group anyway).
const MAX_GROUP_VALUE_BYTES: usize = 256;

/// A sign-in under way: what goes back to the provider and where to go afterwards.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    next: String,
    purpose: Purpose,
    started: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
enum Purpose {
    /// Sign this browser in.
    SignIn,
    /// Link the signed-in account to the provider identity.
    Link,
    /// Hand the command line listening on `port` a token (its `state` and `challenge`).
    Cli {
        port: u16,
        state: String,
        challenge: String,
    },
}

/// How a sign-in through the provider begins (`GET /api/v1/auth/oidc/login`'s query).
#[derive(Debug, Clone, Default)]
pub struct OidcStart {
    /// A path of Hangar's to go to afterwards.
    pub next: Option<String>,
    /// Link the signed-in account instead of signing in.
    pub link: bool,
    /// The command line's loopback port, state and challenge.
    pub cli: Option<(u16, String, String)>,
}

/// What the provider sent the browser back with (`GET /api/v1/auth/oidc/callback`'s query).
#[derive(Debug, Clone, Default)]
pub struct OidcCallback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// Where the browser goes once the provider sent it back, and the refusal if it was refused
/// (then the sign-in page, or the command line, shows why).
#[derive(Debug)]
pub struct OidcOutcome {
    pub to: String,
    pub refused: Option<ApiError>,
}

/// A path of Hangar's own, safe to send a browser to; else home.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_owned(),
        _ => "/".to_owned(),
    }
}

/// A username from a claim's value: lowercase, the part before `@` of an email address,
/// other characters made `-`, starting with a letter, 2 to 32 characters.
pub fn safe_username(value: &str) -> Option<String> {
    let local = value.split('@').next().unwrap_or_default();
    let mut name = String::new();
    for c in local.trim().chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if c == '-' && (name.is_empty() || name.ends_with('-')) {
            continue;
        }
        name.push(c);
    }
    let name = name.trim_start_matches(|c: char| c.is_ascii_digit() || c == '-');
    let mut name: String = name.chars().take(32).collect();
    while name.ends_with('-') {
        name.pop();
    }
    if name.len() == 1 {
        name.push_str("-user");
    }
    crate::validate::username(&name).ok().map(|()| name)
}

/// A claim's value as text (strings, and numbers some providers send).
fn text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A claim's values: a list, or one value (some providers send a lone group as a string).
fn values(claims: &Map<String, Value>, name: &str) -> Vec<String> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match claims.get(name) {
        Some(Value::Array(items)) => items.iter().filter_map(one).collect(),
        Some(value) => one(value).into_iter().collect(),
        None => Vec::new(),
    }
}

/// `email_verified` as providers send it (a boolean, some a string).
fn email_verified(claims: &Map<String, Value>) -> bool {
    match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

impl Services {
    fn provider_name(&self) -> &str {
        &self.config.oidc_provider_name
    }

    fn provider(&self) -> ApiResult<&crate::auth::oidc::OidcProvider> {
        self.oidc.as_deref().ok_or_else(|| {
            ApiError::not_found_because(
                "sign-in through an identity provider is not configured on this Hangar \
                 (--oidc-issuer-url): sign in with your username and password",
            )
        })
    }

    /// How one signs in here, and the session's notice (taken: shown once).
    pub async fn sign_in_methods_of(&self, presented: &Presented) -> ApiResult<SignInMethods> {
        let notice = presented.session.remove::<String>(NOTICE).await?;
        Ok(SignInMethods {
            provider: self.oidc.as_ref().map(|_| self.provider_name().to_owned()),
            password: match self.config.password_sign_in {
                config::PasswordSignIn::Everyone => PasswordSignIn::Everyone,
                config::PasswordSignIn::BreakGlass => PasswordSignIn::BreakGlass,
            },
            notice,
        })
    }

    /// Refuses a password sign-in when only the break-glass admin may sign in that way
    /// (before the password is checked: it says nothing about it).
    pub fn check_password_sign_in(&self, username: &str) -> ApiResult<()> {
        if self.config.password_sign_in == config::PasswordSignIn::Everyone
            || username
                .trim()
                .eq_ignore_ascii_case(self.config.break_glass_user())
        {
            return Ok(());
        }
        Err(ApiError::forbidden(format!(
            "password sign-in is turned off on this Hangar: use \"Sign in with {}\" (on the \
             command line, `hangar login <url>` opens the browser)",
            self.provider_name()
        )))
    }

    /// After a password sign-in: under `break-glass`, the break-glass account must be an
    /// admin (else the session just opened is closed again); the sign-in is audited.
    pub async fn check_break_glass(&self, presented: &Presented, user: &UserDto) -> ApiResult<()> {
        if self.config.password_sign_in == config::PasswordSignIn::Everyone {
            return Ok(());
        }
        let caller = acting(user.clone());
        if user.role != Role::Admin {
            presented.session.flush().await?;
            record(
                &self.db,
                Some(&caller),
                "auth.password",
                &format!("user:{}", user.username),
                Outcome::Refused,
                json!({"reason": "break-glass account is not an admin"}),
            )
            .await;
            return Err(ApiError::forbidden(
                "password sign-in is kept for the break-glass admin, and this account is not an \
                 admin",
            ));
        }
        record(
            &self.db,
            Some(&caller),
            "auth.password",
            &format!("user:{}", user.username),
            Outcome::Success,
            json!({"break_glass": true}),
        )
        .await;
        Ok(())
    }

    /// Whether the presented session was opened through the provider.
    pub async fn signed_in_through_provider(&self, presented: &Presented) -> bool {
        matches!(
            presented.session.get::<bool>(THROUGH_PROVIDER).await,
            Ok(Some(true))
        )
    }

    /// Leaves the sign-in page a notice that signing out of Hangar left the provider's session.
    pub async fn tell_provider_session_remains(&self, presented: &Presented) {
        let notice = format!(
            "You are signed out of Hangar. Your session at {name} remains: \"Sign in with \
             {name}\" may sign you in again without asking. On a shared computer, sign out at \
             {name} too.",
            name = self.provider_name()
        );
        if let Err(e) = presented.session.insert(NOTICE, notice).await {
            tracing::warn!(error = %e, "could not keep the sign-out notice");
        }
    }

    /// Begins a sign-in: keeps its secrets in the browser's session and answers the
    /// provider's URL to send the browser to.
    pub async fn oidc_begin(&self, presented: &Presented, start: OidcStart) -> ApiResult<String> {
        let provider = self.provider()?;
        let purpose = match (&start.cli, start.link) {
            (Some((port, state, challenge)), _) => {
                if *port < 1024
                    || state.is_empty()
                    || state.len() > 128
                    || challenge.len() != 64
                    || !challenge.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    return Err(ApiError::bad_request(
                        "the command line's sign-in is malformed: run `hangar login <url>` again",
                    ));
                }
                Purpose::Cli {
                    port: *port,
                    state: state.clone(),
                    challenge: challenge.to_ascii_lowercase(),
                }
            }
            (None, true) => {
                if self.auth.presented_user(presented).await?.is_none() {
                    return Err(ApiError::unauthorized_because(
                        "sign in first: linking joins your signed-in account to your provider \
                         identity",
                    ));
                }
                Purpose::Link
            }
            (None, false) => Purpose::SignIn,
        };
        let authorization = provider.authorization().await.map_err(|e| {
            tracing::error!(detail = %e.detail, "cannot begin a sign-in through the identity provider");
            self.provider_unusable(&e)
        })?;
        let mut pending: Vec<Pending> = presented.session.get(PENDING).await?.unwrap_or_default();
        let now = Utc::now().timestamp();
        pending.retain(|p| now - p.started < PENDING_SECS);
        if pending.len() >= MAX_PENDING {
            pending.remove(0);
        }
        pending.push(Pending {
            state: authorization.state,
            nonce: authorization.nonce,
            verifier: authorization.pkce_verifier,
            next: local_path(start.next.as_deref()),
            purpose,
            started: now,
        });
        presented.session.insert(PENDING, pending).await?;
        // A browser nobody signed in yet keeps its session only as long as a sign-in may take:
        // starting sign-ins cannot pile up sessions for the usual days.
        if self.auth.presented_user(presented).await?.is_none() {
            presented
                .session
                .set_expiry(Some(tower_sessions::Expiry::OnInactivity(
                    time::Duration::seconds(PENDING_SECS),
                )));
        }
        Ok(authorization.url)
    }

    /// What the person is told when the provider cannot be used at all.
    fn provider_unusable(&self, error: &OidcError) -> ApiError {
        ApiError::unavailable(format!(
            "{} cannot be used for signing in right now ({}): try again later, or tell your \
             Hangar admin (the server's log says more)",
            self.provider_name(),
            match error.kind {
                OidcErrorKind::WrongIssuer => "Hangar's issuer URL does not match the provider's",
                _ => "it does not answer as expected",
            }
        ))
    }

    /// Finishes a sign-in the provider sent back: checks it, then signs the browser in, links
    /// the account, or hands the command line its grant. A refusal is audited, logged in
    /// detail, and kept as the sign-in page's notice.
    pub async fn oidc_finish(
        &self,
        presented: &Presented,
        callback: OidcCallback,
    ) -> ApiResult<OidcOutcome> {
        let provider = self.provider()?;
        let (pending, result) = self.oidc_check(presented, provider, callback).await?;
        let cli = pending.as_ref().and_then(|p| match &p.purpose {
            Purpose::Cli { port, state, .. } => Some((*port, state.clone())),
            _ => None,
        });
        // A refused link goes back to the page it began on (the profile), signed in still.
        let back_to = match &pending {
            Some(p) if p.purpose == Purpose::Link => p.next.clone(),
            _ => "/login".to_owned(),
        };
        match result {
            Ok(to) => Ok(OidcOutcome { to, refused: None }),
            Err(refusal) => {
                let to = match cli {
                    Some((port, state)) => {
                        loopback(port, &[("state", &state), ("error", &refusal.message)])
                    }
                    None => {
                        presented
                            .session
                            .insert(NOTICE, refusal.message.clone())
                            .await?;
                        back_to
                    }
                };
                Ok(OidcOutcome {
                    to,
                    refused: Some(refusal),
                })
            }
        }
    }

    /// The checks of a callback: the sign-in under way it ends (taken out of the session),
    /// and where to go or why it is refused.
    async fn oidc_check(
        &self,
        presented: &Presented,
        provider: &crate::auth::oidc::OidcProvider,
        callback: OidcCallback,
    ) -> ApiResult<(Option<Pending>, Result<String, ApiError>)> {
        let name = self.provider_name().to_owned();
        let refuse = |reason: &str, message: String| {
            tracing::warn!(%reason, "sign-in through the identity provider refused: {message}");
            ApiError::unauthorized_because(message)
        };
        // Single use: whatever happens next, this sign-in is over.
        let mut all: Vec<Pending> = presented.session.get(PENDING).await?.unwrap_or_default();
        let state = callback.state.unwrap_or_default();
        let found = all
            .iter()
            .position(|p| !state.is_empty() && p.state.as_bytes() == state.as_bytes())
            .map(|i| all.remove(i));
        presented.session.insert(PENDING, all).await?;
        let Some(pending) = found else {
            let refusal = refuse(
                "state",
                format!(
                    "this sign-in did not start in this browser, or was used already (its \
                     `state` is unknown): start again with \"Sign in with {name}\""
                ),
            );
            // Logged, not audited: anyone can send any number of these without signing in,
            // and the audit log is for what signed-in people and real sign-ins did.
            return Ok((None, Err(refusal)));
        };
        if Utc::now().timestamp() - pending.started >= PENDING_SECS {
            let refusal = refuse(
                "expired",
                format!(
                    "the sign-in took more than {} minutes at {name}: start again",
                    PENDING_SECS / 60
                ),
            );
            self.audit_refusal("took too long", None).await;
            return Ok((Some(pending), Err(refusal)));
        }
        if let Some(error) = callback.error {
            let why = callback
                .error_description
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| error.clone());
            let why: String = why.chars().take(300).collect();
            let refusal = refuse(
                "provider",
                format!("{name} did not sign you in ({why}): try again, or ask your admin"),
            );
            let error: String = error.chars().take(100).collect();
            self.audit_refusal(&format!("provider said {error}"), None)
                .await;
            return Ok((Some(pending), Err(refusal)));
        }
        let Some(code) = callback.code.filter(|c| !c.is_empty()) else {
            let refusal = refuse(
                "code",
                format!("{name} sent the browser back without a code: start again"),
            );
            self.audit_refusal("no code", None).await;
            return Ok((Some(pending), Err(refusal)));
        };
        let claims = match provider
            .claims(&code, &pending.verifier, &pending.nonce)
            .await
        {
            Ok(claims) => claims,
            Err(e) => {
                tracing::warn!(kind = ?e.kind, detail = %e.detail, "the identity provider's answer was refused");
                self.audit_refusal(&e.detail, None).await;
                let message = self.token_refusal(&e);
                return Ok((Some(pending), Err(ApiError::unauthorized_because(message))));
            }
        };
        let result = self.oidc_account(presented, &pending, claims).await;
        Ok((Some(pending), result))
    }

    /// What the person reads when the provider's answer did not check out.
    fn token_refusal(&self, error: &OidcError) -> String {
        let name = self.provider_name();
        match error.kind {
            OidcErrorKind::CodeRefused => format!(
                "{name} refused the sign-in code: it was used already or has expired. Start \
                 again with \"Sign in with {name}\""
            ),
            OidcErrorKind::WrongAudience => format!(
                "{name}'s answer is meant for another application (its audience is not \
                 Hangar's client id): your admin should check --oidc-client-id"
            ),
            OidcErrorKind::TokenIssuer | OidcErrorKind::WrongIssuer => format!(
                "{name}'s answer comes from another issuer than the one configured: your admin \
                 should check --oidc-issuer-url"
            ),
            OidcErrorKind::ClockSkew => format!(
                "{name}'s answer has expired or is dated in the future: the clocks of Hangar's \
                 server and of {name} disagree (or the sign-in was replayed). Your admin should \
                 check the server's clock (or --oidc-clock-skew-secs)"
            ),
            OidcErrorKind::Nonce => format!(
                "{name}'s answer does not belong to this sign-in (its nonce differs): start again"
            ),
            OidcErrorKind::Signature => format!(
                "{name}'s answer is not signed by {name}'s keys: start again, and tell your admin \
                 if it goes on"
            ),
            OidcErrorKind::Unreachable | OidcErrorKind::Invalid => format!(
                "{name} could not complete the sign-in (it did not answer as expected): try again \
                 later, or tell your admin (the server's log says more)"
            ),
        }
    }

    async fn audit_refusal(&self, reason: &str, who: Option<&str>) {
        record(
            &self.db,
            None,
            "auth.oidc",
            &who.map_or_else(|| "user:?".to_owned(), |w| format!("user:{w}")),
            Outcome::Refused,
            json!({"reason": reason}),
        )
        .await;
    }

    /// The account the checked claims stand for, then what the sign-in was for.
    async fn oidc_account(
        &self,
        presented: &Presented,
        pending: &Pending,
        verified: VerifiedClaims,
    ) -> Result<String, ApiError> {
        let name = self.provider_name().to_owned();
        let claims = &verified.claims;
        let subject = verified.subject.clone();
        let refuse = |who: String, reason: &'static str, message: String| async move {
            tracing::warn!(subject = %subject, %reason, "sign-in through the identity provider refused: {message}");
            self.audit_refusal(reason, Some(&who)).await;
            ApiError::forbidden(message)
        };
        let who = text(claims, &self.config.oidc_username_claim)
            .or_else(|| text(claims, "email"))
            .unwrap_or_else(|| verified.subject.clone());
        // The email: present, verified (unless allowed otherwise), of an allowed domain.
        let email = text(claims, "email").unwrap_or_default();
        if !self.config.oidc_allowed_domains.is_empty() || !email.is_empty() {
            if email.is_empty() || !email.contains('@') {
                return Err(refuse(
                    who,
                    "no email",
                    format!(
                        "{name} did not send your email address (the `email` claim): your admin \
                     should add the `email` scope (--oidc-scopes) or the claim at {name}"
                    ),
                )
                .await);
            }
            if !self.config.oidc_allow_unverified_email && !email_verified(claims) {
                return Err(refuse(
                    who,
                    "email not verified",
                    format!(
                        "{name} has not verified your email address {email}: verify it at {name}, \
                     then sign in again"
                    ),
                )
                .await);
            }
        }
        if !self.config.oidc_allowed_domains.is_empty() {
            let domain = email
                .rsplit('@')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            let allowed = self.config.oidc_allowed_domains.iter().any(|d| {
                d.trim()
                    .trim_start_matches('@')
                    .eq_ignore_ascii_case(&domain)
            });
            if !allowed {
                return Err(refuse(
                    who,
                    "domain not allowed",
                    format!(
                        "the email domain {domain} may not sign in to this Hangar (allowed: {}): \
                     sign in with an account of an allowed domain",
                        self.config.oidc_allowed_domains.join(", ")
                    ),
                )
                .await);
            }
        }
        let identity =
            user_identity::Entity::find_by_id((verified.issuer.clone(), verified.subject.clone()))
                .one(&self.db)
                .await?;
        if pending.purpose == Purpose::Link {
            return self
                .link(presented, pending, &verified, identity, &who)
                .await;
        }
        let account = match identity {
            Some(identity) => user::Entity::find_by_id(identity.user_id)
                .one(&self.db)
                .await?
                .ok_or_else(|| ApiError::internal("a linked account vanished"))?,
            None if !self.config.oidc_auto_create => {
                return Err(refuse(
                    who,
                    "not linked",
                    format!(
                    "no Hangar account is linked to your {name} identity, and this Hangar makes \
                     none by itself: sign in with your password and link it on your profile \
                     page, or ask an admin to create your account"
                ),
                )
                .await);
            }
            None => match self.create_from_claims(&verified, &email).await {
                Ok(created) => created,
                Err(e) => return Err(refuse(who, "cannot create", e.message).await),
            },
        };
        if !account.active {
            return Err(refuse(
                account.username.clone(),
                "deactivated",
                format!(
                    "your Hangar account `{}` is deactivated: ask a Hangar admin to activate it",
                    account.username
                ),
            )
            .await);
        }
        let account = self.sync_from_claims(account, claims, &email).await?;
        user_identity::Entity::update_many()
            .col_expr(
                user_identity::Column::LastSignInAt,
                sea_orm::sea_query::Expr::value(Utc::now()),
            )
            .filter(user_identity::Column::Issuer.eq(verified.issuer.clone()))
            .filter(user_identity::Column::Subject.eq(verified.subject.clone()))
            .exec(&self.db)
            .await?;
        let caller = acting(account.clone().into());
        match &pending.purpose {
            Purpose::Cli {
                port,
                state,
                challenge,
            } => {
                let code = random_hex(32);
                // Grants never claimed go with the next one: the table holds only live ones.
                login_grant::Entity::delete_many()
                    .filter(login_grant::Column::ExpiresAt.lt(Utc::now()))
                    .exec(&self.db)
                    .await?;
                login_grant::Entity::insert(login_grant::ActiveModel {
                    code_hash: Set(hash_token(&code)),
                    user_id: Set(account.id.clone()),
                    challenge: Set(challenge.clone()),
                    expires_at: Set(Utc::now() + chrono::Duration::seconds(GRANT_SECS)),
                })
                .exec_without_returning(&self.db)
                .await?;
                record(
                    &self.db,
                    Some(&caller),
                    "auth.oidc",
                    &format!("user:{}", account.username),
                    Outcome::Success,
                    json!({"subject": verified.subject, "for": "command line"}),
                )
                .await;
                Ok(loopback(*port, &[("state", state), ("code", &code)]))
            }
            _ => {
                // A new id at sign-in defeats session fixation.
                presented.session.cycle_id().await?;
                presented
                    .session
                    .insert(SESSION_USER_ID, &account.id)
                    .await?;
                presented.session.insert(THROUGH_PROVIDER, true).await?;
                tracing::info!(username = %account.username, client = %presented.client, "signed in through the identity provider");
                record(
                    &self.db,
                    Some(&caller),
                    "auth.oidc",
                    &format!("user:{}", account.username),
                    Outcome::Success,
                    json!({"subject": verified.subject}),
                )
                .await;
                Ok(pending.next.clone())
            }
        }
    }

    /// Links the signed-in account to the provider identity (by subject).
    async fn link(
        &self,
        presented: &Presented,
        pending: &Pending,
        verified: &VerifiedClaims,
        identity: Option<user_identity::Model>,
        who: &str,
    ) -> Result<String, ApiError> {
        let name = self.provider_name();
        let Some(current) = self.auth.presented_user(presented).await? else {
            return Err(ApiError::unauthorized_because(
                "you were signed out meanwhile: sign in, then link again",
            ));
        };
        let caller = acting(current.clone());
        match identity {
            Some(existing) if existing.user_id == current.id => return Ok(pending.next.clone()),
            Some(_) => {
                self.audit_refusal("identity linked to another account", Some(who))
                    .await;
                return Err(ApiError::conflict(format!(
                    "this {name} identity is linked to another Hangar account already: ask an \
                     admin"
                )));
            }
            None => {}
        }
        let inserted = user_identity::Entity::insert(user_identity::ActiveModel {
            issuer: Set(verified.issuer.clone()),
            subject: Set(verified.subject.clone()),
            user_id: Set(current.id.clone()),
            created_at: Set(Utc::now()),
            last_sign_in_at: Set(None),
        })
        .exec_without_returning(&self.db)
        .await;
        if let Err(e) = inserted {
            return Err(super::conflict_on_duplicate(e, || {
                format!("your account is linked to another {name} identity already: ask an admin")
            }));
        }
        record(
            &self.db,
            Some(&caller),
            "user.link",
            &format!("user:{}", current.username),
            Outcome::Success,
            json!({"issuer": verified.issuer, "subject": verified.subject}),
        )
        .await;
        Ok(pending.next.clone())
    }

    /// A new account for someone signing in for the first time, linked to their subject.
    async fn create_from_claims(
        &self,
        verified: &VerifiedClaims,
        email: &str,
    ) -> ApiResult<user::Model> {
        let name = self.provider_name();
        let claim = &self.config.oidc_username_claim;
        let source = text(&verified.claims, claim).ok_or_else(|| {
            ApiError::forbidden(format!(
                "{name} did not send the `{claim}` claim Hangar makes usernames from: your admin \
                 should add it at {name} or choose another (--oidc-username-claim)"
            ))
        })?;
        let username = safe_username(&source).ok_or_else(|| {
            ApiError::forbidden(format!(
                "no Hangar username can be made of your `{claim}` ({source}): ask an admin to \
                 create and link your account"
            ))
        })?;
        let taken = user::Entity::find()
            .filter(user::Column::Username.eq(username.clone()))
            .one(&self.db)
            .await?;
        if taken.is_some() {
            // Never linked by name or email alone: they can be someone else's.
            return Err(ApiError::forbidden(format!(
                "a Hangar account named `{username}` exists but is not linked to your {name} \
                 identity: sign in with its password and link it on your profile page, or ask \
                 an admin"
            )));
        }
        let display_name = text(&verified.claims, "name")
            .unwrap_or_else(|| username.clone())
            .chars()
            .take(100)
            .collect::<String>();
        // Nobody knows this password: the account signs in through the provider.
        let hash = password::hash_password(password::random_password()).await?;
        let defaults = &self.config;
        let now = Utc::now();
        let transaction = self.db.begin().await?;
        let created = user::ActiveModel {
            id: Set(new_id()),
            username: Set(username.clone()),
            display_name: Set(display_name),
            email: Set(email.chars().take(254).collect()),
            password_hash: Set(hash),
            role: Set(Role::Member),
            active: Set(true),
            max_spaces: Set(defaults.default_max_spaces.0),
            compute_units: Set(defaults.default_compute_units.0),
            storage_units: Set(defaults.default_storage_units.0),
            max_tunnels: Set(defaults.default_max_tunnels.0),
            created_at: Set(now),
            time_zone: Set(None),
            dotfiles_url: Set(None),
        }
        .insert(&transaction)
        .await
        .map_err(|e| {
            super::conflict_on_duplicate(e, || {
                format!("the username `{username}` was taken meanwhile: sign in again")
            })
        })?;
        user_identity::ActiveModel {
            issuer: Set(verified.issuer.clone()),
            subject: Set(verified.subject.clone()),
            user_id: Set(created.id.clone()),
            created_at: Set(now),
            last_sign_in_at: Set(None),
        }
        .insert(&transaction)
        .await?;
        transaction.commit().await?;
        record(
            &self.db,
            None,
            "user.create",
            &format!("user:{username}"),
            Outcome::Success,
            json!({"through": "identity provider", "subject": verified.subject}),
        )
        .await;
        record(
            &self.db,
            None,
            "user.link",
            &format!("user:{username}"),
            Outcome::Success,
            json!({"issuer": verified.issuer, "subject": verified.subject}),
        )
        .await;
        Ok(created)
    }

    /// Brings the account in line with the claims: email and name, role (when an admin claim
    /// is configured) and the memberships the provider gives.
    async fn sync_from_claims(
        &self,
        account: user::Model,
        claims: &Map<String, Value>,
        email: &str,
    ) -> ApiResult<user::Model> {
        let mut model: user::ActiveModel = account.clone().into();
        let mut changed = false;
        if !email.is_empty() && email != account.email {
            model.email = Set(email.chars().take(254).collect());
            changed = true;
        }
        if let Some(name) = text(claims, "name") {
            let name: String = name.chars().take(100).collect();
            if name != account.display_name {
                model.display_name = Set(name);
                changed = true;
            }
        }
        if let (Some(claim), Some(value)) =
            (&self.config.oidc_admin_claim, &self.config.oidc_admin_value)
        {
            let role = if values(claims, claim).iter().any(|v| v == value) {
                Role::Admin
            } else {
                Role::Member
            };
            // The provider never takes the role of the break-glass account (it is the way in
            // when the provider is wrong), nor the last active admin's.
            let keep = role == Role::Member
                && account.role == Role::Admin
                && (account
                    .username
                    .eq_ignore_ascii_case(self.config.break_glass_user())
                    || self.last_active_admin(&account.id).await?);
            if keep {
                tracing::warn!(user = %account.username, "the identity provider's admin claim would remove the last admin or the break-glass account's role: kept");
            }
            if role != account.role && !keep {
                model.role = Set(role);
                changed = true;
                record(&self.db, None, "user.update", &format!("user:{}", account.username),
                    Outcome::Success, json!({"changed": ["role"], "role": role.as_str(), "through": "identity provider"})).await;
            }
        }
        let account = if changed {
            model.update(&self.db).await?
        } else {
            account
        };
        if !self.config.oidc_groups_claim.is_empty() {
            self.sync_groups(&account, claims).await?;
        }
        Ok(account)
    }

    /// Whether `id` is the only active admin.
    async fn last_active_admin(&self, id: &UserId) -> ApiResult<bool> {
        let others = user::Entity::find()
            .filter(user::Column::Role.eq(Role::Admin))
            .filter(user::Column::Active.eq(true))
            .filter(user::Column::Id.ne(id.clone()))
            .count(&self.db)
            .await?;
        Ok(others == 0)
    }

    /// The Hangar groups the claim's values stand for (by mapping, filter or name): the first
    /// [`MAX_GROUP_VALUES`] values of a sensible length (a provider's claim is not ours to
    /// trust with the size of the groups table).
    fn wanted_groups(&self, claims: &Map<String, Value>) -> BTreeSet<String> {
        let claim = &self.config.oidc_groups_claim;
        if !claims.contains_key(claim) {
            tracing::warn!(%claim, "the identity provider sent no groups claim: the memberships it gave are removed (check --oidc-groups-claim and the scopes)");
        }
        let mapping: HashMap<&str, &str> = self
            .config
            .oidc_group_mapping
            .iter()
            .map(|m| (m.claim.as_str(), m.group.as_str()))
            .collect();
        let filter = self
            .config
            .oidc_group_filter
            .as_deref()
            .and_then(|f| regex::Regex::new(&format!("^(?:{f})$")).ok());
        let plain = mapping.is_empty() && filter.is_none();
        let mut wanted = BTreeSet::new();
        let all = values(claims, claim);
        if all.len() > MAX_GROUP_VALUES {
            tracing::warn!(%claim, count = all.len(), "the identity provider's groups claim has more values than Hangar reads: the first {MAX_GROUP_VALUES} are used");
        }
        for value in all
            .into_iter()
            .take(MAX_GROUP_VALUES)
            .filter(|v| v.len() <= MAX_GROUP_VALUE_BYTES)
        {
            if let Some(group) = mapping.get(value.as_str()) {
                wanted.insert((*group).to_owned());
            } else if plain || filter.as_ref().is_some_and(|f| f.is_match(&value)) {
                wanted.insert(value);
            }
        }
        wanted
    }

    /// Replaces the account's memberships that came from the provider by those the claim
    /// gives now; hand-set ones stay.
    async fn sync_groups(
        &self,
        account: &user::Model,
        claims: &Map<String, Value>,
    ) -> ApiResult<()> {
        let wanted = self.wanted_groups(claims);
        let mut groups: Vec<group::Model> = if wanted.is_empty() {
            Vec::new()
        } else {
            group::Entity::find()
                .filter(group::Column::Name.is_in(wanted.iter().cloned()))
                .all(&self.db)
                .await?
        };
        let missing: Vec<String> = wanted
            .iter()
            .filter(|w| !groups.iter().any(|g| &g.name == *w))
            .cloned()
            .collect();
        for missing in &missing {
            if !self.config.oidc_auto_create_groups {
                tracing::info!(group = %missing, user = %account.username, "the identity provider names a group Hangar does not have: skipped (--oidc-auto-create-groups creates them)");
                continue;
            }
            if crate::validate::name("name", missing, 64).is_err() {
                continue;
            }
            let created = group::ActiveModel {
                id: Set(new_id()),
                name: Set(missing.clone()),
                description: Set("made for the identity provider's groups claim".to_owned()),
                max_spaces: Set(Some(0)),
                compute_units: Set(Some(0)),
                storage_units: Set(Some(0)),
                max_tunnels: Set(Some(0)),
                created_at: Set(Utc::now()),
            }
            .insert(&self.db)
            .await;
            match created {
                Ok(created) => {
                    record(
                        &self.db,
                        None,
                        "group.create",
                        &format!("group:{missing}"),
                        Outcome::Success,
                        json!({"through": "identity provider"}),
                    )
                    .await;
                    groups.push(created);
                }
                // Made by a sign-in beside this one: use it.
                Err(_) => {
                    if let Some(found) = group::Entity::find()
                        .filter(group::Column::Name.eq(missing.clone()))
                        .one(&self.db)
                        .await?
                    {
                        groups.push(found);
                    }
                }
            }
        }
        let wanted_ids: BTreeSet<GroupId> = groups.iter().map(|g| g.id.clone()).collect();
        let current = group_member::Entity::find()
            .filter(group_member::Column::UserId.eq(account.id.clone()))
            .all(&self.db)
            .await?;
        let mut added = Vec::new();
        let mut removed = Vec::new();
        let name_of = |id: &GroupId| groups.iter().find(|g| &g.id == id).map(|g| g.name.clone());
        for membership in &current {
            if membership.source == group_member::BY_IDP
                && !wanted_ids.contains(&membership.group_id)
            {
                group_member::Entity::delete_by_id((
                    membership.group_id.clone(),
                    account.id.clone(),
                ))
                .exec(&self.db)
                .await?;
                removed.push(membership.group_id.to_string());
            }
        }
        for id in &wanted_ids {
            if current.iter().any(|m| &m.group_id == id) {
                continue;
            }
            group_member::Entity::insert(group_member::ActiveModel {
                group_id: Set(id.clone()),
                user_id: Set(account.id.clone()),
                source: Set(group_member::BY_IDP.to_owned()),
            })
            .on_conflict(
                sea_orm::sea_query::OnConflict::columns([
                    group_member::Column::GroupId,
                    group_member::Column::UserId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
            added.push(name_of(id).unwrap_or_else(|| id.to_string()));
        }
        if !added.is_empty() || !removed.is_empty() {
            let removed_names: Vec<String> = if removed.is_empty() {
                Vec::new()
            } else {
                group::Entity::find()
                    .filter(group::Column::Id.is_in(removed.clone()))
                    .all(&self.db)
                    .await?
                    .into_iter()
                    .map(|g| g.name)
                    .collect()
            };
            record(
                &self.db,
                None,
                "group.member.sync",
                &format!("user:{}", account.username),
                Outcome::Success,
                json!({"added": added, "removed": removed_names, "through": "identity provider"}),
            )
            .await;
            self.users_changed(vec![account.id.clone()]);
        }
        Ok(())
    }

    /// The command line's token, for the one-time code its loopback address received and the
    /// secret whose SHA-256 it began with.
    pub async fn claim_login_grant(
        &self,
        code: &str,
        verifier: &str,
        name: Option<String>,
    ) -> ApiResult<(UserDto, TokenCreated)> {
        let refused = || {
            ApiError::unauthorized_because(
                "this sign-in code is unknown, used already or expired: run `hangar login <url>` \
                 again",
            )
        };
        let hash = hash_token(code);
        let Some(grant) = login_grant::Entity::find_by_id(hash.clone())
            .one(&self.db)
            .await?
        else {
            return Err(refused());
        };
        // Single use: whoever deletes it claims it.
        let deleted = login_grant::Entity::delete_by_id(hash)
            .exec(&self.db)
            .await?
            .rows_affected;
        if deleted != 1 || grant.expires_at <= Utc::now() {
            return Err(refused());
        }
        if hash_token(verifier) != grant.challenge {
            return Err(ApiError::unauthorized_because(
                "the sign-in code was not made for this command line: run `hangar login <url>` \
                 again",
            ));
        }
        let Some(account) = user::Entity::find_by_id(grant.user_id)
            .one(&self.db)
            .await?
            .filter(|u| u.active)
        else {
            return Err(ApiError::unauthorized_because(
                "the account is deactivated: ask a Hangar admin",
            ));
        };
        let caller = acting(account.clone().into());
        let name = name
            .map(|n| n.trim().chars().take(64).collect::<String>())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "hangar CLI".to_owned());
        let created = self
            .create_token(
                &caller,
                CreateToken {
                    name,
                    expires_in_days: None,
                    scopes: None,
                },
            )
            .await?;
        Ok((account.into(), created))
    }

    /// The user ids linked to the provider identity (for tests and the admin's views).
    pub async fn linked_user(&self, issuer: &str, subject: &str) -> ApiResult<Option<UserId>> {
        Ok(
            user_identity::Entity::find_by_id((issuer.to_owned(), subject.to_owned()))
                .one(&self.db)
                .await?
                .map(|i| i.user_id),
        )
    }
}

/// The command line's loopback address with these query values.
fn loopback(port: u16, query: &[(&str, &str)]) -> String {
    match reqwest::Url::parse_with_params(&format!("http://127.0.0.1:{port}/callback"), query) {
        Ok(url) => url.to_string(),
        Err(_) => format!("http://127.0.0.1:{port}/callback"),
    }
}

/// A user as the caller of what their sign-in does (their session is not made yet, or is not
/// the point: the audit log names them).
fn acting(user: UserDto) -> Caller {
    Caller {
        user,
        credential: Credential::Session(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_made_safe() {
        for (claim, name) in [
            ("alice", Some("alice")),
            ("Alice.Smith@Example.com", Some("alice-smith")),
            ("ALICE_SMITH", Some("alice-smith")),
            ("1st-user", Some("st-user")),
            ("x", Some("x-user")),
            ("émile", Some("mile")),
            (
                "a-very-long-name-that-goes-on-and-on-and-on",
                Some("a-very-long-name-that-goes-on-an"),
            ),
            ("1234", None),
            ("", None),
        ] {
            assert_eq!(safe_username(claim).as_deref(), name, "{claim}");
        }
    }

    #[test]
    fn claims_are_read_as_providers_send_them() {
        let claims: Map<String, Value> = serde_json::from_value(json!({
            "groups": ["a", "b"], "one": "c", "email_verified": "true", "n": 7
        }))
        .unwrap_or_default();
        assert_eq!(values(&claims, "groups"), ["a", "b"]);
        assert_eq!(values(&claims, "one"), ["c"]);
        assert!(values(&claims, "none").is_empty());
        assert!(email_verified(&claims));
        assert_eq!(text(&claims, "n").as_deref(), Some("7"));
        assert_eq!(local_path(Some("//evil")), "/");
        assert_eq!(local_path(Some("/spaces")), "/spaces");
    }
}
