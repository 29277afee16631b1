//! The OpenID Connect client: the provider's discovery document and keys (fetched again when
//! an ID token names a key it does not have, or its signature does not check out: the provider
//! rotated them), the authorization URL
//! of the code flow (PKCE, `state`, `nonce`), and the exchange of a code for checked claims
//! (the ID token's issuer, audience, expiry with a small clock-skew allowance, nonce and
//! signature; then userinfo's claims merged in). What the claims mean for an account is
//! `crate::services::oidc`'s business.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreJsonWebKeySet,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AccessToken, AdditionalClaims, AuthorizationCode, ClaimsVerificationError, ClientId,
    ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdToken, IssuerUrl,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, SignatureVerificationError, SubjectIdentifier, TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::RwLock;

pub use crate::config::OidcSettings;

/// Every claim of a token that is not a standard one (groups, roles, custom claims).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OtherClaims {
    #[serde(flatten)]
    pub claims: HashMap<String, Value>,
}

impl AdditionalClaims for OtherClaims {}

type HangarIdToken = IdToken<
    OtherClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// A client made from the discovery document: authorization URL set, token and userinfo URL
/// if the provider has them.
type Configured = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What went wrong, by kind (the services word it for the person), with the details for the
/// operator's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcError {
    pub kind: OidcErrorKind,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OidcErrorKind {
    /// The provider did not answer, or answered something that is not what OIDC says.
    Unreachable,
    /// The provider's discovery document names another issuer than the one configured.
    WrongIssuer,
    /// The provider refused the code (used already, expired, or not for this client).
    CodeRefused,
    /// The ID token is for another client.
    WrongAudience,
    /// The ID token names another issuer.
    TokenIssuer,
    /// The ID token expired, or was issued in the future, beyond the clock-skew allowance.
    ClockSkew,
    /// The nonce does not match the one sent (a replayed or injected token).
    Nonce,
    /// The signature does not check out against the provider's keys.
    Signature,
    /// Anything else about the token or userinfo.
    Invalid,
}

impl OidcError {
    fn new(kind: OidcErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for OidcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.detail)
    }
}

/// Where a sign-in begins: the provider's URL to send the browser to, and the secrets to keep
/// (in the browser's session) until it comes back.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// The checked claims of one sign-in: the ID token's, with userinfo's merged in.
#[derive(Debug, Clone)]
pub struct VerifiedClaims {
    pub issuer: String,
    pub subject: String,
    pub claims: Map<String, Value>,
}

/// Claims about the token itself, not the person: userinfo never overrides them.
const TOKEN_CLAIMS: [&str; 9] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nonce",
    "azp",
    "at_hash",
    "auth_time",
];

/// The provider as Hangar knows it (one per server).
pub struct OidcProvider {
    settings: OidcSettings,
    issuer: IssuerUrl,
    redirect: RedirectUrl,
    http: reqwest::Client,
    /// The discovery document with the keys last fetched.
    metadata: RwLock<Option<CoreProviderMetadata>>,
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider")
            .field("issuer", &self.settings.issuer_url)
            .finish_non_exhaustive()
    }
}

impl OidcProvider {
    pub fn new(settings: OidcSettings) -> Result<Self, String> {
        let issuer = IssuerUrl::new(settings.issuer_url.clone()).map_err(|e| {
            format!(
                "--oidc-issuer-url `{}` is not a URL ({e})",
                settings.issuer_url
            )
        })?;
        let redirect = RedirectUrl::new(settings.redirect_url.clone())
            .map_err(|e| format!("the callback URL `{}`: {e}", settings.redirect_url))?;
        // No redirects: a provider's endpoints answer themselves (following them would let a
        // document send Hangar anywhere).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(20))
            .user_agent(concat!("hangar/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot make the HTTP client of OIDC: {e}"))?;
        Ok(Self {
            settings,
            issuer,
            redirect,
            http,
            metadata: RwLock::new(None),
        })
    }

    pub fn issuer(&self) -> &str {
        self.issuer.as_str()
    }

    /// The discovery document (with the keys), fetched the first time and kept.
    pub async fn metadata(&self) -> Result<CoreProviderMetadata, OidcError> {
        if let Some(metadata) = self.metadata.read().await.as_ref() {
            return Ok(metadata.clone());
        }
        let metadata = self.discover().await?;
        *self.metadata.write().await = Some(metadata.clone());
        Ok(metadata)
    }

    async fn discover(&self) -> Result<CoreProviderMetadata, OidcError> {
        use openidconnect::DiscoveryError;
        let issuer = self.issuer.as_str();
        CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| match e {
                DiscoveryError::Validation(why) => OidcError::new(
                    OidcErrorKind::WrongIssuer,
                    format!(
                        "the discovery document at {issuer}/.well-known/openid-configuration \
                         does not fit --oidc-issuer-url ({why}): set --oidc-issuer-url to the \
                         `issuer` the provider announces there, exactly (trailing slash too)"
                    ),
                ),
                DiscoveryError::Request(e) => OidcError::new(
                    OidcErrorKind::Unreachable,
                    format!("cannot fetch the discovery document of {issuer}: {e} (check --oidc-issuer-url and that Hangar can reach it)"),
                ),
                DiscoveryError::Response(status, _, why) => OidcError::new(
                    OidcErrorKind::Unreachable,
                    format!("{issuer}/.well-known/openid-configuration answered {status} ({why}): is --oidc-issuer-url the provider's issuer URL?"),
                ),
                other => OidcError::new(
                    OidcErrorKind::Unreachable,
                    format!("the discovery document of {issuer} is unusable: {other}"),
                ),
            })
    }

    /// Fetches the provider's keys again (after it rotated them) and keeps them.
    async fn refresh_keys(&self) -> Result<CoreProviderMetadata, OidcError> {
        let mut metadata = self.metadata().await?;
        let keys = CoreJsonWebKeySet::fetch_async(metadata.jwks_uri(), &self.http)
            .await
            .map_err(|e| {
                OidcError::new(
                    OidcErrorKind::Unreachable,
                    format!(
                        "cannot fetch the provider's keys at {}: {e}",
                        metadata.jwks_uri().as_str()
                    ),
                )
            })?;
        metadata = metadata.set_jwks(keys);
        *self.metadata.write().await = Some(metadata.clone());
        tracing::info!(issuer = %self.issuer.as_str(), "fetched the identity provider's keys again");
        Ok(metadata)
    }

    fn client(&self, metadata: CoreProviderMetadata) -> Configured {
        CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.settings.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(self.redirect.clone())
    }

    /// Where to send the browser to sign in, with the state, nonce and PKCE verifier to keep.
    pub async fn authorization(&self) -> Result<Authorization, OidcError> {
        let client = self.client(self.metadata().await?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in &self.settings.scopes {
            if scope != "openid" {
                request = request.add_scope(Scope::new(scope.clone()));
            }
        }
        let (url, state, nonce) = request.url();
        Ok(Authorization {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges the code the browser brought back for the person's checked claims.
    pub async fn claims(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<VerifiedClaims, OidcError> {
        let client = self.client(self.metadata().await?);
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| {
                OidcError::new(
                    OidcErrorKind::Unreachable,
                    format!("the provider's discovery document names no token endpoint: {e}"),
                )
            })?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(refusal) => OidcError::new(
                    OidcErrorKind::CodeRefused,
                    format!("the token endpoint refused the code: {refusal}"),
                ),
                RequestTokenError::Request(e) => OidcError::new(
                    OidcErrorKind::Unreachable,
                    format!("cannot reach the provider's token endpoint: {e}"),
                ),
                other => OidcError::new(
                    OidcErrorKind::Unreachable,
                    format!("the provider's token endpoint answered something unusable: {other}"),
                ),
            })?;
        let raw = response
            .id_token()
            .map(ToString::to_string)
            .ok_or_else(|| {
                OidcError::new(
                    OidcErrorKind::Invalid,
                    "the token endpoint answered without an ID token: is `openid` among the \
                 client's allowed scopes at the provider?",
                )
            })?;
        let id_token: HangarIdToken = raw.parse().map_err(|e| {
            OidcError::new(
                OidcErrorKind::Invalid,
                format!("the ID token is not a JWT: {e}"),
            )
        })?;
        let nonce = Nonce::new(nonce.to_owned());
        let (claims, client) = match self.verify(&client, &id_token, &nonce) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey
                | SignatureVerificationError::CryptoError(_),
            )) => {
                // Signed with a key Hangar has not seen (a `kid` it does not know, or, from a
                // provider that names no `kid`, a signature its keys do not check): the provider
                // rotated its keys. The token came from the provider's token endpoint itself, so
                // nobody else can make Hangar fetch them.
                let client = self.client(self.refresh_keys().await?);
                let claims = self
                    .verify(&client, &id_token, &nonce)
                    .map_err(|e| self.token_error(e))?;
                (claims, client)
            }
            Err(e) => return Err(self.token_error(e)),
            Ok(claims) => (claims, client),
        };
        let subject = claims.subject().as_str().to_owned();
        let mut merged = match serde_json::to_value(&claims) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        if let Some(extra) = self
            .user_info(&client, response.access_token(), &claims)
            .await?
        {
            for (name, value) in extra {
                if !TOKEN_CLAIMS.contains(&name.as_str()) {
                    merged.insert(name, value);
                }
            }
        }
        Ok(VerifiedClaims {
            issuer: claims.issuer().as_str().to_owned(),
            subject,
            claims: merged,
        })
    }

    fn verify(
        &self,
        client: &Configured,
        id_token: &HangarIdToken,
        nonce: &Nonce,
    ) -> Result<openidconnect::IdTokenClaims<OtherClaims, CoreGenderClaim>, ClaimsVerificationError>
    {
        let skew = chrono::Duration::from_std(self.settings.clock_skew)
            .unwrap_or_else(|_| chrono::Duration::seconds(60));
        let verifier = client
            .id_token_verifier()
            // An expiry up to the allowance ago still passes: the provider's clock may be ahead.
            .set_time_fn(move || Utc::now() - skew)
            .set_issue_time_verifier_fn(move |issued| {
                let now = Utc::now();
                if issued > now + skew {
                    Err(format!(
                        "issued at {issued}, {} s ahead of this server's clock",
                        (issued - now).num_seconds()
                    ))
                } else {
                    Ok(())
                }
            });
        id_token.claims(&verifier, nonce).cloned()
    }

    fn token_error(&self, error: ClaimsVerificationError) -> OidcError {
        use ClaimsVerificationError as E;
        let kind = match &error {
            E::InvalidAudience(_) => OidcErrorKind::WrongAudience,
            E::InvalidIssuer(_) => OidcErrorKind::TokenIssuer,
            E::Expired(_) => OidcErrorKind::ClockSkew,
            E::InvalidNonce(_) => OidcErrorKind::Nonce,
            E::SignatureVerification(_) => OidcErrorKind::Signature,
            _ => OidcErrorKind::Invalid,
        };
        let detail = match &error {
            E::SignatureVerification(why) => format!("the ID token's signature: {why}"),
            E::InvalidAudience(why) => format!(
                "the ID token is not for client `{}`: {why}",
                self.settings.client_id
            ),
            other => format!("the ID token: {other}"),
        };
        OidcError::new(kind, detail)
    }

    /// Userinfo's claims, when the provider has the endpoint.
    async fn user_info(
        &self,
        client: &Configured,
        access_token: &AccessToken,
        claims: &openidconnect::IdTokenClaims<OtherClaims, CoreGenderClaim>,
    ) -> Result<Option<Map<String, Value>>, OidcError> {
        let Ok(request) = client.user_info(
            access_token.clone(),
            Some(SubjectIdentifier::new(claims.subject().as_str().to_owned())),
        ) else {
            return Ok(None);
        };
        let info = request
            .request_async::<OtherClaims, _, CoreGenderClaim>(&self.http)
            .await
            .map_err(|e| {
                OidcError::new(
                    OidcErrorKind::Invalid,
                    format!("the provider's userinfo endpoint: {e}"),
                )
            })?;
        Ok(match serde_json::to_value(&info) {
            Ok(Value::Object(map)) => Some(map),
            _ => None,
        })
    }
}
