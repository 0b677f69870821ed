//! Lists: their fields, the rules their input must follow, and how they are queried.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Direction, Pagination, ValidationError, search_words};

/// Longest accepted list name, in characters.
pub const NAME_MAX_CHARS: usize = 2000;
/// Longest accepted tag, in characters.
pub const TAG_MAX_CHARS: usize = 100;
/// Most tags one list may carry.
pub const TAGS_MAX: usize = 100;
/// Longest accepted description, in characters.
pub const DESCRIPTION_MAX_CHARS: usize = 65_536;
/// Most `tag` values in one filter: a list carries at most [`TAGS_MAX`] tags, so more could never match.
pub const TAG_FILTER_MAX: usize = TAGS_MAX;

string_enum!(
    /// Who may subscribe: anyone (public) or only the list's owner (private).
    ListType { Public => "public", Private => "private" }
);
string_enum!(
    /// Whether subscribers confirm their subscription (double) or not (single).
    Optin { Single => "single", Double => "double" }
);
string_enum!(
    /// Archived lists are hidden from selectors but still readable.
    ListStatus { Active => "active", Archived => "archived" }
);

/// A list as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    pub id: i64,
    pub uuid: Uuid,
    pub name: String,
    pub list_type: ListType,
    pub optin: Optin,
    pub status: ListStatus,
    pub tags: Vec<String>,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Its subscriptions by status, when they were read (not for `minimal` listings).
    pub subscribers: Option<SubscriberCounts>,
}

/// Subscriptions on one list, by status: only statuses with at least one, in the order of
/// [`super::SubscriptionStatus::ALL`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriberCounts(pub Vec<(super::SubscriptionStatus, u64)>);

impl SubscriberCounts {
    /// Subscriptions of every status: listmonk's `subscriber_count`.
    pub fn total(&self) -> u64 {
        self.0.iter().map(|(_, n)| n).sum()
    }
}

/// Postgres cannot store NUL characters in text; refusing them everywhere keeps both backends alike.
fn reject_nul(field: &str, value: &str) -> Result<(), ValidationError> {
    if value.contains('\0') {
        return Err(ValidationError(format!(
            "{field} must not contain NUL characters"
        )));
    }
    Ok(())
}

/// The public face of a list, for subscription forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicList {
    pub uuid: Uuid,
    pub name: String,
}

/// A valid list name: trimmed, not blank, at most [`NAME_MAX_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListName(String);

impl ListName {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        reject_nul("name", raw)?;
        if raw.chars().count() > NAME_MAX_CHARS {
            return Err(ValidationError(format!(
                "name must be at most {NAME_MAX_CHARS} characters"
            )));
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(ValidationError("name must not be blank".into()));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Normalised tags: each trimmed, inner whitespace runs turned into `-`, empty ones dropped, duplicates dropped
/// (first occurrence kept), case kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tags(Vec<String>);

impl Tags {
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, ValidationError> {
        if raw.len() > TAGS_MAX {
            return Err(ValidationError(format!(
                "a list may carry at most {TAGS_MAX} tags"
            )));
        }
        for tag in raw {
            reject_nul("tags", tag.as_ref())?;
        }
        normalise_tags(raw).map(Self)
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn into_inner(self) -> Vec<String> {
        self.0
    }
}

/// Trims each tag, turns inner whitespace runs into `-`, drops empty and repeated ones (first occurrence kept):
/// the one rule for stored tags and for tags in filters, so `tag=a b` finds the stored tag `a-b`.
fn normalise_tags<S: AsRef<str>>(raw: &[S]) -> Result<Vec<String>, ValidationError> {
    let mut tags: Vec<String> = Vec::with_capacity(raw.len());
    for tag in raw {
        let tag = tag.as_ref();
        if tag.chars().count() > TAG_MAX_CHARS {
            return Err(ValidationError(format!(
                "each tag must be at most {TAG_MAX_CHARS} characters"
            )));
        }
        let normalised = tag.split_whitespace().collect::<Vec<_>>().join("-");
        if !normalised.is_empty() && !tags.contains(&normalised) {
            tags.push(normalised);
        }
    }
    Ok(tags)
}

/// A valid description: at most [`DESCRIPTION_MAX_CHARS`] characters, kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Description(String);

impl Description {
    pub fn parse(raw: String) -> Result<Self, ValidationError> {
        reject_nul("description", &raw)?;
        if raw.chars().count() > DESCRIPTION_MAX_CHARS {
            return Err(ValidationError(format!(
                "description must be at most {DESCRIPTION_MAX_CHARS} characters"
            )));
        }
        Ok(Self(raw))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// The fields a request may send when creating or updating a list, before the rules are applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFields {
    pub name: Option<String>,
    pub list_type: Option<ListType>,
    pub optin: Option<Optin>,
    pub status: Option<ListStatus>,
    pub tags: Option<Vec<String>>,
    pub description: Option<String>,
}

/// A list to create, with every rule applied and every default filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewList {
    pub name: ListName,
    pub list_type: ListType,
    pub optin: Optin,
    pub status: ListStatus,
    pub tags: Tags,
    pub description: Description,
}

impl TryFrom<ListFields> for NewList {
    type Error = ValidationError;

    fn try_from(fields: ListFields) -> Result<Self, Self::Error> {
        let name = fields
            .name
            .ok_or_else(|| ValidationError("name is required".into()))?;
        Ok(Self {
            name: ListName::parse(&name)?,
            list_type: fields.list_type.unwrap_or(ListType::Private),
            optin: fields.optin.unwrap_or(Optin::Single),
            status: fields.status.unwrap_or(ListStatus::Active),
            tags: Tags::parse(&fields.tags.unwrap_or_default())?,
            description: Description::parse(fields.description.unwrap_or_default())?,
        })
    }
}

/// A partial update: absent fields stay as they are; present ones are set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPatch {
    pub name: Option<ListName>,
    pub list_type: Option<ListType>,
    pub optin: Option<Optin>,
    pub status: Option<ListStatus>,
    pub tags: Option<Tags>,
    pub description: Option<Description>,
}

impl TryFrom<ListFields> for ListPatch {
    type Error = ValidationError;

    fn try_from(fields: ListFields) -> Result<Self, Self::Error> {
        Ok(Self {
            name: fields.name.as_deref().map(ListName::parse).transpose()?,
            list_type: fields.list_type,
            optin: fields.optin,
            status: fields.status,
            tags: fields.tags.as_deref().map(Tags::parse).transpose()?,
            description: fields.description.map(Description::parse).transpose()?,
        })
    }
}

/// Which lists a listing or a bulk delete selects. All given filters must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ListFilter {
    /// Case-folded words that must each occur in the name, literally.
    pub words: Vec<String>,
    pub status: Option<ListStatus>,
    pub list_type: Option<ListType>,
    pub optin: Option<Optin>,
    /// Tags the list must all carry (exact match).
    pub tags: Vec<String>,
    /// Set when no list can match (a NUL character in a search word or tag).
    pub matches_nothing: bool,
}

impl ListFilter {
    /// A filter on name words (split from `query` on whitespace; repeats dropped) and tags (normalised like
    /// stored tags; a blank one matches nothing). Refuses, before any SQL exists, a query past the bounds of
    /// [`search_words`], more than [`TAG_FILTER_MAX`] tags, or a tag over [`TAG_MAX_CHARS`] characters.
    /// A NUL character can be in no name or tag, so a query or tag containing one matches nothing.
    pub fn new<S: AsRef<str>>(query: Option<&str>, tags: &[S]) -> Result<Self, ValidationError> {
        let query = query.unwrap_or_default();
        let words = search_words(query, "query")?;
        if tags.len() > TAG_FILTER_MAX {
            return Err(ValidationError(format!(
                "give at most {TAG_FILTER_MAX} `tag` values"
            )));
        }
        // No stored tag is blank, so a blank one in a filter matches nothing (it is not dropped: a filter the
        // caller gave is never ignored).
        let blank = tags.iter().any(|t| t.as_ref().trim().is_empty());
        let tags = normalise_tags(tags).map_err(|err| ValidationError(format!("tag: {err}")))?;
        Ok(Self {
            matches_nothing: blank || query.contains('\0') || tags.iter().any(|t| t.contains('\0')),
            words,
            tags,
            ..Self::default()
        })
    }
}

string_enum!(
    /// The field listings are sorted by; `id` always breaks ties.
    OrderBy {
        Id => "id",
        Name => "name",
        Status => "status",
        CreatedAt => "created_at",
        UpdatedAt => "updated_at",
        SubscriberCount => "subscriber_count",
    }
);

/// A full listing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub filter: ListFilter,
    /// Whether to read each list's subscriber counts (`minimal=false`).
    pub with_counts: bool,
    pub order_by: OrderBy,
    pub direction: Direction,
    pub pagination: Pagination,
}

/// One page of matches, with the number of matches over all pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    pub results: Vec<List>,
    pub total: u64,
}

/// What a bulk delete removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteSelector {
    /// These ids (missing ones are ignored).
    Ids(Vec<i64>),
    /// Every list whose name matches the filter.
    Matching(ListFilter),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{QUERY_MAX_CHARS, QUERY_MAX_WORDS, QUERY_WORD_MAX_CHARS};

    #[test]
    fn names_are_trimmed_and_must_not_be_blank() {
        assert_eq!(ListName::parse("  News  ").unwrap().as_str(), "News");
        assert!(ListName::parse(" \t\n ").is_err());
        assert!(ListName::parse("").is_err());
    }

    #[test]
    fn names_are_limited_in_characters_not_bytes() {
        assert!(ListName::parse(&"é".repeat(NAME_MAX_CHARS)).is_ok());
        assert!(ListName::parse(&"a".repeat(NAME_MAX_CHARS + 1)).is_err());
    }

    #[test]
    fn tags_are_trimmed_hyphenated_deduplicated_and_keep_case() {
        let tags = Tags::parse(&[" My  Tag ", "", "x", "My-Tag", "X", "   "]).unwrap();
        assert_eq!(tags.as_slice(), ["My-Tag", "x", "X"]);
    }

    #[test]
    fn overlong_tags_and_too_many_tags_are_rejected() {
        assert!(Tags::parse(&["a".repeat(TAG_MAX_CHARS + 1)]).is_err());
        assert!(Tags::parse(&["a".repeat(TAG_MAX_CHARS)]).is_ok());
        let many: Vec<String> = (0..=TAGS_MAX).map(|i| i.to_string()).collect();
        assert!(Tags::parse(&many).is_err());
        assert!(Tags::parse(&many[..TAGS_MAX]).is_ok());
    }

    #[test]
    fn creating_fills_in_defaults() {
        let list = NewList::try_from(ListFields {
            name: Some("x".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(list.list_type, ListType::Private);
        assert_eq!(list.optin, Optin::Single);
        assert_eq!(list.status, ListStatus::Active);
        assert!(list.tags.as_slice().is_empty());
        assert_eq!(list.description.into_inner(), "");
    }

    #[test]
    fn creating_requires_a_name() {
        assert!(NewList::try_from(ListFields::default()).is_err());
    }

    #[test]
    fn search_words_are_folded_and_split_on_whitespace() {
        let filter = ListFilter::new::<&str>(Some("  Ünïcode\tLIST  list "), &[]).unwrap();
        assert_eq!(filter.words, ["ünïcode", "list"]);
    }

    #[test]
    fn filter_tags_are_normalised_like_stored_tags() {
        let filter = ListFilter::new(None, &[" a  b ", "a-b", "C"]).unwrap();
        assert_eq!(filter.tags, ["a-b", "C"]);
        assert!(!filter.matches_nothing);
        assert!(ListFilter::new(None, &["a", " "]).unwrap().matches_nothing);
    }

    #[test]
    fn search_and_tag_filters_are_bounded_before_any_sql_exists() {
        let words = |n: usize| {
            (0..n)
                .map(|i| format!("w{i}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert!(ListFilter::new::<&str>(Some(&words(QUERY_MAX_WORDS)), &[]).is_ok());
        assert!(ListFilter::new::<&str>(Some(&words(QUERY_MAX_WORDS + 1)), &[]).is_err());
        let repeated = vec!["a"; QUERY_MAX_WORDS * 10].join(" ");
        assert!(
            ListFilter::new::<&str>(Some(&repeated), &[]).is_ok(),
            "repeats count once"
        );
        let longest_words = vec!["é".repeat(QUERY_WORD_MAX_CHARS - 1); 10].join(" ");
        assert_eq!(longest_words.chars().count(), QUERY_MAX_CHARS - 1);
        assert!(ListFilter::new::<&str>(Some(&longest_words), &[]).is_ok());
        assert!(ListFilter::new::<&str>(Some(&"é".repeat(QUERY_WORD_MAX_CHARS)), &[]).is_ok());
        assert!(ListFilter::new::<&str>(Some(&"é".repeat(QUERY_WORD_MAX_CHARS + 1)), &[]).is_err());
        assert!(ListFilter::new::<&str>(Some(&"a".repeat(QUERY_MAX_CHARS + 1)), &[]).is_err());
        let tags: Vec<String> = (0..=TAG_FILTER_MAX).map(|i| i.to_string()).collect();
        assert!(ListFilter::new(None, &tags[..TAG_FILTER_MAX]).is_ok());
        assert!(ListFilter::new(None, &tags).is_err());
        assert!(ListFilter::new(None, &["a".repeat(TAG_MAX_CHARS)]).is_ok());
        assert!(ListFilter::new(None, &["a".repeat(TAG_MAX_CHARS + 1)]).is_err());
    }

    #[test]
    fn nul_characters_are_refused_everywhere() {
        assert!(ListName::parse("a\0b").is_err());
        assert!(Tags::parse(&["a\0"]).is_err());
        assert!(Description::parse("\0".into()).is_err());
        assert!(
            ListFilter::new::<&str>(Some("\0"), &[])
                .unwrap()
                .matches_nothing
        );
        assert!(ListFilter::new(None, &["\0"]).unwrap().matches_nothing);
        assert!(!ListFilter::new(Some("x"), &["y"]).unwrap().matches_nothing);
    }

    mod properties {
        use super::super::*;
        use crate::domain::{QUERY_MAX_CHARS, QUERY_MAX_WORDS, fold};
        use proptest::prelude::*;

        fn words_of(query: &str) -> usize {
            let mut seen: Vec<String> = query.split_whitespace().map(fold).collect();
            seen.sort();
            seen.dedup();
            seen.len()
        }

        proptest! {
            #[test]
            fn filters_are_refused_exactly_past_their_bounds(
                query in prop_oneof![".{0,40}", "( ?[a-e]{1,2}){0,60}", "[a\\s]{990,1010}"],
                tags in prop::collection::vec(".{0,110}", 0..105),
            ) {
                let over = query.chars().count() > QUERY_MAX_CHARS
                    || words_of(&query) > QUERY_MAX_WORDS
                    || tags.len() > TAG_FILTER_MAX
                    || tags.iter().any(|t| t.chars().count() > TAG_MAX_CHARS);
                match ListFilter::new(Some(&query), &tags) {
                    Ok(filter) => {
                        prop_assert!(!over);
                        prop_assert!(filter.words.len() <= QUERY_MAX_WORDS);
                        prop_assert!(filter.tags.iter().all(|t| !t.is_empty() && !t.contains(char::is_whitespace)));
                    }
                    Err(_) => prop_assert!(over),
                }
            }

            #[test]
            fn stored_tags_are_normalised_or_refused(tags in prop::collection::vec(".{0,110}", 0..105)) {
                if let Ok(parsed) = Tags::parse(&tags) {
                    let tags = parsed.as_slice();
                    prop_assert!(tags.len() <= TAGS_MAX);
                    for (i, tag) in tags.iter().enumerate() {
                        prop_assert!(!tag.is_empty() && !tag.contains(char::is_whitespace));
                        prop_assert!(!tags[..i].contains(tag));
                    }
                }
            }
        }
    }
}
