//! A running space's files, on its page: a directory listing with breadcrumbs, downloads of
//! files and of folders (as tar), uploads by picker and by drag-and-drop, each transfer with
//! its progress bar and a cancel button, and errors where they happen. Listing, new folders
//! and deleting go through server functions; bytes go through the JSON API with the
//! browser's transfer client (`transfer`), which reports progress both ways and can cancel.

#[cfg(feature = "hydrate")]
mod transfer;

use leptos::prelude::*;

use super::widgets::{last_error, ConfirmButton};
use crate::api::files::{
    delete_file, join_path, list_files, make_directory, DirListing, FileEntry, FileKind,
};
use crate::api::spaces::SpaceDto;
use crate::api::templates::Feature;
use crate::components::size::{bytes_text, Bytes};
use crate::components::time::RelativeTime;
use crate::error::ApiError;
use crate::ids::SpaceId;

/// How a transfer is doing.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Waiting,
    Running,
    Done,
    Failed(String),
    Cancelled,
}

impl Status {
    fn as_str(&self) -> &'static str {
        match self {
            Status::Waiting => "waiting",
            Status::Running => "running",
            Status::Done => "done",
            Status::Failed(_) => "failed",
            Status::Cancelled => "cancelled",
        }
    }

    fn is_over(&self) -> bool {
        matches!(self, Status::Done | Status::Failed(_) | Status::Cancelled)
    }
}

/// One upload or download, as the panel shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    pub id: u64,
    pub upload: bool,
    pub name: String,
    /// Where it goes (uploads) or comes from (downloads), in the space.
    pub path: String,
    pub loaded: f64,
    /// Unknown for a folder's tar, made as it streams.
    pub total: Option<f64>,
    pub status: Status,
}

/// What the panel keeps across the page's live redraws: where it is and what is moving.
#[derive(Clone, Copy)]
pub struct FilesState {
    pub space_id: RwSignal<Option<SpaceId>>,
    /// The directory shown (`None`: the space's first volume, or `/`).
    pub dir: RwSignal<Option<String>>,
    /// Moves whenever the listing must be fetched again.
    pub refresh: RwSignal<u64>,
    pub transfers: RwSignal<Vec<Transfer>>,
    pub next_id: StoredValue<u64>,
    /// The largest upload the server takes, from the last listing.
    pub max_upload: RwSignal<Option<u64>>,
}

impl FilesState {
    fn new() -> Self {
        Self {
            space_id: RwSignal::new(None),
            dir: RwSignal::new(None),
            refresh: RwSignal::new(0),
            transfers: RwSignal::new(Vec::new()),
            next_id: StoredValue::new(0),
            max_upload: RwSignal::new(None),
        }
    }
}

/// The directory above `dir`.
fn parent(dir: &str) -> String {
    match dir.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/".into(),
        Some((up, _)) => up.into(),
    }
}

/// Each step from `/` to `dir`: (name shown, path).
fn breadcrumbs(dir: &str) -> Vec<(String, String)> {
    let mut steps = vec![("/".to_owned(), "/".to_owned())];
    let mut path = String::new();
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        path.push('/');
        path.push_str(part);
        steps.push((part.to_owned(), path.clone()));
    }
    steps
}

/// `drwxr-xr-x`, as `ls -l` shows it.
fn mode_text(kind: FileKind, mode: u32) -> String {
    let first = match kind {
        FileKind::Dir => 'd',
        FileKind::Symlink => 'l',
        FileKind::File => '-',
        FileKind::Other => '?',
    };
    let mut text = String::from(first);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        text.push(if bits & 4 != 0 { 'r' } else { '-' });
        text.push(if bits & 2 != 0 { 'w' } else { '-' });
        text.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    text
}

/// The directory a space's files open at: its first volume, else `/`.
fn start_dir(space: &SpaceDto) -> String {
    space
        .volumes
        .first()
        .map(|v| v.mount_path.clone())
        .unwrap_or_else(|| "/".into())
}

/// The files section of a space's page. Drawn once the page is live (it needs the browser
/// to move anything, and a listing runs a program in the space: the page does not wait for
/// it), in a loading state of its own.
#[component]
pub fn FilesPanel(space: Resource<Result<SpaceDto, ApiError>>) -> impl IntoView {
    let state = FilesState::new();
    let mounted = crate::hydrated_signal();
    let loading = || view! { <section class="panel" data-testid="files-loading"><h2>"Files"</h2><p>"Loading…"</p></section> };
    view! {
        <Show when=move || mounted.get() fallback=loading>
        <Transition fallback=loading>
            {move || space.get().and_then(Result::ok).map(|space| {
                let note = if !space.features.contains(&Feature::FileTransfer) {
                    Some("File transfer is off for this space's template.")
                } else if !space.state.is_running() {
                    Some("Start the space to move files in and out.")
                } else {
                    None
                };
                match note {
                    Some(note) => view! {
                        <section class="panel" data-testid="files">
                            <h2>"Files"</h2>
                            <p class="empty">{note}</p>
                            <TransferList state />
                        </section>
                    }.into_any(),
                    None => {
                        state.space_id.set(Some(space.id.clone()));
                        let start = start_dir(&space);
                        view! { <FileBrowser space_id=space.id.clone() start state /> }.into_any()
                    }
                }
            })}
        </Transition>
        </Show>
    }
}

#[component]
fn FileBrowser(space_id: SpaceId, start: String, state: FilesState) -> impl IntoView {
    let dir = Memo::new(move |_| state.dir.get().unwrap_or_else(|| start.clone()));
    let listing = Resource::new(
        {
            let space_id = space_id.clone();
            move || (space_id.clone(), dir.get(), state.refresh.get())
        },
        |(id, path, _)| list_files(id, path),
    );
    let delete = Action::new({
        let space_id = space_id.clone();
        move |path: &String| {
            let (id, path) = (space_id.clone(), path.clone());
            async move { delete_file(id, path).await }
        }
    });
    let mkdir = Action::new({
        let space_id = space_id.clone();
        move |path: &String| {
            let (id, path) = (space_id.clone(), path.clone());
            async move { make_directory(id, path).await }
        }
    });
    for version in [delete.version(), mkdir.version()] {
        Effect::new(move |_| {
            if version.get() > 0 {
                state.refresh.update(|n| *n += 1);
            }
        });
    }
    let delete_error = last_error(delete);
    let mkdir_error = last_error(mkdir);
    let typed = RwSignal::new(String::new());
    let new_folder = RwSignal::new(String::new());
    let dragging = RwSignal::new(false);
    let go = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let path = typed.get_untracked().trim().to_owned();
        if path.starts_with('/') {
            state.dir.set(Some(path));
        }
    };
    let make = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let name = new_folder.get_untracked().trim().to_owned();
        if !name.is_empty() {
            mkdir.dispatch(join_path(&dir.get_untracked(), &name));
            new_folder.set(String::new());
        }
    };
    Effect::new(move |_| typed.set(dir.get()));
    let upload_id = space_id.clone();
    let picked = move |ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        transfer::upload_picked(state, upload_id.clone(), dir.get_untracked(), &ev);
        #[cfg(not(feature = "hydrate"))]
        let _ = (&ev, &upload_id);
    };
    let drop_id = space_id.clone();
    let dropped = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        dragging.set(false);
        #[cfg(feature = "hydrate")]
        if let Some(dropped) = ev.data_transfer() {
            transfer::upload_dropped(state, drop_id.clone(), dir.get_untracked(), &dropped);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &drop_id;
    };
    view! {
        <section class="panel files" data-testid="files" data-dir=move || dir.get()
            class:dragging=move || dragging.get()
            on:dragover=move |ev: leptos::ev::DragEvent| { ev.prevent_default(); dragging.set(true); }
            on:dragleave=move |_| dragging.set(false)
            on:drop=dropped>
            <div class="panel-head">
                <h2>"Files"</h2>
                <nav class="breadcrumbs" data-testid="files-breadcrumbs" aria-label="Folder">
                    {move || breadcrumbs(&dir.get()).into_iter().map(|(name, path)| view! {
                        <button type="button" class="link" on:click=move |_| state.dir.set(Some(path.clone()))>{name}</button>
                    }).collect_view()}
                </nav>
            </div>
            <div class="row files-tools">
                <form class="row" on:submit=go>
                    <input type="text" aria-label="Folder path" data-testid="files-path" bind:value=typed />
                    <button type="submit" class="secondary" data-testid="files-go">"Go"</button>
                </form>
                <form class="row" on:submit=make>
                    <input type="text" aria-label="New folder name" placeholder="new folder" data-testid="files-mkdir-name" bind:value=new_folder />
                    <button type="submit" class="secondary" data-testid="files-mkdir">"Create folder"</button>
                </form>
                <label class="button upload-picker">"Upload files…"
                    <input type="file" multiple data-testid="files-picker" on:change=picked />
                </label>
            </div>
            <p class="hint drop-hint" data-testid="files-drop">"Drop files anywhere here to upload them into " <code>{move || dir.get()}</code> "."</p>
            {move || delete_error().or_else(mkdir_error).map(|e| view! { <p class="error" role="alert" data-testid="files-error">{e.message}</p> })}
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || listing.get().map(|result| match result {
                    Err(e) => view! { <p class="error" role="alert" data-testid="files-error">{e.message}</p> }.into_any(),
                    Ok(listing) => {
                        state.max_upload.set(Some(listing.max_upload_bytes));
                        view! { <Listing listing space_id=space_id.clone() state delete /> }.into_any()
                    }
                })}
            </Transition>
            <TransferList state />
        </section>
    }
}

#[component]
fn Listing(
    listing: DirListing,
    space_id: SpaceId,
    state: FilesState,
    delete: Action<String, Result<(), ApiError>>,
) -> impl IntoView {
    let dir = listing.path.clone();
    let up = (dir != "/").then(|| {
        let above = parent(&dir);
        view! {
            <tr><td colspan="5"><button type="button" class="link" data-testid="files-up" on:click=move |_| state.dir.set(Some(above.clone()))>".. (up)"</button></td></tr>
        }
    });
    let empty = listing.entries.is_empty().then(|| {
        view! { <tr><td colspan="5" class="empty" data-testid="files-empty">"This folder is empty: drop files here or use Upload files…"</td></tr> }
    });
    let rows = listing
        .entries
        .into_iter()
        .map(|entry| view! { <EntryRow entry dir=dir.clone() space_id=space_id.clone() state delete /> })
        .collect_view();
    view! {
        {listing.truncated.then(|| view! { <p class="warn">{format!("Only the first {} entries are shown.", listing.max_entries)}</p> })}
        <table class="list files-list" data-testid="files-list">
            <thead><tr><th>"Name"</th><th>"Size"</th><th>"Modified"</th><th>"Mode"</th><th></th></tr></thead>
            <tbody>
                {up}
                {empty}
                {rows}
            </tbody>
        </table>
    }
}

#[component]
fn EntryRow(
    entry: FileEntry,
    dir: String,
    space_id: SpaceId,
    state: FilesState,
    delete: Action<String, Result<(), ApiError>>,
) -> impl IntoView {
    let path = join_path(&dir, &entry.name);
    let is_dir = entry.kind == FileKind::Dir || entry.leads_to_dir;
    let opens = path.clone();
    let name = if is_dir {
        view! { <button type="button" class="link" data-testid="file-open" on:click=move |_| state.dir.set(Some(opens.clone()))>{format!("{}/", entry.name)}</button> }.into_any()
    } else {
        view! { <span>{entry.name.clone()}</span> }.into_any()
    };
    let size = (entry.kind == FileKind::File).then(|| view! { <Bytes bytes=entry.size /> });
    let fetched = (path.clone(), entry.name.clone(), entry.size);
    let download = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let (path, name, size) = fetched.clone();
            transfer::download(
                state,
                space_id.clone(),
                path,
                name,
                is_dir,
                (!is_dir).then_some(size as f64),
            );
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (&fetched, &space_id);
    };
    let removed = path.clone();
    let question = if is_dir && entry.kind == FileKind::Dir {
        format!("Delete the folder {} and all it holds?", entry.name)
    } else {
        format!("Delete {}?", entry.name)
    };
    let can_download = matches!(entry.kind, FileKind::File | FileKind::Dir) || entry.leads_to_dir;
    view! {
        <tr data-testid="file-row" data-name=entry.name.clone() data-kind=format!("{:?}", entry.kind).to_lowercase()>
            <td>{name}</td>
            <td>{size}</td>
            <td><RelativeTime at=entry.modified.clone() /></td>
            <td><code>{mode_text(entry.kind, entry.mode)}</code></td>
            <td class="actions">
                {can_download.then(|| view! {
                    <button type="button" class="secondary" data-testid="file-download" on:click=download>
                        {if is_dir { "Download .tar" } else { "Download" }}
                    </button>
                })}
                <ConfirmButton label="Delete" question testid="file-delete"
                    on_confirm=Callback::new(move |_| { delete.dispatch(removed.clone()); }) />
            </td>
        </tr>
    }
}

/// Every upload and download of this page, with progress and a way to stop or dismiss it.
#[component]
fn TransferList(state: FilesState) -> impl IntoView {
    let dismiss_finished = move |_| {
        state
            .transfers
            .update(|list| list.retain(|t| !t.status.is_over()))
    };
    view! {
        <Show when=move || !state.transfers.with(Vec::is_empty)>
            <div class="transfers" data-testid="transfers">
                <div class="panel-head">
                    <h3>"Transfers"</h3>
                    <button type="button" class="link" on:click=dismiss_finished>"Clear finished"</button>
                </div>
                <For each=move || state.transfers.get() key=|t| (t.id, t.status.as_str(), t.loaded as u64) let:transfer>
                    <TransferRow transfer state />
                </For>
            </div>
        </Show>
    }
}

#[component]
fn TransferRow(transfer: Transfer, state: FilesState) -> impl IntoView {
    let percent = transfer
        .total
        .filter(|t| *t > 0.0)
        .map(|t| (transfer.loaded / t * 100.0).clamp(0.0, 100.0));
    let figures = match transfer.total {
        Some(total) => format!("{} of {}", bytes_text(transfer.loaded), bytes_text(total)),
        None => bytes_text(transfer.loaded),
    };
    let running = matches!(transfer.status, Status::Running | Status::Waiting);
    let id = transfer.id;
    let cancel = move |_| {
        #[cfg(feature = "hydrate")]
        transfer::cancel(state, id);
        #[cfg(not(feature = "hydrate"))]
        let _ = (id, state);
    };
    let bar_class = if percent.is_none() && running {
        "bar indeterminate"
    } else {
        "bar"
    };
    let width = match (percent, &transfer.status) {
        (_, Status::Done) => 100.0,
        (Some(p), _) => p,
        (None, _) => 0.0,
    };
    view! {
        <div class="transfer" data-testid="transfer" data-name=transfer.name.clone()
            data-status=transfer.status.as_str() data-direction=if transfer.upload { "up" } else { "down" }>
            <div class="quota-label">
                <span>{if transfer.upload { "↑ " } else { "↓ " }} {transfer.name.clone()}</span>
                <span class="quota-figures">{figures} " · " {transfer.status.as_str()}</span>
            </div>
            <div class=bar_class role="progressbar" aria-label=transfer.name.clone()
                aria-valuenow=percent.map(|p| format!("{p:.0}")) aria-valuemin="0" aria-valuemax="100">
                <div class="fill" style=format!("width:{width:.1}%")></div>
            </div>
            {match &transfer.status {
                Status::Failed(why) => Some(view! { <p class="error small" role="alert" data-testid="transfer-error">{why.clone()}</p> }),
                _ => None,
            }}
            {running.then(|| view! { <button type="button" class="secondary small" data-testid="transfer-cancel" on:click=cancel>"Cancel"</button> })}
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_step_up_and_split_into_breadcrumbs() {
        assert_eq!(parent("/home/dev"), "/home");
        assert_eq!(parent("/home"), "/");
        assert_eq!(parent("/"), "/");
        let steps: Vec<String> = breadcrumbs("/home/dev")
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        assert_eq!(steps, ["/", "/home", "/home/dev"]);
    }

    #[test]
    fn modes_read_like_ls() {
        assert_eq!(mode_text(FileKind::Dir, 0o755), "drwxr-xr-x");
        assert_eq!(mode_text(FileKind::File, 0o640), "-rw-r-----");
    }
}
