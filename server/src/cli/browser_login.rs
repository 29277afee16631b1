//! `hangar login <url>` through the browser, for a Hangar that signs people in through an
//! identity provider: the command line listens on a loopback port of its own, the browser signs
//! in (at Hangar, then at the provider) and comes back there with a one-time code, and the
//! command line claims its API token with that code and the secret only it knows (Hangar was
//! given the secret's SHA-256). Where no browser opens, the address is printed to open by hand
//! (a test opens it with an HTTP client).

use std::time::Duration;

use app::api::auth::{CliSignedIn, CliTokenRequest};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::client::Client;
use super::CliError;

/// How long the browser has to sign in.
const WAIT: Duration = Duration::from_secs(300);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_hex(len: usize) -> String {
    use rand::RngCore;
    let mut buffer = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut buffer);
    hex(&buffer)
}

/// Signs in through the browser and answers the new token, with who signed in.
pub(super) async fn sign_in(
    client: &Client,
    open_browser: bool,
    token_name: String,
) -> Result<CliSignedIn, CliError> {
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| {
        CliError::usage(format!(
            "cannot listen on a loopback port for the browser to come back to: {e}"
        ))
    })?;
    let port = listener
        .local_addr()
        .map_err(|e| CliError::usage(format!("cannot read the loopback port: {e}")))?
        .port();
    let verifier = random_hex(32);
    let challenge = hex(&Sha256::digest(verifier.as_bytes()));
    let state = random_hex(16);
    let address = format!(
        "{}/api/v1/auth/oidc/login?cli_port={port}&cli_state={state}&cli_challenge={challenge}",
        client.base()
    );
    eprintln!("To sign in, open this address in a browser on this machine:\n\n  {address}\n");
    if open_browser {
        open(&address);
    }
    eprintln!("Waiting for the browser to sign in…");
    let code = tokio::time::timeout(WAIT, wait_for_code(&listener, &state))
        .await
        .map_err(|_| {
            CliError::signed_out(format!(
                "the browser did not sign in within {} minutes: run `hangar login` again",
                WAIT.as_secs() / 60
            ))
        })??;
    client
        .post(
            "/api/v1/auth/cli/token",
            &CliTokenRequest {
                code,
                verifier,
                name: Some(token_name),
            },
        )
        .await
}

/// Opens the address in the person's browser, if one can be found; else they open it by hand.
fn open(address: &str) {
    let mut candidates: Vec<String> = std::env::var("BROWSER")
        .map(|b| b.split(':').map(str::to_owned).collect())
        .unwrap_or_default();
    candidates.extend(["xdg-open".to_owned(), "open".to_owned()]);
    for program in candidates.iter().filter(|p| !p.is_empty()) {
        let started = std::process::Command::new(program)
            .arg(address)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if started.is_ok() {
            return;
        }
    }
}

/// Answers the browser's requests on the loopback port until one brings this sign-in's code
/// (or Hangar's refusal, which becomes the error).
async fn wait_for_code(listener: &TcpListener, state: &str) -> Result<String, CliError> {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let mut request = Vec::new();
        let mut buffer = [0u8; 2048];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16384 {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&buffer[..n]),
            }
        }
        let text = String::from_utf8_lossy(&request);
        let target = text
            .lines()
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .unwrap_or_default()
            .to_owned();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let params: Vec<(String, String)> = url_params(query);
        let get = |name: &str| {
            params
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        if path != "/callback" || get("state").as_deref() != Some(state) {
            reply(
                &mut stream,
                "404 Not Found",
                "Not this sign-in",
                "This address belongs to a `hangar login` waiting for another sign-in.",
            )
            .await;
            continue;
        }
        if let Some(code) = get("code") {
            reply(&mut stream, "200 OK", "Signed in", "The command line is signed in: you can close this tab and go back to the terminal.").await;
            return Ok(code);
        }
        let why = get("error").unwrap_or_else(|| "Hangar sent no code".to_owned());
        reply(&mut stream, "200 OK", "Sign-in refused", &why).await;
        return Err(CliError::signed_out(why));
    }
}

/// `key=value&…` decoded.
fn url_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let digits = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(digits, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn reply(stream: &mut tokio::net::TcpStream, status: &str, title: &str, message: &str) {
    let escape = |t: &str| {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · Hangar</title></head>\
         <body style=\"font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto\">\
         <h1>{}</h1><p id=\"reason\">{}</p></body></html>",
        escape(title),
        escape(title),
        escape(message)
    );
    let answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(
            url_params("state=a1&error=no+way%3A%20sorry&x"),
            [
                ("state".to_owned(), "a1".to_owned()),
                ("error".to_owned(), "no way: sorry".to_owned()),
                ("x".to_owned(), String::new())
            ]
        );
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%é"), "%é");
    }
}
