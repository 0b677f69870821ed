//! Search words: how every resource's `search`/`query` text becomes words matched literally, with its bounds.

use super::ValidationError;

/// Longest accepted search query (`query`), in characters: half a maximal name, far more than anyone types.
pub const QUERY_MAX_CHARS: usize = 1000;
/// Most words in a search query. Each word is one `LIKE` in the statement, so this bounds the statement's size.
pub const QUERY_MAX_WORDS: usize = 32;
/// Longest search word. A word is matched as `LIKE '%word%'`, whose cost per row grows with the stored text times
/// the word: at most 2,000 × 100 character steps per name, so planted long names cannot make a search slow.
pub const QUERY_WORD_MAX_CHARS: usize = 100;

/// Case-folds text for name search, and e-mails; the same function folds stored names and search words, so
/// matching is identical on every database backend. Character by character, as listmonk's `strings.ToLower`:
/// `str::to_lowercase` makes a word-final `Σ` into `ς`, so `ΑΣ` and `ασ` would differ (and a search word `ΑΣ`
/// would miss `ΑΣΤΡΟ`).
pub fn fold(text: &str) -> String {
    text.chars().flat_map(char::to_lowercase).collect()
}

/// The case-folded words of a search (split on whitespace, repeats dropped), each of which must occur literally.
/// Refuses, before any SQL exists, more than [`QUERY_MAX_CHARS`] characters, [`QUERY_MAX_WORDS`] different
/// words (each word is one `LIKE` in the statement) or a word over [`QUERY_WORD_MAX_CHARS`] characters.
/// `parameter` names the parameter in messages.
pub fn search_words(text: &str, parameter: &str) -> Result<Vec<String>, ValidationError> {
    if text.chars().count() > QUERY_MAX_CHARS {
        return Err(ValidationError(format!(
            "{parameter} must be at most {QUERY_MAX_CHARS} characters"
        )));
    }
    let mut words: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        if word.chars().count() > QUERY_WORD_MAX_CHARS {
            return Err(ValidationError(format!(
                "{parameter} words must be at most {QUERY_WORD_MAX_CHARS} characters each"
            )));
        }
        let word = fold(word);
        if !words.contains(&word) {
            if words.len() == QUERY_MAX_WORDS {
                return Err(ValidationError(format!(
                    "{parameter} must have at most {QUERY_MAX_WORDS} different words"
                )));
            }
            words.push(word);
        }
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_final_capital_sigma_folds_like_any_other() {
        assert_eq!(fold("ΑΣ"), "ασ");
        assert_eq!(fold("ΑΣΤΡΟ ΑΣ"), "αστρο ασ");
        // A search word and the stored text it is part of fold alike.
        let word = &search_words("ΑΣ", "query").unwrap()[0];
        assert!(fold("ΑΣΤΡΟ").contains(word.as_str()));
    }
}
