//! Reading one page of a listing, for every resource: the page's rows ordered and limited (its ids read first
//! from the ordering's index when it skips many rows), with the numbers read in the same statement, and a count
//! read in the same snapshot as the version it will be kept with.

use sea_orm::sea_query::{DynIden, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, Order,
    QueryFilter, QueryOrder, QueryResult, QuerySelect, QueryTrait, Select,
};

use super::positions::{Mark, Positions};
use super::sql::{page_and_values, scalar_subquery};

/// Rows skipped from which a page reads its ids first: below it, the plain statement costs as little.
pub const DEFERRED_FROM: u64 = 100;

/// Which rows of a listing one statement reads.
pub struct Slice<'a> {
    pub condition: Condition,
    /// The ordering, ending with the id.
    pub order: &'a [(DynIden, Order)],
    /// Rows per page; `None` reads every match.
    pub per_page: Option<u64>,
    /// Matches skipped before the page.
    pub skip: u64,
    /// Whether the ordering is by columns alone (so an index can give the page's ids).
    pub deferrable: bool,
}

/// A page's rows and the numbers read with them.
pub struct Page<M> {
    pub models: Vec<M>,
    /// The total, when it was asked for.
    pub total: Option<i64>,
    /// The data's version, when it was asked for.
    pub version: Option<i64>,
}

/// What a page's statement reads beside its rows' columns, and how a row is decoded.
pub struct Reading<'a, M> {
    /// Named values computed for each row of the page (see [`page_and_values`]).
    pub per_row: &'a [(String, SelectStatement)],
    /// The total (a `SELECT` of one integer), when asked for.
    pub total: Option<SelectStatement>,
    /// The data's version (a `SELECT` of one integer), when asked for.
    pub version: Option<SelectStatement>,
    /// A row of the page, with its per-row values, as the resource's model.
    pub decode: fn(&QueryResult) -> Result<M, DbErr>,
}

impl<M: FromQueryResult> Reading<'_, M> {
    /// The rows' columns alone, with `total` and `version`.
    pub fn plain(total: Option<SelectStatement>, version: Option<SelectStatement>) -> Self {
        Reading {
            per_row: &[],
            total,
            version,
            decode: |row| M::from_query_result(row, ""),
        }
    }
}

/// Reads `slice` of `base`'s entity, with what `reading` asks for in the same statement.
pub async fn read_page<E, M>(
    db: &impl ConnectionTrait,
    base: Select<E>,
    id: E::Column,
    slice: Slice<'_>,
    reading: Reading<'_, M>,
) -> Result<Page<M>, DbErr>
where
    E: EntityTrait,
{
    let mut select = base;
    match slice.per_page {
        Some(per_page) if slice.deferrable && slice.skip >= DEFERRED_FROM => {
            // The page's ids from the ordering's index alone, then only those rows.
            let mut ids = Query::select()
                .column((E::default(), id))
                .from(E::default())
                .cond_where(slice.condition)
                .to_owned();
            for (column, direction) in slice.order {
                ids.order_by((E::default(), column.clone()), direction.clone());
            }
            ids.limit(per_page).offset(slice.skip);
            select = select.filter(id.in_subquery(ids));
        }
        per_page => {
            select = select.filter(slice.condition);
            if let Some(per_page) = per_page {
                select = select.limit(per_page).offset(slice.skip);
            }
        }
    }
    for (column, direction) in slice.order {
        select = select.order_by(
            sea_orm::sea_query::Expr::col(column.clone()),
            direction.clone(),
        );
    }
    let Reading {
        per_row,
        total,
        version,
        decode,
    } = reading;
    let (has_total, has_version) = (total.is_some(), version.is_some());
    let alongside: Vec<SelectStatement> = total.into_iter().chain(version).collect();
    let (rows, values) =
        page_and_values(db, select.into_query(), slice.order, per_row, &alongside).await?;
    let models = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
    let mut values = values.into_iter();
    Ok(Page {
        models,
        total: if has_total { values.next() } else { None },
        version: if has_version { values.next() } else { None },
    })
}

/// Counts with `count` and reads `version` in one statement (one snapshot): a total that is exact at that version.
pub async fn count_at_version(
    db: &impl ConnectionTrait,
    version: SelectStatement,
    count: SelectStatement,
) -> Result<(i64, u64), DbErr> {
    let counted = Query::select()
        .expr_as(scalar_subquery(version), "version")
        .expr_as(scalar_subquery(count), "total")
        .to_owned();
    let row = db
        .query_one(&counted)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("count".into()))?;
    let version: i64 = row.try_get("", "version")?;
    let total = u64::try_from(row.try_get::<i64>("", "total")?).unwrap_or(0);
    Ok((version, total))
}

/// Reads a page of `listing` with `read`, from the nearest mark before `offset` when one is given and known. A mark
/// is only good at the version it was taken at: when the page read from it carries another version, the listing's
/// marks are forgotten and the page is read again from the start.
pub async fn read_near<K, M, E, F>(
    positions: &Positions<K>,
    listing: &K,
    offset: Option<u64>,
    read: impl Fn(Option<Mark>) -> F,
) -> Result<Page<M>, E>
where
    K: std::hash::Hash + Eq + Clone + super::totals::Weigh,
    F: Future<Output = Result<Page<M>, E>>,
{
    let mark = offset
        .filter(|offset| *offset > 0)
        .and_then(|offset| positions.nearest(listing, offset));
    let taken_at = mark.as_ref().map(|mark| mark.version);
    let page = read(mark).await?;
    match taken_at {
        Some(version) if page.version != Some(version) => {
            positions.forget(listing);
            read(None).await
        }
        _ => Ok(page),
    }
}
