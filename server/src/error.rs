//! The services' error is the wire's: [`ApiError`] (in `app`, with its constructors and its
//! one mapping to HTTP). What is the server's own converts into it here.

pub use app::error::{ApiError, ApiResult, ErrorCode};

impl From<crate::domain::quota::QuotaExceeded> for ApiError {
    fn from(refusal: crate::domain::quota::QuotaExceeded) -> Self {
        ApiError::new(ErrorCode::QuotaExceeded, refusal.to_string())
            .with_detail("limit", refusal.dimension.as_str())
            .with_detail("usage", refusal.used)
            .with_detail("quota", refusal.quota)
            .with_detail("needed", refusal.needed)
    }
}
