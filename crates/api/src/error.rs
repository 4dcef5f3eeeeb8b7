//! The error policy, in one place.
//!
//! - Persistence code returns diesel's `QueryResult`; handlers return `Result<_, ApiError>`.
//! - Every variant has one HTTP status, and every error answers with the shared
//!   [`keysync_shared::ErrorBody`] shape.
//! - A row that is not there is a 404, a unique-key clash a 409, a foreign key that points
//!   nowhere a 422; a pool that cannot hand out a connection in time, or a database that cannot
//!   be reached, is a 503.
//! - 5xx causes are logged with their detail and never sent to the client.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use keysync_shared::ErrorBody;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request could not be read (malformed JSON, bad query string).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 401: no valid session or signature.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 403: a license key was refused (portal downloads); `code` is the validation code.
    #[error("{}", code.detail())]
    LicenseRefused {
        code: keysync_shared::ValidationCode,
    },
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409: the request clashes with existing data.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 410: something the client refers to is gone for good (an expired feed cursor).
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    /// 412: `If-Match` names an old version; `current` is the representation now stored.
    #[error("the resource changed since you read it")]
    PreconditionFailed { current: Value },
    /// 413.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 422: a field breaks a rule.
    #[error("{message}")]
    Unprocessable { field: String, message: String },
    /// 422: a batch was refused as a whole; each refused item is listed.
    #[error("the batch was not applied: {} item(s) cannot be", errors.len())]
    BatchRefused {
        errors: Vec<keysync_shared::keys::BatchItemError>,
    },
    /// 428: `If-Match` is required and missing.
    #[error("this request needs an If-Match header with the resource's ETag")]
    PreconditionRequired,
    /// 429.
    #[error("too many requests; retry in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    /// 503: the database (or another dependency) is unavailable right now.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a bug or an unexpected failure; the cause is logged, not returned.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }

    pub fn unprocessable(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Unprocessable {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest {
            code: "bad_request",
            message: message.into(),
        }
    }

    pub fn from_pool(err: diesel::r2d2::PoolError) -> Self {
        tracing::warn!(error = %err, "database connection unavailable");
        Self::Unavailable("the database is unavailable; try again shortly".into())
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. } => code,
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::LicenseRefused { .. } => "license_refused",
            Self::NotFound(_) => "not_found",
            Self::Conflict { code, .. } => code,
            Self::Gone { code, .. } => code,
            Self::PreconditionFailed { .. } => "precondition_failed",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::Unprocessable { .. } => "validation_failed",
            Self::BatchRefused { .. } => "batch_refused",
            Self::PreconditionRequired => "precondition_required",
            Self::TooManyRequests { .. } => "rate_limited",
            Self::Unavailable(_) => "service_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }

    pub fn body(&self) -> ErrorBody {
        let body = ErrorBody::new(self.code(), self.to_string());
        match self {
            Self::Unprocessable { field, .. } => body.with_detail("field", field.clone()),
            Self::PreconditionFailed { current } => body.with_detail("current", current.clone()),
            Self::PayloadTooLarge { limit } => body.with_detail("limit", *limit),
            Self::BatchRefused { errors } => {
                body.with_detail("errors", serde_json::to_value(errors).unwrap_or_default())
            }
            Self::TooManyRequests { retry_after_secs } => {
                body.with_detail("retry_after", *retry_after_secs)
            }
            Self::LicenseRefused { code } => body.with_detail("validation_code", code.as_str()),
            _ => body,
        }
    }
}

impl From<DieselError> for ApiError {
    fn from(err: DieselError) -> Self {
        match err {
            DieselError::NotFound => Self::NotFound("not found".into()),
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                Self::Conflict {
                    code: "conflict",
                    message: format!(
                        "a record with the same unique value exists ({})",
                        info.message()
                    ),
                }
            }
            DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                Self::unprocessable("reference", "a referenced record does not exist")
            }
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => {
                tracing::warn!("database connection closed");
                Self::Unavailable("the database is unavailable; try again shortly".into())
            }
            DieselError::DatabaseError(DatabaseErrorKind::UnableToSendCommand, info) => {
                tracing::warn!(error = info.message(), "database unreachable");
                Self::Unavailable("the database is unavailable; try again shortly".into())
            }
            other => Self::Internal(other.into()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::LicenseRefused { .. } => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Gone { .. } => StatusCode::GONE,
            Self::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unprocessable { .. } | Self::BatchRefused { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(cause) = self {
            tracing::error!(error = ?cause, "request failed");
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        if let Self::TooManyRequests { retry_after_secs } = self {
            response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
        }
        response.json(self.body())
    }
}

/// Turns actix's JSON extractor failures into the shared shape: 413 for size, 415 is treated as
/// 400 (the body is not JSON), 400 for syntax.
pub fn json_error_handler(
    err: actix_web::error::JsonPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError;
    let api = match &err {
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            ApiError::PayloadTooLarge { limit: *limit }
        }
        JsonPayloadError::ContentType => ApiError::BadRequest {
            code: "bad_request",
            message: "the request body must be JSON (Content-Type: application/json)".into(),
        },
        JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::BadRequest {
            code: "invalid_body",
            message: format!("the JSON body does not match the expected shape: {e}"),
        },
        other => ApiError::BadRequest {
            code: "malformed_json",
            message: format!("the request body is not valid JSON: {other}"),
        },
    };
    api.into()
}

/// Query-string failures in the shared shape.
pub fn query_error_handler(
    err: actix_web::error::QueryPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::BadRequest {
        code: "invalid_query",
        message: format!("the query string is invalid: {err}"),
    }
    .into()
}

/// Path-segment failures (an id that is not a number) in the shared shape.
pub fn path_error_handler(
    err: actix_web::error::PathError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::NotFound(format!("no such resource: {err}")).into()
}
