//! A space's web terminal: xterm.js (through xterm-js-sys) on a WebSocket that reattaches
//! to the same shell after a reload or a dropped connection.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::ids::SpaceId;

/// Connection state shown above the terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    Connecting,
    Connected,
    Reconnecting,
    Ended(String),
}

impl Link {
    fn label(&self) -> String {
        match self {
            Link::Connecting => "connecting…".into(),
            Link::Connected => "connected".into(),
            Link::Reconnecting => "reconnecting…".into(),
            Link::Ended(why) => format!("ended: {why}"),
        }
    }

    fn class(&self) -> &'static str {
        match self {
            Link::Connected => "status ok",
            Link::Ended(_) => "status ended",
            _ => "status pending",
        }
    }
}

#[component]
pub fn TerminalPage() -> impl IntoView {
    let params = use_params_map();
    let space_id = SpaceId(params.with_untracked(|p| p.get("id").unwrap_or_default()));
    view! {
        <section class="panel terminal-panel">
            <TerminalPanel space_id=space_id.clone() />
            <p class="hint">
                "The session survives a reload or a dropped connection; it ends after a few idle minutes with nobody attached. "
                <a href=format!("/spaces/{space_id}")>"Space details"</a> " · "
                <a href="/">"Back to the dashboard"</a>
            </p>
        </section>
    }
}

/// A live terminal into a running space, with its connection state.
#[component]
pub fn TerminalPanel(space_id: SpaceId) -> impl IntoView {
    let link = RwSignal::new(Link::Connecting);
    let host = NodeRef::<leptos::html::Div>::new();

    #[cfg(not(feature = "hydrate"))]
    let _ = &space_id;
    #[cfg(feature = "hydrate")]
    {
        let hydrated = crate::hydrated_signal();
        Effect::new(move |started: Option<bool>| {
            if started == Some(true) {
                return true;
            }
            if !hydrated.get() {
                return false;
            }
            match host.get() {
                Some(element) => {
                    client::start(space_id.clone(), element.into(), link);
                    true
                }
                None => false,
            }
        });
    }

    view! {
        <div class="panel-head">
            <h1>"Terminal"</h1>
            <span class=move || link.get().class() data-testid="terminal-status">
                {move || link.get().label()}
            </span>
        </div>
        <div class="terminal-host" node_ref=host data-testid="terminal"></div>
    }
}

#[cfg(feature = "hydrate")]
mod client {
    use std::cell::RefCell;
    use std::rc::Rc;

    use leptos::prelude::*;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;
    use web_sys::{BinaryType, MessageEvent, WebSocket};
    use xterm_js_sys::xterm::Terminal;

    use super::Link;
    use crate::ids::SpaceId;
    use crate::protocol::{TerminalControl, TerminalNotice};
    use crate::utf8_stream::Utf8Stream;

    /// Largest input message sent (the server takes up to 1 MiB by default).
    const INPUT_PIECE: usize = 64 * 1024;

    /// Approximate cell size of xterm.js's default font, to fit the terminal to its box.
    const CELL_WIDTH: f64 = 9.0;
    const CELL_HEIGHT: f64 = 17.0;

    struct Shared {
        terminal: Terminal,
        socket: Option<WebSocket>,
        decoder: Utf8Stream,
        ended: bool,
        // Kept alive for as long as the page lives: dropping them would detach the handlers.
        keep: Vec<Box<dyn std::any::Any>>,
    }

    /// The session id in the URL, or a new one put there (so a reload reattaches).
    fn session_id() -> String {
        let location = window().location();
        let search = location.search().unwrap_or_default();
        if let Ok(params) = web_sys::UrlSearchParams::new_with_str(&search) {
            if let Some(id) = params.get("session").filter(|s| s.len() == 36) {
                return id;
            }
        }
        let id = window()
            .crypto()
            .ok()
            .map(|c| c.random_uuid())
            .unwrap_or_else(|| format!("{:032x}", js_sys::Date::now() as u128));
        let path = location.pathname().unwrap_or_default();
        if let Ok(history) = window().history() {
            let _ = history.replace_state_with_url(
                &wasm_bindgen::JsValue::NULL,
                "",
                Some(&format!("{path}?session={id}")),
            );
        }
        id
    }

    fn fit(element: &web_sys::Element) -> (u16, u16) {
        let rect = element.get_bounding_client_rect();
        let cols = ((rect.width() - 8.0) / CELL_WIDTH)
            .floor()
            .clamp(20.0, 500.0) as u16;
        let rows = ((rect.height() - 8.0) / CELL_HEIGHT)
            .floor()
            .clamp(5.0, 200.0) as u16;
        (cols, rows)
    }

    pub fn start(space_id: SpaceId, element: web_sys::Element, link: RwSignal<Link>) {
        let terminal = Terminal::new(None);
        terminal.open(element.clone());
        let (cols, rows) = fit(&element);
        terminal.resize(cols, rows);
        terminal.focus();
        let shared = Rc::new(RefCell::new(Shared {
            terminal,
            socket: None,
            decoder: Utf8Stream::default(),
            ended: false,
            keep: Vec::new(),
        }));
        let session = session_id();

        // Keystrokes and pastes go to the shell as raw bytes; a big paste in pieces, well
        // below the server's message limit.
        let typing = {
            let shared = shared.clone();
            Closure::<dyn FnMut(String)>::new(move |data: String| {
                if let Some(socket) = shared.borrow().socket.as_ref() {
                    if socket.ready_state() == WebSocket::OPEN {
                        for piece in data.as_bytes().chunks(INPUT_PIECE) {
                            let _ = socket.send_with_u8_array(piece);
                        }
                    }
                }
            })
        };
        let disposable = shared.borrow().terminal.on_data(&typing);
        shared.borrow_mut().keep.push(Box::new(typing));
        shared.borrow_mut().keep.push(Box::new(disposable));

        // Fit to the window as it changes.
        let resizing = {
            let shared = shared.clone();
            let element = element.clone();
            Closure::<dyn FnMut()>::new(move || {
                let (cols, rows) = fit(&element);
                let state = shared.borrow();
                state.terminal.resize(cols, rows);
                if let (Some(socket), Ok(resize)) = (
                    state.socket.as_ref(),
                    serde_json::to_string(&TerminalControl::Resize { cols, rows }),
                ) {
                    let _ = socket.send_with_str(&resize);
                }
            })
        };
        let _ =
            window().add_event_listener_with_callback("resize", resizing.as_ref().unchecked_ref());
        shared.borrow_mut().keep.push(Box::new(resizing));

        connect(shared, space_id, session, element, link);
    }

    fn connect(
        shared: Rc<RefCell<Shared>>,
        space_id: SpaceId,
        session: String,
        element: web_sys::Element,
        link: RwSignal<Link>,
    ) {
        let location = window().location();
        let scheme = if location.protocol().unwrap_or_default() == "https:" {
            "wss"
        } else {
            "ws"
        };
        let host = location.host().unwrap_or_default();
        let (cols, rows) = fit(&element);
        let url = format!("{scheme}://{host}/api/v1/spaces/{space_id}/terminal?session={session}&cols={cols}&rows={rows}");
        let Ok(socket) = WebSocket::new(&url) else {
            link.set(Link::Ended("the browser refused the connection".into()));
            return;
        };
        socket.set_binary_type(BinaryType::Arraybuffer);

        let on_open = {
            let shared = shared.clone();
            Closure::<dyn FnMut()>::new(move || {
                // The server replays the history and the screen: start from a blank terminal,
                // so that a reconnect does not show the history twice.
                shared.borrow().terminal.reset();
                link.set(Link::Connected);
            })
        };
        socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));

        let on_message = {
            let shared = shared.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                let data = event.data();
                if let Some(buffer) = data.dyn_ref::<js_sys::ArrayBuffer>() {
                    let bytes = js_sys::Uint8Array::new(buffer).to_vec();
                    // Decoded under a borrow of its own: xterm.js may answer a query in the
                    // output (a cursor position report) from inside `write`, through the
                    // typing callback, which borrows `shared` again.
                    let text = shared.borrow_mut().decoder.decode(&bytes);
                    shared.borrow().terminal.write(text);
                } else if let Some(text) = data.as_string() {
                    // A notice is a line beside the output; the session goes on.
                    if let Ok(TerminalNotice::Notice { message }) =
                        serde_json::from_str::<TerminalNotice>(&text)
                    {
                        shared
                            .borrow()
                            .terminal
                            .write(format!("\r\n\x1b[33m{message}\x1b[0m\r\n"));
                        return;
                    }
                    let why = match serde_json::from_str::<TerminalNotice>(&text) {
                        Ok(TerminalNotice::Exit { code }) => {
                            format!("the shell exited with code {code}")
                        }
                        Ok(TerminalNotice::Error { message }) => message,
                        Ok(TerminalNotice::Notice { message }) => message,
                        Err(_) => "closed by the server".to_owned(),
                    };
                    shared.borrow_mut().ended = true;
                    link.set(Link::Ended(why));
                }
            })
        };
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));

        let on_close = {
            let shared = shared.clone();
            Closure::<dyn FnMut()>::new(move || {
                if shared.borrow().ended {
                    return;
                }
                link.set(Link::Reconnecting);
                let (shared, space_id, session, element) = (
                    shared.clone(),
                    space_id.clone(),
                    session.clone(),
                    element.clone(),
                );
                set_timeout(
                    move || connect(shared, space_id, session, element, link),
                    std::time::Duration::from_millis(1000),
                );
            })
        };
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));

        let mut state = shared.borrow_mut();
        state.keep.push(Box::new(on_open));
        state.keep.push(Box::new(on_message));
        state.keep.push(Box::new(on_close));
        state.socket = Some(socket);
    }
}
