//! `/api/v1/spaces/{id}/files`: file transfer handlers. They stream bodies to and from the
//! file service (which holds every rule) and set the headers of a download.

use app::api::autostop::ActivityKind;
use app::api::files::ssr::{ByteStream, Download, FilesApi, Upload};
use app::api::files::{DirListing, FilesQuery, UploadDone};
use app::error::ErrorBody;
use app::ids::SpaceId;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::TryStreamExt;

use super::extract::ValidQuery;
use crate::error::ApiResult;
use crate::services::access::Caller;
use crate::services::activity::Touch;
use crate::services::Services;

/// `attachment` with the name both as plain ASCII (for old clients) and as UTF-8 (RFC 6266).
fn content_disposition(name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

fn streamed(download: Download, mut activity: Touch) -> Response {
    // Each part sent is the space's activity (a long download keeps it running).
    let body = download.body.inspect_ok(move |_| activity.touch());
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(download.content_type),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        content_disposition(&download.file_name),
    );
    if let Some(length) = download.length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn upload_of(headers: &HeaderMap, body: Body, mut activity: Touch) -> Upload {
    // Each part taken in is the space's activity; it is read only once access was granted.
    let body: ByteStream = Box::pin(
        body.into_data_stream()
            .map_err(std::io::Error::other)
            .inspect_ok(move |_| activity.touch()),
    );
    Upload {
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        length: headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()),
        body,
    }
}

/// A file's bytes; with `format=tar` a tar archive of a file or directory; with `list` a
/// directory's entries. Streamed: a download starts before the whole file is read.
#[utoipa::path(get, path = "/api/v1/spaces/{id}/files", tag = "files",
    params(("id" = String, Path, description = "the space id"), FilesQuery),
    responses(
        (status = 200, description = "a file (with Content-Length and Content-Disposition), a tar archive with `format=tar`, or with `list` the directory's entries", content(
            ("application/octet-stream"), ("application/x-tar"), (DirListing = "application/json"))),
        (status = 400, description = "bad path, or a directory without `format=tar` or `list`", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "the `file_transfer` permission is missing (the template's feature, or an admin's rule)", body = ErrorBody),
        (status = 404, description = "no such space (or not yours to see), or nothing at the path", body = ErrorBody),
        (status = 409, description = "the space is not running", body = ErrorBody),
        (status = 429, description = "too many transfers at once", body = ErrorBody)))]
pub async fn get_files(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
    ValidQuery(query): ValidQuery<FilesQuery>,
) -> ApiResult<Response> {
    if query.list {
        let listing = services.list_files(&caller, &id, &query.path).await?;
        return Ok(Json(listing).into_response());
    }
    let download = services
        .download(&caller, &id, &query.path, query.format)
        .await?;
    Ok(streamed(
        download,
        services.activity.toucher(&id, ActivityKind::Files),
    ))
}

/// Writes the body as the file at `path` (replacing one that is there only once the new one
/// is whole); `create=true` makes its directory. Without Content-Length it streams all the
/// same, checked against the limit as it comes.
#[utoipa::path(put, path = "/api/v1/spaces/{id}/files", tag = "files",
    params(("id" = String, Path, description = "the space id"), FilesQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the file's bytes"),
    responses(
        (status = 201, body = UploadDone),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "the `file_transfer` permission is missing (the template's feature, or an admin's rule)", body = ErrorBody),
        (status = 404, description = "no such space, or no such directory (add `create=true`)", body = ErrorBody),
        (status = 409, description = "the space is not running, or a directory is at the path", body = ErrorBody),
        (status = 413, description = "over `--max-upload-mib`", body = ErrorBody),
        (status = 429, description = "too many transfers at once", body = ErrorBody),
        (status = 507, description = "not enough free space where it goes; nothing was kept", body = ErrorBody)))]
pub async fn put_file(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
    ValidQuery(query): ValidQuery<FilesQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<UploadDone>)> {
    let done = services
        .put_file(
            &caller,
            &id,
            &query.path,
            query.create,
            upload_of(
                &headers,
                body,
                services.activity.toucher(&id, ActivityKind::Files),
            ),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(done)))
}

/// Unpacks a tar archive (`application/x-tar`), or writes the files of a multipart form
/// (`multipart/form-data`), into the directory `path`, all or nothing; `create=true` makes
/// the directory (with an empty body, that is all it does). Archive entries must stay inside
/// the directory: absolute names, `..`, devices and links leading out are refused.
#[utoipa::path(post, path = "/api/v1/spaces/{id}/files", tag = "files",
    params(("id" = String, Path, description = "the space id"), FilesQuery),
    request_body(description = "a tar archive, or a multipart form of files", content(("application/x-tar"), (app::api::files::UploadForm = "multipart/form-data"))),
    responses(
        (status = 201, body = UploadDone),
        (status = 400, description = "bad path, a refused archive entry, or an unreadable body", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "the `file_transfer` permission is missing (the template's feature, or an admin's rule)", body = ErrorBody),
        (status = 404, description = "no such space, or no such directory (add `create=true`)", body = ErrorBody),
        (status = 409, description = "the space is not running", body = ErrorBody),
        (status = 413, description = "over `--max-upload-mib`", body = ErrorBody),
        (status = 429, description = "too many transfers at once", body = ErrorBody),
        (status = 507, description = "not enough free space where it goes; nothing was kept", body = ErrorBody)))]
pub async fn post_files(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
    ValidQuery(query): ValidQuery<FilesQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<UploadDone>)> {
    let done = services
        .post_files(
            &caller,
            &id,
            &query.path,
            query.create,
            upload_of(
                &headers,
                body,
                services.activity.toucher(&id, ActivityKind::Files),
            ),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(done)))
}

/// Deletes the file or directory (with what it holds) at `path`; a link itself, never what
/// it leads to.
#[utoipa::path(delete, path = "/api/v1/spaces/{id}/files", tag = "files",
    params(("id" = String, Path, description = "the space id"), FilesQuery),
    responses(
        (status = 204, description = "deleted"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "the `file_transfer` permission is missing (the template's feature, or an admin's rule)", body = ErrorBody),
        (status = 404, description = "no such space, or nothing at the path", body = ErrorBody),
        (status = 409, description = "the space is not running, or the path could not be removed", body = ErrorBody)))]
pub async fn delete_file(
    State(services): State<Services>,
    caller: Caller,
    Path(id): Path<SpaceId>,
    ValidQuery(query): ValidQuery<FilesQuery>,
) -> ApiResult<StatusCode> {
    services.delete_path(&caller, &id, &query.path).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_survive_quotes_and_unicode() {
        let value = content_disposition("ré\"sumé.txt");
        assert_eq!(
            value.to_str().ok(),
            Some("attachment; filename=\"r__sum_.txt\"; filename*=UTF-8''r%C3%A9%22sum%C3%A9.txt")
        );
    }
}
