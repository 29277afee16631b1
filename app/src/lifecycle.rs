//! The space lifecycle (SPEC §2) as one explicit state machine: which action is allowed in
//! which state, and which state each step leads to. Pure, and shared: the space service
//! records each transition in the database before the runtime acts, the entities store the
//! state as this type, and the pages ask it what a space can do.

use std::fmt;
use std::str::FromStr;

#[cfg(feature = "ssr")]
use sea_orm::sea_query::StringLen;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(
    feature = "ssr",
    derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum, utoipa::ToSchema),
    sea_orm(rs_type = "String", db_type = "String(StringLen::None)")
)]
pub enum SpaceState {
    #[cfg_attr(feature = "ssr", sea_orm(string_value = "created"))]
    Created,
    #[cfg_attr(feature = "ssr", sea_orm(string_value = "starting"))]
    Starting,
    #[cfg_attr(feature = "ssr", sea_orm(string_value = "running"))]
    Running,
    #[cfg_attr(feature = "ssr", sea_orm(string_value = "stopping"))]
    Stopping,
    #[cfg_attr(feature = "ssr", sea_orm(string_value = "stopped"))]
    Stopped,
    #[cfg_attr(feature = "ssr", sea_orm(string_value = "deleted"))]
    Deleted,
}

impl SpaceState {
    pub const ALL: [SpaceState; 6] = [
        SpaceState::Created,
        SpaceState::Starting,
        SpaceState::Running,
        SpaceState::Stopping,
        SpaceState::Stopped,
        SpaceState::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SpaceState::Created => "created",
            SpaceState::Starting => "starting",
            SpaceState::Running => "running",
            SpaceState::Stopping => "stopping",
            SpaceState::Stopped => "stopped",
            SpaceState::Deleted => "deleted",
        }
    }

    /// Whether a space in this state holds its compute units.
    pub fn uses_compute(self) -> bool {
        matches!(
            self,
            SpaceState::Starting | SpaceState::Running | SpaceState::Stopping
        )
    }

    /// Whether the lifecycle allows `action` now.
    pub fn allows(self, action: Action) -> bool {
        plan(self, action).is_ok()
    }

    /// Whether its container runs, so a terminal (or anything else inside it) can open.
    pub fn is_running(self) -> bool {
        self == SpaceState::Running
    }

    /// Between two states: the change is under way.
    pub fn is_moving(self) -> bool {
        matches!(self, SpaceState::Starting | SpaceState::Stopping)
    }
}

impl fmt::Display for SpaceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SpaceState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SpaceState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown space state `{s}`"))
    }
}

/// What a person (or the API) asks of a space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum Action {
    Start,
    Stop,
    Restart,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
            Action::Delete => "delete",
        }
    }
}

/// What follows once a space has stopped (stored with a space that is stopping; none means
/// it stays stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "ssr",
    derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum),
    sea_orm(rs_type = "String", db_type = "String(StringLen::None)")
)]
pub enum AfterStop {
    #[cfg_attr(feature = "ssr", sea_orm(string_value = "stay"))]
    Stay,
    #[cfg_attr(feature = "ssr", sea_orm(string_value = "restart"))]
    Restart,
    #[cfg_attr(feature = "ssr", sea_orm(string_value = "delete"))]
    Delete,
}

/// The work an allowed action starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Check compute quota, move to `starting`, then start the container.
    Start,
    /// Move to `stopping`, stop the container, then go on as `then` says.
    Stop { then: AfterStop },
    /// Mark it as being deleted (`stopping`, then `deleted`), then remove container and
    /// volumes: nothing is removed before the mark, so a start that raced it finds the space
    /// taken and is refused.
    Delete,
}

impl Plan {
    /// The state recorded before the runtime acts.
    pub fn first_state(self) -> SpaceState {
        match self {
            Plan::Start => SpaceState::Starting,
            // A deletion is recorded (as a stop that ends in `deleted`) before anything is
            // removed; a failed removal puts the space back as it was, deleteable again.
            Plan::Stop { .. } | Plan::Delete => SpaceState::Stopping,
        }
    }
}

/// An action the current state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTransition {
    pub state: SpaceState,
    pub action: Action,
}

impl fmt::Display for InvalidTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hint = match (self.action, self.state) {
            (_, SpaceState::Deleted) => "it was deleted",
            (Action::Start, SpaceState::Running | SpaceState::Starting) => "it is already running",
            (Action::Start | Action::Restart, SpaceState::Stopping) => "wait until it has stopped",
            (Action::Stop | Action::Restart, _) => "it is not running",
            (Action::Delete, _) => "wait until it has started or stopped, then try again",
            _ => "wait until its current change is over",
        };
        write!(
            f,
            "cannot {} a space that is {}: {hint}",
            self.action.as_str(),
            self.state
        )
    }
}

/// The transition table: what `action` does in `state`.
pub fn plan(state: SpaceState, action: Action) -> Result<Plan, InvalidTransition> {
    use SpaceState::*;
    match (state, action) {
        (Created | Stopped, Action::Start) => Ok(Plan::Start),
        (Running | Starting, Action::Stop) => Ok(Plan::Stop {
            then: AfterStop::Stay,
        }),
        (Running, Action::Restart) => Ok(Plan::Stop {
            then: AfterStop::Restart,
        }),
        (Created | Stopped, Action::Delete) => Ok(Plan::Delete),
        (Running, Action::Delete) => Ok(Plan::Stop {
            then: AfterStop::Delete,
        }),
        _ => Err(InvalidTransition { state, action }),
    }
}

/// Every move between states that the lifecycle allows (actions and runtime outcomes).
pub fn allowed(from: SpaceState, to: SpaceState) -> bool {
    use SpaceState::*;
    matches!(
        (from, to),
        (Created, Starting)
            | (Created, Stopping)
            | (Starting, Running)
            | (Starting, Stopped)
            | (Starting, Stopping)
            | (Running, Stopping)
            | (Running, Stopped)
            | (Stopping, Stopped)
            | (Stopping, Starting)
            | (Stopping, Deleted)
            // A deletion whose removal failed puts the space back.
            | (Stopping, Created)
            | (Stopped, Starting)
            | (Stopped, Stopping)
    )
}

/// Where a finished stop leads.
pub fn after_stop(then: AfterStop) -> SpaceState {
    match then {
        AfterStop::Stay => SpaceState::Stopped,
        AfterStop::Restart => SpaceState::Starting,
        AfterStop::Delete => SpaceState::Deleted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_table_matches_the_spec() {
        use SpaceState::*;
        assert_eq!(plan(Created, Action::Start), Ok(Plan::Start));
        assert_eq!(plan(Stopped, Action::Start), Ok(Plan::Start));
        assert!(plan(Running, Action::Start).is_err());
        assert_eq!(
            plan(Starting, Action::Stop),
            Ok(Plan::Stop {
                then: AfterStop::Stay
            })
        );
        assert_eq!(
            plan(Running, Action::Restart),
            Ok(Plan::Stop {
                then: AfterStop::Restart
            })
        );
        assert_eq!(
            plan(Running, Action::Delete),
            Ok(Plan::Stop {
                then: AfterStop::Delete
            })
        );
        assert!(plan(Stopped, Action::Stop).is_err());
        assert!(plan(Starting, Action::Delete).is_err());
        assert!(plan(Deleted, Action::Start).is_err());
        let error = plan(Stopped, Action::Stop).unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot stop a space that is stopped: it is not running"
        );
    }

    #[test]
    fn states_round_trip_through_text() {
        for state in SpaceState::ALL {
            assert_eq!(state.as_str().parse::<SpaceState>(), Ok(state));
        }
        assert!("paused".parse::<SpaceState>().is_err());
    }

    /// A step of the model: an action asked, or a runtime outcome.
    #[derive(Debug, Clone, Copy)]
    enum Step {
        Ask(Action),
        StartSucceeded,
        StartFailed,
        StopFinished,
        /// Removing a stopped space's container or volumes failed.
        RemovalFailed,
        ContainerDied,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            Just(Step::Ask(Action::Start)),
            Just(Step::Ask(Action::Stop)),
            Just(Step::Ask(Action::Restart)),
            Just(Step::Ask(Action::Delete)),
            Just(Step::StartSucceeded),
            Just(Step::StartFailed),
            Just(Step::StopFinished),
            Just(Step::RemovalFailed),
            Just(Step::ContainerDied),
        ]
    }

    proptest! {
        /// Whatever happens, every move is in the allowed table, `deleted` is final, and a
        /// stop always finishes as it was asked to.
        #[test]
        fn every_run_only_makes_allowed_moves(steps in proptest::collection::vec(step(), 0..60)) {
            let mut state = SpaceState::Created;
            let mut then = AfterStop::Stay;
            // The state a deletion of a space that was not running started from.
            let mut deleting_from = None;
            for step in steps {
                let next = match step {
                    Step::Ask(action) => match plan(state, action) {
                        Ok(p @ Plan::Stop { then: t }) => { then = t; deleting_from = None; p.first_state() }
                        Ok(p @ Plan::Delete) => { then = AfterStop::Delete; deleting_from = Some(state); p.first_state() }
                        Ok(p) => p.first_state(),
                        Err(e) => { prop_assert_eq!(e.state, state); state }
                    },
                    Step::StartSucceeded if state == SpaceState::Starting => SpaceState::Running,
                    Step::StartFailed if state == SpaceState::Starting => SpaceState::Stopped,
                    Step::StopFinished if state == SpaceState::Stopping => after_stop(then),
                    Step::RemovalFailed if state == SpaceState::Stopping => deleting_from.unwrap_or(state),
                    Step::ContainerDied if state == SpaceState::Running => SpaceState::Stopped,
                    _ => state,
                };
                if next != state {
                    prop_assert!(allowed(state, next), "{state} -> {next}");
                }
                if state == SpaceState::Deleted {
                    prop_assert_eq!(next, SpaceState::Deleted);
                }
                state = next;
            }
        }

        #[test]
        fn no_action_is_allowed_on_a_deleted_space(action in prop_oneof![
            Just(Action::Start), Just(Action::Stop), Just(Action::Restart), Just(Action::Delete)
        ]) {
            prop_assert!(plan(SpaceState::Deleted, action).is_err());
        }
    }
}
