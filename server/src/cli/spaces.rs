//! The developer commands themselves: signing in and out, and spaces, templates and quota as
//! the dashboard shows them.

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use app::api::auth::{SignInMethods, UserDto, UserEnvelope};
use app::api::quota::QuotaReport;
use app::api::spaces::{CreateSpace, SpaceDto};
use app::api::templates::TemplateDto;
use app::api::users::{CreateToken, TokenCreated, TokenDto};
use app::lifecycle::SpaceState;
use clap::Args;
use reqwest::Method;

use super::client::{decode, Client};
use super::profile::Profile;
use super::CliError;

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The Hangar to sign in to, e.g. https://hangar.example.com or http://127.0.0.1:3000.
    pub url: String,
    /// Your username (asked when not given).
    #[arg(long, short)]
    pub username: Option<String>,
    /// Read the password from standard input instead of asking for it.
    #[arg(long)]
    pub password_stdin: bool,
    /// Use this personal API token instead of a username and password.
    #[arg(long, env = "HANGAR_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Where Hangar signs people in through an identity provider (and no --username is
    /// given), only print the address to open in a browser instead of opening one.
    #[arg(long)]
    pub no_browser: bool,
}

#[derive(Debug, Args)]
pub struct TransitionArgs {
    /// The space: its name, `owner/name` for one shared with you, or its id.
    pub space: String,
    /// Return once the server accepted the request, without waiting for the state.
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds to wait for the space at most.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

fn ask(prompt: &str) -> Result<String, CliError> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::usage(format!("cannot read the answer: {e}")))?;
    Ok(line.trim().to_owned())
}

pub(super) async fn login(args: LoginArgs) -> Result<(), CliError> {
    let url = args.url.trim().trim_end_matches('/').to_owned();
    let (token, token_id, user) = match args.token {
        Some(token) => {
            let client = Client::new(&url, Some(token.clone()))?;
            let UserEnvelope { user } = client.get("/api/v1/me").await?;
            // The id lets `hangar logout` revoke it; a token that may not list tokens is kept
            // without it.
            let id = client
                .get_all::<TokenDto>("/api/v1/me/tokens")
                .await
                .ok()
                .and_then(|tokens| {
                    tokens
                        .into_iter()
                        .find(|t| token.starts_with(&t.prefix))
                        .map(|t| t.id.to_string())
                });
            (token, id, user)
        }
        None if args.username.is_none()
            && !args.password_stdin
            && offers_provider(&url).await? =>
        {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "this machine".into());
            let name = format!("hangar CLI on {host}").chars().take(64).collect();
            let client = Client::new(&url, None)?;
            let signed_in = super::browser_login::sign_in(&client, !args.no_browser, name).await?;
            (
                signed_in.token.secret,
                Some(signed_in.token.token.id.to_string()),
                signed_in.user,
            )
        }
        None => {
            let username = match args.username {
                Some(name) => name,
                None => ask("Username: ")?,
            };
            let password = if args.password_stdin || !std::io::stdin().is_terminal() {
                ask("")?
            } else {
                rpassword::prompt_password("Password: ")
                    .map_err(|e| CliError::usage(format!("cannot read the password: {e}")))?
            };
            let created = sign_in_for_a_token(&url, &username, &password).await?;
            (
                created.secret,
                Some(created.token.id.to_string()),
                created.user,
            )
        }
    };
    let profile = Profile {
        url,
        token,
        username: user.username.clone(),
        token_id,
    };
    let path = profile.save()?;
    outln!(
        "Signed in to {} as {} (token kept in {}).",
        profile.url,
        user.username,
        path.display()
    );
    Ok(())
}

/// Whether the Hangar at `url` signs people in through an identity provider.
async fn offers_provider(url: &str) -> Result<bool, CliError> {
    match Client::new(url, None)?
        .get::<SignInMethods>("/api/v1/auth/methods")
        .await
    {
        Ok(methods) => Ok(methods.provider.is_some()),
        // A Hangar from before sign-in through a provider.
        Err(e) if e.exit == super::Exit::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

struct SignedIn {
    user: UserDto,
    token: TokenDto,
    secret: String,
}

/// Signs in with a password (a browser-like session, with the Origin the server expects of
/// one) only to create a personal API token, then signs that session out.
async fn sign_in_for_a_token(
    url: &str,
    username: &str,
    password: &str,
) -> Result<SignedIn, CliError> {
    // Checks the URL's form.
    let base = Client::new(url, None)?.base().to_owned();
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .map_err(|e| CliError::usage(format!("cannot make an HTTP client: {e}")))?;
    let unreachable = |e: reqwest::Error| {
        CliError::unreachable(format!(
            "cannot reach Hangar at {base}: {e}. Check the URL and that the server runs"
        ))
    };
    let session_call = |method: Method, path: &str| {
        http.request(method, format!("{base}{path}"))
            .header(reqwest::header::ORIGIN, base.as_str())
    };
    let answer = session_call(Method::POST, "/api/v1/auth/login")
        .json(&serde_json::json!({"username": username, "password": password}))
        .send()
        .await
        .map_err(unreachable)?;
    let UserEnvelope { user } = checked(answer).await?;
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "this machine".into());
    let answer = session_call(Method::POST, "/api/v1/me/tokens")
        .json(&CreateToken {
            name: format!("hangar CLI on {host}").chars().take(64).collect(),
            expires_in_days: None,
            // What the command line does: read and change, no credentials (it revokes itself
            // at `hangar logout`, which any token may).
            scopes: None,
        })
        .send()
        .await
        .map_err(unreachable)?;
    let TokenCreated { token, secret, .. } = checked(answer).await?;
    let _ = session_call(Method::POST, "/api/v1/auth/logout")
        .send()
        .await;
    Ok(SignedIn {
        user,
        token,
        secret,
    })
}

/// A successful answer decoded, or the server's refusal as an error.
async fn checked<T: serde::de::DeserializeOwned>(answer: reqwest::Response) -> Result<T, CliError> {
    if answer.status().is_success() {
        return decode(answer).await;
    }
    let status = answer.status();
    let body: serde_json::Value = answer.json().await.unwrap_or_default();
    let message = body["error"]["message"]
        .as_str()
        .map_or_else(|| format!("Hangar answered {status}"), str::to_owned);
    Err(match status.as_u16() {
        401 | 403 => CliError::signed_out(message),
        s if s >= 500 => CliError::unreachable(message),
        _ => CliError::failed(message),
    })
}

pub(super) async fn logout() -> Result<(), CliError> {
    let profile = match Profile::load() {
        Ok(profile) => profile,
        Err(e) if e.exit == super::Exit::SignedOut => {
            outln!("Not signed in.");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if let Some(id) = &profile.token_id {
        let client = Client::new(&profile.url, Some(profile.token.clone()))?;
        match client
            .send(
                Method::DELETE,
                &format!("/api/v1/me/tokens/{id}"),
                None::<&()>,
            )
            .await
        {
            // Gone already (revoked elsewhere, or expired): nothing left to revoke.
            Ok(_) => {}
            Err(e) if matches!(e.exit, super::Exit::SignedOut | super::Exit::NotFound) => {}
            Err(e) => {
                return Err(CliError::failed(format!(
                    "could not revoke the token ({}); it is kept so you can try again",
                    e.message
                )))
            }
        }
    }
    Profile::remove()?;
    outln!("Signed out of {} ({}).", profile.url, profile.username);
    Ok(())
}

pub(super) async fn list_spaces(client: &Client, json: bool) -> Result<(), CliError> {
    let spaces: Vec<SpaceDto> = client.get_all("/api/v1/spaces").await?;
    if json {
        let text = serde_json::to_string_pretty(&spaces)
            .map_err(|e| CliError::failed(format!("cannot print the spaces: {e}")))?;
        outln!("{text}");
        return Ok(());
    }
    if spaces.is_empty() {
        outln!("No space yet: create one with `hangar create <name> --template <template>`.");
        return Ok(());
    }
    let rows: Vec<[String; 5]> = spaces
        .iter()
        .map(|s| {
            [
                space_label(s),
                s.state.as_str().to_owned(),
                s.template_name.clone(),
                format!("{} CU", s.compute_units),
                format!("{} SU", s.storage_units),
            ]
        })
        .collect();
    print_table(&["NAME", "STATE", "TEMPLATE", "COMPUTE", "STORAGE"], &rows);
    Ok(())
}

/// How a space is named on the command line: its name, or `owner/name` when shared with you.
fn space_label(space: &SpaceDto) -> String {
    if space.shared_with_me {
        format!("{}/{}", space.owner.username, space.name)
    } else {
        space.name.clone()
    }
}

fn print_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        outln!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// The space the argument names: an id, one's own space's name, or `owner/name`.
pub(super) async fn find_space(client: &Client, wanted: &str) -> Result<SpaceDto, CliError> {
    let spaces: Vec<SpaceDto> = client.get_all("/api/v1/spaces").await?;
    spaces
        .iter()
        .find(|s| s.id.as_str() == wanted)
        .or_else(|| spaces.iter().find(|s| space_label(s) == wanted))
        .cloned()
        .ok_or_else(|| {
            CliError::not_found(format!(
                "no space `{wanted}` among yours and those shared with you: `hangar spaces` lists them"
            ))
        })
}

pub(super) async fn templates(client: &Client) -> Result<(), CliError> {
    let templates: Vec<TemplateDto> = client.get_all("/api/v1/templates?usable=true").await?;
    if templates.is_empty() {
        outln!("No template is available to you: ask your administrator.");
        return Ok(());
    }
    let rows: Vec<[String; 4]> = templates
        .iter()
        .map(|t| {
            [
                t.name.clone(),
                format!("{} CU", t.compute_units),
                format!("{} SU", t.storage_units),
                t.description.clone(),
            ]
        })
        .collect();
    print_table(&["NAME", "COMPUTE", "STORAGE", "DESCRIPTION"], &rows);
    Ok(())
}

pub(super) async fn create(
    client: &Client,
    name: String,
    template: &str,
    repository: Option<app::api::repos::RepositoryInput>,
) -> Result<(), CliError> {
    let templates: Vec<TemplateDto> = client.get_all("/api/v1/templates?usable=true").await?;
    let chosen = templates
        .iter()
        .find(|t| t.name == template || t.id.as_str() == template)
        .ok_or_else(|| {
            CliError::not_found(format!(
                "no template `{template}` you may use: `hangar templates` lists them"
            ))
        })?;
    let space: SpaceDto = client
        .post(
            "/api/v1/spaces",
            &CreateSpace {
                name,
                template_id: chosen.id.clone(),
                owner_id: None,
                repository,
            },
        )
        .await?;
    outln!(
        "Created space {} from {} ({} CU, {} SU); start it with `hangar start {}`.",
        space.name,
        space.template_name,
        space.compute_units,
        space.storage_units,
        space.name
    );
    if let Some(repository) = &space.repository {
        outln!(
            "It clones {} into ~/{} at its first start; `hangar spaces --json` shows how that went.",
            repository.url,
            repository.folder
        );
    }
    Ok(())
}

pub(super) async fn transition(
    client: &Client,
    action: &str,
    args: TransitionArgs,
) -> Result<(), CliError> {
    let space = find_space(client, &args.space).await?;
    let started: SpaceDto = decode(
        client
            .send(
                Method::POST,
                &format!("/api/v1/spaces/{}/{action}", space.id),
                None::<&()>,
            )
            .await?,
    )
    .await?;
    let label = space_label(&space);
    if args.no_wait {
        outln!("{label}: {}", started.state.as_str());
        return Ok(());
    }
    let goal = if action == "stop" {
        SpaceState::Stopped
    } else {
        SpaceState::Running
    };
    let last = wait_for(client, &started, args.timeout).await?;
    match last {
        Some(space) if space.state == goal => {
            outln!("{label} is {}.", goal.as_str());
            Ok(())
        }
        Some(space) => Err(CliError::failed(format!(
            "{label} is {} instead of {}{}",
            space.state.as_str(),
            goal.as_str(),
            space
                .last_error
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ))),
        None => Err(CliError::not_found(format!(
            "{label} was deleted meanwhile"
        ))),
    }
}

pub(super) async fn delete(client: &Client, args: TransitionArgs) -> Result<(), CliError> {
    let space = find_space(client, &args.space).await?;
    let label = space_label(&space);
    let answer = client
        .send(
            Method::DELETE,
            &format!("/api/v1/spaces/{}", space.id),
            None::<&()>,
        )
        .await?;
    if answer.status() == reqwest::StatusCode::ACCEPTED && !args.no_wait {
        let stopping: SpaceDto = decode(answer).await?;
        if let Some(left) = wait_for(client, &stopping, args.timeout).await? {
            return Err(CliError::failed(format!(
                "{label} is still {}{}: try `hangar delete {label}` again",
                left.state.as_str(),
                left.last_error
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            )));
        }
    }
    outln!("Deleted {label} and its volumes.");
    Ok(())
}

/// Follows a space that is moving (as an accepted start, stop, restart or delete leaves it)
/// until it settles in a state, or is gone (`None`); a spinner shows the state meanwhile
/// when on a terminal.
async fn wait_for(
    client: &Client,
    space: &SpaceDto,
    timeout_secs: u64,
) -> Result<Option<SpaceDto>, CliError> {
    let spinner = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let deadline = Instant::now() + Duration::from_secs(timeout_secs);
    let path = format!("/api/v1/spaces/{}", space.id);
    let mut current = space.clone();
    let outcome = loop {
        if let Some(bar) = &spinner {
            bar.set_message(format!(
                "{} is {}",
                space_label(space),
                current.state.as_str()
            ));
        }
        if !current.state.is_moving() {
            break Ok(Some(current));
        }
        if Instant::now() >= deadline {
            break Err(CliError::failed(format!(
                "{} is still {} after {timeout_secs} s: it goes on in the background; check with `hangar spaces`",
                space_label(space),
                current.state.as_str()
            )));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        match client.get::<SpaceDto>(&path).await {
            Ok(next) => current = next,
            Err(e) if e.exit == super::Exit::NotFound => break Ok(None),
            Err(e) => break Err(e),
        }
    };
    if let Some(bar) = spinner {
        bar.finish_and_clear();
    }
    outcome
}

pub(super) async fn quota(client: &Client) -> Result<(), CliError> {
    let report: QuotaReport = client.get("/api/v1/me/quota").await?;
    let bar = |used: i64, quota: Option<i64>| -> String {
        match quota {
            None => format!("{used} of unlimited"),
            Some(quota) => {
                let width = 20usize;
                let filled = if quota <= 0 {
                    width
                } else {
                    ((used.max(0) as f64 / quota as f64) * width as f64).round() as usize
                };
                let filled = filled.min(width);
                format!(
                    "[{}{}] {used} of {quota}{}",
                    "#".repeat(filled),
                    "-".repeat(width - filled),
                    if used > quota { "  OVER QUOTA" } else { "" }
                )
            }
        }
    };
    outln!(
        "spaces   {}",
        bar(report.usage.spaces, report.quota.max_spaces)
    );
    outln!(
        "compute  {} CU",
        bar(report.usage.compute_units, report.quota.compute_units)
    );
    outln!(
        "storage  {} SU",
        bar(report.usage.storage_units, report.quota.storage_units)
    );
    for source in &report.breakdown {
        let value = |v: Option<i64>| v.map_or_else(|| "unlimited".to_owned(), |v| v.to_string());
        outln!(
            "  from {}: {} spaces, {} CU, {} SU",
            source.source,
            value(source.max_spaces),
            value(source.compute_units),
            value(source.storage_units)
        );
    }
    Ok(())
}
