//! Admin: templates (create, edit, archive), their volumes, features and allowed groups.

use leptos::prelude::*;

use super::AdminOnly;
use crate::api::autostop::{Schedule, TemplateAutostop};
use crate::api::groups::{list_groups, GroupDto};
use crate::api::page::all_pages;
use crate::api::templates::{
    all_templates, create_template, update_template, CreateTemplate, Feature, TemplateDto,
    UpdateTemplate, VolumeSpec,
};
use crate::error::{ApiError, ErrorCode};
use crate::ids::TemplateId;
use crate::pages::widgets::{field_error, form_error, last_error};

#[component]
pub fn TemplatesPage() -> impl IntoView {
    view! { <AdminOnly page=|| view! { <Templates /> } /> }
}

#[component]
fn Templates() -> impl IntoView {
    let changed = RwSignal::new(0u64);
    let templates = Resource::new(move || changed.get(), |_| all_pages(all_templates));
    let groups = Resource::new(|| (), |_| all_pages(list_groups));
    view! {
        <section class="panel">
            <h1>"Templates"</h1>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || match (templates.get(), groups.get()) {
                    (Some(Ok(list)), Some(Ok(groups))) => view! {
                        <details class="dialog">
                            <summary data-testid="new-template">"New template"</summary>
                            <TemplateForm template=None groups=groups.clone() changed />
                        </details>
                        {list.is_empty().then(|| view! { <p class="empty">"No templates yet: create one so people can create spaces."</p> })}
                        <div class="rows" data-testid="templates">
                            {list.into_iter().map(|t| {
                                let groups = groups.clone();
                                view! {
                                    <article class="row-card" data-testid="template-row" data-template=t.name.clone()>
                                        <strong>{t.name.clone()}</strong> {t.archived.then(|| view! { <span class="warn">" (archived)"</span> })} " "
                                        <span class="meta">{format!("{} · {} CU · {} SU · shell {}", t.image, t.compute_units, t.storage_units, t.shell)}</span>
                                        <details><summary>"Edit"</summary>
                                            <TemplateForm template=Some(t.clone()) groups changed />
                                        </details>
                                    </article>
                                }
                            }).collect_view()}
                        </div>
                    }.into_any(),
                    (Some(Err(e)), _) | (_, Some(Err(e))) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                    _ => ().into_any(),
                }}
            </Transition>
        </section>
    }
}

/// A volume row of the editor, as typed.
#[derive(Clone, Default)]
struct VolumeRow {
    name: RwSignal<String>,
    mount_path: RwSignal<String>,
    size_gib: RwSignal<String>,
}

impl VolumeRow {
    fn from(v: &VolumeSpec) -> Self {
        Self {
            name: RwSignal::new(v.name.clone()),
            mount_path: RwSignal::new(v.mount_path.clone()),
            size_gib: RwSignal::new(v.size_gib.to_string()),
        }
    }

    fn read(&self) -> Result<VolumeSpec, ApiError> {
        let size = self.size_gib.get_untracked();
        let size_gib = size.trim().parse::<i64>().map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidInput,
                format!("volume size `{size}` is not a whole number of GiB"),
            )
            .with_field("volumes")
        })?;
        Ok(VolumeSpec {
            name: self.name.get_untracked().trim().to_owned(),
            mount_path: self.mount_path.get_untracked().trim().to_owned(),
            size_gib,
        })
    }
}

/// The automatic stops as typed in the form.
fn read_stops(
    idle: &str,
    max_run: &str,
    owners_may_change: bool,
    schedule: &str,
) -> Result<TemplateAutostop, ApiError> {
    let minutes = |text: &str, field: &str| -> Result<Option<i64>, ApiError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse::<i64>().map(Some).map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidInput,
                format!("`{text}` is not a whole number of minutes"),
            )
            .with_field(field)
        })
    };
    let default_schedule = Schedule::parse(schedule).map_err(|e| {
        ApiError::new(ErrorCode::InvalidInput, e).with_field("autostop.default_schedule")
    })?;
    Ok(TemplateAutostop {
        idle_stop_minutes: minutes(idle, "autostop.idle_stop_minutes")?,
        max_run_minutes: minutes(max_run, "autostop.max_run_minutes")?,
        owners_may_change,
        default_schedule: (!default_schedule.rules.is_empty()).then_some(default_schedule),
    })
}

#[component]
fn TemplateForm(
    template: Option<TemplateDto>,
    groups: Vec<GroupDto>,
    changed: RwSignal<u64>,
) -> impl IntoView {
    let t = template.clone();
    let name = RwSignal::new(t.as_ref().map(|t| t.name.clone()).unwrap_or_default());
    let description = RwSignal::new(
        t.as_ref()
            .map(|t| t.description.clone())
            .unwrap_or_default(),
    );
    let image = RwSignal::new(
        t.as_ref()
            .map(|t| t.image.clone())
            .unwrap_or_else(|| "hangar/default:bookworm".into()),
    );
    let shell = RwSignal::new(
        t.as_ref()
            .map(|t| t.shell.clone())
            .unwrap_or_else(|| "/bin/bash".into()),
    );
    let cu = RwSignal::new(
        t.as_ref()
            .map(|t| t.compute_units.to_string())
            .unwrap_or_else(|| "1".into()),
    );
    let volumes = RwSignal::new(
        t.as_ref()
            .map(|t| t.volumes.iter().map(VolumeRow::from).collect::<Vec<_>>())
            .unwrap_or_else(|| {
                vec![VolumeRow::from(&VolumeSpec {
                    name: "home".into(),
                    mount_path: "/home/dev".into(),
                    size_gib: 5,
                })]
            }),
    );
    let features = RwSignal::new(
        t.as_ref()
            .map(|t| t.features.clone())
            .unwrap_or_else(|| vec![Feature::Terminal]),
    );
    let allowed = RwSignal::new(
        t.as_ref()
            .map(|t| t.allowed_groups.clone())
            .unwrap_or_default(),
    );
    let archived = RwSignal::new(t.as_ref().is_some_and(|t| t.archived));
    let stops = t.as_ref().map(|t| t.autostop.clone()).unwrap_or_default();
    let minutes_text = |m: Option<i64>| m.map(|m| m.to_string()).unwrap_or_default();
    let idle_stop = RwSignal::new(minutes_text(stops.idle_stop_minutes));
    let max_run = RwSignal::new(minutes_text(stops.max_run_minutes));
    let owners_may_change = RwSignal::new(stops.owners_may_change);
    let default_schedule = RwSignal::new(
        stops
            .default_schedule
            .as_ref()
            .map(Schedule::describe)
            .unwrap_or_default(),
    );
    let privileged = RwSignal::new(t.as_ref().is_some_and(|t| t.privileged));
    let preset = t.as_ref().and_then(|t| t.repository.clone());
    let repo_url = RwSignal::new(preset.as_ref().map(|r| r.url.clone()).unwrap_or_default());
    let repo_branch = RwSignal::new(
        preset
            .as_ref()
            .and_then(|r| r.branch.clone())
            .unwrap_or_default(),
    );
    let repo_folder = RwSignal::new(preset.and_then(|r| r.folder).unwrap_or_default());
    let repo_prefixes = RwSignal::new(
        t.as_ref()
            .map(|t| t.repository_prefixes.join("\n"))
            .unwrap_or_default(),
    );
    let raw_sockets = RwSignal::new(t.as_ref().is_some_and(|t| t.raw_sockets));
    let devcontainer = RwSignal::new(t.as_ref().is_some_and(|t| t.devcontainer));
    let run_options = RwSignal::new(t.as_ref().is_some_and(|t| t.devcontainer_run_options));
    let derived_su = move || {
        volumes.with(|v| {
            v.iter()
                .map(|r| r.size_gib.with(|s| s.trim().parse::<i64>().unwrap_or(0)))
                .sum::<i64>()
        })
    };
    let existing = template.as_ref().map(|t| t.id.clone());
    let save = Action::new(
        |(id, create, update): &(
            Option<TemplateId>,
            Option<CreateTemplate>,
            Option<UpdateTemplate>,
        )| {
            let (id, create, update) = (id.clone(), create.clone(), update.clone());
            async move {
                match (id, create, update) {
                    (Some(id), _, Some(update)) => update_template(id, update).await,
                    (_, Some(create), _) => create_template(create).await,
                    _ => Err(ApiError::new(ErrorCode::Internal, "nothing to save")),
                }
            }
        },
    );
    let local_error = RwSignal::new(None::<ApiError>);
    let error = move || local_error.get().or_else(last_error(save));
    Effect::new(move |_| {
        if let Some(Ok(_)) = save.value().get() {
            changed.update(|n| *n += 1);
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let vols: Result<Vec<VolumeSpec>, ApiError> = volumes
            .get_untracked()
            .iter()
            .map(VolumeRow::read)
            .collect();
        let units = cu.get_untracked().trim().parse::<i64>().map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidInput,
                "compute units must be a whole number",
            )
            .with_field("compute_units")
        });
        let stops = read_stops(
            &idle_stop.get_untracked(),
            &max_run.get_untracked(),
            owners_may_change.get_untracked(),
            &default_schedule.get_untracked(),
        );
        let (vols, units, stops) = match (vols, units, stops) {
            (Ok(v), Ok(u), Ok(s)) => (v, u, s),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                local_error.set(Some(e));
                return;
            }
        };
        local_error.set(None);
        let description = description.get_untracked();
        let repository = crate::pages::repos::repository_input(
            &repo_url.get_untracked(),
            &repo_branch.get_untracked(),
            &repo_folder.get_untracked(),
        );
        let prefixes: Vec<String> = repo_prefixes
            .get_untracked()
            .lines()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        match existing.clone() {
            Some(id) => save.dispatch((
                Some(id),
                None,
                Some(UpdateTemplate {
                    name: Some(name.get_untracked().trim().to_owned()),
                    description: Some(description),
                    image: Some(image.get_untracked().trim().to_owned()),
                    shell: Some(shell.get_untracked().trim().to_owned()),
                    compute_units: Some(units),
                    volumes: Some(vols),
                    features: Some(features.get_untracked()),
                    allowed_groups: Some(allowed.get_untracked()),
                    archived: Some(archived.get_untracked()),
                    privileged: Some(privileged.get_untracked()),
                    raw_sockets: Some(raw_sockets.get_untracked()),
                    autostop: Some(stops),
                    repository: Some(repository),
                    repository_prefixes: Some(prefixes),
                    devcontainer: Some(devcontainer.get_untracked()),
                    devcontainer_run_options: Some(run_options.get_untracked()),
                    ..Default::default()
                }),
            )),
            None => save.dispatch((
                None,
                Some(CreateTemplate {
                    name: name.get_untracked().trim().to_owned(),
                    description: Some(description),
                    image: image.get_untracked().trim().to_owned(),
                    command: None,
                    shell: Some(shell.get_untracked().trim().to_owned()),
                    env: Default::default(),
                    compute_units: units,
                    volumes: vols,
                    features: Some(features.get_untracked()),
                    ports: Vec::new(),
                    allowed_groups: allowed.get_untracked(),
                    privileged: privileged.get_untracked(),
                    raw_sockets: raw_sockets.get_untracked(),
                    autostop: Some(stops),
                    repository,
                    repository_prefixes: prefixes,
                    devcontainer: devcontainer.get_untracked(),
                    devcontainer_run_options: run_options.get_untracked(),
                }),
                None,
            )),
        };
    };
    let is_edit = template.is_some();
    view! {
        <form class="stack edit" on:submit=submit data-testid="template-form">
            <div class="row">
                <label>"Name" <input type="text" bind:value=name required=true />{field_error(error, "name")}</label>
                <label>"Image" <input type="text" bind:value=image required=true />{field_error(error, "image")}</label>
                <label>"Shell" <input type="text" bind:value=shell />{field_error(error, "shell")}</label>
                <label>"Compute units" <input type="text" inputmode="numeric" bind:value=cu />{field_error(error, "compute_units")}</label>
            </div>
            <label>"Description" <input type="text" bind:value=description />{field_error(error, "description")}</label>
            <fieldset>
                <legend>"Volumes (storage units = total GiB: " {derived_su} " SU)"</legend>
                {move || volumes.get().into_iter().enumerate().map(|(i, row)| view! {
                    <div class="row">
                        <label>"Name" <input type="text" bind:value=row.name /></label>
                        <label>"Mount path" <input type="text" bind:value=row.mount_path /></label>
                        <label>"Size (GiB)" <input type="text" inputmode="numeric" bind:value=row.size_gib /></label>
                        <button type="button" class="secondary" on:click=move |_| volumes.update(|v| { v.remove(i); })>"Remove"</button>
                    </div>
                }).collect_view()}
                <button type="button" class="secondary" on:click=move |_| volumes.update(|v| v.push(VolumeRow::default()))>"Add a volume"</button>
                {field_error(error, "volumes")}
            </fieldset>
            <fieldset class="row">
                <legend>"Features"</legend>
                {Feature::ALL.into_iter().map(|feature| view! {
                    <label class="check"><input type="checkbox" prop:checked=move || features.with(|f| f.contains(&feature))
                        on:change=move |ev| features.update(|f| {
                            f.retain(|x| *x != feature);
                            if event_target_checked(&ev) { f.push(feature); }
                        }) />{feature.label()}</label>
                }).collect_view()}
                {field_error(error, "features")}
            </fieldset>
            <fieldset class="row">
                <legend>"Allowed groups (none ticked: everyone)"</legend>
                {groups.into_iter().map(|g| {
                    let id = g.id.clone();
                    let checked = g.id.clone();
                    view! {
                        <label class="check"><input type="checkbox" prop:checked=move || allowed.with(|a| a.contains(&checked))
                            on:change=move |ev| allowed.update(|a| {
                                a.retain(|x| *x != id);
                                if event_target_checked(&ev) { a.push(id.clone()); }
                            }) />{g.name.clone()}</label>
                    }
                }).collect_view()}
                {field_error(error, "allowed_groups")}
            </fieldset>
            <fieldset class="row">
                <legend>"Automatic stops (apply to its existing spaces too)"</legend>
                <label>"Idle stop (minutes, empty: never)" <input type="text" inputmode="numeric" data-testid="template-idle-stop" bind:value=idle_stop />{field_error(error, "autostop.idle_stop_minutes")}</label>
                <label>"Longest run (minutes, empty: never)" <input type="text" inputmode="numeric" data-testid="template-max-run" bind:value=max_run />{field_error(error, "autostop.max_run_minutes")}</label>
                <label class="check"><input type="checkbox" bind:checked=owners_may_change />" Owners may choose shorter stops"</label>
                <label><span>"Default schedule (e.g. " <code>"mon-fri 08:00-18:00"</code> ", in each owner's time zone)"</span> <input type="text" bind:value=default_schedule />{field_error(error, "autostop.default_schedule")}</label>
            </fieldset>
            <fieldset class="row">
                <legend>"Repository (new spaces clone it at their first start unless their creator names another)"</legend>
                <label>"URL (empty: none)" <input type="text" data-testid="template-repo-url" bind:value=repo_url placeholder="https://github.com/team/project.git" />{field_error(error, "repository.url")}</label>
                <label>"Branch (empty: the default)" <input type="text" bind:value=repo_branch />{field_error(error, "repository.branch")}</label>
                <label>"Folder in the home (empty: the repository's name)" <input type="text" bind:value=repo_folder />{field_error(error, "repository.folder")}</label>
                <label>"Allowed URL prefixes, one a line (empty: any)" <textarea rows="2" data-testid="template-repo-prefixes" bind:value=repo_prefixes></textarea>{field_error(error, "repository_prefixes")}</label>
                <label class="check"><input type="checkbox" data-testid="template-devcontainer" bind:checked=devcontainer />
                    " Build spaces from the repository's " <code>"devcontainer.json"</code> " (its image or Dockerfile, lifecycle commands, ports; compute, volumes and rights stay this template's)"</label>
                <label class="check"><input type="checkbox" data-testid="template-devcontainer-run-options" bind:checked=run_options />
                    " Let " <code>"devcontainer.json"</code> " set run options: " <code>"privileged"</code> " (Docker-in-Docker rights), " <code>"capAdd"</code> ", tmpfs " <code>"mounts"</code> " and " <code>"runArgs"</code> " of those kinds (never the host's files, devices or network; new spaces only)"</label>
            </fieldset>
            <label class="check"><input type="checkbox" data-testid="template-privileged" bind:checked=privileged />
                " Docker-in-Docker rights (more capabilities, no seccomp profile, setuid works: for templates that run a Docker engine or need sudo as a non-root user)"</label>
            <label class="check"><input type="checkbox" data-testid="template-raw-sockets" bind:checked=raw_sockets />
                " Raw sockets (packet capture, crafted packets: for network tools; ping works without)"</label>
            {is_edit.then(|| view! { <label class="check"><input type="checkbox" bind:checked=archived /> "Archived (no new spaces; existing ones keep working)"</label> })}
            {form_error(error, &["name", "image", "shell", "compute_units", "description", "volumes", "features", "allowed_groups", "autostop.idle_stop_minutes", "autostop.max_run_minutes", "autostop.default_schedule", "repository.url", "repository.branch", "repository.folder", "repository_prefixes"])}
            {move || matches!(save.value().get(), Some(Ok(_))).then(|| view! { <p class="ok" role="status">"Saved."</p> })}
            <button type="submit" class="primary" disabled=move || save.pending().get()>{if is_edit { "Save template" } else { "Create template" }}</button>
        </form>
    }
}
