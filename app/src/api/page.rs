//! Paging of lists: every list answer holds at most `limit` items, after the item whose id is
//! `after`, in the list's own order (the audit log pages the same way with `before`). A page
//! shorter than `limit` is the last one.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Items in a page when `limit` is not given.
pub const DEFAULT_PAGE: u32 = 100;
/// Most items in one page.
pub const MAX_PAGE: u32 = 500;

/// `?limit=&after=` of a list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Most items to answer, 1 to 500 (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", param(minimum = 1, maximum = 500))]
    pub limit: Option<u32>,
    /// The id of the last item of the previous page (404 when no such item is listed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl PageQuery {
    /// The first page of the largest size.
    pub fn first() -> Self {
        PageQuery {
            limit: Some(MAX_PAGE),
            after: None,
        }
    }

    /// The number of items to answer, or 400 naming `limit`.
    pub fn size(&self) -> Result<u32, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE);
        if (1..=MAX_PAGE).contains(&limit) {
            Ok(limit)
        } else {
            Err(ApiError::invalid(
                "limit",
                format!("limit must be between 1 and {MAX_PAGE}"),
            ))
        }
    }
}

/// An item of a paged list: its id is the cursor of the next page.
pub trait Paged {
    fn cursor(&self) -> String;
}

/// Every item of a paged list, page after page (for pages that show the whole list).
pub async fn all_pages<T, F, Fut>(mut fetch: F) -> Result<Vec<T>, ApiError>
where
    T: Paged,
    F: FnMut(PageQuery) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, ApiError>>,
{
    let mut all = Vec::new();
    let mut page = PageQuery::first();
    loop {
        let items = fetch(page.clone()).await?;
        let full = items.len() == MAX_PAGE as usize;
        page.after = items.last().map(Paged::cursor);
        all.extend(items);
        if !full {
            return Ok(all);
        }
    }
}
