//! What every listing operation shares: the defaults of its paging parameters, the page they ask for, whether
//! its answer is streamed, and the numbers of its answer.

use super::error::ApiError;
use super::types::{PerPage, SortOrder};
use crate::domain::{DEFAULT_PER_PAGE, Direction, Pagination, ValidationError};
use crate::service::STREAMED_ABOVE;

pub fn default_page() -> i64 {
    1
}

pub fn default_per_page() -> PerPage {
    PerPage::Rows(DEFAULT_PER_PAGE)
}

pub fn default_order() -> SortOrder {
    SortOrder(Direction::Desc)
}

/// A rule broken by a parameter: 400, not 422 (that is for bodies).
pub fn bad_request(err: ValidationError) -> ApiError {
    ApiError::bad_request(err.0)
}

/// The page a listing asks for, as read from `page` and `per_page`.
pub struct Paging {
    pub pagination: Pagination,
    /// `page` as given, for the answer.
    pub page: i64,
}

impl Paging {
    pub fn new(page: i64, per_page: PerPage) -> Result<Self, ApiError> {
        let per_page = match per_page {
            PerPage::Rows(rows) => Some(rows),
            PerPage::All => None,
        };
        let pagination =
            Pagination::new(u64::try_from(page).unwrap_or(0), per_page).map_err(bad_request)?;
        Ok(Self { pagination, page })
    }

    /// Whether the answer is written as it is read: every row, or more than a page read whole may hold.
    pub fn streamed(&self) -> bool {
        self.pagination
            .per_page
            .is_none_or(|rows| rows > STREAMED_ABOVE)
    }

    /// `per_page` as answered: `0` for every row, as listmonk.
    pub fn per_page(&self) -> i64 {
        count(self.pagination.per_page.unwrap_or(0))
    }
}

/// A count as answered (counts and page sizes are far below `i64::MAX`).
pub fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
