//! Paging: bounded page sizes and opaque page tokens.

use samsyn_proto::common::v1::PageRequest;

use crate::error::ApiError;

/// Rows per page when the caller asks for none.
pub const DEFAULT_PAGE_SIZE: u64 = 50;

/// The most rows one page may hold.
pub const MAX_PAGE_SIZE: u64 = 500;

/// The longest page token accepted; tokens are short cursors, anything longer is garbage.
const MAX_TOKEN_CHARS: usize = 128;

/// A validated page request: how many rows, and the cursor to continue after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Rows to return.
    pub size: u64,
    /// The cursor (last key of the previous page); `None` for the first page.
    pub after: Option<String>,
}

impl Page {
    /// Validates a request's paging; `field` names it in errors (usually `page`).
    pub fn from_request(request: Option<&PageRequest>, field: &str) -> Result<Self, ApiError> {
        let Some(request) = request else {
            return Ok(Self {
                size: DEFAULT_PAGE_SIZE,
                after: None,
            });
        };
        let size = match u64::from(request.page_size) {
            0 => DEFAULT_PAGE_SIZE,
            n if n > MAX_PAGE_SIZE => {
                return Err(ApiError::invalid(
                    format!("{field}.page_size"),
                    format!("at most {MAX_PAGE_SIZE}"),
                ));
            }
            n => n,
        };
        let after = match request.page_token.as_str() {
            "" => None,
            token if token.len() > MAX_TOKEN_CHARS || !token.is_ascii() => {
                return Err(ApiError::invalid(
                    format!("{field}.page_token"),
                    "not a token this server issued",
                ));
            }
            token => Some(token.to_owned()),
        };
        Ok(Self { size, after })
    }

    /// How many rows to fetch: one more than the page, to know whether another follows.
    pub fn fetch_limit(&self) -> u64 {
        self.size + 1
    }

    /// Cuts the fetched rows to the page and returns the next token (empty when done).
    pub fn finish<T>(&self, rows: &mut Vec<T>, key: impl Fn(&T) -> String) -> String {
        let size = usize::try_from(self.size).unwrap_or(usize::MAX);
        if rows.len() > size {
            rows.truncate(size);
            rows.last().map(key).unwrap_or_default()
        } else {
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_limits() {
        assert_eq!(
            Page::from_request(None, "page").unwrap().size,
            DEFAULT_PAGE_SIZE
        );
        let request = PageRequest {
            page_size: 501,
            page_token: String::new(),
        };
        let err = tonic::Status::from(Page::from_request(Some(&request), "page").unwrap_err());
        assert_eq!(err.message(), "invalid page.page_size");
    }

    #[test]
    fn a_page_with_more_behind_it_gets_a_token() {
        let page = Page::from_request(
            Some(&PageRequest {
                page_size: 2,
                page_token: String::new(),
            }),
            "page",
        )
        .unwrap();
        let mut rows = vec!["a", "b", "c"];
        assert_eq!(page.fetch_limit(), 3);
        assert_eq!(page.finish(&mut rows, |r| r.to_string()), "b");
        assert_eq!(rows, ["a", "b"]);
        let mut last = vec!["c"];
        assert_eq!(page.finish(&mut last, |r| r.to_string()), "");
    }

    #[test]
    fn garbage_tokens_are_refused() {
        let request = PageRequest {
            page_size: 0,
            page_token: "x".repeat(1000),
        };
        assert!(Page::from_request(Some(&request), "page").is_err());
    }
}
