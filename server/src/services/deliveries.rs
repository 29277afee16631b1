//! Notifications on their way out by webhook and email: queued in the database by
//! [`Services::notify`], sent by a loop that claims what is due, retried with exponential
//! backoff up to `--notify-attempts`, and given up after that; a restart resumes what was
//! pending. Admins list them.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use app::api::notifications::{DeliveryDto, NotificationKind, MAX_WEBHOOK_URL};
use app::api::page::PageQuery;
use app::ids::UserId;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use sha2::Sha256;

use super::notifications::{excerpt, Notice};
use super::Services;
use crate::entities::notification_delivery::{self as delivery, DELIVERED, FAILED, PENDING};
use crate::entities::{notification_setting, user};
use crate::error::{ApiError, ApiResult};

/// How long a receiver has to answer.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed delivery is left to the server that claimed it before another may try
/// it (that server died while sending).
const LEASE: chrono::Duration = chrono::Duration::seconds(60);
/// Most deliveries claimed by one pass.
const BATCH: u64 = 20;
/// Longest sleep of the sending loop with nothing due here: deliveries queued by another
/// server, or left by one that died while sending, are found this late at most.
const IDLE_LOOK: Duration = Duration::from_secs(30);
/// Finished deliveries are pruned this often.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Most deliveries of one user waiting at once: beyond, new ones are dropped (a receiver down
/// for days must not grow the table without end).
const MAX_PENDING_PER_USER: u64 = 200;
/// Finished deliveries are kept this long for admins to see.
const KEPT_DAYS: i64 = 7;
/// Characters of a receiver's answer kept.
const EXCERPT: usize = 200;

/// The header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "X-Hangar-Signature";

/// `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Whether an address is one anybody on the internet could reach (not this machine, the
/// local network, link-local or cloud metadata, carrier-grade NAT, documentation ranges).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 198 && (b == 18 || b == 19)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let [first, second, ..] = v6.segments();
            // IPv4-compatible (::a.b.c.d), NAT64 and 6to4 addresses lead to IPv4 ones that
            // may be private: refused as a whole.
            let embeds_v4 = v6.segments()[..6].iter().all(|s| *s == 0)
                || (first == 0x64 && second == 0xff9b)
                || first == 0x2002;
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || embeds_v4
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                || (first == 0x2001 && second == 0x0db8))
        }
    }
}

/// A webhook URL as given: `http://` or `https://`, a host, no credentials in it, at most
/// [`MAX_WEBHOOK_URL`] characters; an address literal must be public unless `allow_private`.
pub fn check_webhook_url(text: &str, allow_private: bool) -> ApiResult<url::Url> {
    let field = "webhook_url";
    if text.len() > MAX_WEBHOOK_URL {
        return Err(ApiError::invalid(
            field,
            format!("the webhook URL is longer than {MAX_WEBHOOK_URL} characters"),
        ));
    }
    let url = url::Url::parse(text.trim())
        .map_err(|e| ApiError::invalid(field, format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ApiError::invalid(
            field,
            "the webhook URL must start with http:// or https://",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::invalid(
            field,
            "no credentials in the URL: the receiver checks the signature made with the secret",
        ));
    }
    let literal = match url.host() {
        None => return Err(ApiError::invalid(field, "the webhook URL has no host")),
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        Some(url::Host::Domain(_)) => None,
    };
    if let Some(ip) = literal {
        if !allow_private && !is_public(ip) {
            // A rule of this server, not a malformed URL (the same URL is fine elsewhere).
            return Err(ApiError::forbidden(
                "webhooks go to public addresses only (an admin may allow others with \
                 --webhook-allow-private)",
            )
            .with_field(field));
        }
    }
    Ok(url)
}

/// The delay before attempt `attempts + 1`, after `attempts` failed ones: `first`, doubled
/// at each further failure.
pub fn backoff(first: Duration, attempts: u32) -> Duration {
    first.saturating_mul(1 << attempts.saturating_sub(1).min(16))
}

/// What became of one attempt.
struct Attempt {
    delivered: bool,
    code: Option<i32>,
    error: Option<String>,
    /// Trying again would fail the same way.
    permanent: bool,
}

impl Services {
    /// Queues `notice` for `user`'s webhook, when they set one.
    pub(super) async fn queue_webhook(
        &self,
        user: &UserId,
        notice: &Notice,
        settings: &notification_setting::Model,
    ) -> ApiResult<()> {
        let Some(url) = &settings.webhook_url else {
            return Ok(());
        };
        let Some(owner) = user::Entity::find_by_id(user.clone()).one(&self.db).await? else {
            return Ok(());
        };
        let link = notice
            .link
            .as_ref()
            .map(|path| match self.config.hangar_origin() {
                Some(origin) => format!("{origin}{path}"),
                None => path.clone(),
            });
        let now = self.clock.now();
        let body = serde_json::json!({
            "kind": notice.kind,
            "title": notice.title,
            "body": notice.body,
            "link": link,
            "user": owner.username,
            "at": now,
        });
        self.queue(user, delivery::WEBHOOK, notice.kind, url, body.to_string())
            .await
    }

    pub(super) async fn queue(
        &self,
        user: &UserId,
        channel: &str,
        kind: NotificationKind,
        target: &str,
        payload: String,
    ) -> ApiResult<()> {
        let waiting = delivery::Entity::find()
            .filter(delivery::Column::UserId.eq(user.clone()))
            .filter(delivery::Column::Status.eq(PENDING))
            .count(&self.db)
            .await?;
        if waiting >= MAX_PENDING_PER_USER {
            tracing::warn!(user = %user, channel, "too many notifications waiting: one dropped");
            return Ok(());
        }
        let now = self.clock.now();
        delivery::Entity::insert(delivery::ActiveModel {
            user_id: Set(user.clone()),
            channel: Set(channel.to_owned()),
            kind: Set(kind.as_str().to_owned()),
            target: Set(target.to_owned()),
            payload: Set(payload),
            status: Set(PENDING.to_owned()),
            attempts: Set(0),
            next_at: Set(now),
            last_code: Set(None),
            last_error: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .exec_without_returning(&self.db)
        .await?;
        self.deliveries_queued.notify_one();
        Ok(())
    }

    /// Gives up the user's webhook deliveries still waiting (the webhook was removed or
    /// changed).
    pub(super) async fn drop_pending_webhooks(&self, user: &UserId) -> ApiResult<()> {
        delivery::Entity::update_many()
            .col_expr(delivery::Column::Status, Expr::value(FAILED))
            .col_expr(
                delivery::Column::LastError,
                Expr::value("the webhook was changed or removed"),
            )
            .col_expr(delivery::Column::UpdatedAt, Expr::value(self.clock.now()))
            .filter(delivery::Column::UserId.eq(user.clone()))
            .filter(delivery::Column::Channel.eq(delivery::WEBHOOK))
            .filter(delivery::Column::Status.eq(PENDING))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// One pass: sends what is due (each claimed by one server); answers when the next
    /// pending delivery is due, if any is.
    pub async fn deliver_due(&self) -> ApiResult<Option<DateTime<Utc>>> {
        let now = self.clock.now();
        let due = delivery::Entity::find()
            .filter(delivery::Column::Status.eq(PENDING))
            .filter(delivery::Column::NextAt.lte(now))
            .order_by_asc(delivery::Column::NextAt)
            .limit(BATCH)
            .all(&self.db)
            .await?;
        for row in due {
            // The claim: whoever moves next_at on sends it (a slow send before this one does
            // not shorten this one's lease).
            let lease_end = self.clock.now() + LEASE;
            let claimed = delivery::Entity::update_many()
                .col_expr(delivery::Column::NextAt, Expr::value(lease_end))
                .filter(delivery::Column::Id.eq(row.id))
                .filter(delivery::Column::Status.eq(PENDING))
                .filter(delivery::Column::NextAt.eq(row.next_at))
                .exec(&self.db)
                .await?;
            if claimed.rows_affected != 1 {
                continue;
            }
            let sending = async {
                match row.channel.as_str() {
                    delivery::WEBHOOK => self.send_webhook(&row).await,
                    delivery::EMAIL => self.send_email(&row).await,
                    other => Attempt {
                        delivered: false,
                        code: None,
                        error: Some(format!("unknown channel {other}")),
                        permanent: true,
                    },
                }
            };
            // Name lookups and SMTP dialogues have no deadline of their own: the whole
            // attempt ends well within the lease, so that no other server sends it too.
            let attempt = tokio::time::timeout(2 * SEND_TIMEOUT, sending)
                .await
                .unwrap_or_else(|_| Attempt {
                    delivered: false,
                    code: None,
                    error: Some(format!(
                        "no answer within {} s",
                        (2 * SEND_TIMEOUT).as_secs()
                    )),
                    permanent: false,
                });
            self.record_attempt(&row, lease_end, attempt).await?;
        }
        let next = delivery::Entity::find()
            .filter(delivery::Column::Status.eq(PENDING))
            .order_by_asc(delivery::Column::NextAt)
            .one(&self.db)
            .await?;
        Ok(next.map(|row| row.next_at))
    }

    /// Drops finished deliveries older than a week.
    pub async fn prune_deliveries(&self) -> ApiResult<()> {
        let old: DateTime<Utc> = self.clock.now() - chrono::Duration::days(KEPT_DAYS);
        delivery::Entity::delete_many()
            .filter(delivery::Column::Status.ne(PENDING))
            .filter(delivery::Column::UpdatedAt.lt(old))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Writes down how an attempt went, if the delivery is still this server's claim
    /// (`lease_end` unchanged): a delivery given up meanwhile, or claimed again by another
    /// server after the lease ran out, keeps what happened since.
    async fn record_attempt(
        &self,
        row: &delivery::Model,
        lease_end: DateTime<Utc>,
        attempt: Attempt,
    ) -> ApiResult<()> {
        let now = self.clock.now();
        let attempts = row.attempts.saturating_add(1);
        let given_up = !attempt.delivered
            && (attempt.permanent
                || u32::try_from(attempts).unwrap_or(u32::MAX) >= self.config.notify_attempts);
        let status = match (attempt.delivered, given_up) {
            (true, _) => DELIVERED,
            (false, true) => FAILED,
            (false, false) => PENDING,
        };
        let wait = backoff(
            Duration::from_secs(self.config.notify_retry_secs),
            u32::try_from(attempts).unwrap_or(u32::MAX),
        );
        let next_at = now + chrono::Duration::from_std(wait).unwrap_or(LEASE);
        metrics::counter!("hangar_notification_deliveries_total", "channel" => row.channel.clone(), "outcome" => status)
            .increment(1);
        if status != DELIVERED {
            tracing::info!(delivery = row.id, channel = %row.channel, attempts, code = ?attempt.code, error = ?attempt.error, status, "a notification was not delivered");
        }
        delivery::Entity::update_many()
            .col_expr(delivery::Column::Status, Expr::value(status))
            .col_expr(delivery::Column::Attempts, Expr::value(attempts))
            .col_expr(delivery::Column::NextAt, Expr::value(next_at))
            .col_expr(delivery::Column::LastCode, Expr::value(attempt.code))
            .col_expr(delivery::Column::LastError, Expr::value(attempt.error))
            .col_expr(delivery::Column::UpdatedAt, Expr::value(now))
            .filter(delivery::Column::Id.eq(row.id))
            .filter(delivery::Column::Status.eq(PENDING))
            .filter(delivery::Column::Attempts.eq(row.attempts))
            .filter(delivery::Column::NextAt.eq(lease_end))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The user's webhook secret, opened.
    async fn webhook_secret(&self, user: &UserId) -> Result<Option<String>, String> {
        let row = notification_setting::Entity::find_by_id(user.clone())
            .one(&self.db)
            .await
            .map_err(|e| e.to_string())?;
        match row.and_then(|r| r.webhook_secret) {
            None => Ok(None),
            Some(sealed) => self
                .git_key()
                .map_err(|e| e.message)?
                .open(&sealed)
                .map(Some),
        }
    }

    /// Where the webhook's host leads: its addresses, refused when one is not public (unless
    /// allowed); the connection is then made to the address checked, not looked up again.
    async fn webhook_address(
        &self,
        url: &url::Url,
    ) -> Result<Option<(String, SocketAddr)>, String> {
        let port = url.port_or_known_default().unwrap_or(443);
        let allowed = |ip: IpAddr| self.config.webhook_allow_private || is_public(ip);
        match url.host() {
            Some(url::Host::Domain(domain)) => {
                let found: Vec<SocketAddr> = tokio::net::lookup_host((domain, port))
                    .await
                    .map_err(|e| format!("cannot resolve {domain}: {e}"))?
                    .collect();
                let first = found
                    .first()
                    .copied()
                    .ok_or_else(|| format!("{domain} has no address"))?;
                if let Some(refused) = found.iter().find(|a| !allowed(a.ip())) {
                    return Err(format!(
                        "{domain} leads to {}, not a public address",
                        refused.ip()
                    ));
                }
                Ok(Some((domain.to_owned(), first)))
            }
            Some(url::Host::Ipv4(v4)) if !allowed(IpAddr::V4(v4)) => {
                Err(format!("{v4} is not a public address"))
            }
            Some(url::Host::Ipv6(v6)) if !allowed(IpAddr::V6(v6)) => {
                Err(format!("{v6} is not a public address"))
            }
            Some(_) => Ok(None),
            None => Err("the URL has no host".into()),
        }
    }

    async fn send_webhook(&self, row: &delivery::Model) -> Attempt {
        let failed = |error: String| Attempt {
            delivered: false,
            code: None,
            error: Some(excerpt(&error, EXCERPT)),
            permanent: false,
        };
        let url = match url::Url::parse(&row.target) {
            Ok(url) => url,
            Err(e) => return failed(format!("not a URL: {e}")),
        };
        let pinned = match self.webhook_address(&url).await {
            Ok(pinned) => pinned,
            Err(e) => return failed(e),
        };
        let secret = match self.webhook_secret(&row.user_id).await {
            Ok(secret) => secret,
            Err(e) => return failed(format!("the webhook's secret cannot be read: {e}")),
        };
        let mut client = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .connect_timeout(SEND_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would connect to the address checked here by a name of its own.
            .no_proxy()
            .user_agent(concat!("Hangar/", env!("CARGO_PKG_VERSION")));
        if let Some((domain, address)) = pinned {
            client = client.resolve(&domain, address);
        }
        let client = match client.build() {
            Ok(client) => client,
            Err(e) => return failed(e.to_string()),
        };
        let mut request = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Hangar-Event", row.kind.as_str())
            .header("X-Hangar-Delivery", row.id.to_string());
        if let Some(secret) = secret {
            request = request.header(SIGNATURE_HEADER, signature(&secret, row.payload.as_bytes()));
        }
        let response = match request.body(row.payload.clone()).send().await {
            Ok(response) => response,
            Err(e) => return failed(format!("{e}")),
        };
        let status = response.status();
        let code = Some(i32::from(status.as_u16()));
        if status.is_success() {
            return Attempt {
                delivered: true,
                code,
                error: None,
                permanent: false,
            };
        }
        // A short excerpt of the answer, read no further than needed.
        let mut said = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(Ok(chunk)) = futures_util::StreamExt::next(&mut stream).await {
            said.extend_from_slice(&chunk);
            if said.len() >= 1024 {
                break;
            }
        }
        Attempt {
            delivered: false,
            code,
            error: Some(excerpt(
                &format!("{status}: {}", String::from_utf8_lossy(&said).trim()),
                EXCERPT,
            )),
            permanent: false,
        }
    }

    /// Queues `notice` for `user`'s email address, when the server can send email and the
    /// account has an address.
    pub(super) async fn queue_email(&self, user: &UserId, notice: &Notice) -> ApiResult<()> {
        if self.config.smtp_host.is_none() {
            return Ok(());
        }
        let Some(owner) = user::Entity::find_by_id(user.clone()).one(&self.db).await? else {
            return Ok(());
        };
        if owner.email.trim().is_empty() {
            return Ok(());
        }
        let link = notice
            .link
            .as_ref()
            .map(|path| match self.config.hangar_origin() {
                Some(origin) => format!("{origin}{path}"),
                None => path.clone(),
            });
        let payload = serde_json::json!({
            "title": notice.title,
            "body": notice.body,
            "link": link,
        });
        self.queue(
            user,
            delivery::EMAIL,
            notice.kind,
            owner.email.trim(),
            payload.to_string(),
        )
        .await
    }

    async fn send_email(&self, row: &delivery::Model) -> Attempt {
        use lettre::transport::smtp::authentication::Credentials;
        use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
        let failed = |error: String, permanent: bool| Attempt {
            delivered: false,
            code: None,
            error: Some(excerpt(&error, EXCERPT)),
            permanent,
        };
        let Some(host) = &self.config.smtp_host else {
            return failed(
                "this server has no SMTP settings (--smtp-host)".into(),
                true,
            );
        };
        let payload: serde_json::Value = match serde_json::from_str(&row.payload) {
            Ok(payload) => payload,
            Err(e) => return failed(format!("unreadable notification: {e}"), true),
        };
        let text = |key: &str| payload[key].as_str().unwrap_or_default().to_owned();
        let mut body = text("body");
        if let Some(link) = payload["link"].as_str() {
            body.push_str(&format!("\n\n{link}\n"));
        }
        body.push_str("\n-- \nHangar. Choose what you are told, and how, on your profile.\n");
        let from = match self.config.smtp_from.parse() {
            Ok(from) => from,
            Err(e) => return failed(format!("--smtp-from is not an address: {e}"), true),
        };
        let to = match row.target.parse() {
            Ok(to) => to,
            Err(e) => return failed(format!("{} is not an address: {e}", row.target), true),
        };
        let message = match Message::builder()
            .from(from)
            .to(to)
            .subject(text("title"))
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(body)
        {
            Ok(message) => message,
            Err(e) => return failed(e.to_string(), true),
        };
        let builder = match self.config.smtp_tls.as_str() {
            "none" => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                host.as_str(),
            )),
            "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
            _ => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
        };
        let mut builder = match builder {
            Ok(builder) => builder
                .port(self.config.smtp_port)
                .timeout(Some(SEND_TIMEOUT)),
            Err(e) => return failed(e.to_string(), false),
        };
        if let (Some(user), Some(password)) = (&self.config.smtp_user, &self.config.smtp_password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        match builder.build().send(message).await {
            Ok(response) => Attempt {
                delivered: true,
                code: Some(i32::from(u16::from(response.code()))),
                error: None,
                permanent: false,
            },
            Err(e) => Attempt {
                delivered: false,
                code: e.status().map(|code| i32::from(u16::from(code))),
                error: Some(excerpt(&e.to_string(), EXCERPT)),
                // The server refused it for good (an unknown mailbox, say): no retry.
                permanent: e.is_permanent(),
            },
        }
    }

    /// Deliveries, newest first (admins only; the caller is checked by the trait method).
    pub(super) async fn list_deliveries(&self, page: PageQuery) -> ApiResult<Vec<DeliveryDto>> {
        let limit = u64::from(page.size()?);
        let mut select = delivery::Entity::find().order_by_desc(delivery::Column::Id);
        if let Some(after) = &page.after {
            let after: i64 = after.parse().map_err(|_| super::paging::unknown_cursor())?;
            select = select.filter(delivery::Column::Id.lt(after));
        }
        let rows = select.limit(limit).all(&self.db).await?;
        let mut ids: Vec<UserId> = rows.iter().map(|r| r.user_id.clone()).collect();
        ids.sort();
        ids.dedup();
        let users = user::Entity::find()
            .filter(user::Column::Id.is_in(ids))
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| DeliveryDto {
                id: row.id,
                username: users
                    .iter()
                    .find(|u| u.id == row.user_id)
                    .map(|u| u.username.clone())
                    .unwrap_or_default(),
                target: shown_target(&row.channel, row.target),
                channel: row.channel,
                kind: NotificationKind::parse(&row.kind).unwrap_or(NotificationKind::SpaceStopped),
                status: row.status,
                attempts: row.attempts,
                next_at: row.next_at.into(),
                last_code: row.last_code,
                last_error: row.last_error,
                created_at: row.created_at.into(),
            })
            .collect())
    }
}

/// A delivery's target as admins see it: an email address whole, a webhook by its origin
/// only (the path of many webhooks, Slack's for one, is their secret).
fn shown_target(channel: &str, target: String) -> String {
    if channel != delivery::WEBHOOK {
        return target;
    }
    match url::Url::parse(&target) {
        Ok(url) => url.origin().ascii_serialization(),
        Err(_) => "(not a URL)".to_owned(),
    }
}

/// Sends what is due for as long as the server runs: woken by a delivery queued here, else
/// when the next one is due, and at least every [`IDLE_LOOK`] (another server's queue, a lease
/// run out); an idle server does not query the database every second.
pub fn spawn(services: Services) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut pruned_at: Option<tokio::time::Instant> = None;
        loop {
            let next = services.deliver_due().await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "notification delivery pass failed");
                None
            });
            if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                if let Err(e) = services.prune_deliveries().await {
                    tracing::warn!(error = %e, "old notification deliveries were not pruned");
                }
                pruned_at = Some(tokio::time::Instant::now());
            }
            let wait = next
                .map(|at| {
                    (at - services.clock.now())
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                })
                .unwrap_or(IDLE_LOOK)
                .clamp(Duration::from_millis(100), IDLE_LOOK);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = services.deliveries_queued.notified() => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hex_hmac_of_the_body() {
        // RFC 4231's second test case.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::10.0.0.1",
            "2002:a00:1::1",
            "fec0::1",
            "2001:db8::1",
            "240.0.0.1",
            "192.0.0.8",
        ] {
            let ip: IpAddr = private.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]));
            assert!(!is_public(ip), "{private}");
        }
        for public in ["93.184.216.34", "2606:2800:220:1::1"] {
            let ip: IpAddr = public.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]));
            assert!(is_public(ip), "{public}");
        }
    }

    #[test]
    fn webhook_urls_are_http_with_a_host_and_no_credentials() {
        assert!(check_webhook_url("https://hooks.example.com/x", false).is_ok());
        assert!(check_webhook_url("http://127.0.0.1:9/x", true).is_ok());
        assert!(check_webhook_url("http://127.0.0.1:9/x", false).is_err());
        assert!(check_webhook_url("ftp://example.com/", false).is_err());
        assert!(check_webhook_url("https://u:p@example.com/", false).is_err());
        let long = format!("https://example.com/{}", "a".repeat(MAX_WEBHOOK_URL));
        assert!(check_webhook_url(&long, false).is_err());
    }

    #[test]
    fn admins_see_a_webhook_by_its_origin_only() {
        assert_eq!(
            shown_target(
                delivery::WEBHOOK,
                "https://hooks.slack.com:8443/services/T0/B0/secret?x=1".into()
            ),
            "https://hooks.slack.com:8443"
        );
        assert_eq!(
            shown_target(delivery::EMAIL, "dev@example.com".into()),
            "dev@example.com"
        );
    }

    #[test]
    fn retries_wait_twice_as_long_each_time() {
        let first = Duration::from_secs(30);
        assert_eq!(backoff(first, 1), Duration::from_secs(30));
        assert_eq!(backoff(first, 2), Duration::from_secs(60));
        assert_eq!(backoff(first, 4), Duration::from_secs(240));
    }
}
