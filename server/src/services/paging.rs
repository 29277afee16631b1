//! Keyset paging of the lists: a page holds the rows after the one `after` names, in the
//! order of key columns that are unique together, so that a row added or deleted between two
//! requests neither repeats nor skips another (an offset would).

use app::api::page::PageQuery;
use sea_orm::sea_query::Condition;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, Iterable, ModelTrait, PrimaryKeyToColumn,
    QueryFilter, QueryOrder, QuerySelect, Select, Value,
};

use crate::error::{ApiError, ApiResult};

/// The order of a list: columns unique together, such as a name, or the creation time and
/// then the id (for rows made in the same instant).
pub struct Keyset<E: EntityTrait> {
    keys: Vec<E::Column>,
}

/// Where a page starts: the key of the last row of the page before.
pub struct Cursor(Vec<Value>);

impl<E: EntityTrait> Keyset<E> {
    pub fn new(keys: impl IntoIterator<Item = E::Column>) -> Self {
        Self {
            keys: keys.into_iter().collect(),
        }
    }

    /// A page of `list`: at most `limit` rows, after the one `after` names, which must be a
    /// row of `list` itself.
    pub async fn page(
        &self,
        db: &impl ConnectionTrait,
        list: Select<E>,
        page: &PageQuery,
    ) -> ApiResult<Vec<E::Model>> {
        let (limit, cursor) = self.start(db, list.clone(), page).await?;
        Ok(self
            .after(list, cursor.as_ref())
            .limit(limit)
            .all(db)
            .await?)
    }

    /// The size of the page asked for (400 naming `limit`), and where it starts: the key of
    /// the row `after` names among `named` (404 when it names none), or nothing for the first
    /// page. For lists whose cursor may be a row they no longer show, or that read on past
    /// rows they hide.
    pub async fn start(
        &self,
        db: &impl ConnectionTrait,
        named: Select<E>,
        page: &PageQuery,
    ) -> ApiResult<(u64, Option<Cursor>)> {
        let limit = page_size(page)?;
        let Some(after) = &page.after else {
            return Ok((limit, None));
        };
        let id_is = E::PrimaryKey::iter().fold(Condition::all(), |all, key| {
            all.add(key.into_column().eq(after.as_str()))
        });
        let last = named
            .filter(id_is)
            .one(db)
            .await?
            .ok_or_else(unknown_cursor)?;
        Ok((limit, Some(self.key_of(&last))))
    }

    /// `list` in key order, from just after `cursor` (from the first row without one).
    pub fn after(&self, list: Select<E>, cursor: Option<&Cursor>) -> Select<E> {
        let mut list = self
            .keys
            .iter()
            .fold(list, |list, key| list.order_by_asc(*key));
        if let Some(Cursor(values)) = cursor {
            // Lexicographic: a greater first key, or the same first key and a greater second…
            let mut beyond = Condition::any();
            for (at, (key, value)) in self.keys.iter().zip(values).enumerate() {
                let same_before = self
                    .keys
                    .iter()
                    .zip(values)
                    .take(at)
                    .fold(Condition::all(), |all, (k, v)| all.add(k.eq(v.clone())));
                beyond = beyond.add(same_before.add(key.gt(value.clone())));
            }
            list = list.filter(beyond);
        }
        list
    }

    /// The key of a row, for reading on after it.
    pub fn key_of(&self, row: &E::Model) -> Cursor {
        Cursor(self.keys.iter().map(|key| row.get(*key)).collect())
    }
}

/// The size of a page, or 400 naming `limit`.
fn page_size(page: &PageQuery) -> Result<u64, ApiError> {
    page.size().map(u64::from)
}

/// The answer to an `after` that names no item of the list asked for.
pub(super) fn unknown_cursor() -> ApiError {
    ApiError::not_found_because(
        "`after` names no item of this list (it may have been deleted): start again from the \
         first page",
    )
}
