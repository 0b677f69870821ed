//! The subscriber import: its options, the CSV file's columns, and the rules each row must follow (the same as
//! `POST /api/subscribers`). Reading the file is the service's; what a row means is decided here.

use serde_json::Value;

use super::{
    Attribs, Email, NewSubscriber, SUBSCRIBER_LISTS_MAX, SubscriberFields, SubscriptionStatus,
    ValidationError, parse_list_ids,
};

/// The default `ROSTER_IMPORT_LIMIT`: largest upload, and largest CSV in a ZIP once decompressed, in bytes.
pub const IMPORT_LIMIT_DEFAULT: u64 = 2 * 1024 * 1024 * 1024;
/// Longest row of the CSV, in bytes: the longest e-mail, name and `attributes` fit with every quote doubled. A
/// longer row is skipped (and logged) without being held in memory.
pub const IMPORT_ROW_MAX_BYTES: usize = 256 * 1024;
/// Most columns in a row of the CSV (the header included). Columns other than `email`, `name` and `attributes`
/// are ignored, as in listmonk.
pub const IMPORT_COLUMNS_MAX: usize = 64;
/// Most lines the job's log keeps; later skipped rows are counted in `skipped` and summed up in a last line.
pub const IMPORT_LOG_LINES_MAX: i32 = 1000;
/// Longest uploaded file name, in bytes.
pub const IMPORT_FILE_NAME_MAX_BYTES: usize = 255;
/// Longest `params` field, in bytes.
pub const IMPORT_PARAMS_MAX_BYTES: usize = 16 * 1024;

string_enum!(
    /// What an import does with each row: subscribe it to the lists, or blocklist it.
    ImportMode { Subscribe => "subscribe", Blocklist => "blocklist" }
);
string_enum!(
    /// Where the import job stands. `none`: no job, or it was cleared.
    ImportState {
        None => "none",
        Importing => "importing",
        Stopping => "stopping",
        Finished => "finished",
        Failed => "failed",
    }
);

/// The `params` of an upload as read, before the rules are applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportParams {
    pub mode: Option<ImportMode>,
    pub subscription_status: Option<SubscriptionStatus>,
    pub delim: Option<String>,
    pub lists: Option<Vec<i64>>,
    pub overwrite: Option<bool>,
    pub overwrite_userinfo: Option<bool>,
    pub overwrite_subscription_status: Option<bool>,
}

/// A valid import's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    pub mode: ImportMode,
    /// The status of new subscriptions (and, with `overwrite_status`, of existing ones on the lists).
    pub status: SubscriptionStatus,
    pub delimiter: u8,
    /// The lists to subscribe to (none in blocklist mode).
    pub lists: Vec<i64>,
    /// Existing subscribers get the row's name and attributes.
    pub overwrite_userinfo: bool,
    /// Existing subscriptions on the lists get `status`.
    pub overwrite_status: bool,
}

impl TryFrom<ImportParams> for ImportOptions {
    type Error = ValidationError;

    /// listmonk's rules, with its defaults filled in where it would refuse an omitted field: `mode` defaults to
    /// `subscribe`, `delim` to `,`, `subscription_status` to `unconfirmed` (subscribe) or `unsubscribed`
    /// (blocklist). `overwrite` sets both `overwrite_userinfo` and `overwrite_subscription_status`.
    fn try_from(params: ImportParams) -> Result<Self, Self::Error> {
        let mode = params.mode.unwrap_or(ImportMode::Subscribe);
        let delimiter = match params.delim.as_deref().unwrap_or(",").as_bytes() {
            [b] if b.is_ascii() && !matches!(b, b'"' | b'\r' | b'\n') => *b,
            _ => {
                return Err(ValidationError(
                    "delim must be one ASCII character other than a double quote or a line break"
                        .into(),
                ));
            }
        };
        let lists = match mode {
            // listmonk ignores the lists of a blocklist import (its UI may send them).
            ImportMode::Blocklist => Vec::new(),
            ImportMode::Subscribe => {
                let lists = parse_list_ids(&params.lists.unwrap_or_default(), "lists")?;
                if lists.is_empty() {
                    return Err(ValidationError(
                        "lists must name at least one list to subscribe to".into(),
                    ));
                }
                lists
            }
        };
        debug_assert!(lists.len() <= SUBSCRIBER_LISTS_MAX);
        let status = match mode {
            ImportMode::Subscribe => params
                .subscription_status
                .unwrap_or(SubscriptionStatus::Unconfirmed),
            // A blocklisted subscriber's subscriptions are all unsubscribed, whatever was asked.
            ImportMode::Blocklist => SubscriptionStatus::Unsubscribed,
        };
        let overwrite = params.overwrite.unwrap_or(false);
        Ok(Self {
            mode,
            status,
            delimiter,
            lists,
            overwrite_userinfo: overwrite || params.overwrite_userinfo.unwrap_or(false),
            overwrite_status: overwrite || params.overwrite_subscription_status.unwrap_or(false),
        })
    }
}

/// A file name as shown in the job's status: its last path component (a ZIP entry may name directories), at most
/// [`IMPORT_FILE_NAME_MAX_BYTES`].
pub fn import_file_name(raw: &str) -> Result<String, ValidationError> {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    if base.len() > IMPORT_FILE_NAME_MAX_BYTES {
        return Err(ValidationError(format!(
            "the file name must be at most {IMPORT_FILE_NAME_MAX_BYTES} bytes"
        )));
    }
    if base.chars().any(char::is_control) {
        return Err(ValidationError(
            "the file name must not contain control characters".into(),
        ));
    }
    Ok(base.to_owned())
}

/// Where the columns Roster reads are in each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportColumns {
    email: usize,
    name: Option<usize>,
    attributes: Option<usize>,
    /// Columns a row needs to hold every one of these.
    needed: usize,
}

/// A header name as listmonk compares it: trimmed, without non-ASCII characters (a byte-order mark).
fn header_name(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .trim()
        .chars()
        .filter(char::is_ascii)
        .collect()
}

impl ImportColumns {
    /// Reads the header row: `email` is required, `name` and `attributes` optional, in any order; other columns
    /// are ignored (and named, for the log). A column named twice is refused.
    pub fn from_header(header: &[&[u8]]) -> Result<(Self, Vec<String>), ValidationError> {
        let (mut email, mut name, mut attributes) = (None, None, None);
        let mut ignored = Vec::new();
        for (at, raw) in header.iter().enumerate() {
            let column = header_name(raw);
            let slot = match column.as_str() {
                "email" => &mut email,
                "name" => &mut name,
                "attributes" => &mut attributes,
                _ => {
                    ignored.push(column);
                    continue;
                }
            };
            if slot.replace(at).is_some() {
                return Err(ValidationError(format!(
                    "the header names `{column}` more than once"
                )));
            }
        }
        let email = email.ok_or_else(|| {
            ValidationError(
                "the header has no `email` column (expected email,name,attributes)".into(),
            )
        })?;
        let needed = [Some(email), name, attributes]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(email)
            + 1;
        Ok((
            Self {
                email,
                name,
                attributes,
                needed,
            },
            ignored,
        ))
    }

    /// One data row, by the rules of `POST /api/subscribers`: a valid e-mail, a name (blank: the e-mail's local
    /// part), `attributes` a JSON object (blank: none). Every field must be UTF-8.
    pub fn row(&self, fields: &[&[u8]]) -> Result<ImportRow, String> {
        if fields.len() < self.needed {
            return Err(format!(
                "{} columns where the header needs {}",
                fields.len(),
                self.needed
            ));
        }
        let text =
            |at: usize| std::str::from_utf8(fields[at]).map_err(|_| "not valid UTF-8".to_owned());
        let email = text(self.email)?;
        let name = self.name.map(text).transpose()?;
        let attributes = match self.attributes.map(text).transpose()? {
            Some(raw) if !raw.trim().is_empty() => Some(
                serde_json::from_str::<Value>(raw)
                    .map_err(|err| format!("attributes are not valid JSON: {err}"))?,
            ),
            _ => None,
        };
        let new = NewSubscriber::try_from(SubscriberFields {
            email: Some(email.to_owned()),
            name: name.map(str::to_owned),
            attribs: attributes,
            ..Default::default()
        })
        .map_err(|err| err.0)?;
        Ok(ImportRow {
            email: new.email,
            name: new.name,
            attribs: new.attribs,
        })
    }
}

/// A valid row of the CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    pub email: Email,
    pub name: String,
    pub attribs: Attribs,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(json: serde_json::Value) -> ImportParams {
        let get = |k: &str| json.get(k).cloned();
        ImportParams {
            mode: get("mode").map(|v| v.as_str().unwrap().parse().unwrap()),
            subscription_status: get("subscription_status")
                .map(|v| v.as_str().unwrap().parse().unwrap()),
            delim: get("delim").map(|v| v.as_str().unwrap().to_owned()),
            lists: get("lists").map(|v| serde_json::from_value(v).unwrap()),
            overwrite: get("overwrite").map(|v| v.as_bool().unwrap()),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_follow_the_mode() {
        let subscribe =
            ImportOptions::try_from(params(serde_json::json!({"lists": [2, 1, 2]}))).unwrap();
        assert_eq!(subscribe.mode, ImportMode::Subscribe);
        assert_eq!(subscribe.status, SubscriptionStatus::Unconfirmed);
        assert_eq!(subscribe.delimiter, b',');
        assert_eq!(subscribe.lists, vec![2, 1]);
        assert!(!subscribe.overwrite_userinfo && !subscribe.overwrite_status);
        let blocklist = ImportOptions::try_from(params(
            serde_json::json!({"mode": "blocklist", "lists": [3], "overwrite": true, "subscription_status": "confirmed"}),
        ))
        .unwrap();
        assert_eq!(blocklist.status, SubscriptionStatus::Unsubscribed);
        assert!(blocklist.lists.is_empty());
        assert!(blocklist.overwrite_userinfo && blocklist.overwrite_status);
    }

    #[test]
    fn bad_options_are_refused() {
        for bad in [
            serde_json::json!({"lists": []}),
            serde_json::json!({}),
            serde_json::json!({"lists": [1], "delim": ""}),
            serde_json::json!({"lists": [1], "delim": ",;"}),
            serde_json::json!({"lists": [1], "delim": "\""}),
            serde_json::json!({"lists": [1], "delim": "é"}),
            serde_json::json!({"lists": [0]}),
        ] {
            assert!(
                ImportOptions::try_from(params(bad.clone())).is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            ImportOptions::try_from(params(serde_json::json!({"lists": [1], "delim": ";"})))
                .unwrap()
                .delimiter,
            b';'
        );
    }

    #[test]
    fn the_header_maps_columns_in_any_order() {
        let (columns, ignored) =
            ImportColumns::from_header(&[b"\xEF\xBB\xBFname", b" attributes ", b"city", b"email"])
                .unwrap();
        assert_eq!(ignored, vec!["city".to_owned()]);
        let row = columns
            .row(&[b"Ann", br#"{"a":1}"#, b"x", b" Ann@Example.com "])
            .unwrap();
        assert_eq!(row.email.as_str(), "ann@example.com");
        assert_eq!(row.name, "Ann");
        assert_eq!(row.attribs.clone().into_inner()["a"], 1);
        assert!(columns.row(&[b"Ann", b"", b"x"]).is_err());
        assert!(ImportColumns::from_header(&[b"name"]).is_err());
        assert!(ImportColumns::from_header(&[b"email", b"email"]).is_err());
    }

    #[test]
    fn rows_follow_the_rules_of_a_new_subscriber() {
        let (columns, _) = ImportColumns::from_header(&[b"email", b"name", b"attributes"]).unwrap();
        let blank_name = columns.row(&[b"jo@example.com", b" ", b""]).unwrap();
        assert_eq!(blank_name.name, "jo");
        assert!(columns.row(&[b"not-an-email", b"", b""]).is_err());
        assert!(columns.row(&[b"a@example.com", b"", b"[1]"]).is_err());
        assert!(columns.row(&[b"a@example.com", b"", b"{"]).is_err());
        assert!(columns.row(&[b"a@example.com", b"\xff", b""]).is_err());
        let long = "n".repeat(2001);
        assert!(
            columns
                .row(&[b"a@example.com", long.as_bytes(), b""])
                .is_err()
        );
    }

    #[test]
    fn file_names_lose_their_directories() {
        assert_eq!(
            import_file_name("../../etc/passwd.csv").unwrap(),
            "passwd.csv"
        );
        assert_eq!(import_file_name(r"C:\x\y.csv").unwrap(), "y.csv");
        assert!(import_file_name(&"a".repeat(256)).is_err());
        assert!(import_file_name("a\nb.csv").is_err());
    }
}
