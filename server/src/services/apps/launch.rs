//! The apps Hangar starts in a space as it starts, by its template's features (as far as the
//! owner is allowed them): code-server (no password of its own: the proxy is the gate), a
//! desktop (TigerVNC with openbox, reached only through Hangar's VNC bridge) and the VS Code
//! tunnel. Each runs in the background inside the space (an exec without a terminal sends no
//! hangup when it ends, so no `nohup` is needed); one the image cannot run is recorded in the
//! space's history with the reason.

use app::api::templates::Feature;
use serde_json::json;

use super::links::{CODE_SERVER_PORT, VNC_PORT};
use crate::entities::space;
use crate::runtime::{ExecOutput, ExecRequest};
use crate::services::audit::{record, Outcome};
use crate::services::Services;

/// Where the VS Code tunnel writes what it says (its sign-in code among it).
pub const VSCODE_TUNNEL_LOG: &str = "/tmp/hangar-vscode-tunnel.log";

/// What a missing program makes the scripts exit with.
const NOT_INSTALLED: i64 = 127;

/// The shell script that starts an app in the background, for the features that have one.
fn script(feature: Feature) -> Option<String> {
    let need = |program: &str, what: &str| {
        format!(
            "command -v {program} >/dev/null 2>&1 || {{ echo '{what}' >&2; exit {NOT_INSTALLED}; }}\n"
        )
    };
    let script = match feature {
        Feature::CodeServer => format!(
            "{}cd \"${{HOME:-/root}}\" 2>/dev/null || cd /\n\
             code-server --auth none --bind-addr 0.0.0.0:{CODE_SERVER_PORT} \
             --disable-telemetry --disable-update-check --disable-workspace-trust \"$PWD\" \
             >/tmp/hangar-code-server.log 2>&1 </dev/null &\n",
            need("code-server", "code-server is not installed in this image"),
        ),
        Feature::Vnc => format!(
            "{}mkdir -p /tmp/.X11-unix && chmod 1777 /tmp/.X11-unix\n\
             Xtigervnc :1 -geometry 1280x800 -depth 24 -SecurityTypes None \
             -localhost=0 -rfbport {VNC_PORT} -AlwaysShared \
             >/tmp/hangar-desktop.log 2>&1 </dev/null &\n\
             i=0; while [ ! -S /tmp/.X11-unix/X1 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done\n\
             export DISPLAY=:1\n\
             dbus-launch --exit-with-session openbox-session \
             >>/tmp/hangar-desktop.log 2>&1 </dev/null &\n\
             if command -v xterm >/dev/null 2>&1; then xterm >/dev/null 2>&1 </dev/null & fi\n\
             exit 0\n",
            need(
                "Xtigervnc",
                "TigerVNC (Xtigervnc) is not installed in this image"
            ),
        ),
        Feature::VscodeTunnel => format!(
            "{}cd \"${{HOME:-/root}}\" 2>/dev/null || cd /\n\
             code tunnel --accept-server-license-terms --name \"$HANGAR_TUNNEL_NAME\" \
             >{VSCODE_TUNNEL_LOG} 2>&1 </dev/null &\n",
            need("code", "the image has no VS Code CLI (`code`)"),
        ),
        _ => return None,
    };
    Some(script)
}

/// A tunnel name VS Code accepts (at most 20 characters).
fn tunnel_name(space: &str) -> String {
    space.chars().take(20).collect()
}

impl Services {
    /// Starts the app of `feature` in a running space, if the feature has one, and records
    /// how that went in the space's history. (The driver calls it once a space runs, for the
    /// features its template and owner allow.)
    pub async fn launch_app(&self, space: &space::Model, feature: Feature) {
        if let Some(script) = script(feature) {
            self.launch(space, feature, script).await;
        }
    }

    async fn launch(&self, space: &space::Model, feature: Feature, script: String) {
        use futures_util::StreamExt;
        let request = ExecRequest {
            cmd: vec!["/bin/sh".into(), "-c".into(), script],
            env: vec![format!("HANGAR_TUNNEL_NAME={}", tunnel_name(&space.name))],
            ..Default::default()
        };
        let outcome = async {
            let mut exec = self
                .runtime
                .exec(&space.id, request)
                .await
                .map_err(|e| e.to_string())?;
            let mut said = Vec::new();
            while let Some(chunk) = exec.output.next().await {
                if let Ok(ExecOutput::Stdout(bytes) | ExecOutput::Stderr(bytes)) = chunk {
                    if said.len() < 4096 {
                        said.extend_from_slice(&bytes);
                    }
                }
            }
            // The engine may take a moment to record the exit code once the output ended.
            let mut code = None;
            for _ in 0..20 {
                code = exec.control.exit_code().await.map_err(|e| e.to_string())?;
                if code.is_some() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            match code {
                Some(0) => Ok(()),
                _ => Err(String::from_utf8_lossy(&said).trim().to_owned()),
            }
        };
        let result = tokio::time::timeout(std::time::Duration::from_secs(30), outcome)
            .await
            .unwrap_or_else(|_| Err("it did not start within 30 s".into()));
        let target = self.audit_target_of(space).await;
        match result {
            Ok(()) => {
                record(
                    &self.db,
                    None,
                    "space.app",
                    &target,
                    Outcome::Success,
                    json!({"feature": feature.as_str()}),
                )
                .await;
            }
            Err(error) => {
                tracing::warn!(space = %space.id, %feature, %error, "an app of the space did not start");
                record(
                    &self.db,
                    None,
                    "space.app",
                    &target,
                    Outcome::Failed,
                    json!({"feature": feature.as_str(), "error": error}),
                )
                .await;
            }
        }
        self.space_changed(&space.id).await;
    }
}

/// The device code and sign-in address the VS Code CLI printed, if it is waiting for one
/// (`… log into https://github.com/login/device and use code ABCD-1234 …`).
pub fn device_code(log: &str) -> Option<(String, String)> {
    let line = log.lines().rev().find(|l| l.contains("use code"))?;
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("https://"))?
        .trim_end_matches(['.', ',']);
    let code = line
        .split("use code")
        .nth(1)?
        .split_whitespace()
        .next()?
        .trim_end_matches(['.', ',']);
    (!code.is_empty()).then(|| (code.to_owned(), url.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_device_code_the_cli_prints() {
        let log = "*\n* Visual Studio Code Server\n*\n[2026-12-01 10:00:00] info Using GitHub for authentication, run `code tunnel user login --provider <provider>` option to change this.\nTo grant access to the server, please log into https://github.com/login/device and use code 3A1B-7C2D\n";
        assert_eq!(
            device_code(log),
            Some(("3A1B-7C2D".into(), "https://github.com/login/device".into()))
        );
        assert_eq!(
            device_code("Open this link in your browser https://vscode.dev/tunnel/x"),
            None
        );
    }

    #[test]
    fn apps_have_scripts_and_names_fit() {
        assert!(script(Feature::CodeServer).unwrap().contains("--auth none"));
        assert!(script(Feature::Vnc).unwrap().contains("-rfbport 5901"));
        assert!(script(Feature::Terminal).is_none());
        assert_eq!(tunnel_name("a-very-long-space-name-indeed").len(), 20);
    }
}
