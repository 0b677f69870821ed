//! Which slice of an ordered listing a request asks for, and the bounds every resource's listings share.

use super::ValidationError;

/// Largest `page` and `per_page` accepted (nine digits); keeps the offset within a 64-bit integer.
pub const PAGE_MAX: u64 = 999_999_999;
/// Rows per page when the caller does not say.
pub const DEFAULT_PER_PAGE: u64 = 20;
/// Most ids in one bulk delete: ten pages of the largest page size the listmonk UI offers.
pub const DELETE_IDS_MAX: usize = 1000;

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Asc,
    Desc,
}

/// Which slice of the ordered matches to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pagination {
    /// 1-based page number.
    pub page: u64,
    /// Rows per page; `None` returns every match.
    pub per_page: Option<u64>,
}

impl Pagination {
    pub fn new(page: u64, per_page: Option<u64>) -> Result<Self, ValidationError> {
        if !(1..=PAGE_MAX).contains(&page) {
            return Err(ValidationError(format!(
                "page must be between 1 and {PAGE_MAX}"
            )));
        }
        if per_page.is_some_and(|n| !(1..=PAGE_MAX).contains(&n)) {
            return Err(ValidationError(format!(
                "per_page must be between 1 and {PAGE_MAX}, or `all`"
            )));
        }
        Ok(Self { page, per_page })
    }

    /// Rows to skip; `(page - 1) * per_page` cannot overflow because both are at most [`PAGE_MAX`].
    pub fn offset(&self) -> u64 {
        self.per_page.map_or(0, |n| (self.page - 1) * n)
    }
}

impl Default for Pagination {
    fn default() -> Self {
        Self {
            page: 1,
            per_page: Some(DEFAULT_PER_PAGE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_bounds_are_enforced_and_offsets_cannot_overflow() {
        assert!(Pagination::new(0, Some(1)).is_err());
        assert!(Pagination::new(1, Some(0)).is_err());
        assert!(Pagination::new(PAGE_MAX + 1, None).is_err());
        let p = Pagination::new(PAGE_MAX, Some(PAGE_MAX)).unwrap();
        assert_eq!(p.offset(), (PAGE_MAX - 1) * PAGE_MAX);
        assert_eq!(Pagination::new(7, None).unwrap().offset(), 0);
    }
}
