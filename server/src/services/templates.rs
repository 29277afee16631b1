//! Templates: validation, who may use which, and archiving instead of deleting.

use std::collections::{BTreeMap, BTreeSet};

use app::api::repos::RepositoryInput;
use app::api::templates::{
    ssr::TemplatesApi, CreateTemplate, Feature, TemplateDto, TemplateListQuery, UpdateTemplate,
    VolumeSpec,
};
use app::ids::{GroupId, TemplateId, UserId};
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, Set,
};
use serde_json::json;

use super::access::Caller;
use super::audit::{record, Outcome};
use super::paging::Keyset;
use super::{conflict_on_duplicate, from_json, new_id, to_json, Services};
use crate::entities::{group, space, template};
use crate::error::{ApiError, ApiResult};

/// Everything a template says, validated.
struct TemplateFields {
    name: String,
    description: String,
    image: String,
    command: Option<Vec<String>>,
    shell: String,
    env: BTreeMap<String, String>,
    compute_units: i64,
    volumes: Vec<VolumeSpec>,
    features: Vec<Feature>,
    ports: Vec<u16>,
    allowed_groups: Vec<GroupId>,
    privileged: bool,
    raw_sockets: bool,
}

fn storage_units(volumes: &[VolumeSpec]) -> i64 {
    volumes.iter().map(|v| v.size_gib).sum()
}

/// Longest template description.
const MAX_DESCRIPTION: usize = 1000;

fn validate(fields: &mut TemplateFields) -> ApiResult<()> {
    use crate::validate::{at_most, at_most_items, within};
    use app::api::schema::{ENV_MAX, ENV_NAME_MAX, ENV_VALUE_MAX};
    fields.name = crate::validate::name("name", &fields.name, 64)?.to_owned();
    at_most("description", &fields.description, MAX_DESCRIPTION)?;
    let image = fields.image.trim_ascii();
    if image.is_empty()
        || image.chars().count() > 255
        || !image.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(ApiError::invalid(
            "image",
            "give a Docker image reference such as `hangar/default:bookworm` (printable ASCII \
             without spaces, at most 255 characters)",
        ));
    }
    fields.image = image.to_owned();
    at_most("shell", &fields.shell, 255)?;
    if !fields.shell.starts_with('/') {
        return Err(ApiError::invalid(
            "shell",
            "the shell is an absolute path, such as /bin/bash",
        ));
    }
    if let Some(command) = &fields.command {
        if command.is_empty() || command.len() > 64 {
            return Err(ApiError::invalid(
                "command",
                "the command is a list of 1 to 64 words, or null for the default",
            ));
        }
        for word in command {
            at_most("command", word, 4096)?;
        }
    }
    within("compute_units", fields.compute_units, 0, 1024)?;
    if fields.env.len() > ENV_MAX {
        return Err(ApiError::invalid(
            "env",
            format!("env has at most {ENV_MAX} variables"),
        ));
    }
    for (key, value) in &fields.env {
        let valid = !key.is_empty()
            && key.chars().count() <= ENV_NAME_MAX
            && !key.starts_with(|c: char| c.is_ascii_digit())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(ApiError::invalid(
                "env",
                format!(
                    "`{key}` is not a valid environment variable name (letters, digits and `_`, \
                     not starting with a digit, at most {ENV_NAME_MAX} characters)"
                ),
            ));
        }
        if value.chars().count() > ENV_VALUE_MAX {
            return Err(ApiError::invalid(
                "env",
                format!("the value of `{key}` is too long: at most {ENV_VALUE_MAX} characters"),
            ));
        }
    }
    at_most_items("volumes", &fields.volumes, 16)?;
    at_most_items("features", &fields.features, 8)?;
    at_most_items("ports", &fields.ports, 64)?;
    at_most_items("allowed_groups", &fields.allowed_groups, 100)?;
    let mut names = BTreeSet::new();
    let mut paths = BTreeSet::new();
    for volume in &fields.volumes {
        crate::validate::username(&volume.name)
            .map_err(|e| ApiError::invalid("volumes", format!("volume name: {e}")))?;
        if !volume.mount_path.starts_with('/')
            || volume.mount_path == "/"
            || volume.mount_path.contains("..")
            || volume.mount_path.chars().count() > 255
        {
            return Err(ApiError::invalid(
                "volumes",
                format!(
                    "volume `{}`: mount_path must be an absolute path below /, without `..`, \
                     of at most 255 characters",
                    volume.name
                ),
            ));
        }
        if !(1..=10_000).contains(&volume.size_gib) {
            return Err(ApiError::invalid(
                "volumes",
                format!(
                    "volume `{}`: size_gib is a whole number from 1 to 10000",
                    volume.name
                ),
            ));
        }
        if !names.insert(volume.name.clone()) || !paths.insert(volume.mount_path.clone()) {
            return Err(ApiError::invalid(
                "volumes",
                format!(
                    "volume `{}`: names and mount paths must be unique",
                    volume.name
                ),
            ));
        }
    }
    if fields.ports.contains(&0) {
        return Err(ApiError::invalid(
            "ports",
            "ports are numbers from 1 to 65535",
        ));
    }
    fields.features.sort();
    fields.features.dedup();
    fields.ports.sort_unstable();
    fields.ports.dedup();
    fields.allowed_groups.sort();
    fields.allowed_groups.dedup();
    Ok(())
}

pub fn to_dto(t: template::Model) -> ApiResult<TemplateDto> {
    Ok(TemplateDto {
        command: t
            .command
            .as_deref()
            .map(|c| from_json(c, "template command"))
            .transpose()?,
        env: from_json(&t.env, "template env")?,
        volumes: from_json(&t.volumes, "template volumes")?,
        features: from_json(&t.features, "template features")?,
        ports: from_json(&t.ports, "template ports")?,
        allowed_groups: from_json(&t.allowed_groups, "template groups")?,
        id: t.id,
        name: t.name,
        description: t.description,
        image: t.image,
        shell: t.shell,
        compute_units: t.compute_units,
        storage_units: t.storage_units,
        archived: t.archived,
        privileged: t.privileged,
        raw_sockets: t.raw_sockets,
        version: t.version,
        created_at: t.created_at.into(),
        updated_at: t.updated_at.into(),
        autostop: app::api::autostop::TemplateAutostop {
            idle_stop_minutes: t.idle_stop_minutes,
            max_run_minutes: t.max_run_minutes,
            owners_may_change: t.owners_may_change_stops,
            default_schedule: t
                .default_schedule
                .as_deref()
                .map(|s| from_json(s, "template schedule"))
                .transpose()?,
        },
        repository: t
            .repository
            .as_deref()
            .map(|r| from_json(r, "template repository"))
            .transpose()?,
        repository_prefixes: t
            .repository_prefixes
            .as_deref()
            .map(|p| from_json(p, "template repository prefixes"))
            .transpose()?
            .unwrap_or_default(),
        devcontainer: t.devcontainer,
        devcontainer_run_options: t.devcontainer_run_options,
    })
}

/// Longest allowed prefix and most of them.
const PREFIX_MAX: usize = 500;
const PREFIXES_MAX: usize = 20;

/// A template's preset repository and allowed prefixes as columns, checked: the preset is a
/// repository its own prefixes allow.
fn set_repository(
    model: &mut template::ActiveModel,
    repository: Option<&RepositoryInput>,
    prefixes: &[String],
) -> ApiResult<()> {
    crate::validate::at_most_items("repository_prefixes", prefixes, PREFIXES_MAX)?;
    let mut kept: Vec<String> = Vec::new();
    for prefix in prefixes.iter().map(|p| p.trim()) {
        if prefix.is_empty()
            || prefix.chars().count() > PREFIX_MAX
            || prefix.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ApiError::invalid(
                "repository_prefixes",
                format!("each allowed prefix has 1 to {PREFIX_MAX} characters without blanks, such as https://github.com/my-team/"),
            ));
        }
        if !kept.iter().any(|k| k == prefix) {
            kept.push(prefix.to_owned());
        }
    }
    let preset = repository
        .map(|r| {
            let checked = crate::services::spaces::setup::check_repository(r, &kept)?;
            // The folder stays unset when it is the repository's default.
            let folder = r
                .folder
                .as_deref()
                .filter(|f| !f.trim().is_empty())
                .map(|_| checked.folder.clone());
            Ok::<_, ApiError>(RepositoryInput {
                url: checked.url,
                branch: checked.branch,
                folder,
            })
        })
        .transpose()?;
    model.repository = Set(preset.as_ref().map(to_json).transpose()?);
    model.repository_prefixes = Set((!kept.is_empty()).then(|| to_json(&kept)).transpose()?);
    Ok(())
}

/// A template's automatic stops as columns.
fn set_autostop(
    model: &mut template::ActiveModel,
    autostop: &app::api::autostop::TemplateAutostop,
) -> ApiResult<()> {
    super::spaces::autostop::check_template_autostop(autostop)?;
    model.idle_stop_minutes = Set(autostop.idle_stop_minutes);
    model.max_run_minutes = Set(autostop.max_run_minutes);
    model.owners_may_change_stops = Set(autostop.owners_may_change);
    model.default_schedule = Set(autostop
        .default_schedule
        .as_ref()
        .filter(|s| !s.rules.is_empty())
        .map(to_json)
        .transpose()?);
    Ok(())
}

impl Services {
    async fn check_groups_exist(&self, ids: &[GroupId]) -> ApiResult<()> {
        let found = group::Entity::find()
            .filter(group::Column::Id.is_in(ids.to_vec()))
            .count(&self.db)
            .await?;
        if found as usize != ids.len() {
            return Err(ApiError::invalid(
                "allowed_groups",
                "allowed_groups names a group id that does not exist",
            ));
        }
        Ok(())
    }

    /// Whether `user_id` may create spaces from `template` (admins always may).
    pub async fn may_use_template(
        &self,
        caller_is_admin: bool,
        user_id: &UserId,
        template: &TemplateDto,
    ) -> ApiResult<bool> {
        if caller_is_admin || template.allowed_groups.is_empty() {
            return Ok(true);
        }
        let groups = self.group_ids_of(user_id).await?;
        Ok(template.allowed_groups.iter().any(|g| groups.contains(g)))
    }
}

#[async_trait::async_trait]
impl TemplatesApi for Services {
    /// The templates the caller may use (admins: all, archived included); `usable`: only
    /// those the caller may create a space from now (never archived ones, admins included).
    async fn list_templates(
        &self,
        caller: &Caller,
        query: TemplateListQuery,
    ) -> ApiResult<Vec<TemplateDto>> {
        let by_name = Keyset::new([template::Column::Name]);
        let (limit, mut after) = by_name
            .start(&self.db, template::Entity::find(), &query.page())
            .await?;
        let everything = caller.is_admin() && !query.usable;
        let groups = if everything || caller.is_admin() {
            Vec::new()
        } else {
            self.group_ids_of(caller.id()).await?
        };
        // Read on by name until the page is full of what the caller may see.
        let mut visible = Vec::new();
        loop {
            let batch = by_name
                .after(template::Entity::find(), after.take().as_ref())
                .limit(limit)
                .all(&self.db)
                .await?;
            let exhausted = (batch.len() as u64) < limit;
            for t in batch {
                after = Some(by_name.key_of(&t));
                let dto = to_dto(t)?;
                let shown = everything
                    || (!dto.archived
                        && (caller.is_admin()
                            || dto.allowed_groups.is_empty()
                            || dto.allowed_groups.iter().any(|g| groups.contains(g))));
                if shown {
                    visible.push(dto);
                    if visible.len() as u64 == limit {
                        return Ok(visible);
                    }
                }
            }
            if exhausted {
                return Ok(visible);
            }
        }
    }

    /// A template the caller may use; others are 404.
    async fn get_template(&self, caller: &Caller, id: &TemplateId) -> ApiResult<TemplateDto> {
        let t = template::Entity::find_by_id(id.clone())
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found("template"))?;
        let dto = to_dto(t)?;
        if caller.is_admin()
            || (!dto.archived && self.may_use_template(false, caller.id(), &dto).await?)
        {
            Ok(dto)
        } else {
            Err(ApiError::not_found("template"))
        }
    }

    async fn create_template(
        &self,
        caller: &Caller,
        input: CreateTemplate,
    ) -> ApiResult<TemplateDto> {
        caller.require_admin()?;
        let input_autostop = input.autostop.clone().unwrap_or_default();
        let mut fields = TemplateFields {
            name: input.name,
            description: input.description.unwrap_or_default(),
            image: input.image,
            command: input.command,
            shell: input.shell.unwrap_or_else(|| "/bin/sh".into()),
            env: input.env,
            compute_units: input.compute_units,
            volumes: input.volumes,
            features: input.features.unwrap_or_else(|| vec![Feature::Terminal]),
            ports: input.ports,
            allowed_groups: input.allowed_groups,
            privileged: input.privileged,
            raw_sockets: input.raw_sockets,
        };
        validate(&mut fields)?;
        self.check_groups_exist(&fields.allowed_groups).await?;
        let now = Utc::now();
        let name = fields.name.clone();
        let mut model = template::ActiveModel {
            id: Set(new_id()),
            name: Set(fields.name),
            description: Set(fields.description),
            image: Set(fields.image),
            command: Set(fields.command.as_ref().map(to_json).transpose()?),
            shell: Set(fields.shell),
            env: Set(to_json(&fields.env)?),
            compute_units: Set(fields.compute_units),
            storage_units: Set(storage_units(&fields.volumes)),
            volumes: Set(to_json(&fields.volumes)?),
            features: Set(to_json(&fields.features)?),
            ports: Set(to_json(&fields.ports)?),
            allowed_groups: Set(to_json(&fields.allowed_groups)?),
            archived: Set(false),
            privileged: Set(fields.privileged),
            raw_sockets: Set(fields.raw_sockets),
            devcontainer: Set(input.devcontainer),
            devcontainer_run_options: Set(input.devcontainer_run_options),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        set_autostop(&mut model, &input_autostop)?;
        set_repository(
            &mut model,
            input.repository.as_ref(),
            &input.repository_prefixes,
        )?;
        let created = model.insert(&self.db).await.map_err(|e| {
            conflict_on_duplicate(e, || format!("a template named `{name}` exists already"))
        })?;
        record(
            &self.db,
            Some(caller),
            "template.create",
            &format!("template:{name}"),
            Outcome::Success,
            json!({"image": created.image, "privileged": created.privileged,
                   "raw_sockets": created.raw_sockets,
                   "devcontainer_run_options": created.devcontainer_run_options}),
        )
        .await;
        to_dto(created)
    }

    async fn update_template(
        &self,
        caller: &Caller,
        id: &TemplateId,
        input: UpdateTemplate,
    ) -> ApiResult<TemplateDto> {
        caller.require_admin()?;
        let existing = template::Entity::find_by_id(id.clone())
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found("template"))?;
        let current = to_dto(existing.clone())?;
        let mut fields = TemplateFields {
            name: input.name.unwrap_or(current.name),
            description: input.description.unwrap_or(current.description),
            image: input.image.unwrap_or(current.image),
            command: input.command.unwrap_or(current.command),
            shell: input.shell.unwrap_or(current.shell),
            env: input.env.unwrap_or(current.env),
            compute_units: input.compute_units.unwrap_or(current.compute_units),
            volumes: input.volumes.unwrap_or(current.volumes),
            features: input.features.unwrap_or(current.features),
            ports: input.ports.unwrap_or(current.ports),
            allowed_groups: input.allowed_groups.unwrap_or(current.allowed_groups),
            privileged: input.privileged.unwrap_or(current.privileged),
            raw_sockets: input.raw_sockets.unwrap_or(current.raw_sockets),
        };
        validate(&mut fields)?;
        self.check_groups_exist(&fields.allowed_groups).await?;
        let mut model: template::ActiveModel = existing.clone().into();
        model.name = Set(fields.name);
        model.description = Set(fields.description);
        model.image = Set(fields.image);
        model.command = Set(fields.command.as_ref().map(to_json).transpose()?);
        model.shell = Set(fields.shell);
        model.env = Set(to_json(&fields.env)?);
        model.compute_units = Set(fields.compute_units);
        model.storage_units = Set(storage_units(&fields.volumes));
        model.volumes = Set(to_json(&fields.volumes)?);
        model.features = Set(to_json(&fields.features)?);
        model.ports = Set(to_json(&fields.ports)?);
        model.allowed_groups = Set(to_json(&fields.allowed_groups)?);
        model.privileged = Set(fields.privileged);
        model.raw_sockets = Set(fields.raw_sockets);
        if let Some(archived) = input.archived {
            model.archived = Set(archived);
        }
        if let Some(devcontainer) = input.devcontainer {
            model.devcontainer = Set(devcontainer);
        }
        if let Some(run_options) = input.devcontainer_run_options {
            model.devcontainer_run_options = Set(run_options);
        }
        if let Some(autostop) = &input.autostop {
            set_autostop(&mut model, autostop)?;
        }
        if input.repository.is_some() || input.repository_prefixes.is_some() {
            let repository = input.repository.clone().unwrap_or(current.repository);
            let prefixes = input
                .repository_prefixes
                .clone()
                .unwrap_or(current.repository_prefixes);
            set_repository(&mut model, repository.as_ref(), &prefixes)?;
        }
        model.version = Set(existing.version + 1);
        model.updated_at = Set(Utc::now());
        let updated = model.update(&self.db).await.map_err(|e| {
            conflict_on_duplicate(e, || "a template with that name exists already".into())
        })?;
        record(
            &self.db,
            Some(caller),
            "template.update",
            &format!("template:{}", updated.name),
            Outcome::Success,
            json!({"version": updated.version, "privileged": updated.privileged,
                   "raw_sockets": updated.raw_sockets,
                   "devcontainer_run_options": updated.devcontainer_run_options}),
        )
        .await;
        to_dto(updated)
    }

    /// Deletes a template no live space uses; one that has spaces is archived instead (its
    /// spaces keep their snapshot). Returns the archived template, or `None` when deleted.
    async fn delete_template(
        &self,
        caller: &Caller,
        id: &TemplateId,
    ) -> ApiResult<Option<TemplateDto>> {
        caller.require_admin()?;
        let existing = template::Entity::find_by_id(id.clone())
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found("template"))?;
        let in_use = space::Entity::find()
            .filter(space::Column::TemplateId.eq(id.clone()))
            .filter(space::is_live())
            .count(&self.db)
            .await?;
        let target = format!("template:{}", existing.name);
        if in_use > 0 {
            let mut model: template::ActiveModel = existing.into();
            model.archived = Set(true);
            model.updated_at = Set(Utc::now());
            let archived = model.update(&self.db).await?;
            record(
                &self.db,
                Some(caller),
                "template.archive",
                &target,
                Outcome::Success,
                json!({"spaces": in_use}),
            )
            .await;
            return Ok(Some(to_dto(archived)?));
        }
        template::Entity::delete_by_id(id.clone())
            .exec(&self.db)
            .await?;
        record(
            &self.db,
            Some(caller),
            "template.delete",
            &target,
            Outcome::Success,
            json!({}),
        )
        .await;
        Ok(None)
    }
}
