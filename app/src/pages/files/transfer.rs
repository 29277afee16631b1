//! The browser's transfer client: uploads and downloads through the JSON API with
//! XMLHttpRequest (progress events both ways, `abort()` to cancel), uploads queued a few at
//! a time, files and folders dropped on the page told apart, and a download handed to the
//! browser as a blob once whole. It moves the transfers of [`FilesState`]; the page draws
//! them.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use leptos::prelude::*;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{
    Blob, DataTransfer, File, FileList, FileSystemEntry, HtmlAnchorElement, ProgressEvent, Url,
    XmlHttpRequest, XmlHttpRequestResponseType,
};

use super::{FilesState, Status, Transfer};
use crate::api::files::join_path;
use crate::components::size::bytes_text;
use crate::ids::SpaceId;

/// Uploads sent at once; more wait their turn.
const PARALLEL_UPLOADS: usize = 3;

impl FilesState {
    /// Adds a transfer to the list; its id.
    fn add(&self, upload: bool, name: String, path: String, total: Option<f64>) -> u64 {
        let id = self.next_id.get_value() + 1;
        self.next_id.set_value(id);
        self.transfers.update(|list| {
            list.push(Transfer {
                id,
                upload,
                name,
                path,
                loaded: 0.0,
                total,
                status: Status::Waiting,
            })
        });
        id
    }

    fn update(&self, id: u64, change: impl FnOnce(&mut Transfer)) {
        self.transfers.update(|list| {
            if let Some(transfer) = list.iter_mut().find(|t| t.id == id) {
                change(transfer);
            }
        });
    }
}

/// A request under way, with the handlers it must keep alive.
struct Going {
    request: XmlHttpRequest,
    _handlers: Vec<Closure<dyn FnMut(ProgressEvent)>>,
}

thread_local! {
    static GOING: RefCell<HashMap<u64, Going>> = RefCell::new(HashMap::new());
    static QUEUE: RefCell<VecDeque<(u64, File, String)>> = const { RefCell::new(VecDeque::new()) };
}

fn files_url(space_id: &SpaceId, query: &str) -> String {
    format!("/api/v1/spaces/{space_id}/files?{query}")
}

fn encoded(path: &str) -> String {
    String::from(js_sys::encode_uri_component(path))
}

/// Queues the files picked in the file input `ev` came from, then empties it (so the same
/// files may be picked again).
pub fn upload_picked(state: FilesState, space_id: SpaceId, dir: String, ev: &leptos::ev::Event) {
    if let Some(input) = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
    {
        if let Some(files) = input.files() {
            upload_all(state, space_id, dir, &files);
        }
        input.set_value("");
    }
}

/// Queues each file for upload into `dir`; those over the server's limit fail at once.
fn upload_all(state: FilesState, space_id: SpaceId, dir: String, files: &FileList) {
    upload_except(state, space_id, dir, files, &[]);
}

/// Queues the files dropped; a folder among them fails at once, saying what to do (the
/// browser hands its name, not its files).
pub fn upload_dropped(state: FilesState, space_id: SpaceId, dir: String, dropped: &DataTransfer) {
    let items = dropped.items();
    let folders: Vec<String> = (0..items.length())
        .filter_map(|i| items.get(i)?.webkit_get_as_entry().ok().flatten())
        .filter(FileSystemEntry::is_directory)
        .map(|entry| entry.name())
        .collect();
    for name in &folders {
        let id = state.add(true, name.clone(), join_path(&dir, name), None);
        state.update(id, |t| {
            t.status = Status::Failed(
                "a folder cannot be dropped: upload a tar of it (POST to the API), or its files"
                    .into(),
            )
        });
    }
    if let Some(files) = dropped.files() {
        upload_except(state, space_id, dir, &files, &folders);
    }
}

fn upload_except(
    state: FilesState,
    space_id: SpaceId,
    dir: String,
    files: &FileList,
    skip: &[String],
) {
    let max = state.max_upload.get_untracked();
    for index in 0..files.length() {
        let Some(file) = files.get(index) else {
            continue;
        };
        let name = file.name();
        if skip.contains(&name) {
            continue;
        }
        let path = join_path(&dir, &name);
        let size = file.size();
        let id = state.add(true, name, path.clone(), Some(size));
        if let Some(max) = max.filter(|&max| size > max as f64) {
            state.update(id, |t| {
                t.status = Status::Failed(format!(
                    "{} is over the upload limit of {}",
                    bytes_text(size),
                    bytes_text(max as f64)
                ))
            });
            continue;
        }
        let url = files_url(&space_id, &format!("path={}", encoded(&path)));
        QUEUE.with(|q| q.borrow_mut().push_back((id, file, url)));
    }
    pump(state);
}

/// Starts waiting uploads while fewer than [`PARALLEL_UPLOADS`] run.
fn pump(state: FilesState) {
    loop {
        let running = state.transfers.with_untracked(|list| {
            list.iter()
                .filter(|t| t.upload && t.status == Status::Running)
                .count()
        });
        if running >= PARALLEL_UPLOADS {
            return;
        }
        let Some((id, file, url)) = QUEUE.with(|q| q.borrow_mut().pop_front()) else {
            return;
        };
        if let Err(e) = send(state, id, "PUT", &url, Some(&file), true) {
            state.update(id, |t| t.status = Status::Failed(e));
        }
    }
}

/// Starts a download; a folder comes as a tar.
pub fn download(
    state: FilesState,
    space_id: SpaceId,
    path: String,
    name: String,
    tar: bool,
    size: Option<f64>,
) {
    let (query, file_name) = if tar {
        (
            format!("path={}&format=tar", encoded(&path)),
            format!("{name}.tar"),
        )
    } else {
        (format!("path={}", encoded(&path)), name)
    };
    let id = state.add(false, file_name, path, size);
    let url = files_url(&space_id, &query);
    if let Err(e) = send(state, id, "GET", &url, None, false) {
        state.update(id, |t| t.status = Status::Failed(e));
    }
}

/// Stops a transfer (or takes it out of the queue).
pub fn cancel(state: FilesState, id: u64) {
    QUEUE.with(|q| q.borrow_mut().retain(|(queued, _, _)| *queued != id));
    let going = GOING.with(|g| g.borrow_mut().remove(&id));
    state.update(id, |t| t.status = Status::Cancelled);
    if let Some(going) = going {
        let _ = going.request.abort();
        // Its handlers go once this event is over, not while one of them may run.
        leptos::task::spawn_local(async move { drop(going) });
    }
    pump(state);
}

/// The error a failed answer carries, or its status.
fn complaint(status: u16, body: &str) -> String {
    serde_json::from_str::<crate::error::ErrorBody>(body)
        .map(|b| b.error.message)
        .unwrap_or_else(|_| format!("the server answered {status}"))
}

fn finish(state: FilesState, id: u64, status: Status) {
    if let Some(going) = GOING.with(|g| g.borrow_mut().remove(&id)) {
        leptos::task::spawn_local(async move { drop(going) });
    }
    let upload = state
        .transfers
        .with_untracked(|list| list.iter().find(|t| t.id == id).map(|t| t.upload));
    state.update(id, |t| {
        if t.status != Status::Cancelled {
            if status == Status::Done {
                t.loaded = t.total.unwrap_or(t.loaded);
            }
            t.status = status;
        }
    });
    if upload == Some(true) {
        state.refresh.update(|n| *n += 1);
        pump(state);
    }
}

/// Hands a downloaded blob to the browser as a file named `name`.
fn save(blob: &Blob, name: &str) -> Result<(), JsValue> {
    let url = Url::create_object_url_with_blob(blob)?;
    let document = window().document().ok_or("no document")?;
    let link: HtmlAnchorElement = document.create_element("a")?.unchecked_into();
    link.set_href(&url);
    link.set_download(name);
    link.set_attribute("data-testid", "files-saved")?;
    let body = document.body().ok_or("no body")?;
    body.append_child(&link)?;
    link.click();
    link.remove();
    // The browser has copied what it needs once the click is handled; free it later.
    let revoke = Closure::once_into_js(move || {
        let _ = Url::revoke_object_url(&url);
    });
    window()
        .set_timeout_with_callback_and_timeout_and_arguments_0(revoke.unchecked_ref(), 60_000)?;
    Ok(())
}

fn on_loaded(state: FilesState, id: u64, request: &XmlHttpRequest, upload: bool) {
    let status = request.status().unwrap_or(0);
    if (200..300).contains(&status) {
        if !upload {
            let name = state
                .transfers
                .with_untracked(|list| list.iter().find(|t| t.id == id).map(|t| t.name.clone()));
            let saved = request
                .response()
                .ok()
                .and_then(|r| r.dyn_into::<Blob>().ok())
                .ok_or_else(|| JsValue::from_str("no file came"))
                .and_then(|blob| save(&blob, &name.unwrap_or_default()));
            if let Err(e) = saved {
                let why = e
                    .as_string()
                    .unwrap_or_else(|| "the browser could not save it".into());
                return finish(state, id, Status::Failed(why));
            }
        }
        return finish(state, id, Status::Done);
    }
    if upload {
        let body = request.response_text().ok().flatten().unwrap_or_default();
        return finish(state, id, Status::Failed(complaint(status, &body)));
    }
    // A download's error came as a blob: read it as text first.
    let blob = request
        .response()
        .ok()
        .and_then(|r| r.dyn_into::<Blob>().ok());
    leptos::task::spawn_local(async move {
        let body = match blob {
            Some(blob) => wasm_bindgen_futures::JsFuture::from(blob.text())
                .await
                .ok()
                .and_then(|t| t.as_string())
                .unwrap_or_default(),
            None => String::new(),
        };
        finish(state, id, Status::Failed(complaint(status, &body)));
    });
}

/// Sends one request and follows it to its end.
fn send(
    state: FilesState,
    id: u64,
    method: &str,
    url: &str,
    body: Option<&File>,
    upload: bool,
) -> Result<(), String> {
    let failed = |e: JsValue| {
        e.as_string()
            .unwrap_or_else(|| "the browser refused the request".into())
    };
    let request = XmlHttpRequest::new().map_err(failed)?;
    request.open_with_async(method, url, true).map_err(failed)?;
    if !upload {
        request.set_response_type(XmlHttpRequestResponseType::Blob);
    } else {
        request
            .set_request_header("Content-Type", "application/octet-stream")
            .map_err(failed)?;
    }
    let progress = Closure::<dyn FnMut(ProgressEvent)>::new(move |e: ProgressEvent| {
        state.update(id, |t| {
            t.loaded = e.loaded();
            if e.length_computable() {
                t.total = Some(e.total());
            }
        });
    });
    if upload {
        request
            .upload()
            .map_err(failed)?
            .set_onprogress(Some(progress.as_ref().unchecked_ref()));
    } else {
        request.set_onprogress(Some(progress.as_ref().unchecked_ref()));
    }
    let loaded = {
        let request = request.clone();
        Closure::<dyn FnMut(ProgressEvent)>::new(move |_| on_loaded(state, id, &request, upload))
    };
    request.set_onload(Some(loaded.as_ref().unchecked_ref()));
    let broken = Closure::<dyn FnMut(ProgressEvent)>::new(move |_| {
        finish(
            state,
            id,
            Status::Failed("the connection failed or was cut: try again".into()),
        )
    });
    request.set_onerror(Some(broken.as_ref().unchecked_ref()));
    GOING.with(|g| {
        g.borrow_mut().insert(
            id,
            Going {
                request: request.clone(),
                _handlers: vec![progress, loaded, broken],
            },
        )
    });
    state.update(id, |t| t.status = Status::Running);
    let sent = match body {
        Some(file) => request.send_with_opt_blob(Some(file)),
        None => request.send(),
    };
    sent.map_err(failed)
}
