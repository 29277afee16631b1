//! The wire protocols besides JSON request/answer, shared by both ends: the web terminal's
//! control messages and the live-update events.

use serde::{Deserialize, Serialize};

use crate::api::quota::QuotaReport;
use crate::api::spaces::SpaceDto;
use crate::ids::SpaceId;
use crate::lifecycle::SpaceState;

/// `GET /api/v1/spaces/{id}/terminal?session=&cols=&rows=` (a WebSocket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct TerminalQuery {
    /// The browser's id for the session (a hyphenated UUID); the same id reattaches.
    #[cfg_attr(
        feature = "ssr",
        param(
            pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
        )
    )]
    pub session: String,
    /// Columns, 1 to 1000 (default 80).
    #[cfg_attr(feature = "ssr", param(minimum = 1, maximum = 1000))]
    pub cols: Option<u16>,
    /// Rows, 1 to 1000 (default 24).
    #[cfg_attr(feature = "ssr", param(minimum = 1, maximum = 1000))]
    pub rows: Option<u16>,
}

/// What the browser sends the terminal as JSON text frames (raw input goes as binary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TerminalControl {
    Resize { cols: u16, rows: u16 },
}

/// What the server tells the terminal as JSON text frames (output goes as binary).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TerminalNotice {
    /// The shell exited with this code.
    Exit { code: i64 },
    /// Why the session ended or a control message was refused.
    Error { message: String },
    /// A line to show beside the output, the session going on (a coming automatic stop).
    Notice { message: String },
}

/// A space as the live stream reports it: as the caller sees it now, or gone (deleted, or no
/// longer shared with them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SpaceUpdate {
    Visible(Box<SpaceDto>),
    Gone { id: SpaceId, state: SpaceState },
}

/// The named events of `GET /api/v1/events` (server-sent events).
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// The caller's quota and usage, now.
    Quota(QuotaReport),
    /// A space the caller can see (or could) changed.
    Space(SpaceUpdate),
    /// The caller's unread notifications, now (a new one came, or some were read).
    Notifications(crate::api::notifications::UnreadCount),
    /// Changes may have been missed: read everything afresh.
    Resync,
}

impl LiveEvent {
    /// Every event name, for a client to listen to.
    pub const NAMES: [&'static str; 4] = ["quota", "space", "notifications", "resync"];

    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            LiveEvent::Quota(_) => "quota",
            LiveEvent::Space(_) => "space",
            LiveEvent::Notifications(_) => "notifications",
            LiveEvent::Resync => "resync",
        }
    }

    /// The SSE data: the payload as JSON.
    pub fn data(&self) -> Result<String, serde_json::Error> {
        match self {
            LiveEvent::Quota(report) => serde_json::to_string(report),
            LiveEvent::Space(update) => serde_json::to_string(update),
            LiveEvent::Notifications(count) => serde_json::to_string(count),
            LiveEvent::Resync => Ok("{}".to_owned()),
        }
    }

    /// An event read back from its name and data.
    pub fn parse(name: &str, data: &str) -> Result<Self, String> {
        let invalid = |e: serde_json::Error| format!("`{name}` event: {e}");
        match name {
            "quota" => serde_json::from_str(data)
                .map(LiveEvent::Quota)
                .map_err(invalid),
            "space" => serde_json::from_str(data)
                .map(LiveEvent::Space)
                .map_err(invalid),
            "notifications" => serde_json::from_str(data)
                .map(LiveEvent::Notifications)
                .map_err(invalid),
            "resync" => Ok(LiveEvent::Resync),
            other => Err(format!("unknown live event `{other}`")),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_by_name_and_data() {
        let gone = LiveEvent::Space(SpaceUpdate::Gone {
            id: SpaceId("s1".into()),
            state: SpaceState::Deleted,
        });
        let data = gone.data().unwrap();
        assert_eq!(data, r#"{"id":"s1","state":"deleted"}"#);
        assert_eq!(LiveEvent::parse(gone.name(), &data), Ok(gone));
        assert_eq!(LiveEvent::parse("resync", "{}"), Ok(LiveEvent::Resync));
        assert!(LiveEvent::parse("other", "{}").is_err());
        for name in LiveEvent::NAMES {
            assert!(LiveEvent::parse(name, "{}").is_err() || name == "resync");
        }
    }

    #[test]
    fn terminal_controls_are_tagged_json() {
        let resize: TerminalControl =
            serde_json::from_str(r#"{"type":"resize","cols":80,"rows":24}"#).unwrap();
        assert_eq!(resize, TerminalControl::Resize { cols: 80, rows: 24 });
        assert!(serde_json::from_str::<TerminalControl>(r#"{"type":"exit","code":1}"#).is_err());
        let exit = serde_json::to_string(&TerminalNotice::Exit { code: 3 }).unwrap();
        assert_eq!(exit, r#"{"type":"exit","code":3}"#);
    }
}
