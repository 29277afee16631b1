//! WebSockets of the API from the command line, signed with the saved token: the web
//! terminal's (for `hangar ssh` without a gateway) and a port's (for `hangar port-forward`).

use app::error::ErrorBody;
use reqwest::StatusCode;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::client::Client;
use super::CliError;

/// The WebSocket URL of an API path of the Hangar at `base`.
fn websocket_url(base: &str, path: &str) -> String {
    let rest = base
        .strip_prefix("https://")
        .map(|rest| format!("wss://{rest}"))
        .or_else(|| {
            base.strip_prefix("http://")
                .map(|rest| format!("ws://{rest}"))
        })
        .unwrap_or_else(|| base.to_owned());
    format!("{rest}{path}")
}

pub(super) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket of the API signed with the client's token; a refusal is the server's
/// own message.
pub(super) async fn open_websocket(client: &Client, path: &str) -> Result<Socket, CliError> {
    let mut request = websocket_url(client.base(), path)
        .into_client_request()
        .map_err(|e| CliError::usage(format!("cannot make the WebSocket request: {e}")))?;
    if let Some(token) = client.token() {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| CliError::usage("the saved token is not valid: sign in again"))?;
        request.headers_mut().insert("authorization", value);
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let status = StatusCode::from_u16(response.status().as_u16())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let message = response
                .body()
                .as_deref()
                .and_then(|body| serde_json::from_slice::<ErrorBody>(body).ok())
                .map_or_else(
                    || format!("Hangar refused the connection ({status})"),
                    |body| body.error.message,
                );
            Err(CliError::from_status(status, message))
        }
        Err(e) => Err(CliError::unreachable(format!(
            "cannot reach Hangar at {}: {e}",
            client.base()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_urls_follow_the_scheme() {
        assert_eq!(websocket_url("http://h:3000", "/x"), "ws://h:3000/x");
        assert_eq!(websocket_url("https://h", "/x"), "wss://h/x");
    }
}
