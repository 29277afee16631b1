//! The JSON API as the command line calls it: one base URL, a bearer token, and the server's
//! errors turned into messages and exit codes.

use std::time::Duration;

use app::api::page::{Paged, MAX_PAGE};
use app::error::{ErrorBody, ErrorCode};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::CliError;

#[derive(Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// A client of the Hangar at `url` (`http://` or `https://`), signed with `token` if given.
    pub fn new(url: &str, token: Option<String>) -> Result<Client, CliError> {
        let base = url.trim().trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(CliError::usage(format!(
                "`{url}` is not a Hangar URL: give it as http://host:port or https://host"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("hangar-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::usage(format!("cannot make an HTTP client: {e}")))?;
        Ok(Client { base, token, http })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// A request to `path` (under the base URL), signed; sent by the caller, who reads the
    /// answer (streams, statuses of its own).
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends a request to `path` (under the base URL); a failed answer becomes the server's
    /// own message with the exit code of its kind.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<reqwest::Response, CliError> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            CliError::unreachable(format!(
                "cannot reach Hangar at {}: {e}. Check the URL and that the server runs",
                self.base
            ))
        })?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(error_of(response).await)
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        decode(self.send(Method::GET, path, None::<&()>).await?).await
    }

    /// Every item of the paged list at `path` (which may carry a query of its own), page
    /// after page.
    pub async fn get_all<T: DeserializeOwned + Paged>(
        &self,
        path: &str,
    ) -> Result<Vec<T>, CliError> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut page = format!("{path}{separator}limit={MAX_PAGE}");
            if let Some(after) = &after {
                page.push_str("&after=");
                page.push_str(after);
            }
            let items: Vec<T> = self.get(&page).await?;
            let full = items.len() == MAX_PAGE as usize;
            after = items.last().map(Paged::cursor);
            all.extend(items);
            if !full {
                return Ok(all);
            }
        }
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &(impl Serialize + ?Sized),
    ) -> Result<T, CliError> {
        decode(self.send(Method::POST, path, Some(body)).await?).await
    }
}

pub async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, CliError> {
    response
        .json()
        .await
        .map_err(|e| CliError::failed(format!("the server's answer was not understood: {e}")))
}

/// The server's error, with what to do when the server did not say.
pub(super) async fn error_of(response: reqwest::Response) -> CliError {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let Ok(ErrorBody { error }) = serde_json::from_str::<ErrorBody>(&text) else {
        return CliError::from_status(
            status,
            format!("Hangar answered {status} without an explanation"),
        );
    };
    let message = match error.code {
        ErrorCode::Unauthorized => {
            format!("{}. Sign in again with `hangar login <url>`", error.message)
        }
        _ => error.message,
    };
    CliError::from_status(status, message)
}

impl CliError {
    pub(super) fn from_status(status: StatusCode, message: String) -> CliError {
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => CliError::signed_out(message),
            StatusCode::NOT_FOUND => CliError::not_found(message),
            s if s.is_server_error() => CliError::unreachable(message),
            _ => CliError::failed(message),
        }
    }
}
